package wal

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzRecordDecode feeds arbitrary bytes to the record decoder as the body
// of a segment. It must never panic nor return a record whose CRC does not
// match, and Open must accept any such body in the last segment, cutting it
// at the first bad record unless only zeros follow, and replay exactly the
// records the decoder found.
// Seeds: testdata/fuzz/FuzzRecordDecode.
func FuzzRecordDecode(f *testing.F) {
	var valid []byte
	for i := range 5 {
		valid = appendRecord(valid, payload(i*7))
	}
	f.Add(valid)
	f.Fuzz(func(t *testing.T, body []byte) {
		sc := newScanner(bytes.NewReader(body), int64(len(body)))
		var want [][]byte
		for {
			off := sc.off
			p, ok := sc.next()
			if !ok {
				break
			}
			// Check the record against the raw bytes, independently of the
			// scanner: the frame at off, CRC over length and payload.
			raw := body[off:]
			n := binary.LittleEndian.Uint32(raw)
			if int(n) != len(p) || !bytes.Equal(raw[recordHeaderSize:recordHeaderSize+int(n)], p) {
				t.Fatalf("record at %d does not match its bytes", off)
			}
			crc := crc32.Update(crc32.Checksum(raw[:4], castagnoli), castagnoli, p)
			if crc != binary.LittleEndian.Uint32(raw[4:]) {
				t.Fatalf("record at %d returned with a bad CRC", off)
			}
			want = append(want, bytes.Clone(p))
		}
		if sc.off > int64(len(body)) || (sc.err == nil && sc.off != int64(len(body))) {
			t.Fatalf("scan stopped at %d of %d without error", sc.off, len(body))
		}

		dir := t.TempDir()
		path := filepath.Join(dir, segmentName(1))
		if err := os.WriteFile(path, append(appendHeader(nil, 1), body...), 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := Open(dir, Options{Logger: quiet}, nil)
		if err != nil {
			t.Fatalf("Open with a bad tail in the last segment: %v", err)
		}
		defer w.Close()
		// Zeros after the last record are a preallocated segment's unused
		// end, not a torn write.
		torn := int64(len(body)) - sc.off
		if !slices.ContainsFunc(body[sc.off:], func(b byte) bool { return b != 0 }) {
			torn = 0
		}
		if r := w.Recovery(); r.TornBytes != torn {
			t.Fatalf("torn bytes %d, want %d", r.TornBytes, torn)
		}
		got := replayAll(t, w, 0)
		if len(got) != len(want) {
			t.Fatalf("replayed %d records, decoder found %d", len(got), len(want))
		}
		for i := range got {
			if got[i].lsn != uint64(i)+1 || !bytes.Equal(got[i].payload, want[i]) {
				t.Fatalf("record %d differs", i)
			}
		}
	})
}
