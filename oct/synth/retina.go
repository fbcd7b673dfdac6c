package synth

import (
	"math"
	"math/rand/v2"

	"github.com/edema/edema/oct"
)

// A cube is modelled column by column. Positions across the scan are u (the
// width, 0..1) and v (the slices, 0..1), both in units of the 6 mm the real
// cubes span, so that anatomy and lesions keep their proportions at any
// resolution; depth is d (0..1 from top to bottom of the B-scan, 2 mm in the
// real scans). Each column is a stack of tissue segments built upwards from
// Bruch's membrane; a lesion adds a segment of its own and pushes everything
// above it up, as swelling, fluid and detachments do.

// tissue is what a segment of a column is made of.
type tissue uint8

const (
	vitreous tissue = iota
	nerveFibres
	ganglionCells
	innerPlexiform
	innerNuclear
	outerPlexiform
	edemaArea // REA: swollen, cystic, hyporeflective retina
	outerNuclear
	limitingMembrane
	innerSegments
	ellipsoidZone
	outerSegments
	interdigitation
	pigmentEpithelium
	subretinalFluid // SRF: dark fluid between photoreceptors and RPE
	detachment      // PED: pocket under a raised RPE
	choroid
	sclera
	numTissues
)

// reflectivity is the mean display brightness (0..1) of each tissue before
// speckle; textured tissues vary around it.
var reflectivity = [numTissues]float64{
	vitreous:          0.015,
	nerveFibres:       0.74,
	ganglionCells:     0.36,
	innerPlexiform:    0.52,
	innerNuclear:      0.2,
	outerPlexiform:    0.48,
	edemaArea:         0.05,
	outerNuclear:      0.14,
	limitingMembrane:  0.36,
	innerSegments:     0.18,
	ellipsoidZone:     0.82,
	outerSegments:     0.3,
	interdigitation:   0.55,
	pigmentEpithelium: 0.92,
	subretinalFluid:   0.012,
	detachment:        0.12,
	choroid:           0.45,
	sclera:            0.12,
}

// classOf is the segmentation class of each tissue.
var classOf = [numTissues]uint8{
	edemaArea:       oct.REA,
	subretinalFluid: oct.SRF,
	detachment:      oct.PED,
}

// lesion is one lesion: in (u, v) an ellipse with a slightly lobed outline,
// in depth a dome whose height falls from the peak to 0 at the outline, so
// that in 3-D it is (close to) half an ellipsoid spanning neighbouring
// slices.
type lesion struct {
	class  uint8
	u, v   float64 // centre
	ru, rv float64 // radii
	height float64 // peak height, in units of the scan depth
	power  float64 // profile (1-r²)^power: 0.5 is an ellipsoid, more is flatter-edged
	lobes  [2]lobe
}

type lobe struct {
	k          float64
	amp, phase float64
}

// heightAt is the lesion's height at (u, v), 0 outside it.
func (l *lesion) heightAt(u, v float64) float64 {
	du, dv := (u-l.u)/l.ru, (v-l.v)/l.rv
	d2 := du*du + dv*dv
	if d2 >= 1.5 {
		return 0
	}
	theta := math.Atan2(dv, du)
	r := 1.0
	for _, lb := range l.lobes {
		r += lb.amp * math.Sin(lb.k*theta+lb.phase)
	}
	q := d2 / (r * r)
	if q >= 1 {
		return 0
	}
	return l.height * math.Pow(1-q, l.power)
}

// vessel is a retinal blood vessel crossing the scan: bright in the inner
// retina, with a shadow below it.
type vessel struct {
	u0, slope, width float64
}

// layer indexes the per-layer thickness variations.
const (
	layerNerveFibres = iota
	layerGanglion
	layerInnerPlexiform
	layerInnerNuclear
	layerOuterPlexiform
	layerOuterNuclear
	layerChoroid
	numLayers
)

// cubeModel is the anatomy and pathology of one synthetic cube.
type cubeModel struct {
	w, h, s int
	seed    uint64 // texture noise

	fovU, fovV   float64 // fovea
	bruchDepth   float64 // Bruch's membrane under the fovea, in scan depths
	curvU, curvV float64 // bowl of the eye: edges sit higher in the image
	tiltU, tiltV float64
	bruchWave    field
	motion       field // axial eye motion from slice to slice
	thickness    float64
	pitDepth     float64 // how much of the inner retina the foveal pit removes
	pitWidth     float64
	nasal        float64 // +1 or -1: the side where the nerve fibres thicken
	layerWave    [numLayers]field
	gain         float64
	lesions      []lesion
	vessels      []vessel
}

// newCubeModel draws a cube's anatomy and the lesions of the classes in has.
func newCubeModel(rng *rand.Rand, w, h, s int, has [oct.NumLesions]bool) *cubeModel {
	c := &cubeModel{
		w: w, h: h, s: s,
		seed:       rng.Uint64(),
		fovU:       0.5 + (rng.Float64()*2-1)*0.07,
		fovV:       0.5 + (rng.Float64()*2-1)*0.08,
		bruchDepth: 0.58 + rng.Float64()*0.1,
		curvU:      0.12 + rng.Float64()*0.3,
		curvV:      0.05 + rng.Float64()*0.2,
		tiltU:      (rng.Float64()*2 - 1) * 0.08,
		tiltV:      (rng.Float64()*2 - 1) * 0.05,
		bruchWave:  newField(rng, 4, 3),
		motion:     newField(rng, 3, 4),
		thickness:  1 + rng.Float64()*0.25,
		pitDepth:   0.75 + rng.Float64()*0.2,
		pitWidth:   0.07 + rng.Float64()*0.03,
		nasal:      1,
		gain:       0.85 + rng.Float64()*0.25,
	}
	if rng.IntN(2) == 0 {
		c.nasal = -1
	}
	for i := range c.layerWave {
		c.layerWave[i] = newField(rng, 4, 5)
	}
	for range 2 + rng.IntN(3) {
		c.vessels = append(c.vessels, vessel{
			u0:    0.1 + rng.Float64()*0.8,
			slope: (rng.Float64()*2 - 1) * 0.6,
			width: 0.006 + rng.Float64()*0.008,
		})
	}
	for l := range oct.NumLesions {
		if !has[l] {
			continue
		}
		n := 1
		if rng.Float64() < 0.4 {
			n = 2
		}
		for range n {
			c.lesions = append(c.lesions, c.drawLesion(rng, uint8(l+1)))
		}
	}
	return c
}

// drawLesion places a lesion of a class around the fovea, where macular
// edema gathers. Sizes are such that at the default 128×256 B-scans an REA
// is some 10–25 px tall and SRF and PED some 6–14 px.
func (c *cubeModel) drawLesion(rng *rand.Rand, class uint8) lesion {
	uniform := func(a, b float64) float64 { return a + rng.Float64()*(b-a) }
	clamp := func(x float64) float64 { return math.Max(0.15, math.Min(0.85, x)) }
	l := lesion{class: class}
	switch class {
	case oct.REA:
		l.u, l.v = clamp(c.fovU+rng.NormFloat64()*0.08), clamp(c.fovV+rng.NormFloat64()*0.08)
		l.ru, l.rv = uniform(0.1, 0.22), uniform(0.1, 0.25)
		l.height = uniform(0.04, 0.1)
		l.power = 0.75 // swelling fades into the healthy retina
	case oct.SRF:
		l.u, l.v = clamp(c.fovU+rng.NormFloat64()*0.05), clamp(c.fovV+rng.NormFloat64()*0.06)
		l.ru, l.rv = uniform(0.06, 0.14), uniform(0.06, 0.16)
		l.height = uniform(0.025, 0.055)
		l.power = 0.6
	case oct.PED:
		l.u, l.v = clamp(c.fovU+rng.NormFloat64()*0.12), clamp(c.fovV+rng.NormFloat64()*0.1)
		l.ru, l.rv = uniform(0.05, 0.1), uniform(0.05, 0.12)
		l.height = uniform(0.025, 0.05)
		l.power = 0.45 // steep-sided domes
	}
	for i := range l.lobes {
		l.lobes[i] = lobe{k: float64(2 + i), amp: uniform(0, 0.12), phase: uniform(0, 2*math.Pi)}
	}
	return l
}

// segment is a run of one tissue from top to bottom (pixels, top < bottom).
type segment struct {
	t           tissue
	top, bottom float64
}

// column is the tissue stack of one A-scan.
type column struct {
	segs [numTissues + 1]segment
	n    int
	// The vessel crossing this column, if any: its centre depth and radius
	// in pixels.
	vessel           bool
	vesselY, vesselR float64
	bruch            float64 // depth of Bruch's membrane, pixels
}

// column builds the A-scan at pixel column x of slice z.
func (c *cubeModel) column(x, z int) *column {
	u := (float64(x) + 0.5) / float64(c.w)
	v := (float64(z) + 0.5) / float64(c.s)
	H := float64(c.h)
	col := &column{}
	push := func(t tissue, top, bottom float64) {
		if bottom > top {
			col.segs[col.n] = segment{t, top, bottom}
			col.n++
		}
	}

	var lesionHeight [oct.NumLesions + 1]float64
	for i := range c.lesions {
		l := &c.lesions[i]
		lesionHeight[l.class] = math.Max(lesionHeight[l.class], l.heightAt(u, v))
	}

	r := math.Hypot(u-c.fovU, v-c.fovV)
	pit := math.Exp(-r * r / (2 * c.pitWidth * c.pitWidth))
	inner := 1 - c.pitDepth*pit
	rim := 1 + 0.25*math.Exp(-(r-2.2*c.pitWidth)*(r-2.2*c.pitWidth)/(2*0.04*0.04))
	wave := func(layer int) float64 { return c.thickness * (1 + 0.12*c.layerWave[layer].at(u, v)) }
	nasal := 1 + 1.5*smoothstep(0, 0.4, c.nasal*(u-c.fovU))

	bruch := H * (c.bruchDepth -
		c.curvU*(u-c.fovU)*(u-c.fovU) - c.curvV*(v-c.fovV)*(v-c.fovV) +
		c.tiltU*(u-0.5) + c.tiltV*(v-0.5) +
		0.006*c.bruchWave.at(u, v) + 0.01*c.motion.at(0, v))
	col.bruch = bruch

	choroidThickness := 0.11 * wave(layerChoroid)
	push(sclera, bruch+choroidThickness*H, math.Inf(1))
	push(choroid, bruch, bruch+choroidThickness*H)

	y := bruch
	up := func(t tissue, thickness float64) {
		push(t, y-thickness*H, y)
		y -= thickness * H
	}
	up(detachment, lesionHeight[oct.PED])
	up(pigmentEpithelium, 0.009*c.thickness)
	up(subretinalFluid, lesionHeight[oct.SRF])
	up(interdigitation, 0.0035*c.thickness)
	up(outerSegments, (0.008+0.004*pit)*c.thickness)
	up(ellipsoidZone, 0.0045*c.thickness)
	up(innerSegments, 0.01*c.thickness)
	up(limitingMembrane, 0.0025*c.thickness)
	up(outerNuclear, (0.032+0.02*pit)*wave(layerOuterNuclear))
	up(edemaArea, lesionHeight[oct.REA])
	up(outerPlexiform, 0.011*(1-0.8*c.pitDepth*pit)*wave(layerOuterPlexiform))
	up(innerNuclear, 0.014*inner*rim*wave(layerInnerNuclear))
	up(innerPlexiform, 0.016*inner*rim*wave(layerInnerPlexiform))
	ganglion := 0.019 * inner * rim * wave(layerGanglion)
	up(ganglionCells, ganglion)
	fibres := 0.011 * inner * nasal * wave(layerNerveFibres)
	up(nerveFibres, fibres)
	push(vitreous, math.Inf(-1), y)

	for _, vs := range c.vessels {
		centre := vs.u0 + vs.slope*(v-0.5)
		if d := math.Abs(u - centre); d < vs.width/2 {
			// Vessels run in the nerve fibre and ganglion cell layers.
			col.vessel = true
			col.vesselY = y + (fibres+0.5*ganglion)*H
			col.vesselR = math.Max(1, vs.width*H) * math.Sqrt(1-4*d*d/(vs.width*vs.width))
			break
		}
	}
	return col
}

// intensity is the brightness of tissue t at pixel (x, y) of slice z, for a
// column whose Bruch's membrane is at depth bruch.
func (c *cubeModel) intensity(t tissue, x int, y float64, z int, bruch float64) float64 {
	// Textures scale with the scan so that they look alike at any size.
	nx := float64(x) / float64(c.w)
	ny := y / float64(c.h)
	nz := float64(z) / float64(c.s)
	switch t {
	case edemaArea:
		// Dark cysts divided by brighter septa.
		n := valueNoise(c.seed^0xa1, nx/0.03, ny/0.014, nz/0.06)
		return 0.03 + 0.3*smoothstep(0.58, 0.78, n)
	case detachment:
		n := valueNoise(c.seed^0xb2, nx/0.02, ny/0.01, nz/0.05)
		return 0.05 + 0.1*n
	case choroid:
		depth := (y - bruch) / float64(c.h)
		if depth < 0.01 {
			return 0.5 // choriocapillaris
		}
		// Vessel lumens, elongated along the scan; two octaves hide the
		// lattice of the noise.
		n := 0.65*valueNoise(c.seed^0xc3, nx/0.05, ny/0.018, nz/0.08) +
			0.35*valueNoise(c.seed^0xd4, nx/0.023+0.5, ny/0.009+0.5, nz/0.04+0.5)
		lumen := smoothstep(0.32, 0.6, n)
		return 0.38 * (0.2 + 0.8*lumen) * math.Exp(-depth/0.1)
	case sclera:
		depth := (y - bruch) / float64(c.h)
		return 0.02 + 0.06*math.Exp(-(depth-0.11)/0.05)
	}
	return reflectivity[t]
}

// renderSlice draws slice z: grey levels into img and label grey levels
// (255, 191, 128, 0) into label, both h×w row-major. rng draws the speckle.
func (c *cubeModel) renderSlice(z int, rng *rand.Rand, img, label []uint8) {
	w, h := c.w, c.h
	clean := make([]float64, w*h)
	for x := range w {
		col := c.column(x, z)
		for _, sg := range col.segs[:col.n] {
			top := math.Max(sg.top, 0)
			bottom := math.Min(sg.bottom, float64(h))
			if bottom <= top {
				continue
			}
			for j := int(top); j < h && float64(j) < bottom; j++ {
				overlap := math.Min(bottom, float64(j+1)) - math.Max(top, float64(j))
				yc := float64(j) + 0.5
				clean[j*w+x] += overlap * c.intensity(sg.t, x, yc, z, col.bruch)
				if cls := classOf[sg.t]; cls != 0 && yc >= sg.top && yc < sg.bottom {
					label[j*w+x] = oct.LabelOfClass(cls)
				}
			}
		}
		if col.vessel {
			for j := range h {
				yc := float64(j) + 0.5
				switch {
				case math.Abs(yc-col.vesselY) < col.vesselR:
					clean[j*w+x] = math.Max(clean[j*w+x], 0.65)
				case yc > col.vesselY:
					clean[j*w+x] *= 0.5 // shadow
				}
			}
		}
	}

	// Speckle: multiplicative, exponentially distributed and blurred over
	// 3×3 pixels into grains, plus a faint noise floor.
	passes := max(1, h/512) // grains grow with the resolution
	speckle := blurredExp(rng, w, h, passes)
	floor := blurredExp(rng, w, h, passes)
	for i, v := range clean {
		g := c.gain*v*speckle[i] + 0.03*floor[i]
		img[i] = uint8(math.Round(255 * math.Max(0, math.Min(1, g))))
	}
}

// blurredExp returns w×h independent Exp(1) draws smoothed passes times by
// a 3×3 binomial filter (edges clamped): mean 1, standard deviation about
// 0.375 after one pass.
func blurredExp(rng *rand.Rand, w, h, passes int) []float64 {
	out := make([]float64, w*h)
	for i := range out {
		out[i] = rng.ExpFloat64()
	}
	tmp := make([]float64, w*h)
	for range passes {
		for y := range h {
			for x := range w {
				l, r := max(x-1, 0), min(x+1, w-1)
				tmp[y*w+x] = 0.25*out[y*w+l] + 0.5*out[y*w+x] + 0.25*out[y*w+r]
			}
		}
		for y := range h {
			u, d := max(y-1, 0), min(y+1, h-1)
			for x := range w {
				out[y*w+x] = 0.25*tmp[u*w+x] + 0.5*tmp[y*w+x] + 0.25*tmp[d*w+x]
			}
		}
	}
	return out
}
