package losses

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edema/edema/internal/pytorchtest"
	"github.com/edema/edema/torch"

	"github.com/edema/edema/oct"
)

// referenceScript implements the losses of docs/ORIGINAL.md, "Losses" literally in PyTorch,
// class by class with a Python branch on absent classes as the original
// training code does, and WCE as the weighted sum over counted pixels
// (checked against F.nll_loss). For every case it writes the value of each
// loss and its gradients with respect to the segmentation logits before
// log_softmax and the detection logits before sigmoid.
const referenceScript = `
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F

WEIGHTS = torch.tensor([1.0, 5.0, 10.0, 20.0])
IGNORE = 255
GAMMA = 0.5


def wce(L, T):
    counted = T != IGNORE
    t = T[counted]
    logp = L.permute(0, 2, 3, 1)[counted]
    w = WEIGHTS[t]
    loss = (w * -logp.gather(1, t[:, None])[:, 0]).sum() / w.sum()
    ref = F.nll_loss(L, T, weight=WEIGHTS, ignore_index=IGNORE)
    assert torch.allclose(loss, ref, rtol=1e-5), (loss.item(), ref.item())
    return loss


def class_dice(L, T):
    P = torch.exp(L)
    dice = []
    for c in (1, 2, 3):
        t = (T == c).float()
        if t.sum() == 0:
            dice.append(torch.tensor(1.0))
        else:
            dice.append(2 * (P[:, c] * t).sum() / (P[:, c].sum() + t.sum()))
    return dice


def dice_loss(L, T):
    return 1 - sum(class_dice(L, T)) / 3


def el_dice_loss(L, T, literal=False):
    terms = []
    for d in class_dice(L, T):
        x = -torch.log(d)
        if not literal and x.item() <= 0:
            # Perfect (or absent) class: term 0 with no gradient, where the
            # literal x ** GAMMA has an infinite derivative.
            terms.append(torch.tensor(0.0))
        else:
            terms.append(x ** GAMMA)
    return sum(terms) / 3


def bce(D, Y):
    return F.binary_cross_entropy(D, Y)


LOSSES = {
    "wce": lambda L, T, D, Y: wce(L, T),
    "dice": lambda L, T, D, Y: dice_loss(L, T),
    "eldice": lambda L, T, D, Y: el_dice_loss(L, T),
    "bce": lambda L, T, D, Y: bce(D, Y),
    "mix_3": lambda L, T, D, Y: wce(L, T) + dice_loss(L, T) + bce(D, Y),
    "mix_33": lambda L, T, D, Y: wce(L, T) + el_dice_loss(L, T) + bce(D, Y),
    "mix_2": lambda L, T, D, Y: wce(L, T) + dice_loss(L, T),
    "eldice_literal": lambda L, T, D, Y: el_dice_loss(L, T, literal=True),
}

results = {}
for spec in sys.argv[1:]:
    name, n, h, w = spec.split(":")
    n, h, w = int(n), int(h), int(w)
    z0 = torch.from_numpy(np.fromfile(name + ".z", dtype="<f4").reshape(n, 4, h, w))
    T = torch.from_numpy(np.fromfile(name + ".t", dtype="<i8").reshape(n, h, w))
    a0 = torch.from_numpy(np.fromfile(name + ".a", dtype="<f4").reshape(n, 3))
    Y = torch.from_numpy(np.fromfile(name + ".y", dtype="<f4").reshape(n, 3))
    out = {}
    for loss_name, f in LOSSES.items():
        z = z0.clone().requires_grad_()
        a = a0.clone().requires_grad_()
        loss = f(F.log_softmax(z, dim=1), T, torch.sigmoid(a), Y)
        if loss.requires_grad:  # not when every term is a constant
            loss.backward()
        gz = z.grad if z.grad is not None else torch.zeros_like(z)
        ga = a.grad if a.grad is not None else torch.zeros_like(a)
        finite = bool(torch.isfinite(gz).all() and torch.isfinite(ga).all())
        out[loss_name] = {"value": loss.item(), "finite": finite}
        if finite:
            out[loss_name].update(grad_z=gz.flatten().tolist(), grad_a=ga.flatten().tolist())
    out["class_dice"] = [d.item() for d in class_dice(F.log_softmax(z0, dim=1), T)]
    results[name] = out
json.dump(results, sys.stdout, allow_nan=False)
`

type referenceLoss struct {
	Value  float64   `json:"value"`
	GradZ  []float64 `json:"grad_z"`
	GradA  []float64 `json:"grad_a"`
	Finite bool      `json:"finite"`
}

// batch is one test input: segmentation logits z (before log_softmax),
// labels, detection logits a (before sigmoid) and detection targets.
type batch struct {
	name    string
	n, h, w int
	z       []float32
	labels  []int64
	a       []float32
	y       []float32
}

// randomBatch draws logits from N(0, 2²) and labels uniformly from
// classes, with a fraction of ignored pixels.
func randomBatch(rng *rand.Rand, name string, n, h, w int, classes []int64, ignored float64) batch {
	b := batch{name: name, n: n, h: h, w: w}
	b.z = make([]float32, n*oct.NumClasses*h*w)
	for i := range b.z {
		b.z[i] = float32(2 * rng.NormFloat64())
	}
	b.labels = make([]int64, n*h*w)
	for i := range b.labels {
		b.labels[i] = classes[rng.IntN(len(classes))]
		if rng.Float64() < ignored {
			b.labels[i] = int64(oct.IgnoreClass)
		}
	}
	b.a = make([]float32, n*oct.NumLesions)
	for i := range b.a {
		b.a[i] = float32(1.5 * rng.NormFloat64())
	}
	b.y = presence(b.labels, n)
	return b
}

// perfectBatch predicts every label with a margin of 50, which makes P
// exactly one-hot in float32 and every present class's dice exactly 1.
func perfectBatch(rng *rand.Rand, name string, n, h, w int) batch {
	b := randomBatch(rng, name, n, h, w, []int64{0, 1, 2, 3}, 0)
	hw := h * w
	for i, l := range b.labels {
		img, px := i/hw, i%hw
		for c := range oct.NumClasses {
			v := float32(0)
			if int64(c) == l {
				v = 50
			}
			b.z[(img*oct.NumClasses+c)*hw+px] = v
		}
	}
	return b
}

// presence is the detection target of docs/ORIGINAL.md, "Data": 1 where a lesion class
// occurs in the image's labels.
func presence(labels []int64, n int) []float32 {
	y := make([]float32, n*oct.NumLesions)
	per := len(labels) / n
	for i, l := range labels {
		if l >= 1 && l <= oct.NumLesions {
			y[(i/per)*oct.NumLesions+int(l)-1] = 1
		}
	}
	return y
}

func (b batch) write(t *testing.T, dir string) {
	for ext, data := range map[string]any{".z": b.z, ".t": b.labels, ".a": b.a, ".y": b.y} {
		f, err := os.Create(filepath.Join(dir, b.name+ext))
		require.NoError(t, err)
		require.NoError(t, binary.Write(f, binary.LittleEndian, data))
		require.NoError(t, f.Close())
	}
}

func (b batch) spec() string { return fmt.Sprintf("%s:%d:%d:%d", b.name, b.n, b.h, b.w) }

// goLoss evaluates one loss of the package on the batch and returns its
// value and gradients, the way referenceScript does.
func goLoss(t *testing.T, b batch, lossName string) (value float64, gradZ, gradA []float32) {
	t.Helper()
	s := torch.NewScope()
	defer s.Close()
	z := torch.FromSlice(b.z, int64(b.n), oct.NumClasses, int64(b.h), int64(b.w)).SetRequiresGrad(true)
	a := torch.FromSlice(b.a, int64(b.n), oct.NumLesions).SetRequiresGrad(true)
	logp := torch.LogSoftmax(z, 1)
	labels := torch.FromSlice(b.labels, int64(b.n), int64(b.h), int64(b.w))
	prob := a.Sigmoid()
	target := torch.FromSlice(b.y, int64(b.n), oct.NumLesions)

	var loss *torch.Tensor
	var err error
	switch lossName {
	case "wce":
		loss, err = WCE(logp, labels)
	case "dice":
		loss, err = Dice(logp, labels)
	case "eldice":
		loss, err = ExpLogDice(logp, labels)
	case "bce":
		loss, err = BCE(prob, target)
	case "loss bce":
		// The combined loss of the detector: the network has no
		// segmentation output to give.
		var l Loss
		l, err = New(BCEOnly)
		require.NoError(t, err)
		var terms Terms
		terms, err = l.Compute(nil, nil, prob, target)
		loss = terms.Total
	default:
		var l Loss
		l, err = New(lossName)
		require.NoError(t, err)
		var terms Terms
		terms, err = l.Compute(logp, labels, prob, target)
		loss = terms.Total
	}
	require.NoError(t, err)
	require.Empty(t, loss.Shape(), "%s is not a scalar", lossName)
	loss.Backward()
	gradZ = make([]float32, len(b.z))
	if g := z.Grad(); g != nil {
		gradZ = g.Float32s()
	}
	gradA = make([]float32, len(b.a))
	if g := a.Grad(); g != nil {
		gradA = g.Float32s()
	}
	return loss.Item(), gradZ, gradA
}

const rtol = 1e-5

// requireClose compares a value with the reference within rtol relative
// (with an absolute floor of a few float32 ulps of 1, for values near 0).
func requireClose(t *testing.T, want, got float64, msg string) {
	t.Helper()
	require.LessOrEqual(t, math.Abs(got-want), rtol*math.Abs(want)+1e-7,
		"%s: got %.9g, reference %.9g", msg, got, want)
}

// requireGradClose compares a gradient with the reference element by
// element within rtol of the element plus rtol of the gradient's largest
// magnitude: float32 sums over the batch in a different order differ by
// rounding relative to the terms summed, not to each result.
func requireGradClose(t *testing.T, want []float64, got []float32, msg string) {
	t.Helper()
	require.Len(t, got, len(want), msg)
	scale := 0.0
	for _, v := range want {
		scale = math.Max(scale, math.Abs(v))
	}
	worst, at := 0.0, -1
	for i := range want {
		d := math.Abs(float64(got[i])-want[i]) - rtol*math.Abs(want[i]) - rtol*scale
		require.False(t, math.IsNaN(float64(got[i])), "%s: element %d is NaN", msg, i)
		if d > worst {
			worst, at = d, i
		}
	}
	if at >= 0 {
		t.Fatalf("%s: element %d is %.9g, reference %.9g (largest reference magnitude %.3g)",
			msg, at, got[at], want[at], scale)
	}
}

func TestLossesMatchPyTorch(t *testing.T) {
	rng := rand.New(rand.NewPCG(2018, 4))
	all := []int64{0, 1, 2, 3}
	batches := []batch{
		randomBatch(rng, "all_classes_ignore", 2, 8, 16, all, 0.05),
		randomBatch(rng, "class2_absent", 3, 8, 8, []int64{0, 1, 3}, 0.1),
		randomBatch(rng, "classes13_absent", 2, 8, 8, []int64{0, 0, 0, 2}, 0),
		randomBatch(rng, "background_only", 2, 8, 8, []int64{0}, 0),
		randomBatch(rng, "background_ignore", 2, 8, 8, []int64{0}, 0.2),
		randomBatch(rng, "single_image", 1, 16, 8, all, 0.05),
		randomBatch(rng, "single_image_rare", 1, 16, 16, []int64{0, 0, 0, 0, 0, 0, 0, 3}, 0),
		randomBatch(rng, "larger", 4, 32, 32, all, 0.02),
		perfectBatch(rng, "perfect", 2, 8, 8),
	}
	dir := t.TempDir()
	specs := make([]string, len(batches))
	for i, b := range batches {
		b.write(t, dir)
		specs[i] = b.spec()
	}
	var reference map[string]map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(pytorchtest.Run(t, dir, referenceScript, specs...)), &reference))

	for _, b := range batches {
		t.Run(b.name, func(t *testing.T) {
			ref := reference[b.name]
			require.NotNil(t, ref)
			for _, name := range []string{"wce", "dice", "eldice", "bce", "mix_3", "mix_33", "mix_2", "loss bce"} {
				var want referenceLoss
				require.NoError(t, json.Unmarshal(ref[strings.TrimPrefix(name, "loss ")], &want))
				require.True(t, want.Finite, "reference %s gradient is not finite", name)
				value, gradZ, gradA := goLoss(t, b, name)
				requireClose(t, want.Value, value, name)
				requireGradClose(t, want.GradZ, gradZ, name+" gradient w.r.t. segmentation logits")
				requireGradClose(t, want.GradA, gradA, name+" gradient w.r.t. detection logits")
			}

			var wantDice []float64
			require.NoError(t, json.Unmarshal(ref["class_dice"], &wantDice))
			logp := torch.LogSoftmax(torch.FromSlice(b.z, int64(b.n), oct.NumClasses, int64(b.h), int64(b.w)), 1)
			dice, err := ClassDice(logp, torch.FromSlice(b.labels, int64(b.n), int64(b.h), int64(b.w)))
			require.NoError(t, err)
			got := dice.Float32s()
			for c := range wantDice {
				requireClose(t, wantDice[c], float64(got[c]), fmt.Sprintf("dice of class %d", c+1))
			}

			var literal referenceLoss
			require.NoError(t, json.Unmarshal(ref["eldice_literal"], &literal))
			if b.name == "perfect" {
				// The reason for the guard: PyTorch's own gradient of the
				// literal formula is not finite on a perfect prediction.
				require.Equal(t, []float64{1, 1, 1}, wantDice)
				require.False(t, literal.Finite, "the literal ELDice gradient is finite on a perfect prediction")
			} else {
				// Elsewhere the guard changes nothing.
				var guarded referenceLoss
				require.NoError(t, json.Unmarshal(ref["eldice"], &guarded))
				require.Equal(t, literal, guarded)
			}
		})
	}
}
