package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/bench"
	"github.com/fleetscope/fleetscope/store"
)

// With the engine (behind `fleetscope engine`) stopped, ingest keeps
// answering 200 from its WAL until the backlog limit, then 429; once the
// engine is back the backlog drains and every acknowledged reading is
// there exactly once.
func TestEngineOutage(t *testing.T) {
	engineData := t.TempDir()
	engineAddr := freeAddr(t)
	eng := startChild(t, []string{"FLEETSCOPE_LOG_LEVEL=warn"}, "engine", "--addr", engineAddr, "--data", engineData)
	waitEngine(t, engineAddr)

	addr := freeAddr(t)
	const token = "outage-test-support-8e1d5b3c7a9f2046"
	srv := startChild(t, []string{"FLEETSCOPE_SUPPORT_TOKEN=" + token, "FLEETSCOPE_LOG_LEVEL=error"},
		"serve", "--addr", addr, "--data", t.TempDir(), "--clickhouse", "http://"+engineAddr,
		"--ingest-max-backlog", "512KiB", "--ingest-flush-interval", "100ms", "--rollup=false")
	api := &bench.API{Base: "http://" + addr, Token: token}
	waitReady(t, api, 3*time.Minute)
	ctx := context.Background()
	gws, err := bench.SetupFleet(ctx, api, 4, 30, "outage")
	if err != nil {
		t.Fatalf("%v\n%s", err, srv.log)
	}
	posters := make([]*poster, len(gws))
	for i, gw := range gws {
		posters[i] = &poster{api: &bench.API{Base: api.Base, Token: gw.Key}, system: gw.System, panels: gw.Panels, seq: 1,
			ts0: time.Now().Add(-time.Hour).UnixMilli()}
	}
	var led ledger
	for range 10 {
		for _, p := range posters {
			if !p.postOnce(ctx, &led) {
				t.Fatalf("post before the outage failed\n%s", srv.log)
			}
		}
	}

	eng.kill()
	// The engine is gone: requests still succeed, from the WAL, until the
	// backlog passes 512 KiB (~900 requests of 30 readings); then 429.
	acked, throttled := 0, false
	for i := 0; i < 20000 && !throttled; i++ {
		p := posters[i%len(posters)]
		before := led.throttled
		if p.postOnce(ctx, &led) {
			acked++
		}
		throttled = led.throttled > before
	}
	if !throttled || acked < 100 {
		t.Fatalf("during the outage: %d requests acknowledged, throttled %v (want many, then 429)\n%s", acked, throttled, srv.log)
	}
	t.Logf("outage: %d requests acknowledged from the WAL before 429", acked)
	// The node stays ready — an engine outage is every node's, and ingest
	// and queries go on — and says the engine is down, in /readyz and in
	// fleetscope_store_up.
	waitReadyz(t, api.Base, "down", "full")
	if _, m := get(t, api.Base+"/metrics"); !strings.Contains(m, "fleetscope_store_up 0") || !strings.Contains(m, "fleetscope_ready 1") {
		t.Fatalf("during the outage: fleetscope_store_up/fleetscope_ready not 0/1")
	}

	eng.start()
	waitEngine(t, engineAddr)
	waitReadyz(t, api.Base, "up", "")
	// Every gateway posts on: its pending request is retried until the
	// backlog has drained enough to take it.
	var wg sync.WaitGroup
	load, stop := context.WithTimeout(ctx, 3*time.Second)
	defer stop()
	for _, p := range posters {
		wg.Add(1)
		go func() { defer wg.Done(); p.run(load, &led, 2*time.Minute) }()
	}
	wg.Wait()
	srv.stop() // graceful: the rest of the WAL is flushed
	s, err := store.Open(ctx, store.Config{ClickHouse: "http://" + engineAddr, SkipMigrations: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	led.check(t, s)
}

func waitEngine(t *testing.T, addr string) {
	t.Helper()
	e := &bench.API{Base: "http://" + addr}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if e.Call(context.Background(), "GET", "/ping", nil, nil) == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("engine did not come up")
}

// waitReadyz waits until /readyz answers 200 with the engine's state (and
// the backlog's, unless ""), for up to 15 s: the engine is probed every 2 s.
func waitReadyz(t *testing.T, base, engine, backlog string) {
	t.Helper()
	var body string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var st int
		st, body = get(t, base+"/readyz")
		var r struct {
			Ready  bool              `json:"ready"`
			Checks map[string]string `json:"checks"`
		}
		if st == 200 && json.Unmarshal([]byte(body), &r) == nil && r.Ready && r.Checks["engine"] == engine &&
			(backlog == "" || r.Checks["backlog"] == backlog) {
			return
		}
	}
	t.Fatalf("/readyz never said 200, engine %s, backlog %q: %s", engine, backlog, body)
}
