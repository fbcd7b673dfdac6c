package outdir

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAcquireIsExclusive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	c, err := Acquire(dir, "checkpoint")
	require.NoError(t, err)
	assert.DirExists(t, filepath.Join(dir, "checkpoint"))
	assert.Empty(t, c.Notes)

	// flock locks belong to open files, so a second claim fails even in
	// the same process, naming the holder.
	_, err = Acquire(dir)
	require.ErrorIs(t, err, ErrBusy)
	assert.Contains(t, err.Error(), "process "+strconv.Itoa(os.Getpid()))

	c.Release()
	c.Release() // twice is harmless
	assert.NoFileExists(t, filepath.Join(dir, LockName), "a finished run leaves no lock file")
	again, err := Acquire(dir)
	require.NoError(t, err)
	assert.Empty(t, again.Notes, "a released lock is not stale")
	again.Release()
}

func TestAcquireTakesOverALockOfAnEndedProcess(t *testing.T) {
	dir := t.TempDir()
	// A process that has ended, as a run killed with SIGKILL leaves its
	// pid in the lock file; the kernel has dropped its lock.
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	pid := cmd.Process.Pid
	require.NoError(t, os.WriteFile(filepath.Join(dir, LockName), []byte(strconv.Itoa(pid)+"\n"), 0o644))
	// And the temporary files of its interrupted writes.
	sub := filepath.Join(dir, "checkpoint")
	require.NoError(t, os.Mkdir(sub, 0o755))
	for _, name := range []string{".checkpoint_latest.pth.tar.tmp-123", ".model_best.pth.tar.tmp-9"} {
		require.NoError(t, os.WriteFile(filepath.Join(sub, name), []byte("partial"), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(sub, "checkpoint_latest.pth.tar"), []byte("kept"), 0o644))

	c, err := Acquire(dir, "checkpoint")
	require.NoError(t, err)
	defer c.Release()
	assert.Equal(t, []string{
		dir + " was left locked by process " + strconv.Itoa(pid) + ", which has ended; taking it over",
		"removed 2 temporary file(s) of an interrupted run from " + sub,
	}, c.Notes)
	entries, err := os.ReadDir(sub)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, "checkpoint_latest.pth.tar", entries[0].Name())
	data, err := os.ReadFile(filepath.Join(dir, LockName))
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(os.Getpid())+"\n", string(data))
}

func TestAcquireFailsWhereNothingCanBeWritten(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, err := Acquire(filepath.Join(file, "out"))
	assert.ErrorContains(t, err, "cannot make the output folder")
	assert.ErrorContains(t, err, "not a directory")
}
