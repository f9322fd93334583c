package rollup_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/fleetscope/fleetscope/internal/storetest"
	"github.com/fleetscope/fleetscope/rollup"
	"github.com/fleetscope/fleetscope/store"
)

// insertRaw writes readings for systems 1..nsys, panels <prefix>1..3, one
// per minute from from until to, wh = 1000 + minute-of-hour mWh.
func insertRaw(t *testing.T, s *store.Store, prefix string, nsys int, from, to time.Time) {
	t.Helper()
	ctx := context.Background()
	b, err := s.PrepareBatch(ctx, "INSERT INTO readings (system_id, gateway_id, panel, ts, vin, iin, pin, vout, temp, rssi, wh)")
	if err != nil {
		t.Fatal(err)
	}
	for ts := from; ts.Before(to); ts = ts.Add(time.Minute) {
		for sys := 1; sys <= nsys; sys++ {
			for p := 1; p <= 3; p++ {
				if err := b.Append(uint32(sys), uint32(sys), fmt.Sprintf("%s%d", prefix, p), ts, uint16(3800), uint16(9000), uint16(1000*p), uint16(3700), int16(250+p), uint8(180), uint32(1000+ts.Minute())); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// compare checks that every rollup level agrees with an aggregation of the
// raw readings, each reading once (FINAL: a reading stored twice is one).
func compareRollups(t *testing.T, s *store.Store, upTo time.Time) {
	t.Helper()
	ctx := context.Background()
	for _, l := range rollup.Levels {
		q := fmt.Sprintf(`SELECT
			(SELECT groupArray((system_id, ts, wh, samples, panels, pin_max)) FROM (SELECT system_id, ts, wh, samples, panels, pin_max FROM system_rollup_%[1]s FINAL WHERE ts < toDateTime({up:Int64}, 'UTC') ORDER BY system_id, ts)),
			(SELECT groupArray((system_id, b, w, n, p, m)) FROM (
				SELECT system_id, toDateTime(toStartOfInterval(ts, INTERVAL %[2]d SECOND), 'UTC') AS b, sum(wh) AS w, count() AS n, uniqExact(panel) AS p, max(pin) AS m
				FROM readings FINAL WHERE ts < toDateTime64({up:Int64}, 3, 'UTC') GROUP BY system_id, b ORDER BY system_id, b))`, l.Name, int(l.Step.Seconds()))
		var got, want string
		if err := s.QueryRow(ctx, "SELECT toString(x), toString(y) FROM ("+q+") AS t(x, y)", clickhouse.Named("up", fmt.Sprint(upTo.Unix()))).Scan(&got, &want); err != nil {
			t.Fatalf("level %s: %v", l.Name, err)
		}
		if got != want {
			t.Fatalf("level %s rollup differs from raw:\nrollup %.400s\nraw    %.400s", l.Name, got, want)
		}
		if len(want) < 10 {
			t.Fatalf("level %s: nothing to compare (%s)", l.Name, want)
		}
	}
}

// compareCum checks system_energy_cum against the raw readings: up to its
// watermark, for every day d after the first and every system with readings
// before d, a row holding the energy of the readings before d, and before
// d − 7 and d − 30 days in its lag columns — and no other rows. It returns
// the watermark.
func compareCum(t *testing.T, s *store.Store, first time.Time) time.Time {
	t.Helper()
	ctx := context.Background()
	var wm time.Time
	if err := s.QueryRow(ctx, "SELECT watermark FROM rollup_watermarks FINAL WHERE level = {l:String}", clickhouse.Named("l", rollup.CumName)).Scan(&wm); err != nil {
		t.Fatalf("cumulative watermark: %v", err)
	}
	var stray uint64
	if err := s.QueryRow(ctx, "SELECT count() FROM system_energy_cum WHERE ts <= {f:DateTime('UTC')} OR ts > {w:DateTime('UTC')}",
		clickhouse.Named("f", first), clickhouse.Named("w", wm)).Scan(&stray); err != nil || stray != 0 {
		t.Fatalf("%d cumulative rows outside (%s, %s] (%v)", stray, first, wm, err)
	}
	days := 0
	for d := first.Add(24 * time.Hour); !d.After(wm); d = d.Add(24 * time.Hour) {
		var got, want string
		if err := s.QueryRow(ctx, `SELECT
			(SELECT toString(groupArray((system_id, wh, wh_7d_before, wh_30d_before))) FROM (
				SELECT system_id, wh, wh_7d_before, wh_30d_before FROM system_energy_cum FINAL WHERE ts = {d:DateTime('UTC')} ORDER BY system_id)),
			(SELECT toString(groupArray((system_id, w, w7, w30))) FROM (
				SELECT system_id, sum(wh) AS w, sumIf(wh, ts < {d:DateTime('UTC')} - INTERVAL 7 DAY) AS w7, sumIf(wh, ts < {d:DateTime('UTC')} - INTERVAL 30 DAY) AS w30
				FROM readings FINAL WHERE ts < {d:DateTime('UTC')} GROUP BY system_id ORDER BY system_id))`,
			clickhouse.Named("d", d)).Scan(&got, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("cumulative energy at %s:\n got %s\nwant %s", d, got, want)
		}
		days++
	}
	if days == 0 {
		t.Fatalf("no cumulative day to compare (first %s, watermark %s)", first, wm)
	}
	return wm
}

// compareCumMinute checks system_energy_cum_1m against the raw readings:
// for every minute m after its origin up to its watermark, and every system
// with readings in [origin, m), a row holding their energy — and no other
// rows. It returns the watermark.
func compareCumMinute(t *testing.T, s *store.Store) time.Time {
	t.Helper()
	ctx := context.Background()
	var origin, wm time.Time
	if err := s.QueryRow(ctx, `SELECT
		(SELECT watermark FROM rollup_watermarks FINAL WHERE level = {o:String}),
		(SELECT watermark FROM rollup_watermarks FINAL WHERE level = {w:String})`,
		clickhouse.Named("o", rollup.CumMinuteOriginName), clickhouse.Named("w", rollup.CumMinuteName)).Scan(&origin, &wm); err != nil {
		t.Fatalf("minute cumulative watermarks: %v", err)
	}
	if !origin.Before(wm) {
		t.Fatalf("minute cumulative table from %s to %s: nothing to compare", origin, wm)
	}
	var stray uint64
	if err := s.QueryRow(ctx, "SELECT count() FROM system_energy_cum_1m WHERE ts <= {f:DateTime('UTC')} OR ts > {w:DateTime('UTC')}",
		clickhouse.Named("f", origin), clickhouse.Named("w", wm)).Scan(&stray); err != nil || stray != 0 {
		t.Fatalf("%d minute cumulative rows outside (%s, %s] (%v)", stray, origin, wm, err)
	}
	var got, want string
	var n uint64
	if err := s.QueryRow(ctx, `SELECT
		(SELECT toString(groupArray((ts, system_id, wh))) FROM (
			SELECT ts, system_id, wh FROM system_energy_cum_1m FINAL ORDER BY ts, system_id)),
		(SELECT toString(groupArray((m, system_id, w))) FROM (
			SELECT toDateTime(m, 'UTC') AS m, system_id, sum(wh) AS w
			FROM (SELECT arrayJoin(range(toUInt32({f:DateTime('UTC')}) + 60, toUInt32({w:DateTime('UTC')}) + 60, 60)) AS m) AS minutes
			CROSS JOIN (SELECT system_id, toUInt32(toDateTime(ts)) AS t, wh FROM readings FINAL WHERE ts >= {f:DateTime('UTC')}) AS r
			WHERE r.t < minutes.m
			GROUP BY m, system_id ORDER BY m, system_id)),
		(SELECT count() FROM system_energy_cum_1m FINAL)`,
		clickhouse.Named("f", origin), clickhouse.Named("w", wm)).Scan(&got, &want, &n); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("minute cumulative energy differs from the raw readings:\n got %.600s\nwant %.600s", got, want)
	}
	if n == 0 {
		t.Fatalf("no minute cumulative rows (%s, %s]", origin, wm)
	}
	return wm
}

// passAfterLate marks the minutes [from, from+span) of systems dirty, as the
// flusher does for late readings, runs a pass, and checks every rollup and
// both cumulative tables against the raw readings (day is the test's day).
func passAfterLate(t *testing.T, s *store.Store, r *rollup.Worker, from time.Time, span time.Duration, day time.Time, systems ...int) {
	t.Helper()
	ctx := context.Background()
	for m := from; m.Before(from.Add(span)); m = m.Add(time.Minute) {
		for _, sys := range systems {
			if err := s.Exec(ctx, "INSERT INTO rollup_dirty (ts, system_id, marked_at) VALUES (toDateTime({m:Int64}, 'UTC'), {s:UInt32}, now64(3))",
				clickhouse.Named("m", fmt.Sprint(m.Unix())), clickhouse.Named("s", fmt.Sprint(sys))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := r.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	compareRollups(t, s, day.Add(24*time.Hour))
	compareCum(t, s, day.Add(-24*time.Hour))
	compareCumMinute(t, s)
}

func TestRollupLevelsAgreeWithRawReadings(t *testing.T) {
	s := storetest.Open(t)
	day := time.Date(2026, 6, 20, 0, 0, 0, 0, time.UTC)
	insertRaw(t, s, "A", 3, day.Add(-3*time.Hour), day.Add(27*time.Hour))
	clock := day.Add(30 * time.Hour)
	r := rollup.Start(rollup.Options{Store: s, Interval: time.Hour, MaxWindow: 5 * time.Hour,
		Logger: storetest.Logger(), Now: func() time.Time { return clock }})
	defer r.Stop()
	ctx := context.Background()
	if err := r.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	compareRollups(t, s, day.Add(24*time.Hour))
	if wm := compareCum(t, s, day.Add(-24*time.Hour)); !wm.Equal(day.Add(24 * time.Hour)) {
		t.Fatalf("cumulative watermark %s, want %s", wm, day.Add(24*time.Hour))
	}
	// The raw readings end at day + 27 h: the minute rollup, and with it
	// the minute cumulative table, is done up to the clock less lateness.
	if wm := compareCumMinute(t, s); !wm.Equal(clock.Add(-rollup.DefaultLateness)) {
		t.Fatalf("minute cumulative watermark %s, want %s", wm, clock.Add(-rollup.DefaultLateness))
	}

	// Late readings for an already computed day (of panels that reported
	// nothing then), with their dirty marks as the flusher writes them: the
	// next pass recomputes those buckets.
	late := day.Add(5 * time.Hour)
	insertRaw(t, s, "L", 1, late, late.Add(10*time.Minute))
	passAfterLate(t, s, r, late, 10*time.Minute, day, 1)

	// Late readings on the first day for a system that had none: its
	// cumulative rows appear for every later day.
	insertRaw(t, s, "L", 4, day.Add(-2*time.Hour), day.Add(-2*time.Hour+3*time.Minute))
	passAfterLate(t, s, r, day.Add(-2*time.Hour), 3*time.Minute, day, 1, 2, 3, 4)

	// The same readings stored again (a gateway resending under a new seq,
	// a retry through another node), marked dirty as late readings are:
	// recomputed, each counts once.
	insertRaw(t, s, "A", 3, late, late.Add(10*time.Minute))
	passAfterLate(t, s, r, late, 10*time.Minute, day, 1)
	var samples, wh uint64
	if err := s.QueryRow(ctx, "SELECT toUInt64(samples), wh FROM system_rollup_1m FINAL WHERE system_id = 1 AND ts = {m:DateTime('UTC')}", clickhouse.Named("m", late)).Scan(&samples, &wh); err != nil {
		t.Fatal(err)
	}
	if samples != 6 || wh != 6*1000 { // A1–A3 and L1–L3, once each
		t.Fatalf("1 min rollup of %s: %d samples, %d mWh; want 6 and 6000", late, samples, wh)
	}

	var pending uint64
	if err := s.QueryRow(ctx, "SELECT count() FROM rollup_dirty FINAL WHERE done = 0").Scan(&pending); err != nil || pending != 0 {
		t.Fatalf("dirty minutes left: %d (%v)", pending, err)
	}
}

// insertSparse writes one reading of system sys, panel A1, every step from
// from until to, wh = 5000 + hour of day.
func insertSparse(t *testing.T, s *store.Store, sys uint32, from, to time.Time, step time.Duration) {
	t.Helper()
	b, err := s.PrepareBatch(context.Background(), "INSERT INTO readings (system_id, gateway_id, panel, ts, vin, iin, pin, vout, temp, rssi, wh)")
	if err != nil {
		t.Fatal(err)
	}
	for ts := from; ts.Before(to); ts = ts.Add(step) {
		if err := b.Append(sys, sys, "A1", ts, uint16(3800), uint16(9000), uint16(1000), uint16(3700), int16(250), uint8(180), uint32(5000+ts.Hour())); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// Over six weeks the cumulative rows carry the energy 7 and 30 days back —
// for a system with readings from the start, one that appears later — and
// late readings rewrite the lagged values that reach back past them too.
func TestCumulativeRowsCarryTheEnergyDaysBefore(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(42 * 24 * time.Hour)
	insertSparse(t, s, 1, start.Add(90*time.Minute), end, 5*time.Hour)
	insertSparse(t, s, 2, start.Add(12*24*time.Hour+7*time.Minute), end, 7*time.Hour)
	clock := end.Add(3 * time.Hour)
	r := rollup.Start(rollup.Options{Store: s, Interval: time.Hour, MaxWindow: 50 * 24 * time.Hour,
		Logger: storetest.Logger(), Now: func() time.Time { return clock }})
	defer r.Stop()
	if err := r.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if wm := compareCum(t, s, start.Add(-24*time.Hour)); !wm.Equal(end) {
		t.Fatalf("cumulative watermark %s, want %s", wm, end)
	}
	var lagged uint64
	if err := s.QueryRow(ctx, "SELECT countIf(wh_30d_before > 0 AND wh_7d_before > wh_30d_before AND wh > wh_7d_before) FROM system_energy_cum FINAL").Scan(&lagged); err != nil || lagged == 0 {
		t.Fatalf("no row with both lags set (%v)", err)
	}

	// Late readings: on day 3 for system 1 (every row after it changes,
	// and the lags of rows 7 and 30 days later) and on day 20 for a system
	// that had none before — its first rows.
	late := []struct {
		sys uint32
		at  time.Time
	}{{1, start.Add(3*24*time.Hour + 17*time.Minute)}, {3, start.Add(20*24*time.Hour + 41*time.Minute)}}
	for _, l := range late {
		insertSparse(t, s, l.sys, l.at, l.at.Add(time.Minute), time.Minute)
		if err := s.Exec(ctx, "INSERT INTO rollup_dirty (ts, system_id, marked_at) VALUES ({m:DateTime('UTC')}, {s:UInt32}, now64(3))",
			clickhouse.Named("m", l.at.Truncate(time.Minute)), clickhouse.Named("s", fmt.Sprint(l.sys))); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	compareCum(t, s, start.Add(-24*time.Hour))
}
