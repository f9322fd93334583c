package ratelimit

import (
	"net/netip"
	"strconv"
	"testing"
)

// BenchmarkAllow hits 10 000 tracked keys in turn with a limit they never
// reach: the path of every rate-limited request.
func BenchmarkAllow(b *testing.B) {
	l := New(Options{Limit: 1 << 30})
	keys := benchKeys(10_000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow(keys[i%len(keys)])
		i++
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l := New(Options{Limit: 1 << 30})
	keys := benchKeys(10_000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(keys[i%len(keys)])
			i++
		}
	})
}

// BenchmarkAllowFlood inserts a new key every time into a full limiter: the
// path of a flood of distinct keys, an eviction per call.
func BenchmarkAllowFlood(b *testing.B) {
	l := New(Options{MaxKeys: 10_000})
	keys := benchKeys(1 << 20)
	for _, k := range keys[:10_000] {
		l.Allow(k)
	}
	b.ReportAllocs()
	i := 10_000
	for b.Loop() {
		l.Allow(keys[i%len(keys)])
		i++
	}
}

func BenchmarkConnAcquireRelease(b *testing.B) {
	c := NewConnLimiter(ConnOptions{})
	ip := netip.MustParseAddr("2001:db8::1")
	b.ReportAllocs()
	for b.Loop() {
		c.Acquire(ip)
		c.Release(ip)
	}
}

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "user" + strconv.Itoa(i) + "@example.com"
	}
	return keys
}
