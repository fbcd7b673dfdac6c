package pth

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/edema/edema/internal/atomicfile"
)

// Checkpoint is a model checkpoint as the original training scripts save
// it: torch.save({'epoch': ..., 'state_dict': ..., 'dice_epoch': ...,
// 'best_dice': ...}), or a bare state dict.
type Checkpoint struct {
	// StateDict holds the model's tensors, keys without Prefix.
	StateDict *StateDict
	// Prefix is DataParallelPrefix when the file's keys had it, else "".
	// Save ignores it (see SaveOptions.PlainKeys).
	Prefix string

	Epoch     *int64
	BestDice  *float64
	DiceEpoch *float64
	// Optimizer is the "optimizer" entry, an optimizer's state_dict(), or
	// nil.
	Optimizer any
	// Extra holds the other entries of a checkpoint dict, in file order;
	// nil when there are none.
	Extra *Dict

	// Bare is set when the file held just the state dict; Save then writes
	// just the state dict too.
	Bare bool
	// Format is the format of the file Load read.
	Format Format
}

// stateDictKeys are the entries that hold the model in a checkpoint dict:
// the original scripts' and those other trainers use.
var stateDictKeys = []string{"state_dict", "model", "net"}

// Load reads a checkpoint of any format (detected from the contents): a
// bare state dict, or a dict holding the state dict under "state_dict",
// "model" or "net". A "module." prefix on all keys is stripped and
// recorded in Prefix.
func Load(path string) (*Checkpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Decode is Load of a file's contents.
func Decode(data []byte) (c *Checkpoint, err error) {
	defer recoverInternal(&err)
	return decode(data)
}

func decode(data []byte) (*Checkpoint, error) {
	if isSafetensors(data) {
		sd, meta, err := decodeSafetensors(data)
		if err != nil {
			return nil, err
		}
		return checkpointFromSafetensors(sd, meta)
	}
	v, format, err := decodeValue(data)
	if err != nil {
		return nil, err
	}
	c, err := FromValue(v)
	if err != nil {
		return nil, err
	}
	c.Format = format
	return c, nil
}

// FromValue interprets a value read by ReadValue as a checkpoint.
func FromValue(v any) (*Checkpoint, error) {
	d, ok := v.(*Dict)
	if !ok {
		sd, ok := v.(*StateDict)
		if !ok {
			return nil, fmt.Errorf("file holds %s, not a state dict or a checkpoint dict", typeName(v))
		}
		return newCheckpoint(sd, true), nil
	}
	for _, key := range stateDictKeys {
		entry, ok := d.Get(key)
		if !ok {
			continue
		}
		sd, ok := AsStateDict(entry)
		if !ok {
			return nil, fmt.Errorf("checkpoint entry %q is %s, not a state dict of tensors", key, typeName(entry))
		}
		c := newCheckpoint(sd, false)
		for _, k := range d.keys {
			val := d.values[k]
			switch k {
			case key:
				continue
			case "epoch":
				if n, ok := asInt64(val); ok {
					c.Epoch = &n
					continue
				}
			case "best_dice":
				if f, ok := asFloat64(val); ok {
					c.BestDice = &f
					continue
				}
			case "dice_epoch":
				if f, ok := asFloat64(val); ok {
					c.DiceEpoch = &f
					continue
				}
			case "optimizer":
				c.Optimizer = val
				continue
			}
			// Entries of unexpected types stay in Extra, unchanged.
			if c.Extra == nil {
				c.Extra = NewDict()
			}
			c.Extra.Set(k, val)
		}
		return c, nil
	}
	if sd, ok := AsStateDict(d); ok && d.Len() > 0 {
		return newCheckpoint(sd, true), nil
	}
	var keys []string
	for _, k := range d.keys {
		keys = append(keys, fmt.Sprint(k))
	}
	return nil, fmt.Errorf("no state dict in file: a dict with keys [%s], none of them %s holding tensors",
		strings.Join(keys, ", "), strings.Join(stateDictKeys, "/"))
}

func newCheckpoint(sd *StateDict, bare bool) *Checkpoint {
	c := &Checkpoint{StateDict: sd, Bare: bare}
	if plain, ok := sd.StripPrefix(DataParallelPrefix); ok {
		c.StateDict, c.Prefix = plain, DataParallelPrefix
	}
	return c
}

// SaveOptions chooses how Save writes a checkpoint.
type SaveOptions struct {
	// Format is FormatZip (the default), FormatLegacy or
	// FormatSafetensors.
	Format Format
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
func Save(path string, c *Checkpoint, opts SaveOptions) error {
	return atomicfile.Write(path, func(w io.Writer) error { return Encode(w, c, opts) })
}

// Encode writes the file Save writes to w.
func Encode(w io.Writer, c *Checkpoint, opts SaveOptions) error {
	if c.StateDict == nil {
		return errors.New("checkpoint has no state dict")
	}
	sd := c.StateDict
	if !opts.PlainKeys {
		if sd.HasPrefix(DataParallelPrefix) {
			return fmt.Errorf("state dict keys already start with %q; Checkpoint.StateDict holds keys without it", DataParallelPrefix)
		}
		sd = sd.WithPrefix(DataParallelPrefix)
	}
	if opts.Format == FormatSafetensors {
		return encodeSafetensors(w, sd, c.safetensorsMetadata())
	}
	if opts.Format != FormatZip && opts.Format != FormatLegacy {
		return fmt.Errorf("cannot write format %s", opts.Format)
	}
	v, err := c.value(sd)
	if err != nil {
		return err
	}
	return EncodeValue(w, v, opts.Format)
}

// value returns what Encode pickles, with sd as the state dict.
func (c *Checkpoint) value(sd *StateDict) (any, error) {
	if c.Bare {
		if c.Epoch != nil || c.BestDice != nil || c.DiceEpoch != nil || c.Optimizer != nil || c.Extra.Len() > 0 {
			return nil, errors.New("a bare state dict cannot carry epoch, dice, optimizer or other entries")
		}
		return sd, nil
	}
	d := NewDict()
	if c.Epoch != nil {
		d.Set("epoch", *c.Epoch)
	}
	d.Set("state_dict", sd)
	if c.DiceEpoch != nil {
		d.Set("dice_epoch", *c.DiceEpoch)
	}
	if c.BestDice != nil {
		d.Set("best_dice", *c.BestDice)
	}
	if c.Optimizer != nil {
		d.Set("optimizer", c.Optimizer)
	}
	for _, k := range c.Extra.Keys() {
		if _, taken := d.Get(k); taken {
			return nil, fmt.Errorf("extra checkpoint entry %v collides with a standard one", k)
		}
		v, _ := c.Extra.Get(k)
		d.Set(k, v)
	}
	return d, nil
}

// Metadata keys of the safetensors files Save writes.
const (
	metaEpoch     = "epoch"
	metaBestDice  = "best_dice"
	metaDiceEpoch = "dice_epoch"
	metaFormat    = "format"
)

func (c *Checkpoint) safetensorsMetadata() map[string]string {
	// "format": "pt" tells Hugging Face tools the tensors are PyTorch's.
	meta := map[string]string{metaFormat: "pt"}
	if c.Epoch != nil {
		meta[metaEpoch] = strconv.FormatInt(*c.Epoch, 10)
	}
	if c.BestDice != nil {
		meta[metaBestDice] = strconv.FormatFloat(*c.BestDice, 'g', -1, 64)
	}
	if c.DiceEpoch != nil {
		meta[metaDiceEpoch] = strconv.FormatFloat(*c.DiceEpoch, 'g', -1, 64)
	}
	return meta
}

func checkpointFromSafetensors(sd *StateDict, meta map[string]string) (*Checkpoint, error) {
	c := newCheckpoint(sd, true)
	c.Format = FormatSafetensors
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := meta[k]
		switch k {
		case metaFormat:
			continue
		case metaEpoch:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("safetensors metadata epoch %q is not an integer", v)
			}
			c.Epoch = &n
		case metaBestDice, metaDiceEpoch:
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fmt.Errorf("safetensors metadata %s %q is not a number", k, v)
			}
			if k == metaBestDice {
				c.BestDice = &f
			} else {
				c.DiceEpoch = &f
			}
		default:
			if c.Extra == nil {
				c.Extra = NewDict()
			}
			c.Extra.Set(k, v)
		}
	}
	c.Bare = c.Epoch == nil && c.BestDice == nil && c.DiceEpoch == nil && c.Extra == nil
	return c, nil
}

// typeName names the Python type of a value for errors.
func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "a bool"
	case int64:
		return "an int"
	case float64:
		return "a float"
	case string:
		return "a str"
	case []byte:
		return "bytes"
	case []any:
		return "a list"
	case Tuple:
		return "a tuple"
	case *Dict:
		if v.Ordered {
			return "an OrderedDict"
		}
		return "a dict"
	case *Tensor:
		return "a tensor"
	case *StateDict:
		return "a state dict"
	case Device:
		return "a torch.device"
	}
	return fmt.Sprintf("a %T", v)
}
