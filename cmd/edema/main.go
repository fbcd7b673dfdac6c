// Command edema trains, evaluates and serves the retinal-edema OCT networks
// (UNet, UNet++, dilated UNet++) of the AI Challenger 2018 pipeline.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/edema/edema/torch"
)

func main() {
	err := newApp().Run(os.Args)
	if err != nil && !errors.Is(err, errInterrupted) {
		fmt.Fprintln(os.Stderr, "edema:", err)
	}
	os.Exit(exitCode(err))
}

// Exit statuses, as shells and scripts expect them.
const (
	exitFailure     = 1
	exitUsage       = 2   // a bad command line: unknown command or flag, bad or missing value
	exitInterrupted = 130 // 128 + SIGINT
)

// errInterrupted is returned by a command that stopped on a signal after
// saying so itself.
var errInterrupted = errors.New("interrupted")

// usageErr is an error in the command line.
type usageErr struct{ err error }

func (e *usageErr) Error() string { return e.err.Error() }
func (e *usageErr) Unwrap() error { return e.err }

// exitCode is the process's exit status after err.
func exitCode(err error) int {
	var u *usageErr
	switch {
	case err == nil:
		return 0
	case errors.As(err, &u):
		return exitUsage
	case errors.Is(err, errInterrupted), errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	return exitFailure
}

// newApp returns the command line application with all its commands.
func newApp() *cli.App {
	app := &cli.App{
		Name:    "edema",
		Usage:   "retinal edema segmentation and detection in OCT scans",
		Version: moduleVersion(),
		Commands: []*cli.Command{
			// In the order of the workflow; each lives in its own file.
			demoCommand(),
			reproduceCommand(),
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
			serveCommand(),
			versionCommand(),
			completionCommand(),
		},
		Flags: []cli.Flag{
			&cli.Int64Flag{
				Name:    "host-cache-mb",
				Usage:   "MiB of freed CPU tensor memory kept for reuse (0: none; default: three quarters of the machine's memory)",
				EnvVars: []string{"EDEMA_HOST_CACHE_MB"},
				Value:   -1,
			},
		},
		Before: enableHostCache,
		// Shell completion (edema completion) asks the command what comes next.
		EnableBashCompletion: true,
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
		requireFlags(c)
	}
	// Anything that is not a command is an unknown one.
	app.Action = func(c *cli.Context) error {
		if c.NArg() == 0 {
			return cli.ShowAppHelp(c)
		}
		msg := fmt.Sprintf("unknown command %s", c.Args().First())
		if cli.SuggestCommand != nil {
			cli.SuggestDidYouMeanTemplate = "%s" // the name alone, for this sentence
			if s := cli.SuggestCommand(c.App.Commands, c.Args().First()); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
		}
		return &usageErr{fmt.Errorf("%s; the commands are listed by edema --help", msg)}
	}
	cli.VersionPrinter = func(c *cli.Context) { fmt.Fprint(c.App.Writer, versionText()) }
	return app
}

// requireFlags checks the required flags of c itself, so that a missing
// one is one error line with the command's name, like every other usage
// error, and marks them in --help.
func requireFlags(c *cli.Command) {
	var required []string
	for _, f := range c.Flags {
		if r, ok := f.(interface{ IsRequired() bool }); ok && r.IsRequired() {
			name := f.Names()[0]
			required = append(required, name)
			sf, ok := f.(*cli.StringFlag)
			if !ok {
				panic(fmt.Sprintf("%s --%s: only string flags are required ones", c.Name, name))
			}
			sf.Required, sf.Usage = false, sf.Usage+" (required)"
		}
	}
	if len(required) == 0 {
		return
	}
	before := c.Before
	c.Before = func(ctx *cli.Context) error {
		var missing []string
		for _, name := range required {
			if !ctx.IsSet(name) {
				missing = append(missing, "--"+name)
			}
		}
		switch len(missing) {
		case 0:
		case 1:
			return &usageErr{fmt.Errorf("%s: %s is required (see --help)", c.Name, missing[0])}
		default:
			return &usageErr{fmt.Errorf("%s: %s are required (see --help)", c.Name, strings.Join(missing, ", "))}
		}
		if before != nil {
			return before(ctx)
		}
		return nil
	}
}

// moduleVersion is edema's version as the Go build recorded it: the module
// version of an installed release, else the source revision.
func moduleVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, modified := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified {
		rev += "+modified"
	}
	return "devel " + rev
}

// versionText says what edema, Go and libtorch this binary runs on.
func versionText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "edema %s\n", moduleVersion())
	fmt.Fprintf(&b, "go %s %s/%s\n", strings.TrimPrefix(runtime.Version(), "go"), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "libtorch %s\n", torch.Version())
	if torch.CUDAIsAvailable() {
		fmt.Fprintf(&b, "CUDA available, %d device(s)\n", torch.CUDADeviceCount())
	} else {
		b.WriteString("CUDA not available\n")
	}
	return b.String()
}

// versionCommand prints versionText, as --version does.
func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the versions of edema, Go and libtorch, and whether CUDA is available",
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return &usageErr{fmt.Errorf("version: unexpected argument %q", c.Args().First())}
			}
			_, err := fmt.Fprint(c.App.Writer, versionText())
			return err
		},
	}
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
	return &usageErr{fmt.Errorf("%w (see --help)", err)}
}
