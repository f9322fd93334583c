package main

import (
	"context"
	"fmt"
	"log/slog"
)

func runBench(ctx context.Context, log *slog.Logger, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("bench: which one? store, ingest or query")
	}
	return fmt.Errorf("bench: unknown benchmark %q", args[0])
}
