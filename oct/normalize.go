package oct

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/edema/edema/internal/atomicfile"
)

// Info holds the per-channel statistics of info.json and info_test.json:
// mean and standard deviation of pixel/255 over a set's 3-channel stacks.
type Info struct {
	Mean [3]float64
	Std  [3]float64
}

type infoJSON struct {
	Mean []float64 `json:"mean"`
	Std  []float64 `json:"std"`
}

// ReadInfo reads an info.json file.
func ReadInfo(path string) (Info, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Info{}, err
	}
	var raw infoJSON
	if err := json.Unmarshal(data, &raw); err != nil {
		return Info{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(raw.Mean) != 3 || len(raw.Std) != 3 {
		return Info{}, fmt.Errorf(`%s: want {"mean": [3 numbers], "std": [3 numbers]}, got %d means and %d stds`, path, len(raw.Mean), len(raw.Std))
	}
	var info Info
	copy(info.Mean[:], raw.Mean)
	copy(info.Std[:], raw.Std)
	if err := info.validate(); err != nil {
		return Info{}, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// Validate checks that the means are numbers and the deviations positive.
func (info Info) Validate() error { return info.validate() }

func (info Info) validate() error {
	for c := range 3 {
		if m := info.Mean[c]; math.IsNaN(m) || math.IsInf(m, 0) {
			return fmt.Errorf("mean[%d] = %v is not a number", c, m)
		}
		if s := info.Std[c]; !(s > 0) || math.IsInf(s, 0) {
			return fmt.Errorf("std[%d] = %v must be positive", c, s)
		}
	}
	return nil
}

// WriteInfo writes info as {"mean": [...], "std": [...]}, replacing path
// atomically.
func WriteInfo(path string, info Info) error {
	if err := info.validate(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	data, err := json.Marshal(infoJSON{Mean: info.Mean[:], Std: info.Std[:]})
	if err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(append(data, '\n'))
		return err
	})
}

// Normalizer turns 8-bit stacks into network input: pixel/255, then
// (x - mean)/std per channel, in float32 as PyTorch computes it
// (ToTensor's div(255) followed by Normalize's sub_ and div_ on float32
// tensors), so the values match the original pipeline bit for bit.
type Normalizer struct {
	lut [3][256]float32
}

// NewNormalizer returns the normaliser of info's statistics.
func NewNormalizer(info Info) (*Normalizer, error) {
	if err := info.validate(); err != nil {
		return nil, err
	}
	n := &Normalizer{}
	for c := range 3 {
		mean, std := float32(info.Mean[c]), float32(info.Std[c])
		for v := range 256 {
			x := float32(v) / 255
			n.lut[c][v] = (x - mean) / std
		}
	}
	return n, nil
}

// Value is the normalised value of grey level v in channel c.
func (n *Normalizer) Value(c int, v uint8) float32 { return n.lut[c][v] }

// Fill writes the normalised stack into dst (3×H×W, channel-major), mirrored
// left to right when flip is set.
func (n *Normalizer) Fill(dst []float32, s *Stack, flip bool) {
	w := s.W
	for c := range 3 {
		lut := &n.lut[c]
		src := s.Channel(c)
		out := dst[c*len(src) : (c+1)*len(src)]
		for y := range s.H {
			row := src[y*w : (y+1)*w]
			o := out[y*w : (y+1)*w]
			if flip {
				for x, v := range row {
					o[w-1-x] = lut[v]
				}
			} else {
				for x, v := range row {
					o[x] = lut[v]
				}
			}
		}
	}
}

// ReadNormalizer returns the normaliser of the info.json at path.
func ReadNormalizer(path string) (*Normalizer, error) {
	info, err := ReadInfo(path)
	if err != nil {
		return nil, err
	}
	return NewNormalizer(info)
}
