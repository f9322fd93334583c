package query

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/RoaringBitmap/roaring/v2"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/rollup"
)

// FleetEnergyQuery is GET /v1/fleet/energy.
type FleetEnergyQuery struct {
	From, To time.Time
	// Sort is energy, yield (kWh per kWp; systems without a capacity
	// last) or id, descending with a leading '-'. Default -energy.
	Sort   string
	Limit  int
	Cursor string
}

// SystemEnergy is one system's energy over the range.
type SystemEnergy struct {
	ID        acl.SystemID
	GUID      string
	Name      string
	EnergyMWh uint64
	// CapacityW is the system's nameplate capacity (0: unknown); with it
	// the answer gives the specific yield, EnergyMWh / CapacityW kWh per kWp.
	CapacityW uint32
}

// Yield is the specific yield in kWh per kWp (energy over nameplate
// capacity), and false when the capacity is unknown.
func (e SystemEnergy) Yield() (float64, bool) {
	if e.CapacityW == 0 {
		return 0, false
	}
	return float64(e.EnergyMWh) / float64(e.CapacityW) / 1000, true // (mWh / 10⁶) / (W / 10³)
}

// yieldKey orders yields in a cursor: millionths of kWh/kWp, and 0 for an
// unknown capacity, which sorts after every known yield.
func (e SystemEnergy) yieldKey() uint64 {
	y, ok := e.Yield()
	if !ok {
		return 0
	}
	return uint64(y*1e6) + 1
}

// FleetEnergy is the energy of every system the caller holds view and data on.
type FleetEnergy struct {
	Items      []SystemEnergy
	Total      int
	NextCursor string
	From, To   time.Time
	// Until is where the answer ends: To, or earlier when the newest minutes
	// are not rolled up yet (fleet-wide sums read rollups only; see
	// FleetEnergy).
	Until time.Time
	// Pushdown says how the caller's bitmap reached ClickHouse: array or
	// bitmap.
	Pushdown string
}

// FleetEnergy sums each system's energy over [From, To) — whole minutes —
// for every system the caller holds view and data on, in ClickHouse, with the
// caller's data bitmap pushed down as a parameter (see pushdown.go). Every
// such system is listed, those without readings with 0, sorted and paged in
// the engine.
//
// It reads rollups only: 1-day buckets for whole UTC days, hours, quarter
// hours and minutes at the edges (see planTiles). Raw readings are left out
// because for a fleet they are the expensive part — the readings table is
// ordered by system, so the newest minutes of 200 k systems are spread over
// the whole table — and they are at most the rollup's lateness (~2 min)
// behind; Until says where the sums end.
func (s *Service) FleetEnergy(ctx context.Context, caller acl.AccountID, fq FleetEnergyQuery) (FleetEnergy, error) {
	start := time.Now()
	var out FleetEnergy
	p, err := s.fleetParams(fq)
	if err != nil {
		return out, err
	}
	out.From, out.To, out.Until = p.from, p.to, p.from
	snap := s.opts.ACL.Snapshot()
	bm := snap.Systems(caller, acl.PermView|acl.PermData)
	out.Total = int(bm.GetCardinality())
	if out.Total == 0 {
		return out, nil
	}
	ctx, cancel, err := s.storeCtx(ctx)
	if err != nil {
		return out, err
	}
	defer cancel()
	if p.wm, err = s.watermarks(ctx); err != nil {
		return out, storeErr("fleet energy", err)
	}
	p.cumWM, p.minute = s.cumWatermark(), s.cumMinute()
	if p.sort.key == sortYield {
		return s.fleetYield(ctx, snap, bm, p, out, start)
	}
	reads, cols, until, fromTiles, err := s.fromTiles(ctx, bm, p)
	switch {
	case err != nil:
		return out, storeErr("fleet energy", err)
	case fromTiles:
		out.Until, out.Pushdown = until, "memory"
		out.Items = pageFromTiles(bm, reads, cols, p)
	default:
		p.set = pushdown(bm, "ids", s.opts.ArrayParamMax)
		plan := planFleetEnergy(p)
		out.Until, out.Pushdown = plan.until, p.set.kind
		if plan.page != "" {
			if out.Items, err = s.fleetEnergyPage(ctx, plan.page, plan.args); err != nil {
				return out, err
			}
		}
		if plan.zerosLast && len(out.Items) <= p.limit {
			if out.Items, err = s.fillZeros(ctx, out.Items, p.limit+1, bm, p.cur, plan.nonzero, plan.args); err != nil {
				return out, err
			}
		}
	}
	if len(out.Items) > p.limit {
		out.Items = out.Items[:p.limit]
		last := out.Items[p.limit-1]
		out.NextCursor = encodeCursor(cursor{sort: p.sort, scope: p.scope, id: uint32(last.ID), key: last.EnergyMWh})
	}
	describe(snap, out.Items)
	s.m.observeFleetEnergy(out.Pushdown, time.Since(start))
	return out, nil
}

// fromTiles answers a request's energies from tiles (energytiles.go) when
// its range is all cumulative tiles and they are in memory or worth
// reading for this caller: the signed tiles, their columns and where the
// sums end. False: the engine answers.
func (s *Service) fromTiles(ctx context.Context, bm *roaring.Bitmap, p fleetParams) ([]tileRead, [][]uint64, time.Time, bool, error) {
	if s.tiles == nil {
		return nil, nil, time.Time{}, false, nil
	}
	tiles := planFleetTiles(p.from, p.to, p.wm, p.cumWM, p.minute)
	reads, ok := energyReads(tiles, p.minute)
	if !ok {
		return nil, nil, time.Time{}, false, nil
	}
	until := tilesEnd(tiles, p.from)
	if len(reads) == 0 {
		return nil, nil, until, true, nil // nothing rolled up yet: every system at zero
	}
	read, err := s.tiles.worthReading(ctx, reads, bm.GetCardinality())
	if err != nil {
		return nil, nil, time.Time{}, false, err
	}
	// The last 7 or 30 whole days are one row per system in the engine
	// (cumPart), which costs less than reading two tiles on the way
	// (46 against 78–143 ms for 200 k systems): the engine answers, and
	// the tiles are read in the background for the requests that follow.
	if read && len(tiles) == 1 && tiles[0].level == levelCum {
		_, lag := cumLag(tiles[0])
		read = !lag
	}
	if !read && !s.tiles.cached(reads) {
		s.tiles.ask(reads, bm.GetCardinality())
		return nil, nil, time.Time{}, false, nil
	}
	cols, ok, err := s.tiles.get(ctx, reads, read)
	return reads, cols, until, ok, err
}

// describe fills in what an answer shows of each system besides its
// energy.
func describe(snap *acl.Snapshot, items []SystemEnergy) {
	for i := range items {
		if sys, ok := snap.System(items[i].ID); ok {
			items[i].GUID, items[i].Name, items[i].CapacityW = sys.GUID, sys.Name, sys.CapacityW
		}
	}
}

// fleetYield answers sort=yield and -yield: specific yield divides by the
// capacity, which only the acl state knows, so every system's energy is
// read (a row per system, ordered by id) and the page sorted here.
func (s *Service) fleetYield(ctx context.Context, snap *acl.Snapshot, bm *roaring.Bitmap, p fleetParams, out FleetEnergy, start time.Time) (FleetEnergy, error) {
	all := p
	all.sort, all.cur, all.limit = sortSpec{key: sortID}, nil, out.Total
	var items []SystemEnergy
	reads, cols, until, fromTiles, err := s.fromTiles(ctx, bm, p)
	switch {
	case err != nil:
		return out, storeErr("fleet energy", err)
	case fromTiles:
		out.Until, out.Pushdown = until, "memory"
		items = make([]SystemEnergy, 0, out.Total)
		for _, id := range bm.ToArray() {
			items = append(items, SystemEnergy{ID: acl.SystemID(id), EnergyMWh: energyOf(id, reads, cols)})
		}
	default:
		all.set = pushdown(bm, "ids", s.opts.ArrayParamMax)
		plan := planFleetEnergy(all)
		out.Until, out.Pushdown = plan.until, all.set.kind
		if plan.page != "" {
			if items, err = s.fleetEnergyPage(ctx, plan.page, plan.args); err != nil {
				return out, err
			}
		}
	}
	if len(items) == 0 { // nothing rolled up: every system, at zero
		for _, id := range bm.ToArray() {
			items = append(items, SystemEnergy{ID: acl.SystemID(id)})
		}
	}
	describe(snap, items)
	// Known yields first, in the order asked, then the systems without a
	// capacity by id; ties by id in the sort's direction.
	order := func(ka uint64, ida acl.SystemID, kb uint64, idb acl.SystemID) int {
		if (ka == 0) != (kb == 0) {
			if ka == 0 {
				return 1
			}
			return -1
		}
		c := cmp.Compare(ka, kb)
		if c == 0 {
			c = cmp.Compare(ida, idb)
		}
		if p.sort.desc {
			return -c
		}
		return c
	}
	slices.SortFunc(items, func(a, b SystemEnergy) int { return order(a.yieldKey(), a.ID, b.yieldKey(), b.ID) })
	if p.cur != nil {
		i := slices.IndexFunc(items, func(e SystemEnergy) bool { return order(e.yieldKey(), e.ID, p.cur.key, acl.SystemID(p.cur.id)) > 0 })
		if i < 0 {
			i = len(items)
		}
		items = items[i:]
	}
	if len(items) > p.limit {
		items = items[:p.limit]
		last := items[p.limit-1]
		out.NextCursor = encodeCursor(cursor{sort: p.sort, scope: p.scope, id: uint32(last.ID), key: last.yieldKey()})
	}
	out.Items = items
	s.m.observeFleetEnergy(out.Pushdown, time.Since(start))
	return out, nil
}

// fleetParams is what a fleet energy request asks, checked: the range in
// whole minutes, the sort, the page and where it starts — and, filled in
// before planning, what the store holds (rollup watermarks) and the
// caller's ids rendered as a parameter.
type fleetParams struct {
	from, to time.Time
	sort     sortSpec
	limit    int
	scope    uint32  // the cursor scope of (from, to)
	cur      *cursor // nil: the first page
	wm       [4]time.Time
	cumWM    time.Time
	minute   timeSpan // what system_energy_cum_1m covers
	set      idSet
}

// fleetParams checks a request's parameters.
func (s *Service) fleetParams(fq FleetEnergyQuery) (fleetParams, error) {
	var p fleetParams
	p.from, p.to = fq.From.UTC().Truncate(time.Minute), fq.To.UTC().Truncate(time.Minute)
	if !p.from.Before(p.to) {
		return p, fmt.Errorf("%w: from must be before to (whole minutes)", ErrBadRequest)
	}
	sortText := fq.Sort
	if sortText == "" {
		sortText = "-energy"
	}
	var ok bool
	if p.sort, ok = parseSort(sortText, sortFleetEnergy, sortID, sortYield); !ok {
		return p, fmt.Errorf("%w: sort must be energy, yield or id, with '-' for descending", ErrBadRequest)
	}
	var err error
	if p.limit, err = s.limit(fq.Limit); err != nil {
		return p, err
	}
	p.scope = scopeHash("fleet_energy", strconv.FormatInt(p.from.Unix(), 10), strconv.FormatInt(p.to.Unix(), 10))
	if fq.Cursor != "" {
		c, err := decodeCursor(fq.Cursor)
		if err != nil {
			return p, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		if c.sort != p.sort || c.scope != p.scope {
			return p, fmt.Errorf("%w: the cursor belongs to another query (from, to and sort must stay the same)", ErrBadRequest)
		}
		p.cur = &c
	}
	return p, nil
}

// fleetPlan is the statements that answer a fleet energy request.
type fleetPlan struct {
	// page selects (system_id, e) rows of the page, one more than the
	// limit to know whether another page follows; "" when the page can
	// hold only systems without energy (zerosLast, the cursor past them).
	page string
	// zerosLast: the order is -energy, and systems without energy — which
	// page does not return — come last, by id descending, from the
	// caller's bitmap less those nonzero (an array of ids; "" when no
	// tile reads anything, so every system is zero).
	zerosLast bool
	nonzero   string
	args      []any
	// until is where the sums end (see FleetEnergy.Until).
	until time.Time
}

// planFleetEnergy plans the statements of a fleet energy request from its
// parameters — pure: the same parameters give the same SQL, which the
// golden tests (testdata/fleet_energy) pin. Every value is a parameter of
// the statement, never spliced into it.
func planFleetEnergy(p fleetParams) fleetPlan {
	tiles := planFleetTiles(p.from, p.to, p.wm, p.cumWM, p.minute)
	plan := fleetPlan{until: tilesEnd(tiles, p.from)}
	groups, args := groupTiles(tiles, []any{p.set.arg, clickhouse.Named("lim", strconv.Itoa(p.limit+1))})
	// In the default order (-energy) the systems without energy come last:
	// the engine sums only rows that exist, and a page that reaches the
	// zeros takes them from the caller's bitmap (fillZeros). In the other
	// orders every system of the bitmap joins the sum with 0 — which costs
	// a row per system in the engine's GROUP BY, half the query for 200 k.
	plan.zerosLast = p.sort.key == sortFleetEnergy && p.sort.desc
	var parts []string
	if !plan.zerosLast {
		parts = append(parts, "SELECT arrayJoin("+p.set.array+") AS system_id, toInt64(0) AS wh")
	}
	onePerSystem := false // the only part reads at most one row per system
	for _, t := range tiles {
		var part string
		switch t.level {
		case levelCum:
			part, onePerSystem = cumPart(t, p.set)
			args = append(args, clickhouse.Named("cum_from", strconv.FormatInt(t.from.Unix(), 10)), clickhouse.Named("cum_to", strconv.FormatInt(t.to.Unix(), 10)))
		case levelCumMinute:
			part, onePerSystem = cumMinutePart(t, p.set, t.from.Equal(p.minute.from))
			args = append(args, clickhouse.Named("min_from", strconv.FormatInt(t.from.Unix(), 10)), clickhouse.Named("min_to", strconv.FormatInt(t.to.Unix(), 10)))
		default:
			continue
		}
		parts = append(parts, part)
	}
	for _, g := range groups {
		parts = append(parts, "SELECT system_id, toInt64(wh) AS wh FROM system_rollup_"+rollup.Levels[g.level].Name+" FINAL WHERE "+p.set.in("system_id")+" AND "+g.cond)
	}
	if p.cur != nil {
		args = append(args, clickhouse.Named("cid", strconv.FormatUint(uint64(p.cur.id), 10)), clickhouse.Named("ce", strconv.FormatUint(p.cur.key, 10)))
	}
	plan.args = args
	if len(parts) == 0 {
		// Nothing rolled up in the range yet (a fresh start, a range that
		// began a minute ago): every system is zero.
		return plan
	}
	// Each system's energy: summed by system, unless a single part reads
	// one row per system — then the hash aggregation, most of the time of
	// a 200 k-system answer, is not needed.
	sums := "SELECT system_id, toUInt64(greatest(sum(wh), 0)) AS e FROM (" + strings.Join(parts, " UNION ALL ") + ") GROUP BY system_id"
	if len(parts) == 1 && onePerSystem {
		sums = "SELECT system_id, toUInt64(greatest(wh, 0)) AS e FROM (" + parts[0] + ")"
	}
	sums = "SELECT system_id, e FROM (" + sums + ")"
	dir, cmp := "ASC", ">"
	if p.sort.desc {
		dir, cmp = "DESC", "<"
	}
	where, order := "", ""
	switch {
	case plan.zerosLast:
		order = "e DESC, system_id DESC"
		where = " WHERE e > 0"
		if p.cur != nil {
			where += " AND (e < {ce:UInt64} OR (e = {ce:UInt64} AND system_id < {cid:UInt32}))"
		}
	case p.sort.key == sortID:
		order = "system_id " + dir
		if p.cur != nil {
			where = " WHERE system_id " + cmp + " {cid:UInt32}"
		}
	default:
		order = "e " + dir + ", system_id " + dir
		if p.cur != nil {
			where = " WHERE e " + cmp + " {ce:UInt64} OR (e = {ce:UInt64} AND system_id " + cmp + " {cid:UInt32})"
		}
	}
	if !plan.zerosLast || p.cur == nil || p.cur.key > 0 {
		plan.page = sums + where + " ORDER BY " + order + " LIMIT {lim:UInt32}"
	}
	if plan.zerosLast {
		plan.nonzero = "SELECT bitmapToArray(groupBitmapState(system_id)) FROM (" + sums + " WHERE e > 0)"
	}
	return plan
}

// cumLag is the lag a row of system_energy_cum carries (rollup.CumLags)
// that a levelCum tile spans exactly, if any: then the row at its end
// alone is its energy, one row per system.
func cumLag(t tile) (rollup.CumLag, bool) {
	for _, l := range rollup.CumLags {
		if t.to.Equal(t.from.AddDate(0, 0, l.Days)) {
			return l, true
		}
	}
	return rollup.CumLag{}, false
}

// cumPart reads the energy of a levelCum tile from system_energy_cum: when
// the tile spans one of the lags a row carries (cumLag), the row at its end
// alone — one row per system, which one says — otherwise the rows at both
// ends, the start's negated.
func cumPart(t tile, set idSet) (string, bool) {
	if l, ok := cumLag(t); ok {
		return "SELECT system_id, toInt64(wh) - toInt64(" + l.Column + ") AS wh FROM system_energy_cum FINAL" +
			" WHERE ts = toDateTime({cum_to:Int64}, 'UTC') AND " + set.contains("system_id"), true
	}
	return "SELECT system_id, if(ts = toDateTime({cum_to:Int64}, 'UTC'), toInt64(wh), -toInt64(wh)) AS wh FROM system_energy_cum FINAL" +
		" WHERE ts IN (toDateTime({cum_from:Int64}, 'UTC'), toDateTime({cum_to:Int64}, 'UTC')) AND " + set.contains("system_id"), false
}

// cumMinutePart reads the energy of a levelCumMinute tile from
// system_energy_cum_1m: the rows at its end less those at its start — or,
// from the table's origin (where every count is zero), the rows at its end
// alone, one per system, which the second result says.
func cumMinutePart(t tile, set idSet, atOrigin bool) (string, bool) {
	if atOrigin {
		return "SELECT system_id, toInt64(wh) AS wh FROM system_energy_cum_1m FINAL" +
			" WHERE ts = toDateTime({min_to:Int64}, 'UTC') AND " + set.contains("system_id"), true
	}
	return "SELECT system_id, if(ts = toDateTime({min_to:Int64}, 'UTC'), toInt64(wh), -toInt64(wh)) AS wh FROM system_energy_cum_1m FINAL" +
		" WHERE ts IN (toDateTime({min_from:Int64}, 'UTC'), toDateTime({min_to:Int64}, 'UTC')) AND " + set.contains("system_id"), false
}

// fleetEnergyPage runs a fleet energy query answering (system_id, e) rows.
func (s *Service) fleetEnergyPage(ctx context.Context, sql string, args []any) ([]SystemEnergy, error) {
	rows, err := s.opts.Store.Query(ctx, sql, args...)
	if err != nil {
		return nil, storeErr("fleet energy", err)
	}
	defer rows.Close()
	var out []SystemEnergy
	for rows.Next() {
		var id uint32
		var e uint64
		if err := rows.Scan(&id, &e); err != nil {
			return nil, storeErr("fleet energy", err)
		}
		out = append(out, SystemEnergy{ID: acl.SystemID(id), EnergyMWh: e})
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("fleet energy", err)
	}
	return out, nil
}

// fillZeros appends to items, up to want in all, the systems of bm without
// energy in the -energy order — by id, descending — after the cursor: bm
// less the systems nonzeroSQL (an array of ids) answers.
func (s *Service) fillZeros(ctx context.Context, items []SystemEnergy, want int, bm *roaring.Bitmap, cur *cursor, nonzeroSQL string, args []any) ([]SystemEnergy, error) {
	var ids []uint32
	if nonzeroSQL != "" {
		if err := s.opts.Store.QueryRow(ctx, nonzeroSQL, args...).Scan(&ids); err != nil {
			return nil, storeErr("fleet energy", err)
		}
	}
	zeros := bm.Clone()
	zeros.AndNot(roaring.BitmapOf(ids...))
	it := zeros.ReverseIterator()
	for it.HasNext() && len(items) < want {
		id := it.Next()
		if cur != nil && cur.key == 0 && id >= cur.id {
			continue
		}
		items = append(items, SystemEnergy{ID: acl.SystemID(id)})
	}
	return items, nil
}

// lifetimeFrom is where a system's lifetime energy is counted from: before
// any system could report to fleetscope.
var lifetimeFrom = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// LifetimeEnergy is a system's energy since it first reported (mWh), as
// far as the rollups go (until: a couple of minutes behind the clock, see
// FleetEnergy). The caller needs view on the system, as for its detail.
func (s *Service) LifetimeEnergy(ctx context.Context, caller acl.AccountID, ref string) (mwh uint64, until time.Time, err error) {
	snap := s.opts.ACL.Snapshot()
	sys, err := resolveSystem(snap, caller, ref, acl.PermView)
	if err != nil {
		return 0, time.Time{}, err
	}
	ctx, cancel, err := s.storeCtx(ctx)
	if err != nil {
		return 0, time.Time{}, err
	}
	defer cancel()
	p := fleetParams{from: lifetimeFrom, to: s.opts.Now().UTC().Truncate(time.Minute), sort: sortSpec{key: sortFleetEnergy, desc: true}, limit: 1}
	if p.wm, err = s.watermarks(ctx); err != nil {
		return 0, time.Time{}, storeErr("lifetime energy", err)
	}
	p.cumWM, p.minute = s.cumWatermark(), s.cumMinute()
	p.set = pushdown(roaring.BitmapOf(uint32(sys.ID)), "ids", s.opts.ArrayParamMax)
	plan := planFleetEnergy(p)
	if plan.page == "" {
		return 0, plan.until, nil
	}
	items, err := s.fleetEnergyPage(ctx, plan.page, plan.args)
	if err != nil || len(items) == 0 {
		return 0, plan.until, err
	}
	return items[0].EnergyMWh, plan.until, nil
}
