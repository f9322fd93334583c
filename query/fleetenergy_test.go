package query

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/RoaringBitmap/roaring/v2"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestPlanFleetEnergyGolden pins the SQL fleet energy plans for each shape
// of range; the fleet energy tests against the engine check what it
// computes. Refresh with go test ./query -run PlanFleetEnergy -update.
func TestPlanFleetEnergyGolden(t *testing.T) {
	now := time.Date(2026, 6, 20, 12, 7, 0, 0, time.UTC)
	today := now.Truncate(24 * time.Hour)
	// Rollups as a running worker leaves them: minutes up to 3 min ago,
	// quarter hours, hours and days behind them; the cumulative table up
	// to today.
	wm := [4]time.Time{now.Add(-3 * time.Minute), time.Date(2026, 6, 20, 12, 0, 0, 0, time.UTC), time.Date(2026, 6, 20, 11, 0, 0, 0, time.UTC), today}
	few := pushdown(roaring.BitmapOf(3, 5, 8), "ids", defaultArrayParamMax)
	many := roaring.New()
	many.AddRange(1, 200)
	bitmap := pushdown(many, "ids", defaultArrayParamMax)
	cur := &cursor{sort: sortSpec{key: sortID}, id: 5}
	f := func(name string, p fleetParams) {
		t.Helper()
		if p.set.array == "" {
			p.set = few
		}
		if p.limit == 0 {
			p.limit = 50
		}
		if p.sort == (sortSpec{}) {
			p.sort = sortSpec{key: sortFleetEnergy, desc: true}
		}
		plan := planFleetEnergy(p)
		var b strings.Builder
		fmt.Fprintf(&b, "-- %s: [%s, %s), until %s, zeros last %v\n", name, p.from.Format(time.RFC3339), p.to.Format(time.RFC3339), plan.until.Format(time.RFC3339), plan.zerosLast)
		fmt.Fprintf(&b, "-- page\n%s\n-- nonzero\n%s\n-- args\n", orNone(plan.page), orNone(plan.nonzero))
		for _, a := range plan.args {
			nv := a.(driver.NamedValue)
			v := fmt.Sprint(nv.Value)
			if len(v) > 80 {
				v = v[:80] + "…"
			}
			fmt.Fprintf(&b, "%s = %s\n", nv.Name, v)
		}
		path := filepath.Join("testdata", "fleet_energy", name+".sql")
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if got := b.String(); got != string(want) {
			t.Fatalf("%s: plan differs from %s (run with -update if the change is intended):\n%s", name, path, got)
		}
	}
	f("30-whole-days", fleetParams{from: today.AddDate(0, 0, -30), to: today, wm: wm, cumWM: today})
	f("last-30-days-to-now", fleetParams{from: now.AddDate(0, 0, -30), to: now, wm: wm, cumWM: today})
	f("7-whole-days-bitmap", fleetParams{from: today.AddDate(0, 0, -7), to: today, wm: wm, cumWM: today, set: bitmap})
	f("today-so-far", fleetParams{from: today, to: now, wm: wm, cumWM: today})
	f("last-hour", fleetParams{from: now.Add(-time.Hour), to: now, wm: wm, cumWM: today})
	f("a-minute-ago", fleetParams{from: now.Add(-time.Minute), to: now, wm: wm, cumWM: today})
	f("fresh-start", fleetParams{from: today.AddDate(0, 0, -30), to: now})
	f("by-id-after-cursor", fleetParams{from: today.AddDate(0, 0, -2), to: today, wm: wm, cumWM: today, sort: sortSpec{key: sortID}, cur: cur})
	f("zeros-page", fleetParams{from: today.AddDate(0, 0, -30), to: today, wm: wm, cumWM: today, cur: &cursor{sort: sortSpec{key: sortFleetEnergy, desc: true}, id: 8}})
	// With the minute cumulative table, kept up to the minute rollup's
	// watermark since 60 days ago: any minutes are two rows per system.
	minute := timeSpan{from: today.AddDate(0, 0, -60), to: wm[0]}
	f("minute-last-30-days-to-now", fleetParams{from: now.AddDate(0, 0, -30), to: now, wm: wm, cumWM: today, minute: minute})
	f("minute-today-so-far", fleetParams{from: today, to: now, wm: wm, cumWM: today, minute: minute})
	f("minute-last-hour", fleetParams{from: now.Add(-time.Hour), to: now, wm: wm, cumWM: today, minute: minute})
	f("minute-a-minute-ago", fleetParams{from: now.Add(-time.Minute), to: now, wm: wm, cumWM: today, minute: minute})
	f("minute-30-whole-days", fleetParams{from: today.AddDate(0, 0, -30), to: today, wm: wm, cumWM: today, minute: minute})
	f("minute-from-its-origin", fleetParams{from: minute.from, to: now, wm: wm, cumWM: today, minute: minute})
	f("minute-older-than-the-table", fleetParams{from: now.AddDate(0, 0, -90), to: now, wm: wm, cumWM: today, minute: minute})
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
