package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// On-disk format (version 1).
//
// A segment file is named after the LSN of its first record, 20 decimal
// digits and ".seg" (00000000000000000001.seg), so names sort in LSN order and
// the LSN of every record is known from the name and the record's position.
// It starts with a 32-byte header:
//
//	offset  size  field
//	0       8     magic "FSCPWAL\x00"
//	8       4     format version, uint32 little-endian (= 1)
//	12      4     zero
//	16      8     base LSN, uint64 little-endian (= the file name's number)
//	24      4     CRC-32C of bytes 0–23
//	28      4     zero
//
// then records, back to back:
//
//	0       4     payload length n, uint32 little-endian
//	4       4     CRC-32C (Castagnoli) of bytes 0–3 and the payload
//	8       n     payload
//
// The CRC covers the length, so a corrupted length is caught too; a run of
// zero bytes (a length 0 with CRC 0) never checks out, because the CRC-32C of
// four zero bytes is not 0. That is what lets segments be preallocated: after
// the last record a segment may hold zero bytes up to its end, which mark the
// end of its data (see prealloc.go).

const (
	segmentExt       = ".seg"
	headerSize       = 32
	recordHeaderSize = 8
	formatVersion    = 1
	// maxRecordLen bounds the length field a reader believes, whatever the
	// options of the process that wrote the log were.
	maxRecordLen = 1 << 30
)

var segmentMagic = [8]byte{'F', 'S', 'C', 'P', 'W', 'A', 'L', 0}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func segmentName(base uint64) string {
	return fmt.Sprintf("%020d%s", base, segmentExt)
}

// parseSegmentName returns the base LSN of a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	base, err := strconv.ParseUint(digits, 10, 64)
	return base, err == nil
}

// listSegments returns the base LSNs of the segment files in dir, ascending.
// Other files are ignored.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var bases []uint64
	for _, e := range entries {
		if base, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	return bases, nil
}

func appendHeader(dst []byte, base uint64) []byte {
	start := len(dst)
	dst = append(dst, segmentMagic[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, formatVersion)
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = binary.LittleEndian.AppendUint64(dst, base)
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:start+24], castagnoli))
	return binary.LittleEndian.AppendUint32(dst, 0)
}

// checkHeader verifies a segment header and returns its base LSN.
func checkHeader(h []byte) (uint64, error) {
	if len(h) < headerSize {
		return 0, fmt.Errorf("header: %d bytes", len(h))
	}
	if [8]byte(h[:8]) != segmentMagic {
		return 0, errors.New("header: bad magic")
	}
	if crc32.Checksum(h[:24], castagnoli) != binary.LittleEndian.Uint32(h[24:]) {
		return 0, errors.New("header: checksum mismatch")
	}
	if v := binary.LittleEndian.Uint32(h[8:]); v != formatVersion {
		return 0, fmt.Errorf("header: format version %d, want %d", v, formatVersion)
	}
	return binary.LittleEndian.Uint64(h[16:]), nil
}

// appendRecord appends the framing and payload of one record.
func appendRecord(dst, payload []byte) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	crc := crc32.Update(crc32.Checksum(dst[start:], castagnoli), castagnoli, payload)
	dst = binary.LittleEndian.AppendUint32(dst, crc)
	return append(dst, payload...)
}

// Why a scan stopped before the end of a segment's data.
var (
	errTorn     = errors.New("record extends past the end of the segment")
	errChecksum = errors.New("record checksum mismatch")
	errLength   = errors.New("record length over the format limit")
)

// scanner reads the records of one segment body. Every payload it returns
// has a matching CRC; it stops at the first record that is cut short
// (errTorn) or does not check out.
type scanner struct {
	r    io.Reader
	left int64 // bytes of the body not yet read
	off  int64 // offset of the next record from the start of the body
	buf  []byte
	hdr  [recordHeaderSize]byte
	err  error // why the scan stopped; nil at a clean end
}

func newScanner(r io.Reader, size int64) *scanner {
	return &scanner{r: r, left: size}
}

// next returns the next payload, valid until the following call, or false at
// the end of the data or at the first bad record (see err).
func (s *scanner) next() ([]byte, bool) {
	if s.err != nil || s.left == 0 {
		return nil, false
	}
	h := s.hdr[:]
	if s.left < recordHeaderSize {
		s.err = errTorn
		return nil, false
	}
	if _, err := io.ReadFull(s.r, h); err != nil {
		s.err = fmt.Errorf("read: %w", err)
		return nil, false
	}
	n := int64(binary.LittleEndian.Uint32(h[:4]))
	switch {
	case n > maxRecordLen:
		s.err = errLength
		return nil, false
	case recordHeaderSize+n > s.left:
		s.err = errTorn
		return nil, false
	}
	if int64(cap(s.buf)) < n {
		s.buf = make([]byte, n)
	}
	p := s.buf[:n]
	if _, err := io.ReadFull(s.r, p); err != nil {
		s.err = fmt.Errorf("read: %w", err)
		return nil, false
	}
	if crc32.Update(crc32.Checksum(h[:4], castagnoli), castagnoli, p) != binary.LittleEndian.Uint32(h[4:]) {
		s.err = errChecksum
		return nil, false
	}
	s.left -= recordHeaderSize + n
	s.off += recordHeaderSize + n
	return p, true
}

// readerFor returns a buffered reader over f from the current position.
func readerFor(f *os.File) *bufio.Reader { return bufio.NewReaderSize(f, 256<<10) }

// segmentPath returns the path of the segment with the given base in dir.
func segmentPath(dir string, base uint64) string { return filepath.Join(dir, segmentName(base)) }
