package main

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/bench"
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
