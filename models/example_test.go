package models_test

import (
	"fmt"

	"github.com/edema/edema/models"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/nn"
)

// A network as the original builds it, run on one normalised 3-channel
// slice (the slice and its neighbours, H and W multiples of 16).
func ExampleNew() {
	torch.ManualSeed(1234) // the weights torch.manual_seed(1234) gives in PyTorch
	m, err := models.New(models.NameUNetNested)
	if err != nil {
		panic(err)
	}
	defer m.Free()
	m.Eval()

	x := torch.Zeros([]int64{1, 3, 64, 32}, torch.Float32CPU)
	seg, det, err := m.Forward(x)
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Name(), m.NumParameters(), "parameters")
	fmt.Println("log-probabilities", seg.Shape(), "detection probabilities", det.Shape())
	// Output:
	// unet_nested 2953027 parameters
	// log-probabilities [1 4 64 32] detection probabilities [1 3]
}

// The detector of the original's table, torchvision's ResNet-18 with a
// 512→3 classifier, started from ImageNet weights as `--pretrained` would:
// the weights of resnet18-f37072fd.pth (a torch.save state dict) but the
// classifier's.
func ExampleLoadPretrainedResNet18() {
	store := nn.NewStore()
	defer store.Free()
	detector := models.NewResNet18(store.Root())
	fmt.Println(store.NumParameters(), "parameters")

	if c, err := models.ReadCheckpoint("resnet18-f37072fd.pth"); err == nil {
		weights, err := nn.NamedFromHost(c.StateDict)
		if err != nil {
			panic(err)
		}
		if err := models.LoadPretrainedResNet18(store, weights); err != nil {
			panic(err)
		}
	}
	store.Eval()
	torch.InferenceMode(func() {
		p := detector.Detect(torch.Zeros([]int64{2, 3, 256, 128}, torch.Float32CPU))
		fmt.Println("detection probabilities", p.Shape())
	})
	// Output:
	// 11178051 parameters
	// detection probabilities [2 3]
}
