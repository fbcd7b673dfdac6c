package npyheader

import (
	"bytes"
	"strings"
	"testing"

	"codeberg.org/sbinet/npyio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewReader(t *testing.T) {
	var good bytes.Buffer
	require.NoError(t, npyio.Write(&good, []float32{1, 2, 3}))
	r, err := NewReader(bytes.NewReader(good.Bytes()))
	require.NoError(t, err)
	assert.Equal(t, []int{3}, r.Header.Descr.Shape)

	// A header without its closing newline makes npyio slice out of
	// bounds.
	bad := bytes.ReplaceAll(good.Bytes(), []byte("\n"), []byte(" "))
	assert.Panics(t, func() { npyio.NewReader(bytes.NewReader(bad)) }, "npyio itself panics")
	_, err = NewReader(bytes.NewReader(bad))
	assert.ErrorContains(t, err, "corrupt header")

	// A version 2 header length of 4 GiB is refused before it is
	// allocated.
	huge := []byte("\x93NUMPY\x02\x00\xff\xff\xff\xff{'descr'")
	_, err = NewReader(bytes.NewReader(huge))
	assert.ErrorContains(t, err, "header of 4294967295 bytes, longer than the 65536 accepted")

	for _, data := range [][]byte{nil, []byte("\x93NUMPY"), []byte("\x93NUMPY\x01\x00\x04\x00{'d")} {
		assert.NotPanics(t, func() { NewReader(bytes.NewReader(data)) })
	}
}

func FuzzNewReader(f *testing.F) {
	var good bytes.Buffer
	require.NoError(f, npyio.Write(&good, [][]float32{{1, 2}, {3, 4}}))
	f.Add(good.Bytes())
	f.Add(bytes.ReplaceAll(good.Bytes(), []byte("\n"), []byte(" ")))
	f.Add([]byte("\x93NUMPY\x02\x00\x00\x00\x01\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		NewReader(bytes.NewReader(data))
	})
}

// WriteHeader writes what numpy.save writes, which the reader reads back.
func TestWriteHeader(t *testing.T) {
	for _, shape := range [][]int{{3}, {2, 3}, {128, 1024, 512}, {1, 4, 64, 32}} {
		var buf bytes.Buffer
		require.NoError(t, WriteHeader(&buf, "<f4", shape))
		assert.Zero(t, buf.Len()%64, "the data start at a multiple of 64 bytes")
		n := 1
		for _, d := range shape {
			n *= d
		}
		if n <= 1<<16 {
			buf.Write(make([]byte, 4*n))
		}
		r, err := NewReader(bytes.NewReader(buf.Bytes()))
		require.NoError(t, err)
		assert.Equal(t, shape, r.Header.Descr.Shape)
		assert.Equal(t, "<f4", strings.Trim(r.Header.Descr.Type, "'"))
	}
	var one bytes.Buffer
	require.NoError(t, WriteHeader(&one, "|u1", []int{3}))
	assert.Contains(t, one.String(), "'shape': (3,), }")
}
