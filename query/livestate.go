package query

import (
	"math"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/fleetscope/fleetscope/live"
)

// Status is a location's state as All Locations shows it.
//
//   - unmonitored: the system record says monitored=false (fire-safety-only
//     installs, which post no data); this wins over everything else;
//   - never: no reading ever arrived (no live state);
//   - online: the newest reading is at most Options.OnlineWindow (default
//     15 min) older than the live view's time;
//   - offline: otherwise.
type Status uint8

// The states, named as the API names them.
const (
	StatusOnline Status = iota
	StatusOffline
	StatusNever
	StatusUnmonitored
	numStatus
)

var statusNames = [numStatus]string{"online", "offline", "never", "unmonitored"}

// String returns the state's API name.
// Statuses lists every status, in the order of Status values.
func Statuses() []Status {
	return []Status{StatusOnline, StatusOffline, StatusNever, StatusUnmonitored}
}

func (s Status) String() string {
	if s < numStatus {
		return statusNames[s]
	}
	return "unknown"
}

// liveKey is a sort key read from live state.
type liveKey uint8

const (
	keyPower liveKey = iota
	keyLastSeen
	keyEnergy
	numLiveKeys
)

// liveView is every system's live state copied at one moment into flat
// arrays by id, with the online/offline/never bitmaps and, built on first
// use, an ordering per live sort key. It is immutable: sorts, filters,
// summaries and the rows of a page all read one view, so a page is
// consistent with itself. A new view replaces it every Options.LiveRefresh.
//
// Power is kept only for online systems: the power of a system that stopped
// reporting is unknown, and shown (and summed, and sorted) as 0. Energy is
// the energy of the current local day in the system's time zone.
type liveView struct {
	gen      uint64
	at       time.Time
	n        uint32     // ids below n are covered
	vals     []liveVals // by id: what summaries add up, in one cache line
	lastSeen []int64    // Unix ms; 0 = never
	st       []uint8    // StatusOnline, StatusOffline or StatusNever

	byStatus [StatusUnmonitored]*roaring.Bitmap // online, offline, never (ids below n)

	orders [numLiveKeys]struct {
		once sync.Once
		o    ordering
	}
	sums sumCache // summaries' live part by caller bitmap
}

// liveVals are one system's summed live values, packed in 16 bytes so a
// summary reads one cache line per system.
type liveVals struct {
	power  int32  // deciwatts; 0 unless online
	panels int32  // panels seen
	energy uint64 // mWh of the current local day
}

// localDay is the day number (days since 1970-01-01) of t's calendar date in
// loc, as live.System.Day counts it.
func localDay(t time.Time, loc *time.Location) int32 {
	y, m, d := t.In(loc).Date()
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// buildLiveView copies the live state of every id below the catalogue's and
// the live reader's bounds.
func buildLiveView(lr live.Reader, cat *catalogue, now time.Time, window time.Duration, gen uint64) *liveView {
	n := cat.n
	if lr != nil {
		n = max(n, lr.MaxSystem()+1)
	}
	lv := &liveView{gen: gen, at: now, n: n,
		vals: make([]liveVals, n), lastSeen: make([]int64, n), st: make([]uint8, n)}
	days := make([]int32, len(cat.base.zones))
	for i, loc := range cat.base.zones {
		days[i] = localDay(now, loc)
	}
	utcDay := localDay(now, time.UTC)
	nowMS, windowMS := now.UnixMilli(), window.Milliseconds()
	var lists [StatusUnmonitored][]uint32
	for id := uint32(0); id < n; id++ {
		var sl live.System
		ok := false
		if lr != nil {
			sl, ok = lr.Live(id)
		}
		if !ok {
			lv.st[id] = uint8(StatusNever)
			lists[StatusNever] = append(lists[StatusNever], id)
			continue
		}
		day := utcDay
		if id < uint32(len(cat.base.zone)) {
			day = days[cat.base.zone[id]]
		}
		lv.vals[id] = liveVals{energy: sl.EnergyOn(day), panels: sl.Panels}
		lv.lastSeen[id] = sl.LastSeen
		if nowMS-sl.LastSeen <= windowMS {
			lv.st[id] = uint8(StatusOnline)
			lv.vals[id].power = int32(min(max(sl.PowerDW, 0), math.MaxInt32))
			lists[StatusOnline] = append(lists[StatusOnline], id)
		} else {
			lv.st[id] = uint8(StatusOffline)
			lists[StatusOffline] = append(lists[StatusOffline], id)
		}
	}
	// Systems changed since the base may have moved time zone.
	for id, d := range cat.delta {
		if id < n && d.doc != nil && lr != nil {
			if sl, ok := lr.Live(id); ok {
				lv.vals[id].energy = sl.EnergyOn(localDay(now, d.doc.loc))
			}
		}
	}
	for i := range lv.byStatus {
		lv.byStatus[i] = roaring.New()
		lv.byStatus[i].AddMany(lists[i])
		lv.byStatus[i].RunOptimize()
	}
	return lv
}

// key returns id's sort key for k, order-preserving as a uint64.
func (lv *liveView) key(k liveKey, id uint32) uint64 {
	if id >= lv.n {
		return lv.zeroKey(k)
	}
	switch k {
	case keyPower:
		return uint64(int64(lv.vals[id].power) + 1<<31)
	case keyLastSeen:
		return uint64(max(lv.lastSeen[id], 0))
	default:
		return lv.vals[id].energy
	}
}

// zeroKey is the key of a system without live state.
func (lv *liveView) zeroKey(k liveKey) uint64 {
	if k == keyPower {
		return 1 << 31
	}
	return 0
}

// ordering returns the ids below n ordered by (key k, id), building it on
// first use.
func (lv *liveView) ordering(k liveKey) *ordering {
	o := &lv.orders[k]
	o.once.Do(func() {
		keys := make([]uint64, lv.n)
		for id := range keys {
			keys[id] = lv.key(k, uint32(id))
		}
		o.o = newOrdering(radixOrder(keys), lv.n)
	})
	return &o.o
}

// radixOrder returns the indexes of keys ordered by (key, index): a stable
// LSD radix sort by 16-bit digits, skipping the digits all keys share.
func radixOrder(keys []uint64) []uint32 {
	n := len(keys)
	ids := make([]uint32, n)
	for i := range ids {
		ids[i] = uint32(i)
	}
	if n < 2 {
		return ids
	}
	var diff uint64
	for _, k := range keys {
		diff |= k ^ keys[0]
	}
	tmpIDs := make([]uint32, n)
	cur := make([]uint64, n)
	copy(cur, keys)
	tmpKeys := make([]uint64, n)
	var count [1 << 16]int
	for shift := uint(0); shift < 64; shift += 16 {
		if (diff>>shift)&0xffff == 0 {
			continue
		}
		clear(count[:])
		for _, k := range cur {
			count[(k>>shift)&0xffff]++
		}
		sum := 0
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for i, k := range cur {
			d := (k >> shift) & 0xffff
			p := count[d]
			count[d]++
			tmpKeys[p] = k
			tmpIDs[p] = ids[i]
		}
		cur, tmpKeys = tmpKeys, cur
		ids, tmpIDs = tmpIDs, ids
	}
	return ids
}
