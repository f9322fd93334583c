package store_test

import (
	"context"
	"fmt"
	"testing"

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
			res, err := bench.StoreInsert(context.Background(), s, rows, b.N)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.BridgeRate(), "rows/s")
			b.ReportMetric(res.EngineRate(), "engine-rows/s")
			b.ReportMetric(res.Ratio(), "ratio")
		})
	}
}
