package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/pytorchtest"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct/synth"
	"github.com/edema/edema/torch/distributed"
)

// edemaProcess runs edema's main with args in a child process (see
// TestMainProcess) and returns its stdout, its stderr and its error.
func edemaProcess(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestMainProcess$", "--"}, args...)...)
	// One libtorch thread in every process, alone or a rank: the thread
	// count can change a convolution's last bits, and with them a label.
	cmd.Env = append(os.Environ(), "EDEMA_MAIN=1", "OMP_NUM_THREADS=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// TestTrainOnTwoProcesses: `edema train --nproc-per-node 2` runs 2 ranks
// over c10d on loopback. Rank 0 alone reports and writes; the validation
// figures of its log are those a one-process `edema eval` gives for the
// checkpoint; and the test submission of 2 processes is byte for byte
// that of one.
func TestTrainOnTwoProcesses(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	_, err := synth.Generate(data, synth.Options{Train: 2, Val: 3, Test: 3, Slices: 4, Width: 32, Height: 64, Seed: 3, Workers: 2})
	require.NoError(t, err)
	lists := filepath.Join(data, synth.ListDir)
	out := filepath.Join(t.TempDir(), "run")
	stdout, stderr, err := edemaProcess(t, "train", "--name", "unet", "-d", data, "-l", lists, "--out", out,
		"--batch-size", "2", "-j", "1", "--epochs", "2", "--lr", "0.001", "--max-steps-per-epoch", "2",
		"--nproc-per-node", "2", "--dist-timeout", "2m")
	require.NoError(t, err, stdout+stderr)
	assert.Contains(t, stderr, "train: starting 2 processes on this machine")
	assert.Contains(t, stdout, "training unet (2466151 parameters) on 2 processes (rank 0 on cpu), each taking: ")
	assert.Equal(t, 1, strings.Count(stdout, "done: 2 epochs"), "one rank reports:\n%s", stdout)
	assert.Equal(t, 2, strings.Count(stdout, ": validating"), stdout)
	for _, f := range []string{"checkpoint/checkpoint_latest.pth.tar", "checkpoint/model_best.pth.tar", "dice_epoch.txt", "curves.png"} {
		assert.FileExists(t, filepath.Join(out, f))
	}
	log, err := os.ReadFile(filepath.Join(out, "dice_epoch.txt"))
	require.NoError(t, err)
	rows := strings.Split(strings.TrimSpace(string(log)), "\n")
	require.Len(t, rows, 3, "a header and 2 epochs:\n%s", log)

	// The last epoch's validation columns against eval's of the latest
	// checkpoint: Dice_Val, AUC, the classes' Dice (Dice_11, Dice_22,
	// Dice_33) and AUCs.
	ev := filepath.Join(t.TempDir(), "eval")
	stdout, stderr, err = edemaProcess(t, "eval", "-d", data, "-l", lists, "--seg-name", "unet",
		"--seg-path", filepath.Join(out, "checkpoint", "checkpoint_latest.pth.tar"), "--out", ev, "--batch-size", "16")
	require.NoError(t, err, stdout+stderr)
	evLog, err := os.ReadFile(filepath.Join(ev, "dice_epoch.txt"))
	require.NoError(t, err)
	// The same evaluation sharded over 2 processes writes the same report,
	// the slices of lowest Dice gathered from both included.
	ev2 := filepath.Join(t.TempDir(), "eval2")
	stdout, stderr, err = edemaProcess(t, "eval", "-d", data, "-l", lists, "--seg-name", "unet",
		"--seg-path", filepath.Join(out, "checkpoint", "checkpoint_latest.pth.tar"), "--out", ev2, "--batch-size", "16",
		"--nproc-per-node", "2")
	require.NoError(t, err, stdout+stderr)
	for _, f := range []string{"dice_epoch.txt", "cubes.tsv", "score.txt", "report.html"} {
		one, err := os.ReadFile(filepath.Join(ev, f))
		require.NoError(t, err)
		two, err := os.ReadFile(filepath.Join(ev2, f))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(one, two), "%s of 2 processes differs from that of one", f)
	}
	train := strings.Fields(rows[2])
	got := strings.Fields(strings.Split(strings.TrimSpace(string(evLog)), "\n")[1])
	lower := func(v []string) []string {
		for i := range v {
			v[i] = strings.ToLower(v[i])
		}
		return v
	}
	assert.Equal(t, lower([]string{train[2], train[5], train[7], train[9], train[3], train[10], train[11], train[12]}),
		lower([]string{got[1], got[2], got[3], got[4], got[5], got[6], got[7], got[8]}),
		"train's last validation:\n%s\neval of its checkpoint:\n%s", log, evLog)

	// The test submission, on 1 and on 2 processes.
	var zips [2][]byte
	for i, n := range []string{"1", "2"} {
		dir := filepath.Join(t.TempDir(), "test")
		stdout, stderr, err := edemaProcess(t, "test", "-d", data, "-l", lists, "--seg-name", "unet",
			"--seg-path", filepath.Join(out, "checkpoint", "checkpoint_latest.pth.tar"), "--out", dir, "--nproc-per-node", n)
		require.NoError(t, err, stdout+stderr)
		assert.Equal(t, 1, strings.Count(stdout, "submission: "), stdout)
		zips[i], err = os.ReadFile(filepath.Join(dir, "submission.zip"))
		require.NoError(t, err)
	}
	assert.True(t, bytes.Equal(zips[0], zips[1]), "the submission of 2 processes differs from that of one")
}

func TestJobFlagsRefused(t *testing.T) {
	data, lists := tinyTrainingData(t)
	_, err := runApp(t, "train", "--name", "unet", "-d", data, "-l", lists, "--nproc-per-node", "0")
	assert.ErrorContains(t, err, "train: --nproc-per-node 0: a job needs at least one process")
	assert.Equal(t, exitUsage, exitCode(err))

	// Under a launcher's environment, a malformed variable is named.
	t.Setenv("WORLD_SIZE", "2")
	t.Setenv("RANK", "zero")
	t.Setenv("MASTER_ADDR", "127.0.0.1")
	t.Setenv("MASTER_PORT", "29500")
	_, err = runApp(t, "eval", "-d", data, "-l", lists, "--seg-name", "unet", "--seg-path", "x.pth")
	assert.ErrorContains(t, err, `eval: distributed: RANK="zero" is not a whole number`)
}

// TestUnderTorchrun: edema's ranks join a job that PyTorch's own launcher
// (Debian's torch.distributed.run, torchrun) starts: standalone, where
// rank 0 hosts the store, and with the static rendezvous, where
// torchrun's agent hosts it (TORCHELASTIC_USE_AGENT_STORE). The
// submission equals that of one process.
func TestUnderTorchrun(t *testing.T) {
	python := pytorchtest.Python(t)
	data := filepath.Join(t.TempDir(), "data")
	_, err := synth.Generate(data, synth.Options{Train: 1, Val: 1, Test: 3, Slices: 2, Width: 32, Height: 64, Seed: 5, Workers: 2})
	require.NoError(t, err)
	lists := filepath.Join(data, synth.ListDir)
	ckpt := saveRandom(t, filepath.Join(t.TempDir(), "unet.pth"), "unet", 1)
	submit := func(dir string, launcher ...string) []byte {
		args := []string{"test", "-d", data, "-l", lists, "--seg-name", "unet", "--seg-path", ckpt, "--out", dir}
		var cmd *exec.Cmd
		if launcher == nil {
			cmd = exec.Command(os.Args[0], append([]string{"-test.run=^TestMainProcess$", "--"}, args...)...)
		} else {
			// --redirects and --tee other than 0: Debian's torchrun 1.13 on
			// Python 3.11 or later fails on their default (its Std flag
			// enum lost the zero member).
			full := append(append([]string{"-m", "torch.distributed.run", "--redirects", "1", "--tee", "1"}, launcher...),
				"--no_python", os.Args[0], "-test.run=^TestMainProcess$", "--")
			cmd = exec.Command(python, append(full, args...)...)
		}
		// USE_LIBUV=0: torchrun 2.4+ asks c10d for a libuv store server by
		// default, which Debian's builds lack.
		cmd.Env = append(os.Environ(), "EDEMA_MAIN=1", "USE_LIBUV=0", "OMP_NUM_THREADS=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		zip, err := os.ReadFile(filepath.Join(dir, "submission.zip"))
		require.NoError(t, err, string(out))
		return zip
	}
	want := submit(filepath.Join(t.TempDir(), "one"))
	port, err := distributed.FreePort()
	require.NoError(t, err)
	// Debian's PyTorch 2.x is built without libuv, and torchrun's own
	// stores ask for it whatever USE_LIBUV says: it cannot start a job.
	probe := exec.Command(python, "-c", "import torch.distributed as d; d.TCPStore('127.0.0.1', 0, 1, True)")
	probeOut, probeErr := probe.CombinedOutput()
	noLibuv := probeErr != nil && strings.Contains(string(probeOut), "without libuv support")
	for name, launcher := range map[string][]string{
		"standalone": {"--standalone", "--nproc_per_node", "2"},
		"agent store": {"--nnodes", "1", "--nproc_per_node", "2", "--rdzv_backend", "static", "--node_rank", "0",
			"--master_addr", "127.0.0.1", "--master_port", strconv.Itoa(port)},
	} {
		t.Run(name, func(t *testing.T) {
			if noLibuv {
				t.Skip("this PyTorch's torchrun needs libuv for its stores, which its build lacks")
			}
			assert.True(t, bytes.Equal(want, submit(filepath.Join(t.TempDir(), "job"), launcher...)))
		})
	}
}

// TestInterruptedJobResumesExactly: a Ctrl-C (SIGINT to the terminal's
// process group) stops both ranks of a training job, its batch norms
// synchronised (--sync-bn), at the same step; the launcher exits with
// status 130; --resume on 2 processes then ends with the weights of the
// job that was never interrupted, bit for bit.
func TestInterruptedJobResumesExactly(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	_, err := synth.Generate(data, synth.Options{Train: 4, Val: 1, Test: 1, Slices: 4, Width: 32, Height: 64, Seed: 4, Workers: 2})
	require.NoError(t, err)
	lists := filepath.Join(data, synth.ListDir)
	args := func(out string, extra ...string) []string {
		return append([]string{"-test.run=^TestMainProcess$", "--", "train", "--name", "unet", "-d", data, "-l", lists,
			"--out", out, "--batch-size", "2", "-j", "1", "--epochs", "3", "--lr", "0.001", "--nproc-per-node", "2", "--sync-bn"}, extra...)
	}
	straight := filepath.Join(t.TempDir(), "straight")
	cmd := exec.Command(os.Args[0], args(straight)...)
	cmd.Env = append(os.Environ(), "EDEMA_MAIN=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))

	stopped := filepath.Join(t.TempDir(), "stopped")
	cmd = exec.Command(os.Args[0], args(stopped)...)
	cmd.Env = append(os.Environ(), "EDEMA_MAIN=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	var seen bytes.Buffer
	lines := bufio.NewScanner(stdout)
	signalled := false
	for lines.Scan() {
		seen.WriteString(lines.Text() + "\n")
		if !signalled && strings.Contains(lines.Text(), "epoch 1/3 loss") {
			require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGINT))
			signalled = true
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the job was not interrupted:\n%s%s", seen.String(), stderr.String())
	assert.Equal(t, exitInterrupted, exit.ExitCode(), seen.String()+stderr.String())
	// Inside an epoch (4 steps a rank), so that every rank's running
	// figures travel through the checkpoint.
	assert.Regexp(t, `interrupted at epoch \d, step [1-3] of 4`, seen.String(), stderr.String())

	latest := filepath.Join(stopped, "checkpoint", "checkpoint_latest.pth.tar")
	cmd = exec.Command(os.Args[0], args(stopped, "--resume", latest)...)
	cmd.Env = append(os.Environ(), "EDEMA_MAIN=1")
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, string(out))

	want, err := models.ReadCheckpoint(filepath.Join(straight, "checkpoint", "checkpoint_latest.pth.tar"))
	require.NoError(t, err)
	got, err := models.ReadCheckpoint(latest)
	require.NoError(t, err)
	for _, k := range want.StateDict.Keys() {
		w, _ := want.StateDict.Get(k)
		g, ok := got.StateDict.Get(k)
		require.True(t, ok, k)
		require.True(t, w.Equal(g), "%s differs after the interruption and resume", k)
	}
	wantLog, err := os.ReadFile(filepath.Join(straight, "dice_epoch.txt"))
	require.NoError(t, err)
	gotLog, err := os.ReadFile(filepath.Join(stopped, "dice_epoch.txt"))
	require.NoError(t, err)
	assert.Equal(t, string(wantLog), string(gotLog))
}
