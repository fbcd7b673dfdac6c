package oct

// Batch is a group of slices ready for the networks, in plain Go slices
// laid out as the tensors they become.
type Batch struct {
	N, H, W int
	// Images holds N×3×H×W normalised values (see Normalizer).
	Images []float32
	// Labels holds N×H×W classes 0..3; nil for unlabelled data.
	Labels []int64
	// Targets holds N×3 detection targets (REA, SRF, PED presence); nil for
	// unlabelled data.
	Targets []float32
	// Paths names the stack file of each slice, relative to DATA_DIR.
	Paths []string
}

// newBatch allocates a batch of n slices of h×w; labelled batches get room
// for labels and targets.
func newBatch(n, h, w int, labelled bool) *Batch {
	b := &Batch{
		N: n, H: h, W: w,
		Images: make([]float32, n*3*h*w),
		Paths:  make([]string, n),
	}
	if labelled {
		b.Labels = make([]int64, n*h*w)
		b.Targets = make([]float32, n*NumLesions)
	}
	return b
}

// Image returns the 3×H×W values of slice i.
func (b *Batch) Image(i int) []float32 {
	n := 3 * b.H * b.W
	return b.Images[i*n : (i+1)*n]
}

// Label returns the H×W classes of slice i.
func (b *Batch) Label(i int) []int64 {
	n := b.H * b.W
	return b.Labels[i*n : (i+1)*n]
}

// Target returns the 3 detection targets of slice i.
func (b *Batch) Target(i int) []float32 {
	return b.Targets[i*NumLesions : (i+1)*NumLesions]
}

// setSlice fills slot i of the batch from a stack and, for labelled batches,
// its label map, mirroring both left to right when flip is set.
func (b *Batch) setSlice(i int, norm *Normalizer, s *Stack, m *LabelMap, flip bool, path string) {
	norm.Fill(b.Image(i), s, flip)
	b.Paths[i] = path
	if m == nil {
		return
	}
	dst := b.Label(i)
	w := b.W
	for y := range b.H {
		row := m.Class[y*w : (y+1)*w]
		o := dst[y*w : (y+1)*w]
		if flip {
			for x, c := range row {
				o[w-1-x] = int64(c)
			}
		} else {
			for x, c := range row {
				o[x] = int64(c)
			}
		}
	}
	t := m.Targets()
	copy(b.Target(i), t[:])
}
