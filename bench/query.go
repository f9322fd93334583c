package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/query"
	"github.com/fleetscope/fleetscope/store"
)

// QueryOptions configure the query benchmark.
type QueryOptions struct {
	Fleet FleetSpec
	// Requests per measured figure (the percentiles come from these).
	Requests int
	// BaselineRequests per brute-force figure: each scans the catalogue.
	BaselineRequests int
	// Store, if set, also measures history (telemetry, fleet energy) on
	// synthetic rollups written into it.
	Store *store.Store
	// HistoryDays of daily rollups for fleet energy.
	HistoryDays int
	// HistoryOthers is how many systems outside the big installer's also
	// have history (they share the tables, as the rest of a fleet does).
	HistoryOthers int
	Logger        *slog.Logger
	// CPUProfile, if set, receives a CPU profile of the measured requests
	// (not of generating the catalogue).
	CPUProfile io.Writer
}

// QueryResult holds every figure of one run.
type QueryResult struct {
	Spec       FleetSpec
	Callers    map[string]int // systems each caller sees
	Generate   time.Duration
	Build      time.Duration
	HeapACL    uint64 // bytes of live heap after the acl replay
	HeapQuery  uint64 // bytes the query catalogue added
	LiveBuild  time.Duration
	Figures    []Figure
	History    []Figure
	Pushdown   []PushdownFigure
	HistoryErr error
	// Slowest are the search texts of the big caller with the highest
	// median latency over their repeats: which queries make the tail.
	Slowest []SlowQuery
}

// SlowQuery is one search text's latency over its repeats in a run.
type SlowQuery struct {
	Q        string
	P50, Max time.Duration
	Matches  int
}

// Figure is one measured latency next to its baseline.
type Figure struct {
	Name          string
	Target        time.Duration // 0: none
	P50, P99, Max time.Duration
	N             int
	BaseName      string
	BaseP50       time.Duration
	BaseN         int
}

// Ratio is how many times faster the measured p50 is than the baseline's.
func (f Figure) Ratio() float64 {
	if f.P50 == 0 || f.BaseP50 == 0 {
		return 0
	}
	return float64(f.BaseP50) / float64(f.P50)
}

// measure runs fn n times and returns the latencies. It collects garbage
// first, so that a figure does not pay for the collection of what the
// set-up before it (generating the catalogue, another figure) left behind.
func measure(n int, fn func(i int) error) ([]time.Duration, error) {
	runtime.GC()
	out := make([]time.Duration, 0, n)
	for i := range n {
		start := time.Now()
		if err := fn(i); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// measureAfter times fn n times, running setup (untimed) before each.
func measureAfter(n int, setup func(i int) error, fn func(i int) error) ([]time.Duration, error) {
	runtime.GC()
	out := make([]time.Duration, 0, n)
	for i := range n {
		if err := setup(i); err != nil {
			return nil, err
		}
		start := time.Now()
		if err := fn(i); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

func figure(name string, target time.Duration, ds []time.Duration, base string, bs []time.Duration) Figure {
	f := Figure{Name: name, Target: target, P50: percentile(ds, 50), P99: percentile(ds, 99), Max: percentile(ds, 100), N: len(ds),
		BaseName: base, BaseP50: percentile(bs, 50), BaseN: len(bs)}
	return f
}

// slowest groups the latencies ds by the text of request i and returns the
// n texts with the highest median, with their match counts (asked for after
// the timing, outside it).
func slowest(ds []time.Duration, text func(i int) string, n int, matches func(q string) int) []SlowQuery {
	by := map[string][]time.Duration{}
	for i, d := range ds {
		by[text(i)] = append(by[text(i)], d)
	}
	out := make([]SlowQuery, 0, len(by))
	for q, qs := range by {
		out = append(out, SlowQuery{Q: q, P50: percentile(qs, 50), Max: percentile(qs, 100)})
	}
	slices.SortFunc(out, func(a, b SlowQuery) int { return cmp.Compare(b.P50, a.P50) })
	out = out[:min(n, len(out))]
	for i := range out {
		out[i].Matches = matches(out[i].Q)
	}
	return out
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Query generates the catalogue, builds the query service on it and
// measures All Locations (search, list), fleet summary and — with a store —
// history, each next to a brute-force baseline from the same run.
func Query(ctx context.Context, opts QueryOptions) (*QueryResult, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if os.Getenv("GOGC") == "" {
		// As `fleetscope serve` runs (see serveGCPercent there): the query
		// service is in this process, beside the catalogue.
		defer debug.SetGCPercent(debug.SetGCPercent(300))
	}
	res := &QueryResult{Spec: opts.Fleet, Callers: map[string]int{}}
	start := time.Now()
	f := GenerateFleet(opts.Fleet)
	res.Generate = time.Since(start)
	res.HeapACL = heapInUse()
	opts.Logger.Info("catalogue generated", "systems", opts.Fleet.Systems, "duration_s", res.Generate.Seconds())

	start = time.Now()
	svc, err := query.New(query.Options{Store: opts.Store, ACL: f.ACL, Live: f.Live, Now: func() time.Time { return f.Now },
		Logger: opts.Logger, LiveRefresh: time.Hour})
	if err != nil {
		return nil, err
	}
	defer svc.Close()
	res.Build = time.Since(start)
	res.HeapQuery = heapInUse() - res.HeapACL
	start = time.Now()
	for range 5 {
		svc.RefreshLive()
	}
	res.LiveBuild = time.Since(start) / 5
	debug.FreeOSMemory()

	if opts.CPUProfile != nil {
		if err := pprof.StartCPUProfile(opts.CPUProfile); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	snap := f.ACL.Snapshot()
	medium, _ := f.AdminOfSize(opts.Fleet.BigOrg / 100)
	callers := []struct {
		name    string
		id      acl.AccountID
		queries []string
	}{{"big", f.Big, f.Queries}, {"medium", medium, f.Queries}, {"small", f.Small, f.SmallQueries}}
	for _, c := range callers {
		res.Callers[c.name] = int(snap.Systems(c.id, acl.PermView).GetCardinality())
	}
	for _, c := range callers {
		target := time.Duration(0)
		if c.name == "big" {
			target = time.Millisecond
		}
		label := fmt.Sprintf("%s (%d systems)", c.name, res.Callers[c.name])
		cases := []struct {
			what string
			req  func(i int) query.LocationsQuery
		}{
			{"search", func(i int) query.LocationsQuery { return query.LocationsQuery{Q: c.queries[i%len(c.queries)]} }},
			{"list by name", func(int) query.LocationsQuery { return query.LocationsQuery{} }},
			{"list by -power", func(int) query.LocationsQuery { return query.LocationsQuery{Sort: "-power"} }},
			{"list by name, page 20", nil},
		}
		for _, cs := range cases {
			var ds []time.Duration
			if cs.req == nil {
				// Page 20 of the name order: the cursor of page 19.
				cur := ""
				for range 19 {
					p, err := svc.Locations(c.id, query.LocationsQuery{Cursor: cur})
					if err != nil {
						return nil, err
					}
					cur = p.NextCursor
				}
				cs.req = func(int) query.LocationsQuery { return query.LocationsQuery{Cursor: cur} }
			}
			ds, err = measure(opts.Requests, func(i int) error {
				_, err := svc.Locations(c.id, cs.req(i))
				return err
			})
			if err != nil {
				return nil, err
			}
			if c.name == "big" && cs.what == "search" {
				res.Slowest = slowest(ds, func(i int) string { return cs.req(i).Q }, 8, func(q string) int {
					p, _ := svc.Locations(c.id, query.LocationsQuery{Q: q})
					return p.Total
				})
			}
			bs, _ := measure(opts.BaselineRequests, func(i int) error {
				f.ScanSearch(snap, c.id, cs.req(i).Q, 50)
				return nil
			})
			res.Figures = append(res.Figures, figure("All Locations "+cs.what+", "+label, target, ds, "scan: rules + string match per system", bs))
		}
		ds, _ := measure(opts.Requests, func(int) error { svc.FleetSummary(c.id); return nil })
		bs, _ := measure(opts.BaselineRequests, func(int) error { f.ScanSummary(snap, c.id); return nil })
		sumTarget := time.Duration(0)
		if c.name == "big" {
			sumTarget = 2 * time.Millisecond
		}
		name := "fleet summary, " + label
		if c.name == "big" {
			// The org's shared bitmap: after the first request the live
			// part comes from the live view's cache (see query.FleetSummary).
			name = "fleet summary, " + label + ", cached"
		}
		res.Figures = append(res.Figures, figure(name, sumTarget, ds, "scan: rules + live state per system", bs))
		if c.name == "big" {
			// A member with a grant of their own: their bitmap is a union,
			// summarized as the org's cached part plus what the grant adds.
			n := res.Callers["big"]
			ds, _ := measure(opts.Requests, func(int) error { svc.FleetSummary(f.BigUnion); return nil })
			bs, _ := measure(opts.BaselineRequests, func(int) error { f.ScanSummary(snap, f.BigUnion); return nil })
			res.Figures = append(res.Figures, figure(fmt.Sprintf("fleet summary, big + own grant (%d systems), org part cached", n+1),
				sumTarget, ds, "scan: rules + live state per system", bs))
			// The cold path: the first request after a change of the
			// org's grants (a grant to it, then its revocation, before
			// each request), whose bitmap no cache has seen.
			toggle, err := f.GrantToggle()
			if err != nil {
				return nil, err
			}
			ds, err = measureAfter(opts.Requests, toggle, func(int) error { svc.FleetSummary(c.id); return nil })
			if err != nil {
				return nil, err
			}
			res.Figures = append(res.Figures, figure(fmt.Sprintf("fleet summary, big (%d systems), cold: first after a change", n),
				sumTarget, ds, "scan: rules + live state per system", bs))
		}
	}
	if opts.Store != nil {
		res.HistoryErr = res.history(ctx, opts, f, svc)
	}
	return res, nil
}

// Print writes the report.
func (r *QueryResult) Print(w io.Writer) {
	fmt.Fprintf(w, "query: %d systems, %d accounts; the largest installer org %d systems (ids spread over the catalogue)\n",
		r.Spec.Systems, r.Spec.Accounts, r.Spec.BigOrg)
	fmt.Fprintf(w, "  generated in %s; acl index %d MiB live heap\n", r.Generate.Round(time.Millisecond), r.HeapACL>>20)
	fmt.Fprintf(w, "  catalogue built in %s, %d MiB more heap; live view copied in %s\n",
		r.Build.Round(time.Millisecond), r.HeapQuery>>20, r.LiveBuild.Round(time.Microsecond))
	fmt.Fprintf(w, "  %-66s %9s %9s %9s %7s   %-11s %9s %9s\n", "figure", "p50", "p99", "max", "target", "baseline", "p50", "ratio")
	row := func(f Figure) {
		target := "-"
		if f.Target > 0 {
			target = "≤" + fmtDur(f.Target)
			if f.P99 > f.Target {
				target += "!"
			}
		}
		base, ratio := "", ""
		if f.BaseN > 0 {
			base, ratio = fmtDur(f.BaseP50), fmt.Sprintf("%.0f×", f.Ratio())
		}
		fmt.Fprintf(w, "  %-66s %9s %9s %9s %7s   %-11s %9s %9s\n", f.Name, fmtDur(f.P50), fmtDur(f.P99), fmtDur(f.Max), target,
			shortBase(f.BaseName), base, ratio)
	}
	for _, f := range r.Figures {
		row(f)
	}
	for _, f := range r.History {
		row(f)
	}
	if len(r.Pushdown) > 0 {
		fmt.Fprintf(w, "  fleet energy by pushdown method (p50 over %d requests each):\n", r.Pushdown[0].N)
		fmt.Fprintf(w, "    %10s %12s %12s %12s\n", "systems", "array", "bitmap", "param bytes")
		for _, p := range r.Pushdown {
			fmt.Fprintf(w, "    %10d %12s %12s %6d/%d\n", p.Systems, fmtDur(p.Array), fmtDur(p.Bitmap), p.ArrayBytes, p.BitmapBytes)
		}
	}
	if len(r.Slowest) > 0 {
		fmt.Fprintf(w, "  slowest search texts of the big caller (median and max over their repeats):\n")
		for _, q := range r.Slowest {
			fmt.Fprintf(w, "    %-24q %9s %9s %8d matches\n", q.Q, fmtDur(q.P50), fmtDur(q.Max), q.Matches)
		}
	}
	if r.HistoryErr != nil {
		fmt.Fprintf(w, "  history: %v\n", r.HistoryErr)
	}
	fmt.Fprintln(w, "  ratio = baseline p50 / p50; '!' marks a p99 over its DESIGN §7 target")
}

func shortBase(s string) string {
	if len(s) > 11 {
		if i := len("scan"); len(s) >= i && s[:i] == "scan" {
			return "scan"
		}
		return s[:11]
	}
	return s
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
