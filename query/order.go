package query

import (
	"container/heap"
	"runtime"
	"slices"
)

// ordering is a total order of a set of ids: order[p] is the id at
// position p. Scans compare ids by a key monotonic in the order: either
// their rank (rank[id], the position), or — for the name order — the pair
// (name number, id), read from the name numbers that verifying a search
// has just touched instead of a rank array the search never reads. It is
// immutable once built.
type ordering struct {
	order  []uint32
	rank   []uint32 // by id; ids not in order hold noRank; nil with nameID
	nameID []uint32 // by id, if the order is by (nameID, id)
}

const noRank = ^uint32(0)

func newOrdering(order []uint32, n uint32) ordering {
	rank := make([]uint32, n)
	for i := range rank {
		rank[i] = noRank
	}
	for p, id := range order {
		rank[id] = uint32(p)
	}
	return ordering{order: order, rank: rank}
}

// key returns id's scan key: larger keys come later in the order.
func (o *ordering) key(id uint32) uint64 {
	if o.nameID != nil {
		return uint64(o.nameID[id])<<32 | uint64(id)
	}
	return uint64(o.rank[id])
}

// posKey is the key of the id at position p; past the end, a key above
// every id's.
func (o *ordering) posKey(p int) uint64 {
	if p >= len(o.order) {
		return ^uint64(0)
	}
	return o.key(o.order[p])
}

// search returns the first position p whose id sorts after the cursor:
// after(id) reports whether id sorts strictly after it. after must be
// monotonic along order.
func (o *ordering) search(after func(id uint32) bool) int {
	return sortSearch(len(o.order), func(p int) bool { return after(o.order[p]) })
}

// Page selection, chosen per request (see page). A page is the k ids of a
// set with the smallest (or largest) positions past a start:
//
//   - walk: visit positions from the start and keep the ids in the set:
//     ~k·N/|set| Contains calls for a set spread evenly over the order — a
//     200 k-system installer in a 2 M catalogue needs ~500 for a page;
//   - dense walk: the same walk over a bit set written from the set, for
//     sets whose walk is long enough that writing the bits (one per id) is
//     cheaper than a Contains per step;
//   - scan: every id of the set, a rank lookup each, the k best kept in a
//     heap (mostly rejected against its top).
//
// A set held as words (denseSet) is walked without writing anything, so
// its walks may be longer; and the walk is only tried when a sample of the
// stretch it would visit holds enough of the set. Walks visit only the
// stretch of the order the set lies in (the span of the index bitmaps that
// answered it).
//
// Measured at 2 M systems, a walk step costs ~4× a rank lookup. Sets that
// match a few names are bunched in the name order (every surname's "Barn"s
// together), which makes walks longer than expected; so a walk is tried
// only when expected far below a scan, and gives up after an eighth of a
// scan's cost. (Intersecting the set with bitmaps of stretches of the order
// was tried, to skip empty stretches: at 64 k positions per stretch each
// intersection cost more than it saved.)
const (
	// scanBelow: sets at most this large are always scanned.
	scanBelow = 4096
	// walkCost is the cost of a walk step in rank lookups.
	walkCost = 4
	// denseWalkCost is a walk step's cost (a Contains on the set) in ids
	// written to the bit set of a dense walk: past expected·denseWalkCost
	// ids, writing the bit set is cheaper than the Contains calls.
	denseWalkCost = 50
)

// page returns up to k ids of set in order, starting at position start:
// ascending, the ids at positions ≥ start; descending, the ids at positions
// < start, from the highest down. Every id of set must be in the ordering,
// at a position of sp; walks visit only those.
func (o *ordering) page(set members, sp span, start int, desc bool, k int) []uint32 {
	card := set.card()
	if card == 0 || k <= 0 {
		return nil
	}
	if card <= scanBelow {
		return o.scan(set, start, desc, k)
	}
	sp = span{max(sp.lo, 0), min(sp.hi, len(o.order))}
	expected := k * ((sp.hi - sp.lo) / card)
	if desc {
		sp.hi = min(sp.hi, start)
	} else {
		sp.lo = max(sp.lo, start)
	}
	if sp.lo >= sp.hi {
		return nil
	}
	if d, ok := set.(*denseSet); ok {
		// Membership is one load already: a walk step costs about a
		// sixth of a scanned id (whose key is a cache miss). A walk that
		// gives up costs its budget on top of the scan, so the stretch it
		// would walk is sampled first: ids bunched elsewhere in the order
		// (names after the digits of the addresses) show as no hits.
		budget := freeWalkSteps * card
		if expected < budget && 2*o.sampledMembers(d.has, sp, desc, budget) >= k {
			if out, ok := o.walk(d.has, sp, desc, k, budget); ok {
				return out
			}
		}
		return o.scan(set, start, desc, k)
	}
	switch {
	case expected*denseWalkCost < card: // (denseWalkCost > 4·walkCost)
		if out, ok := o.walk(set.has, sp, desc, k, card/(2*walkCost)); ok {
			return out
		}
	case expected < card:
		if out, ok := o.denseWalk(set, sp, desc, k, card); ok {
			return out
		}
	}
	return o.scan(set, start, desc, k)
}

// walkSamples is how many positions sampledMembers tests.
const walkSamples = 1024

// sampledMembers estimates how many ids of has the first budget positions
// a walk of sp would visit hold, from walkSamples positions spread over
// them.
func (o *ordering) sampledMembers(has func(id uint32) bool, sp span, desc bool, budget int) int {
	width := min(budget, sp.hi-sp.lo)
	if width <= 0 {
		return 0
	}
	hits := 0
	for j := range walkSamples {
		p := sp.lo + j*width/walkSamples
		if desc {
			p = sp.hi - 1 - j*width/walkSamples
		}
		if has(o.order[p]) {
			hits++
		}
	}
	return hits * width / walkSamples
}

// freeWalkSteps bounds the walk of a set held as bits, in steps per id of
// the set: past it, a scan is cheaper.
const freeWalkSteps = 4

// denseWalk is a walk testing membership in a bit set written from set:
// writing costs about a nanosecond per id and each step then one load
// (a roaring Contains, a binary search, ~50 ns), so sets whose page needs
// fewer steps than they hold walk far cheaper than they scan. It gives up
// after budget steps.
func (o *ordering) denseWalk(set members, sp span, desc bool, k, budget int) ([]uint32, bool) {
	bits, done := set.bits()
	defer done()
	return o.walk(func(id uint32) bool {
		w := int(id >> 6)
		return w < len(bits) && bits[w]&(1<<(id&63)) != 0
	}, sp, desc, k, budget)
}

// walk visits the positions of sp upwards (downwards, descending) and keeps
// the ids has holds, until k are kept; it gives up after budget steps.
func (o *ordering) walk(has func(id uint32) bool, sp span, desc bool, k, budget int) ([]uint32, bool) {
	out := make([]uint32, 0, k)
	if desc {
		for p := sp.hi - 1; p >= sp.lo && len(out) < k; p-- {
			if budget--; budget < 0 {
				return nil, false
			}
			if id := o.order[p]; has(id) {
				out = append(out, id)
			}
		}
		return out, true
	}
	for p := sp.lo; p < sp.hi && len(out) < k; p++ {
		if budget--; budget < 0 {
			return nil, false
		}
		if id := o.order[p]; has(id) {
			out = append(out, id)
		}
	}
	return out, true
}

// rankHeap keeps the k best keys: a max-heap for ascending pages (the root
// is the worst kept), a min-heap for descending ones.
type rankHeap struct {
	r    []uint64
	desc bool
}

func (h *rankHeap) Len() int { return len(h.r) }
func (h *rankHeap) Less(i, j int) bool {
	if h.desc {
		return h.r[i] < h.r[j]
	}
	return h.r[i] > h.r[j]
}
func (h *rankHeap) Swap(i, j int) { h.r[i], h.r[j] = h.r[j], h.r[i] }
func (h *rankHeap) Push(x any)    { h.r = append(h.r, x.(uint64)) }
func (h *rankHeap) Pop() any {
	x := h.r[len(h.r)-1]
	h.r = h.r[:len(h.r)-1]
	return x
}

// parallelScanAbove: sets larger than this are scanned on two cores, each
// half of the ids keeping its own k best (a scan is a rank lookup per id,
// mostly a cache miss, so the halves overlap their misses).
const parallelScanAbove = 16 << 10

func (o *ordering) scan(set members, start int, desc bool, k int) []uint32 {
	sk := o.posKey(start)
	var keys []uint64
	if set.card() > parallelScanAbove && runtime.GOMAXPROCS(0) > 1 {
		// Each core takes about half of the ids, in id order.
		half := set.split()
		lower, upper := o.newTopK(sk, desc, k), o.newTopK(sk, desc, k)
		done := make(chan struct{})
		go func() {
			defer close(done)
			set.each(half, ^uint32(0), upper.offer)
		}()
		set.each(0, half, lower.offer)
		<-done
		keys = append(lower.h.r, upper.h.r...)
	} else {
		t := o.newTopK(sk, desc, k)
		set.each(0, ^uint32(0), t.offer)
		keys = t.h.r
	}
	if desc {
		slices.SortFunc(keys, func(a, b uint64) int {
			if a > b {
				return -1
			}
			return 1
		})
	} else {
		slices.Sort(keys)
	}
	keys = keys[:min(k, len(keys))]
	out := make([]uint32, len(keys))
	for i, r := range keys {
		if o.nameID != nil {
			out[i] = uint32(r)
		} else {
			out[i] = o.order[r]
		}
	}
	return out
}

// topK keeps the keys of the k best ids offered that are eligible after the
// start key sk: keys ≥ sk ascending, below it descending (unsorted).
type topK struct {
	o    *ordering
	h    rankHeap
	sk   uint64
	desc bool
	k    int
}

func (o *ordering) newTopK(sk uint64, desc bool, k int) *topK {
	return &topK{o: o, h: rankHeap{r: make([]uint64, 0, k), desc: desc}, sk: sk, desc: desc, k: k}
}

func (t *topK) offer(ids []uint32) {
	h, sk, k := &t.h, t.sk, t.k
	for _, id := range ids {
		r := t.o.key(id)
		if t.desc {
			if r >= sk {
				continue
			}
			if len(h.r) == k {
				if r <= h.r[0] {
					continue
				}
				h.r[0] = r
				heap.Fix(h, 0)
				continue
			}
		} else {
			if r < sk {
				continue
			}
			if len(h.r) == k {
				if r >= h.r[0] {
					continue
				}
				h.r[0] = r
				heap.Fix(h, 0)
				continue
			}
		}
		heap.Push(h, r)
	}
}
