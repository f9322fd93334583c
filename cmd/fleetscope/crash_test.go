package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/bench"
	"github.com/fleetscope/fleetscope/ingest"
	"github.com/fleetscope/fleetscope/store"
)

// fleetscope is killed with SIGKILL at random moments under load, several
// times, and restarted on the same data directory; at the end every
// reading answered 200 is in ClickHouse exactly once — nothing lost,
// nothing doubled.
func TestCrashUnderLoadLosesAndDoublesNothing(t *testing.T) {
	data := t.TempDir()
	addr := freeAddr(t)
	const token = "crash-test-support-4f9c2a7e1b8d6035"
	srv := startChild(t, []string{"FLEETSCOPE_SUPPORT_TOKEN=" + token, "FLEETSCOPE_LOG_LEVEL=warn"},
		"serve", "--addr", addr, "--data", data, "--ingest-flush-interval", "200ms", "--rollup=false")
	api := &bench.API{Base: "http://" + addr, Token: token}
	waitReady(t, api, 3*time.Minute)
	ctx := context.Background()
	gws, err := bench.SetupFleet(ctx, api, 12, 30, "crash")
	if err != nil {
		t.Fatalf("%v\n%s", err, srv.log)
	}
	var led ledger
	load, stopLoad := context.WithCancel(ctx)
	ts0 := time.Now().Add(-2 * time.Hour).UnixMilli()
	var wg sync.WaitGroup
	for _, gw := range gws {
		p := &poster{api: &bench.API{Base: api.Base, Token: gw.Key}, system: gw.System, panels: gw.Panels, seq: 1, ts0: ts0}
		wg.Add(1)
		go func() { defer wg.Done(); p.run(load, &led, 2*time.Minute) }()
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill schedule seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for range 4 {
		time.Sleep(time.Duration(300+rng.IntN(1700)) * time.Millisecond)
		srv.kill()
		srv.start()
		waitReady(t, api, 3*time.Minute)
	}
	time.Sleep(time.Second)
	stopLoad()
	wg.Wait()
	srv.stop() // graceful: what the WAL holds is flushed
	s, err := store.Open(ctx, store.Config{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if led.readings == 0 {
		t.Fatal("nothing was acknowledged")
	}
	led.check(t, s)
}

// Gateways behave as firmware does when things go wrong, against two nodes
// on one engine while node A is killed with SIGKILL again and again: a
// request that fails is retried, unchanged, on the other node (a load
// balancer's retry) — so a request node A made durable before it died is
// stored by node B as well — and now and then a gateway sends its last
// readings again under a new seq (a gateway that lost its acknowledgement
// in a reboot). Every acknowledged reading must be in ClickHouse exactly
// once, as every answer counts it.
func TestCrashUnderLoadWithResendsAndASecondNode(t *testing.T) {
	n := startTwoNodes(t, 12, 30, "crash2", "--rollup=false")
	nodes := [2]string{n.apiA.Base, n.apiB.Base}
	ts0 := time.Now().Add(-2 * time.Hour).UnixMilli()
	posters := make([]*resendPoster, len(n.gws))
	load, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, gw := range n.gws {
		posters[i] = &resendPoster{key: gw.Key, system: gw.System, panels: gw.Panels, seq: 1, ts0: ts0, nodes: nodes,
			rng: rand.New(rand.NewPCG(uint64(i), 7)), acked: map[uint64]bool{}}
		wg.Add(1)
		go func() { defer wg.Done(); posters[i].run(load) }()
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill schedule seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for range 4 {
		time.Sleep(time.Duration(300+rng.IntN(1700)) * time.Millisecond)
		n.a.kill()
		n.a.start()
		waitReady(t, n.apiA, 3*time.Minute)
	}
	time.Sleep(time.Second)
	stopLoad()
	wg.Wait()
	n.a.stop() // graceful: what the WALs hold is flushed
	n.b.stop()
	s, err := store.Open(context.Background(), store.Config{ClickHouse: "http://" + n.engineAddr, SkipMigrations: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var want resendLedger
	var resent, retried, pending uint64
	for _, p := range posters {
		p.addTo(&want)
		resent += p.resent
		retried += p.retried
		if p.pending {
			pending++
		}
	}
	if pending > 0 {
		t.Fatalf("%d gateways still have a request unanswered", pending)
	}
	var got resendLedger
	var rows uint64
	if err := s.QueryRow(context.Background(), `SELECT count(), sum(pin), toUInt64(sum(toUnixTimestamp64Milli(ts))), sum(system_id),
		(SELECT count() FROM readings) FROM readings FINAL`).Scan(&got.readings, &got.pin, &got.ts, &got.system, &rows); err != nil {
		t.Fatal(err)
	}
	if got != want || want.readings == 0 {
		t.Fatalf("ClickHouse holds %+v; acknowledged %+v", got, want)
	}
	t.Logf("%d acknowledged readings stored exactly once (%d rows before merges; %d requests resent under a new seq, %d attempts retried on the other node)",
		got.readings, rows, resent, retried)
}

// resendLedger is a set of readings: how many, and sums of their values.
type resendLedger struct {
	readings, pin, ts, system uint64
}

// resendPoster is one gateway of TestCrashUnderLoadWithResendsAndASecondNode:
// interval k's body holds a reading of every panel at ts0 + k s.
type resendPoster struct {
	key     string
	system  uint32
	panels  int
	seq     uint64
	next    uint64 // the next interval never sent
	ts0     int64
	nodes   [2]string
	rng     *rand.Rand
	acked   map[uint64]bool // intervals acknowledged
	pending bool
	resent  uint64
	retried uint64
}

func (p *resendPoster) pin(k uint64, panel int) int { return 100 + int(k%400) + panel }

func (p *resendPoster) body(k uint64) []byte {
	rs := make([]ingest.Reading, p.panels)
	for i := range rs {
		rs[i] = ingest.Reading{Panel: fmt.Appendf(nil, "P%d", i), TS: p.ts0 + int64(k)*1000, Vin: 38, Iin: 3, Pin: float64(p.pin(k, i)), Wh: 1}
	}
	return ingest.AppendJSON(nil, p.seq, rs)
}

// send posts interval k under the current seq until it is acknowledged,
// first to node first, then alternating (false: ctx ended first).
func (p *resendPoster) send(ctx context.Context, k uint64, first int) bool {
	body := p.body(k)
	for node := first; ; node = 1 - node {
		a, err := postIngestErr(&bench.API{Base: p.nodes[node], Token: p.key}, body)
		if err == nil && a.Status == 200 {
			p.acked[k] = true
			p.seq++
			return true
		}
		p.retried++
		if ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *resendPoster) run(ctx context.Context) {
	for ctx.Err() == nil {
		k := p.next
		if p.next > 0 && p.rng.IntN(5) == 0 {
			k = p.next - 1 // the last readings again, under a new seq
			p.resent++
		} else {
			p.next++
		}
		if !p.send(ctx, k, p.rng.IntN(10)/9) { // node B first one time in ten
			// Stopping: the request in flight is settled on either node.
			deadline := time.Now().Add(2 * time.Minute)
			settle, cancel := context.WithDeadline(context.Background(), deadline)
			p.pending = !p.send(settle, k, 1)
			cancel()
			return
		}
	}
}

func (p *resendPoster) addTo(l *resendLedger) {
	for k := range p.acked {
		for i := range p.panels {
			l.readings++
			l.pin += uint64(p.pin(k, i) * 10)
			l.ts += uint64(p.ts0 + int64(k)*1000)
			l.system += uint64(p.system)
		}
	}
}
