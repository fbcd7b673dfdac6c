// Package pytorchtest runs small PyTorch reference scripts from Go tests.
//
// PyTorch is the ground truth of this project: tests write their own short
// Python programs, run them with the interpreter that has Debian's
// python3-torch (/usr/bin/python3 unless EDEMA_PYTHON says otherwise), and
// compare what they print or write with what the Go code computes.
//
// Without such an interpreter the tests skip, except under CI (CI set in the
// environment), where a missing reference is a failure: CI installs it.
package pytorchtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	once     sync.Once
	python   string
	probeErr string
)

// Python returns the interpreter that imports torch, numpy and sklearn.
// It skips the test (or fails it under CI) when there is none.
func Python(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		python = os.Getenv("EDEMA_PYTHON")
		if python == "" {
			python = "/usr/bin/python3"
		}
		out, err := exec.Command(python, "-c", "import torch, numpy, sklearn; print(torch.__version__)").CombinedOutput()
		if err != nil {
			probeErr = python + " cannot import torch, numpy and sklearn: " + strings.TrimSpace(string(out))
		}
	})
	if probeErr != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("PyTorch reference unavailable under CI: %s", probeErr)
		}
		t.Skipf("PyTorch reference unavailable: %s", probeErr)
	}
	return python
}

// Run writes script to a file in dir (a t.TempDir() when dir is ""), runs it
// with the reference interpreter and args, and returns its standard output.
// The test fails with the script's standard error when it exits non-zero.
func Run(t testing.TB, dir, script string, args ...string) string {
	t.Helper()
	py := Python(t)
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "reference.py")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, append([]string{path}, args...)...)
	cmd.Dir = dir
	// One thread keeps the reference deterministic and leaves the cores to Go.
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("reference script failed: %v\n%s", err, stderr.String())
	}
	return stdout.String()
}

// RunFile runs a committed script (for example scripts/reference/*.py) with
// the reference interpreter and returns its standard output.
func RunFile(t testing.TB, path string, args ...string) string {
	t.Helper()
	py := Python(t)
	cmd := exec.Command(py, append([]string{path}, args...)...)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("reference script %s failed: %v\n%s", path, err, stderr.String())
	}
	return stdout.String()
}
