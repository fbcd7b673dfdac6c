// Package outdir claims an output folder for one run of a command: it makes
// the folder, checks that files can be written in it before any work is
// done, takes an exclusive lock on it for the run, and removes the
// temporary files that killed runs left there.
//
// The lock is an flock(2) on the file .edema.lock, which also names the
// holder's process id: the kernel drops the lock when its process ends,
// however it ends, so a lock is never stale, and a second run in the same
// folder fails at once naming the first. Release removes the file, so a
// finished run leaves nothing of it; a lock taken on a file that was
// removed meanwhile is taken again on the new one, so that two runs can
// never hold locks on two different files of the same name.
package outdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/edema/edema/internal/atomicfile"
)

// LockName is the lock file in a claimed folder.
const LockName = ".edema.lock"

// Claim is a folder held by this process.
type Claim struct {
	Dir string
	// Notes says what the claim found and cleaned up, one line each: a
	// lock left by a process that is gone, temporary files removed.
	Notes []string
	lock  *os.File
}

// ErrBusy is wrapped by the error of a folder that another run holds.
var ErrBusy = errors.New("in use by another run")

// Acquire claims dir (made if missing) and the folders sub beneath it
// (relative paths, also made): each must accept a new file. It fails with
// an error wrapping ErrBusy, naming the holder's process id, when another
// process holds dir.
func Acquire(dir string, sub ...string) (*Claim, error) {
	for _, d := range append([]string{dir}, joinAll(dir, sub)...) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("cannot make the output folder: %w", err)
		}
		if err := atomicfile.Probe(d); err != nil {
			return nil, err
		}
	}
	f, err := lock(dir)
	if err != nil {
		return nil, err
	}
	c := &Claim{Dir: dir, lock: f}
	if pid := readPID(f); pid > 0 && pid != os.Getpid() {
		c.Notes = append(c.Notes, fmt.Sprintf("%s was left locked by process %d, which has ended; taking it over", dir, pid))
	}
	if err := writePID(f); err != nil {
		c.Release()
		return nil, fmt.Errorf("cannot lock the output folder %s: %w", dir, err)
	}
	for _, d := range append([]string{dir}, joinAll(dir, sub)...) {
		removed, err := atomicfile.RemoveStale(d)
		if err != nil {
			c.Release()
			return nil, err
		}
		if len(removed) > 0 {
			c.Notes = append(c.Notes, fmt.Sprintf("removed %d temporary file(s) of an interrupted run from %s", len(removed), d))
		}
	}
	return c, nil
}

// lock opens and flocks the lock file of dir.
func lock(dir string) (*os.File, error) {
	path := filepath.Join(dir, LockName)
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("cannot lock the output folder %s: %w", dir, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			holder := readPID(f)
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				who := "another process"
				if holder > 0 {
					who = fmt.Sprintf("process %d", holder)
				}
				return nil, fmt.Errorf("output folder %s is %w (%s); wait for it to end or choose another folder", dir, ErrBusy, who)
			}
			return nil, fmt.Errorf("cannot lock the output folder %s: %w", dir, err)
		}
		// The holder before us may have removed the file between our open
		// and our lock: then the lock is on a file no one else will open.
		opened, errOpened := f.Stat()
		current, errCurrent := os.Stat(path)
		if errOpened == nil && errCurrent == nil && os.SameFile(opened, current) {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("cannot lock the output folder %s: its lock file keeps being replaced", dir)
}

func joinAll(dir string, sub []string) []string {
	out := make([]string, len(sub))
	for i, s := range sub {
		out[i] = filepath.Join(dir, s)
	}
	return out
}

// Release removes the lock file and unlocks the folder. Releasing twice
// is harmless.
func (c *Claim) Release() {
	if c == nil || c.lock == nil {
		return
	}
	// Removed while still locked: a run that opens the file after this
	// finds it gone once it holds the lock, and takes a new one.
	os.Remove(filepath.Join(c.Dir, LockName))
	c.lock.Close() // closing drops the flock
	c.lock = nil
}

func readPID(f *os.File) int {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		return 0
	}
	return pid
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}
