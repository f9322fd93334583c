package query

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/rollup"
)

// engineOnly is a second service over the harness's store and acl index
// that keeps no energy tiles: every fleet energy request is summed in the
// engine.
func engineOnly(t *testing.T, h *harness) *Service {
	t.Helper()
	opts := h.opts
	opts.EnergyTiles = -1
	opts.Registerer = prometheus.NewRegistry()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Fleet energy from energy tiles is the engine's answer, page for page:
// over every range shape the cumulative tables cover, in every order, with
// pages of 1, 2, 3 and 100 and the cursors each page gives (a cursor of one
// path continues on the other). Then a late reading makes the rollup
// worker write rows the tiles hold again: the parts holding them changed,
// so the next request reads them again and still agrees, with nothing
// refreshed by hand.
func TestEnergyTilesAnswerAsTheEngine(t *testing.T) {
	f := newFleet(t, harnessOpts{store: true})
	ctx := context.Background()
	eng := engineOnly(t, f.harness)
	today := t0.Truncate(24 * time.Hour)
	rs := f.history([]acl.SystemID{f.sys[0], f.sys[2], f.sys[3], f.sys[6]}, t0.Add(-74*time.Hour), t0)
	shapes := []struct {
		name     string
		from, to time.Time
	}{
		{"today so far", today, t0},
		{"one hour ago to now", t0.Add(-time.Hour), t0},
		{"last 40 hours to now", t0.Add(-40 * time.Hour), t0},
		{"odd minutes", t0.Add(-47*time.Hour - 13*time.Minute), t0.Add(-3*time.Hour - 29*time.Minute)},
		{"from the minute table's origin", t0.Add(-74 * time.Hour), t0.Add(-7 * time.Minute)},
		{"two whole days", today.AddDate(0, 0, -2), today},
		{"a range that starts after the rollups", t0.Add(-time.Minute), t0},
	}
	compare := func(stage string) {
		t.Helper()
		for _, svc := range []*Service{f.svc, eng} {
			if _, err := svc.loadWatermarks(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for _, sh := range shapes {
			for _, sort := range []string{"-energy", "energy", "id", "-id", "-yield", "yield"} {
				for _, limit := range []int{1, 2, 3, 100} {
					q := FleetEnergyQuery{From: sh.from, To: sh.to, Sort: sort, Limit: limit}
					var seen []acl.SystemID
					for page := 0; ; page++ {
						what := fmt.Sprintf("%s: %s, sort %s, limit %d, page %d", stage, sh.name, sort, limit, page)
						mem, err := f.svc.FleetEnergy(ctx, f.alice, q)
						if err != nil {
							t.Fatalf("%s: tiles: %v", what, err)
						}
						want, err := eng.FleetEnergy(ctx, f.alice, q)
						if err != nil {
							t.Fatalf("%s: engine: %v", what, err)
						}
						if mem.Pushdown != "memory" || want.Pushdown == "memory" {
							t.Fatalf("%s: answered by %q and %q", what, mem.Pushdown, want.Pushdown)
						}
						if !slices.Equal(mem.Items, want.Items) || mem.NextCursor != want.NextCursor ||
							mem.Total != want.Total || !mem.Until.Equal(want.Until) {
							t.Fatalf("%s:\ntiles  %+v\nengine %+v", what, mem, want)
						}
						for _, it := range mem.Items {
							seen = append(seen, it.ID)
						}
						if mem.NextCursor == "" {
							break
						}
						// Alternate which answer's cursor goes on.
						q.Cursor = mem.NextCursor
						if page%2 == 1 {
							q.Cursor = want.NextCursor
						}
					}
					slices.Sort(seen)
					if len(seen) != 6 || len(slices.Compact(seen)) != 6 {
						t.Fatalf("%s: %s, sort %s, limit %d: paged %v, want alice's 6 systems once each", stage, sh.name, sort, limit, seen)
					}
				}
			}
		}
	}
	compare("history")
	reads := metricValue(f.svc.m.energyTileReads.WithLabelValues("ok"))
	if reads == 0 {
		t.Fatal("no energy tile was read")
	}
	if n := metricValue(f.svc.m.fleetEnergy.WithLabelValues("memory").(prometheus.Metric)); n == 0 {
		t.Fatal("answers from tiles are not timed under pushdown=\"memory\"")
	}
	// Answers from memory now: nothing read again.
	compare("again")
	if again := metricValue(f.svc.m.energyTileReads.WithLabelValues("ok")); again != reads {
		t.Fatalf("%v tiles read again with nothing changed", again-reads)
	}

	// A late reading 20 hours back changes every minute tile after it.
	rs = append(rs, f.lateReading(f.sys[2], t0.Add(-20*time.Hour).Add(30*time.Second), 888_000))
	compare("after a late reading")
	if after := metricValue(f.svc.m.energyTileReads.WithLabelValues("ok")); after == reads {
		t.Fatal("no tile read again after the rollup worker rewrote their rows")
	}
	// And the answer holds the late reading.
	until := t0.Add(-rollup.DefaultLateness)
	want := f.energyOf(rs, t0.Add(-40*time.Hour), until)
	got, err := f.svc.FleetEnergy(ctx, f.alice, FleetEnergyQuery{From: t0.Add(-40 * time.Hour), To: t0, Sort: "id"})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range got.Items {
		if w := want[uint32(it.ID)]; math.Abs(float64(it.EnergyMWh)-w*1000) > 1e-3 {
			t.Fatalf("system %d: %d mWh, want %v Wh", it.ID, it.EnergyMWh, w)
		}
	}
}

// held waits until the tiles of keys are in memory, read.
func held(t *testing.T, svc *Service, keys ...energyTileKey) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		svc.tiles.mu.Lock()
		n := 0
		for _, k := range keys {
			if e := svc.tiles.tiles[k]; e != nil {
				select {
				case <-e.done:
					if e.err == nil {
						n++
					}
				default:
				}
			}
		}
		svc.tiles.mu.Unlock()
		if n == len(keys) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tiles %v not read in the background", keys)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A caller too small to read tiles itself is answered by the engine, and
// once such requests asked for a tile with systems adding up to a quarter
// of its rows, it is read in the background and later requests sum it in
// memory.
func TestEnergyTilesAreReadBehindSmallCallers(t *testing.T) {
	f := newFleet(t, harnessOpts{store: true})
	ctx := context.Background()
	eng := engineOnly(t, f.harness)
	f.history([]acl.SystemID{f.sys[0], f.sys[2]}, t0.Add(-3*time.Hour), t0)
	if _, err := f.svc.loadWatermarks(ctx); err != nil {
		t.Fatal(err)
	}
	// As if every instant held 60 rows: alice's 6 systems are too few
	// to read two tiles (8 × 6 per tile), and 15 asking systems are a
	// quarter.
	f.svc.tiles.rows[cumMinuteTable] = 60
	q := FleetEnergyQuery{From: t0.Add(-time.Hour), To: t0}
	for i := range 3 {
		a, err := f.svc.FleetEnergy(ctx, f.alice, q)
		if err != nil || a.Pushdown == "memory" {
			t.Fatalf("request %d: %v, answered by %q: want the engine", i, err, a.Pushdown)
		}
	}
	held(t, f.svc, energyTileKey{cumMinuteTable, q.From.Unix()}, energyTileKey{cumMinuteTable, t0.Add(-rollup.DefaultLateness).Unix()})
	a, err := f.svc.FleetEnergy(ctx, f.alice, q)
	if err != nil || a.Pushdown != "memory" {
		t.Fatalf("after the background reads: %v, answered by %q", err, a.Pushdown)
	}
	want, err := eng.FleetEnergy(ctx, f.alice, q)
	if err != nil || !slices.Equal(a.Items, want.Items) {
		t.Fatalf("tiles %+v, engine %+v (%v)", a.Items, want.Items, err)
	}
}

// When the minute table moves on and its newest minute's tile was in use,
// the new newest minute's tile is read in the background: the end of the
// next request of every range "to now".
func TestEnergyTilesFollowTheNewestMinute(t *testing.T) {
	f := newFleet(t, harnessOpts{store: true})
	ctx := context.Background()
	eng := engineOnly(t, f.harness)
	with := []acl.SystemID{f.sys[0], f.sys[2]}
	f.history(with, t0.Add(-3*time.Hour), t0)
	if _, err := f.svc.loadWatermarks(ctx); err != nil {
		t.Fatal(err)
	}
	from := t0.Add(-2 * time.Hour) // inside the minute table, which starts with the history
	if a, err := f.svc.FleetEnergy(ctx, f.alice, FleetEnergyQuery{From: from, To: t0}); err != nil || a.Pushdown != "memory" {
		t.Fatalf("%v, answered by %q", err, a.Pushdown)
	}
	// A minute later the rollup worker has the next minute.
	t1 := t0.Add(time.Minute)
	f.clock.set(t1)
	f.history(with, t0, t1)
	if _, err := f.svc.loadWatermarks(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := f.svc.cumMinute().to, t1.Add(-rollup.DefaultLateness); !got.Equal(want) {
		t.Fatalf("minute watermark %s, want %s", got, want)
	}
	held(t, f.svc, energyTileKey{cumMinuteTable, t1.Add(-rollup.DefaultLateness).Unix()})
	q := FleetEnergyQuery{From: from, To: t1, Sort: "id"}
	a, err := f.svc.FleetEnergy(ctx, f.alice, q)
	if err != nil || a.Pushdown != "memory" {
		t.Fatalf("%v, answered by %q", err, a.Pushdown)
	}
	want, err := eng.FleetEnergy(ctx, f.alice, q)
	if err != nil || !slices.Equal(a.Items, want.Items) || !a.Until.Equal(want.Until) {
		t.Fatalf("tiles %+v, engine %+v (%v)", a, want, err)
	}
}

// The tiles stay within their memory budget, the request at hand's
// excepted: with room for none, each request keeps only its own tiles.
func TestEnergyTilesKeepTheirBudget(t *testing.T) {
	f := newFleet(t, harnessOpts{store: true, tweak: func(o *Options) { o.EnergyTiles = 1 }})
	ctx := context.Background()
	f.history([]acl.SystemID{f.sys[0], f.sys[2]}, t0.Add(-3*time.Hour), t0)
	if _, err := f.svc.loadWatermarks(ctx); err != nil {
		t.Fatal(err)
	}
	heldKeys := func() []energyTileKey {
		f.svc.tiles.mu.Lock()
		defer f.svc.tiles.mu.Unlock()
		var keys []energyTileKey
		for k := range f.svc.tiles.tiles {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b energyTileKey) int { return int(a.ts - b.ts) })
		return keys
	}
	for _, from := range []time.Time{t0.Add(-2 * time.Hour), t0.Add(-time.Hour)} {
		a, err := f.svc.FleetEnergy(ctx, f.alice, FleetEnergyQuery{From: from, To: t0})
		if err != nil || a.Pushdown != "memory" {
			t.Fatalf("from %s: %v, answered by %q", from, err, a.Pushdown)
		}
		want := []energyTileKey{{cumMinuteTable, from.Unix()}, {cumMinuteTable, a.Until.Unix()}}
		if got := heldKeys(); !slices.Equal(got, want) {
			t.Fatalf("from %s: tiles held %v, want %v", from, got, want)
		}
		if b := metricValue(f.svc.m.energyTileBytes); b <= 0 || int64(b) != f.svc.tiles.bytes {
			t.Fatalf("gauge %v, held %d bytes", b, f.svc.tiles.bytes)
		}
	}
}

// Tiles are read for a caller whose systems are at least an eighth of the
// rows they hold; smaller callers leave the sum to the engine.
func TestEnergyTilesAreReadForLargeCallers(t *testing.T) {
	c := newEnergyTiles(nil, 1<<20, newMetrics(prometheus.NewRegistry()), time.Now, func() int { return 1 }, time.Second)
	c.rows[cumMinuteTable] = 1000
	reads := []tileRead{{energyTileKey{cumMinuteTable, 60}, -1}, {energyTileKey{cumMinuteTable, 120}, 1}}
	for n, want := range map[uint64]bool{1: false, 124: false, 125: true, 5000: true} {
		if got, err := c.worthReading(context.Background(), reads, n); err != nil || got != want {
			t.Fatalf("caller of %d systems: %v, %v; want %v", n, got, err, want)
		}
	}
}

// The page heap keeps the first items of an order whatever order they
// come in.
func TestPageHeapKeepsTheFirst(t *testing.T) {
	for _, o := range []energyOrder{{true, true}, {true, false}, {false, true}, {false, false}} {
		var all []SystemEnergy
		for i := range 300 {
			all = append(all, SystemEnergy{ID: acl.SystemID((i * 7919) % 1000), EnergyMWh: uint64((i * 31) % 17)})
		}
		for _, k := range []int{0, 1, 5, 299, 300, 400} {
			h := pageHeap{o: o, max: k}
			for _, x := range all {
				h.offer(x)
			}
			slices.SortFunc(h.items, o.cmp)
			want := slices.Clone(all)
			slices.SortFunc(want, o.cmp)
			want = want[:min(k, len(want))]
			if !slices.Equal(h.items, want) {
				t.Fatalf("order %+v, first %d: %v, want %v", o, k, h.items, want)
			}
		}
	}
}

// metricValue reads a counter's or a gauge's value.
func metricValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	if m.Histogram != nil {
		return float64(m.Histogram.GetSampleCount())
	}
	return m.Gauge.GetValue()
}
