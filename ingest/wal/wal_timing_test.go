package wal

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkAppendParallel measures durable appends from many concurrent
// writers, as ingest handlers make them: throughput comes from group
// commit, one fdatasync per group. The payload is the size of an ingest
// record of 30 readings. The baseline is segment=growing, a log's first
// segment, which grows with every write as every segment did before they
// were preallocated; segment=preallocated writes over a prepared spare's
// zeros. Custom metrics: records per fsync, records/s, and the process's
// CPU per record (user and system: the fdatasync is mostly the latter).
func BenchmarkAppendParallel(b *testing.B) {
	for _, seg := range []string{"growing", "preallocated"} {
		for _, perCPU := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("segment=%s/writers=%dxGOMAXPROCS", seg, perCPU), func(b *testing.B) {
				benchmarkAppend(b, seg == "preallocated", perCPU)
			})
		}
	}
}

func benchmarkAppend(b *testing.B, preallocated bool, perCPU int) {
	const segSize = 256 << 20 // no segment switch while timing
	reg := prometheus.NewRegistry()
	w, err := Open(b.TempDir(), Options{Logger: quiet, SegmentSize: segSize}, reg)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	payload := make([]byte, 600)
	if preallocated {
		// Ask for a spare and start a segment in it, as the writer does
		// once the active segment is half full.
		w.pre.ask()
		waitFor(b, func() bool { return w.pre.prepared.Load() > 0 })
		w.segMu.Lock()
		next := w.next
		w.segMu.Unlock()
		if err := w.createSegment(next); err != nil {
			b.Fatal(err)
		}
		if got := metricValue(b, reg, "fleetscope_wal_preallocated_segments_total"); got != 1 {
			b.Fatalf("the segment did not start in the spare (%v)", got)
		}
	}
	b.SetBytes(int64(len(payload)))
	b.SetParallelism(perCPU)
	b.ReportAllocs()
	groups0 := histogramCount(b, reg, "fleetscope_wal_group_records")
	cpu0 := processCPU()
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
	cpu := processCPU() - cpu0
	groups := histogramCount(b, reg, "fleetscope_wal_group_records") - groups0
	b.ReportMetric(float64(b.N)/float64(groups), "records/fsync")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(b.N), "cpu-µs/record")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
