package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/bench"
	"github.com/fleetscope/fleetscope/ingest"
	"github.com/fleetscope/fleetscope/store"
)

// twoNodes is a `fleetscope engine` and two `fleetscope serve` nodes on it,
// with a fleet created through the first; the second knows its gateways.
type twoNodes struct {
	engine     *child
	engineAddr string
	a, b       *child
	apiA, apiB *bench.API
	gws        []bench.Gateway
}

func startTwoNodes(t *testing.T, systems, panels int, prefix string, extra ...string) *twoNodes {
	t.Helper()
	n := &twoNodes{engineAddr: freeAddr(t)}
	n.engine = startChild(t, []string{"FLEETSCOPE_LOG_LEVEL=warn"}, "engine", "--addr", n.engineAddr, "--data", t.TempDir())
	waitEngine(t, n.engineAddr)
	const token = "two-nodes-support-token"
	env := []string{"FLEETSCOPE_SUPPORT_TOKEN=" + token, "FLEETSCOPE_LOG_LEVEL=warn"}
	addrA, addrB := freeAddr(t), freeAddr(t)
	args := func(addr string, rollup bool) []string {
		return append([]string{"serve", "--addr", addr, "--data", t.TempDir(), "--clickhouse", "http://" + n.engineAddr,
			"--ingest-flush-interval", "100ms", fmt.Sprintf("--rollup=%v", rollup)}, extra...)
	}
	n.a = startChild(t, env, args(addrA, true)...)
	n.b = startChild(t, env, args(addrB, false)...)
	n.apiA, n.apiB = &bench.API{Base: "http://" + addrA, Token: token}, &bench.API{Base: "http://" + addrB, Token: token}
	waitReady(t, n.apiA, 3*time.Minute)
	waitReady(t, n.apiB, 3*time.Minute)
	var err error
	if n.gws, err = bench.SetupFleet(context.Background(), n.apiA, systems, panels, prefix); err != nil {
		t.Fatalf("%v\n%s", err, n.a.log)
	}
	// The second node learns the gateways from the access log.
	deadline := time.Now().Add(30 * time.Second)
	for _, gw := range n.gws {
		for {
			var sys struct{}
			if n.apiB.Call(context.Background(), "GET", fmt.Sprintf("/v1/systems/%d", gw.System), nil, &sys) == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node B does not know system %d", gw.System)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return n
}

// ingestAnswer is what POST /v1/ingest answers, with its status.
type ingestAnswer struct {
	Status    int
	Accepted  int  `json:"accepted"`
	Rejected  int  `json:"rejected"`
	Duplicate bool `json:"duplicate"`
	Errors    []struct {
		Index int    `json:"index"`
		Error string `json:"error"`
	} `json:"errors"`
	Error struct {
		Code string `json:"code"`
	} `json:"error"`
	RetryAfter string
}

// thirtyReadings are one interval of 30 panels P0…P29 at ts: panel i
// produced 1 + i Wh at 100 + i W.
func thirtyReadings(seq uint64, ts int64) []byte {
	rs := make([]ingest.Reading, 30)
	for i := range rs {
		rs[i] = ingest.Reading{Panel: fmt.Appendf(nil, "P%d", i), TS: ts, Vin: 38, Iin: 3, Pin: float64(100 + i), Vout: 37, Temp: 40, RSSI: 180, Wh: float64(1 + i)}
	}
	return ingest.AppendJSON(nil, seq, rs)
}

// thirtyWh is the energy of thirtyReadings, once: 1 + 2 + … + 30 Wh.
const thirtyWh = 30 * 31 / 2

// The same 30 readings posted under seq 1 and seq 2 to one node and under
// seq 1 again to a second node on the same engine — a gateway resending
// after a reboot, a retry behind a load balancer — are stored three times,
// and every answer counts each once: raw telemetry, every rollup step,
// per-panel energy, fleet energy (daily rollups and cumulative energy), and
// the live energy today of the node that took two of them.
func TestSameReadingsUnderTwoSeqsAndTwoNodesCountOnce(t *testing.T) {
	n := startTwoNodes(t, 1, 30, "dedup")
	gw, ctx := n.gws[0], context.Background()
	now := time.Now().UTC()
	yesterday := now.Truncate(24 * time.Hour).Add(-12 * time.Hour) // noon yesterday: a closed day
	today := now.Add(-30 * time.Minute).Truncate(time.Minute)
	if today.Before(now.Truncate(24 * time.Hour)) {
		today = now.Truncate(24 * time.Hour) // shortly after midnight: today's first minute
	}
	s, err := store.Open(ctx, store.Config{ClickHouse: "http://" + n.engineAddr, SkipMigrations: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// No merge collapses the copies: every answer must count each reading
	// once while the table holds it three times.
	if err := s.Exec(ctx, "SYSTEM STOP MERGES readings"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		api  *bench.API
		seq  uint64
		at   time.Time
		what string
	}{
		{n.apiA, 1, yesterday, "first"}, {n.apiA, 2, yesterday, "resent under a new seq"}, {n.apiB, 1, yesterday, "retried through node B"},
		{n.apiA, 3, today, "first"}, {n.apiA, 4, today, "resent under a new seq"}, {n.apiB, 3, today, "retried through node B"},
	} {
		a := postIngest(t, &bench.API{Base: p.api.Base, Token: gw.Key}, thirtyReadings(p.seq, p.at.UnixMilli()))
		if a.Status != 200 || a.Accepted != 30 || a.Duplicate {
			t.Fatalf("%s (seq %d at %s): %+v", p.what, p.seq, p.at, a)
		}
	}
	// Every reading is stored at least twice: once by each node (the two
	// copies node A took collapse when they share an insert, since the
	// engine applies ReplacingMergeTree's merge to each inserted block).
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		var rows, distinct, least uint64
		if err := s.QueryRow(ctx, "SELECT sum(c), count(), min(c) FROM (SELECT count() AS c FROM readings GROUP BY system_id, panel, ts)").
			Scan(&rows, &distinct, &least); err != nil {
			t.Fatal(err)
		}
		if distinct == 60 && least >= 2 {
			t.Logf("%d rows hold the 60 readings", rows)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows hold %d readings, the least stored %d times; want 60 readings, each at least twice", rows, distinct, least)
		}
	}

	sys := fmt.Sprint(gw.System)
	type point struct {
		EnergyWh float64 `json:"energy_wh"`
		Samples  uint64  `json:"samples"`
		Panels   uint64  `json:"panels"`
	}
	type telemetry struct {
		Points []point `json:"points"`
	}
	day := func(t0 time.Time) (string, string) {
		d := t0.Truncate(24 * time.Hour)
		return d.Format(time.RFC3339), d.Add(24 * time.Hour).Format(time.RFC3339)
	}
	check := func(api *bench.API) []string {
		var wrong []string
		for _, c := range []struct {
			at   time.Time
			step string
		}{{yesterday, "raw"}, {yesterday, "1m"}, {yesterday, "15m"}, {yesterday, "1h"}, {yesterday, "1d"}, {today, "raw"}, {today, "1m"}} {
			from, to := day(c.at)
			if c.step == "raw" || c.step == "1m" {
				from, to = c.at.Add(-time.Hour).Format(time.RFC3339), c.at.Add(time.Hour).Format(time.RFC3339)
			}
			var tm telemetry
			q := url.Values{"from": {from}, "to": {to}, "step": {c.step}}
			if err := api.Call(ctx, "GET", "/v1/systems/"+sys+"/telemetry?"+q.Encode(), nil, &tm); err != nil {
				t.Fatal(err)
			}
			var wh float64
			var samples uint64
			for _, p := range tm.Points {
				wh += p.EnergyWh
				samples += max(p.Samples, p.Panels)
			}
			if wh != thirtyWh || samples != 30 {
				wrong = append(wrong, fmt.Sprintf("telemetry %s %s: %.0f Wh in %d samples", c.at.Format(time.DateOnly), c.step, wh, samples))
			}
		}
		var pd struct {
			Items []struct {
				EnergyWh float64 `json:"energy_wh"`
				Samples  uint64  `json:"samples"`
			} `json:"items"`
		}
		if err := api.Call(ctx, "GET", "/v1/systems/"+sys+"/panels?date="+yesterday.Format(time.DateOnly), nil, &pd); err != nil {
			t.Fatal(err)
		}
		var wh float64
		for _, it := range pd.Items {
			wh += it.EnergyWh
			if it.Samples != 1 {
				wrong = append(wrong, fmt.Sprintf("panel energy: a panel with %d samples", it.Samples))
				break
			}
		}
		if len(pd.Items) != 30 || wh != thirtyWh {
			wrong = append(wrong, fmt.Sprintf("panel energy: %d panels, %.0f Wh", len(pd.Items), wh))
		}
		from, to := day(yesterday)
		var fe struct {
			Items []struct {
				EnergyWh float64 `json:"energy_wh"`
			} `json:"items"`
		}
		if err := api.Call(ctx, "GET", "/v1/fleet/energy?"+url.Values{"from": {from}, "to": {to}}.Encode(), nil, &fe); err != nil {
			t.Fatal(err)
		}
		if len(fe.Items) != 1 || fe.Items[0].EnergyWh != thirtyWh {
			wrong = append(wrong, fmt.Sprintf("fleet energy of yesterday: %+v", fe.Items))
		}
		return wrong
	}
	// Rollups follow in the background (a pass every 10 s, two minutes
	// behind the clock, the late day recomputed): poll until every answer
	// is right, or report what is not.
	var wrong []string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		if wrong = check(n.apiA); len(wrong) == 0 {
			break
		}
	}
	if len(wrong) > 0 {
		t.Fatalf("answers count readings more than once:\n%s", strings.Join(wrong, "\n"))
	}
	if wrong := check(n.apiB); len(wrong) > 0 {
		t.Fatalf("node B's answers:\n%s", strings.Join(wrong, "\n"))
	}
	// Live state: node A took today's readings twice (seqs 3 and 4).
	var detail struct {
		EnergyTodayWh float64 `json:"energy_today_wh"`
		PowerW        float64 `json:"power_w"`
		Panels        int     `json:"panels"`
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if err := n.apiA.Call(ctx, "GET", "/v1/systems/"+sys, nil, &detail); err != nil {
			t.Fatal(err)
		}
		if detail.EnergyTodayWh == thirtyWh || time.Now().After(deadline) {
			break
		}
	}
	if detail.EnergyTodayWh != thirtyWh || detail.Panels != 30 {
		t.Fatalf("node A's live state: %+v, want %d Wh today of 30 panels", detail, thirtyWh)
	}
}

func postIngest(t *testing.T, api *bench.API, body []byte) ingestAnswer {
	t.Helper()
	a, err := postIngestErr(api, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// postIngestErr posts an ingest body with the gateway key api.Token and
// decodes the answer, whatever its status.
func postIngestErr(api *bench.API, body []byte) (ingestAnswer, error) {
	req, err := http.NewRequest("POST", api.Base+"/v1/ingest", bytes.NewReader(body))
	if err != nil {
		return ingestAnswer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+api.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ingestAnswer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return ingestAnswer{}, err
	}
	var a ingestAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, fmt.Errorf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	a.Status, a.RetryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	return a, nil
}
