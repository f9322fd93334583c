package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/fleetscope/fleetscope/bench"
)

// benchDashboard runs `fleetscope bench dashboard`: the web dashboard in
// headless Chromium against fleetscope's API over a generated catalogue
// (see bench.Dashboard). The defaults are DESIGN §7's sizes; generating
// them takes a few minutes on 2 cores.
func benchDashboard(ctx context.Context, log *slog.Logger, args []string) error {
	fs := newFlags("bench dashboard")
	fleet := fleetFlags(fs, "whose admin signs in")
	keys := fs.Int("keystrokes", 200, "keystrokes typed into the search (percentiles come from these)")
	pause := fs.Duration("key-pause", 125*time.Millisecond, "pause between keystrokes")
	chromium := fs.FlagSet.String("chromium", "", "Chromium binary (default: FLEETSCOPE_CHROMIUM, /usr/bin/chromium, chromium on PATH)")
	data := fs.FlagSet.String("data", "", "data directory for the embedded engine (default: a temporary one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, closeStore, err := openBenchStore(ctx, log, *data)
	if err != nil {
		return err
	}
	defer closeStore()
	res, err := bench.Dashboard(ctx, bench.DashboardOptions{
		Fleet:      fleet(),
		Keystrokes: *keys, KeyPause: *pause, Store: s, Chromium: *chromium, Logger: log, Progress: os.Stderr,
	})
	if err != nil {
		return err
	}
	res.Print(os.Stdout)
	return nil
}
