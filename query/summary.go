package query

import (
	"runtime"
	"sync"
	"sync/atomic"
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
		sum = s.summarizeBase(v, caller, base)
		if !rest.IsEmpty() {
			sum.merge(v.summarize(rest, false, nil))
		}
	} else {
		within := v.snap.Systems(caller, acl.PermView)
		s.noteHot(within)
		sum = s.summarizeBase(v, caller, within)
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
	done atomic.Bool // sums are computed

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

// sumEntry returns the cache entry of a bitmap, its live sums computed —
// from ref's entry when ref (the caller's bitmap before, see
// Service.summarizeBase) has one and differs from within by few systems, so
// that the first summary after an access change costs a bitmap difference
// rather than a pass over every system.
func (lv *liveView) sumEntry(within *roaring.Bitmap, ref *summarized) *sumEntry {
	key := weak.Make(within)
	lv.sums.mu.Lock()
	e := lv.sums.m[key]
	if e == nil {
		if lv.sums.m == nil {
			lv.sums.m = map[weak.Pointer[roaring.Bitmap]]*sumEntry{}
		}
		if len(lv.sums.m) >= maxSumCache {
			// Bitmaps of snapshots gone (an access change makes new ones)
			// leave their entries first.
			for k := range lv.sums.m {
				if k.Value() == nil {
					delete(lv.sums.m, k)
				}
			}
		}
		e = &sumEntry{}
		if len(lv.sums.m) < maxSumCache {
			lv.sums.m[key] = e
		}
	}
	var from *sumEntry
	if ref != nil && ref.bm != within {
		switch {
		case ref.lv.Value() == lv && ref.e != nil && ref.e.done.Load():
			from = ref.e
		default: // a view since: the live refresh precomputes hot bitmaps
			if r := lv.sums.m[weak.Make(ref.bm)]; r != nil && r.done.Load() {
				from = r
			}
		}
	}
	lv.sums.mu.Unlock()
	e.once.Do(func() {
		if from == nil || !lv.deriveSums(e, within, from, ref.bm) {
			e.sums = lv.computeSums(within)
		}
		e.done.Store(true)
	})
	return e
}

// maxDerive is the most systems two bitmaps may differ by for one's sums to
// be derived from the other's: each costs a lookup, a pass over 200 k
// systems about 150 k of them.
const maxDerive = 4096

// deriveSums fills e, the entry of within, from ref's entry r: its sums,
// and its unmonitored correction when r has one, plus the systems within
// adds and less those it drops. False when they differ by too many.
func (lv *liveView) deriveSums(e *sumEntry, within *roaring.Bitmap, r *sumEntry, ref *roaring.Bitmap) bool {
	added, removed := roaring.AndNot(within, ref), roaring.AndNot(ref, within)
	if added.GetCardinality()+removed.GetCardinality() > maxDerive {
		return false
	}
	ls := r.sums
	r.mu.Lock()
	unmon, corr := r.unmon, r.corr
	r.mu.Unlock()
	for _, d := range []struct {
		ids  *roaring.Bitmap
		sign int
	}{{added, 1}, {removed, -1}} {
		it := d.ids.Iterator()
		for it.HasNext() {
			id := it.Next()
			lv.addLive(&ls, id, d.sign)
			if unmon != nil && unmon.Contains(id) {
				lv.addCorr(&corr, id, d.sign)
			}
		}
	}
	e.sums = ls
	if unmon != nil {
		e.unmon, e.corr = unmon, corr
	}
	return true
}

// addLive adds id's live values to ls (sign 1), or takes them out (-1).
func (lv *liveView) addLive(ls *liveSums, id uint32, sign int) {
	if id >= lv.n {
		return // not covered: never seen, no values
	}
	switch Status(lv.st[id]) {
	case StatusOnline:
		ls.online += sign
	case StatusOffline:
		ls.offline += sign
	}
	v := &lv.vals[id]
	ls.power += int64(sign) * int64(v.power)
	ls.panels += int64(sign) * int64(v.panels)
	if sign > 0 {
		ls.energy += v.energy
	} else {
		ls.energy -= v.energy
	}
}

// addCorr adds what unmonitored system id takes out of live sums to c
// (sign 1), or takes it back (-1).
func (lv *liveView) addCorr(c *unmonCorr, id uint32, sign int) {
	c.n += sign
	if id >= lv.n {
		return
	}
	switch Status(lv.st[id]) {
	case StatusOnline:
		c.online += sign
		c.power += int64(sign) * int64(lv.vals[id].power)
	case StatusOffline:
		c.offline += sign
	}
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

// summarize summarizes within: with cache, from its entry in the live
// view's cache (derived from ref's when it can be, see sumEntry).
func (v view) summarize(within *roaring.Bitmap, cache bool, ref *summarized) Summary {
	sum, _ := v.summarizeEntry(within, cache, ref)
	return sum
}

// summarizeEntry is summarize, also answering the cache entry it used
// (nil without cache).
func (v view) summarizeEntry(within *roaring.Bitmap, cache bool, ref *summarized) (Summary, *sumEntry) {
	lv := v.live
	sum := Summary{Systems: int(within.GetCardinality()), LiveAt: lv.at}
	if sum.Systems == 0 {
		return sum, nil
	}
	if !cache {
		sum.add(lv.computeSums(within), v.unmonCorrection(within))
		return sum, nil
	}
	// The correction by the catalogue's unmonitored set is kept with the
	// sums (its pointer stays while no monitored flag changes); the
	// pending changes, few, adjust it per request.
	e := lv.sumEntry(within, ref)
	e.mu.Lock()
	if e.unmon != v.cat.unmon {
		e.unmon, e.corr = v.cat.unmon, v.catalogueCorrection(within)
	}
	corr := e.corr
	e.mu.Unlock()
	sum.add(e.sums, v.pendingCorrection(within, corr))
	return sum, e
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
	return v.pendingCorrection(within, v.catalogueCorrection(within))
}

// catalogueCorrection is what the catalogue's unmonitored systems among
// within take out of the live sums.
func (v view) catalogueCorrection(within *roaring.Bitmap) unmonCorr {
	var c unmonCorr
	it := roaring.And(within, v.cat.unmon).Iterator()
	for it.HasNext() {
		v.live.addCorr(&c, it.Next(), 1)
	}
	return c
}

// pendingCorrection adjusts c, the catalogue's correction of within, for
// the systems of within changed since the catalogue was built: each is
// unmonitored as the request's snapshot says.
func (v view) pendingCorrection(within *roaring.Bitmap, c unmonCorr) unmonCorr {
	if v.pend.ids.IsEmpty() {
		return c
	}
	it := roaring.And(within, v.pend.ids).Iterator()
	for it.HasNext() {
		id := it.Next()
		was := v.cat.unmon.Contains(id)
		sys, ok := v.snap.System(acl.SystemID(id))
		now := ok && !sys.Monitored
		switch {
		case was && !now:
			v.live.addCorr(&c, id, -1)
		case now && !was:
			v.live.addCorr(&c, id, 1)
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

// summarized is a bitmap a caller was summarized for last, in which live
// view, and its cache entry there.
type summarized struct {
	bm *roaring.Bitmap
	lv weak.Pointer[liveView] // weak: an old view's arrays are tens of MB
	e  *sumEntry
}

// summarizeBase summarizes base, the bulk of caller's bitmap, from the
// cache — derived from the caller's bitmap summarized before when that
// changed (see sumEntry) — and remembers it for next time. Only bitmaps
// worth it (as noteHot's) of maxHot callers are remembered.
func (s *Service) summarizeBase(v view, caller acl.AccountID, base *roaring.Bitmap) Summary {
	if base.GetCardinality() < parallelSumsAbove/4 {
		return v.summarize(base, true, nil)
	}
	s.hotMu.Lock()
	prev, ok := s.last[caller]
	s.hotMu.Unlock()
	var ref *summarized
	if ok {
		ref = &prev
	}
	sum, e := v.summarizeEntry(base, true, ref)
	s.hotMu.Lock()
	if s.last == nil {
		s.last = map[acl.AccountID]summarized{}
	}
	if ok || len(s.last) < maxHot {
		s.last[caller] = summarized{bm: base, lv: weak.Make(v.live), e: e}
	}
	s.hotMu.Unlock()
	return sum
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
