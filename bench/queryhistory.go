package bench

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/RoaringBitmap/roaring/v2"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/query"
	"github.com/fleetscope/fleetscope/rollup"
	"github.com/fleetscope/fleetscope/store"
)

// PushdownFigure compares the two ways a caller's bitmap reaches
// ClickHouse for one caller size.
type PushdownFigure struct {
	Systems                 int
	Array, Bitmap           time.Duration // p50; 0 if it failed
	ArrayBytes, BitmapBytes int
	N                       int
}

// historyPanels is the panel count of the systems with raw readings.
const historyPanels = 30

// History is the synthetic history WriteHistory wrote.
type History struct {
	// Samples are the systems with raw readings (and real rollups).
	Samples []uint32
	// Big is the big installer's bitmap (view and data).
	Big *roaring.Bitmap
}

// WriteHistory writes synthetic history for a generated fleet into s.
//
// The world: telemetry samples (20 of the big installer's systems) get 26 h
// of raw readings, 30 panels at one reading a minute, rolled up by the real
// rollup worker as of the fleet's clock (12:07), which sets the watermarks:
// 1 min to 12:05, 15 min and 1 h to 12:00, 1 day to midnight. Every other
// system of the big installer, plus `others` systems of other installers
// sharing the tables, get rollup rows as the worker would have written
// them: a day row for each of days+1 days, today's hours and quarter hours
// and the last hour's minutes up to the watermarks, the same around the
// start of the ranges `days` long, and minute cumulative rows at every
// minute a measured range starts or ends. Tables are merged (OPTIMIZE …
// FINAL), as background merges leave them, so that no merge competes with
// measurements.
func WriteHistory(ctx context.Context, s *store.Store, f *Fleet, days, others int, log *slog.Logger) (*History, error) {
	rng := rand.New(rand.NewPCG(f.Spec.Seed, 0x415))
	snap := f.ACL.Snapshot()
	big := snap.Systems(f.Big, acl.PermView|acl.PermData)
	bigIDs := big.ToArray()
	samples := roaring.New()
	for samples.GetCardinality() < uint64(min(20, len(bigIDs))) {
		samples.Add(bigIDs[rng.IntN(len(bigIDs))])
	}
	fleet := big.Clone()
	for n := 0; n < others && fleet.GetCardinality() < uint64(f.Spec.Systems); n++ {
		fleet.Add(rng.Uint32N(uint32(f.Spec.Systems)))
	}
	fleet.AndNot(samples)
	bitmapParam := func(bm *roaring.Bitmap) any {
		return clickhouse.Named("ids", base64.StdEncoding.EncodeToString(query.GroupBitmapState(bm)))
	}
	const idsSQL = "(SELECT arrayJoin(bitmapToArray(CAST(base64Decode({ids:String}) AS AggregateFunction(groupBitmap, UInt32)))) AS id)"
	now := f.Now
	today := now.Truncate(24 * time.Hour)

	start := time.Now()
	// Raw readings of the samples, generated in the engine.
	if err := s.Exec(ctx, `INSERT INTO readings (system_id, gateway_id, panel, ts, vin, iin, pin, vout, temp, rssi, wh)
SELECT id, id, concat(char(65 + intDiv(p, 12)), toString(p % 12 + 1)), fromUnixTimestamp64Milli(({from:Int64} + m * 60) * 1000, 'UTC'),
	3800, 9000, toUInt16(2000 + (id * 7 + p * 13 + m) % 1500), 3700, toInt16(300 + m % 100), 180, toUInt32(30000 + (id + p + m) % 9000)
FROM `+idsSQL+` ARRAY JOIN range(`+strconv.Itoa(historyPanels)+`) AS p ARRAY JOIN range({minutes:UInt32}) AS m`,
		bitmapParam(samples), clickhouse.Named("from", strconv.FormatInt(now.Add(-26*time.Hour).Unix(), 10)),
		clickhouse.Named("minutes", strconv.Itoa(26*60))); err != nil {
		return nil, fmt.Errorf("raw readings: %w", err)
	}
	log.Info("telemetry samples written", "systems", samples.GetCardinality(), "duration_s", time.Since(start).Seconds())

	// The rest of the fleet's rollups, as the worker would have written them.
	start = time.Now()
	type span struct {
		level      string
		from, to   time.Time
		step       time.Duration
		whPerPanel int
	}
	// Today's hours and quarter hours, and the minutes of the last hour,
	// up to the watermarks; and, around the start of the ranges that begin
	// `days` before now, that day's hours, that hour's quarters and that
	// quarter's minutes — every row a query of those ranges reads, brute
	// force or not.
	minuteWM := now.Add(-rollup.DefaultLateness).Truncate(time.Minute)
	edge := now.AddDate(0, 0, -days)
	spans := []span{
		{"1d", today.AddDate(0, 0, -days-1), today, 24 * time.Hour, 2_500_000},
		{"1h", today, now.Truncate(time.Hour), time.Hour, 250_000},
		{"15m", today, minuteWM.Truncate(15 * time.Minute), 15 * time.Minute, 60_000},
		{"1m", now.Add(-time.Hour).Truncate(15 * time.Minute), minuteWM, time.Minute, 4_000},
		{"1h", edge.Truncate(24 * time.Hour), edge.Truncate(24 * time.Hour).Add(24 * time.Hour), time.Hour, 250_000},
		{"15m", edge.Truncate(time.Hour), edge.Truncate(time.Hour).Add(time.Hour), 15 * time.Minute, 60_000},
		{"1m", edge.Truncate(15 * time.Minute), edge.Truncate(15 * time.Minute).Add(15 * time.Minute), time.Minute, 4_000},
	}
	for _, sp := range spans {
		n := int(sp.to.Sub(sp.from) / sp.step)
		if n <= 0 {
			continue
		}
		if err := s.Exec(ctx, `INSERT INTO system_rollup_`+sp.level+` (system_id, ts, samples, panels, wh, pin_sum, pin_max, temp_max, computed_at)
SELECT id, toDateTime({from:Int64} + k * {step:Int64}, 'UTC'), {samples:UInt32}, 30,
	30 * ({wh:UInt64} + cityHash64(id, k) % ({wh:UInt64} / 2)), 30 * {samples:UInt32} * 2000, 3800, 450, now64(3)
FROM `+idsSQL+` ARRAY JOIN range({n:UInt32}) AS k`,
			bitmapParam(fleet), clickhouse.Named("from", strconv.FormatInt(sp.from.Unix(), 10)),
			clickhouse.Named("step", strconv.FormatInt(int64(sp.step.Seconds()), 10)), clickhouse.Named("n", strconv.Itoa(n)),
			clickhouse.Named("samples", strconv.Itoa(30*int(sp.step.Minutes()))), clickhouse.Named("wh", strconv.Itoa(sp.whPerPanel))); err != nil {
			return nil, fmt.Errorf("rollup %s rows: %w", sp.level, err)
		}
	}
	log.Info("fleet rollups written", "systems", fleet.GetCardinality(), "duration_s", time.Since(start).Seconds())

	// The rollup worker as of the fleet's clock: the samples' rollups from
	// their readings, and the cumulative energy table from every day row.
	start = time.Now()
	ru := rollup.Start(rollup.Options{Store: s, Interval: time.Hour, MaxWindow: 30 * time.Hour, Logger: log,
		Now: func() time.Time { return now }})
	err := ru.Pass(ctx)
	ru.Stop()
	if err != nil {
		return nil, fmt.Errorf("rollup: %w", err)
	}
	log.Info("rollup pass", "duration_s", time.Since(start).Seconds())

	// The minute cumulative table as a worker running since before the
	// history would have it: its origin a day before the history's first
	// day, and at every minute a measured range starts or ends (see
	// fleetEnergyRanges) a row for each system of the fleet. The rows of
	// other minutes are left out — 288 M a day for 200 k systems — since
	// no measurement reads them: a lookup of one minute reads that
	// minute's rows, in one range of the table ordered by time.
	origin := today.AddDate(0, 0, -days-1)
	var edges []int64
	for _, rg := range FleetEnergyRanges(now, days) {
		to := rg.To
		if last := now.Add(-rollup.DefaultLateness); last.Before(to) {
			to = last // where the minute rollup stands
		}
		edges = append(edges, rg.From.Truncate(time.Minute).Unix(), to.Truncate(time.Minute).Unix())
	}
	slices.Sort(edges)
	edges = slices.Compact(edges)
	if err := s.Exec(ctx, `INSERT INTO system_energy_cum_1m (ts, system_id, wh, computed_at)
SELECT toDateTime(m, 'UTC'), id, intDiv(m - {origin:Int64}, 60) * (120000 + cityHash64(id) % 60000), now64(3)
FROM `+idsSQL+` ARRAY JOIN {edges:Array(Int64)} AS m`,
		bitmapParam(fleet), clickhouse.Named("origin", strconv.FormatInt(origin.Unix(), 10)), clickhouse.Named("edges", edges)); err != nil {
		return nil, fmt.Errorf("minute cumulative rows: %w", err)
	}
	if err := s.Exec(ctx, "INSERT INTO rollup_watermarks (level, watermark, updated_at) VALUES ({l:String}, toDateTime({w:Int64}, 'UTC'), now64(3))",
		clickhouse.Named("l", rollup.CumMinuteOriginName), clickhouse.Named("w", strconv.FormatInt(origin.Unix(), 10))); err != nil {
		return nil, fmt.Errorf("minute cumulative origin: %w", err)
	}

	// Steady state: merged parts, as background merges leave a table
	// whose inserts are done, so no merge competes with the measurements.
	for _, t := range []string{"readings", "system_rollup_1m", "system_rollup_15m", "system_rollup_1h", "system_rollup_1d",
		"panel_rollup_1m", "panel_rollup_15m", "panel_rollup_1h", "panel_rollup_1d", "system_energy_cum", "system_energy_cum_1m"} {
		if err := s.Exec(ctx, "OPTIMIZE TABLE "+t+" FINAL"); err != nil {
			return nil, fmt.Errorf("optimize %s: %w", t, err)
		}
	}
	return &History{Samples: samples.ToArray(), Big: big}, nil
}

// history writes synthetic history (see WriteHistory) and measures
// telemetry and fleet energy.
func (r *QueryResult) history(ctx context.Context, opts QueryOptions, f *Fleet, svc *query.Service) error {
	s := opts.Store
	log := opts.Logger
	h, err := WriteHistory(ctx, s, f, opts.HistoryDays, opts.HistoryOthers, log)
	if err != nil {
		return err
	}
	snap := f.ACL.Snapshot()
	big, sampleIDs := h.Big, h.Samples
	now := f.Now
	today := now.Truncate(24 * time.Hour)

	// Telemetry: a system's last 24 h at 15 min, against the same from raw
	// readings (no rollups).
	ds, err := measure(opts.Requests/10, func(i int) error {
		_, err := svc.Telemetry(ctx, f.Big, strconv.FormatUint(uint64(sampleIDs[i%len(sampleIDs)]), 10),
			query.TelemetryQuery{From: now.Add(-24 * time.Hour), To: now, Step: "15m"})
		return err
	})
	if err != nil {
		return err
	}
	bs, err := measure(max(5, opts.BaselineRequests), func(i int) error {
		return TelemetryFromRaw(ctx, s, sampleIDs[i%len(sampleIDs)], now.Add(-24*time.Hour), now)
	})
	if err != nil {
		return err
	}
	r.History = append(r.History, figure("history: one system, 24 h at 15 min (rollups + raw tail)", 20*time.Millisecond, ds,
		"raw readings", bs))

	// A service that sums every fleet energy request in the engine
	// (--energy-tiles 0), passing the caller's bitmap serialized — what
	// serve does for a caller above 32 systems without tiles. Another, which
	// passes it as an array, is built after the fleet energy figures for the
	// pushdown ones: at 10 M systems a catalogue is 2.4 GB of heap, and a
	// third one during the figures pushed the heap to its limit.
	engineOnly := func(arrayMax int) (*query.Service, error) {
		return query.New(query.Options{Store: s, ACL: f.ACL, Live: f.Live, Now: func() time.Time { return f.Now },
			Logger: log, LiveRefresh: time.Hour, ArrayParamMax: arrayMax, EnergyTiles: -1})
	}
	bitmapSvc, err := engineOnly(1)
	if err != nil {
		return err
	}
	defer bitmapSvc.Close()
	methods := map[string]*query.Service{"bitmap": bitmapSvc}

	// Fleet energy for the big installer over each shape of range, against
	// the brute-force sum over every system's rollups with the caller's
	// kept afterwards (query.FleetEnergyBruteForce): as serve answers it —
	// the first request reads the energy tiles it lacks, later ones sum
	// them in memory — and from the engine alone.
	for _, rg := range FleetEnergyRanges(now, opts.HistoryDays) {
		fe := func(svc *query.Service) func(int) error {
			return func(int) error {
				_, err := svc.FleetEnergy(ctx, f.Big, query.FleetEnergyQuery{From: rg.From, To: rg.To})
				return err
			}
		}
		n := max(10, opts.Requests/50)
		ds, err := measure(n+1, fe(svc))
		if err != nil {
			return fmt.Errorf("fleet energy: %w", err)
		}
		es, err := measure(n, fe(methods["bitmap"]))
		if err != nil {
			return fmt.Errorf("fleet energy, engine alone: %w", err)
		}
		bs, err := measure(max(3, opts.BaselineRequests/2), func(int) error {
			_, _, err := svc.FleetEnergyBruteForce(ctx, f.Big, rg.From, rg.To)
			return err
		})
		if err != nil {
			return fmt.Errorf("fleet energy baseline: %w", err)
		}
		const brute = "brute-force sum of every system's rollups"
		r.History = append(r.History,
			figure(fmt.Sprintf("fleet energy, %d systems, %s", big.GetCardinality(), rg.Name), 100*time.Millisecond, ds[1:], brute, bs),
			figure("  its first request (reads the tiles not in memory yet)", 100*time.Millisecond, ds[:1], brute, bs),
			figure("  from the engine alone (--energy-tiles 0)", 100*time.Millisecond, es, brute, bs))
	}

	// Pushdown methods by caller size.
	arraySvc, err := engineOnly(math.MaxInt32)
	if err != nil {
		return err
	}
	defer arraySvc.Close()
	methods["array"] = arraySvc
	for _, size := range []int{30, 1000, 10_000, opts.Fleet.BigOrg} {
		caller, _ := f.AdminOfSize(size)
		if size == opts.Fleet.BigOrg {
			caller = f.Big
		}
		bm := snap.Systems(caller, acl.PermView|acl.PermData)
		pf := PushdownFigure{Systems: int(bm.GetCardinality()), N: 5}
		pf.BitmapBytes = base64.StdEncoding.EncodedLen(len(query.GroupBitmapState(bm)))
		for _, id := range bm.ToArray() {
			pf.ArrayBytes += len(strconv.FormatUint(uint64(id), 10)) + 1
		}
		for _, method := range []string{"array", "bitmap"} {
			ds, err := measure(pf.N, func(int) error {
				_, err := methods[method].FleetEnergy(ctx, caller, query.FleetEnergyQuery{From: today.AddDate(0, 0, -opts.HistoryDays), To: today})
				return err
			})
			if err != nil {
				log.Warn("pushdown failed", "method", method, "systems", pf.Systems, "err", err)
				continue
			}
			if method == "array" {
				pf.Array = percentile(ds, 50)
			} else {
				pf.Bitmap = percentile(ds, 50)
			}
		}
		r.Pushdown = append(r.Pushdown, pf)
	}
	return nil
}

// EnergyRange is a range fleet energy is measured over.
type EnergyRange struct {
	Name     string
	From, To time.Time
}

// FleetEnergyRanges are the ranges DESIGN §7 names, as of now: whole days,
// the last days to now, today so far and the last hour.
func FleetEnergyRanges(now time.Time, days int) []EnergyRange {
	today := now.Truncate(24 * time.Hour)
	return []EnergyRange{
		{fmt.Sprintf("%d whole days", days), today.AddDate(0, 0, -days), today},
		{fmt.Sprintf("last %d days to now", days), now.AddDate(0, 0, -days), now},
		{"today so far", today, now},
		{"one hour ago to now", now.Add(-time.Hour), now},
	}
}

// TelemetryFromRaw is the telemetry baseline: a system's 15-minute buckets
// computed from raw readings, no rollup.
func TelemetryFromRaw(ctx context.Context, s *store.Store, system uint32, from, to time.Time) error {
	rows, err := s.Query(ctx, `SELECT toStartOfInterval(ts, INTERVAL 15 MINUTE) AS b, count(), uniqExact(panel), sum(wh), sum(pin), max(pin), max(temp)
FROM readings WHERE system_id = {s:UInt32} AND ts >= fromUnixTimestamp64Milli({f:Int64}, 'UTC') AND ts < fromUnixTimestamp64Milli({t:Int64}, 'UTC') GROUP BY b ORDER BY b`,
		clickhouse.Named("s", strconv.FormatUint(uint64(system), 10)),
		clickhouse.Named("f", strconv.FormatInt(from.UnixMilli(), 10)), clickhouse.Named("t", strconv.FormatInt(to.UnixMilli(), 10)))
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	rows.Close()
	return rows.Err()
}
