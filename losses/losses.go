// Package losses implements the training losses of the edema networks: the
// weighted cross-entropy (WCE) and Dice losses of the segmentation, the
// binary cross-entropy (BCE) of the detection head, and their sums "mix_3"
// (WCE + Dice + BCE) and "mix_33" (WCE + exponential-logarithmic Dice + BCE)
// that the published multi-task models were trained with, "mix_2" (WCE +
// Dice) of the single-task UNet and "bce" (BCE alone) of the ResNet-18
// detector.
//
// The segmentation losses take the network's log-probabilities L
// (N×4×H×W, floating point) and the labels T (N×H×W, int64, values 0..3 or
// oct.IgnoreClass); the detection loss takes the head's probabilities D and the
// per-slice presence targets Y (both N×3). P = exp(L).
//
//   - WCE is the negative log-likelihood with class weights 1, 5, 10, 20,
//     averaged with those weights over the pixels whose label is not
//     oct.IgnoreClass: Σ w_T·(−L_T) / Σ w_T (torch.nn.NLLLoss with weight and
//     ignore_index).
//   - Dice, for each lesion class c = 1..3 over the whole batch, is
//     dice_c = 2·Σ P_c·[T=c] / (Σ P_c + Σ [T=c]), without smoothing, and the
//     constant 1 when no pixel of the batch has label c. The Dice loss is
//     1 − mean_c dice_c.
//   - The exponential-logarithmic Dice loss is mean_c (−ln dice_c)^Gamma.
//   - BCE is the mean binary cross-entropy of D against Y.
//
// # Ignored pixels in the Dice losses
//
// As in the original implementation, the Dice sums run over every pixel:
// a pixel labelled oct.IgnoreClass matches no class, so it adds nothing to
// Σ [T=c] or Σ P_c·[T=c], but its probabilities still add to Σ P_c. Only
// WCE skips ignored pixels. (After the label mapping of the data set only
// padding could carry oct.IgnoreClass.)
//
// # Where the gradient would not be finite
//
// The values and gradients are PyTorch's wherever PyTorch's are finite.
// The exponential-logarithmic Dice differs in two corner cases in which the
// literal formula gives NaN, so that a training step never does:
//
//   - When a present class is predicted perfectly, dice_c is exactly 1 in
//     float32 and (−ln dice_c)^0.5 has an infinite derivative at 0, which
//     PyTorch's autograd turns into NaN gradients. Its term is 0 there, as in
//     PyTorch, with a zero gradient: the limit of the gradient as the
//     prediction approaches perfection. Rounding that makes dice_c slightly
//     larger than 1 (where PyTorch's value is NaN) is treated the same way.
//   - When every probability of a present class underflows to 0 at its
//     pixels, dice_c is 0 and PyTorch's term is infinite. dice_c is clamped
//     to the smallest normal float32, so the term is about 9.3 and that
//     class contributes no gradient.
//
// # Errors and memory
//
// Every function checks the shapes, dtypes, devices and label values of its
// inputs and returns an error naming the problem; libtorch's own failures
// come back as errors too. Temporaries live in a torch.Scope that is closed
// before returning, so only the returned tensors outlive a call: they join
// the caller's scope if one is open.
package losses

import (
	"fmt"
	"math"
	"strings"

	"github.com/edema/edema/torch"

	"github.com/edema/edema/oct"
)

const (
	// Gamma is the exponent of the exponential-logarithmic Dice loss.
	Gamma = 0.5
)

// ClassWeights returns the WCE weights of the classes 0..3.
func ClassWeights() [oct.NumClasses]float64 { return [oct.NumClasses]float64{1, 5, 10, 20} }

// The names of the combined losses, as the original's --loss flag spells
// them.
const (
	Mix3    = "mix_3"  // WCE + Dice + BCE
	Mix33   = "mix_33" // WCE + exponential-logarithmic Dice + BCE
	Mix2    = "mix_2"  // WCE + Dice: segmentation alone
	BCEOnly = "bce"    // BCE: detection alone
)

// The combined losses: their names, terms and the tasks they train.
var kinds = []struct {
	name, terms string
	dice        func(logp, target *torch.Tensor) *torch.Tensor // nil without segmentation
	detection   bool
}{
	{Mix3, "WCE + Dice + BCE", diceLoss, true},
	{Mix33, "WCE + ELDice + BCE", expLogDiceLoss, true},
	{Mix2, "WCE + Dice", diceLoss, false},
	{BCEOnly, "BCE", nil, true},
}

// Names lists the combined losses that New accepts.
func Names() []string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.name
	}
	return names
}

// Loss is one of the combined losses, chosen by name with New.
type Loss struct {
	name, terms string
	dice        func(logp, target *torch.Tensor) *torch.Tensor
	tasks       oct.Tasks
}

// New returns the combined loss called name (see Names).
func New(name string) (Loss, error) {
	for _, k := range kinds {
		if k.name != name {
			continue
		}
		l := Loss{name: name, terms: k.terms, dice: k.dice}
		if k.dice != nil {
			l.tasks |= oct.Segmentation
		}
		if k.detection {
			l.tasks |= oct.Detection
		}
		return l, nil
	}
	return Loss{}, fmt.Errorf("unknown loss %q: want one of %s", name, strings.Join(Names(), ", "))
}

// Name returns the loss's name, e.g. "mix_33".
func (l Loss) Name() string { return l.name }

// Tasks returns the tasks the loss trains: segmentation when it has the
// WCE and Dice terms, detection when it has the BCE.
func (l Loss) Tasks() oct.Tasks { return l.tasks }

// String returns the name and the terms, e.g. "mix_3 (WCE + Dice + BCE)".
func (l Loss) String() string {
	if l.tasks == 0 {
		return "invalid loss"
	}
	return l.name + " (" + l.terms + ")"
}

// Terms are a combined loss and the terms it adds up, each a
// zero-dimensional tensor in the autograd graph of the inputs; the terms
// of a task the loss does not train are nil.
type Terms struct {
	Total *torch.Tensor
	WCE   *torch.Tensor // weighted cross-entropy of the segmentation
	Dice  *torch.Tensor // Dice loss (mix_3, mix_2) or exponential-logarithmic Dice loss (mix_33)
	BCE   *torch.Tensor // binary cross-entropy of the detection
}

// Values are Terms copied to the host, for logging; NaN stands for a term
// the loss does not have.
type Values struct {
	Total, WCE, Dice, BCE float64
}

// Parts returns the four terms in the order of Values, a term the loss
// does not have as NaN, of the dtype and device of Total: for one
// transfer with other figures.
func (t Terms) Parts() []*torch.Tensor {
	parts := []*torch.Tensor{t.Total, t.WCE, t.Dice, t.BCE}
	for i, p := range parts {
		if p == nil {
			parts[i] = torch.Full([]int64{}, math.NaN(), torch.Options{DType: t.Total.DType(), Device: t.Total.Device()})
		}
	}
	return parts
}

// ValuesOf reads Values from the first four of host, laid out as Parts.
func ValuesOf(host []float64) Values {
	return Values{Total: host[0], WCE: host[1], Dice: host[2], BCE: host[3]}
}

// Values copies the terms to the host with a single transfer.
func (t Terms) Values() (v Values, err error) {
	defer torch.Recover(&err)
	torch.Scoped(func(*torch.Scope) {
		torch.NoGrad(func() {
			all := torch.Stack(t.Parts(), 0)
			v = ValuesOf(all.ToOptions(torch.Options{DType: torch.Float64, Device: torch.CPU}).Float64s())
		})
	})
	return v, nil
}

// Compute evaluates the loss on the log-probabilities logp (N×4×H×W) with
// labels target (N×H×W, int64) and on the detection probabilities detProb
// with targets detTarget (N×3). Backward on Total trains the network. The
// inputs of a task the loss does not train are not used and may be nil:
// logp and target for bce, detProb and detTarget for mix_2.
func (l Loss) Compute(logp, target, detProb, detTarget *torch.Tensor) (terms Terms, err error) {
	if l.tasks == 0 {
		return Terms{}, fmt.Errorf("loss: not made by losses.New")
	}
	defer wrapError(&err, "loss "+l.name)
	defer torch.Recover(&err)
	s := torch.NewScope()
	defer s.Close()
	segmentation, detection := l.tasks.Has(oct.Segmentation), l.tasks.Has(oct.Detection)
	if segmentation {
		if err := checkSegmentation(logp, target); err != nil {
			return Terms{}, err
		}
	}
	if detection {
		n := int64(-1)
		if segmentation {
			n = logp.Size(0)
		}
		if err := checkDetection(detProb, detTarget, n); err != nil {
			return Terms{}, err
		}
	}
	if segmentation && detection {
		if err := sameDevice(logp, "log-probabilities", detProb, "detection probabilities"); err != nil {
			return Terms{}, err
		}
	}
	if segmentation {
		terms.WCE = wce(logp, target)
		terms.Dice = l.dice(logp, target)
		terms.Total = terms.WCE.Add(terms.Dice)
	}
	if detection {
		terms.BCE = bce(detProb, detTarget)
		if terms.Total == nil {
			terms.Total = terms.BCE
		} else {
			terms.Total = terms.Total.Add(terms.BCE)
		}
	}
	s.Keep(terms.Total, terms.WCE, terms.Dice, terms.BCE)
	return terms, nil
}

// WCE returns the class-weighted negative log-likelihood of the labels,
// averaged over the pixels not labelled oct.IgnoreClass.
func WCE(logp, target *torch.Tensor) (*torch.Tensor, error) {
	return segmentationLoss("weighted cross-entropy", wce, logp, target)
}

// Dice returns the Dice loss 1 − mean_c dice_c over the lesion classes.
func Dice(logp, target *torch.Tensor) (*torch.Tensor, error) {
	return segmentationLoss("Dice loss", diceLoss, logp, target)
}

// ExpLogDice returns the exponential-logarithmic Dice loss
// mean_c (−ln dice_c)^Gamma over the lesion classes.
func ExpLogDice(logp, target *torch.Tensor) (*torch.Tensor, error) {
	return segmentationLoss("exponential-logarithmic Dice loss", expLogDiceLoss, logp, target)
}

// ClassDice returns dice_c of the lesion classes c = 1..3 (a tensor of
// three values), 1 for a class absent from the labels.
func ClassDice(logp, target *torch.Tensor) (*torch.Tensor, error) {
	return segmentationLoss("class Dice", classDice, logp, target)
}

// BCE returns the mean binary cross-entropy of the detection probabilities
// (N×3) against their targets (N×3, 0 or 1).
func BCE(prob, target *torch.Tensor) (loss *torch.Tensor, err error) {
	defer wrapError(&err, "binary cross-entropy")
	defer torch.Recover(&err)
	s := torch.NewScope()
	defer s.Close()
	if err := checkDetection(prob, target, -1); err != nil {
		return nil, err
	}
	loss = bce(prob, target)
	s.Keep(loss)
	return loss, nil
}

func segmentationLoss(what string, f func(logp, target *torch.Tensor) *torch.Tensor, logp, target *torch.Tensor) (loss *torch.Tensor, err error) {
	defer wrapError(&err, what)
	defer torch.Recover(&err)
	s := torch.NewScope()
	defer s.Close()
	if err := checkSegmentation(logp, target); err != nil {
		return nil, err
	}
	loss = f(logp, target)
	s.Keep(loss)
	return loss, nil
}

// wrapError prefixes a non-nil *errp with what failed.
func wrapError(errp *error, what string) {
	if *errp != nil {
		*errp = fmt.Errorf("%s: %w", what, *errp)
	}
}
