package store_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/fleetscope/fleetscope/internal/storetest"
)

// ActiveParts lists the parts whose time span overlaps the range asked,
// and their names change when rows at a time are inserted or merged —
// what query's energy tiles rely on to know a tile is stale.
func TestActivePartsFollowInsertsAndMerges(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	day1 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	day2 := day1.Add(24 * time.Hour)
	insert := func(ts time.Time, system uint32) {
		t.Helper()
		if err := s.Exec(ctx, "INSERT INTO system_energy_cum_1m (ts, system_id, wh, computed_at) VALUES (toDateTime({ts:Int64}, 'UTC'), {s:UInt32}, 1, now64(3))",
			clickhouse.Named("ts", strconv.FormatInt(ts.Unix(), 10)), clickhouse.Named("s", strconv.FormatUint(uint64(system), 10))); err != nil {
			t.Fatal(err)
		}
	}
	names := func(at time.Time) []string {
		t.Helper()
		parts, err := s.ActiveParts(ctx, "system_energy_cum_1m", []time.Time{at})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range parts {
			if p.MinTime.After(at) || p.MaxTime.Before(at) {
				t.Fatalf("part %+v does not hold %s", p, at)
			}
			out = append(out, p.Name)
		}
		slices.Sort(out)
		return out
	}
	insert(day1, 1)
	insert(day2, 1)
	first := names(day1)
	if len(first) != 1 || len(names(day2)) != 1 || slices.Equal(first, names(day2)) {
		t.Fatalf("parts at day 1 %v, at day 2 %v: want one each, different", first, names(day2))
	}
	if got := names(day1.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("parts an hour after the rows: %v", got)
	}
	insert(day1, 2)
	second := names(day1)
	if len(second) != 2 || !slices.Contains(second, first[0]) {
		t.Fatalf("after an insert: %v (before %v)", second, first)
	}
	if err := s.Exec(ctx, "OPTIMIZE TABLE system_energy_cum_1m FINAL"); err != nil {
		t.Fatal(err)
	}
	merged := names(day1)
	if len(merged) != 1 || slices.Contains(second, merged[0]) {
		t.Fatalf("after a merge: %v (before %v)", merged, second)
	}
}
