package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/fleetscope/fleetscope/bench"
	"github.com/fleetscope/fleetscope/store"
)

const benchUsage = `usage: fleetscope bench <benchmark> [flags]

benchmarks:
  store    inserts through clickhouse-go → bridge → engine vs the engine alone, same rows, same run
  query    All Locations search, list, summary, history and fleet energy on a synthetic 2 M-system
           catalogue, next to a brute-force scan in the same run
  ingest   a gateway fleet posting to fleetscope (started here, or --url): readings/s end to end,
           p99 ack at half of saturation, peak RSS, server CPU per reading — next to
           the engine's own JSONEachRow ingest of the same readings (CPU per row, merges included)
  dashboard  the web dashboard in headless Chromium over a synthetic 200 k-system installer:
           sign-in to All Locations drawn, keystroke to search results drawn, bytes of the first page
`

func runBench(ctx context.Context, log *slog.Logger, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, benchUsage)
		return fmt.Errorf("bench: which benchmark?")
	}
	switch args[0] {
	case "store":
		return benchStore(ctx, log, args[1:])
	case "query":
		return benchQuery(ctx, log, args[1:])
	case "ingest":
		return benchIngest(ctx, args[1:])
	case "dashboard":
		return benchDashboard(ctx, log, args[1:])
	}
	fmt.Fprint(os.Stderr, benchUsage)
	return fmt.Errorf("bench: unknown benchmark %q", args[0])
}

// fleetFlags defines the generated catalogue's flags (DESIGN §7's sizes by
// default) and returns its spec once the flags are parsed; big says who
// the largest org's systems are to the benchmark.
func fleetFlags(fs envFlags, big string) func() bench.FleetSpec {
	systems := fs.Int("systems", 2_000_000, "systems in the catalogue")
	accounts := fs.Int("accounts", 1_000_000, "accounts")
	bigOrg := fs.Int("big-org", 200_000, "systems of the largest installer org ("+big+")")
	seed := fs.Int("seed", 1, "generator seed")
	return func() bench.FleetSpec {
		return bench.FleetSpec{Systems: *systems, Accounts: *accounts, BigOrg: *bigOrg, Seed: uint64(*seed)}
	}
}

// openBenchStore opens the embedded engine for a benchmark in dir, or in a
// temporary directory when dir is empty; closeStore closes the store and removes
// a temporary directory.
func openBenchStore(ctx context.Context, log *slog.Logger, dir string) (s *store.Store, closeStore func(), err error) {
	remove := func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "fleetscope-bench-"); err != nil {
			return nil, nil, err
		}
		remove = func() { os.RemoveAll(dir) }
	}
	s, err = store.Open(ctx, store.Config{DataDir: dir, Logger: log})
	if err != nil {
		remove()
		return nil, nil, err
	}
	return s, func() { s.Close(); remove() }, nil
}

func benchStore(ctx context.Context, log *slog.Logger, args []string) error {
	fs := newFlags("bench store")
	rows := fs.Int("rows", 100_000, "rows per batch")
	rounds := fs.Int("rounds", 20, "batches per path")
	storageSystems := fs.Int("storage-systems", 20, "systems of 30 panels in the storage measurement")
	storageDays := fs.Int("storage-days", 3, "days of one-minute readings in the storage measurement")
	data := fs.FlagSet.String("data", "", "data directory for the embedded engine (default: a temporary one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, closeStore, err := openBenchStore(ctx, log, *data)
	if err != nil {
		return err
	}
	defer closeStore()
	cols := bench.FleetColumns(1, *rows, 30, time.Date(2026, 6, 21, 6, 0, 0, 0, time.UTC), time.Minute)
	res, err := bench.StoreInsert(ctx, s, cols, *rounds)
	if err != nil {
		return err
	}
	res.Print(os.Stdout)
	st, err := bench.Storage(ctx, s, *storageSystems, *storageDays)
	if err != nil {
		return err
	}
	st.Print(os.Stdout)
	return nil
}

func benchIngest(ctx context.Context, args []string) error {
	fs := newFlags("bench ingest")
	var o bench.IngestOptions
	fs.FlagSet.StringVar(&o.URL, "url", "", "a running fleetscope to drive (default: start one with a fresh data directory)")
	fs.FlagSet.StringVar(&o.Token, "token", os.Getenv("FLEETSCOPE_SUPPORT_TOKEN"), "support token of the running fleetscope (with --url)")
	fs.FlagSet.IntVar(&o.Gateways, "gateways", 2000, "simulated gateways")
	fs.FlagSet.IntVar(&o.Panels, "panels", 30, "panels per gateway: readings per request")
	fs.FlagSet.IntVar(&o.Concurrency, "concurrency", 64, "connections posting at once")
	fs.FlagSet.DurationVar(&o.Duration, "duration", 30*time.Second, "length of the saturation phase (the half-rate phase is as long)")
	fs.FlagSet.BoolVar(&o.NDJSON, "ndjson", false, "post NDJSON instead of JSON")
	fs.FlagSet.BoolVar(&o.Gzip, "gzip", false, "gzip request bodies")
	fs.FlagSet.StringVar(&o.OpsAddr, "ops-addr", "", "start the server with --ops-addr ADDR, to take Go profiles from its /debug/pprof/ during the load")
	fs.FlagSet.IntVar(&o.EngineInserts, "engine-inserts", 0, "1 M-row JSONEachRow inserts of the engine's own JSON baseline (0 = as many millions as the saturation phase acknowledged)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.URL == "" {
		if o.Binary, err = os.Executable(); err != nil {
			return err
		}
	}
	o.Log = os.Stderr
	rep, err := bench.Ingest(ctx, o)
	if err != nil {
		return err
	}
	rep.Print(os.Stdout)
	return nil
}
