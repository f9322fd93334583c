package query

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/RoaringBitmap/roaring/v2"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/rollup"
	"github.com/fleetscope/fleetscope/store"
)

// History plans. The rollup worker (package ingest) computes closed buckets
// of each level — 1 min from raw readings, 15 min from 1 min, 1 h from 15
// min, 1 day from 1 h — and records per level a watermark: every bucket
// before it is computed. A range is answered by tiles: the coarsest level
// allowed covers the whole buckets inside [from, to) up to its watermark,
// and the edges — an unaligned start, the stretch after the watermark — are
// planned again one level finer, down to raw readings for what no rollup
// covers yet (at most the rollup's lateness, ~2 min, plus a partial minute).
// All tiles go into one statement as a UNION ALL and are added up per
// bucket, so an answer is exact and current whatever the rollup's lag, and
// costs about one row per bucket.
//
// Rollup rows are ReplacingMergeTree rows (a late reading recomputes its
// bucket as a new row version), read with FINAL. The partition key (month
// of ts) is part of each row's identity, so versions of one row never
// straddle partitions and FINAL may skip merging across them
// (do_not_merge_across_partitions_select_final).

// levelRaw is the raw readings table in a tile.
const levelRaw = -1

// tile is part of a range served by one level (or raw readings).
type tile struct {
	level    int
	from, to time.Time
}

// planTiles covers [from, to) with tiles of levels up to top (an index of
// rollup.Levels), coarsest first where whole buckets fit under the level's
// watermark, finer at the edges. Without raw, what no rollup covers yet is
// left out; the tiles then cover [from, until). With raw, a stretch of at
// most rawBelow is read raw at once rather than split over finer rollups:
// for one system a few thousand readings cost less than another subquery.
func planTiles(from, to time.Time, top int, wm [4]time.Time, raw bool, rawBelow time.Duration) []tile {
	var out []tile
	var plan func(lo, hi time.Time, c int)
	plan = func(lo, hi time.Time, c int) {
		if !lo.Before(hi) {
			return
		}
		if raw && hi.Sub(lo) <= rawBelow {
			c = -1
		}
		if c < 0 {
			if raw {
				out = append(out, tile{level: levelRaw, from: lo, to: hi})
			}
			return
		}
		step := rollup.Levels[c].Step
		a := ceilTime(lo, step)
		end := hi
		if wm[c].Before(end) {
			end = wm[c]
		}
		b := end.Truncate(step)
		if !a.Before(b) {
			plan(lo, hi, c-1)
			return
		}
		plan(lo, a, c-1)
		out = append(out, tile{level: c, from: a, to: b})
		plan(b, hi, c-1)
	}
	plan(from, to, top)
	slices.SortFunc(out, func(a, b tile) int { return a.from.Compare(b.from) })
	return out
}

func ceilTime(t time.Time, d time.Duration) time.Time {
	f := t.Truncate(d)
	if f.Before(t) {
		return f.Add(d)
	}
	return f
}

// tileGroup is the tiles of one level, queried by one subquery whose
// condition ORs their ranges: fewer subqueries, each with a fixed cost of a
// few milliseconds in the engine, while the primary key still prunes every
// range.
type tileGroup struct {
	level int
	cond  string // (ts >= … AND ts < …) OR …
}

// groupTiles groups tiles by level, coarsest first, appending the range
// parameters to args.
func groupTiles(tiles []tile, args []any) ([]tileGroup, []any) {
	var groups []tileGroup
	for level := len(rollup.Levels) - 1; level >= levelRaw; level-- {
		var conds []string
		for _, t := range tiles {
			if t.level != level {
				continue
			}
			f, tt := fmt.Sprintf("f%d", len(args)), fmt.Sprintf("t%d", len(args))
			if level == levelRaw {
				args = append(args, msArg(f, t.from), msArg(tt, t.to))
				conds = append(conds, "(ts >= fromUnixTimestamp64Milli({"+f+":Int64}, 'UTC') AND ts < fromUnixTimestamp64Milli({"+tt+":Int64}, 'UTC'))")
			} else {
				args = append(args, secArg(f, t.from), secArg(tt, t.to))
				conds = append(conds, "(ts >= toDateTime({"+f+":Int64}, 'UTC') AND ts < toDateTime({"+tt+":Int64}, 'UTC'))")
			}
		}
		if len(conds) > 0 {
			groups = append(groups, tileGroup{level: level, cond: "(" + strings.Join(conds, " OR ") + ")"})
		}
	}
	return groups, args
}

// rawStretch is the longest stretch of one system's history read raw
// rather than from finer rollups: an hour is 1,800 readings of a 30-panel
// system, less work than a subquery.
const rawStretch = time.Hour

// tilesEnd is where contiguous tiles starting at from end.
func tilesEnd(tiles []tile, from time.Time) time.Time {
	end := from
	for _, t := range tiles {
		if t.from.After(end) {
			break
		}
		if t.to.After(end) {
			end = t.to
		}
	}
	return end
}

// wmCache keeps the rollup watermarks. A stale watermark is older than the
// true one, which only moves work to finer levels, never makes an answer
// wrong; so requests use the cached ones and a stale cache is refreshed in
// the background, off the request path. Only the first request waits.
type wmCache struct {
	mu         sync.Mutex
	at         time.Time
	wm         [4]time.Time
	cum        time.Time // system_energy_cum is complete up to this day
	refreshing bool
}

// wmTTL is how old cached watermarks may get before a refresh starts: the
// rollup worker moves them every 10 s.
const wmTTL = 2 * time.Second

func (s *Service) watermarks(ctx context.Context) ([4]time.Time, error) {
	s.wm.mu.Lock()
	wm, at := s.wm.wm, s.wm.at
	stale := time.Since(at) >= wmTTL
	if !at.IsZero() {
		if stale && !s.wm.refreshing {
			s.wm.refreshing = true
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), s.opts.HistoryTimeout)
				defer cancel()
				s.loadWatermarks(ctx) // on failure the next request retries
			}()
		}
		s.wm.mu.Unlock()
		return wm, nil
	}
	s.wm.mu.Unlock()
	return s.loadWatermarks(ctx)
}

func (s *Service) loadWatermarks(ctx context.Context) ([4]time.Time, error) {
	defer func() {
		s.wm.mu.Lock()
		s.wm.refreshing = false
		s.wm.mu.Unlock()
	}()
	rows, err := s.opts.Store.Query(ctx, "SELECT level, watermark FROM rollup_watermarks FINAL")
	if err != nil {
		return [4]time.Time{}, fmt.Errorf("query: rollup watermarks: %w", err)
	}
	defer rows.Close()
	var wm [4]time.Time
	var cum time.Time
	for rows.Next() {
		var level string
		var at time.Time
		if err := rows.Scan(&level, &at); err != nil {
			return wm, fmt.Errorf("query: rollup watermarks: %w", err)
		}
		for i, l := range rollup.Levels {
			if l.Name == level && i < len(wm) {
				wm[i] = at.UTC()
			}
		}
		if level == rollup.CumName {
			cum = at.UTC()
		}
	}
	if err := rows.Err(); err != nil {
		return wm, fmt.Errorf("query: rollup watermarks: %w", err)
	}
	s.wm.mu.Lock()
	s.wm.wm, s.wm.cum, s.wm.at = wm, cum, time.Now()
	s.wm.mu.Unlock()
	return wm, nil
}

// cumWatermark is the cached watermark of system_energy_cum, as of the last
// watermarks call.
func (s *Service) cumWatermark() time.Time {
	s.wm.mu.Lock()
	defer s.wm.mu.Unlock()
	return s.wm.cum
}

// levelCum in a tile is system_energy_cum: whole UTC days [from, to) as two
// rows per system (see planFleetTiles).
const levelCum = 100

// planFleetTiles covers [from, to) for fleet-wide sums: the whole days
// that system_energy_cum has (up to cumWM) by one levelCum tile when there
// are at least two — each system's energy over them is its row at the end
// minus its row at the start, where the day rollup reads a row per day —
// and the rest by rollup tiles (planTiles, no raw readings).
func planFleetTiles(from, to time.Time, wm [4]time.Time, cumWM time.Time) []tile {
	a, b := ceilTime(from, 24*time.Hour), to.Truncate(24*time.Hour)
	if cumWM.Before(b) {
		b = cumWM
	}
	top := len(rollup.Levels) - 1
	if b.Sub(a) < 48*time.Hour {
		return planTiles(from, to, top, wm, false, 0)
	}
	out := planTiles(from, a, top, wm, false, 0)
	out = append(out, tile{level: levelCum, from: a, to: b})
	return append(out, planTiles(b, to, top, wm, false, 0)...)
}

// ErrUnavailable: the history store is not there or cannot answer now
// (unreachable or overloaded): HTTP 503, retry. Store failures that retrying
// does not cure (a statement the engine refuses) are not marked: they are
// bugs.
var ErrUnavailable = errors.New("query: history store unavailable")

func (s *Service) storeCtx(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if s.opts.Store == nil {
		return nil, nil, fmt.Errorf("%w: no store configured", ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.HistoryTimeout)
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"do_not_merge_across_partitions_select_final": 1,
	}))
	return ctx, cancel, nil
}

// storeErr wraps a failure of the store: ErrUnavailable when retrying can
// cure it (store.ErrUnavailable), a plain error otherwise.
func storeErr(what string, err error) error {
	if err = store.Transient(err); errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
	}
	return fmt.Errorf("query: %s: %w", what, err)
}

// resolveSystem finds the system a path names — its numeric id or its GUID
// — and checks the caller holds p on it. A system that does not exist, that
// the caller may not view, or (for p beyond view) on which it lacks p,
// is ErrNotFound alike.
func resolveSystem(snap *acl.Snapshot, caller acl.AccountID, ref string, p acl.Perm) (acl.System, error) {
	try := func(id acl.SystemID) (acl.System, bool) {
		if !snap.Can(caller, p, id) {
			return acl.System{}, false
		}
		return snap.System(id)
	}
	if n, err := strconv.ParseUint(ref, 10, 32); err == nil {
		if sys, ok := try(acl.SystemID(n)); ok {
			return sys, nil
		}
	}
	if id, ok := snap.SystemByGUID(ref); ok {
		if sys, ok := try(id); ok {
			return sys, nil
		}
	}
	return acl.System{}, fmt.Errorf("%w: system %q", ErrNotFound, ref)
}

// TelemetryQuery is GET /v1/systems/{id}/telemetry.
type TelemetryQuery struct {
	From, To time.Time
	// Step is raw, 1m, 15m, 1h or 1d (local days of the system's time
	// zone); "" picks by range: up to 6 h 1m, up to 3 days 15m, up to 60
	// days 1h, else 1d.
	Step  string
	Panel string // "" for the whole system
}

// Point is one bucket (or, for raw, one timestamp) of telemetry, in the
// stored units; the HTTP answer converts them.
type Point struct {
	TS        time.Time
	Samples   uint64 // readings added up
	Panels    uint64 // panels reporting (system telemetry)
	EnergyMWh uint64
	PinSumDW  uint64 // Σ pin, deciwatts
	PinMaxDW  uint64
	TempMaxDC int64
	VinSumCV  uint64 // panel telemetry: Σ vin, centivolts
	IinSumMA  uint64
	VoutSumCV uint64
	TempSumDC int64
	RSSI      uint8 // raw panel telemetry
}

// Telemetry is a system's (or one panel's) history.
type Telemetry struct {
	System   acl.SystemID
	Panel    string
	Step     string
	From, To time.Time
	Timezone string
	Points   []Point
}

var stepNames = []string{"raw", "1m", "15m", "1h", "1d"}

// Telemetry reads the history of a system the caller holds view and data
// on (data without view — a member role can be so — is no access: the
// system is not even listed to it).
func (s *Service) Telemetry(ctx context.Context, caller acl.AccountID, ref string, tq TelemetryQuery) (Telemetry, error) {
	start := time.Now()
	snap := s.opts.ACL.Snapshot()
	sys, err := resolveSystem(snap, caller, ref, acl.PermView|acl.PermData)
	if err != nil {
		return Telemetry{}, err
	}
	if !tq.From.Before(tq.To) {
		return Telemetry{}, fmt.Errorf("%w: from must be before to", ErrBadRequest)
	}
	step := tq.Step
	if step == "" {
		switch d := tq.To.Sub(tq.From); {
		case d <= 6*time.Hour:
			step = "1m"
		case d <= 72*time.Hour:
			step = "15m"
		case d <= 60*24*time.Hour:
			step = "1h"
		default:
			step = "1d"
		}
	}
	level := slices.Index(stepNames, step) - 1
	if level < levelRaw {
		return Telemetry{}, fmt.Errorf("%w: step must be raw, 1m, 15m, 1h or 1d", ErrBadRequest)
	}
	if len(tq.Panel) > 64 {
		return Telemetry{}, fmt.Errorf("%w: panel label longer than 64 bytes", ErrBadRequest)
	}
	loc := acl.Zone(sys.Timezone)
	out := Telemetry{System: sys.ID, Panel: tq.Panel, Step: step, From: tq.From.UTC(), To: tq.To.UTC(), Timezone: loc.String()}
	if level == levelRaw {
		if tq.To.Sub(tq.From) > s.opts.MaxRawRange {
			return out, fmt.Errorf("%w: raw telemetry spans at most %s; use a step", ErrBadRequest, s.opts.MaxRawRange)
		}
	} else {
		// Buckets start at whole steps (local midnights for 1d).
		if level == 3 {
			y, m, d := tq.From.In(loc).Date()
			out.From = time.Date(y, m, d, 0, 0, 0, 0, loc).UTC()
		} else {
			out.From = tq.From.UTC().Truncate(rollup.Levels[level].Step)
		}
		if n := out.To.Sub(out.From) / rollup.Levels[level].Step; int(n) > s.opts.MaxPoints {
			return out, fmt.Errorf("%w: %d points at step %s, at most %d; use a coarser step", ErrBadRequest, n, step, s.opts.MaxPoints)
		}
	}
	ctx, cancel, err := s.storeCtx(ctx)
	if err != nil {
		return out, err
	}
	defer cancel()
	if level == levelRaw {
		out.Points, err = s.rawTelemetry(ctx, sys.ID, tq.Panel, out.From, out.To)
	} else {
		out.Points, err = s.bucketTelemetry(ctx, sys.ID, tq.Panel, level, loc, out.From, out.To)
	}
	s.m.observe("telemetry_store", time.Since(start))
	return out, err
}

func msArg(name string, t time.Time) any {
	return clickhouse.Named(name, strconv.FormatInt(t.UnixMilli(), 10))
}
func secArg(name string, t time.Time) any {
	return clickhouse.Named(name, strconv.FormatInt(t.Unix(), 10))
}

func (s *Service) rawTelemetry(ctx context.Context, sys acl.SystemID, panel string, from, to time.Time) ([]Point, error) {
	args := []any{clickhouse.Named("sys", strconv.FormatUint(uint64(sys), 10)), msArg("f", from), msArg("t", to),
		clickhouse.Named("lim", strconv.Itoa(s.opts.MaxPoints+1))}
	where := "system_id = {sys:UInt32} AND ts >= fromUnixTimestamp64Milli({f:Int64}, 'UTC') AND ts < fromUnixTimestamp64Milli({t:Int64}, 'UTC')"
	var sql string
	if panel != "" {
		args = append(args, clickhouse.Named("panel", panel))
		sql = "SELECT ts, toUInt64(vin), toUInt64(iin), toUInt64(pin), toUInt64(vout), toInt64(temp), rssi, toUInt64(wh) FROM readings WHERE " +
			where + " AND panel = {panel:String} ORDER BY ts LIMIT {lim:UInt32}"
	} else {
		sql = "SELECT ts, count(), sum(toUInt64(pin)), sum(toUInt64(wh)), toInt64(max(temp)) FROM readings WHERE " +
			where + " GROUP BY ts ORDER BY ts LIMIT {lim:UInt32}"
	}
	rows, err := s.opts.Store.Query(ctx, sql, args...)
	if err != nil {
		return nil, storeErr("raw telemetry", err)
	}
	defer rows.Close()
	var pts []Point
	for rows.Next() {
		var p Point
		if panel != "" {
			var vin, iin, vout uint64
			err = rows.Scan(&p.TS, &vin, &iin, &p.PinSumDW, &vout, &p.TempMaxDC, &p.RSSI, &p.EnergyMWh)
			p.Samples, p.Panels, p.VinSumCV, p.IinSumMA, p.VoutSumCV, p.TempSumDC, p.PinMaxDW = 1, 1, vin, iin, vout, p.TempMaxDC, p.PinSumDW
		} else {
			err = rows.Scan(&p.TS, &p.Panels, &p.PinSumDW, &p.EnergyMWh, &p.TempMaxDC)
			p.Samples = p.Panels
		}
		if err != nil {
			return nil, storeErr("raw telemetry", err)
		}
		pts = append(pts, p)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("raw telemetry", err)
	}
	if len(pts) > s.opts.MaxPoints {
		return nil, fmt.Errorf("%w: more than %d raw points; narrow the range or use a step", ErrBadRequest, s.opts.MaxPoints)
	}
	return pts, nil
}

// bucketTelemetry answers a step of level (0 = 1m … 3 = 1d in loc's days).
func (s *Service) bucketTelemetry(ctx context.Context, sys acl.SystemID, panel string, level int, loc *time.Location, from, to time.Time) ([]Point, error) {
	wm, err := s.watermarks(ctx)
	if err != nil {
		return nil, storeErr("telemetry", err)
	}
	top, bucket := level, fmt.Sprintf("toDateTime(toStartOfInterval(ts, INTERVAL %d SECOND), 'UTC')", int(rollup.Levels[level].Step.Seconds()))
	args := []any{clickhouse.Named("sys", strconv.FormatUint(uint64(sys), 10))}
	if level == 3 && loc != time.UTC {
		// Local days are not UTC days: add up hours (15 min at
		// half-hour offsets, which the planner does at the edges).
		top, bucket = 2, "toDateTime(toStartOfDay(ts, {tz:String}), 'UTC')"
		args = append(args, clickhouse.Named("tz", loc.String()))
	}
	tiles := planTiles(from, to, top, wm, true, rawStretch)
	if len(tiles) == 0 {
		return nil, nil
	}
	where := "system_id = {sys:UInt32}"
	if panel != "" {
		where += " AND panel = {panel:String}"
		args = append(args, clickhouse.Named("panel", panel))
	}
	groups, args := groupTiles(tiles, args)
	var parts []string
	for _, g := range groups {
		cond := " AND " + g.cond
		if g.level == levelRaw {
			if panel != "" {
				parts = append(parts, "SELECT "+bucket+" AS b, count() AS samples, toUInt64(1) AS panels, sum(toUInt64(wh)) AS wh, sum(toUInt64(pin)) AS pin_sum, toUInt64(max(pin)) AS pin_max, "+
					"toInt64(max(temp)) AS temp_max, sum(toUInt64(vin)) AS vin_sum, sum(toUInt64(iin)) AS iin_sum, sum(toUInt64(vout)) AS vout_sum, sum(toInt64(temp)) AS temp_sum "+
					"FROM readings WHERE "+where+cond+" GROUP BY b")
			} else {
				parts = append(parts, "SELECT "+bucket+" AS b, count() AS samples, uniqExact(panel) AS panels, sum(toUInt64(wh)) AS wh, sum(toUInt64(pin)) AS pin_sum, toUInt64(max(pin)) AS pin_max, "+
					"toInt64(max(temp)) AS temp_max, toUInt64(0) AS vin_sum, toUInt64(0) AS iin_sum, toUInt64(0) AS vout_sum, toInt64(0) AS temp_sum "+
					"FROM readings WHERE "+where+cond+" GROUP BY b")
			}
			continue
		}
		name := rollup.Levels[g.level].Name
		if panel != "" {
			parts = append(parts, "SELECT "+bucket+" AS b, toUInt64(samples) AS samples, toUInt64(1) AS panels, wh, pin_sum, toUInt64(pin_max) AS pin_max, toInt64(temp_max) AS temp_max, "+
				"vin_sum, iin_sum, vout_sum, temp_sum FROM panel_rollup_"+name+" FINAL WHERE "+where+cond)
		} else {
			parts = append(parts, "SELECT "+bucket+" AS b, toUInt64(samples) AS samples, toUInt64(panels) AS panels, wh, pin_sum, toUInt64(pin_max) AS pin_max, toInt64(temp_max) AS temp_max, "+
				"toUInt64(0) AS vin_sum, toUInt64(0) AS iin_sum, toUInt64(0) AS vout_sum, toInt64(0) AS temp_sum FROM system_rollup_"+name+" FINAL WHERE "+where+cond)
		}
	}
	// One statement per level, run at once, merged here: a UNION ALL of
	// them with an outer GROUP BY cost the engine more than the parts.
	results := make([][]Point, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, part := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.points(ctx, "SELECT b, sum(samples), max(panels), sum(wh), sum(pin_sum), max(pin_max), max(temp_max), "+
				"sum(vin_sum), sum(iin_sum), sum(vout_sum), sum(temp_sum) FROM ("+part+") GROUP BY b", args)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, storeErr("telemetry", err)
	}
	return mergePoints(results), nil
}

// points runs a statement answering (bucket, samples, panels, wh, pin_sum,
// pin_max, temp_max, vin_sum, iin_sum, vout_sum, temp_sum) rows.
func (s *Service) points(ctx context.Context, sql string, args []any) ([]Point, error) {
	rows, err := s.opts.Store.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var pts []Point
	for rows.Next() {
		var p Point
		if err := rows.Scan(&p.TS, &p.Samples, &p.Panels, &p.EnergyMWh, &p.PinSumDW, &p.PinMaxDW, &p.TempMaxDC,
			&p.VinSumCV, &p.IinSumMA, &p.VoutSumCV, &p.TempSumDC); err != nil {
			return nil, err
		}
		p.TS = p.TS.UTC()
		pts = append(pts, p)
	}
	return pts, rows.Err()
}

// mergePoints adds up the points of several tiles by bucket, in time
// order: sums add, maxima take the larger, the panel count the larger (a
// bucket split between tiles holds the same panels in each).
func mergePoints(parts [][]Point) []Point {
	at := map[time.Time]int{}
	var out []Point
	for _, pts := range parts {
		for _, p := range pts {
			i, ok := at[p.TS]
			if !ok {
				at[p.TS] = len(out)
				out = append(out, p)
				continue
			}
			m := &out[i]
			m.Samples += p.Samples
			m.Panels = max(m.Panels, p.Panels)
			m.EnergyMWh += p.EnergyMWh
			m.PinSumDW += p.PinSumDW
			m.PinMaxDW = max(m.PinMaxDW, p.PinMaxDW)
			m.TempMaxDC = max(m.TempMaxDC, p.TempMaxDC)
			m.VinSumCV += p.VinSumCV
			m.IinSumMA += p.IinSumMA
			m.VoutSumCV += p.VoutSumCV
			m.TempSumDC += p.TempSumDC
		}
	}
	slices.SortFunc(out, func(a, b Point) int { return a.TS.Compare(b.TS) })
	return out
}

// PanelEnergy is one panel's production over a day.
type PanelEnergy struct {
	Panel     string
	Row       string // the label's letters ("A" of "A12"), for the layout
	Col       int    // the label's number (12 of "A12"); 0 if none
	EnergyMWh uint64
	Samples   uint64
	PinMaxDW  uint64
}

// PanelDay is GET /v1/systems/{id}/panels: every panel's energy over one
// local day of the system — the data of the panel layout heat map.
type PanelDay struct {
	System   acl.SystemID
	Date     string // YYYY-MM-DD in Timezone
	Timezone string
	From, To time.Time
	Panels   []PanelEnergy
}

// PanelsOn reads per-panel energy of a local day (date "YYYY-MM-DD"; ""
// means today) of a system the caller holds view and data on.
func (s *Service) PanelsOn(ctx context.Context, caller acl.AccountID, ref, date string) (PanelDay, error) {
	start := time.Now()
	snap := s.opts.ACL.Snapshot()
	sys, err := resolveSystem(snap, caller, ref, acl.PermView|acl.PermData)
	if err != nil {
		return PanelDay{}, err
	}
	loc := acl.Zone(sys.Timezone)
	var day time.Time
	if date == "" {
		y, m, d := s.opts.Now().In(loc).Date()
		day = time.Date(y, m, d, 0, 0, 0, 0, loc)
	} else if day, err = time.ParseInLocation(time.DateOnly, date, loc); err != nil {
		return PanelDay{}, fmt.Errorf("%w: date must be YYYY-MM-DD", ErrBadRequest)
	}
	out := PanelDay{System: sys.ID, Date: day.Format(time.DateOnly), Timezone: loc.String(),
		From: day.UTC(), To: day.AddDate(0, 0, 1).UTC()}
	ctx, cancel, err := s.storeCtx(ctx)
	if err != nil {
		return out, err
	}
	defer cancel()
	wm, err := s.watermarks(ctx)
	if err != nil {
		return out, storeErr("panels", err)
	}
	tiles := planTiles(out.From, out.To, 2, wm, true, rawStretch)
	groups, args := groupTiles(tiles, []any{clickhouse.Named("sys", strconv.FormatUint(uint64(sys.ID), 10))})
	var parts []string
	for _, g := range groups {
		if g.level == levelRaw {
			parts = append(parts, "SELECT toString(panel) AS p, sum(toUInt64(wh)) AS wh, count() AS samples, toUInt64(max(pin)) AS pin_max FROM readings "+
				"WHERE system_id = {sys:UInt32} AND "+g.cond+" GROUP BY p")
			continue
		}
		parts = append(parts, "SELECT toString(panel) AS p, wh, toUInt64(samples) AS samples, toUInt64(pin_max) AS pin_max FROM panel_rollup_"+rollup.Levels[g.level].Name+
			" FINAL WHERE system_id = {sys:UInt32} AND "+g.cond)
	}
	if len(parts) == 0 {
		return out, nil
	}
	rows, err := s.opts.Store.Query(ctx, "SELECT p, sum(wh), sum(samples), max(pin_max) FROM ("+strings.Join(parts, " UNION ALL ")+") GROUP BY p", args...)
	if err != nil {
		return out, storeErr("panels", err)
	}
	defer rows.Close()
	for rows.Next() {
		var pe PanelEnergy
		if err := rows.Scan(&pe.Panel, &pe.EnergyMWh, &pe.Samples, &pe.PinMaxDW); err != nil {
			return out, storeErr("panels", err)
		}
		pe.Row, pe.Col = splitLabel(pe.Panel)
		out.Panels = append(out.Panels, pe)
	}
	if err := rows.Err(); err != nil {
		return out, storeErr("panels", err)
	}
	slices.SortFunc(out.Panels, func(a, b PanelEnergy) int {
		if c := strings.Compare(a.Row, b.Row); c != 0 {
			return c
		}
		if a.Col != b.Col {
			return a.Col - b.Col
		}
		return strings.Compare(a.Panel, b.Panel)
	})
	s.m.observe("panels_store", time.Since(start))
	return out, nil
}

// splitLabel splits a panel label into its letters and number: "B12" → "B",
// 12. A label of another shape is all row, column 0.
func splitLabel(label string) (string, int) {
	i := strings.IndexFunc(label, func(r rune) bool { return r >= '0' && r <= '9' })
	if i <= 0 {
		return label, 0
	}
	n, err := strconv.Atoi(label[i:])
	if err != nil || n < 0 {
		return label, 0
	}
	return label[:i], n
}

// FleetEnergyQuery is GET /v1/fleet/energy.
type FleetEnergyQuery struct {
	From, To time.Time
	// Sort is energy or id, descending with a leading '-'. Default -energy.
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
	from, to := fq.From.UTC().Truncate(time.Minute), fq.To.UTC().Truncate(time.Minute)
	if !from.Before(to) {
		return out, fmt.Errorf("%w: from must be before to (whole minutes)", ErrBadRequest)
	}
	out.From, out.To, out.Until = from, to, from
	sortText := fq.Sort
	if sortText == "" {
		sortText = "-energy"
	}
	sp, ok := parseSort(sortText, sortFleetEnergy, sortID)
	if !ok {
		return out, fmt.Errorf("%w: sort must be energy or id, with '-' for descending", ErrBadRequest)
	}
	limit, err := s.limit(fq.Limit)
	if err != nil {
		return out, err
	}
	scope := scopeHash("fleet_energy", strconv.FormatInt(from.Unix(), 10), strconv.FormatInt(to.Unix(), 10))
	var cur *cursor
	if fq.Cursor != "" {
		c, err := decodeCursor(fq.Cursor)
		if err != nil {
			return out, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		if c.sort != sp || c.scope != scope {
			return out, fmt.Errorf("%w: the cursor belongs to another query (from, to and sort must stay the same)", ErrBadRequest)
		}
		cur = &c
	}
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
	wm, err := s.watermarks(ctx)
	if err != nil {
		return out, storeErr("fleet energy", err)
	}
	tiles := planFleetTiles(from, to, wm, s.cumWatermark())
	out.Until = tilesEnd(tiles, from)
	set := pushdown(bm, "ids", s.opts.ArrayParamMax)
	out.Pushdown = set.kind
	groups, args := groupTiles(tiles, []any{set.arg, clickhouse.Named("lim", strconv.Itoa(limit+1))})
	// In the default order (-energy) the systems without energy come last:
	// the engine sums only rows that exist, and a page that reaches the
	// zeros takes them from the caller's bitmap (fillZeros). In the other
	// orders every system of the bitmap joins the sum with 0 — which costs
	// a row per system in the engine's GROUP BY, half the query for 200 k.
	zerosLast := sp.key == sortFleetEnergy && sp.desc
	var parts []string
	if !zerosLast {
		parts = append(parts, "SELECT arrayJoin("+set.array+") AS system_id, toInt64(0) AS wh")
	}
	onePerSystem := false // every part reads at most one row per system
	for _, t := range tiles {
		if t.level == levelCum {
			part, one := cumPart(t, set)
			parts = append(parts, part)
			onePerSystem = one
			args = append(args, clickhouse.Named("cum_from", strconv.FormatInt(t.from.Unix(), 10)), clickhouse.Named("cum_to", strconv.FormatInt(t.to.Unix(), 10)))
		}
	}
	for _, g := range groups {
		parts = append(parts, "SELECT system_id, toInt64(wh) AS wh FROM system_rollup_"+rollup.Levels[g.level].Name+" FINAL WHERE "+set.in("system_id")+" AND "+g.cond)
	}
	dir, cmp := "ASC", ">"
	if sp.desc {
		dir, cmp = "DESC", "<"
	}
	where, order := "", ""
	switch {
	case zerosLast:
		order = "e DESC, system_id DESC"
		where = " WHERE e > 0"
		if cur != nil {
			where += " AND (e < {ce:UInt64} OR (e = {ce:UInt64} AND system_id < {cid:UInt32}))"
		}
	case sp.key == sortID:
		order = "system_id " + dir
		if cur != nil {
			where = " WHERE system_id " + cmp + " {cid:UInt32}"
		}
	default:
		order = "e " + dir + ", system_id " + dir
		if cur != nil {
			where = " WHERE e " + cmp + " {ce:UInt64} OR (e = {ce:UInt64} AND system_id " + cmp + " {cid:UInt32})"
		}
	}
	if cur != nil {
		args = append(args, clickhouse.Named("cid", strconv.FormatUint(uint64(cur.id), 10)), clickhouse.Named("ce", strconv.FormatUint(cur.key, 10)))
	}
	// Each system's energy: summed by system, unless a single part reads
	// one row per system — then the hash aggregation, most of the time of
	// a 200 k-system answer, is not needed.
	sums := "SELECT system_id, toUInt64(greatest(sum(wh), 0)) AS e FROM (" + strings.Join(parts, " UNION ALL ") + ") GROUP BY system_id"
	if len(parts) == 1 && onePerSystem {
		sums = "SELECT system_id, toUInt64(greatest(wh, 0)) AS e FROM (" + parts[0] + ")"
	}
	sums = "SELECT system_id, e FROM (" + sums + ")"
	if !zerosLast || cur == nil || cur.key > 0 {
		if out.Items, err = s.fleetEnergyPage(ctx, sums+where+" ORDER BY "+order+" LIMIT {lim:UInt32}", args); err != nil {
			return out, err
		}
	}
	if zerosLast && len(out.Items) <= limit {
		if out.Items, err = s.fillZeros(ctx, out.Items, limit+1, bm, cur, "SELECT bitmapToArray(groupBitmapState(system_id)) FROM ("+sums+" WHERE e > 0)", args); err != nil {
			return out, err
		}
	}
	if len(out.Items) > limit {
		out.Items = out.Items[:limit]
		last := out.Items[limit-1]
		out.NextCursor = encodeCursor(cursor{sort: sp, scope: scope, id: uint32(last.ID), key: last.EnergyMWh})
	}
	for i := range out.Items {
		if sys, ok := snap.System(out.Items[i].ID); ok {
			out.Items[i].GUID, out.Items[i].Name = sys.GUID, sys.Name
		}
	}
	s.m.observeFleetEnergy(set.kind, time.Since(start))
	return out, nil
}

// cumPart reads the energy of a levelCum tile from system_energy_cum: when
// the tile spans one of the lags a row carries (rollup.CumLags), the row at
// its end alone — one row per system, which one says — otherwise the rows
// at both ends, the start's negated.
func cumPart(t tile, set idSet) (string, bool) {
	for _, l := range rollup.CumLags {
		if t.to.Equal(t.from.AddDate(0, 0, l.Days)) {
			return "SELECT system_id, toInt64(wh) - toInt64(" + l.Column + ") AS wh FROM system_energy_cum FINAL" +
				" WHERE ts = toDateTime({cum_to:Int64}, 'UTC') AND " + set.contains("system_id"), true
		}
	}
	return "SELECT system_id, if(ts = toDateTime({cum_to:Int64}, 'UTC'), toInt64(wh), -toInt64(wh)) AS wh FROM system_energy_cum FINAL" +
		" WHERE ts IN (toDateTime({cum_from:Int64}, 'UTC'), toDateTime({cum_to:Int64}, 'UTC')) AND " + set.contains("system_id"), false
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
	if err := s.opts.Store.QueryRow(ctx, nonzeroSQL, args...).Scan(&ids); err != nil {
		return nil, storeErr("fleet energy", err)
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
