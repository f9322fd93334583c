package password

import (
	"context"
	"testing"
	"time"
)

// The benchmarks report, besides ns/op (the wall time of one attempt, or of
// one attempt's share of the parallel benchmark's), cpu-ms/op: the process's
// CPU time (user and system, garbage collection of the 19 MiB buffers
// included) per attempt, the login CPU cost per attempt that capacity
// planning quotes. The parallel one runs GOMAXPROCS attempts at once
// through a Hasher, as a burst of logins would.

func BenchmarkHash(b *testing.B) {
	benchCost(b, func() { Hash("correct horse battery staple") })
}

func BenchmarkVerify(b *testing.B) {
	enc, _ := Hash("correct horse battery staple")
	benchCost(b, func() { Verify(enc, "correct horse battery stapler") })
}

func BenchmarkVerifyLegacy(b *testing.B) {
	enc := legacyHash("correct horse battery staple", 100_000)
	benchCost(b, func() { Verify(enc, "correct horse battery stapler") })
}

func BenchmarkVerifyDummy(b *testing.B) {
	dummy()
	benchCost(b, func() { VerifyDummy("correct horse battery stapler") })
}

func BenchmarkHasherVerifyParallel(b *testing.B) {
	h := New(Options{})
	enc, _ := Hash("correct horse battery staple")
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Verify(ctx, enc, "correct horse battery stapler")
		}
	})
	report(b, cpu0)
}

func benchCost(b *testing.B, f func()) {
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		f()
	}
	report(b, cpu0)
}

func report(b *testing.B, cpu0 time.Duration) {
	if cpu := cpuTime(); cpu > 0 {
		b.ReportMetric(float64((cpu-cpu0).Microseconds())/1e3/float64(b.N), "cpu-ms/op")
	}
}
