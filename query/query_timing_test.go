package query_test

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/bench"
	"github.com/fleetscope/fleetscope/internal/storetest"
	"github.com/fleetscope/fleetscope/query"
)

// The Go benchmarks run on a catalogue a tenth of DESIGN's size (200 k
// systems, a 20 k-system installer) so that `go test -bench` stays quick;
// `fleetscope bench query` measures the full 2 M / 200 k one. -query.fleet
// changes the size. Each benchmark also times the brute-force baseline
// (scan every system, evaluate the access rules, match the string) on a few
// of the same requests and reports it with the ratio.
var flagFleet = flag.String("query.fleet", "200000,100000,20000", "catalogue of the query benchmarks: `systems,accounts,bigorg`")

var (
	fleetOnce sync.Once
	fleet     *bench.Fleet
	fleetSvc  *query.Service
	fleetErr  error
)

func benchFleet(b testing.TB) (*bench.Fleet, *query.Service) {
	b.Helper()
	fleetOnce.Do(func() {
		var spec bench.FleetSpec
		if _, err := fmt.Sscanf(*flagFleet, "%d,%d,%d", &spec.Systems, &spec.Accounts, &spec.BigOrg); err != nil {
			fleetErr = fmt.Errorf("-query.fleet: %w", err)
			return
		}
		spec.Seed = 1
		fleet = bench.GenerateFleet(spec)
		fleetSvc, fleetErr = query.New(query.Options{ACL: fleet.ACL, Live: fleet.Live,
			Now: func() time.Time { return fleet.Now }, Logger: slog.New(slog.DiscardHandler), LiveRefresh: time.Hour})
	})
	if fleetErr != nil {
		b.Fatal(fleetErr)
	}
	return fleet, fleetSvc
}

// reportBaseline times fn (the baseline) over up to n of the requests and
// reports its time per request and how many times slower it is.
func reportBaseline(b *testing.B, n int, fn func(i int)) {
	b.Helper()
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.StopTimer()
	start := time.Now()
	for i := range n {
		fn(i)
	}
	base := float64(time.Since(start).Nanoseconds()) / float64(n)
	b.ReportMetric(base, "baseline-ns/op")
	b.ReportMetric(base/perOp, "x-faster")
}

func BenchmarkLocations(b *testing.B) {
	f, svc := benchFleet(b)
	callers := []struct {
		name    string
		id      acl.AccountID
		queries []string
	}{{"big", f.Big, f.Queries}, {"small", f.Small, f.SmallQueries}}
	for _, c := range callers {
		n := f.ACL.Snapshot().Systems(c.id, acl.PermView).GetCardinality()
		// The heaviest texts: the eight with the most matches.
		heavy := slices.Clone(c.queries)
		matches := map[string]int{}
		for _, q := range heavy {
			if _, ok := matches[q]; !ok {
				page, err := svc.Locations(c.id, query.LocationsQuery{Q: q})
				if err != nil {
					b.Fatal(err)
				}
				matches[q] = page.Total
			}
		}
		slices.SortFunc(heavy, func(x, y string) int { return cmp.Compare(matches[y], matches[x]) })
		heavy = slices.Compact(heavy)[:min(8, len(heavy))]
		for _, kind := range []string{"search", "search-heaviest", "list-name", "list-power"} {
			b.Run(fmt.Sprintf("caller=%s/systems=%d/%s", c.name, n, kind), func(b *testing.B) {
				b.ReportAllocs()
				req := func(i int) query.LocationsQuery {
					switch kind {
					case "search":
						return query.LocationsQuery{Q: c.queries[i%len(c.queries)]}
					case "search-heaviest":
						return query.LocationsQuery{Q: heavy[i%len(heavy)]}
					case "list-power":
						return query.LocationsQuery{Sort: "-power"}
					}
					return query.LocationsQuery{}
				}
				var total int
				for i := 0; b.Loop(); i++ {
					page, err := svc.Locations(c.id, req(i))
					if err != nil {
						b.Fatal(err)
					}
					total += page.Total
				}
				snap := f.ACL.Snapshot()
				reportBaseline(b, 3, func(i int) { f.ScanSearch(snap, c.id, req(i).Q, 50) })
			})
		}
		b.Run(fmt.Sprintf("caller=%s/systems=%d/summary", c.name, n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				svc.FleetSummary(c.id)
			}
			snap := f.ACL.Snapshot()
			reportBaseline(b, 3, func(int) { f.ScanSummary(snap, c.id) })
		})
		if c.name == "big" {
			// A member of the big org with a grant of their own: the bitmap
			// is a union, summarized as the org's cached part plus the
			// systems the grant adds.
			b.Run(fmt.Sprintf("caller=big-union/systems=%d/summary", n+1), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					svc.FleetSummary(f.BigUnion)
				}
				snap := f.ACL.Snapshot()
				reportBaseline(b, 3, func(int) { f.ScanSummary(snap, f.BigUnion) })
			})
			// The first summary after a change of the org's grants, whose
			// bitmap no cache has seen (DESIGN §7: cold ≤ 2 ms at 200 k).
			b.Run(fmt.Sprintf("caller=big/systems=%d/summary-cold", n), func(b *testing.B) {
				toggle, err := f.GrantToggle()
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					b.StopTimer()
					if err := toggle(i); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					svc.FleetSummary(c.id)
				}
				snap := f.ACL.Snapshot()
				reportBaseline(b, 3, func(int) { f.ScanSummary(snap, c.id) })
			})
		}
	}
}

// BenchmarkIndexBuild measures building the catalogue (search index, name
// order) from an acl snapshot, as start-up and the background rebuild do.
func BenchmarkIndexBuild(b *testing.B) {
	f, _ := benchFleet(b)
	for b.Loop() {
		svc, err := query.New(query.Options{ACL: f.ACL, Live: f.Live, Logger: slog.New(slog.DiscardHandler), LiveRefresh: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		svc.Close()
	}
}

// BenchmarkLiveRefresh measures copying live state into a new live view.
func BenchmarkLiveRefresh(b *testing.B) {
	_, svc := benchFleet(b)
	for b.Loop() {
		svc.RefreshLive()
	}
}

// BenchmarkHistory measures telemetry (a system's 24 h at 15 min) and
// fleet energy (30 whole days of the big installer) on synthetic history
// in the embedded engine, each against its baseline: the same buckets from
// raw readings; every system's energy computed and filtered afterwards.
func BenchmarkHistory(b *testing.B) {
	f, _ := benchFleet(b)
	s := storetest.Open(b)
	ctx := context.Background()
	h, err := bench.WriteHistory(ctx, s, f, 30, len(f.Docs)/10, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	svc, err := query.New(query.Options{Store: s, ACL: f.ACL, Live: f.Live, Now: func() time.Time { return f.Now },
		Logger: slog.New(slog.DiscardHandler), LiveRefresh: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	now := f.Now
	b.Run("telemetry-24h-15m", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := svc.Telemetry(ctx, f.Big, fmt.Sprint(h.Samples[i%len(h.Samples)]),
				query.TelemetryQuery{From: now.Add(-24 * time.Hour), To: now, Step: "15m"}); err != nil {
				b.Fatal(err)
			}
		}
		reportBaseline(b, 5, func(i int) {
			if err := bench.TelemetryFromRaw(ctx, s, h.Samples[i%len(h.Samples)], now.Add(-24*time.Hour), now); err != nil {
				b.Fatal(err)
			}
		})
	})
	// Fleet energy as serve answers it (energy tiles: the first request
	// reads them, the rest sum them in memory) and from the engine alone.
	eng, err := query.New(query.Options{Store: s, ACL: f.ACL, Live: f.Live, Now: func() time.Time { return f.Now },
		Logger: slog.New(slog.DiscardHandler), LiveRefresh: time.Hour, EnergyTiles: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	for _, rg := range bench.FleetEnergyRanges(now, 30) {
		for _, path := range []struct {
			name string
			svc  *query.Service
		}{{"fleet-energy", svc}, {"fleet-energy-engine", eng}} {
			b.Run(fmt.Sprintf("%s/%s/systems=%d", path.name, strings.ReplaceAll(rg.Name, " ", "-"), h.Big.GetCardinality()), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := path.svc.FleetEnergy(ctx, f.Big, query.FleetEnergyQuery{From: rg.From, To: rg.To}); err != nil {
						b.Fatal(err)
					}
				}
				reportBaseline(b, 3, func(int) {
					if _, _, err := svc.FleetEnergyBruteForce(ctx, f.Big, rg.From, rg.To); err != nil {
						b.Fatal(err)
					}
				})
			})
		}
	}
}
