package acl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"iter"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// A stored snapshot is the state's export (Snapshot.Export) — its registers
// as events, not its bitmaps — in a header and chunks, version 1:
//
//	header  magic "FSACLSNP", version byte (1), then uvarints:
//	          covers  Unix ms: every event inserted into the log before
//	                  this instant is folded in (see Log.Snapshot)
//	          hlc     the writer's clock when the snapshot was taken: after
//	                  every stamp in it; with node, the snapshot's id
//	          node    the writer's node id (≤ 65535)
//	          events  how many events the chunks hold
//	          chunks  how many chunks follow (≤ maxSnapChunks)
//	        then the CRC-32C of the bytes above, 4 bytes little-endian.
//	chunk   the CRC-32C of the rest, 4 bytes little-endian, then one zstd
//	        frame (with its content size and checksum) of at most
//	        maxSnapChunkRaw bytes: records, each an uvarint length and an
//	        event's encoding (Event.AppendBinary). A record never spans two
//	        chunks, so each chunk's checksums are verified before any of its
//	        events is used.
//
// In the acl_snapshots table the header and each chunk are rows of their
// own (chunk 0 is the header, written last); as one byte string — the blob,
// which FuzzSnapshotDecode feeds — the header is followed by each chunk
// prefixed with its length as an uvarint.
//
// Why the registers and not the index: the index (role sets, roaring
// bitmaps, memberships) is derived from the registers, and replaying the
// export rebuilds it; storing it too would double the snapshot and add a
// second copy of the state that must agree with the first — a bitmap that
// passes roaring's Validate can still disagree with the grants, and the
// bitmaps are what DESIGN's isolation promise rests on. Why chunks: a
// snapshot of 10 M grants is hundreds of MB of records; in chunks of 8 MiB
// neither the writer nor the reader holds more than one chunk (the embedded
// engine materializes each answer whole), and a damaged chunk is found by its
// checksum before anything of it is applied.
const (
	snapMagic   = "FSACLSNP"
	snapVersion = 1
	// maxSnapChunkRaw bounds a chunk's records, uncompressed: what a reader
	// accepts. Writers fill snapChunkRaw.
	maxSnapChunkRaw = 32 << 20
	// maxSnapChunks bounds the chunk count a header may claim: 32 TiB of
	// records at the writer's chunk size, far beyond any state.
	maxSnapChunks = 1 << 22
)

// snapChunkRaw is the records a writer puts in one chunk, uncompressed: 8 MiB
// compresses to about 2 MiB, a row the engine moves in one piece. A variable
// so that tests can make chunks tiny.
var snapChunkRaw = 8 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errSnapshot marks a stored snapshot that cannot be used: damaged,
// incomplete, or of an unknown version.
var errSnapshot = errors.New("acl: unusable snapshot")

// snapHeader is a stored snapshot's header.
type snapHeader struct {
	Covers int64 // Unix ms
	HLC    uint64
	Node   uint16
	Events uint64
	Chunks uint32
}

func (h snapHeader) id() Stamp { return Stamp{HLC: h.HLC, Node: h.Node} }

func (h snapHeader) appendBinary(b []byte) []byte {
	start := len(b)
	b = append(b, snapMagic...)
	b = append(b, snapVersion)
	b = binary.AppendUvarint(b, uint64(h.Covers))
	b = binary.AppendUvarint(b, h.HLC)
	b = binary.AppendUvarint(b, uint64(h.Node))
	b = binary.AppendUvarint(b, h.Events)
	b = binary.AppendUvarint(b, uint64(h.Chunks))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// parseSnapHeader decodes a header from the start of data and returns the
// bytes after it.
func parseSnapHeader(data []byte) (snapHeader, []byte, error) {
	var h snapHeader
	if len(data) < len(snapMagic)+1 || string(data[:len(snapMagic)]) != snapMagic {
		return h, nil, fmt.Errorf("%w: no snapshot header", errSnapshot)
	}
	if v := data[len(snapMagic)]; v != snapVersion {
		return h, nil, fmt.Errorf("%w: snapshot format version %d, want %d", errSnapshot, v, snapVersion)
	}
	d := decoder{b: data[len(snapMagic)+1:]}
	h.Covers = int64(d.uvarint(1<<63 - 1))
	h.HLC = d.uvarint(1<<64 - 1)
	h.Node = uint16(d.uvarint(1<<16 - 1))
	h.Events = d.uvarint(1<<64 - 1)
	h.Chunks = uint32(d.uvarint(maxSnapChunks))
	n := len(data) - len(d.b)
	if d.err == nil && len(d.b) < 4 {
		d.fail("truncated")
	}
	if d.err != nil {
		return h, nil, fmt.Errorf("%w: header: %w", errSnapshot, d.err)
	}
	if binary.LittleEndian.Uint32(d.b) != crc32.Checksum(data[:n], castagnoli) {
		return h, nil, fmt.Errorf("%w: header checksum mismatch", errSnapshot)
	}
	if h.HLC == 0 {
		return h, nil, fmt.Errorf("%w: header without a stamp", errSnapshot)
	}
	return h, d.b[4:], nil
}

// snapWriter turns events into chunks. flush receives each chunk and must
// not retain it after returning.
type snapWriter struct {
	enc    *zstd.Encoder
	raw    []byte // records of the chunk being filled
	rec    []byte // one event's encoding
	buf    []byte // the chunk being flushed
	flush  func(chunk []byte) error
	events uint64
	chunks uint32
	bytes  int64 // chunk bytes flushed
}

func newSnapWriter(flush func([]byte) error) (*snapWriter, error) {
	// One goroutine encodes (EncodeAll); the default level compresses the
	// records about 4:1 at some 150 MB/s on the development machine.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return nil, err
	}
	return &snapWriter{enc: enc, flush: flush, raw: make([]byte, 0, snapChunkRaw+maxEventSize+binary.MaxVarintLen64)}, nil
}

func (w *snapWriter) add(ev Event) error {
	var err error
	if w.rec, err = ev.AppendBinary(w.rec[:0]); err != nil {
		return err
	}
	w.raw = binary.AppendUvarint(w.raw, uint64(len(w.rec)))
	w.raw = append(w.raw, w.rec...)
	w.events++
	if len(w.raw) >= snapChunkRaw {
		return w.flushChunk()
	}
	return nil
}

func (w *snapWriter) flushChunk() error {
	if len(w.raw) == 0 {
		return nil
	}
	w.buf = append(w.buf[:0], 0, 0, 0, 0)
	w.buf = w.enc.EncodeAll(w.raw, w.buf)
	binary.LittleEndian.PutUint32(w.buf, crc32.Checksum(w.buf[4:], castagnoli))
	w.raw = w.raw[:0]
	w.chunks++
	w.bytes += int64(len(w.buf))
	return w.flush(w.buf)
}

// close flushes the last chunk.
func (w *snapWriter) close() error {
	err := w.flushChunk()
	w.enc.Close()
	return err
}

// snapDecoder decompresses chunks, one at a time (DecodeAll is safe for
// concurrent use; with concurrency 1, calls queue).
var snapDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxSnapChunkRaw))
})

// snapReader checks and decodes chunks.
type snapReader struct {
	raw    []byte // decompressed chunk, reused
	batch  []Event
	events uint64
}

// chunk checks one chunk and passes its events to emit in batches; emit
// must not retain the slice. A damaged chunk — its checksum or zstd's does
// not match — is rejected before any of its events reaches emit. A record
// that does not decode in a chunk whose checksums match was written so (by a
// bug, or a newer format): the events before it have been emitted, and they
// are genuine. Errors that are not emit's wrap errSnapshot.
func (r *snapReader) chunk(data []byte, emit func([]Event) error) error {
	if len(data) < 4 {
		return fmt.Errorf("%w: chunk of %d bytes", errSnapshot, len(data))
	}
	if binary.LittleEndian.Uint32(data) != crc32.Checksum(data[4:], castagnoli) {
		return fmt.Errorf("%w: chunk checksum mismatch", errSnapshot)
	}
	dec, err := snapDecoder()
	if err != nil {
		return err
	}
	// DecodeAll verifies the frame's checksum before it returns.
	if r.raw, err = dec.DecodeAll(data[4:], r.raw[:0]); err != nil {
		return fmt.Errorf("%w: decompress chunk: %w", errSnapshot, err)
	}
	if len(r.raw) == 0 {
		return fmt.Errorf("%w: empty chunk", errSnapshot)
	}
	const size = 4096 // events per batch: 1 MiB
	for rest := r.raw; len(rest) > 0; {
		d := decoder{b: rest}
		n := d.uvarint(maxEventSize)
		if d.err == nil && uint64(len(d.b)) < n {
			d.fail("truncated record")
		}
		if d.err != nil {
			return fmt.Errorf("%w: record %d: %w", errSnapshot, r.events, d.err)
		}
		var ev Event
		if err := ev.UnmarshalBinary(d.b[:n]); err != nil {
			return fmt.Errorf("%w: record %d: %w", errSnapshot, r.events, err)
		}
		r.batch = append(r.batch, ev)
		r.events++
		rest = d.b[n:]
		if len(r.batch) == size || len(rest) == 0 {
			if err := emit(r.batch); err != nil {
				return err
			}
			r.batch = r.batch[:0]
		}
	}
	return nil
}

// appendSnapshotBlob appends the blob of a snapshot of evs with header h
// (Events and Chunks are filled in) and returns it with the header.
func appendSnapshotBlob(dst []byte, h snapHeader, evs iter.Seq[Event]) ([]byte, snapHeader, error) {
	var body []byte
	w, err := newSnapWriter(func(chunk []byte) error {
		body = binary.AppendUvarint(body, uint64(len(chunk)))
		body = append(body, chunk...)
		return nil
	})
	if err != nil {
		return dst, h, err
	}
	for ev := range evs {
		if err := w.add(ev); err != nil {
			w.close()
			return dst, h, err
		}
	}
	if err := w.close(); err != nil {
		return dst, h, err
	}
	h.Events, h.Chunks = w.events, w.chunks
	dst = h.appendBinary(dst)
	return append(dst, body...), h, nil
}

// decodeSnapshotBlob decodes a blob, passing its events to emit in batches
// (emit must not retain the slice). A damaged chunk is reported before any
// of its events reaches emit; earlier chunks have been emitted by then.
func decodeSnapshotBlob(blob []byte, emit func([]Event) error) (snapHeader, error) {
	h, rest, err := parseSnapHeader(blob)
	if err != nil {
		return h, err
	}
	var r snapReader
	for i := range h.Chunks {
		d := decoder{b: rest}
		n := d.uvarint(uint64(len(rest)))
		if d.err == nil && uint64(len(d.b)) < n {
			d.fail("truncated")
		}
		if d.err != nil {
			return h, fmt.Errorf("%w: chunk %d length: %w", errSnapshot, i+1, d.err)
		}
		if err := r.chunk(d.b[:n], emit); err != nil {
			return h, fmt.Errorf("chunk %d: %w", i+1, err)
		}
		rest = d.b[n:]
	}
	if len(rest) > 0 {
		return h, fmt.Errorf("%w: %d bytes after the last chunk", errSnapshot, len(rest))
	}
	if r.events != h.Events {
		return h, fmt.Errorf("%w: %d events, the header says %d", errSnapshot, r.events, h.Events)
	}
	return h, nil
}
