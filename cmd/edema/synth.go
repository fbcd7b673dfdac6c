package main

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/edema/edema/oct"
	"github.com/edema/edema/oct/synth"
)

// synthCommand writes a synthetic data set in the layout of the real one.
func synthCommand() *cli.Command {
	def := synth.DefaultOptions()
	return &cli.Command{
		Name:  "synth",
		Usage: "write a synthetic OCT data set in the challenge's layout, ready for training",
		Description: "Writes Edema_trainingset, Edema_validationset (with groundtruth/) and Edema_testset under\n" +
			"--out, with B-scans, label masks and 3-channel stacks, the test set's reference files in\n" +
			"test_groundtruth/ (outside the data layout, for scoring) and the list folder data_path/\n" +
			"(list files, info.json, info_test.json). The same seed gives the same files.\n" +
			"Real-size cubes: --width 512 --height 1024 --slices 128.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Required: true, Usage: "output folder (new or empty)"},
			&cli.IntFlag{Name: "train", Value: def.Train, Usage: "training cubes"},
			&cli.IntFlag{Name: "val", Value: def.Val, Usage: "validation cubes"},
			&cli.IntFlag{Name: "test", Value: def.Test, Usage: "test cubes"},
			&cli.IntFlag{Name: "slices", Value: def.Slices, Usage: "B-scans per cube"},
			&cli.IntFlag{Name: "width", Value: def.Width, Usage: "B-scan width in pixels, a multiple of 16"},
			&cli.IntFlag{Name: "height", Value: def.Height, Usage: "B-scan height in pixels, a multiple of 16"},
			&cli.Uint64Flag{Name: "seed", Value: def.Seed, Usage: "random seed"},
			workersFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("synth: unexpected argument %q", c.Args().First())
			}
			o := synth.Options{
				Train: c.Int("train"), Val: c.Int("val"), Test: c.Int("test"),
				Slices: c.Int("slices"), Width: c.Int("width"), Height: c.Int("height"),
				Seed: c.Uint64("seed"), Workers: c.Int("workers"),
			}
			progress := newPassProgress(c.App.ErrWriter, "synth")
			o.Progress = progress.report
			start := time.Now()
			r, err := synth.Generate(c.String("out"), o)
			progress.close()
			if err != nil {
				return fmt.Errorf("synth: %w", err)
			}
			printSynthReport(c.App.Writer, r, o, time.Since(start))
			return nil
		},
	}
}

func printSynthReport(w io.Writer, r *synth.Report, o synth.Options, took time.Duration) {
	fmt.Fprintf(w, "wrote %d cubes of %d slices of %d×%d (width×height) to %s in %.1fs\n",
		len(r.Cubes), o.Slices, o.Width, o.Height, r.Dir, took.Seconds())
	for _, set := range oct.Sets {
		var cubes, slices int
		var with [oct.NumLesions]int
		for _, c := range r.Cubes {
			if c.Set != set {
				continue
			}
			cubes++
			slices += c.Slices
			for l := range with {
				with[l] += c.SlicesWith[l]
			}
		}
		if cubes == 0 {
			continue
		}
		fmt.Fprintf(w, "  %-20s %3d cubes, %5d slices; slices with REA %d, SRF %d, PED %d\n",
			set, cubes, slices, with[0], with[1], with[2])
	}
	if o.Val > 0 {
		fmt.Fprintf(w, "  validation reference: %s\n", filepath.Join(r.Dir, filepath.FromSlash(oct.Validation.GroundTruthDir())))
	}
	if o.Test > 0 {
		fmt.Fprintf(w, "  test reference:       %s\n", filepath.Join(r.Dir, synth.TestGroundTruth))
	}
	fmt.Fprintf(w, "  lists:                %s (%d training slices)\n", filepath.Join(r.Dir, synth.ListDir), r.Lists.TrainSlices)
	fmt.Fprintf(w, "data folder (-d): %s  list folder (-l): %s\n", r.Dir, filepath.Join(r.Dir, synth.ListDir))
}
