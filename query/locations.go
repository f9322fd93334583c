package query

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/fleetscope/fleetscope/acl"
)

// ErrBadRequest wraps every complaint about a request's parameters (bad
// sort, limit, cursor, time, ...): HTTP 400, do not retry.
var ErrBadRequest = errors.New("query: bad request")

// ErrNotFound: the system does not exist or the caller may not see it — or
// may see it but not read its data, for telemetry (DESIGN §5: 404, never
// 403, so ids cannot be probed). HTTP 404.
var ErrNotFound = errors.New("query: not found")

// LocationsQuery is a GET /v1/locations request.
type LocationsQuery struct {
	// Q matches a name substring, or the prefix of a GUID, gateway serial
	// or associated e-mail, case-insensitively. Surrounding white space is
	// ignored; empty matches every location.
	Q string
	// Status keeps the locations in one of these states; empty keeps all.
	Status []Status
	// Sort is name, power, last_seen or energy_today, descending with a
	// leading '-'. Default name.
	Sort string
	// Limit is the page size, 1 to Options.MaxLimit; 0 means DefaultLimit.
	Limit int
	// Cursor is the previous page's NextCursor; empty for the first page.
	Cursor string
}

// DefaultLimit is the page size when a request names none.
const DefaultLimit = 50

// maxQueryLen bounds q: longer than any name or e-mail (256 bytes) is
// never a match, and it bounds the gram work of a request.
const maxQueryLen = 256

// Location is one row of All Locations.
type Location struct {
	ID            acl.SystemID
	GUID          string
	Name          string
	Address       string
	Timezone      string
	Monitored     bool
	CapacityW     uint32 // nameplate DC capacity; 0 = unknown
	OwnerEmail    string
	InstallerID   acl.OrgID // 0: none
	InstallerName string
	Status        Status
	PowerDW       int64  // deciwatts now (0 unless online)
	EnergyMWh     uint64 // milliwatt-hours today (local day)
	Panels        int32
	LastSeen      int64 // Unix ms; 0 = never
}

// LocationsPage is one page of All Locations.
type LocationsPage struct {
	Items []Location
	// Total counts every location matching the query (not just this page).
	Total int
	// NextCursor continues after the last item; "" on the last page.
	NextCursor string
	// LiveAt is when the live state the page shows was read.
	LiveAt time.Time
}

// view is what one request reads, loaded in this order (see
// Service.OnACLChange): pending changes, then the catalogue, then the acl
// snapshot, so any change the snapshot holds is in the catalogue or pending.
type view struct {
	pend *pending
	cat  *catalogue
	snap *acl.Snapshot
	live *liveView
}

func (s *Service) view() view {
	var v view
	v.pend = s.pend.Load()
	v.cat = s.cat.Load()
	v.snap = s.opts.ACL.Snapshot()
	v.live = s.live.Load()
	return v
}

// overItem is a location matched one by one rather than by the base index.
type overItem struct {
	id     uint32
	name   string
	status Status
}

// resolved is the set a query selects: base ids (answered by the base
// index, covered by the live view) plus overlay items.
type resolved struct {
	base members
	span span // of the name order, holds every base id
	over []overItem
}

func (r resolved) total() int { return r.base.card() + len(r.over) }

// resolve selects the systems of within (the caller's bitmap) matching q
// (folded) in the states of mask (0: all).
//
// private, if not nil, returns the systems on which the caller may match
// the private keys (other grantees' e-mails): those it holds share or
// manage_users on.
func (v view) resolve(within *roaring.Bitmap, q string, mask uint8, private func() *roaring.Bitmap) resolved {
	if within.IsEmpty() {
		return resolved{base: &roaringSet{b: roaring.New(), owned: true}}
	}
	// The caller's bitmap is shared with the acl index: the set copies it
	// before any change.
	var base members = &roaringSet{b: within}
	sp := v.cat.base.text.everywhere()
	if q != "" {
		base, sp = v.cat.base.text.match(q, within, private)
	}
	// Systems the base index cannot answer for are matched one by one:
	// those changed since it was built (delta), those whose change is still
	// pending, and those newer than it.
	cand := roaring.And(within, v.cat.deltaIDs)
	if !v.pend.ids.IsEmpty() {
		cand.Or(roaring.And(within, v.pend.ids))
	}
	baseIDs := v.cat.base.text.ids
	if within.AndCardinality(baseIDs) != within.GetCardinality() {
		cand.Or(roaring.AndNot(within, baseIDs))
	}
	base.remove(cand)
	var over []overItem
	// Base systems beyond the live view (created since it was built) have
	// no live state in it: never, or unmonitored.
	for _, id := range base.cut(v.live.n) {
		st := StatusNever
		if v.cat.unmon.Contains(id) {
			st = StatusUnmonitored
		}
		if mask == 0 || mask&(1<<st) != 0 {
			over = append(over, overItem{id: id, name: v.cat.base.text.name(id), status: st})
		}
	}
	it := cand.Iterator()
	for it.HasNext() {
		id := it.Next()
		d := v.doc(id)
		if d == nil || !d.matches(q, private != nil && private().Contains(id)) {
			continue
		}
		st := StatusNever
		switch {
		case !d.monitored:
			st = StatusUnmonitored
		case id < v.live.n:
			st = Status(v.live.st[id])
		}
		if mask != 0 && mask&(1<<st) == 0 {
			continue
		}
		over = append(over, overItem{id: id, name: d.name, status: st})
	}
	if mask != 0 && mask != 1<<numStatus-1 {
		var all *roaring.Bitmap
		if rs, ok := base.(*roaringSet); ok {
			all = rs.b // filterStatus only reads it
		} else {
			all = base.bitmap()
		}
		base.release()
		base = &roaringSet{b: v.filterStatus(all, mask), owned: true}
	}
	return resolved{base: base, span: sp, over: over}
}

// doc returns the newest doc of a system the base cannot answer for: the
// delta's, else one read from the request's snapshot.
func (v view) doc(id uint32) *doc {
	if !v.pend.ids.Contains(id) {
		if d, ok := v.cat.delta[id]; ok && d.doc != nil {
			return d.doc
		}
	}
	return docOf(v.snap, id)
}

// filterStatus keeps the base ids in the states of mask.
func (v view) filterStatus(base *roaring.Bitmap, mask uint8) *roaring.Bitmap {
	out := roaring.New()
	for st := Status(0); st < numStatus; st++ {
		if mask&(1<<st) == 0 {
			continue
		}
		if st == StatusUnmonitored {
			out.Or(roaring.And(base, v.cat.unmon))
			continue
		}
		part := roaring.And(base, v.live.byStatus[st])
		part.AndNot(v.cat.unmon)
		out.Or(part)
	}
	return out
}

// baseStatus is the state of a base id.
func (v view) baseStatus(id uint32) Status {
	switch {
	case v.cat.unmon.Contains(id):
		return StatusUnmonitored
	case id >= v.live.n:
		return StatusNever
	}
	return Status(v.live.st[id])
}

// pitem is a candidate row with its sort key.
type pitem struct {
	id     uint32
	name   string
	key    uint64
	status Status
}

// cmpItems orders two items ascending by the sort's key, then id.
func cmpItems(k sortKey, a, b pitem) int {
	if k == sortName {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
	} else if a.key != b.key {
		if a.key < b.key {
			return -1
		}
		return 1
	}
	switch {
	case a.id < b.id:
		return -1
	case a.id > b.id:
		return 1
	}
	return 0
}

// after reports whether it comes strictly after the cursor in sp's
// direction.
func after(sp sortSpec, it pitem, c *cursor) bool {
	if c == nil {
		return true
	}
	d := cmpItems(sp.key, it, pitem{id: c.id, name: c.name, key: c.key})
	if sp.desc {
		return d < 0
	}
	return d > 0
}

// page returns up to k items of r in sp's order after the cursor.
func (v view) page(r resolved, sp sortSpec, c *cursor, k int) []pitem {
	item := func(id uint32) pitem {
		it := pitem{id: id}
		if sp.key == sortName {
			it.name = v.cat.base.text.name(id)
		} else {
			it.key = v.live.key(sp.liveKey(), id)
		}
		return it
	}
	// The base part: positions in the precomputed order.
	var o *ordering
	within := r.span
	if sp.key == sortName {
		o = &v.cat.base.text.order
	} else {
		o = v.live.ordering(sp.liveKey())
		within = span{0, len(o.order)}
	}
	start := 0
	if sp.desc {
		start = len(o.order)
	}
	if c != nil {
		// Ascending, the first position after the cursor; descending, the
		// first position not before it (the page takes the ones below).
		ref := pitem{id: c.id, name: c.name, key: c.key}
		start = o.search(func(id uint32) bool {
			d := cmpItems(sp.key, item(id), ref)
			if sp.desc {
				return d >= 0
			}
			return d > 0
		})
	}
	var items []pitem
	for _, id := range o.page(r.base, within, start, sp.desc, k) {
		it := item(id)
		it.status = v.baseStatus(id)
		items = append(items, it)
	}
	// The overlay part, sorted here, merged in.
	var over []pitem
	for _, oi := range r.over {
		it := pitem{id: oi.id, name: oi.name, status: oi.status}
		if sp.key != sortName {
			it.key = v.live.key(sp.liveKey(), oi.id)
		}
		if after(sp, it, c) {
			over = append(over, it)
		}
	}
	if len(over) == 0 {
		return items
	}
	cmp := func(a, b pitem) int {
		if sp.desc {
			return cmpItems(sp.key, b, a)
		}
		return cmpItems(sp.key, a, b)
	}
	slices.SortFunc(over, cmp)
	merged := make([]pitem, 0, min(k, len(items)+len(over)))
	for len(merged) < k && (len(items) > 0 || len(over) > 0) {
		if len(over) == 0 || (len(items) > 0 && cmp(items[0], over[0]) < 0) {
			merged, items = append(merged, items[0]), items[1:]
		} else {
			merged, over = append(merged, over[0]), over[1:]
		}
	}
	return merged
}

// parseStatuses parses a comma-separated list of states into a mask.
func parseStatuses(list []Status) uint8 {
	var m uint8
	for _, st := range list {
		if st < numStatus {
			m |= 1 << st
		}
	}
	return m
}

// ParseStatus parses a state's name.
func ParseStatus(s string) (Status, error) {
	for i, n := range statusNames {
		if n == s {
			return Status(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown status %q (online, offline, never, unmonitored)", ErrBadRequest, s)
}

// Locations answers All Locations for caller: every system it may view
// matching the query, one page in the requested order.
func (s *Service) Locations(caller acl.AccountID, lq LocationsQuery) (LocationsPage, error) {
	start := time.Now()
	var page LocationsPage
	raw := strings.TrimSpace(lq.Q)
	if len(raw) > maxQueryLen || !validQuery(raw) {
		return page, fmt.Errorf("%w: q must be UTF-8 text of at most %d bytes", ErrBadRequest, maxQueryLen)
	}
	q := fold(raw)
	sortText := lq.Sort
	if sortText == "" {
		sortText = "name"
	}
	sp, ok := parseSort(sortText, sortName, sortPower, sortLastSeen, sortEnergy)
	if !ok {
		return page, fmt.Errorf("%w: sort must be name, power, last_seen or energy_today, with '-' for descending", ErrBadRequest)
	}
	limit, err := s.limit(lq.Limit)
	if err != nil {
		return page, err
	}
	mask := parseStatuses(lq.Status)
	scope := scopeHash("locations", q, string(rune('0'+mask)))
	var cur *cursor
	if lq.Cursor != "" {
		c, err := decodeCursor(lq.Cursor)
		if err != nil {
			return page, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		if c.sort != sp || c.scope != scope {
			return page, fmt.Errorf("%w: the cursor belongs to another query (q, status and sort must stay the same)", ErrBadRequest)
		}
		cur = &c
	}
	if sp.key != sortName {
		s.liveUsed[sp.liveKey()].Store(start.UnixMilli())
	}
	v := s.view()
	within := v.snap.Systems(caller, acl.PermView)
	r := v.resolve(within, q, mask, sharedBy(v.snap, caller))
	items := v.page(r, sp, cur, limit+1)
	page.Total = r.total()
	r.base.release()
	page.LiveAt = v.live.at
	if len(items) > limit {
		items = items[:limit]
		last := items[limit-1]
		page.NextCursor = encodeCursor(cursor{sort: sp, scope: scope, id: last.id, name: last.name, key: last.key})
	}
	page.Items = v.render(items)
	s.m.observeSearch(q != "", time.Since(start), len(page.Items), page.Total)
	return page, nil
}

func (s *Service) limit(n int) (int, error) {
	switch {
	case n == 0:
		return min(DefaultLimit, s.opts.MaxLimit), nil
	case n < 0 || n > s.opts.MaxLimit:
		return 0, fmt.Errorf("%w: limit must be 1 to %d", ErrBadRequest, s.opts.MaxLimit)
	}
	return n, nil
}

// render renders a page's rows from the request's snapshot and live view,
// each source read for all rows at once (acl.Snapshot.Listings says why):
// measured in searches of the bench's 200 k-system caller, rendering 50 rows
// one by one took ~200 µs of cache misses, 4 µs a row.
func (v view) render(items []pitem) []Location {
	ids := make([]acl.SystemID, len(items))
	for i, it := range items {
		ids[i] = acl.SystemID(it.id)
	}
	ls := make([]acl.Listing, len(items))
	v.snap.Listings(ids, ls)
	out := make([]Location, len(items))
	for i, it := range items {
		out[i] = v.row(it.id, it.status, &ls[i])
	}
	return out
}

// location renders one row.
func (v view) location(id uint32, st Status) Location {
	return v.render([]pitem{{id: id, status: st}})[0]
}

// row is system id's Location from its listing and live state.
func (v view) row(id uint32, st Status, ls *acl.Listing) Location {
	l := Location{ID: acl.SystemID(id), Status: st}
	if ls.Found {
		l.GUID, l.Name, l.Address, l.Timezone, l.Monitored, l.OwnerEmail = ls.GUID, ls.Name, ls.Address, ls.Timezone, ls.Monitored, ls.Owner
		l.InstallerID, l.InstallerName, l.CapacityW = ls.Installer, ls.InstallerName, ls.CapacityW
	}
	if id < v.live.n {
		lv := v.live.vals[id]
		l.PowerDW, l.EnergyMWh, l.Panels, l.LastSeen = int64(lv.power), lv.energy, lv.panels, v.live.lastSeen[id]
	}
	return l
}

// sharedBy returns, computed once on first use, the systems on which
// caller may see who else has access — those it holds view and share, or
// view and manage_users, on.
func sharedBy(snap *acl.Snapshot, caller acl.AccountID) func() *roaring.Bitmap {
	var set *roaring.Bitmap
	return func() *roaring.Bitmap {
		if set == nil {
			share, manage := snap.Systems(caller, acl.PermView|acl.PermShare), snap.Systems(caller, acl.PermView|acl.PermManageUsers)
			if set = share; manage != share {
				set = roaring.Or(share, manage)
			}
		}
		return set
	}
}
