package synth

import (
	"math"
	"math/rand/v2"
)

// mix is the SplitMix64 finaliser: it scrambles x into a value whose bits
// all look independent, which makes lattice noise a pure function of its
// coordinates and so independent of the order in which pixels are drawn.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// lattice returns a uniform value in [0, 1) for the integer point (i, j, k).
func lattice(seed uint64, i, j, k int) float64 {
	h := mix(seed ^ mix(uint64(i)*0x9e3779b97f4a7c15^mix(uint64(j)*0xc2b2ae3d27d4eb4f^mix(uint64(k)+0x165667b19e3779f9))))
	return float64(h>>11) / (1 << 53)
}

// valueNoise is smooth 3-D value noise in [0, 1) with one lattice cell per
// unit of x, y and z.
func valueNoise(seed uint64, x, y, z float64) float64 {
	fx, fy, fz := math.Floor(x), math.Floor(y), math.Floor(z)
	i, j, k := int(fx), int(fy), int(fz)
	tx, ty, tz := fade(x-fx), fade(y-fy), fade(z-fz)
	lerp := func(a, b, t float64) float64 { return a + (b-a)*t }
	c := func(di, dj, dk int) float64 { return lattice(seed, i+di, j+dj, k+dk) }
	return lerp(
		lerp(lerp(c(0, 0, 0), c(1, 0, 0), tx), lerp(c(0, 1, 0), c(1, 1, 0), tx), ty),
		lerp(lerp(c(0, 0, 1), c(1, 0, 1), tx), lerp(c(0, 1, 1), c(1, 1, 1), tx), ty),
		tz)
}

func fade(t float64) float64 { return t * t * (3 - 2*t) }

// smoothstep rises from 0 at a to 1 at b.
func smoothstep(a, b, x float64) float64 {
	t := math.Max(0, math.Min(1, (x-a)/(b-a)))
	return fade(t)
}

// field is a smooth random function of (u, v) in [-1, 1]: a few plane waves
// of low frequency. It bends layer boundaries and varies thicknesses.
type field []wave

type wave struct {
	fu, fv, phase, amp float64
}

// newField draws n waves of up to maxFreq cycles per unit.
func newField(rng *rand.Rand, n int, maxFreq float64) field {
	f := make(field, n)
	var total float64
	for i := range f {
		f[i] = wave{
			fu:    (rng.Float64()*2 - 1) * maxFreq,
			fv:    (rng.Float64()*2 - 1) * maxFreq,
			phase: rng.Float64() * 2 * math.Pi,
			amp:   0.5 + rng.Float64(),
		}
		total += f[i].amp
	}
	for i := range f {
		f[i].amp /= total
	}
	return f
}

func (f field) at(u, v float64) float64 {
	var s float64
	for _, w := range f {
		s += w.amp * math.Sin(2*math.Pi*(w.fu*u+w.fv*v)+w.phase)
	}
	return s
}
