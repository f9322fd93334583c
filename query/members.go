package query

import (
	"math/bits"
	"slices"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
)

// members is the set of base ids a request selects. A search answered by
// dense index bitmaps (a common letter, a common word) is a denseSet: its
// answer is computed word by word and never turned into ids, because
// extracting the ids of a sparse result costs a mispredicted branch per
// word — measured at 2 M systems, intersecting a gram with a 200 k-system
// caller took 220 µs in roaring (most of it filling the result's arrays)
// against about 30 µs word-wise. Other answers stay roaring bitmaps.
type members interface {
	card() int
	has(id uint32) bool
	// bits returns the set as one bit per id (bit id%64 of word id/64;
	// ids past the words are absent) and a function to call when done.
	bits() (words []uint64, done func())
	// each calls fn with the ids in [lo, hi) in ascending batches; fn must
	// not keep the batch.
	each(lo, hi uint32, fn func(ids []uint32))
	// split returns an id that about half of the ids lie below.
	split() uint32
	// remove drops ids from the set.
	remove(ids *roaring.Bitmap)
	// cut drops the ids ≥ n and returns them, ascending.
	cut(n uint32) []uint32
	// bitmap returns the set as a roaring bitmap the caller may change.
	bitmap() *roaring.Bitmap
	// release returns pooled memory; the set is unusable afterwards.
	release()
}

// roaringSet is an members held as a roaring bitmap; owned says whether it
// may be changed (else it is shared, e.g. the caller's acl bitmap, and is
// copied on the first change).
type roaringSet struct {
	b     *roaring.Bitmap
	owned bool
}

func (s *roaringSet) card() int          { return int(s.b.GetCardinality()) }
func (s *roaringSet) has(id uint32) bool { return s.b.Contains(id) }

func (s *roaringSet) bits() ([]uint64, func()) {
	if s.b.IsEmpty() {
		return nil, func() {}
	}
	bp := getWords(int(s.b.Maximum()/64) + 1)
	s.b.WriteDenseTo(*bp)
	return *bp, func() { putWords(bp) }
}

func (s *roaringSet) each(lo, hi uint32, fn func(ids []uint32)) {
	buf := make([]uint32, 0, 256)
	if lo > 0 {
		// (Only many-iterators fill batches, and they cannot skip ahead.)
		it := s.b.Iterator()
		it.AdvanceIfNeeded(lo)
		for it.HasNext() {
			id := it.Next()
			if id >= hi {
				break
			}
			if buf = append(buf, id); len(buf) == cap(buf) {
				fn(buf)
				buf = buf[:0]
			}
		}
		if len(buf) > 0 {
			fn(buf)
		}
		return
	}
	it := s.b.ManyIterator()
	buf = buf[:cap(buf)]
	for n := it.NextMany(buf); n > 0; n = it.NextMany(buf) {
		if buf[n-1] >= hi {
			if n, _ = slices.BinarySearch(buf[:n], hi); n > 0 {
				fn(buf[:n])
			}
			return
		}
		fn(buf[:n])
	}
}

func (s *roaringSet) split() uint32 {
	if s.b.IsEmpty() {
		return 0
	}
	id, _ := s.b.Select(uint32(s.b.GetCardinality() / 2))
	return id
}

func (s *roaringSet) own() {
	if !s.owned {
		s.b, s.owned = s.b.Clone(), true
	}
}

func (s *roaringSet) remove(ids *roaring.Bitmap) {
	if ids.IsEmpty() || !s.b.Intersects(ids) {
		return
	}
	s.own()
	s.b.AndNot(ids)
}

func (s *roaringSet) cut(n uint32) []uint32 {
	if s.b.IsEmpty() || s.b.Maximum() < n {
		return nil
	}
	tail := s.b.Clone()
	tail.RemoveRange(0, uint64(n))
	s.own()
	s.b.RemoveRange(uint64(n), 1<<32)
	return tail.ToArray()
}

func (s *roaringSet) bitmap() *roaring.Bitmap {
	s.own()
	return s.b
}

func (s *roaringSet) release() {}

// denseSet is an members held as one bit per id, in pooled words.
type denseSet struct {
	wp *[]uint64
	w  []uint64
	n  int // cardinality
}

func (s *denseSet) card() int { return s.n }

func (s *denseSet) has(id uint32) bool {
	i := int(id >> 6)
	return i < len(s.w) && s.w[i]&(1<<(id&63)) != 0
}

func (s *denseSet) bits() ([]uint64, func()) { return s.w, func() {} }

func (s *denseSet) each(lo, hi uint32, fn func(ids []uint32)) {
	// Two ids per word are written unconditionally (the count then says
	// how many were real): a loop per set bit would mispredict its exit on
	// about every word of a sparse set, which costs more than the writes.
	var buf [256 + 64]uint32
	n := 0
	last := min(uint64(len(s.w)), (uint64(hi)+63)/64)
	for i := int(lo / 64); i < int(last); i++ {
		w := s.w[i]
		if i == int(lo/64) {
			w &^= 1<<(lo&63) - 1
		}
		if i == int(hi/64) {
			w &= 1<<(hi&63) - 1
		}
		base := uint32(i << 6)
		c := bits.OnesCount64(w)
		buf[n] = base + uint32(bits.TrailingZeros64(w))
		w &= w - 1
		buf[n+1] = base + uint32(bits.TrailingZeros64(w))
		if c > 2 {
			w &= w - 1
			for j := n + 2; w != 0; j++ {
				buf[j] = base + uint32(bits.TrailingZeros64(w))
				w &= w - 1
			}
		}
		if n += c; n >= 256 {
			fn(buf[:n])
			n = 0
		}
	}
	if n > 0 {
		fn(buf[:n])
	}
}

func (s *denseSet) split() uint32 {
	seen := 0
	for i, w := range s.w {
		if seen += bits.OnesCount64(w); seen >= s.n/2 {
			return uint32(i+1) * 64
		}
	}
	return uint32(len(s.w)) * 64
}

func (s *denseSet) remove(ids *roaring.Bitmap) {
	it := ids.Iterator()
	for it.HasNext() {
		id := it.Next()
		i := int(id >> 6)
		if i >= len(s.w) {
			return
		}
		if m := uint64(1) << (id & 63); s.w[i]&m != 0 {
			s.w[i] &^= m
			s.n--
		}
	}
}

func (s *denseSet) cut(n uint32) []uint32 {
	var tail []uint32
	for i := int(n >> 6); i < len(s.w); i++ {
		w := s.w[i]
		if i == int(n>>6) {
			w &^= 1<<(n&63) - 1 // keep the ids below n
		}
		s.w[i] &^= w
		for w != 0 {
			tail = append(tail, uint32(i<<6+bits.TrailingZeros64(w)))
			w &= w - 1
			s.n--
		}
	}
	return tail
}

func (s *denseSet) bitmap() *roaring.Bitmap { return roaring.FromDense(s.w, true) }

func (s *denseSet) release() {
	if s.wp != nil {
		putWords(s.wp)
		s.wp, s.w = nil, nil
	}
}

// densePool holds word buffers over ids, all zero while pooled.
var densePool sync.Pool

// getWords returns a zeroed pooled buffer of n words.
func getWords(n int) *[]uint64 {
	bp, _ := densePool.Get().(*[]uint64)
	if bp == nil || cap(*bp) < n {
		b := make([]uint64, n)
		bp = &b
	}
	*bp = (*bp)[:n]
	return bp
}

// putWords zeroes a buffer and pools it.
func putWords(bp *[]uint64) {
	clear(*bp)
	densePool.Put(bp)
}

// denseAnswer computes (∪ parts) ∩ within ∪ exact in words; exact (may be
// nil) is already inside within.
func denseAnswer(parts []*roaring.Bitmap, within, exact *roaring.Bitmap) *denseSet {
	maxID := within.Maximum()
	for _, b := range parts {
		if !b.IsEmpty() {
			maxID = max(maxID, b.Maximum())
		}
	}
	n := int(maxID/64) + 1
	acc := getWords(n)
	tmp := getWords(n)
	defer putWords(tmp)
	a, t := *acc, *tmp
	// WriteDenseTo ORs array and run containers into the words but copies
	// bitmap containers over them: the first part with bitmap containers
	// is written first, into zero words, any other through tmp.
	// (Stats walks every container: asked once per part.)
	copies := make([]bool, len(parts))
	first := -1
	for i, b := range parts {
		if copies[i] = hasBitmapContainers(b); copies[i] && first < 0 {
			first = i
			b.WriteDenseTo(a)
		}
	}
	for i, b := range parts {
		switch {
		case i == first:
		case !copies[i]:
			b.WriteDenseTo(a)
		default:
			b.WriteDenseTo(t)
			for j := range a {
				a[j] |= t[j]
			}
			clear(t)
		}
	}
	within.WriteDenseTo(t)
	for j := range a {
		a[j] &= t[j]
	}
	if exact != nil {
		if !hasBitmapContainers(exact) {
			exact.WriteDenseTo(a)
		} else {
			clear(t)
			exact.WriteDenseTo(t)
			for j := range a {
				a[j] |= t[j]
			}
		}
	}
	s := &denseSet{wp: acc, w: a}
	for _, w := range a {
		s.n += bits.OnesCount64(w)
	}
	return s
}

// hasBitmapContainers reports whether b holds any bitmap container.
func hasBitmapContainers(b *roaring.Bitmap) bool { return b.Stats().BitmapContainers > 0 }
