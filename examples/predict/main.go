// Command predict segments OCT slices with an edema checkpoint: the
// smallest program that embeds edema's inference.
//
//	predict -checkpoint model_best.pth.tar -image 1.bmp [-info info.json] [-mask mask.png]
//
// The image is a B-scan BMP or PNG, a 3-channel neighbour stack PNG, a
// cube (.zip of 1.bmp … S.bmp, .npy, or a folder of B-scans). Checkpoints
// that edema writes record the normalisation they were trained with; the
// original's need the info.json of their training set.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"io"
	"os"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
)

func main() {
	ckpt := flag.String("checkpoint", "", "checkpoint to run (required)")
	image := flag.String("image", "", "slice or cube to segment (required)")
	info := flag.String("info", "", "info.json with the training set's normalisation, for the original's checkpoints")
	mask := flag.String("mask", "", "write the first slice's classes to this PNG")
	flag.Parse()
	if err := run(os.Stdout, *ckpt, *image, *info, *mask); err != nil {
		fmt.Fprintln(os.Stderr, "predict:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, ckpt, image, infoPath, mask string) error {
	if ckpt == "" || image == "" {
		return errors.New("give -checkpoint and -image")
	}
	var info *oct.Info
	if infoPath != "" {
		i, err := oct.ReadInfo(infoPath)
		if err != nil {
			return err
		}
		info = &i
	}
	dep, err := inference.LoadDeployment(ckpt, info, torch.CPU, inference.Options{})
	if err != nil {
		return err
	}
	defer dep.Free()
	cube, err := inference.ReadCube(image)
	if err != nil {
		return err
	}
	pred, err := dep.Segment(context.Background(), cube)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: %d slice(s) of %d×%d, %s\n", cube.Name, pred.Slices, cube.W, cube.H, dep)
	for i := range pred.Slices {
		areas := inference.ClassAreas(pred, i)
		fmt.Fprintf(w, "slice %d:", i+1)
		for l, name := range oct.LesionNames {
			fmt.Fprintf(w, " %s p=%.3f %d px", name, pred.Detections[i*oct.NumLesions+l], areas[l+1])
		}
		fmt.Fprintln(w)
	}
	if mask == "" {
		return nil
	}
	img, err := inference.SliceLabels(pred, 0)
	if err != nil {
		return err
	}
	f, err := os.Create(mask)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
