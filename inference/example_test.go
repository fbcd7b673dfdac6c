package inference_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"os"
	"path/filepath"

	"golang.org/x/image/bmp"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/models"
	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
)

// Load a checkpoint (the original's, or one edema wrote) and predict a
// batch of normalised slices: per pixel the most probable class (0
// background, 1 REA, 2 SRF, 3 PED), per slice the probability of each
// lesion. A Predictor may serve many goroutines at once.
func ExampleLoad() {
	dir, err := os.MkdirTemp("", "edema-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	// A checkpoint to load: an untrained UNet, saved as training saves.
	ckpt := filepath.Join(dir, "model_best.pth.tar")
	m, err := models.New(models.NameUNet)
	if err != nil {
		panic(err)
	}
	if err := models.SaveCheckpoint(ckpt, m, &models.CheckpointMeta{Epoch: 1}, nil, models.SaveOptions{}); err != nil {
		panic(err)
	}
	m.Free()

	p, err := inference.Load([]inference.Spec{{Name: models.NameUNet, Checkpoint: ckpt, Weight: 1}}, torch.CPU, inference.Options{})
	if err != nil {
		panic(err)
	}
	defer p.Free()
	const slices, h, w = 2, 32, 16
	images := make([]float32, slices*3*h*w) // normalised as info.json says
	pred, err := p.Predict(images, slices, h, w)
	if err != nil {
		panic(err)
	}
	fmt.Println(p)
	fmt.Println(len(pred.Labels), "labels,", len(pred.Detections), "detection probabilities")
	// Output:
	// unet
	// 1024 labels, 6 detection probabilities
}

// Segment one uploaded slice, a B-scan BMP as the challenge ships them,
// and turn the prediction into pictures: the class map as a paletted image
// (pixel value = class) and the slice with its lesions painted over it.
// DecodeCube also reads a cube as a .zip of 1.bmp … S.bmp or a .npy;
// ReadCube a file or a folder of B-scans.
func ExampleDeployment_Segment() {
	// A deployment: a network and the normalisation of its training set.
	// LoadDeployment reads both from a checkpoint that edema wrote.
	m, err := models.New(models.NameUNet)
	if err != nil {
		panic(err)
	}
	defer m.Free()
	p, err := inference.New([]inference.Member{{Network: m, Weight: 1}}, inference.Options{})
	if err != nil {
		panic(err)
	}
	info := oct.Info{Mean: [3]float64{0.3, 0.3, 0.3}, Std: [3]float64{0.2, 0.2, 0.2}}
	norm, err := oct.NewNormalizer(info)
	if err != nil {
		panic(err)
	}
	dep := &inference.Deployment{Predictor: p, Info: info, Normalizer: norm}

	// An upload: a 32×64 B-scan BMP.
	var upload bytes.Buffer
	if err := bmp.Encode(&upload, image.NewGray(image.Rect(0, 0, 32, 64))); err != nil {
		panic(err)
	}
	cube, err := inference.DecodeCube("upload.bmp", upload.Bytes())
	if err != nil {
		panic(err)
	}
	pred, err := dep.Segment(context.Background(), cube)
	if err != nil {
		panic(err)
	}
	labels, err := inference.SliceLabels(pred, 0)
	if err != nil {
		panic(err)
	}
	overlay, err := inference.SliceOverlay(cube, pred, 0)
	if err != nil {
		panic(err)
	}
	areas := inference.ClassAreas(pred, 0)
	fmt.Println(cube.Slices(), "slice;", len(pred.Detections), "detection probabilities")
	fmt.Println("labels", labels.Bounds().Size(), "overlay", overlay.Bounds().Size())
	fmt.Println("pixels in all:", areas[0]+areas[1]+areas[2]+areas[3])
	// Output:
	// 1 slice; 3 detection probabilities
	// labels (32,64) overlay (32,64)
	// pixels in all: 2048
}
