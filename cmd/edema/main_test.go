package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/torch"
)

func runApp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &out
	err := app.Run(append([]string{"edema"}, args...))
	return out.String(), err
}

func TestHostCacheFlag(t *testing.T) {
	defer torch.DisableHostCache()
	for _, tc := range []struct {
		args  []string
		limit int64
	}{
		{[]string{"models"}, torch.DefaultHostCacheLimit()},
		{[]string{"--host-cache-mb", "64", "models"}, 64 << 20},
		{[]string{"--host-cache-mb", "0", "models"}, 0},
	} {
		torch.DisableHostCache()
		_, err := runApp(t, tc.args...)
		require.NoError(t, err, "%v", tc.args)
		assert.Equal(t, tc.limit, torch.HostCacheStatistics().Limit, "%v", tc.args)
	}
	t.Setenv("EDEMA_HOST_CACHE_MB", "32")
	_, err := runApp(t, "models")
	require.NoError(t, err)
	assert.Equal(t, int64(32<<20), torch.HostCacheStatistics().Limit)
}

func TestBadFlagsAreOneLine(t *testing.T) {
	for _, args := range [][]string{
		{"--host-cache-mb", "-5", "models"},
		{"--host-cache-mb", "many", "models"},
		{"--bogus", "models"},
		{"train", "--epochs", "abc"},
	} {
		out, err := runApp(t, args...)
		require.Error(t, err, "%v", args)
		assert.NotContains(t, out, "Incorrect Usage", "%v", args)
		assert.NotContains(t, out, "USAGE:", "%v: no help text for a bad flag", args)
	}
}

// The command line's conventions: usage errors exit 2 in one line with the
// command's name, failures 1, an interruption 130; --version and version
// say what edema runs on; required flags are marked in --help.
func TestCommandLineConventions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"scor"}, "unknown command scor (did you mean score?)", exitUsage},
		{[]string{"nosuch"}, "unknown command nosuch", exitUsage},
		{[]string{"score"}, "score: --submit, --ref are required (see --help)", exitUsage},
		{[]string{"train", "--name", "unet"}, "train: --data-dir, --list-dir are required (see --help)", exitUsage},
		{[]string{"score", "--submit", "x.zip"}, "score: --ref is required (see --help)", exitUsage},
		{[]string{"score", "--bogus"}, "flag provided but not defined: -bogus (see --help)", exitUsage},
		{[]string{"version", "extra"}, `version: unexpected argument "extra"`, exitUsage},
		{[]string{"score", "--submit", "missing.zip", "--ref", "missing"}, "missing", exitFailure},
	} {
		out, err := runApp(t, tc.args...)
		require.Error(t, err, "%v", tc.args)
		assert.Contains(t, err.Error(), tc.want, "%v", tc.args)
		assert.Equal(t, tc.code, exitCode(err), "%v: %v", tc.args, err)
		assert.NotContains(t, out, "USAGE:", "%v: no help text", tc.args)
	}
	assert.Equal(t, 0, exitCode(nil))
	assert.Equal(t, exitInterrupted, exitCode(fmt.Errorf("train: %w", errInterrupted)))
	assert.Equal(t, exitInterrupted, exitCode(fmt.Errorf("eval: %w", context.Canceled)))

	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, err := runApp(t, args...)
		require.NoError(t, err)
		assert.Contains(t, out, "edema ")
		assert.Contains(t, out, "go "+strings.TrimPrefix(runtime.Version(), "go"))
		assert.Contains(t, out, "libtorch "+torch.Version())
		assert.Contains(t, out, "CUDA ")
	}
	out, err := runApp(t, "score", "--help")
	require.NoError(t, err)
	assert.Contains(t, out, "reference folder (ground truth) (required)")
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh"} {
		out, err := runApp(t, "completion", shell)
		require.NoError(t, err)
		assert.Contains(t, out, "complete -o bashdefault -o default -F _edema_complete edema", shell)
		if sh, err := exec.LookPath(shell); err == nil {
			check := exec.Command(sh, "-n")
			check.Stdin = strings.NewReader(out)
			msg, err := check.CombinedOutput()
			assert.NoError(t, err, "%s -n: %s", shell, msg)
		}
	}
	out, err := runApp(t, "completion", "fish")
	require.NoError(t, err)
	assert.Contains(t, out, "complete -r -c edema -n '__fish_edema_no_subcommand' -a 'serve'")

	// The bash script in a real bash, asking a real edema: this test
	// binary, which runs main under TestMainProcess, behind a wrapper
	// called edema on PATH.
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	bin := t.TempDir()
	wrapper := "#!/bin/sh\nEDEMA_MAIN=1 exec " + os.Args[0] + " -test.run='^TestMainProcess$' -- \"$@\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(bin, "edema"), []byte(wrapper), 0o755))
	complete := func(words ...string) []string {
		script, err := runApp(t, "completion", "bash")
		require.NoError(t, err)
		cmd := exec.Command(bash, "-c", script+`
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _edema_complete; printf '%s\n' "${COMPREPLY[@]}"`, "bash")
		cmd.Args = append(cmd.Args, words...)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		out, err := cmd.Output()
		require.NoError(t, err)
		return strings.Fields(string(out))
	}
	assert.Equal(t, []string{"score", "serve", "synth"}, sortedStrings(complete("edema", "s")))
	assert.Equal(t, []string{"--max-batch", "--max-body-mb", "--max-delay", "--max-queue"}, sortedStrings(complete("edema", "serve", "--max-")))

	_, err = runApp(t, "completion", "tcsh")
	assert.ErrorContains(t, err, `unknown shell "tcsh"`)
	assert.Equal(t, exitUsage, exitCode(err))
}

// TestMainProcess runs edema's main with the arguments after "--", in a
// child process that a test starts with EDEMA_MAIN=1.
func TestMainProcess(t *testing.T) {
	if os.Getenv("EDEMA_MAIN") != "1" {
		t.Skip("runs edema in a child process of another test")
	}
	self := os.Args[0]
	for i, a := range os.Args {
		if a == "--" {
			os.Args = append([]string{"edema"}, os.Args[i+1:]...)
			break
		}
	}
	relaunch = func() (string, []string, error) {
		return self, append([]string{"-test.run=^TestMainProcess$", "--"}, os.Args[1:]...), nil
	}
	main() // exits
}

func sortedStrings(s []string) []string {
	s = append([]string(nil), s...)
	slices.Sort(s)
	return s
}

// TestCubeProgressPlainOffATerminal: without a terminal each cube is one
// line, as logs and pipes want.
func TestCubeProgressPlainOffATerminal(t *testing.T) {
	var b strings.Builder
	p := newCubeProgress(&b, "evaluating", 2)
	p.done(inference.CubeDone{Index: 0, Total: 2, Name: "P0001"})
	p.done(inference.CubeDone{Index: 1, Total: 2, Name: "P0002"})
	p.close()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 2)
	assert.Contains(t, lines[0], "cube 1/2 P0001")
	assert.Contains(t, lines[1], "cube 2/2 P0002")
}
