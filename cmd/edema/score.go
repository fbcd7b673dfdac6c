package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/edema/edema/submission"
)

// scoreCommand computes the challenge's official score of a submission.
func scoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "score",
		Usage: "compute the challenge's official score of a submission against a reference",
		Description: "Scores a submission (submission.zip or a folder holding <CUBE>_labelMark_volumes.npy and\n" +
			"<CUBE>_labelMark_detections.npy per cube) against a reference folder holding <CUBE>_volumes.npy\n" +
			"and <CUBE>_detections.npy per cube, such as Edema_validationset/groundtruth. Per lesion class\n" +
			"it prints the detection AUC (over all slices of all cubes together, as the organisers' scorer)\n" +
			"and the segmentation Dice (per cube, averaged over cubes), their averages and the leaderboard\n" +
			"score, (detection + segmentation) / 2; beside them, not scored, the mean of the per-cube AUCs.\n" +
			"A figure the organisers' scorer could not compute is n/a, with a note saying why.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "submit", Aliases: []string{"s"}, Required: true, Usage: "submission: a .zip file or a folder"},
			&cli.StringFlag{Name: "ref", Aliases: []string{"r"}, Required: true, Usage: "reference folder (ground truth)"},
			&cli.BoolFlag{Name: "per-cube", Usage: "also print the figures of each cube"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("score: unexpected argument %q", c.Args().First())
			}
			progress := newPassProgress(c.App.ErrWriter, "score")
			r, err := submission.Score(c.String("submit"), c.String("ref"), progress.report)
			progress.close()
			if err != nil {
				return fmt.Errorf("score: %w", err)
			}
			out := c.App.Writer
			if c.Bool("json") {
				return writeJSONTo(out, newScoreJSON(r))
			}
			if c.Bool("per-cube") {
				if err := r.WriteCubeTable(out); err != nil {
					return err
				}
				fmt.Fprintln(out)
			}
			return r.WriteTable(out)
		},
	}
}
