package inference_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/edema/edema/inference"
	"github.com/edema/edema/models"
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
