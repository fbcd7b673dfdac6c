package main

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/edema/edema/inference"
)

// cubeProgress reports the cubes of eval and test as they finish: a
// progress bar with rate and time left on a terminal, one line per cube
// otherwise (logs, pipes, tests).
type cubeProgress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func newCubeProgress(w io.Writer, what string, total int) *cubeProgress {
	p := &cubeProgress{w: w}
	if isTerminal(w) {
		p.bar = newProgressBar(w, total, what, "cubes")
	}
	return p
}

// newProgressBar is the terminal progress bar of every long command: a
// count of units done, their rate, the time elapsed and left.
func newProgressBar(w io.Writer, total int, desc, units string) *progressbar.ProgressBar {
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString(units),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionFullWidth(),
		progressbar.OptionThrottle(200*time.Millisecond),
	)
}

// done reports one finished cube.
func (p *cubeProgress) done(d inference.CubeDone) {
	if p.bar == nil {
		fmt.Fprintln(p.w, inference.CubeLine(d))
		return
	}
	p.bar.Add(1)
}

// close ends the bar, so that what follows starts on a line of its own.
func (p *cubeProgress) close() {
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}
