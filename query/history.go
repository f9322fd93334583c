package query

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/rollup"
	"github.com/fleetscope/fleetscope/store"
)

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
	return historySettings(ctx), cancel, nil
}

// historySettings carries the engine settings of history statements:
// rollup rows never straddle partitions (see tiles.go), so FINAL need not
// merge across them.
func historySettings(ctx context.Context) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"do_not_merge_across_partitions_select_final": 1,
	}))
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
	// Step is raw, 1m, 15m, 1h, 1d, 1mo or 1y (days, months and years of
	// the system's local calendar); "" picks by range: up to 6 h 1m, up
	// to 3 days 15m, up to 60 days 1h, up to two years 1d, else 1mo.
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
		case d <= 730*24*time.Hour:
			step = "1d"
		default:
			step = "1mo"
		}
	}
	calendar := map[string]string{"1mo": "month", "1y": "year"}[step]
	level := slices.Index(stepNames, step) - 1
	if calendar != "" {
		level = 3 // months and years are added up from days (or hours: see bucketTelemetry)
	}
	if level < levelRaw {
		return Telemetry{}, fmt.Errorf("%w: step must be raw, 1m, 15m, 1h, 1d, 1mo or 1y", ErrBadRequest)
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
		// Buckets start at whole steps (local midnights for 1d, the first
		// local day of a month or year for 1mo and 1y).
		stepLen := rollup.Levels[level].Step
		switch y, m, d := tq.From.In(loc).Date(); {
		case calendar == "month":
			out.From, stepLen = time.Date(y, m, 1, 0, 0, 0, 0, loc).UTC(), 28*24*time.Hour
		case calendar == "year":
			out.From, stepLen = time.Date(y, 1, 1, 0, 0, 0, 0, loc).UTC(), 365*24*time.Hour
		case level == 3:
			out.From = time.Date(y, m, d, 0, 0, 0, 0, loc).UTC()
		default:
			out.From = tq.From.UTC().Truncate(stepLen)
		}
		if n := out.To.Sub(out.From) / stepLen; int(n) > s.opts.MaxPoints {
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
		out.Points, err = s.bucketTelemetry(ctx, sys.ID, tq.Panel, level, calendar, loc, out.From, out.To)
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
			where + " AND panel = {panel:String} ORDER BY ts LIMIT 1 BY ts LIMIT {lim:UInt32}"
	} else {
		sql = "SELECT ts, count(), sum(toUInt64(pin)), sum(toUInt64(wh)), toInt64(max(temp)) FROM " + readingsOnce(where) +
			" GROUP BY ts ORDER BY ts LIMIT {lim:UInt32}"
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

// readingsOnce is the readings of one system matching where, each reading
// once: the same reading stored twice (resent under another seq, or
// retried through another node) is two rows until the engine merges their
// parts (store's migration 6), so raw answers group by (panel, ts). Cheaper
// than FINAL for one system's rows: FINAL merges every part the rows are
// in, and recent readings are in many small ones.
func readingsOnce(where string) string {
	return "(SELECT panel, ts, any(vin) AS vin, any(iin) AS iin, any(pin) AS pin, any(vout) AS vout, any(temp) AS temp, any(rssi) AS rssi, any(wh) AS wh " +
		"FROM readings WHERE " + where + " GROUP BY panel, ts)"
}

// bucketTelemetry answers a step of level (0 = 1m … 3 = 1d in loc's days),
// or with calendar "month" or "year" of loc's months or years.
func (s *Service) bucketTelemetry(ctx context.Context, sys acl.SystemID, panel string, level int, calendar string, loc *time.Location, from, to time.Time) ([]Point, error) {
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
	if calendar != "" {
		// A local month or year: its first local midnight, as an instant.
		start := map[string]string{"month": "toStartOfMonth", "year": "toStartOfYear"}[calendar]
		bucket = "toDateTime(" + start + "(ts, {tz:String}), {tz:String})"
		if loc == time.UTC {
			args = append(args, clickhouse.Named("tz", "UTC"))
		}
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
					"FROM "+readingsOnce(where+cond)+" GROUP BY b")
			} else {
				parts = append(parts, "SELECT "+bucket+" AS b, count() AS samples, uniqExact(panel) AS panels, sum(toUInt64(wh)) AS wh, sum(toUInt64(pin)) AS pin_sum, toUInt64(max(pin)) AS pin_max, "+
					"toInt64(max(temp)) AS temp_max, toUInt64(0) AS vin_sum, toUInt64(0) AS iin_sum, toUInt64(0) AS vout_sum, toInt64(0) AS temp_sum "+
					"FROM "+readingsOnce(where+cond)+" GROUP BY b")
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
