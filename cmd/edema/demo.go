package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/edema/edema/demo"
	"github.com/edema/edema/torch"
)

// demoCommand runs the whole pipeline on a synthetic data set.
func demoCommand() *cli.Command {
	def, quick := demo.DefaultOptions(), demo.QuickOptions()
	const sized = "as the chosen size"
	return &cli.Command{
		Name:  "demo",
		Usage: "run the whole pipeline on synthetic data: synthesise, train UNet++ and UNet, evaluate, fuse, submit, score",
		Description: "Synthesises a small data set in the challenge's layout, trains UNet++ (mix_33 loss, poly\n" +
			"schedule) and UNet (mix_3) briefly, evaluates each, their 0.5/0.5 fusion and the fusion with\n" +
			"flip test-time augmentation on the validation cubes (and an untrained UNet, for scale), writes\n" +
			"slice pictures, the fusion's test submission and its official score against the synthetic\n" +
			"test ground truth, and ends with a table of Dice and AUC per model.\n\n" +
			fmt.Sprintf("Default: %d training cubes of %d slices of %d×%d, UNet++ %d epochs and UNet %d, batches of %d.\n",
				def.Data.Train, def.Data.Slices, def.Data.Width, def.Data.Height, def.Epochs, 2*def.Epochs, def.BatchSize) +
			fmt.Sprintf("--quick: %d training cubes of %d slices of %d×%d, UNet++ %d epochs and UNet %d, batches of %d.\n",
				quick.Data.Train, quick.Data.Slices, quick.Data.Width, quick.Data.Height, quick.Epochs, 2*quick.Epochs, quick.BatchSize) +
			"The size flags override either; unset, they take the chosen size's values.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Value: def.Out, Usage: "output folder (new or empty)"},
			&cli.StringFlag{Name: "device", Value: "cpu", Usage: "cpu | cuda | cuda:N"},
			&cli.BoolFlag{Name: "quick", Usage: "a reduced demo, for continuous integration"},
			&cli.IntFlag{Name: "epochs", Usage: "training epochs of UNet++ (UNet gets twice as many)", DefaultText: sized},
			&cli.IntFlag{Name: "train", Usage: "training cubes", DefaultText: sized},
			&cli.IntFlag{Name: "slices", Usage: "slices per cube", DefaultText: sized},
			&cli.IntFlag{Name: "width", Usage: "slice width, a multiple of 16", DefaultText: sized},
			&cli.IntFlag{Name: "height", Usage: "slice height, a multiple of 16", DefaultText: sized},
			&cli.IntFlag{Name: "batch-size", Usage: "training slices per step", DefaultText: sized},
			&cli.Float64Flag{Name: "lr", Usage: "Adam's initial learning rate", DefaultText: sized},
			&cli.IntFlag{Name: "max-steps-per-epoch", Usage: "train at most this many steps an epoch", DefaultText: "all"},
			&cli.Uint64Flag{Name: "seed", Value: def.Seed, Usage: "training seed"},
			&cli.IntFlag{Name: "threads", Usage: "libtorch threads", DefaultText: "all CPUs"},
			workersFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := runDemo(c); err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			return nil
		},
	}
}

func runDemo(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", c.Args().First())
	}
	o := demo.DefaultOptions()
	if c.Bool("quick") {
		o = demo.QuickOptions()
	}
	device, err := torch.ParseDevice(c.String("device"))
	if err != nil {
		return fmt.Errorf("--device: %w", err)
	}
	o.Out, o.Device, o.Seed = c.String("out"), device, c.Uint64("seed")
	o.Threads, o.Workers = c.Int("threads"), c.Int("workers")
	for flag, dst := range map[string]*int{
		"epochs": &o.Epochs, "train": &o.Data.Train, "slices": &o.Data.Slices,
		"width": &o.Data.Width, "height": &o.Data.Height, "max-steps-per-epoch": &o.MaxStepsPerEpoch,
		"batch-size": &o.BatchSize,
	} {
		if c.IsSet(flag) {
			*dst = c.Int(flag)
		}
	}
	if c.IsSet("lr") {
		o.LR = c.Float64("lr")
	}
	// The table on stdout; the stages, epochs and (on a terminal) the
	// bars of each pass on stderr.
	w, status := c.App.Writer, c.App.ErrWriter
	o.Log = status
	if isTerminal(status) {
		bars := newPassProgress(status, "demo")
		defer bars.close()
		o.Log, o.Progress = bars, bars.report
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := demo.Run(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := r.WriteTable(w); err != nil {
		return err
	}
	fmt.Fprintf(w, "demo finished in %s\n", r.Took.Round(time.Second))
	return r.WriteOutputs(w)
}
