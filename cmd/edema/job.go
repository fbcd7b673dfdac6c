package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/distributed"
)

// jobFlags are the flags of the commands that run as several processes
// (train, eval, test).
func jobFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "nproc-per-node", Value: 1, Usage: "start this many processes on this machine as the ranks of one job over c10d (Gloo), as torchrun does; under torchrun (or any launcher setting RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) the process joins that job instead (see docs/DISTRIBUTED.md)"},
		&cli.DurationFlag{Name: "dist-timeout", Value: distributed.DefaultTimeout, Usage: "how long a rank waits for its peers at the rendezvous and in each collective"},
	}
}

// job is a command's place in a job of processes.
type job struct {
	group    *distributed.Group // nil when alone
	launched bool               // the processes ran (this one only started them)
	env      distributed.Env
}

// rank0 says whether this process reports results and writes files.
func (j job) rank0() bool { return j.group == nil || j.group.Rank() == 0 }

// joinJob reads --nproc-per-node and the environment: under a launcher it
// joins the job; with --nproc-per-node N > 1 it starts N processes of this
// command and waits for them (launched); otherwise the process is alone.
func joinJob(c *cli.Context, cmd string) (job, error) {
	n := c.Int("nproc-per-node")
	if n < 1 {
		return job{}, &usageErr{fmt.Errorf("%s: --nproc-per-node %d: a job needs at least one process", cmd, n)}
	}
	env, inJob, err := distributed.EnvFromOS()
	if err != nil {
		return job{}, fmt.Errorf("%s: %w", cmd, err)
	}
	if inJob {
		if c.IsSet("nproc-per-node") && n != env.LocalWorldSize {
			return job{}, &usageErr{fmt.Errorf("%s: --nproc-per-node %d, but the launcher started %d processes on this machine (LOCAL_WORLD_SIZE)", cmd, n, env.LocalWorldSize)}
		}
		g, err := distributed.Init(env, distributed.Options{Timeout: c.Duration("dist-timeout")})
		if err != nil {
			return job{}, fmt.Errorf("%s: %w", cmd, err)
		}
		return job{group: g, env: env}, nil
	}
	if n == 1 {
		return job{}, nil
	}
	exe, args, err := relaunch()
	if err != nil {
		return job{}, fmt.Errorf("%s: finding this program to start its processes: %w", cmd, err)
	}
	// Ctrl-C and SIGTERM reach the ranks once each, through the
	// launcher: they stop together at a step and save, exiting with 130,
	// and this process waits for them; a second Ctrl-C ends them at once.
	// Should the launcher die (a closed terminal's SIGHUP), the kernel
	// sends them SIGTERM.
	fmt.Fprintf(c.App.ErrWriter, "%s: starting %d processes on this machine\n", cmd, n)
	err = distributed.Launch(c.Context, n, exe, args, distributed.LaunchOptions{
		Stdout: c.App.Writer, Stderr: c.App.ErrWriter, Grace: time.Minute, Interrupted: exitInterrupted,
		Forward: []os.Signal{os.Interrupt, syscall.SIGTERM},
	})
	var exit *distributed.ExitError
	if errors.As(err, &exit) && exit.Code == exitInterrupted || errors.Is(err, context.Canceled) {
		// The ranks stopped on a signal and said so; exit as they did.
		return job{launched: true}, errInterrupted
	}
	if err != nil {
		return job{launched: true}, fmt.Errorf("%s: %w", cmd, err)
	}
	return job{launched: true}, nil
}

// relaunch is the command line of the processes that --nproc-per-node
// starts: this program with its arguments. The tests, whose binary runs
// edema's main only behind a flag, set their own.
var relaunch = func() (string, []string, error) {
	exe, err := os.Executable()
	return exe, os.Args[1:], err
}

// threads is the libtorch thread count of a command's process: --threads
// when given; in a job, libtorch's own setting (0) when OMP_NUM_THREADS
// sets it (torchrun sets 1), else the machine's CPUs shared among the
// processes of this machine.
func (j job) threads(c *cli.Context) int {
	if c.IsSet("threads") || j.group == nil {
		return c.Int("threads")
	}
	if os.Getenv("OMP_NUM_THREADS") != "" {
		return 0
	}
	return max(1, runtime.NumCPU()/j.env.LocalWorldSize)
}

// device is --device in a job: a bare "cuda" means cuda:LOCAL_RANK, one
// GPU per process of the machine.
func (j job) device(d torch.Device, flag string) torch.Device {
	if j.group != nil && d.Type == torch.DeviceCUDA && flag == "cuda" {
		d.Index = j.env.LocalRank
	}
	return d
}

// output is where a command writes its results: rank 0's writer, or
// nowhere on the other ranks.
func (j job) output(w io.Writer) io.Writer {
	if j.rank0() {
		return w
	}
	return io.Discard
}

func (j job) close() {
	if j.group != nil {
		j.group.Close()
	}
}
