package bench

import (
	"container/heap"
	"strings"
	"unicode"

	"github.com/fleetscope/fleetscope/acl"
)

// The brute-force baselines: what All Locations costs without an index.
// Every system of the catalogue is visited; the access rules are evaluated
// for it (acl's per-system check, Snapshot.Can, which walks the caller's
// own grants and its organizations — no bitmap); its folded strings are
// matched; the page is kept in a heap. The strings are pre-folded in memory,
// so the baseline pays for no allocation a real scan of stored records would.

// ScanSearch answers a search by scanning: the total of matches and the
// first limit ids by (name, id).
func (f *Fleet) ScanSearch(snap *acl.Snapshot, caller acl.AccountID, q string, limit int) (int, []uint32) {
	q = strings.Map(unicode.ToLower, strings.TrimSpace(q))
	h := &nameHeap{docs: f.Docs}
	total := 0
	for id := range f.Docs {
		d := &f.Docs[id]
		if !snap.Can(caller, acl.PermView, acl.SystemID(id)) || !matchDoc(d, q) {
			continue
		}
		total++
		if h.Len() < limit {
			heap.Push(h, uint32(id))
		} else if h.less(uint32(id), h.ids[0]) {
			h.ids[0] = uint32(id)
			heap.Fix(h, 0)
		}
	}
	return total, h.ids
}

func matchDoc(d *BaselineDoc, q string) bool {
	if q == "" || strings.Contains(d.Name, q) {
		return true
	}
	for _, k := range d.Keys {
		if strings.HasPrefix(k, q) {
			return true
		}
	}
	return false
}

// nameHeap keeps the best ids by (name, id): a max-heap, the worst on top.
type nameHeap struct {
	ids  []uint32
	docs []BaselineDoc
}

func (h *nameHeap) less(a, b uint32) bool {
	if c := strings.Compare(h.docs[a].Name, h.docs[b].Name); c != 0 {
		return c < 0
	}
	return a < b
}
func (h *nameHeap) Len() int           { return len(h.ids) }
func (h *nameHeap) Less(i, j int) bool { return h.less(h.ids[j], h.ids[i]) }
func (h *nameHeap) Swap(i, j int)      { h.ids[i], h.ids[j] = h.ids[j], h.ids[i] }
func (h *nameHeap) Push(x any)         { h.ids = append(h.ids, x.(uint32)) }
func (h *nameHeap) Pop() any {
	x := h.ids[len(h.ids)-1]
	h.ids = h.ids[:len(h.ids)-1]
	return x
}

// ScanSummary answers the fleet summary by scanning: for every system the
// rules, then its live state.
func (f *Fleet) ScanSummary(snap *acl.Snapshot, caller acl.AccountID) (systems int, powerDW int64) {
	window := int64(15 * 60 * 1000)
	now := f.Now.UnixMilli()
	for id := range f.Docs {
		if !snap.Can(caller, acl.PermView, acl.SystemID(id)) {
			continue
		}
		systems++
		if l, ok := f.Live.Live(uint32(id)); ok && now-l.LastSeen <= window {
			powerDW += l.PowerDW
		}
	}
	return systems, powerDW
}
