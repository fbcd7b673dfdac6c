package main

import (
	"fmt"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/edema/edema/oct"
)

// listsCommand writes the list folder of a prepared data folder.
func listsCommand() *cli.Command {
	return &cli.Command{
		Name:  "lists",
		Usage: "write the list files, info.json and info_test.json of a prepared data folder",
		Description: "Writes train_images.txt and train_labels.txt (one slice a line), val_images.txt,\n" +
			"val_labels.txt and test_images.txt (one cube a line), and the per-channel mean and\n" +
			"standard deviation of the training (info.json) and test (info_test.json) stacks.\n" +
			"Run `edema prep` first.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Required: true, Usage: "data folder (DATA_DIR)"},
			&cli.StringFlag{Name: "list-dir", Aliases: []string{"l"}, Required: true, Usage: "list folder to write (LIST_DIR)"},
			workersFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("lists: unexpected argument %q", c.Args().First())
			}
			listDir := c.String("list-dir")
			progress := newPassProgress(c.App.ErrWriter, "lists")
			s, err := oct.WriteLists(c.String("data-dir"), listDir, c.Int("workers"), progress.report)
			progress.close()
			if err != nil {
				return fmt.Errorf("lists: %w", err)
			}
			w := c.App.Writer
			if s.Info != nil {
				fmt.Fprintf(w, "%s, %s: %d training slices\n", oct.TrainImagesList, oct.TrainLabelsList, s.TrainSlices)
				fmt.Fprintf(w, "%s: mean %.6f %.6f %.6f, std %.6f %.6f %.6f\n", oct.InfoFile,
					s.Info.Mean[0], s.Info.Mean[1], s.Info.Mean[2], s.Info.Std[0], s.Info.Std[1], s.Info.Std[2])
			}
			if s.ValCubes > 0 {
				fmt.Fprintf(w, "%s, %s: %d validation cubes\n", oct.ValImagesList, oct.ValLabelsList, s.ValCubes)
			}
			if s.TestInfo != nil {
				fmt.Fprintf(w, "%s: %d test cubes\n", oct.TestImagesList, s.TestCubes)
				fmt.Fprintf(w, "%s: mean %.6f %.6f %.6f, std %.6f %.6f %.6f\n", oct.TestInfoFile,
					s.TestInfo.Mean[0], s.TestInfo.Mean[1], s.TestInfo.Mean[2], s.TestInfo.Std[0], s.TestInfo.Std[1], s.TestInfo.Std[2])
			}
			fmt.Fprintf(w, "written to %s\n", filepath.Clean(listDir))
			return nil
		},
	}
}
