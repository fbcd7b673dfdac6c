package pth

import (
	"archive/zip"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/edema/edema/internal/atomicfile"
)

// zipAlignment is the alignment of record data in PyTorch's zip writer,
// which lets readers map storages straight from the file.
const zipAlignment = 64

// WriteValue writes v (see the package documentation for the Go types) to
// path as torch.save would in the given format, atomically: path keeps its
// old contents if anything fails. FormatSafetensors takes a *StateDict or
// a *Dict of tensors.
func WriteValue(path string, v any, format Format) error {
	return atomicfile.Write(path, func(w io.Writer) error { return EncodeValue(w, v, format) })
}

// EncodeValue writes the file WriteValue writes to w.
func EncodeValue(w io.Writer, v any, format Format) error {
	switch format {
	case FormatZip:
		return encodeZip(w, v)
	case FormatLegacy:
		return encodeLegacy(w, v)
	case FormatSafetensors:
		sd, ok := AsStateDict(v)
		if !ok {
			return fmt.Errorf("safetensors holds only a flat dict of tensors, not %T", v)
		}
		return encodeSafetensors(w, sd, nil)
	}
	return fmt.Errorf("cannot write format %s", format)
}

// encodeZip writes PyTorch's zip layout: archive/data.pkl,
// archive/byteorder, archive/data/<key> per storage and archive/version,
// stored uncompressed with data aligned to 64 bytes.
func encodeZip(w io.Writer, v any) error {
	p := &pickleWriter{}
	pkl, err := p.encodePickle(v)
	if err != nil {
		return err
	}
	cw := &countingWriter{w: w}
	zw := zip.NewWriter(cw)
	put := func(name string, data []byte) error {
		// Flushing makes cw.n the offset of the next local header.
		if err := zw.Flush(); err != nil {
			return err
		}
		fw, err := zw.CreateRaw(&zip.FileHeader{
			Name:               name,
			Method:             zip.Store,
			CRC32:              crc32.ChecksumIEEE(data),
			CompressedSize64:   uint64(len(data)),
			UncompressedSize64: uint64(len(data)),
			Extra:              zipPadding(cw.n, len(name)),
		})
		if err != nil {
			return err
		}
		_, err = fw.Write(data)
		return err
	}
	if err := put("archive/data.pkl", pkl); err != nil {
		return err
	}
	if err := put("archive/byteorder", []byte("little")); err != nil {
		return err
	}
	for _, i := range p.storages.sorted() {
		if err := put("archive/data/"+p.storages.keys[i], p.storages.tensors[i].Data); err != nil {
			return err
		}
	}
	// Version 3 is what torch.save writes and every PyTorch since 1.6 reads.
	if err := put("archive/version", []byte("3\n")); err != nil {
		return err
	}
	return zw.Close()
}

// zipPadding returns the extra field PyTorch puts in a local file header
// at offset so that the record's data starts on a multiple of zipAlignment:
// ID "FB", then as many 'Z' bytes as needed.
func zipPadding(offset int64, nameLen int) []byte {
	const localHeaderLen, extraHeaderLen = 30, 4
	start := offset + localHeaderLen + int64(nameLen) + extraHeaderLen
	pad := (zipAlignment - start%zipAlignment) % zipAlignment
	extra := make([]byte, extraHeaderLen+pad)
	extra[0], extra[1] = 'F', 'B'
	binary.LittleEndian.PutUint16(extra[2:], uint16(pad))
	for i := extraHeaderLen; i < len(extra); i++ {
		extra[i] = 'Z'
	}
	return extra
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// encodeLegacy writes the format of torch.save before PyTorch 1.6: the
// magic number, protocol version and system info pickles, the data
// pickle, the sorted storage keys, then per storage its element count as a
// little-endian int64 and its raw elements.
func encodeLegacy(w io.Writer, v any) error {
	header, err := legacyHeader()
	if err != nil {
		return err
	}
	p := &pickleWriter{legacy: true}
	pkl, err := p.encodePickle(v)
	if err != nil {
		return err
	}
	order := p.storages.sorted()
	keys := make([]any, len(order))
	for j, i := range order {
		keys[j] = p.storages.keys[i]
	}
	keyList, err := (&pickleWriter{}).encodePickle(keys)
	if err != nil {
		return err
	}
	for _, part := range [][]byte{header, pkl, keyList} {
		if _, err := w.Write(part); err != nil {
			return err
		}
	}
	for _, i := range order {
		t := p.storages.tensors[i]
		if _, err := w.Write(binary.LittleEndian.AppendUint64(nil, uint64(t.Numel()))); err != nil {
			return err
		}
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}

// legacyHeader returns the three pickles a legacy file starts with: the
// magic number, the protocol version and the system info.
func legacyHeader() ([]byte, error) {
	out := []byte{0x80, 2, 0x8a} // PROTO 2, LONG1
	mb := legacyMagic.Bytes()    // big-endian, top bit clear
	out = append(out, byte(len(mb)))
	for i := len(mb) - 1; i >= 0; i-- {
		out = append(out, mb[i])
	}
	out = append(out, '.')
	proto, err := (&pickleWriter{}).encodePickle(int64(legacyProtocolVersion))
	if err != nil {
		return nil, err
	}
	out = append(out, proto...)
	sizes := NewDict()
	sizes.Set("short", int64(2))
	sizes.Set("int", int64(4))
	sizes.Set("long", int64(4))
	info := NewDict()
	info.Set("protocol_version", int64(legacyProtocolVersion))
	info.Set("little_endian", true)
	info.Set("type_sizes", sizes)
	sysInfo, err := (&pickleWriter{}).encodePickle(info)
	if err != nil {
		return nil, err
	}
	return append(out, sysInfo...), nil
}
