package ratelimit

import (
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// clock is a settable time source for Options.Now.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func value(m prometheus.Metric) float64 {
	var d dto.Metric
	m.Write(&d)
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}

// has reports whether key is tracked, without touching it.
func (l *Limiter) has(key string) bool {
	s, h := l.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.idx[h]
	return ok
}

// check verifies the shards' invariants: every tracked entry is on exactly
// the list its count says, the locked list is in the order its locks end,
// and the free list holds the rest.
func (l *Limiter) check(t *testing.T) {
	t.Helper()
	for si := range l.shards {
		s := &l.shards[si]
		s.mu.Lock()
		seen := map[int32]bool{}
		walk := func(ls list, locked bool) {
			prev, last := int32(none), int64(-1<<63)
			for i := ls.head; i != none; i = s.ents[i].next {
				e := &s.ents[i]
				if seen[i] || e.prev != prev || (e.n >= l.limit) != locked {
					t.Fatalf("shard %d: entry %d (n %d, prev %d, want %d) on the wrong list or twice", si, i, e.n, e.prev, prev)
				}
				if locked && e.reset < last {
					t.Fatalf("shard %d: locked list out of order at %d", si, i)
				}
				if j, ok := s.idx[e.key]; !ok || j != i {
					t.Fatalf("shard %d: listed entry %d not in the map", si, i)
				}
				seen[i], prev, last = true, i, e.reset
			}
			if ls.tail != prev {
				t.Fatalf("shard %d: list tail %d, last entry %d", si, ls.tail, prev)
			}
		}
		walk(s.open, false)
		walk(s.locked, true)
		if len(seen) != len(s.idx) || len(s.idx) > s.max {
			t.Fatalf("shard %d: %d listed, %d in the map, max %d", si, len(seen), len(s.idx), s.max)
		}
		nfree := 0
		for i := s.free; i != none; i = s.ents[i].next {
			nfree++
		}
		if nfree+len(s.idx) != len(s.ents) {
			t.Fatalf("shard %d: %d free + %d used != %d entries", si, nfree, len(s.idx), len(s.ents))
		}
		s.mu.Unlock()
	}
}

func TestAllow(t *testing.T) {
	c := newClock()
	l := New(Options{Limit: 3, Window: time.Minute, Now: c.now})
	f := func(key string, wantOK bool, wantRetry time.Duration) {
		t.Helper()
		ok, retry := l.Allow(key)
		if ok != wantOK || retry != wantRetry {
			t.Fatalf("Allow(%q) = %v, %v; want %v, %v", key, ok, retry, wantOK, wantRetry)
		}
		l.check(t)
	}
	f("a", true, 0)
	c.advance(10 * time.Second)
	f("a", true, 0)
	f("b", true, 0) // keys are independent
	c.advance(10 * time.Second)
	f("a", true, 0) // the third: allowed, and locks a for a full minute from now
	f("a", false, time.Minute)
	c.advance(45 * time.Second) // past the window the first hit opened
	f("a", false, 15*time.Second)
	f("a", false, 15*time.Second) // refused hits do not extend the lock
	c.advance(15 * time.Second)
	f("a", true, 0) // a new window
	f("a", true, 0)
	f("a", true, 0)
	f("a", false, time.Minute)
	f("b", true, 0)

	// A window that ends below the limit starts over.
	f("c", true, 0)
	f("c", true, 0)
	c.advance(time.Minute)
	f("c", true, 0)
	f("c", true, 0)
	f("c", true, 0)
	f("c", false, time.Minute)

	if got := value(l.limited); got != 5 {
		t.Fatalf("limited_total = %v, want 5", got)
	}
	if got := value(l.allowed); got != 13 {
		t.Fatalf("allowed_total = %v, want 13", got)
	}
}

func TestLimitOne(t *testing.T) {
	c := newClock()
	l := New(Options{Limit: 1, Window: time.Hour, Now: c.now})
	if ok, _ := l.Allow("x"); !ok {
		t.Fatal("first hit refused")
	}
	if ok, retry := l.Allow("x"); ok || retry != time.Hour {
		t.Fatalf("second hit: %v, %v", ok, retry)
	}
	l.check(t)
}

func TestPeekRefundReset(t *testing.T) {
	c := newClock()
	l := New(Options{Limit: 3, Window: time.Minute, Now: c.now})
	peek := func(key string, wantOK bool, wantRetry time.Duration) {
		t.Helper()
		if ok, retry := l.Peek(key); ok != wantOK || retry != wantRetry {
			t.Fatalf("Peek(%q) = %v, %v; want %v, %v", key, ok, retry, wantOK, wantRetry)
		}
		l.check(t)
	}
	peek("u", true, 0)
	if l.has("u") {
		t.Fatal("Peek of an unknown key tracks it")
	}
	// Logins that succeed are refunded and never lock.
	for range 10 {
		if ok, _ := l.Allow("u"); !ok {
			t.Fatal("a refunded key locked")
		}
		l.Refund("u")
		l.check(t)
	}
	// Three failures lock; Peek reports it without counting.
	for range 3 {
		l.Allow("u")
	}
	peek("u", false, time.Minute)
	peek("u", false, time.Minute)
	// A refund of an attempt in flight when the lock began takes the key
	// below the limit again.
	l.Refund("u")
	peek("u", true, 0)
	if ok, _ := l.Allow("u"); !ok {
		t.Fatal("refunded key still locked")
	}
	peek("u", false, time.Minute)
	l.Reset("u")
	peek("u", true, 0)
	if l.has("u") || l.Len() != 0 || value(l.keys) != 0 {
		t.Fatalf("after Reset: tracked %v, Len %d, keys gauge %v", l.has("u"), l.Len(), value(l.keys))
	}
	// Refund and Reset of unknown keys do nothing; refunds stop at zero.
	l.Refund("nobody")
	l.Reset("nobody")
	l.Allow("v")
	l.Refund("v")
	l.Refund("v")
	l.Refund("v")
	for range 3 {
		if ok, _ := l.Allow("v"); !ok {
			t.Fatal("extra refunds gave credit")
		}
	}
	peek("v", false, time.Minute)
	// After a window, a refund does not reach back into the old one.
	c.advance(time.Minute)
	l.Refund("v")
	peek("v", true, 0)
	l.check(t)
}

func TestEvictionOrder(t *testing.T) {
	c := newClock()
	m := NewMetrics(nil)
	// 4 keys: one shard, so the order is exact.
	l := New(Options{Name: "order", Limit: 3, Window: time.Minute, MaxKeys: 4, Metrics: m, Now: c.now})
	if len(l.shards) != 1 {
		t.Fatalf("%d shards", len(l.shards))
	}
	lock := func(key string) {
		for range 3 {
			l.Allow(key)
		}
	}
	tracked := func(want ...string) {
		t.Helper()
		l.check(t)
		for _, k := range want {
			if !l.has(k) {
				t.Fatalf("%q was evicted", k)
			}
		}
		if l.Len() != len(want) {
			t.Fatalf("Len %d, want %d", l.Len(), len(want))
		}
	}
	evictions := func(reason string) float64 {
		return value(m.evictions.WithLabelValues("order", reason))
	}

	// Below the limit: least recently hit first; locked keys stay.
	lock("L")
	l.Allow("a")
	l.Allow("b")
	l.Allow("c")
	l.Allow("a") // now b is the least recently hit
	l.Allow("d")
	tracked("L", "a", "c", "d")
	l.Allow("e")
	tracked("L", "d", "e", "a")
	if evictions(evictBelow) != 2 {
		t.Fatalf("below_limit evictions %v", evictions(evictBelow))
	}

	// An ended lock goes before any key below its limit.
	c.advance(time.Minute)
	l.Allow("f")
	tracked("d", "e", "a", "f")
	if evictions(evictExpired) != 1 {
		t.Fatalf("expired evictions %v", evictions(evictExpired))
	}

	// Every key locked: the lock that ends soonest goes.
	lock("d")
	c.advance(time.Second)
	lock("e")
	lock("a")
	lock("f")
	l.Allow("g")
	tracked("e", "a", "f", "g")
	if ok, _ := l.Peek("d"); !ok || evictions(evictLocked) != 1 {
		t.Fatalf("d: Peek %v, locked evictions %v", ok, evictions(evictLocked))
	}
	if value(l.keys) != 4 {
		t.Fatalf("keys gauge %v", value(l.keys))
	}
}

// TestMillionKeys floods a limiter with the default MaxKeys with a million
// distinct keys: it never tracks more than MaxKeys, its heap stays within
// what MaxKeys entries take, and a locked key — the promise of the package
// doc — stays locked, because every flooding key stays below the limit.
func TestMillionKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("a million keys")
	}
	c := newClock()
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base := heap()
	l := New(Options{Name: "flood", Now: c.now})
	const maxKeys = 100_000
	for range 10 {
		l.Allow("victim@example.com")
	}
	if ok, _ := l.Peek("victim@example.com"); ok {
		t.Fatal("victim not locked")
	}
	var key []byte
	var full uint64
	for i := range 1_000_000 {
		key = strconv.AppendInt(append(key[:0], "flood-"...), int64(i), 10)
		if ok, _ := l.Allow(string(key)); !ok {
			t.Fatalf("flood key %d refused", i)
		}
		if i%1000 == 0 {
			c.advance(time.Millisecond) // 1 s in all, well within the lock
		}
		if i == 2*maxKeys {
			full = heap() - base
		}
	}
	l.check(t)
	after := heap() - base
	n := l.Len()
	t.Logf("%d keys tracked; heap %d B at 200 k keys inserted (%.0f B/key), %d B at 1 M", n, full, float64(full)/float64(n), after)
	if n > maxKeys || n < maxKeys*9/10 || value(l.keys) != float64(n) {
		t.Fatalf("Len %d, gauge %v; want ≤ %d and near it", n, value(l.keys), maxKeys)
	}
	if after > maxKeys*120 || after > full+full/4 {
		t.Fatalf("heap grew to %d B for %d keys (%d B when first full)", after, n, full)
	}
	if ok, retry := l.Peek("victim@example.com"); ok || retry < 14*time.Minute {
		t.Fatalf("after the flood the victim is unlocked: %v, %v", ok, retry)
	}
	runtime.KeepAlive(l)
}

func TestMetricsShared(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	New(Options{Name: "login_email", Metrics: m})
	New(Options{Name: "register_ip", Metrics: m})
	NewConnLimiter(ConnOptions{Name: "conn_ip", Metrics: m})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, mf := range families {
		for _, s := range mf.GetMetric() {
			got[mf.GetName()]++
			if s.GetCounter().GetValue() != 0 || s.GetGauge().GetValue() != 0 {
				t.Fatalf("%s starts at non-zero", mf.GetName())
			}
		}
	}
	want := map[string]int{
		"fleetscope_ratelimit_allowed_total":   2,
		"fleetscope_ratelimit_limited_total":   3,
		"fleetscope_ratelimit_keys":            3,
		"fleetscope_ratelimit_evictions_total": 6,
		"fleetscope_ratelimit_connections":     1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("series per metric %v, want %v", got, want)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a second limiter named login_email did not panic")
		}
	}()
	New(Options{Name: "login_email", Metrics: m})
}

// TestConcurrent hammers one limiter from several goroutines (run it with
// -race). With room for every key and a still clock, no key is allowed
// more than Limit hits whatever the interleaving; a second, small limiter
// evicts all along.
func TestConcurrent(t *testing.T) {
	c := newClock()
	const limit, keys, workers, rounds = 5, 500, 4, 2000
	roomy := New(Options{Name: "roomy", Limit: limit, MaxKeys: 10 * keys, Now: c.now})
	tight := New(Options{Name: "tight", Limit: limit, MaxKeys: keys / 5, Now: c.now})
	var allowed [keys]atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				k := (r*7 + w*13) % keys
				key := "k" + strconv.Itoa(k)
				if ok, _ := roomy.Allow(key); ok {
					allowed[k].Add(1)
				}
				roomy.Peek(key)
				switch r % 4 {
				case 0:
					tight.Allow(key)
				case 1:
					tight.Refund(key)
				case 2:
					tight.Peek(key)
				case 3:
					if r%64 == 3 {
						tight.Reset(key)
					}
					tight.Allow(key)
				}
			}
		}()
	}
	wg.Wait()
	roomy.check(t)
	tight.check(t)
	for k := range allowed {
		if n := allowed[k].Load(); n > limit {
			t.Fatalf("key %d allowed %d times, limit %d", k, n, limit)
		}
	}
	if tight.Len() > keys/5 || float64(tight.Len()) != value(tight.keys) {
		t.Fatalf("tight: Len %d, gauge %v", tight.Len(), value(tight.keys))
	}
}
