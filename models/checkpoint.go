package models

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
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
	// Extra holds the other entries of a checkpoint dict, in file order,
	// and those of the entries above whose values are not of their type,
	// unchanged; nil when there are none. Read from safetensors, whose
	// metadata holds strings only, every value is a string.
	Extra *pth.Dict

	// Bare is set when the file held just the state dict; Save then writes
	// just the state dict too.
	Bare bool
	// Format is the format of the file the checkpoint was read from.
	Format pth.Format
}

// The entries of the original's checkpoint dict, and the optimizer's
// state that ours add.
const (
	entryEpoch     = "epoch"
	entryStateDict = "state_dict"
	entryDiceEpoch = "dice_epoch"
	entryBestDice  = "best_dice"
	entryOptimizer = "optimizer"
)

// ReadCheckpoint reads the checkpoint at path, of any format (detected
// from the contents).
func ReadCheckpoint(path string) (*Checkpoint, error) {
	f, err := pth.Load(path)
	if err != nil {
		return nil, err
	}
	c, err := fromFile(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// DecodeCheckpoint is ReadCheckpoint of a file's contents.
func DecodeCheckpoint(data []byte) (*Checkpoint, error) {
	f, err := pth.Decode(data)
	if err != nil {
		return nil, err
	}
	return fromFile(f)
}

// fromFile reads the original's entries out of a file's dict. Safetensors
// metadata holds strings, so there the figures are parsed, and a string
// that is not one is an error.
func fromFile(f *pth.Checkpoint) (*Checkpoint, error) {
	c := &Checkpoint{StateDict: f.StateDict, Prefix: f.Prefix, Bare: f.Entries == nil, Format: f.Format}
	safetensors := f.Format == pth.FormatSafetensors
	for _, k := range f.Entries.Keys() {
		if f.Key != "" && k == f.Key {
			continue
		}
		v, _ := f.Entries.Get(k)
		var read bool
		if s, isString := v.(string); safetensors && isString {
			var err error
			if read, err = c.readMetadata(k, s); err != nil {
				return nil, err
			}
		} else {
			read = c.readEntry(k, v)
		}
		// Entries of unexpected types stay in Extra, unchanged.
		if !read {
			if c.Extra == nil {
				c.Extra = pth.NewDict()
			}
			c.Extra.Set(k, v)
		}
	}
	return c, nil
}

// readEntry takes the entry k of a pickled checkpoint dict into c when it
// is one of the original's, of its type, and reports whether it did.
func (c *Checkpoint) readEntry(k, v any) bool {
	switch k {
	case entryEpoch:
		if n, ok := asInt64(v); ok {
			c.Epoch = &n
			return true
		}
	case entryBestDice:
		if f, ok := asFloat64(v); ok {
			c.BestDice = &f
			return true
		}
	case entryDiceEpoch:
		if f, ok := asFloat64(v); ok {
			c.DiceEpoch = &f
			return true
		}
	case entryOptimizer:
		c.Optimizer = v
		return true
	}
	return false
}

// readMetadata takes the metadata string k of a safetensors file into c
// when it is one of the original's figures, and reports whether it did.
func (c *Checkpoint) readMetadata(k any, v string) (bool, error) {
	switch k {
	case entryEpoch:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return false, fmt.Errorf("safetensors metadata epoch %q is not an integer", v)
		}
		c.Epoch = &n
		return true, nil
	case entryBestDice, entryDiceEpoch:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return false, fmt.Errorf("safetensors metadata %s %q is not a number", k, v)
		}
		if k == entryBestDice {
			c.BestDice = &f
		} else {
			c.DiceEpoch = &f
		}
		return true, nil
	}
	return false, nil
}

// asInt64 returns v as an integer when it is one.
func asInt64(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case int:
		return int64(v), true
	}
	return 0, false
}

// asFloat64 returns v as a float when it is a number, or a tensor holding a
// single number (metrics are sometimes saved as 0-d tensors).
func asFloat64(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	case int:
		return float64(v), true
	case *pth.Tensor:
		if v.DType.IsFloat() && v.Numel() == 1 {
			f, err := v.Float64s()
			if err == nil {
				return f[0], true
			}
		}
	}
	return 0, false
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
// when c.Bare. Safetensors holds the tensors and, as metadata strings,
// epoch, best_dice, dice_epoch and the Extra entries that are a str, int,
// float or bool (see pth.MetadataString); it has no room for the
// optimizer state or other entries, which are left out (see
// SafetensorsLeavesOut).
func (c *Checkpoint) Save(path string, opts SaveOptions) error {
	f, err := c.file(opts)
	if err != nil {
		return err
	}
	return pth.Save(path, f)
}

// Encode writes the file Save writes to w.
func (c *Checkpoint) Encode(w io.Writer, opts SaveOptions) error {
	f, err := c.file(opts)
	if err != nil {
		return err
	}
	return pth.Encode(w, f)
}

// file lays c out as the file Save writes.
func (c *Checkpoint) file(opts SaveOptions) (*pth.Checkpoint, error) {
	f := &pth.Checkpoint{StateDict: c.StateDict, Format: opts.Format}
	if !opts.PlainKeys {
		f.Prefix = pth.DataParallelPrefix
	}
	if c.Bare {
		if c.Epoch != nil || c.BestDice != nil || c.DiceEpoch != nil || c.Optimizer != nil || c.Extra.Len() > 0 {
			return nil, errors.New("a bare state dict cannot carry epoch, dice, optimizer or other entries")
		}
		return f, nil
	}
	safetensors := opts.Format == pth.FormatSafetensors
	d := pth.NewDict()
	if c.Epoch != nil {
		d.Set(entryEpoch, *c.Epoch)
	}
	d.Set(entryStateDict, c.StateDict)
	if c.DiceEpoch != nil {
		d.Set(entryDiceEpoch, *c.DiceEpoch)
	}
	if c.BestDice != nil {
		d.Set(entryBestDice, *c.BestDice)
	}
	if c.Optimizer != nil && !safetensors {
		d.Set(entryOptimizer, c.Optimizer)
	}
	for _, k := range c.Extra.Keys() {
		if _, taken := d.Get(k); taken {
			return nil, fmt.Errorf("extra checkpoint entry %v collides with a standard one", k)
		}
		v, _ := c.Extra.Get(k)
		if safetensors && !fitsMetadata(k, v) {
			continue
		}
		d.Set(k, v)
	}
	f.Entries, f.Key = d, entryStateDict
	return f, nil
}

// fitsMetadata reports whether the entry k: v has a place in a safetensors
// file's metadata, a map of strings.
func fitsMetadata(k, v any) bool {
	_, isString := k.(string)
	_, ok := pth.MetadataString(v)
	return isString && ok
}

// SafetensorsLeavesOut names what Save leaves out of c in a safetensors
// file, which holds tensors and metadata strings only: "the optimizer
// state", and `entry "mean"` for each Extra entry that is not a str, int,
// float or bool. It is empty when the file holds everything.
func (c *Checkpoint) SafetensorsLeavesOut() []string {
	var out []string
	if c.Optimizer != nil {
		out = append(out, "the optimizer state")
	}
	for _, k := range c.Extra.Keys() {
		if v, _ := c.Extra.Get(k); !fitsMetadata(k, v) {
			out = append(out, fmt.Sprintf("entry %q", fmt.Sprint(k)))
		}
	}
	return out
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
	// CheckpointTasks names the tasks the network was trained for,
	// separated by commas ("segmentation", "detection"; see Model.Tasks),
	// written when they are fewer than its outputs: a segmentation network
	// trained without the detection loss. A string, so that safetensors
	// metadata keeps it too.
	CheckpointTasks = "tasks"
)

// SetTasks records in c the tasks its network was trained for, or removes
// the record when they are all of the network's outputs (name's).
func SetTasks(c *Checkpoint, name string, tasks oct.Tasks) {
	if tasks == Outputs(name) {
		if c.Extra != nil {
			c.Extra.Delete(CheckpointTasks)
		}
		return
	}
	if c.Extra == nil {
		c.Extra = pth.NewDict()
	}
	c.Extra.Set(CheckpointTasks, strings.Join(tasks.Names(), ","))
}

// TasksOf returns the tasks that c records for the network called name,
// or all of the network's outputs when it records none (the original's
// checkpoints, and edema's of multi-task training).
func TasksOf(c *Checkpoint, name string) (oct.Tasks, error) {
	outputs := Outputs(name)
	v, ok := c.Extra.Get(CheckpointTasks)
	if !ok {
		return outputs, nil
	}
	list, isString := v.(string)
	if !isString {
		return 0, fmt.Errorf("checkpoint entry %q is not a string of task names", CheckpointTasks)
	}
	tasks, err := oct.ParseTasks(strings.Split(list, ","))
	if err != nil {
		return 0, fmt.Errorf("checkpoint entry %q: %w", CheckpointTasks, err)
	}
	if !outputs.Has(tasks) {
		return 0, fmt.Errorf("checkpoint entry %q says %s, which %s cannot do", CheckpointTasks, tasks, name)
	}
	return tasks, nil
}

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
// strictly (see Load), and takes the tasks it records (see TasksOf).
// Nothing changes on error, which is a *CheckpointError when the weights
// do not fit.
func (m *Model) LoadCheckpoint(c *Checkpoint) (err error) {
	if c == nil || c.StateDict == nil {
		return fmt.Errorf("%s: checkpoint has no state dict", m.name)
	}
	tasks, err := TasksOf(c, m.name)
	if err != nil {
		return fmt.Errorf("%s: %w", m.name, err)
	}
	defer func() {
		if err == nil {
			m.tasks = tasks
		}
	}()
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
