package pth

import "fmt"

// rootStorage is one storage record of a file: the untyped bytes that
// tensors view.
type rootStorage struct {
	key    string
	nbytes int64
	// elemSize is the element size of the type the storage was first
	// declared with: legacy files count storage sizes in such elements.
	elemSize int
	data     []byte
	// load reads the bytes on first use (zip records); nil once loaded or
	// for legacy files, whose bytes follow the pickle.
	load func() ([]byte, error)
}

func (r *rootStorage) bytes() ([]byte, error) {
	if r.data == nil && r.load != nil {
		data, err := r.load()
		if err != nil {
			return nil, err
		}
		r.data, r.load = data, nil
	}
	if r.data == nil && r.nbytes > 0 {
		return nil, fmt.Errorf("storage %q is referenced but its data is not in the file", r.key)
	}
	if int64(len(r.data)) != r.nbytes {
		return nil, fmt.Errorf("storage %q holds %d bytes, expected %d", r.key, len(r.data), r.nbytes)
	}
	return r.data, nil
}

// storageRef is what the persistent id of a pickle resolves to: a typed
// window onto a root storage (the whole of it, except for the storage views
// of old legacy files).
type storageRef struct {
	root       *rootStorage
	dtype      DType
	byteOffset int64
	nbytes     int64
}

func (s *storageRef) bytes() ([]byte, error) {
	data, err := s.root.bytes()
	if err != nil {
		return nil, err
	}
	end, ok := addInt64(s.byteOffset, s.nbytes)
	if !ok || end > int64(len(data)) {
		return nil, fmt.Errorf("storage view [%d, %d) lies outside storage %q of %d bytes", s.byteOffset, s.byteOffset+s.nbytes, s.root.key, len(data))
	}
	return data[s.byteOffset:end], nil
}

// tensorRef is a tensor as a rebuild function describes it: a strided view
// onto a storage, materialized once the storages' bytes are at hand.
type tensorRef struct {
	storage *storageRef
	dtype   DType
	offset  int64
	size    []int64
	stride  []int64
}

// budget bounds the bytes a decoder allocates for records and tensors, in
// proportion to the size of the file.
type budget struct{ left int64 }

func newBudget(fileSize int) *budget {
	return &budget{left: 4*int64(fileSize) + 64<<20}
}

func (b *budget) take(n int64, what string) error {
	if n < 0 || n > b.left {
		return fmt.Errorf("%s needs %d bytes, more than a file of this size can hold", what, n)
	}
	b.left -= n
	return nil
}

// materialize copies the elements the view selects into a new contiguous
// tensor, checking that it stays inside its storage.
func (t *tensorRef) materialize(b *budget) (*Tensor, error) {
	if len(t.size) != len(t.stride) {
		return nil, fmt.Errorf("tensor has %d sizes but %d strides", len(t.size), len(t.stride))
	}
	if t.offset < 0 {
		return nil, fmt.Errorf("tensor has negative storage offset %d", t.offset)
	}
	n, err := checkShape(t.size)
	if err != nil {
		return nil, err
	}
	es := int64(t.dtype.ElemSize())
	nbytes, ok := mulInt64(n, es)
	if !ok {
		return nil, fmt.Errorf("tensor of shape %v is too large", t.size)
	}
	out := &Tensor{DType: t.dtype, Shape: append([]int64{}, t.size...)}
	last := t.offset // the highest element index the view reaches
	for i, s := range t.stride {
		if s < 0 {
			return nil, fmt.Errorf("tensor has negative stride %d", s)
		}
		if n == 0 {
			continue
		}
		step, ok := mulInt64(t.size[i]-1, s)
		if ok {
			last, ok = addInt64(last, step)
		}
		if !ok {
			return nil, fmt.Errorf("tensor of shape %v and strides %v overflows", t.size, t.stride)
		}
	}
	if err := b.take(nbytes, fmt.Sprintf("tensor of shape %v", t.size)); err != nil {
		return nil, err
	}
	out.Data = make([]byte, nbytes)
	if n == 0 {
		return out, nil
	}
	src, err := t.storage.bytes()
	if err != nil {
		return nil, err
	}
	end, ok := mulInt64(last+1, es)
	if !ok || last == maxInt64 || end > int64(len(src)) {
		return nil, fmt.Errorf("%s tensor of shape %v (offset %d, strides %v) reaches past its storage of %d bytes",
			t.dtype, t.size, t.offset, t.stride, len(src))
	}
	gather(out.Data, src, es, t.offset, t.size, t.stride)
	return out, nil
}

const maxInt64 = 1<<63 - 1

// gather copies the elements of a strided view of src into dst in
// row-major order; the caller has checked the view lies inside src.
func gather(dst, src []byte, es, offset int64, size, stride []int64) {
	if isContiguous(size, stride) {
		copy(dst, src[offset*es:])
		return
	}
	inner := len(size) - 1
	run, innerStride := size[inner], stride[inner]
	idx := make([]int64, inner)
	pos := int64(0)
	for {
		base := offset
		for i, k := range idx {
			base += k * stride[i]
		}
		if innerStride == 1 {
			copy(dst[pos:pos+run*es], src[base*es:])
			pos += run * es
		} else {
			for j := int64(0); j < run; j++ {
				e := (base + j*innerStride) * es
				copy(dst[pos:pos+es], src[e:e+es])
				pos += es
			}
		}
		d := inner - 1
		for ; d >= 0; d-- {
			idx[d]++
			if idx[d] < size[d] {
				break
			}
			idx[d] = 0
		}
		if d < 0 {
			return
		}
	}
}

// isContiguous reports whether strides are row-major for size, ignoring
// dimensions of size 1 as PyTorch does.
func isContiguous(size, stride []int64) bool {
	expected := int64(1)
	for i := len(size) - 1; i >= 0; i-- {
		if size[i] == 1 {
			continue
		}
		if stride[i] != expected {
			return false
		}
		expected *= size[i]
	}
	return true
}

// byteswap reverses the bytes of every element of size es in data.
func byteswap(data []byte, es int) {
	for i := 0; i+es <= len(data); i += es {
		e := data[i : i+es]
		for j := 0; j < es/2; j++ {
			e[j], e[es-1-j] = e[es-1-j], e[j]
		}
	}
}
