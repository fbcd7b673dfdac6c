package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/models"
	"github.com/edema/edema/oct/synth"
)

// tinyTrainingData writes the smallest synthetic data set that trains: 2
// training cubes and 1 validation cube of 4 slices of 32×64.
func tinyTrainingData(t *testing.T) (data, lists string) {
	t.Helper()
	data = filepath.Join(t.TempDir(), "data")
	_, err := synth.Generate(data, synth.Options{Train: 2, Val: 1, Slices: 4, Width: 32, Height: 64, Seed: 3, Workers: 2})
	require.NoError(t, err)
	return data, filepath.Join(data, synth.ListDir)
}

func TestTrainCommand(t *testing.T) {
	data, lists := tinyTrainingData(t)
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"--name", "unet", "-d", data, "-l", lists, "--out", out, "--batch-size", "2", "-j", "2",
		"--epochs", "2", "--lr", "0.001", "--threads", "1", "--max-steps-per-epoch", "3"}
	text, err := runCommand(t, trainCommand(), args...)
	require.NoError(t, err)
	for _, want := range []string{
		"training unet (2466151 parameters) on cpu: loss mix_3 (WCE + Dice + BCE), Adam; 8 slices, 3 steps of 2 an epoch; 1 validation cubes; output " + out,
		"epoch 1/2 loss ", " step 3/3 (",
		"epoch 1/2: validating",
		"epoch 2/2: lr 0.001, train loss ",
		"done: 2 epochs; best validation Dice ",
	} {
		assert.Contains(t, text, want)
	}
	for _, f := range []string{"checkpoint/checkpoint_latest.pth.tar", "dice_epoch.txt", "curves.png"} {
		_, err := os.Stat(filepath.Join(out, f))
		assert.NoError(t, err, f)
	}

	// A new run into the same folder needs --overwrite.
	_, err = runCommand(t, trainCommand(), args...)
	require.ErrorContains(t, err, "train: --out "+out+" holds another run (dice_epoch.txt): continue it with --resume "+filepath.Join(out, "checkpoint", "checkpoint_latest.pth.tar")+", or start afresh with --overwrite")

	// Resuming a finished run asks for more epochs.
	_, err = runCommand(t, trainCommand(), append(args, "--resume", filepath.Join(out, "checkpoint", "checkpoint_latest.pth.tar"))...)
	require.ErrorContains(t, err, "all 2 epochs are done; raise --epochs")
	text, err = runCommand(t, trainCommand(), append(args, "--epochs", "3", "--resume", filepath.Join(out, "checkpoint", "checkpoint_latest.pth.tar"))...)
	require.NoError(t, err)
	assert.Contains(t, text, "resuming "+filepath.Join(out, "checkpoint", "checkpoint_latest.pth.tar")+" at epoch 3, step 0")
	assert.Contains(t, text, "done: 3 epochs")
}

func TestTrainCommandErrors(t *testing.T) {
	data, lists := tinyTrainingData(t)
	base := func(extra ...string) []string {
		return append([]string{"--name", "unet", "-d", data, "-l", lists, "--out", t.TempDir(), "--threads", "1", "--batch-size", "2"}, extra...)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-d", data, "-l", lists}, `Required flag "name" not set`},
		{base("--name", "resnet"), `train: unknown --name "resnet": want one of unet, unet_nested, unet_nested_dilated`},
		{base("--loss", "wce"), `train: --loss: unknown loss "wce"`},
		{base("-o", "Adagrad"), `train: unknown --optimizer "Adagrad": want Adam or SGD`},
		{base("--lr-mode", "cosine"), `train: unknown --lr-mode "cosine"`},
		{base("--device", "tpu"), `train: --device: bad device "tpu"`},
		{base("-d", filepath.Join(data, "missing")), "train: --data-dir: stat " + filepath.Join(data, "missing")},
		{base("-l", t.TempDir()), "train_images.txt: no such file or directory"},
		{base("--batch-size", "64"), "train: --batch-size 64 is larger than the training set"},
		{base("--resume", filepath.Join(data, "none.pth.tar")), "train: --resume: open " + filepath.Join(data, "none.pth.tar")},
		{base("extra"), `train: unexpected argument "extra"`},
		{base("--random-scale", "1.5"), "train: --random-scale and --crop-size: a random scale without a crop gives slices of different sizes"},
		{base("-s", "24"), "train: augmented slices are 24×24 (width×height); the networks need multiples of 16"},
		{base("--amp", "fp16"), "train: --amp: precision fp16 runs on CUDA only, not on the cpu; use bf16 there"},
		{base("--amp", "half"), `train: --amp: precision "half": want bf16, fp16 or fp32`},
	} {
		_, err := runCommand(t, trainCommand(), c.args...)
		require.Error(t, err, "%v", c.args)
		assert.Contains(t, err.Error(), c.want)
		assert.NotContains(t, err.Error(), "\n")
	}
}

// The signal test runs the command in a child process: this test binary,
// which runs main when EDEMA_TRAIN_MAIN is set.
func TestTrainMainProcess(t *testing.T) {
	if os.Getenv("EDEMA_TRAIN_MAIN") != "1" {
		t.Skip("runs edema train in a child process of TestTrainStopsOnSignal")
	}
	args := strings.Split(os.Getenv("EDEMA_TRAIN_ARGS"), "\x1f")
	os.Args = append([]string{"edema", "train"}, args...)
	main() // exits
}

func TestTrainStopsOnSignal(t *testing.T) {
	data, lists := tinyTrainingData(t)
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"--name", "unet", "-d", data, "-l", lists, "--out", out, "--batch-size", "2", "-j", "2",
		"--epochs", "100", "--lr", "0.001", "--threads", "1"}

	cmd := exec.Command(os.Args[0], "-test.run=^TestTrainMainProcess$")
	cmd.Env = append(os.Environ(), "EDEMA_TRAIN_MAIN=1", "EDEMA_TRAIN_ARGS="+strings.Join(args, "\x1f"))
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())

	// Signal once the second epoch has begun, so that the first epoch's
	// files exist and must survive.
	var text strings.Builder
	sc := bufio.NewScanner(stdout)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		text.WriteString(line + "\n")
		if !signalled && strings.HasPrefix(line, "epoch 2/100 ") && strings.Contains(line, " step 1/4 ") {
			require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
			signalled = true
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("edema train did not stop after SIGINT:\n%s", text.String())
	}
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "stdout:\n%s\nstderr:\n%s", text.String(), stderr.String())
	assert.Equal(t, exitInterrupted, exit.ExitCode(), "exit status 130 after SIGINT\nstdout:\n%s\nstderr:\n%s", text.String(), stderr.String())
	require.True(t, signalled, "never saw the second epoch start:\n%s", text.String())
	assert.Contains(t, stderr.String(), "stopping after the current step and saving")
	latest := filepath.Join(out, "checkpoint", "checkpoint_latest.pth.tar")
	assert.Contains(t, text.String(), "interrupted at epoch 2, step ")
	assert.Contains(t, text.String(), "continue with --resume "+latest)

	c, err := models.ReadCheckpoint(latest)
	require.NoError(t, err)
	assert.Equal(t, int64(1), *c.Epoch, "the interrupted epoch is not counted as done")
	step, ok := c.Extra.Get("epoch_step")
	require.True(t, ok, "the steps done of the interrupted epoch are recorded")
	assert.GreaterOrEqual(t, step.(int64), int64(1))
	log, err := os.ReadFile(filepath.Join(out, "dice_epoch.txt"))
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(string(log), "\n"), "the log keeps its header and the first epoch")

	// The run continues from there.
	text2, err := runCommand(t, trainCommand(), append(args, "--epochs", "2", "--resume", latest)...)
	require.NoError(t, err)
	assert.Contains(t, text2, "resuming "+latest+" at epoch 2, step ")
	assert.Contains(t, text2, "done: 2 epochs")
}
