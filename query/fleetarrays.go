package query

import (
	"cmp"
	"container/heap"
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/RoaringBitmap/roaring/v2"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/rollup"
)

// A range that one cumulative tile covers — the common case: any minutes
// the minute table holds, whole days the day table holds — is read as
// arrays: the engine finds the caller's rows at the tile's end (and start),
// in one or two ranges of a table ordered by time, and answers them as two
// arrays each, without grouping; the subtraction and the ranking happen
// here, by id, in one pass over the caller's bitmap. The engine's GROUP BY
// of 200 k systems was most of such a request's time.

// cumArrays is the statement of a one-tile range: it answers ids and
// values at the tile's end, and, when two, ids and values at its start.
type cumArrays struct {
	sql  string
	args []any
	two  bool
}

// planCumArrays plans the statement of tile t (levelCum or levelCumMinute),
// the whole range of p — pure, as planFleetEnergy: every value a parameter.
func planCumArrays(p fleetParams, t tile) cumArrays {
	table, fromArg, toArg := "system_energy_cum", "cum_from", "cum_to"
	if t.level == levelCumMinute {
		table, fromArg, toArg = "system_energy_cum_1m", "min_from", "min_to"
	}
	args := []any{p.set.arg,
		clickhouse.Named(fromArg, strconv.FormatInt(t.from.Unix(), 10)),
		clickhouse.Named(toArg, strconv.FormatInt(t.to.Unix(), 10))}
	to, from := "toDateTime({"+toArg+":Int64}, 'UTC')", "toDateTime({"+fromArg+":Int64}, 'UTC')"
	in := p.set.contains("system_id")
	one := func(value string) cumArrays {
		return cumArrays{args: args, sql: "SELECT groupArray(system_id), groupArray(" + value + ") FROM " + table +
			" FINAL WHERE ts = " + to + " AND " + in}
	}
	switch {
	case t.level == levelCumMinute && t.from.Equal(p.minute.from):
		return one("toInt64(wh)") // from the origin, where every count is zero
	case t.level == levelCum:
		for _, l := range rollup.CumLags {
			if t.to.Equal(t.from.AddDate(0, 0, l.Days)) {
				return one("toInt64(wh) - toInt64(" + l.Column + ")")
			}
		}
	}
	return cumArrays{args: args, two: true, sql: "SELECT groupArrayIf(system_id, ts = " + to + "), groupArrayIf(toInt64(wh), ts = " + to + "), " +
		"groupArrayIf(system_id, ts = " + from + "), groupArrayIf(toInt64(wh), ts = " + from + ") FROM " + table +
		" FINAL WHERE ts IN (" + from + ", " + to + ") AND " + in}
}

// oneCumTile returns the tile when tiles are one cumulative tile from
// from: the range planCumArrays reads.
func oneCumTile(tiles []tile, from time.Time) (tile, bool) {
	if len(tiles) != 1 || (tiles[0].level != levelCum && tiles[0].level != levelCumMinute) || !tiles[0].from.Equal(from) {
		return tile{}, false
	}
	return tiles[0], true
}

// energies runs a cumArrays statement and answers each system's energy
// over the tile, by id: the ids of the rows at the end, and the end's
// values less the start's (a system without a row at the end has no
// energy; without one at the start, it had none before).
func (s *Service) energies(ctx context.Context, ca cumArrays) ([]uint32, []uint64, error) {
	var ids, fromIDs []uint32
	var vals, fromVals []int64
	dest := []any{&ids, &vals}
	if ca.two {
		dest = append(dest, &fromIDs, &fromVals)
	}
	if err := s.opts.Store.QueryRow(ctx, ca.sql, ca.args...).Scan(dest...); err != nil {
		return nil, nil, storeErr("fleet energy", err)
	}
	sortByID(ids, vals)
	sortByID(fromIDs, fromVals)
	out := make([]uint64, len(ids))
	j := 0
	for i, id := range ids {
		v := vals[i]
		for j < len(fromIDs) && fromIDs[j] < id {
			j++
		}
		if j < len(fromIDs) && fromIDs[j] == id {
			v -= fromVals[j]
		}
		out[i] = uint64(max(v, 0))
	}
	return ids, out, nil
}

// sortByID sorts ids and their values by id: the engine reads a range of
// a table ordered by (ts, system_id), so they come sorted, unless it read
// parts of it in parallel.
func sortByID(ids []uint32, vals []int64) {
	if slices.IsSorted(ids) {
		return
	}
	idx := make([]int, len(ids))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(ids[a], ids[b]) })
	sid, sv := make([]uint32, len(ids)), make([]int64, len(ids))
	for i, k := range idx {
		sid[i], sv[i] = ids[k], vals[k]
	}
	copy(ids, sid)
	copy(vals, sv)
}

// eachEnergy calls fn with every system of bm, in id order, and its energy
// from the sorted ids and energies of those with a row (0 for the rest).
func eachEnergy(bm *roaring.Bitmap, ids []uint32, e []uint64, fn func(id uint32, e uint64)) {
	j := 0
	it := bm.ManyIterator()
	buf := make([]uint32, 1024)
	for n := it.NextMany(buf); n > 0; n = it.NextMany(buf) {
		for _, id := range buf[:n] {
			for j < len(ids) && ids[j] < id {
				j++
			}
			var v uint64
			if j < len(ids) && ids[j] == id {
				v = e[j]
			}
			fn(id, v)
		}
	}
}

// energyOrder compares two systems in a fleet energy order (energy, then
// id, or id), ascending or descending: negative when a comes first.
func energyOrder(sort sortSpec, a, b SystemEnergy) int {
	c := 0
	if sort.key == sortFleetEnergy {
		c = cmp.Compare(a.EnergyMWh, b.EnergyMWh)
	}
	if c == 0 {
		c = cmp.Compare(a.ID, b.ID)
	}
	if sort.desc {
		return -c
	}
	return c
}

// rankEnergies answers the page of p — the n systems of bm that come first
// in p's order after p's cursor — from every system's energy.
func rankEnergies(bm *roaring.Bitmap, ids []uint32, e []uint64, p fleetParams, n int) []SystemEnergy {
	var after *SystemEnergy
	if p.cur != nil {
		after = &SystemEnergy{ID: acl.SystemID(p.cur.id), EnergyMWh: p.cur.key}
	}
	// The n first seen so far, the last of them on top.
	h := &energyHeap{sort: p.sort}
	eachEnergy(bm, ids, e, func(id uint32, v uint64) {
		se := SystemEnergy{ID: acl.SystemID(id), EnergyMWh: v}
		if after != nil && energyOrder(p.sort, se, *after) <= 0 {
			return
		}
		if h.Len() < n {
			heap.Push(h, se)
		} else if energyOrder(p.sort, se, h.items[0]) < 0 {
			h.items[0] = se
			heap.Fix(h, 0)
		}
	})
	slices.SortFunc(h.items, func(a, b SystemEnergy) int { return energyOrder(p.sort, a, b) })
	return h.items
}

// energyHeap is a max-heap in a fleet energy order: its top is the item
// that comes last.
type energyHeap struct {
	sort  sortSpec
	items []SystemEnergy
}

func (h *energyHeap) Len() int { return len(h.items) }
func (h *energyHeap) Less(i, j int) bool {
	return energyOrder(h.sort, h.items[i], h.items[j]) > 0
}
func (h *energyHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *energyHeap) Push(x any)    { h.items = append(h.items, x.(SystemEnergy)) }
func (h *energyHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}
