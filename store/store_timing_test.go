package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/bench"
	"github.com/fleetscope/fleetscope/internal/storetest"
)

// BenchmarkInsertVsEngine inserts batches of readings through clickhouse-go
// → bridge → engine and, alternating, the same rows by the engine alone,
// and reports both rates and their ratio (goal ≥ 0.7 at 100 k rows).
func BenchmarkInsertVsEngine(b *testing.B) {
	for _, rows := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			s := storetest.Open(b)
			b.ReportAllocs()
			b.ResetTimer()
			cols := bench.FleetColumns(1, rows, 30, time.Date(2026, 6, 21, 6, 0, 0, 0, time.UTC), time.Minute)
			res, err := bench.StoreInsert(context.Background(), s, cols, b.N)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.BridgeRate(), "rows/s")
			b.ReportMetric(res.EngineRate(), "engine-rows/s")
			b.ReportMetric(res.Ratio(), "ratio")
		})
	}
}
