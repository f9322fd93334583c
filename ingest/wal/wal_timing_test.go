package wal

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkAppendParallel measures durable appends from many concurrent
// writers, as ingest handlers make them: throughput comes from group
// commit, one fdatasync per group. The payload is the size of an ingest
// record of 30 readings. Custom metrics: records per fsync and records/s.
func BenchmarkAppendParallel(b *testing.B) {
	for _, perCPU := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("writers=%dxGOMAXPROCS", perCPU), func(b *testing.B) {
			reg := prometheus.NewRegistry()
			w, err := Open(b.TempDir(), Options{Logger: quiet}, reg)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			payload := make([]byte, 600)
			b.SetBytes(int64(len(payload)))
			b.SetParallelism(perCPU)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := w.Append(payload); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			groups := histogramCount(b, reg, "fleetscope_wal_group_records")
			b.ReportMetric(float64(b.N)/float64(groups), "records/fsync")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
