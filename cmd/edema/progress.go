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

// passProgress reports an oct.Progress of a command: a bar per pass on a
// terminal, otherwise a line at every tenth of a pass (and at its end).
type passProgress struct {
	w       io.Writer
	command string
	bar     *progressbar.ProgressBar
	what    string
	tenth   int
}

func newPassProgress(w io.Writer, command string) *passProgress {
	return &passProgress{w: w, command: command}
}

func (p *passProgress) report(what string, done, total int) {
	if what != p.what {
		p.close()
		p.what, p.tenth = what, 0
		if isTerminal(p.w) {
			p.bar = newProgressBar(p.w, total, p.command+": "+what, what)
		}
	}
	if p.bar != nil {
		p.bar.Set(done)
		return
	}
	if tenth := 10 * done / max(total, 1); tenth > p.tenth || done == total {
		p.tenth = tenth
		fmt.Fprintf(p.w, "%s: %s %d/%d\n", p.command, what, done, total)
	}
}

// close ends the current bar, so that what follows starts on a line of
// its own.
func (p *passProgress) close() {
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprintln(p.w)
		p.bar, p.what = nil, ""
	}
}

// Write writes status lines between the bars: the current bar ends first.
func (p *passProgress) Write(b []byte) (int, error) {
	p.close()
	return p.w.Write(b)
}
