package query

import (
	"runtime"
	"sync"
	"time"
	"weak"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/fleetscope/fleetscope/acl"
)

// Summary is GET /v1/fleet/summary: the caller's viewable systems by
// status, with their power now and energy today.
type Summary struct {
	Systems   int
	ByStatus  [numStatus]int
	PowerDW   int64  // online systems' power, deciwatts
	EnergyMWh uint64 // energy of each system's current local day, mWh
	Panels    int64
	LiveAt    time.Time
}

// FleetSummary summarizes the systems caller may view.
//
// The live part — how many of the caller's systems are online and offline,
// the sums of power, energy and panels — is the caller's bitmap against the
// live view: two intersection cardinalities and one pass over its ids
// reading the view's packed arrays (split over the cores for large
// bitmaps), never a per-system lookup. It is kept per live view for each
// caller bitmap (see liveSums), so the members of an org, whose bitmap is
// the org's shared set, compute it once a second between them, and the
// live refresh precomputes it for the bitmaps asked for lately. The
// unmonitored systems are then taken out per request, from the catalogue
// and the pending changes, so they are as current as the request's acl
// snapshot.
//
// A caller's bitmap is a union of shared sets (its orgs', its own grants).
// When one of them holds nearly all of it, that one is summarized — from
// the cache — and the few systems the others add are summed per request
// and added: a technician with a grant of their own then costs what an org
// member costs, not a union of 200 k systems composed and summed per
// request.
func (s *Service) FleetSummary(caller acl.AccountID) Summary {
	start := time.Now()
	v := s.view()
	var sum Summary
	if base, rest, ok := splitParts(v.snap.SystemsParts(caller, acl.PermView)); ok {
		s.noteHot(base)
		sum = v.summarize(base, true)
		if !rest.IsEmpty() {
			sum.merge(v.summarize(rest, false))
		}
	} else {
		within := v.snap.Systems(caller, acl.PermView)
		s.noteHot(within)
		sum = v.summarize(within, true)
	}
	s.m.observe("fleet_summary_compute", time.Since(start))
	return sum
}

// splitParts splits the union of parts into its largest part and the
// systems the others add, when those are few (an eighth of it, or up to
// smallRest).
func splitParts(parts []*roaring.Bitmap) (base, rest *roaring.Bitmap, ok bool) {
	switch len(parts) {
	case 0:
		return roaring.New(), roaring.New(), true
	case 1:
		return parts[0], roaring.New(), true
	}
	big := 0
	for i, p := range parts {
		if p.GetCardinality() > parts[big].GetCardinality() {
			big = i
		}
	}
	others := make([]*roaring.Bitmap, 0, len(parts)-1)
	var n uint64
	for i, p := range parts {
		if i != big {
			others = append(others, p)
			n += p.GetCardinality()
		}
	}
	base = parts[big]
	if n > smallRest && n*8 > base.GetCardinality() {
		return nil, nil, false
	}
	rest = roaring.FastOr(others...)
	rest.AndNot(base)
	return base, rest, true
}

// smallRest: this many systems are summed per request in microseconds.
const smallRest = 64

// merge adds the summary of a disjoint set of systems.
func (sum *Summary) merge(o Summary) {
	sum.Systems += o.Systems
	for st := range sum.ByStatus {
		sum.ByStatus[st] += o.ByStatus[st]
	}
	sum.PowerDW += o.PowerDW
	sum.EnergyMWh += o.EnergyMWh
	sum.Panels += o.Panels
}

// liveSums is the live part of a summary of one bitmap.
type liveSums struct {
	online, offline int
	power           int64
	energy          uint64
	panels          int64
}

// sumCache keeps liveSums per bitmap for one live view. Bitmaps from acl
// snapshots are immutable, so the pointer is the key — a weak one: a
// bitmap composed for one request (a union) is not kept alive by it.
type sumCache struct {
	mu sync.Mutex
	m  map[weak.Pointer[roaring.Bitmap]]*sumEntry
}

type sumEntry struct {
	once sync.Once
	sums liveSums

	mu    sync.Mutex
	unmon *roaring.Bitmap // the catalogue's unmonitored set corr was computed for
	corr  unmonCorr
}

// unmonCorr is what the unmonitored systems among a bitmap take out of its
// live sums.
type unmonCorr struct {
	n, online, offline int
	power              int64
}

// maxSumCache bounds the bitmaps one live view keeps sums for: the callers
// of one second. Past it, sums are computed and not kept.
const maxSumCache = 1024

func (lv *liveView) cachedSums(within *roaring.Bitmap) liveSums {
	return lv.sumEntry(within).sums
}

// sumEntry returns the cache entry of a bitmap, its live sums computed.
func (lv *liveView) sumEntry(within *roaring.Bitmap) *sumEntry {
	key := weak.Make(within)
	lv.sums.mu.Lock()
	e := lv.sums.m[key]
	if e == nil {
		if lv.sums.m == nil {
			lv.sums.m = map[weak.Pointer[roaring.Bitmap]]*sumEntry{}
		}
		if len(lv.sums.m) >= maxSumCache {
			lv.sums.mu.Unlock()
			e = &sumEntry{}
			e.once.Do(func() { e.sums = lv.computeSums(within) })
			return e
		}
		e = &sumEntry{}
		lv.sums.m[key] = e
	}
	lv.sums.mu.Unlock()
	e.once.Do(func() { e.sums = lv.computeSums(within) })
	return e
}

// parallelSumsAbove: bitmaps larger than this are summed on two cores.
// Summing is memory-bound (one cache line per system of a spread-out
// installer): at 200 k systems one core takes ~0.9 ms, two ~0.6 ms.
const parallelSumsAbove = 64 << 10

func (lv *liveView) computeSums(within *roaring.Bitmap) liveSums {
	ls := liveSums{
		online:  int(within.AndCardinality(lv.byStatus[StatusOnline])),
		offline: int(within.AndCardinality(lv.byStatus[StatusOffline])),
	}
	card := within.GetCardinality()
	if card <= parallelSumsAbove || runtime.GOMAXPROCS(0) < 2 {
		ls.power, ls.energy, ls.panels = lv.sumBelow(within, 1<<32)
		return ls
	}
	mid, err := within.Select(uint32(card / 2))
	if err != nil {
		mid = 1 << 31
	}
	var wg sync.WaitGroup
	var p int64
	var e uint64
	var n int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		upper := within.Clone()
		upper.RemoveRange(0, uint64(mid))
		p, e, n = lv.sumBelow(upper, 1<<32)
	}()
	ls.power, ls.energy, ls.panels = lv.sumBelow(within, uint64(mid))
	wg.Wait()
	ls.power, ls.energy, ls.panels = ls.power+p, ls.energy+e, ls.panels+n
	return ls
}

// sumBelow adds up the live values of the ids of within below to.
func (lv *liveView) sumBelow(within *roaring.Bitmap, to uint64) (power int64, energy uint64, panels int64) {
	to = min(to, uint64(lv.n))
	vals := lv.vals
	it := within.ManyIterator()
	buf := make([]uint32, 512)
	for m := it.NextMany(buf); m > 0; m = it.NextMany(buf) {
		for _, id := range buf[:m] {
			if uint64(id) >= to {
				return
			}
			v := &vals[id]
			power += int64(v.power)
			energy += v.energy
			panels += int64(v.panels)
		}
	}
	return
}

func (v view) summarize(within *roaring.Bitmap, cache bool) Summary {
	lv := v.live
	sum := Summary{Systems: int(within.GetCardinality()), LiveAt: lv.at}
	if sum.Systems == 0 {
		return sum
	}
	var corr unmonCorr
	if cache && v.pend.ids.IsEmpty() {
		// The correction depends on the catalogue's unmonitored set only,
		// whose pointer stays while no monitored flag changes.
		e := lv.sumEntry(within)
		e.mu.Lock()
		if e.unmon != v.cat.unmon {
			e.unmon, e.corr = v.cat.unmon, v.unmonCorrection(within)
		}
		corr = e.corr
		e.mu.Unlock()
		sum.add(e.sums, corr)
		return sum
	}
	var ls liveSums
	if cache {
		ls = lv.cachedSums(within)
	} else {
		ls = lv.computeSums(within)
	}
	sum.add(ls, v.unmonCorrection(within))
	return sum
}

// add fills the summary from live sums less the unmonitored systems.
func (sum *Summary) add(ls liveSums, corr unmonCorr) {
	sum.ByStatus[StatusUnmonitored] = corr.n
	sum.ByStatus[StatusOnline] = ls.online - corr.online
	sum.ByStatus[StatusOffline] = ls.offline - corr.offline
	sum.ByStatus[StatusNever] = sum.Systems - corr.n - sum.ByStatus[StatusOnline] - sum.ByStatus[StatusOffline]
	sum.PowerDW, sum.EnergyMWh, sum.Panels = ls.power-corr.power, ls.energy, ls.panels
}

// unmonCorrection finds the unmonitored systems of within, as of the
// request — the catalogue's, with pending changes read from the request's
// snapshot — and what they take out of the live sums: an unmonitored system
// counts as such whatever its live state says.
func (v view) unmonCorrection(within *roaring.Bitmap) unmonCorr {
	unmon := roaring.And(within, v.cat.unmon)
	if !v.pend.ids.IsEmpty() {
		pend := roaring.And(within, v.pend.ids)
		unmon.AndNot(pend)
		it := pend.Iterator()
		for it.HasNext() {
			id := it.Next()
			if sys, ok := v.snap.System(acl.SystemID(id)); ok && !sys.Monitored {
				unmon.Add(id)
			}
		}
	}
	lv := v.live
	c := unmonCorr{n: int(unmon.GetCardinality())}
	it := unmon.Iterator()
	for it.HasNext() {
		id := it.Next()
		if id >= lv.n {
			continue
		}
		switch Status(lv.st[id]) {
		case StatusOnline:
			c.online++
			c.power += int64(lv.vals[id].power)
		case StatusOffline:
			c.offline++
		}
	}
	return c
}

// noteHot remembers a caller bitmap a summary was asked for, so that the
// next live views precompute its sums.
func (s *Service) noteHot(within *roaring.Bitmap) {
	if within.GetCardinality() < parallelSumsAbove/4 {
		return // small bitmaps are summed in microseconds
	}
	now, key := time.Now().UnixMilli(), weak.Make(within)
	s.hotMu.Lock()
	defer s.hotMu.Unlock()
	if s.hot == nil {
		s.hot = map[weak.Pointer[roaring.Bitmap]]int64{}
	}
	if _, ok := s.hot[key]; !ok && len(s.hot) >= maxHot {
		return
	}
	s.hot[key] = now
}

// maxHot bounds the bitmaps whose sums each live refresh precomputes: a
// few dozen large installers' dashboards; the cost is ~1 ms per 200 k
// systems per refresh.
const maxHot = 32

// hotBitmaps returns the bitmaps asked for in the last minute, forgetting
// the others.
func (s *Service) hotBitmaps() []*roaring.Bitmap {
	cutoff := time.Now().Add(-time.Minute).UnixMilli()
	s.hotMu.Lock()
	defer s.hotMu.Unlock()
	var out []*roaring.Bitmap
	for key, at := range s.hot {
		bm := key.Value()
		if at < cutoff || bm == nil {
			delete(s.hot, key)
			continue
		}
		out = append(out, bm)
	}
	return out
}
