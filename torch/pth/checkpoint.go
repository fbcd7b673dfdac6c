package pth

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/edema/edema/internal/atomicfile"
)

// Checkpoint is a checkpoint file as it is: a state dict, bare or as an
// entry of a dict that holds other entries too (an epoch, an optimizer's
// state, whatever the training script saved). What the entries mean is
// the training script's business, not this package's.
type Checkpoint struct {
	// StateDict holds the model's tensors, keys without Prefix.
	StateDict *StateDict
	// Prefix is what the file's keys all start with and StateDict's do
	// not: DataParallelPrefix when Load found it, else "". Save puts it
	// back in front of every key.
	Prefix string
	// Entries is the dict that holds the state dict, all its entries in
	// file order, the state dict's (at Key) included as the file had it:
	// Save writes StateDict with Prefix in its place. It is nil when the
	// file is a bare state dict.
	//
	// In safetensors files, which hold tensors and a flat map of strings,
	// Entries holds the metadata strings sorted by key, without the
	// "format": "pt" that marks PyTorch's tensors, and no state-dict entry.
	Entries *Dict
	// Key names the entry of Entries that holds the state dict:
	// "state_dict", "model" or "net" as Load finds them. It is "" for
	// safetensors, whose tensors are not an entry.
	Key string
	// Format is the format of the file: the one Load read, the one Save
	// writes (the zero value is FormatZip).
	Format Format
}

// stateDictKeys are the entries that hold the model in a checkpoint dict:
// the original scripts' and those other trainers use, in the order Load
// looks for them.
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
		return checkpointFromSafetensors(sd, meta), nil
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

// FromValue interprets a value read by ReadValue as a checkpoint: a state
// dict, or a dict with one under "state_dict", "model" or "net" (the first
// of them there). Entries is v itself then, not a copy.
func FromValue(v any) (*Checkpoint, error) {
	d, ok := v.(*Dict)
	if !ok {
		sd, ok := v.(*StateDict)
		if !ok {
			return nil, fmt.Errorf("file holds %s, not a state dict or a checkpoint dict", typeName(v))
		}
		return newCheckpoint(sd), nil
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
		c := newCheckpoint(sd)
		c.Entries, c.Key = d, key
		return c, nil
	}
	if sd, ok := AsStateDict(d); ok && d.Len() > 0 {
		return newCheckpoint(sd), nil
	}
	var keys []string
	for _, k := range d.keys {
		keys = append(keys, fmt.Sprint(k))
	}
	return nil, fmt.Errorf("no state dict in file: a dict with keys [%s], none of them %s holding tensors",
		strings.Join(keys, ", "), strings.Join(stateDictKeys, "/"))
}

// newCheckpoint returns a bare checkpoint of sd, with DataParallel's
// prefix taken off the keys when all have it.
func newCheckpoint(sd *StateDict) *Checkpoint {
	c := &Checkpoint{StateDict: sd}
	if plain, ok := sd.StripPrefix(DataParallelPrefix); ok {
		c.StateDict, c.Prefix = plain, DataParallelPrefix
	}
	return c
}

// Save writes c to path in c.Format, atomically: path keeps its old
// contents if anything fails.
//
// The zip and legacy formats hold Entries in their order, with StateDict
// (keys with Prefix) at Key, or the state dict alone when Entries is nil.
// Safetensors holds the tensors and, as metadata strings, the entries
// that are a str, int, float or bool (see MetadataString); Save refuses
// other entries rather than leave them out.
func Save(path string, c *Checkpoint) error {
	return atomicfile.Write(path, func(w io.Writer) error { return Encode(w, c) })
}

// Encode writes the file Save writes to w.
func Encode(w io.Writer, c *Checkpoint) error {
	if c.StateDict == nil {
		return errors.New("checkpoint has no state dict")
	}
	sd := c.StateDict
	if c.Prefix != "" {
		if sd.HasPrefix(c.Prefix) {
			return fmt.Errorf("state dict keys already start with %q; Checkpoint.StateDict holds keys without it", c.Prefix)
		}
		sd = sd.WithPrefix(c.Prefix)
	}
	switch c.Format {
	case FormatSafetensors:
		meta, err := c.safetensorsMetadata()
		if err != nil {
			return err
		}
		return encodeSafetensors(w, sd, meta)
	case FormatZip, FormatLegacy:
		v, err := c.value(sd)
		if err != nil {
			return err
		}
		return EncodeValue(w, v, c.Format)
	}
	return fmt.Errorf("cannot write format %s", c.Format)
}

// value returns what Encode pickles, with sd as the state dict.
func (c *Checkpoint) value(sd *StateDict) (any, error) {
	if c.Entries == nil {
		return sd, nil
	}
	if _, ok := c.Entries.Get(c.Key); !ok {
		return nil, fmt.Errorf("checkpoint Key %q is not an entry of Entries, so the state dict has no place in the file", c.Key)
	}
	d := &Dict{Ordered: c.Entries.Ordered, Attrs: c.Entries.Attrs}
	for _, k := range c.Entries.keys {
		v := c.Entries.values[k]
		if k == c.Key {
			v = sd
		}
		d.Set(k, v)
	}
	return d, nil
}

// metaFormat is the metadata key by which safetensors files say whose
// tensors they hold; "pt" tells Hugging Face tools they are PyTorch's.
const metaFormat = "format"

// safetensorsMetadata returns the metadata Encode writes in a safetensors
// file: "format": "pt" and Entries but the state dict's, each as its
// MetadataString.
func (c *Checkpoint) safetensorsMetadata() (map[string]string, error) {
	meta := map[string]string{metaFormat: "pt"}
	for _, k := range c.Entries.Keys() {
		if c.Key != "" && k == c.Key {
			continue
		}
		name, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("safetensors metadata has string keys only, not the int key of entry %v", k)
		}
		v, _ := c.Entries.Get(k)
		s, ok := MetadataString(v)
		if !ok {
			return nil, fmt.Errorf("safetensors metadata holds strings, not entry %q (%s): only str, int, float and bool entries fit", name, typeName(v))
		}
		if !utf8.ValidString(name) || !utf8.ValidString(s) {
			return nil, fmt.Errorf("safetensors metadata entry %q: %q is not valid UTF-8", name, s)
		}
		meta[name] = s
	}
	return meta, nil
}

// MetadataString returns the string that stands for v in a safetensors
// file's metadata, which holds strings only, and true, when v is a str,
// an int (in decimal), a float (as strconv.FormatFloat's 'g' with the
// fewest digits that read back exactly) or a bool ("true", "false").
func MetadataString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case int64:
		return strconv.FormatInt(v, 10), true
	case int:
		return strconv.Itoa(v), true
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// checkpointFromSafetensors returns the checkpoint of a safetensors file's
// tensors and metadata.
func checkpointFromSafetensors(sd *StateDict, meta map[string]string) *Checkpoint {
	c := newCheckpoint(sd)
	c.Format = FormatSafetensors
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == metaFormat && meta[k] == "pt" {
			continue
		}
		if c.Entries == nil {
			c.Entries = NewDict()
		}
		c.Entries.Set(k, meta[k])
	}
	return c
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
