package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.txt")
	require.NoError(t, Write(path, func(w io.Writer) error { _, err := io.WriteString(w, "one"); return err }))
	require.NoError(t, Write(path, func(w io.Writer) error { _, err := io.WriteString(w, "two"); return err }))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "two", string(data))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
}

func TestFailedWriteKeepsTheOldFileAndLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.txt")
	require.NoError(t, os.WriteFile(path, []byte("old"), 0o644))
	boom := errors.New("encoder failed")
	err := Write(path, func(w io.Writer) error {
		io.WriteString(w, "half")
		return boom
	})
	require.ErrorIs(t, err, boom)
	assert.ErrorContains(t, err, path)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "old", string(data))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "the temporary file must be removed")
}

func TestMissingFolder(t *testing.T) {
	err := Write(filepath.Join(t.TempDir(), "no", "f.txt"), func(io.Writer) error { return nil })
	assert.ErrorContains(t, err, "cannot create a file in")
}

// RemoveStale removes exactly the temporary files that Write makes.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	left, err := os.CreateTemp(dir, tempPattern("checkpoint_latest.pth.tar"))
	require.NoError(t, err)
	left.Close()
	require.NoError(t, Write(filepath.Join(dir, "kept.txt"), func(w io.Writer) error { return nil }))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".hidden"), nil, 0o644))
	removed, err := RemoveStale(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Base(left.Name())}, removed)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{".hidden", "kept.txt"}, names)
	require.NoError(t, Probe(dir))
	assert.ErrorContains(t, Probe(filepath.Join(dir, "missing")), "cannot write in "+filepath.Join(dir, "missing"))
}
