package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

// runCommand runs one command of the app with args and returns its output.
func runCommand(t *testing.T, cmd *cli.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := &cli.App{
		Name:           "edema",
		Commands:       []*cli.Command{cmd},
		Writer:         &out,
		ErrWriter:      &out,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err := app.Run(append([]string{"edema", cmd.Name}, args...))
	return out.String(), err
}

func TestSynthPrepListsCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	out, err := runCommand(t, synthCommand(), "--out", dir, "--train", "2", "--val", "1", "--test", "1",
		"--slices", "4", "--width", "32", "--height", "64", "--seed", "9", "-j", "2")
	require.NoError(t, err)
	assert.Contains(t, out, "wrote 4 cubes of 4 slices of 32×64 (width×height) to "+dir)
	assert.Contains(t, out, "Edema_trainingset      2 cubes,     8 slices")
	assert.Contains(t, out, filepath.Join(dir, "test_groundtruth"))
	assert.Contains(t, out, filepath.Join(dir, "data_path")+" (8 training slices)")
	for _, pass := range []string{"cubes 4/4", "stacked cubes 4/4", "training stacks 8/8", "test stacks 4/4"} {
		assert.Contains(t, out, "synth: "+pass+"\n", "progress, off a terminal one line a tenth")
	}

	// Preparing again and writing the lists elsewhere give the same files.
	out, err = runCommand(t, prepCommand(), "-d", dir)
	require.NoError(t, err)
	assert.Contains(t, out, "Edema_trainingset: 2 cubes, 8 stacks written to trans3channel_images")
	assert.Contains(t, out, "Edema_testset: 1 cubes, 4 stacks")
	assert.Contains(t, out, "prep: cubes 4/4\n", "progress, off a terminal one line a tenth")

	lists := filepath.Join(t.TempDir(), "lists")
	out, err = runCommand(t, listsCommand(), "-d", dir, "-l", lists)
	require.NoError(t, err)
	assert.Contains(t, out, "train_images.txt, train_labels.txt: 8 training slices")
	assert.Contains(t, out, "info.json: mean ")
	assert.Contains(t, out, "test_images.txt: 1 test cubes")
	assert.Contains(t, out, "lists: training stacks 8/8\n")
	assert.Contains(t, out, "lists: test stacks 4/4\n")
	for _, name := range []string{"train_images.txt", "train_labels.txt", "val_images.txt", "val_labels.txt", "test_images.txt", "info.json", "info_test.json"} {
		want, err := os.ReadFile(filepath.Join(dir, "data_path", name))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(lists, name))
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), name)
	}
}

func TestDataCommandErrors(t *testing.T) {
	empty := t.TempDir()
	notEmpty := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(notEmpty, "x"), nil, 0o644))
	tests := []struct {
		cmd  *cli.Command
		args []string
		want string
	}{
		{synthCommand(), nil, `Required flag "out" not set`},
		{synthCommand(), []string{"-o", filepath.Join(empty, "a"), "--width", "100"}, "synth: --width 100: must be a multiple of 16"},
		{synthCommand(), []string{"-o", filepath.Join(empty, "b"), "--slices", "x"}, `invalid value "x" for flag -slices`},
		{synthCommand(), []string{"-o", notEmpty}, "synth: " + notEmpty + " is not empty"},
		{synthCommand(), []string{"-o", filepath.Join(empty, "c"), "extra"}, `synth: unexpected argument "extra"`},
		{prepCommand(), nil, `Required flag "data-dir" not set`},
		{prepCommand(), []string{"-d", empty}, "prep: " + empty + ": no set with original_images"},
		{listsCommand(), []string{"-d", empty}, `Required flag "list-dir" not set`},
		{listsCommand(), []string{"-d", empty, "-l", filepath.Join(empty, "l")}, "lists: " + empty + " holds none of"},
	}
	for _, tc := range tests {
		_, err := runCommand(t, tc.cmd, tc.args...)
		require.Error(t, err, "%s %v", tc.cmd.Name, tc.args)
		assert.Contains(t, err.Error(), tc.want)
		assert.NotContains(t, err.Error(), "\n", "one-line error")
	}
}
