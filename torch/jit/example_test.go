package jit_test

import (
	"fmt"
	"log"

	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/jit"
)

// A module saved in Python with
//
//	torch.jit.trace(net.eval(), torch.randn(1, 3, 256, 128)).save("net.pt")
//
// runs in Go on a batch; a network of edema's returns its segmentation
// log-probabilities and detection probabilities as a tuple.
func Example() {
	m, err := jit.Load("net.pt", torch.CPU)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Free()
	if err := m.Eval(); err != nil {
		log.Fatal(err)
	}
	torch.InferenceMode(func() {
		x := torch.Randn([]int64{2, 3, 256, 128}, torch.Options{DType: torch.Float32})
		out, err := m.Forward(x)
		if err != nil {
			log.Fatal(err)
		}
		outputs := out.(jit.Tuple)
		seg, det := outputs[0].(*torch.Tensor), outputs[1].(*torch.Tensor)
		fmt.Println(seg.Shape(), det.Shape())
	})
}
