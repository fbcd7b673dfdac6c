package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/submission"
)

// testCommand writes the challenge submission of the test cubes, as the
// original test.py does.
func testCommand() *cli.Command {
	return &cli.Command{
		Name:  "test",
		Usage: "predict the test cubes and write the challenge submission (volumes, detections, submission.zip)",
		Description: "Predicts every cube of LIST_DIR/test_images.txt (normalised with info_test.json) with one\n" +
			"network (--seg-name, --seg-path) or a fusion (--fusion, as for `edema eval`) and writes into\n" +
			"OUT (default result/test/NAME, or result/test/fusion), per cube, with --seg\n" +
			"<CUBE>_labelMark_volumes.npy (uint8 S×H×W, labels 0..3) and with --det\n" +
			"<CUBE>_labelMark_detections.npy (float32 S×3, REA, SRF, PED probabilities per slice); with\n" +
			"both (the default when neither is given) also submission.zip, holding them at its top level.\n" +
			"`edema score --submit OUT/submission.zip --ref REFERENCE` scores it.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Required: true, Usage: "DATA_DIR, the data folder"},
			&cli.StringFlag{Name: "list-dir", Aliases: []string{"l"}, Required: true, Usage: "LIST_DIR, with test_images.txt and info_test.json"},
			&cli.StringFlag{Name: "out", Usage: "output folder (default: result/test/NAME or result/test/fusion)"},
			&cli.BoolFlag{Name: "seg", Usage: "write the label volumes"},
			&cli.BoolFlag{Name: "det", Usage: "write the detection probabilities"},
			workersFlag(),
		}, append(predictorFlags(), jobFlags()...)...),
		Action: func(c *cli.Context) error {
			if err := runTest(c); err != nil {
				return fmt.Errorf("test: %w", err)
			}
			return nil
		},
	}
}

func runTest(c *cli.Context) error {
	job, err := newPredictionJob(c, "test", oct.ReadTestList, oct.TestInfoFile)
	if err != nil || job == nil {
		return err
	}
	defer job.close()
	cubes, norm, p, out := job.cubes, job.norm, job.p, job.out
	seg, det := c.Bool("seg"), c.Bool("det")
	if !seg && !det { // what the network does
		seg, det = p.Tasks().Has(oct.Segmentation), p.Tasks().Has(oct.Detection)
	}
	// The files written on stdout; what test says while it works on stderr.
	w, status := job.dist.output(c.App.Writer), job.dist.output(c.App.ErrWriter)
	progress := newCubeProgress(status, "predicting", job.share(len(cubes)))
	opts := inference.SubmitOptions{Workers: c.Int("workers"), Volumes: seg, Detections: det, Progress: progress.done, Group: job.dist.group}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(status, "predicting %d test cubes with %s (%s, batch %d)\n", len(cubes), p, p.Device(), p.Options().BatchSize)
	zipPath, err := inference.WriteSubmission(ctx, p, c.String("data-dir"), cubes, norm, out, opts)
	progress.close()
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(status, "test: interrupted; the files of the cubes done are in place")
		return errInterrupted
	}
	if err != nil {
		return err
	}
	var files []string
	if seg {
		files = append(files, submission.VolumesFile("<CUBE>"))
	}
	if det {
		files = append(files, submission.DetectionsFile("<CUBE>"))
	}
	fmt.Fprintf(w, "wrote %s for %d cubes to %s\n", strings.Join(files, " and "), len(cubes), out)
	if zipPath != "" {
		fmt.Fprintf(w, "submission: %s\n", zipPath)
	}
	return nil
}
