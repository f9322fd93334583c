package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
)

// Idempotency of requests (DESIGN §5): a seq is a gateway's promise that a
// request's body is the one it sent under that seq before.
//
// Each gateway's SeqWindow most recent seqs are remembered with a hash of
// their body (xxhash64 of the body as decompressed). A request whose seq is
// among them is a duplicate if its body hashes the same — answered 200
// "duplicate", nothing stored — and a reused seq if not: 409 seq_reused,
// nothing stored, so a gateway that reuses counters finds out instead of
// losing the batch. A seq that is not among them is new, whatever came
// before: a gateway that reset its counter (a reboot, a firmware update)
// starts again at low seqs, and those are stored, not dropped. Should one
// of them be a very late retry of a batch stored long ago, nothing is
// counted twice either: a reading is identified by its system, panel and
// timestamp (see package store), not by the request that carried it.
//
// The windows are checkpointed in ClickHouse (ingest_dedup) with each flush
// and replayed from the WAL at start-up (records carry the seq and body
// hash), so a duplicate is one also after a restart or a crash.

// SeqWindow is how many of a gateway's most recent seqs are remembered with
// their body hash. 16 covers a gateway retrying its last requests, several
// in flight at once, and a counter restored from a checkpoint a few
// requests old after a reboot — the reuse issue 14 found lost batches to.
// A remembered seq costs 16 bytes, a gateway's window 256.
const SeqWindow = 16

// seqState is what idempotency knows of one seq.
type seqState uint8

const (
	seqNew seqState = iota
	seqDuplicate
	// seqReused: the seq is remembered with another body.
	seqReused
	// seqInFlight: another request with this seq is being made durable;
	// its outcome decides, so this one must retry.
	seqInFlight
)

// dedup remembers, per gateway, the seqs whose readings are durable, and
// reserves the seqs of requests in flight so that two concurrent requests
// with one seq cannot both be stored.
type dedup struct {
	mu       sync.RWMutex
	gateways map[uint32]*seqWindow
}

// seqWindow is one gateway's remembered seqs: a ring of the SeqWindow
// committed last, oldest overwritten first.
type seqWindow struct {
	mu       sync.Mutex
	seqs     [SeqWindow]uint64
	hashes   [SeqWindow]uint64 // 0: not known (restored from an older format)
	n        int               // entries in use
	next     int               // where the next one goes
	inflight map[uint64]uint64 // seq → body hash of a request in flight
	// dirty: changed since the last checkpoint row was taken.
	dirty bool
}

func newDedup() *dedup { return &dedup{gateways: make(map[uint32]*seqWindow)} }

func (d *dedup) window(gw uint32) *seqWindow {
	d.mu.RLock()
	w := d.gateways[gw]
	d.mu.RUnlock()
	if w != nil {
		return w
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if w = d.gateways[gw]; w == nil {
		w = &seqWindow{}
		d.gateways[gw] = w
	}
	return w
}

// find returns the index of seq in the window, or -1.
func (w *seqWindow) find(seq uint64) int {
	for i := range w.n {
		if w.seqs[i] == seq {
			return i
		}
	}
	return -1
}

// reserve classifies a request's seq and body hash and, when the seq is
// new, reserves it until commit or release.
func (d *dedup) reserve(gw uint32, seq, hash uint64) seqState {
	w := d.window(gw)
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.inflight[seq]; ok {
		return seqInFlight
	}
	if i := w.find(seq); i >= 0 {
		if w.hashes[i] == hash || w.hashes[i] == 0 {
			return seqDuplicate
		}
		return seqReused
	}
	if w.inflight == nil {
		w.inflight = map[uint64]uint64{}
	}
	w.inflight[seq] = hash
	return seqNew
}

// commit records seq as durable and ends its reservation.
func (d *dedup) commit(gw uint32, seq, hash uint64) {
	w := d.window(gw)
	w.mu.Lock()
	delete(w.inflight, seq)
	w.add(seq, hash)
	w.mu.Unlock()
}

// release ends a reservation whose request failed.
func (d *dedup) release(gw uint32, seq uint64) {
	w := d.window(gw)
	w.mu.Lock()
	delete(w.inflight, seq)
	w.mu.Unlock()
}

// observe records seq as durable without a reservation (WAL replay).
func (d *dedup) observe(gw uint32, seq, hash uint64) {
	w := d.window(gw)
	w.mu.Lock()
	w.add(seq, hash)
	w.mu.Unlock()
}

func (w *seqWindow) add(seq, hash uint64) {
	w.dirty = true
	if i := w.find(seq); i >= 0 {
		if hash != 0 {
			w.hashes[i] = hash
		}
		return
	}
	w.seqs[w.next], w.hashes[w.next] = seq, hash
	w.next = (w.next + 1) % SeqWindow
	w.n = min(w.n+1, SeqWindow)
}

// checkpoint is the persisted form of one gateway's window.
type checkpoint struct {
	gateway uint32
	max     uint64 // the highest seq (for operators reading the table)
	seqs    []byte // encodeWindow
}

// The checkpoint format: the magic, then each remembered seq, oldest first,
// as 8 bytes of seq and 8 of body hash, little-endian. Rows written before
// it hold a roaring64 bitmap of seqs (no hashes).
var windowMagic = []byte("FSQ1")

func (w *seqWindow) encode() (max uint64, b []byte) {
	b = append(make([]byte, 0, len(windowMagic)+16*w.n), windowMagic...)
	for k := range w.n {
		i := (w.next - w.n + k + SeqWindow) % SeqWindow
		b = binary.LittleEndian.AppendUint64(b, w.seqs[i])
		b = binary.LittleEndian.AppendUint64(b, w.hashes[i])
		max = maxU64(max, w.seqs[i])
	}
	return max, b
}

func maxU64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// takeDirty returns the windows changed since the last call, for the
// ingest_dedup table, and marks them clean.
func (d *dedup) takeDirty(gws []uint32) []checkpoint {
	out := make([]checkpoint, 0, len(gws))
	for _, gw := range gws {
		d.mu.RLock()
		w := d.gateways[gw]
		d.mu.RUnlock()
		if w == nil {
			continue
		}
		w.mu.Lock()
		if w.dirty {
			cp := checkpoint{gateway: gw}
			cp.max, cp.seqs = w.encode()
			w.dirty = false
			out = append(out, cp)
		}
		w.mu.Unlock()
	}
	return out
}

var errBadCheckpoint = errors.New("ingest: bad seq window checkpoint")

// restore loads a persisted window (start-up), before the WAL is replayed
// over it. A row of the format before body hashes gives its SeqWindow
// highest seqs, whose hash is not known: a repeat of one is a duplicate
// whatever its body, as it was before.
func (d *dedup) restore(cp checkpoint) error {
	w := d.window(cp.gateway)
	w.mu.Lock()
	defer w.mu.Unlock()
	if b, ok := cutPrefix(cp.seqs, windowMagic); ok {
		if len(b)%16 != 0 || len(b) > 16*SeqWindow {
			return fmt.Errorf("%w: gateway %d: %d bytes", errBadCheckpoint, cp.gateway, len(cp.seqs))
		}
		for ; len(b) > 0; b = b[16:] {
			w.add(binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:]))
		}
		return nil
	}
	// roaring64's portable format: a bucket count, then per bucket a
	// 4-byte key and a 32-bit bitmap of at least 8 bytes. The count is
	// checked first: the decoder allocates what it says.
	if len(cp.seqs) < 8 || binary.LittleEndian.Uint64(cp.seqs) > uint64(len(cp.seqs)-8)/12 {
		return fmt.Errorf("%w: gateway %d: %d bytes", errBadCheckpoint, cp.gateway, len(cp.seqs))
	}
	seen := roaring64.New()
	if err := seen.UnmarshalBinary(cp.seqs); err != nil {
		return fmt.Errorf("%w: gateway %d: %w", errBadCheckpoint, cp.gateway, err)
	}
	// The decoder takes containers it cannot iterate (an empty one, keys
	// out of order): checked before the iteration below trips on them.
	if err := seen.Validate(); err != nil {
		return fmt.Errorf("%w: gateway %d: %w", errBadCheckpoint, cp.gateway, err)
	}
	var last []uint64
	for it := seen.ReverseIterator(); it.HasNext() && len(last) < SeqWindow; {
		last = append(last, it.Next())
	}
	for i := len(last) - 1; i >= 0; i-- {
		w.add(last[i], 0)
	}
	return nil
}

func cutPrefix(b, prefix []byte) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != string(prefix) {
		return b, false
	}
	return b[len(prefix):], true
}
