package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/fleetscope/fleetscope/bench"
)

// benchQuery runs `fleetscope bench query`: All Locations, fleet summary
// and history against their brute-force baselines (see bench.Query). The
// defaults are DESIGN §7's sizes; on 2 cores the run takes a few minutes,
// most of it generating the catalogue and the history.
func benchQuery(ctx context.Context, log *slog.Logger, args []string) error {
	fs := newFlags("bench query")
	fleet := fleetFlags(fs, "the caller of the headline figures")
	requests := fs.Int("requests", 2000, "requests per figure (percentiles come from these)")
	baseline := fs.Int("baseline-requests", 10, "requests per brute-force baseline (each scans the catalogue)")
	history := fs.Bool("history", true, "also measure history (telemetry, fleet energy) on the embedded engine")
	days := fs.Int("history-days", 30, "days of daily rollups for fleet energy")
	others := fs.Int("history-others", 200_000, "systems of other installers with history in the same tables")
	data := fs.FlagSet.String("data", "", "data directory for the embedded engine (default: a temporary one)")
	profile := fs.FlagSet.String("cpuprofile", "", "write a CPU profile of the measured requests to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := bench.QueryOptions{
		Fleet:    fleet(),
		Requests: *requests, BaselineRequests: *baseline, HistoryDays: *days, HistoryOthers: *others, Logger: log,
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		opts.CPUProfile = f
	}
	if *history {
		s, closeStore, err := openBenchStore(ctx, log, *data)
		if err != nil {
			return err
		}
		defer closeStore()
		opts.Store = s
	}
	res, err := bench.Query(ctx, opts)
	if err != nil {
		return err
	}
	res.Print(os.Stdout)
	return nil
}
