package distributed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// LaunchOptions tune Launch.
type LaunchOptions struct {
	Stdout, Stderr io.Writer // where the processes' output goes (discarded when nil)
	Env            []string  // extra environment for every process, after os.Environ()
	// Grace is how long a process has to stop after SIGTERM before it is
	// killed, when another process failed or ctx ended (10 s when zero).
	Grace time.Duration
	// Interrupted, when not 0, is the exit status of a process that
	// stopped because it was asked to (130 for edema's commands after
	// SIGINT): such a process does not make Launch stop the others, which
	// are stopping too and may be saving their state. Launch then returns
	// an *ExitError with that status once all have exited.
	Interrupted int
	// Forward are the signals Launch catches while the processes run and
	// passes on to each of them. The processes run in a process group of
	// their own, so that a terminal's Ctrl-C reaches them once, through
	// Launch, and a signal sent to Launch alone reaches them too. Without
	// Forward they share Launch's group.
	Forward []os.Signal
}

// lockedWriter serialises the writes of the processes' copy goroutines
// (os/exec starts one per process and stream when a writer is not a file).
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// shared wraps the writers that are not files, one lock per writer.
func shared(ws ...io.Writer) []io.Writer {
	locks := map[io.Writer]*sync.Mutex{}
	out := make([]io.Writer, len(ws))
	for i, w := range ws {
		if _, file := w.(*os.File); w == nil || file {
			out[i] = w
			continue
		}
		if locks[w] == nil {
			locks[w] = new(sync.Mutex)
		}
		out[i] = lockedWriter{locks[w], w}
	}
	return out
}

// Launch runs n processes of the program name with args on this machine
// as the ranks of one job, as torchrun --standalone --nproc-per-node n
// does: each gets MASTER_ADDR=127.0.0.1, a free MASTER_PORT, its RANK and
// LOCAL_RANK, and WORLD_SIZE=LOCAL_WORLD_SIZE=n. It returns once all have
// exited. When one fails, or ctx ends, the others are sent SIGTERM, and
// killed after o.Grace; the error names the first rank that failed and
// how, or the ranks that had to be killed. On Linux a process also gets
// SIGTERM when Launch's process dies, so that none is left behind.
func Launch(ctx context.Context, n int, name string, args []string, o LaunchOptions) error {
	if n < 1 {
		return fmt.Errorf("distributed: launch: %d processes; at least one is needed", n)
	}
	port, err := FreePort()
	if err != nil {
		return fmt.Errorf("distributed: launch: no free port on 127.0.0.1: %w", err)
	}
	if o.Grace <= 0 {
		o.Grace = 10 * time.Second
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	type exit struct {
		rank int
		err  error
	}
	exits := make(chan exit, n)
	writers := shared(o.Stdout, o.Stderr)
	var (
		mu    sync.Mutex
		procs []*os.Process // started so far, under mu
	)
	if len(o.Forward) > 0 {
		signals := make(chan os.Signal, 4)
		signal.Notify(signals, o.Forward...)
		defer signal.Stop(signals)
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				select {
				case sig := <-signals:
					mu.Lock()
					for _, p := range procs {
						_ = p.Signal(sig)
					}
					mu.Unlock()
				case <-done:
					return
				}
			}
		}()
	}
	for rank := range n {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(os.Environ(), o.Env...)
		cmd.Env = append(cmd.Env, Env{MasterAddr: "127.0.0.1", MasterPort: port, Rank: rank, WorldSize: n,
			LocalRank: rank, LocalWorldSize: n}.Environ()...)
		cmd.Stdout, cmd.Stderr = writers[0], writers[1]
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = o.Grace
		cmd.SysProcAttr = procAttr(len(o.Forward) > 0)
		if err := cmd.Start(); err != nil {
			stop()
			for range rank {
				<-exits
			}
			return fmt.Errorf("distributed: launch: rank %d: %w", rank, err)
		}
		mu.Lock()
		procs = append(procs, cmd.Process)
		mu.Unlock()
		go func() { exits <- exit{rank, cmd.Wait()} }()
	}
	var first, interrupted, killed *ExitError
	for range n {
		e := <-exits
		if e.err == nil {
			continue
		}
		x := &ExitError{Rank: e.rank, Size: n, Code: -1, Err: e.err}
		var ee *exec.ExitError
		if errors.As(e.err, &ee) {
			x.Code = ee.ExitCode()
		}
		if ctx.Err() != nil {
			// Stopped by Launch: worth a word only if it had to be killed.
			if ee != nil && killed == nil {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
					killed = x
				}
			}
			continue
		}
		if o.Interrupted != 0 && x.Code == o.Interrupted {
			if interrupted == nil {
				interrupted = x
			}
			continue
		}
		if first == nil {
			first = x
			stop()
		}
	}
	if first != nil {
		return first
	}
	if killed != nil {
		return fmt.Errorf("distributed: rank %d of %d did not stop within %v of SIGTERM and was killed: %w", killed.Rank, n, o.Grace, context.Cause(ctx))
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if interrupted != nil {
		return interrupted
	}
	return nil
}

// ExitError is the first process of a launched job that failed.
type ExitError struct {
	Rank, Size int
	Code       int   // its exit status, -1 when a signal ended it or it never ran
	Err        error // os/exec's error
}

func (e *ExitError) Error() string {
	var ee *exec.ExitError
	if errors.As(e.Err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("distributed: rank %d of %d was killed by %v", e.Rank, e.Size, ws.Signal())
		}
		return fmt.Sprintf("distributed: rank %d of %d exited with status %d", e.Rank, e.Size, e.Code)
	}
	return fmt.Sprintf("distributed: rank %d of %d failed: %v", e.Rank, e.Size, e.Err)
}

func (e *ExitError) Unwrap() error { return e.Err }

// FreePort asks the kernel for a free loopback port, for a job's store.
// Another program could take it before rank 0 listens on it; torchrun's
// standalone mode has the same window.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
