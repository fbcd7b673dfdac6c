package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/edema/edema/reproduce"
	"github.com/edema/edema/torch"
)

// reproduceCommand trains and scores every row of the original's table.
func reproduceCommand() *cli.Command {
	return &cli.Command{
		Name:  "reproduce",
		Usage: "train and score every row of the original's results table, beside the published figures",
		Description: "Trains the seven rows of the original's results table (ResNet-18 with BCE, UNet with WCE+Dice,\n" +
			"UNet multi-task, UNet++ with mix_3 and mix_33, dilated UNet++, and the fusion of UNet++ and UNet)\n" +
			"with the published recipes (UNet++'s where the original gives none, said so in reproduce.md),\n" +
			"evaluates each on the validation cubes and, with --test-truth (or on synthetic data), on the test\n" +
			"cubes with the challenge's scoring, and prints the table beside the published figures; figures of\n" +
			"a task a row does not do are absent (–). Without -d and -l it runs on a synthetic data set. Run\n" +
			"it again to continue where it stopped: each row's training resumes, and rows done are kept.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Usage: "DATA_DIR (default: a synthetic data set in OUT/data)"},
			&cli.StringFlag{Name: "list-dir", Aliases: []string{"l"}, Usage: "LIST_DIR with the list files and info.json"},
			&cli.StringFlag{Name: "test-truth", Usage: "the test cubes' ground truth in the organisers' format, for the test columns"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Value: filepath.Join("result", "reproduce"), Usage: "output folder"},
			&cli.BoolFlag{Name: "quick", Usage: "each row 2 epochs of at most 6 steps on a small synthetic set: minutes on a CPU"},
			&cli.StringFlag{Name: "pretrained", Usage: "torchvision's ImageNet ResNet-18 (resnet18-f37072fd.pth) for the detector (default: from scratch)"},
			&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu | cuda | cuda:N"},
			&cli.Uint64Flag{Name: "seed", Value: 1234, Usage: "training seed"},
			&cli.IntFlag{Name: "threads", Usage: "libtorch threads", DefaultText: "all CPUs"},
			workersFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := runReproduce(c); err != nil {
				return fmt.Errorf("reproduce: %w", err)
			}
			return nil
		},
	}
}

func runReproduce(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", c.Args().First())
	}
	device, err := torch.ParseDevice(c.String("device"))
	if err != nil {
		return fmt.Errorf("--device: %w", err)
	}
	o := reproduce.Options{
		DataDir: c.String("data-dir"), ListDir: c.String("list-dir"), TestTruth: c.String("test-truth"),
		Out: c.String("out"), Quick: c.Bool("quick"), Pretrained: c.String("pretrained"),
		Device: device, Seed: c.Uint64("seed"), Threads: c.Int("threads"), Workers: c.Int("workers"),
	}
	if (o.DataDir == "") != (o.ListDir == "") {
		return &usageErr{errors.New("reproduce: --data-dir and --list-dir go together (neither: synthetic data) (see --help)")}
	}
	if o.Quick && o.DataDir != "" {
		return &usageErr{errors.New("reproduce: --quick runs on its own synthetic data set: leave out --data-dir and --list-dir (see --help)")}
	}
	// The table on stdout; the stages, epochs and (on a terminal) the
	// bars of each pass on stderr.
	w, status := c.App.Writer, c.App.ErrWriter
	o.Log = status
	if isTerminal(status) {
		bars := newPassProgress(status, "reproduce")
		defer bars.close()
		o.Log, o.Progress = bars, bars.report
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	results, err := reproduce.Run(ctx, o)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(status, "reproduce: interrupted; run the same command again to continue")
			return errInterrupted
		}
		return err
	}
	if err := reproduce.WriteTable(w, results); err != nil {
		return err
	}
	fmt.Fprintf(w, "table: %s\n", filepath.Join(o.Out, reproduce.TableName))
	return nil
}
