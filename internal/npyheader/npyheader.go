// Package npyheader reads and writes the headers of NumPy .npy files. It
// reads them with npyio, guarding against what npyio does not check: a corrupt header text, which
// makes it slice out of bounds and panic, and a header length field of up
// to 4 GiB, which it allocates before reading a byte of the header.
package npyheader

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"codeberg.org/sbinet/npyio"
)

// MaxHeader is the longest header accepted, in bytes. NumPy writes headers
// of a few hundred bytes for the arrays of this project and by default
// refuses to read ones over 10000.
const MaxHeader = 1 << 16

// NewReader reads the header of a .npy stream and returns npyio's reader,
// positioned at the data.
func NewReader(r io.Reader) (rd *npyio.Reader, err error) {
	// The magic string, the version and the header length, which is two
	// bytes long in version 1 and four in versions 2 and 3.
	pre := make([]byte, 8, 12)
	if _, err := io.ReadFull(r, pre); err != nil {
		return nil, fmt.Errorf("short file: %w", err)
	}
	var length int
	switch pre[6] {
	case 1:
		pre = pre[:10]
		if _, err := io.ReadFull(r, pre[8:]); err != nil {
			return nil, fmt.Errorf("short file: %w", err)
		}
		length = int(binary.LittleEndian.Uint16(pre[8:]))
	case 2, 3:
		pre = pre[:12]
		if _, err := io.ReadFull(r, pre[8:]); err != nil {
			return nil, fmt.Errorf("short file: %w", err)
		}
		length = int(binary.LittleEndian.Uint32(pre[8:]))
	}
	if length > MaxHeader {
		return nil, fmt.Errorf("header of %d bytes, longer than the %d accepted", length, MaxHeader)
	}
	defer func() {
		if p := recover(); p != nil {
			rd, err = nil, fmt.Errorf("corrupt header (%v)", p)
		}
	}()
	// npyio reads the preamble again; an unknown version is its error.
	return npyio.NewReader(io.MultiReader(bytes.NewReader(pre), r))
}

// WriteHeader writes the preamble and header of a C-order array of dtype
// descr (a NumPy type string such as "<f4" or "|u1") and the given shape,
// in format version 1.0, as numpy.save writes them; the caller writes the
// data after it. npyio.Write finds an array's shape by reflection on every
// element, which takes seconds for the arrays of a cube, hence this.
func WriteHeader(w io.Writer, descr string, shape []int) error {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	tuple := "(" + strings.Join(dims, ", ") + ")"
	if len(shape) == 1 {
		tuple = "(" + dims[0] + ",)"
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, tuple)
	// Magic (6 bytes), version (2), header length (2), header ending in a
	// newline, padded with spaces to a multiple of 64 bytes.
	const preamble = 10
	total := (preamble + len(header) + 1 + 63) / 64 * 64
	header += strings.Repeat(" ", total-preamble-len(header)-1) + "\n"
	if len(header) > math.MaxUint16 {
		return fmt.Errorf("npy header of %d bytes", len(header))
	}
	buf := make([]byte, 0, preamble+len(header))
	buf = append(buf, npyio.Magic[:]...)
	buf = append(buf, 1, 0)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(header)))
	buf = append(buf, header...)
	_, err := w.Write(buf)
	return err
}
