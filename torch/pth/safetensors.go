package pth

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/nlpodyssey/safetensors"
)

// isSafetensors recognizes a safetensors file by its header: a
// little-endian length that fits the file, followed by a JSON object.
func isSafetensors(data []byte) bool {
	if len(data) < 10 {
		return false
	}
	n := binary.LittleEndian.Uint64(data)
	return n >= 2 && n <= uint64(len(data)-8) && data[8] == '{'
}

// decodeSafetensors reads the tensors, in file order, and the string
// metadata of a safetensors file.
func decodeSafetensors(data []byte) (sd *StateDict, meta map[string]string, err error) {
	defer func() {
		if r := recover(); r != nil {
			sd, meta, err = nil, nil, fmt.Errorf("malformed safetensors file: %v", r)
		}
	}()
	st, err := safetensors.Deserialize(data)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	_, header, err := safetensors.ReadMetadata(data)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	sd = NewStateDict()
	for _, nt := range st.Tensors() {
		dt, ok := dtypeBySafetensors[nt.TensorView.DType().String()]
		if !ok {
			return nil, nil, fmt.Errorf("safetensors tensor %q has unsupported dtype %s", nt.Name, nt.TensorView.DType())
		}
		shape := make([]int64, len(nt.TensorView.Shape()))
		for i, d := range nt.TensorView.Shape() {
			if d > math.MaxInt64 {
				return nil, nil, fmt.Errorf("safetensors tensor %q has a dimension of %d", nt.Name, d)
			}
			shape[i] = int64(d)
		}
		t := &Tensor{DType: dt, Shape: shape, Data: append([]byte{}, nt.TensorView.Data()...)}
		if err := t.Validate(); err != nil {
			return nil, nil, fmt.Errorf("safetensors tensor %q: %w", nt.Name, err)
		}
		sd.Set(nt.Name, t)
	}
	return sd, header.Metadata(), nil
}

// safetensorsView presents a Tensor to the safetensors writer.
type safetensorsView struct {
	t  *Tensor
	dt safetensors.DType
}

func (v safetensorsView) DType() safetensors.DType { return v.dt }
func (v safetensorsView) Data() []byte             { return v.t.Data }
func (v safetensorsView) DataLen() uint64          { return uint64(len(v.t.Data)) }
func (v safetensorsView) Shape() []uint64 {
	shape := make([]uint64, len(v.t.Shape))
	for i, d := range v.t.Shape {
		shape[i] = uint64(d)
	}
	return shape
}

// encodeSafetensors writes sd and the metadata strings as a safetensors
// file. The format orders tensors by type and name, not by sd's order.
func encodeSafetensors(w io.Writer, sd *StateDict, meta map[string]string) error {
	views := make(map[string]safetensorsView, sd.Len())
	for _, k := range sd.Keys() {
		t, _ := sd.Get(k)
		if err := t.Validate(); err != nil {
			return fmt.Errorf("tensor %q: %w", k, err)
		}
		dt, err := safetensors.ParseDType(dtypes[t.DType].st)
		if err != nil {
			return err
		}
		views[k] = safetensorsView{t: t, dt: dt}
	}
	if len(meta) == 0 {
		meta = nil
	}
	return safetensors.SerializeToWriter(views, meta, w)
}
