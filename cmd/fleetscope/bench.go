package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/fleetscope/fleetscope/bench"
	"github.com/fleetscope/fleetscope/store"
)

const benchUsage = `usage: fleetscope bench <benchmark> [flags]

benchmarks:
  store    inserts through clickhouse-go → bridge → engine vs the engine alone, same rows, same run
`

func runBench(ctx context.Context, log *slog.Logger, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, benchUsage)
		return fmt.Errorf("bench: which benchmark?")
	}
	switch args[0] {
	case "store":
		return benchStore(ctx, log, args[1:])
	}
	fmt.Fprint(os.Stderr, benchUsage)
	return fmt.Errorf("bench: unknown benchmark %q", args[0])
}

// benchDataDir returns the data directory for a benchmark: the flag's, or a
// temporary one removed afterwards.
func benchDataDir(dir string) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, nil
	}
	d, err := os.MkdirTemp("", "fleetscope-bench-")
	if err != nil {
		return "", nil, err
	}
	return d, func() { os.RemoveAll(d) }, nil
}

func benchStore(ctx context.Context, log *slog.Logger, args []string) error {
	fs := newFlags("bench store")
	rows := fs.Int("rows", 100_000, "rows per batch")
	rounds := fs.Int("rounds", 20, "batches per path")
	data := fs.FlagSet.String("data", "", "data directory for the embedded engine (default: a temporary one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, cleanup, err := benchDataDir(*data)
	if err != nil {
		return err
	}
	defer cleanup()
	s, err := store.Open(ctx, store.Config{DataDir: dir, Logger: log})
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := bench.StoreInsert(ctx, s, *rows, *rounds)
	if err != nil {
		return err
	}
	res.Print(os.Stdout)
	return nil
}
