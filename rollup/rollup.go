// Package rollup keeps the rollup tables that history and fleet energy
// read: per system and per panel at 1 min, 15 min, 1 h and 1 day, and the
// cumulative daily energy per system (the Levels, CumName and CumLags the
// query planner tiles ranges with). A Worker computes them in the
// background from the readings table, off the ingest path; see package
// store for why they are not materialized views. A reading counts once in
// every rollup however many times it was stored (see Levels).
package rollup

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/fleetscope/fleetscope/store"
)

// Level is one rollup resolution.
type Level struct {
	Name  string        // table suffix: 1m, 15m, 1h, 1d
	Step  time.Duration // bucket width
	ch    string        // ClickHouse interval
	from  string        // source table of the per-panel rollup
	final bool          // the source needs FINAL: every one does, see Levels
}

// Levels are the rollup resolutions, finest first; each is computed from
// the one before (1 min from raw readings). Every source is read with FINAL:
// a rollup row recomputed is a newer row of the same key, and a reading
// stored twice (resent under another seq, retried through another node) is
// a second row of its (system_id, panel, ts) until the engine merges their
// parts — with FINAL it counts once. On raw readings FINAL costs: the 1 min
// rollup of 6 M readings in 6 unmerged parts took 1.14 s of one engine
// thread instead of 0.56 s (grouping by (system_id, panel, ts) first took
// 1.72 s), about 0.1 µs more of background work per reading.
var Levels = []Level{
	{Name: "1m", Step: time.Minute, ch: "INTERVAL 1 MINUTE", from: "readings", final: true},
	{Name: "15m", Step: 15 * time.Minute, ch: "INTERVAL 15 MINUTE", from: "panel_rollup_1m", final: true},
	{Name: "1h", Step: time.Hour, ch: "INTERVAL 1 HOUR", from: "panel_rollup_15m", final: true},
	{Name: "1d", Step: 24 * time.Hour, ch: "INTERVAL 1 DAY", from: "panel_rollup_1h", final: true},
}

// DefaultLateness is how long after a minute ends it is rolled up: a
// reading normally reaches ClickHouse within seconds of its gateway posting
// it, and later ones mark their minute for recomputation.
const DefaultLateness = 2 * time.Minute

// Options configure the rollup worker.
type Options struct {
	Store *store.Store
	// Lateness is how long after a minute ends it is computed (see
	// Options.Lateness; readings flushed later mark it dirty).
	Lateness time.Duration
	// Interval between passes. Default 10 s.
	Interval time.Duration
	// MaxWindow bounds the time one statement aggregates, so that catching
	// up after downtime is many modest statements. Default 1 h of raw data
	// (60 M rows at 1 M readings/s).
	MaxWindow  time.Duration
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
}

func (o *Options) setDefaults() {
	if o.Lateness <= 0 {
		o.Lateness = DefaultLateness
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.MaxWindow <= 0 {
		o.MaxWindow = time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Worker computes the rollup tables in the background: every closed bucket
// of every level once (INSERT … SELECT in the engine, off the ingest path),
// then again whenever late readings mark one of its minutes dirty. Rollup
// rows replace, never add (ReplacingMergeTree by computed_at), so running
// a pass twice, or on two nodes, changes nothing. See package store for
// why rollups are not materialized views.
type Worker struct {
	opts Options
	m    metrics
	stop context.CancelFunc
	done chan struct{}

	passMu sync.Mutex // one Pass at a time
	wmMu   sync.Mutex
	wmAt   time.Time // version of the last watermark written
}

type metrics struct {
	passes     *prometheus.CounterVec
	seconds    prometheus.Histogram
	lag        *prometheus.GaugeVec
	recomputed prometheus.Counter
}

// Start starts the worker; Stop ends it.
func Start(opts Options) *Worker {
	opts.setDefaults()
	f := promauto.With(opts.Registerer)
	r := &Worker{opts: opts, done: make(chan struct{}), m: metrics{
		passes: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "rollup", Name: "passes_total",
			Help: "Rollup passes, by result (ok, error).",
		}, []string{"result"}),
		seconds: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: "fleetscope", Subsystem: "rollup", Name: "pass_duration_seconds",
			Help:    "Time of one rollup pass over every level.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		lag: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "fleetscope", Subsystem: "rollup", Name: "lag_seconds",
			Help: "How far each level's computed buckets trail the clock.",
		}, []string{"level"}),
		recomputed: f.NewCounter(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "rollup", Name: "recomputed_buckets_total",
			Help: "Minute buckets of a system recomputed because late readings arrived for them (the coarser levels follow).",
		}),
	}}
	// Both results exist from the start, so that an alert on errors sees 0,
	// not nothing, before the first failure.
	r.m.passes.WithLabelValues("ok")
	r.m.passes.WithLabelValues("error")
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go r.loop(ctx)
	return r
}

// Stop ends the worker and waits for a pass in progress to stop.
func (r *Worker) Stop() {
	r.stop()
	<-r.done
}

func (r *Worker) loop(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		start := time.Now()
		if err := r.Pass(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.m.passes.WithLabelValues("error").Inc()
			r.opts.Logger.Warn("rollup pass failed; next pass retries", "err", err)
		} else {
			r.m.passes.WithLabelValues("ok").Inc()
			r.m.seconds.Observe(time.Since(start).Seconds())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Pass computes what is due: newly closed buckets of every level, then the
// buckets dirty marks point at. Its statements run on one engine thread:
// rollups are background work and must not take the cores ingest and
// dashboards are answered on.
//
// Passes of one worker run one at a time (the loop's and a caller's): two at
// once would each read the watermarks before the other wrote them, and the
// later write could move a watermark back.
func (r *Worker) Pass(ctx context.Context) error {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_threads": 1}))
	wm, err := r.watermarks(ctx)
	if err != nil {
		return err
	}
	now := r.opts.Now().UTC()
	var minuteFrom time.Time // where the minute level starts this pass
	for i, l := range Levels {
		var closed time.Time
		if i == 0 {
			closed = now.Add(-r.opts.Lateness).Truncate(l.Step)
		} else {
			// A bucket closes once every finer bucket in it is computed.
			closed = wm[Levels[i-1].Name].Truncate(l.Step)
		}
		from := wm[l.Name]
		if from.IsZero() {
			if from, err = r.start(ctx, l); err != nil {
				return err
			}
		}
		if i == 0 {
			minuteFrom = from
		}
		for from.Before(closed) {
			to := closed
			if window := max(r.opts.MaxWindow, l.Step); to.Sub(from) > window {
				to = from.Add(window).Truncate(l.Step)
			}
			if err := r.compute(ctx, l, from, to, nil); err != nil {
				return err
			}
			if err := r.setWatermark(ctx, l, to); err != nil {
				return err
			}
			from = to
		}
		wm[l.Name] = from
		r.m.lag.WithLabelValues(l.Name).Set(now.Sub(from).Seconds())
	}
	if err := r.advanceCum(ctx, wm); err != nil {
		return err
	}
	r.m.lag.WithLabelValues(CumName).Set(now.Sub(wm[CumName]).Seconds())
	if err := r.advanceCumMinute(ctx, wm, minuteFrom); err != nil {
		return err
	}
	r.m.lag.WithLabelValues(CumMinuteName).Set(now.Sub(wm[CumMinuteName]).Seconds())
	return r.recomputeDirty(ctx, wm)
}

// CumName is the watermark (in rollup_watermarks) of system_energy_cum:
// its rows are complete for every day up to and including the watermark.
const CumName = "cum"

const day = 24 * time.Hour

// CumLag is a span of days whose start each cumulative row carries besides
// its own value: the row at d holds the row at d − Days in Column, so the
// energy over the Days whole days before d is one row per system (store's
// system_energy_cum).
type CumLag struct {
	Days   int
	Column string
}

// CumLags are the spans the cumulative rows carry, shortest first.
var CumLags = [...]CumLag{{7, "wh_7d_before"}, {30, "wh_30d_before"}}

// advanceCum writes the cumulative energy rows of the days the day rollup
// has closed since the last pass: a system's row at day d+1 is its row at d
// plus its day rollup of d, and carries its rows CumLags before d+1 (0
// where it has none: before its first reading its energy is 0). Where the
// cumulation has no watermark yet it starts at the day rollup's first day,
// before which every system's energy is 0 (no row).
func (r *Worker) advanceCum(ctx context.Context, wm map[string]time.Time) error {
	closed := wm[Levels[len(Levels)-1].Name]
	if closed.IsZero() {
		return nil
	}
	d := wm[CumName]
	if d.IsZero() {
		var first time.Time
		if err := r.opts.Store.QueryRow(ctx, "SELECT min(ts) FROM system_rollup_1d").Scan(&first); err != nil {
			return fmt.Errorf("rollup: first day: %w", err)
		}
		d = closed
		if first.Unix() > 0 && first.Before(d) {
			d = first.UTC().Truncate(day)
		}
	}
	for ; d.Before(closed); d = d.Add(day) {
		next := d.Add(day)
		if err := r.opts.Store.Exec(ctx, advanceCumSQL, clickhouse.Named("d", fmt.Sprint(d.Unix())), clickhouse.Named("next", fmt.Sprint(next.Unix()))); err != nil {
			return fmt.Errorf("rollup: cumulative energy of %s: %w", next.Format(time.DateOnly), err)
		}
		if err := r.setWatermarkName(ctx, CumName, next); err != nil {
			return err
		}
	}
	wm[CumName] = d
	return nil
}

// advanceCumSQL writes the rows at {next} from the rows at {d}, the day
// rollup of {d} and, per lag, the rows it reaches back to.
var advanceCumSQL = func() string {
	cols, sums := "", ""
	parts := []string{
		"SELECT system_id, wh, 0 AS lag FROM system_energy_cum FINAL WHERE ts = toDateTime({d:Int64}, 'UTC')",
		"SELECT system_id, wh, 0 FROM system_rollup_1d FINAL WHERE ts = toDateTime({d:Int64}, 'UTC')",
	}
	for _, l := range CumLags {
		cols += ", " + l.Column
		sums += fmt.Sprintf(", sumIf(wh, lag = %d)", l.Days)
		parts = append(parts, fmt.Sprintf("SELECT system_id, wh, %[1]d FROM system_energy_cum FINAL WHERE ts = toDateTime({next:Int64}, 'UTC') - INTERVAL %[1]d DAY", l.Days))
	}
	return "INSERT INTO system_energy_cum (ts, system_id, wh" + cols + ", computed_at)\n" +
		"SELECT toDateTime({next:Int64}, 'UTC'), system_id, sumIf(wh, lag = 0)" + sums + ", now64(3) FROM (\n\t" +
		strings.Join(parts, "\n\tUNION ALL\n\t") + ")\nGROUP BY system_id"
}()

// cumChunk bounds the systems whose cumulative rows one recomputation
// reads and writes: rows are systems × days since the earliest late day.
const cumChunk = 2000

// recomputeCum rewrites the cumulative rows of systems after late readings
// changed their day rollups: since[i] is the earliest changed day of
// systems[i], and every row after it up to the watermark upTo is recomputed
// from the row at the earliest such day (which no change reaches) plus the
// day rollups since — every day, so a day without a rollup row gets its row
// too. The rows before that day, which no change reaches either, give the
// lagged values (CumLags) that reach back past it.
func (r *Worker) recomputeCum(ctx context.Context, systems []uint32, since []time.Time, upTo time.Time) error {
	for len(systems) > 0 {
		n := min(len(systems), cumChunk)
		if err := r.recomputeCumChunk(ctx, systems[:n], since[:n], upTo); err != nil {
			return err
		}
		systems, since = systems[n:], since[n:]
	}
	return nil
}

func (r *Worker) recomputeCumChunk(ctx context.Context, systems []uint32, since []time.Time, upTo time.Time) error {
	from := since[0]
	for _, t := range since {
		if t.Before(from) {
			from = t
		}
	}
	back := CumLags[len(CumLags)-1].Days
	first := from.AddDate(0, 0, -back)
	args := []any{clickhouse.Named("ps", systems), clickhouse.Named("first", fmt.Sprint(first.Unix())),
		clickhouse.Named("from", fmt.Sprint(from.Unix())), clickhouse.Named("to", fmt.Sprint(upTo.Unix()))}
	days := int(upTo.Sub(from) / day)
	// Per system, the cumulative value at each day from first to upTo:
	// index back is the row at from; before it the stored rows, after it
	// (once summed) the row at from plus the day rollups since.
	cum := make(map[uint32][]uint64, len(systems))
	for _, s := range systems {
		cum[s] = make([]uint64, back+days+1)
	}
	rows, err := r.opts.Store.Query(ctx, `SELECT system_id, 1, toInt64(toUnixTimestamp(ts)), wh FROM system_rollup_1d FINAL
WHERE system_id IN {ps:Array(UInt32)} AND ts >= toDateTime({from:Int64}, 'UTC') AND ts < toDateTime({to:Int64}, 'UTC')
UNION ALL
SELECT system_id, 0, toInt64(toUnixTimestamp(ts)), wh FROM system_energy_cum FINAL
WHERE system_id IN {ps:Array(UInt32)} AND ts >= toDateTime({first:Int64}, 'UTC') AND ts <= toDateTime({from:Int64}, 'UTC')`, args...)
	if err != nil {
		return fmt.Errorf("rollup: cumulative energy: %w", err)
	}
	for rows.Next() {
		var s uint32
		var dayEnergy uint8
		var ts int64
		var wh uint64
		if err := rows.Scan(&s, &dayEnergy, &ts, &wh); err != nil {
			rows.Close()
			return err
		}
		i := back + int((ts-from.Unix())/int64(day.Seconds()))
		if dayEnergy == 1 {
			i++ // a day's energy is in the rows after it
		}
		cum[s][i] += wh
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("rollup: cumulative energy: %w", err)
	}
	b, err := r.opts.Store.PrepareBatch(clickhouse.Context(ctx, clickhouse.WithColumnNamesAndTypes(cumColumns)), cumInsert)
	if err != nil {
		return err
	}
	now := time.Now()
	for i, s := range systems {
		acc := cum[s]
		for k := 1; k <= days; k++ {
			j := back + k
			acc[j] += acc[j-1] // the row at from + k days
			if d := from.Add(time.Duration(k) * day); d.After(since[i]) {
				row := []any{d, s, acc[j]}
				for _, l := range CumLags {
					row = append(row, acc[j-l.Days])
				}
				if err := b.Append(append(row, now)...); err != nil {
					b.Abort()
					return err
				}
			}
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("rollup: cumulative energy: %w", err)
	}
	return nil
}

// cumInsert is the INSERT of a batch of cumColumns.
var cumInsert = func() string {
	names := make([]string, len(cumColumns))
	for i, c := range cumColumns {
		names[i] = c.Name
	}
	return "INSERT INTO system_energy_cum (" + strings.Join(names, ", ") + ")"
}()

// cumColumns are system_energy_cum's columns, in order.
var cumColumns = func() []clickhouse.ColumnNameAndType {
	out := []clickhouse.ColumnNameAndType{{Name: "ts", Type: "DateTime('UTC')"}, {Name: "system_id", Type: "UInt32"}, {Name: "wh", Type: "UInt64"}}
	for _, l := range CumLags {
		out = append(out, clickhouse.ColumnNameAndType{Name: l.Column, Type: "UInt64"})
	}
	return append(out, clickhouse.ColumnNameAndType{Name: "computed_at", Type: "DateTime64(3, 'UTC')"})
}()

// start is where a level begins when it has no watermark: the first reading
// (aligned down), or now for an empty table.
func (r *Worker) start(ctx context.Context, l Level) (time.Time, error) {
	var first time.Time
	if err := r.opts.Store.QueryRow(ctx, "SELECT toDateTime(min(ts), 'UTC') FROM readings").Scan(&first); err != nil {
		return time.Time{}, fmt.Errorf("rollup: first reading: %w", err)
	}
	if first.Unix() <= 0 {
		first = r.opts.Now()
	}
	return first.UTC().Truncate(l.Step), nil
}

// buckets names (system, bucket) pairs to recompute.
type buckets struct {
	systems []uint32
	starts  []uint32 // Unix seconds
}

// compute (re)computes level l's buckets in [from, to), for every system or
// only the (system, bucket) pairs of only.
func (r *Worker) compute(ctx context.Context, l Level, from, to time.Time, only *buckets) error {
	args := []any{
		clickhouse.Named("from", fmt.Sprint(from.Unix())),
		clickhouse.Named("to", fmt.Sprint(to.Unix())),
	}
	onlyRaw, onlyRollup := "", ""
	if only != nil {
		pairs := " IN (SELECT arrayJoin(arrayZip({ps:Array(UInt32)}, {pb:Array(UInt32)})))"
		onlyRaw = " AND system_id IN {ps:Array(UInt32)} AND (system_id, toUInt32(toDateTime(toStartOfInterval(ts, " + l.ch + "))))" + pairs
		onlyRollup = " AND system_id IN {ps:Array(UInt32)} AND (system_id, toUInt32(ts))" + pairs
		args = append(args, clickhouse.Named("ps", only.systems), clickhouse.Named("pb", only.starts))
	}
	var panelSQL string
	if l.from == "readings" {
		panelSQL = `INSERT INTO panel_rollup_1m (system_id, panel, ts, samples, wh, pin_sum, pin_max, vin_sum, iin_sum, vout_sum, temp_sum, temp_max, computed_at)
SELECT system_id, panel, toStartOfMinute(ts) AS bucket, count(), sum(wh), sum(pin), max(pin), sum(vin), sum(iin), sum(vout), sum(temp), max(temp), now64(3)
FROM readings FINAL
WHERE ts >= toDateTime64({from:Int64}, 3, 'UTC') AND ts < toDateTime64({to:Int64}, 3, 'UTC')` + onlyRaw + `
GROUP BY system_id, panel, bucket`
	} else {
		panelSQL = `INSERT INTO panel_rollup_` + l.Name + ` (system_id, panel, ts, samples, wh, pin_sum, pin_max, vin_sum, iin_sum, vout_sum, temp_sum, temp_max, computed_at)
SELECT system_id, panel, toStartOfInterval(ts, ` + l.ch + `) AS bucket, sum(samples), sum(wh), sum(pin_sum), max(pin_max), sum(vin_sum), sum(iin_sum), sum(vout_sum), sum(temp_sum), max(temp_max), now64(3)
FROM ` + l.from + ` FINAL
WHERE ts >= toDateTime({from:Int64}, 'UTC') AND ts < toDateTime({to:Int64}, 'UTC')` + onlyRaw + `
GROUP BY system_id, panel, bucket`
	}
	if err := r.opts.Store.Exec(ctx, panelSQL, args...); err != nil {
		return fmt.Errorf("rollup %s panels: %w", l.Name, err)
	}
	systemSQL := `INSERT INTO system_rollup_` + l.Name + ` (system_id, ts, samples, panels, wh, pin_sum, pin_max, temp_max, computed_at)
SELECT system_id, ts, sum(samples), count(), sum(wh), sum(pin_sum), max(pin_max), max(temp_max), now64(3)
FROM panel_rollup_` + l.Name + ` FINAL
WHERE ts >= toDateTime({from:Int64}, 'UTC') AND ts < toDateTime({to:Int64}, 'UTC')` + onlyRollup + `
GROUP BY system_id, ts`
	if err := r.opts.Store.Exec(ctx, systemSQL, args...); err != nil {
		return fmt.Errorf("rollup %s systems: %w", l.Name, err)
	}
	return nil
}

func (r *Worker) watermarks(ctx context.Context) (map[string]time.Time, error) {
	rows, err := r.opts.Store.Query(ctx, "SELECT level, watermark FROM rollup_watermarks FINAL")
	if err != nil {
		return nil, fmt.Errorf("rollup: watermarks: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var level string
		var wm time.Time
		if err := rows.Scan(&level, &wm); err != nil {
			return nil, err
		}
		if wm.Unix() <= 0 {
			continue // reset (a migration rebuilding a table): start afresh
		}
		out[level] = wm.UTC()
	}
	return out, rows.Err()
}

func (r *Worker) setWatermark(ctx context.Context, l Level, wm time.Time) error {
	return r.setWatermarkName(ctx, l.Name, wm)
}

// setWatermarkName records a watermark. Its version (updated_at) is
// strictly after every one this worker wrote before: two writes within one
// millisecond would otherwise tie, and FINAL keeps either of a tie.
func (r *Worker) setWatermarkName(ctx context.Context, name string, wm time.Time) error {
	r.wmMu.Lock()
	at := time.Now().UTC().Truncate(time.Millisecond)
	if !at.After(r.wmAt) {
		at = r.wmAt.Add(time.Millisecond)
	}
	r.wmAt = at
	r.wmMu.Unlock()
	return r.opts.Store.Exec(ctx, "INSERT INTO rollup_watermarks (level, watermark, updated_at) VALUES ({l:String}, toDateTime({w:Int64}, 'UTC'), fromUnixTimestamp64Milli({at:Int64}, 'UTC'))",
		clickhouse.Named("l", name), clickhouse.Named("w", fmt.Sprint(wm.Unix())), clickhouse.Named("at", fmt.Sprint(at.UnixMilli())))
}

// recomputeDirty recomputes the already computed buckets that hold a
// minute marked dirty, at every level, then marks those minutes done.
func (r *Worker) recomputeDirty(ctx context.Context, wm map[string]time.Time) error {
	rows, err := r.opts.Store.Query(ctx, "SELECT ts, system_id, marked_at FROM rollup_dirty FINAL WHERE done = 0 ORDER BY ts LIMIT 100000")
	if err != nil {
		return fmt.Errorf("rollup: dirty minutes: %w", err)
	}
	type mark struct {
		ts     time.Time
		system uint32
		at     time.Time
	}
	var marks []mark
	for rows.Next() {
		var m mark
		if err := rows.Scan(&m.ts, &m.system, &m.at); err != nil {
			rows.Close()
			return err
		}
		marks = append(marks, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(marks) == 0 {
		return err
	}
	// Per level, the buckets holding a dirty minute that the level has
	// already computed (later ones the normal pass will see), finest level
	// first so that each reads a recomputed finer level.
	for _, l := range Levels {
		var only buckets
		seen := map[[2]int64]bool{}
		var lo, hi time.Time
		for _, m := range marks {
			b := m.ts.UTC().Truncate(l.Step)
			if !b.Before(wm[l.Name]) {
				continue
			}
			if k := [2]int64{b.Unix(), int64(m.system)}; !seen[k] {
				seen[k] = true
				only.systems = append(only.systems, m.system)
				only.starts = append(only.starts, uint32(b.Unix()))
				if lo.IsZero() || b.Before(lo) {
					lo = b
				}
				if b.After(hi) {
					hi = b
				}
			}
		}
		if len(only.systems) == 0 {
			continue
		}
		if err := r.compute(ctx, l, lo, hi.Add(l.Step), &only); err != nil {
			return err
		}
	}
	// Cumulative rows after a changed day: per system from its earliest
	// day that has rows after it.
	if cumWM := wm[CumName]; !cumWM.IsZero() {
		earliest := map[uint32]time.Time{}
		var systems []uint32
		for _, m := range marks {
			d := m.ts.UTC().Truncate(day)
			if !d.Before(cumWM) {
				continue
			}
			if e, ok := earliest[m.system]; !ok || d.Before(e) {
				if !ok {
					systems = append(systems, m.system)
				}
				earliest[m.system] = d
			}
		}
		since := make([]time.Time, len(systems))
		for i, s := range systems {
			since[i] = earliest[s]
		}
		if err := r.recomputeCum(ctx, systems, since, cumWM); err != nil {
			return err
		}
	}
	// Minute cumulative rows after a changed minute: per system from its
	// earliest changed minute the table counts (after its origin).
	if upTo, origin := wm[CumMinuteName], wm[CumMinuteOriginName]; !upTo.IsZero() {
		earliest := map[uint32]time.Time{}
		var systems []uint32
		for _, m := range marks {
			t := m.ts.UTC().Truncate(time.Minute)
			if !t.Before(upTo) || t.Before(origin) {
				continue
			}
			if e, ok := earliest[m.system]; !ok || t.Before(e) {
				if !ok {
					systems = append(systems, m.system)
				}
				earliest[m.system] = t
			}
		}
		since := make([]time.Time, len(systems))
		for i, s := range systems {
			since[i] = earliest[s]
		}
		if err := r.recomputeCumMinute(ctx, systems, since, upTo); err != nil {
			return err
		}
	}
	b, err := r.opts.Store.PrepareBatch(ctx, "INSERT INTO rollup_dirty (ts, system_id, marked_at, done)")
	if err != nil {
		return err
	}
	for _, m := range marks {
		if err := b.Append(m.ts, m.system, m.at, uint8(1)); err != nil {
			b.Abort()
			return err
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("rollup: mark done: %w", err)
	}
	r.m.recomputed.Add(float64(len(marks)))
	return nil
}

// Rewind makes every level compute again from `from` on, between passes:
// readings were written behind the watermarks (a backfill, like the demo
// fleet's history), which no dirty mark names.
func (r *Worker) Rewind(ctx context.Context, from time.Time) error {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	for _, l := range Levels {
		if err := r.setWatermark(ctx, l, from.UTC().Truncate(l.Step)); err != nil {
			return err
		}
	}
	if err := r.setWatermarkName(ctx, CumName, from.UTC().Truncate(day)); err != nil {
		return err
	}
	// The minute cumulative table counts again from `from` on: from the
	// row there, or — before its origin — from zero at a new origin.
	wm, err := r.watermarks(ctx)
	if err != nil {
		return err
	}
	at, origin := wm[CumMinuteName], wm[CumMinuteOriginName]
	if at.IsZero() {
		return nil // not started: it starts where the minute rollup does
	}
	m := from.UTC().Truncate(time.Minute)
	if m.Before(origin) {
		if err := r.setWatermarkName(ctx, CumMinuteOriginName, m); err != nil {
			return err
		}
	}
	if m.Before(at) {
		return r.setWatermarkName(ctx, CumMinuteName, m)
	}
	return nil
}
