package main

import (
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"

	"github.com/edema/edema/oct"
)

// workersFlag bounds the files read or written at once.
func workersFlag() cli.Flag {
	return &cli.IntFlag{Name: "workers", Aliases: []string{"j"}, Value: runtime.NumCPU(), Usage: "files processed at once"}
}

// prepCommand makes the 3-channel stacks of a data folder.
func prepCommand() *cli.Command {
	return &cli.Command{
		Name:  "prep",
		Usage: "make trans3channel_images (neighbour-slice stacks) from original_images",
		Description: "For every set of DATA_DIR (Edema_trainingset, Edema_validationset, Edema_testset) turns\n" +
			"original_images/<CUBE>.img/<k>.bmp into trans3channel_images/<CUBE>.img/<k-1>.png holding\n" +
			"slices (k+1, k, k-1) as (red, green, blue), as the original preprocessing did.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Required: true, Usage: "data folder (DATA_DIR)"},
			workersFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("prep: unexpected argument %q", c.Args().First())
			}
			progress := newPassProgress(c.App.ErrWriter, "prep")
			stats, err := oct.Prep(c.String("data-dir"), c.Int("workers"), progress.report)
			progress.close()
			if err != nil {
				return fmt.Errorf("prep: %w", err)
			}
			for _, s := range stats {
				fmt.Fprintf(c.App.Writer, "%s: %d cubes, %d stacks written to %s\n", s.Set, s.Cubes, s.Slices, oct.StackImages)
			}
			return nil
		},
	}
}
