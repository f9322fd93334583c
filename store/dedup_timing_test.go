package store_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/internal/storetest"
	"github.com/fleetscope/fleetscope/store"
)

// BenchmarkReadingOnce is what counting each reading once costs a history
// query's raw tail (migration 6): one system's readings bucketed at 15 min,
// read plain (what counts a reading stored twice twice), grouped by (panel,
// ts) first (query's readingsOnce, what history does), or with FINAL (what
// the rollup worker does). FINAL merges every part the rows are in:
// nothing when they are in one, most with the many small parts the newest
// readings are in; grouping costs about a millisecond wherever they are.
// Interleaved on this machine (shared, load ~5), plain / grouped / FINAL: a
// 2-minute or 1-hour tail in one part 4.4–4.7 / 5.3–5.8 / 4.5–4.8 ms, a
// 1-hour tail in 30 parts 16.7 / 18.4 / 36.2 ms.
func BenchmarkReadingOnce(b *testing.B) {
	s := storetest.Open(b)
	ctx := context.Background()
	insert := func(from time.Time, minutes, perMinute int) {
		if err := s.Exec(ctx, `INSERT INTO readings (system_id, gateway_id, panel, ts, vin, iin, pin, vout, temp, rssi, wh)
SELECT id, id, concat(char(65 + intDiv(p, 12)), toString(p % 12 + 1)), fromUnixTimestamp64Milli(`+strconv.FormatInt(from.UnixMilli(), 10)+` + intDiv(m * 60000, `+strconv.Itoa(perMinute)+`), 'UTC'),
	3800, 9000, toUInt16(2000 + (id * 7 + p * 13 + m) % 1500), 3700, toInt16(300 + m % 100), 180, toUInt32(30000 + (id + p + m) % 9000)
FROM (SELECT number + 1 AS id FROM numbers(200)) ARRAY JOIN range(30) AS p ARRAY JOIN range(`+strconv.Itoa(minutes*perMinute)+`) AS m`); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Exec(ctx, "SYSTEM STOP MERGES readings"); err != nil {
		b.Fatal(err)
	}
	// 200 systems of 30 panels: a day at one reading a minute in one part,
	// then an hour at six a minute in 30 parts, as recent inserts leave it.
	day := time.Date(2026, 6, 20, 0, 0, 0, 0, time.UTC)
	insert(day, 24*60, 1)
	for i := range 30 {
		insert(day.Add(24*time.Hour+time.Duration(2*i)*time.Minute), 2, 6)
	}
	between := func(from, to time.Time) string {
		return "system_id = 7 AND ts >= fromUnixTimestamp64Milli(" + strconv.FormatInt(from.UnixMilli(), 10) + ", 'UTC') AND ts < fromUnixTimestamp64Milli(" +
			strconv.FormatInt(to.UnixMilli(), 10) + ", 'UTC')"
	}
	const bucket = "toDateTime(toStartOfInterval(ts, INTERVAL 900 SECOND), 'UTC')"
	const sums = "SELECT " + bucket + " AS b, count(), uniqExact(panel), sum(toUInt64(wh)), sum(toUInt64(pin)), max(pin) FROM "
	for _, tail := range []struct{ name, where string }{
		{"tail=2min,parts=1", between(day.Add(22*time.Hour), day.Add(22*time.Hour+2*time.Minute))},
		{"tail=2min,parts=30", between(day.Add(25*time.Hour-2*time.Minute), day.Add(25*time.Hour))},
		{"tail=1h,parts=30", between(day.Add(24*time.Hour), day.Add(25*time.Hour))},
	} {
		for _, shape := range []struct{ name, sql string }{
			{"plain", sums + "readings WHERE " + tail.where + " GROUP BY b"},
			{"grouped", sums + "(SELECT panel, ts, any(vin) AS vin, any(iin) AS iin, any(pin) AS pin, any(vout) AS vout, any(temp) AS temp, any(rssi) AS rssi, any(wh) AS wh FROM readings WHERE " +
				tail.where + " GROUP BY panel, ts) GROUP BY b"},
			{"final", sums + "readings FINAL WHERE " + tail.where + " GROUP BY b"},
		} {
			b.Run(tail.name+"/"+shape.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					drain(b, s, shape.sql)
				}
			})
		}
	}
}

func drain(b *testing.B, s *store.Store, sql string) {
	rows, err := s.Query(context.Background(), sql)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
}
