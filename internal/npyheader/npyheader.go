// Package npyheader reads the header of a NumPy .npy file with npyio,
// guarding against what npyio does not check: a corrupt header text, which
// makes it slice out of bounds and panic, and a header length field of up
// to 4 GiB, which it allocates before reading a byte of the header.
package npyheader

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

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
