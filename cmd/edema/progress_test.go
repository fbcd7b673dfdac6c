package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// openTerminal opens a pseudo-terminal and returns its terminal side, for
// a command to write to, and a function that closes it and returns
// everything written, with the terminal's "\r\n" for "\n" undone.
func openTerminal(t *testing.T) (*os.File, func() string) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no pseudo-terminal under CI: %v", err)
		}
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	require.NoError(t, unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0), "unlock the terminal")
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	require.NoError(t, err)
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	// Read all along, so that a full terminal buffer never blocks the
	// command.
	read := make(chan string)
	go func() {
		var b bytes.Buffer
		_, err := io.Copy(&b, master)
		if err != nil && !errors.Is(err, syscall.EIO) { // EIO: the terminal side is closed
			b.WriteString("\nread error: " + err.Error())
		}
		read <- strings.ReplaceAll(b.String(), "\r\n", "\n")
	}()
	return tty, func() string {
		tty.Close()
		return <-read
	}
}

// TestProgressBarsOnATerminal: on a terminal, a long command draws bars
// with rate and time; its results still go to stdout, as plain text.
func TestProgressBarsOnATerminal(t *testing.T) {
	tty, output := openTerminal(t)
	var stdout bytes.Buffer
	app := &cli.App{Name: "edema", Commands: []*cli.Command{synthCommand()}, Writer: &stdout, ErrWriter: tty,
		ExitErrHandler: func(*cli.Context, error) {}}
	dir := filepath.Join(t.TempDir(), "data")
	require.NoError(t, app.Run([]string{"edema", "synth", "--out", dir, "--train", "2", "--val", "1", "--test", "1",
		"--slices", "4", "--width", "32", "--height", "64", "-j", "2"}))
	terminal := output()

	for _, pass := range []string{"synth: cubes", "synth: stacked cubes", "synth: training stacks", "synth: test stacks"} {
		assert.Contains(t, terminal, pass)
	}
	assert.Contains(t, terminal, "\r", "a bar redrawn in place")
	assert.Regexp(t, `\(4/4, [0-9.]+ cubes/s\)`, terminal, "count and rate")
	assert.NotContains(t, terminal, "synth: cubes 4/4\n", "no plain lines on a terminal")
	assert.Contains(t, stdout.String(), "wrote 4 cubes of 4 slices")
	assert.NotContains(t, stdout.String(), "synth:", "progress stays off stdout")
}

// TestStatusLinesBetweenBars: a status line ends the bar it interrupts,
// and the pass goes on in a new bar.
func TestStatusLinesBetweenBars(t *testing.T) {
	tty, output := openTerminal(t)
	p := newPassProgress(tty, "demo")
	p.report("cubes", 1, 2)
	fmt.Fprintln(p, "evaluating UNet")
	p.report("cubes", 2, 2)
	p.close()
	terminal := output()
	before, after, found := strings.Cut(terminal, "evaluating UNet")
	require.True(t, found, terminal)
	assert.Contains(t, before, "demo: cubes")
	assert.True(t, strings.HasSuffix(strings.TrimRight(before, " "), "\n"), "the line starts on a line of its own: %q", before)
	assert.Contains(t, after, "demo: cubes", "a new bar after the line")
}
