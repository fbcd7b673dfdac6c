package pth

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
)

// Limits that keep hostile pickles from exhausting memory or time in the
// unpickler. Real checkpoints stay far below them.
const (
	// maxMarkDepth bounds nested MARKs, that is the nesting of containers.
	maxMarkDepth = 1000
	// maxDigits bounds text-encoded numbers, as Python bounds int parsing.
	maxDigits = 4300
	// maxLongBytes bounds LONG4 integers, whose decoding is quadratic.
	maxLongBytes = 4096
	// The unpickler's memory is bounded by unpickleBaseCost plus
	// unpickleCostPerByte times the size of the pickle, estimating each
	// opcode's allocations by opcodeCost (real pickles use a fraction).
	unpickleBaseCost    = 64 << 20
	unpickleCostPerByte = 64
)

// opcodeCost estimates what the unpickler allocates for one opcode, beyond
// the bytes of its argument: containers and marks allocate backing arrays.
func opcodeCost(op byte) int64 {
	switch op {
	case '(': // MARK: a fresh stack
		return 288
	case '}', 0x8f: // EMPTY_DICT, EMPTY_SET
		return 256
	case ']', 0x85, 0x86, 0x87: // EMPTY_LIST, TUPLE1..3
		return 128
	}
	return 64
}

// scanPickle walks the opcodes of the pickle at the start of data without
// running them, and returns its length through the STOP opcode. It checks
// that every argument lies inside data, that lengths are sane and that the
// unpickler's memory stays bounded, so that gopickle, which allocates what
// a length field claims before reading, only ever sees checked input.
func scanPickle(data []byte) (int, error) {
	pos := 0
	depth := 0
	var cost int64
	limit := int64(unpickleBaseCost) + unpickleCostPerByte*int64(len(data))
	need := func(n uint64) error {
		if n > uint64(len(data)-pos) {
			return fmt.Errorf("pickle truncated: opcode argument of %d bytes at offset %d runs past the end", n, pos)
		}
		return nil
	}
	line := func(maxLen int) error {
		i := bytes.IndexByte(data[pos:], '\n')
		if i < 0 {
			return fmt.Errorf("pickle truncated: unterminated line at offset %d", pos)
		}
		if maxLen > 0 && i > maxLen {
			return fmt.Errorf("pickle number of %d digits at offset %d is too long", i, pos)
		}
		pos += i + 1
		cost += int64(i)
		return nil
	}
	// counted reads a little-endian length of size bytes, then skips that
	// many bytes of payload.
	counted := func(size int, signed bool) error {
		if err := need(uint64(size)); err != nil {
			return err
		}
		var n uint64
		switch size {
		case 1:
			n = uint64(data[pos])
		case 4:
			n = uint64(binary.LittleEndian.Uint32(data[pos:]))
			if signed && n > math.MaxInt32 {
				return fmt.Errorf("pickle has a negative length at offset %d", pos)
			}
		case 8:
			n = binary.LittleEndian.Uint64(data[pos:])
		}
		pos += size
		if err := need(n); err != nil {
			return err
		}
		pos += int(n)
		cost += int64(n)
		return nil
	}
	for {
		if pos >= len(data) {
			return 0, fmt.Errorf("pickle truncated: no STOP opcode in %d bytes", len(data))
		}
		op := data[pos]
		at := pos
		pos++
		cost += opcodeCost(op)
		var err error
		switch op {
		case '.': // STOP
			if cost > int64(unpickleBaseCost)+unpickleCostPerByte*int64(pos) {
				return 0, fmt.Errorf("pickle of %d bytes would take too much memory to unpickle", pos)
			}
			return pos, nil
		case '(': // MARK
			depth++
			if depth > maxMarkDepth {
				return 0, fmt.Errorf("pickle nests deeper than %d levels", maxMarkDepth)
			}
		case '1', 'd', 'e', 'l', 't', 'u', 'o', 0x90, 0x91: // pop to MARK
			depth--
		case 'i': // INST: pops to MARK, two lines
			depth--
			if err = line(0); err == nil {
				err = line(0)
			}
		case '0', '2', 'N', 'Q', 'R', 'a', 'b', '}', ']', ')', 's',
			0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f, 0x92, 0x93, 0x94, 0x97, 0x98:
			// no argument
		case 'F', 'I', 'L': // FLOAT, INT, LONG
			err = line(maxDigits)
		case 'P', 'S', 'V', 'g', 'p': // PERSID, STRING, UNICODE, GET, PUT
			err = line(0)
		case 'c': // GLOBAL
			if err = line(0); err == nil {
				err = line(0)
			}
		case 'K', 'h', 'q', 0x80, 0x82: // one byte
			err = need(1)
			pos++
		case 'M', 0x83: // two bytes
			err = need(2)
			pos += 2
		case 'J', 'j', 'r', 0x84: // four bytes
			err = need(4)
			pos += 4
		case 'G': // BINFLOAT
			err = need(8)
			pos += 8
		case 0x95: // FRAME: its opcodes follow inline, only the size is read
			err = need(8)
			if err == nil {
				n := binary.LittleEndian.Uint64(data[pos:])
				pos += 8
				if err = need(n); err == nil {
					cost += int64(n) // the frame is copied out whole
				}
			}
		case 'T': // BINSTRING
			err = counted(4, true)
		case 'X', 'B': // BINUNICODE, BINBYTES
			err = counted(4, false)
		case 'U', 'C', 0x8c: // SHORT_BINSTRING, SHORT_BINBYTES, SHORT_BINUNICODE
			err = counted(1, false)
		case 0x8d, 0x8e, 0x96: // BINUNICODE8, BINBYTES8, BYTEARRAY8
			err = counted(8, false)
		case 0x8a: // LONG1
			err = counted(1, false)
		case 0x8b: // LONG4
			if err = need(4); err == nil && binary.LittleEndian.Uint32(data[pos:]) > maxLongBytes {
				err = fmt.Errorf("pickle integer at offset %d is longer than %d bytes", at, maxLongBytes)
			}
			if err == nil {
				err = counted(4, true)
			}
		default:
			return 0, fmt.Errorf("pickle has unknown opcode 0x%02x at offset %d", op, at)
		}
		if err != nil {
			return 0, err
		}
		if depth < 0 {
			return 0, fmt.Errorf("pickle pops a MARK that was never pushed, at offset %d", at)
		}
		if cost > limit {
			return 0, fmt.Errorf("pickle would take too much memory to unpickle (at offset %d)", at)
		}
	}
}
