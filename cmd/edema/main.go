// Command edema trains, evaluates and serves the retinal-edema OCT networks
// (UNet, UNet++, dilated UNet++) of the AI Challenger 2018 pipeline.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/edema/edema/torch"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "edema:", err)
		os.Exit(1)
	}
}

// newApp returns the command line application with all its commands.
func newApp() *cli.App {
	app := &cli.App{
		Name:  "edema",
		Usage: "retinal edema segmentation and detection in OCT scans",
		Commands: []*cli.Command{
			// In the order of the workflow; each lives in its own file.
			demoCommand(),
			synthCommand(),
			prepCommand(),
			listsCommand(),
			trainCommand(),
			evalCommand(),
			testCommand(),
			scoreCommand(),
			modelsCommand(),
			inspectCommand(),
			convertCommand(),
			forwardCommand(),
		},
		Flags: []cli.Flag{
			&cli.Int64Flag{
				Name:    "host-cache-mb",
				Usage:   "MiB of freed CPU tensor memory kept for reuse (0: none; default: a quarter of the machine's memory)",
				EnvVars: []string{"EDEMA_HOST_CACHE_MB"},
				Value:   -1,
			},
		},
		Before: enableHostCache,
		// Repeated flags such as --fusion-model carry paths, which may hold commas.
		DisableSliceFlagSeparator: true,
		// Errors are printed once, below, as one line.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	// A bad flag value is one error line, as every other error, rather than
	// urfave/cli's "Incorrect Usage" and the whole help text.
	app.OnUsageError = usageError
	for _, c := range app.Commands {
		c.OnUsageError = usageError
	}
	return app
}

// enableHostCache gives libtorch the host cache (see torch.EnableHostCache):
// without it every pass of a network page-faults its activations in again,
// which costs more CPU time on many machines than the pass's arithmetic.
func enableHostCache(c *cli.Context) error {
	switch mb := c.Int64("host-cache-mb"); {
	case mb == -1:
		torch.EnableHostCache(torch.DefaultHostCacheLimit())
	case mb == 0:
	case mb > 0 && mb < 1<<40:
		torch.EnableHostCache(mb << 20)
	default:
		return fmt.Errorf("--host-cache-mb %d: want 0 (no cache) or a positive number of MiB", mb)
	}
	return nil
}

func usageError(_ *cli.Context, err error, _ bool) error {
	return fmt.Errorf("%w (see --help)", err)
}
