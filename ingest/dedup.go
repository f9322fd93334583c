package ingest

import (
	"errors"
	"fmt"
	"sync"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
)

// SeqWindow is how many of a gateway's most recent sequence numbers are
// remembered. A request whose seq is within the window and seen before is a
// duplicate. One far below the window (more than SeqWindow under the
// highest seen) is taken as a gateway that reset its counter — after a
// firmware reset, say — and starts a new window, rather than being refused
// forever. 1 M seqs is two years of one post a minute, far beyond any retry;
// consecutive seqs cost a few bytes (run-length containers).
const SeqWindow = 1 << 20

// seqState is what idempotency knows of one seq.
type seqState uint8

const (
	seqNew seqState = iota
	seqDuplicate
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

type seqWindow struct {
	mu       sync.Mutex
	seen     *roaring64.Bitmap
	max      uint64
	inflight map[uint64]struct{}
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
		w = &seqWindow{seen: roaring64.New(), inflight: map[uint64]struct{}{}}
		d.gateways[gw] = w
	}
	return w
}

// reserve classifies seq and, when it is new, reserves it until commit or
// release.
func (d *dedup) reserve(gw uint32, seq uint64) seqState {
	w := d.window(gw)
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.inflight[seq]; ok {
		return seqInFlight
	}
	if w.within(seq) && w.seen.Contains(seq) {
		return seqDuplicate
	}
	w.inflight[seq] = struct{}{}
	return seqNew
}

// within reports whether seq falls in the remembered window.
func (w *seqWindow) within(seq uint64) bool {
	return w.max < SeqWindow || seq > w.max-SeqWindow
}

// commit records seq as durable and ends its reservation.
func (d *dedup) commit(gw uint32, seq uint64) {
	w := d.window(gw)
	w.mu.Lock()
	delete(w.inflight, seq)
	w.add(seq)
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
func (d *dedup) observe(gw uint32, seq uint64) {
	w := d.window(gw)
	w.mu.Lock()
	w.add(seq)
	w.mu.Unlock()
}

func (w *seqWindow) add(seq uint64) {
	if !w.within(seq) {
		// The counter was reset: a new window starts here.
		w.seen.Clear()
		w.max = seq
	}
	w.seen.Add(seq)
	w.dirty = true
	if seq > w.max {
		w.max = seq
		if seq > SeqWindow && seq%4096 == 0 {
			// Forget what slid out of the window, now and then.
			w.seen.RemoveRange(0, seq-SeqWindow+1)
		}
	}
}

// checkpoint is the persisted form of one gateway's window.
type checkpoint struct {
	gateway uint32
	max     uint64
	seqs    []byte // roaring64 portable serialization
}

// takeDirty returns the windows changed since the last call, for the
// ingest_dedup table, and marks them clean.
func (d *dedup) takeDirty(gws []uint32) ([]checkpoint, error) {
	out := make([]checkpoint, 0, len(gws))
	for _, gw := range gws {
		d.mu.RLock()
		w := d.gateways[gw]
		d.mu.RUnlock()
		if w == nil {
			continue
		}
		w.mu.Lock()
		if !w.dirty {
			w.mu.Unlock()
			continue
		}
		b, err := w.seen.ToBytes()
		max := w.max
		w.dirty = false
		w.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("ingest: serialize seq window: %w", err)
		}
		out = append(out, checkpoint{gateway: gw, max: max, seqs: b})
	}
	return out, nil
}

var errBadCheckpoint = errors.New("ingest: bad seq window checkpoint")

// restore loads a persisted window (start-up), merging with what is there.
func (d *dedup) restore(cp checkpoint) error {
	seen := roaring64.New()
	if err := seen.UnmarshalBinary(cp.seqs); err != nil {
		return fmt.Errorf("%w: gateway %d: %w", errBadCheckpoint, cp.gateway, err)
	}
	w := d.window(cp.gateway)
	w.mu.Lock()
	defer w.mu.Unlock()
	if cp.max >= w.max {
		seen.Or(w.seen)
		w.seen, w.max = seen, cp.max
	} else {
		w.seen.Or(seen)
	}
	return nil
}
