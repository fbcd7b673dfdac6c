package models

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/edema/edema/oct"
	"github.com/edema/edema/torch"
	"github.com/edema/edema/torch/nn"
	"github.com/edema/edema/torch/pth"
)

// Checkpoints: the networks' weights in the files of package torch/pth,
// their tensors copied between libtorch and the host by package torch/nn.

// Checkpoint is a checkpoint as the original training script saves it:
// torch.save({'epoch': ..., 'state_dict': ..., 'dice_epoch': ...,
// 'best_dice': ...}) with DataParallel's "module." in front of every key
// (docs/ORIGINAL.md, "Checkpoints"), or a bare state dict. Ours may add
// 'optimizer', the optimizer's state_dict(), so that training resumes
// exactly, and entries of their own (see CheckpointArch).
//
// Reading accepts whatever package torch/pth reads: zip or legacy
// torch.save files, pickles of tensors and safetensors, bare state dicts
// or dicts holding one under "state_dict", "model" or "net", with or
// without the prefix.
type Checkpoint struct {
	// StateDict holds the network's tensors, keys without Prefix.
	StateDict *pth.StateDict
	// Prefix is pth.DataParallelPrefix when the file's keys had it, else
	// "". Save ignores it (see SaveOptions.PlainKeys).
	Prefix string

	Epoch     *int64
	BestDice  *float64
	DiceEpoch *float64
	// Optimizer is the "optimizer" entry, an optimizer's state_dict(), or
	// nil.
	Optimizer any
	// Extra holds the other entries of a checkpoint dict, in file order;
	// nil when there are none.
	Extra *pth.Dict

	// Bare is set when the file held just the state dict; Save then writes
	// just the state dict too.
	Bare bool
	// Format is the format of the file the checkpoint was read from.
	Format pth.Format
}

// ReadCheckpoint reads the checkpoint at path, of any format (detected
// from the contents).
func ReadCheckpoint(path string) (*Checkpoint, error) {
	f, err := pth.Load(path)
	if err != nil {
		return nil, err
	}
	return fromFile(f), nil
}

// DecodeCheckpoint is ReadCheckpoint of a file's contents.
func DecodeCheckpoint(data []byte) (*Checkpoint, error) {
	f, err := pth.Decode(data)
	if err != nil {
		return nil, err
	}
	return fromFile(f), nil
}

func fromFile(f *pth.Checkpoint) *Checkpoint {
	return &Checkpoint{StateDict: f.StateDict, Prefix: f.Prefix, Epoch: f.Epoch, BestDice: f.BestDice, DiceEpoch: f.DiceEpoch,
		Optimizer: f.Optimizer, Extra: f.Extra, Bare: f.Bare, Format: f.Format}
}

// SaveOptions chooses how Save writes a checkpoint.
type SaveOptions struct {
	// Format is pth.FormatZip (the default), pth.FormatLegacy or
	// pth.FormatSafetensors.
	Format pth.Format
	// PlainKeys writes the keys as they are; by default they get the
	// "module." prefix, so that the original scripts load the file into
	// their DataParallel model unchanged.
	PlainKeys bool
}

// Save writes c to path atomically: path keeps its old contents if
// anything fails.
//
// The zip and legacy formats hold the checkpoint dict {'epoch',
// 'state_dict', 'dice_epoch', 'best_dice'} (entries that are nil left
// out), then 'optimizer' and the Extra entries; or the state dict alone
// when c.Bare. Safetensors holds the tensors and, as strings in its
// metadata, epoch, best_dice and dice_epoch; it has no room for the
// optimizer state or other entries, which are left out.
func (c *Checkpoint) Save(path string, opts SaveOptions) error {
	return pth.Save(path, c.file(), pth.SaveOptions{Format: opts.Format, PlainKeys: opts.PlainKeys})
}

// Encode writes the file Save writes to w.
func (c *Checkpoint) Encode(w io.Writer, opts SaveOptions) error {
	return pth.Encode(w, c.file(), pth.SaveOptions{Format: opts.Format, PlainKeys: opts.PlainKeys})
}

func (c *Checkpoint) file() *pth.Checkpoint {
	return &pth.Checkpoint{StateDict: c.StateDict, Prefix: c.Prefix, Epoch: c.Epoch, BestDice: c.BestDice, DiceEpoch: c.DiceEpoch,
		Optimizer: c.Optimizer, Extra: c.Extra, Bare: c.Bare, Format: c.Format}
}

// CheckpointMeta are the figures the original saves beside the weights.
type CheckpointMeta struct {
	Epoch     int64   // epochs completed
	BestDice  float64 // best validation Dice so far
	DiceEpoch float64 // validation Dice of the last epoch
}

// NewCheckpoint gathers a network's weights (copied to the host), the
// figures of meta and, when optimizer (an optimizer's StateDict) is not
// nil, the optimizer's state into a checkpoint. With neither meta nor
// optimizer it is a bare state dict.
func NewCheckpoint(m *Model, meta *CheckpointMeta, optimizer *pth.Dict) (*Checkpoint, error) {
	sd, err := nn.HostStateDict(m.StateDict())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.name, err)
	}
	c := &Checkpoint{StateDict: sd, Bare: meta == nil && optimizer == nil}
	if meta != nil {
		c.Epoch, c.BestDice, c.DiceEpoch = &meta.Epoch, &meta.BestDice, &meta.DiceEpoch
	}
	if optimizer != nil {
		o, err := nn.OptimizerStateToHost(optimizer)
		if err != nil {
			return nil, err
		}
		c.Optimizer = o
	}
	return c, nil
}

// SaveCheckpoint writes a network's checkpoint to path atomically (see
// NewCheckpoint and Checkpoint.Save): by default the original's dict, zip
// format, keys with "module.", which every PyTorch since 1.6 loads into
// the original's DataParallel model.
func SaveCheckpoint(path string, m *Model, meta *CheckpointMeta, optimizer *pth.Dict, opts SaveOptions) error {
	c, err := NewCheckpoint(m, meta, optimizer)
	if err != nil {
		return err
	}
	if err := c.Save(path, opts); err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	return nil
}

// Entries that edema adds to the original's checkpoint dict, so that a
// checkpoint alone can be deployed. The original's scripts read only
// 'state_dict' and ignore them, and PyTorch loads them under
// weights_only (a string and lists of floats).
const (
	CheckpointArch = "arch" // the network's name, see Names
	CheckpointMean = "mean" // the normalisation of the training set, as info.json
	CheckpointStd  = "std"
)

// SetNormalization records in c the normalisation its network was trained
// with.
func SetNormalization(c *Checkpoint, info oct.Info) {
	if c.Extra == nil {
		c.Extra = pth.NewDict()
	}
	c.Extra.Set(CheckpointMean, []any{info.Mean[0], info.Mean[1], info.Mean[2]})
	c.Extra.Set(CheckpointStd, []any{info.Std[0], info.Std[1], info.Std[2]})
}

// Normalization returns the normalisation recorded in c; ok is false when
// c holds none (the original's checkpoints do not), and err reports
// entries that are there but are not three valid numbers each.
func Normalization(c *Checkpoint) (info oct.Info, ok bool, err error) {
	mean, hasMean := c.Extra.Get(CheckpointMean)
	std, hasStd := c.Extra.Get(CheckpointStd)
	if !hasMean && !hasStd {
		return info, false, nil
	}
	read := func(key string, v any, dst *[3]float64) error {
		list, isList := v.([]any)
		if !isList || len(list) != 3 {
			return fmt.Errorf("checkpoint entry %q is not a list of 3 numbers", key)
		}
		for i, x := range list {
			f, isFloat := x.(float64)
			if !isFloat {
				return fmt.Errorf("checkpoint entry %q item %d is not a number", key, i)
			}
			dst[i] = f
		}
		return nil
	}
	if err := read(CheckpointMean, mean, &info.Mean); err != nil {
		return info, false, err
	}
	if err := read(CheckpointStd, std, &info.Std); err != nil {
		return info, false, err
	}
	if err := info.Validate(); err != nil {
		return info, false, fmt.Errorf("checkpoint normalisation: %w", err)
	}
	return info, true, nil
}

// Load reads the checkpoint at path (see ReadCheckpoint) into a new
// network called name on device. The load is strict: every key of the
// network must be there with its shape, and nothing else. It returns the
// checkpoint too, for its figures and optimizer state.
func Load(path, name string, device torch.Device) (*Model, *Checkpoint, error) {
	if err := torch.CheckDevice(device); err != nil {
		return nil, nil, err
	}
	c, err := ReadCheckpoint(path)
	if err != nil {
		return nil, nil, err
	}
	m, err := New(name)
	if err != nil {
		return nil, nil, err
	}
	if err := m.LoadCheckpoint(c); err != nil {
		m.Free()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := m.To(device); err != nil {
		m.Free()
		return nil, nil, err
	}
	return m, c, nil
}

// LoadCheckpoint copies the weights of a checkpoint into the network,
// strictly (see Load). Nothing changes on error, which is a
// *CheckpointError.
func (m *Model) LoadCheckpoint(c *Checkpoint) (err error) {
	if c == nil || c.StateDict == nil {
		return fmt.Errorf("%s: checkpoint has no state dict", m.name)
	}
	defer torch.Recover(&err)
	s := torch.NewScope()
	defer s.Close()
	named, err := nn.NamedFromHost(c.StateDict)
	if err != nil {
		return fmt.Errorf("%s: %w", m.name, err)
	}
	if err := m.store.LoadStateDict(named, true); err != nil {
		ce := &CheckpointError{Name: m.name, Fits: Identify(c.StateDict), Cause: err}
		if le, ok := err.(*nn.LoadError); ok {
			ce.Load = le
		}
		return ce
	}
	return nil
}

// CheckpointError says why a checkpoint does not load into a network.
type CheckpointError struct {
	Name string // the network the weights were for
	// Fits lists the networks whose state dicts the checkpoint's matches
	// exactly, when it is another network's.
	Fits []string
	// Load holds every missing, unexpected and mis-shaped key, when the
	// keys or shapes were the problem.
	Load  *nn.LoadError
	Cause error
}

func (e *CheckpointError) Error() string {
	if len(e.Fits) > 0 {
		return fmt.Sprintf("checkpoint holds the weights of %s, not of %s (choose the network with --name)", strings.Join(e.Fits, " or "), e.Name)
	}
	if e.Load == nil {
		return fmt.Sprintf("weights do not load into %s: %v", e.Name, e.Cause)
	}
	var parts []string
	list := func(what string, keys []string) {
		if len(keys) > 0 {
			parts = append(parts, fmt.Sprintf("%d %s (%s)", len(keys), what, strings.Join(keys, ", ")))
		}
	}
	list("missing keys", e.Load.Missing)
	list("unexpected keys", e.Load.Unexpected)
	list("duplicate keys", e.Load.Duplicate)
	if len(e.Load.Mismatched) > 0 {
		parts = append(parts, strings.Join(e.Load.Mismatched, "; "))
	}
	return fmt.Sprintf("not a %s checkpoint: %s", e.Name, strings.Join(parts, "; "))
}

func (e *CheckpointError) Unwrap() error { return e.Cause }

// entrySpec is the dtype and shape of one state-dict entry.
type entrySpec struct {
	dtype torch.DType
	shape []int64
}

var (
	specsOnce sync.Once
	specs     map[string]map[string]entrySpec // network -> key -> spec
	specsErr  error
)

// networkSpecs builds every network once to learn its state dict. Building
// draws random numbers for the initial weights, so the first call moves
// libtorch's generator on: seed it (torch.ManualSeed) afterwards where
// reproducibility matters.
func networkSpecs() (map[string]map[string]entrySpec, error) {
	specsOnce.Do(func() {
		specs = map[string]map[string]entrySpec{}
		for _, name := range Names() {
			m, err := New(name)
			if err != nil {
				specsErr = err
				return
			}
			keys := map[string]entrySpec{}
			for _, n := range m.StateDict() {
				keys[n.Name] = entrySpec{dtype: n.Tensor.DType(), shape: n.Tensor.Shape()}
			}
			m.Free()
			specs[name] = keys
		}
	})
	return specs, specsErr
}

// Identify returns the names of the networks whose state dict sd matches
// exactly: the same keys (a "module." prefix on all of them is ignored),
// shapes and kinds of dtype (floating point or integer). BatchNorm's
// num_batches_tracked may be missing, as in checkpoints of PyTorch before
// 0.4.1, which load all the same. The first call builds each network once
// (see networkSpecs about the random generator).
func Identify(sd *pth.StateDict) []string {
	if sd == nil || sd.Len() == 0 {
		return nil
	}
	sd, _ = sd.StripPrefix(pth.DataParallelPrefix)
	all, err := networkSpecs()
	if err != nil {
		return nil
	}
	var fits []string
	for _, name := range Names() {
		if matches(sd, all[name]) {
			fits = append(fits, name)
		}
	}
	return fits
}

func matches(sd *pth.StateDict, want map[string]entrySpec) bool {
	for _, k := range sd.Keys() {
		spec, ok := want[k]
		t, _ := sd.Get(k)
		if !ok || t == nil || !slices.Equal(t.Shape, spec.shape) || t.DType.IsFloat() != spec.dtype.IsFloatingPoint() {
			return false
		}
	}
	for k := range want {
		if _, ok := sd.Get(k); !ok && !strings.HasSuffix(k, ".num_batches_tracked") {
			return false
		}
	}
	return true
}
