package models_test

import (
	"fmt"

	"github.com/edema/edema/models"
	"github.com/edema/edema/torch"
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
