package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/klauspost/compress/zstd"
	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/ingest"
	"github.com/fleetscope/fleetscope/internal/graceful"
	"github.com/fleetscope/fleetscope/internal/storetest"
	"github.com/fleetscope/fleetscope/store"
)

// keys is a small in-memory GatewayAuth: the real one (hashed keys) lives in
// package acl and is tested there.
type keys map[string]ingest.Gateway

func (k keys) Gateway(key []byte) (ingest.Gateway, bool) {
	g, ok := k[string(key)]
	return g, ok
}

var testKeys = keys{
	"key-gw1":  {ID: 1, System: 10, Monitored: true},
	"key-gw2":  {ID: 2, System: 20, Monitored: true},
	"key-fire": {ID: 3, System: 30, Monitored: false},
}

// node is one running ingest service behind a real HTTP listener.
type node struct {
	svc  *ingest.Service
	url  string
	srv  *fasthttp.Server
	ln   *graceful.Listener
	dir  string
	opts ingest.Options
}

func startNode(t *testing.T, s *store.Store, dir string, tweak func(*ingest.Options)) *node {
	t.Helper()
	opts := ingest.Options{
		Dir: dir, Store: s, Gateways: testKeys,
		FlushInterval: 50 * time.Millisecond, Logger: storetest.Logger(),
	}
	if tweak != nil {
		tweak(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svc, err := ingest.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := graceful.Listen(raw)
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		if string(c.Path()) == "/v1/ingest" {
			svc.Handle(c)
			return
		}
		c.SetStatusCode(404)
	}, MaxRequestBodySize: 64 << 20}
	go srv.Serve(ln)
	n := &node{svc: svc, url: "http://" + ln.Addr().String() + "/v1/ingest", srv: srv, ln: ln, dir: dir, opts: opts}
	t.Cleanup(func() { n.stop(t) })
	return n
}

func (n *node) stop(t *testing.T) {
	if n.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := graceful.Shutdown(ctx, n.srv, n.ln); err != nil {
		t.Errorf("http shutdown: %v", err)
	}
	n.srv = nil
	if err := n.svc.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

type answer struct {
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

func post(t *testing.T, url, key string, body []byte, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	a.Status = resp.StatusCode
	a.RetryAfter = resp.Header.Get("Retry-After")
	return a
}

// body builds a request of n readings at minute steps from ts0, values
// derived from i so the stored sums are known.
func body(seq uint64, ts0 int64, n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"seq": %d, "readings": [`, seq)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"panel": "A%d", "ts": %d, "vin": 38.25, "iin": 9.1, "pin": %d.5, "vout": 37.9, "temp": 41.5, "rssi": 180, "wh": 5.8}`,
			i+1, ts0, 300+i)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

func now() int64 { return time.Now().Add(-3*time.Hour).UnixMilli() / 60000 * 60000 }

func flushed(t *testing.T, svc *ingest.Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := svc.WaitFlushed(ctx); err != nil {
		t.Fatal(err)
	}
}

type sums struct {
	N, Pin, Vin, Wh, Temp uint64
}

func readingSums(t *testing.T, s *store.Store, system uint32) sums {
	t.Helper()
	var out sums
	if err := s.QueryRow(context.Background(),
		"SELECT count(), sum(pin), sum(vin), sum(wh), sum(toUInt64(temp)) FROM readings WHERE system_id = {s:UInt32}",
		clickhouseNamed("s", system)).Scan(&out.N, &out.Pin, &out.Vin, &out.Wh, &out.Temp); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReadingsLandExactlyOnceWithTheirValues(t *testing.T) {
	s := storetest.Open(t)
	n := startNode(t, s, t.TempDir(), nil)
	ts := now()
	const requests, per = 20, 30
	var want sums
	for seq := uint64(1); seq <= requests; seq++ {
		a := post(t, n.url, "key-gw1", body(seq, ts+int64(seq)*60_000, per))
		if a.Status != 200 || a.Accepted != per || a.Rejected != 0 || a.Duplicate {
			t.Fatalf("seq %d: %+v", seq, a)
		}
		for i := range per {
			want.N++
			want.Pin += uint64((300+i)*10 + 5) // deciwatts
			want.Vin += 3825                   // centivolts
			want.Wh += 5800                    // mWh
			want.Temp += 415                   // deci-°C
		}
	}
	flushed(t, n.svc)
	if got := readingSums(t, s, 10); got != want {
		t.Fatalf("stored %+v, want %+v", got, want)
	}
	live, ok := n.svc.Live().Live(10)
	if !ok || live.Panels != per || live.LastSeen != ts+requests*60_000 {
		t.Fatalf("live state %+v", live)
	}
	var wantPower int64
	for i := range per {
		wantPower += int64((300+i)*10 + 5)
	}
	if live.PowerDW != wantPower {
		t.Fatalf("power now %d dW, want %d", live.PowerDW, wantPower)
	}
}

func TestRepeatedSeqIsADuplicateAlsoAfterRestart(t *testing.T) {
	s := storetest.Open(t)
	dir := t.TempDir()
	n := startNode(t, s, dir, nil)
	ts := now()
	if a := post(t, n.url, "key-gw1", body(7, ts, 30)); a.Status != 200 || a.Accepted != 30 {
		t.Fatalf("first: %+v", a)
	}
	if a := post(t, n.url, "key-gw1", body(7, ts, 30)); a.Status != 200 || !a.Duplicate || a.Accepted != 0 {
		t.Fatalf("repeat: %+v", a)
	}
	// The same seq from another gateway is its own request.
	if a := post(t, n.url, "key-gw2", body(7, ts, 30)); a.Status != 200 || a.Duplicate {
		t.Fatalf("other gateway: %+v", a)
	}
	flushed(t, n.svc)
	n.stop(t)

	n = startNode(t, s, dir, nil)
	if a := post(t, n.url, "key-gw1", body(7, ts, 30)); a.Status != 200 || !a.Duplicate {
		t.Fatalf("after restart: %+v", a)
	}
	if a := post(t, n.url, "key-gw1", body(8, ts+60_000, 30)); a.Status != 200 || a.Duplicate || a.Accepted != 30 {
		t.Fatalf("next seq after restart: %+v", a)
	}
	flushed(t, n.svc)
	if got := readingSums(t, s, 10); got.N != 60 {
		t.Fatalf("stored %d readings, want 60", got.N)
	}
}

// The WAL is wiped of nothing on restart, but its records were truncated
// after they were stored: the seq window then comes from ClickHouse.
func TestDuplicateAfterWALTruncatedAndRestart(t *testing.T) {
	s := storetest.Open(t)
	dir := t.TempDir()
	n := startNode(t, s, dir, nil)
	ts := now()
	for seq := uint64(1); seq <= 5; seq++ {
		post(t, n.url, "key-gw2", body(seq, ts+int64(seq)*60_000, 10))
	}
	flushed(t, n.svc)
	n.stop(t)
	// A fresh WAL directory: only ClickHouse remembers.
	n = startNode(t, s, t.TempDir(), nil)
	for seq := uint64(1); seq <= 5; seq++ {
		if a := post(t, n.url, "key-gw2", body(seq, ts+int64(seq)*60_000, 10)); !a.Duplicate {
			t.Fatalf("seq %d not a duplicate with the WAL gone: %+v", seq, a)
		}
	}
}

func TestPartialRejection(t *testing.T) {
	s := storetest.Open(t)
	n := startNode(t, s, t.TempDir(), nil)
	ts := now()
	req := fmt.Sprintf(`{"seq": 1, "readings": [
		{"panel": "A1", "ts": %d, "pin": 100, "wh": 1},
		{"panel": "A2", "ts": %d, "pin": 100, "wh": 1},
		{"panel": "bad label!", "ts": %d, "pin": 100, "wh": 1},
		{"panel": "A3", "ts": %d, "pin": 99999, "wh": 1},
		{"panel": "A4", "ts": %d, "pin": 100, "wh": 1}
	]}`, ts, ts+int64(4*time.Hour/time.Millisecond), ts, ts, ts-int64(400*24*time.Hour/time.Millisecond))
	a := post(t, n.url, "key-gw1", []byte(req))
	if a.Status != 200 || a.Accepted != 1 || a.Rejected != 4 {
		t.Fatalf("answer %+v", a)
	}
	var idx []int
	for _, e := range a.Errors {
		idx = append(idx, e.Index)
		if e.Error == "" {
			t.Errorf("index %d has no reason", e.Index)
		}
	}
	if fmt.Sprint(idx) != "[1 2 3 4]" {
		t.Fatalf("rejected indexes %v (%+v)", idx, a.Errors)
	}
	flushed(t, n.svc)
	if got := readingSums(t, s, 10); got.N != 1 {
		t.Fatalf("stored %d, want only the valid reading", got.N)
	}
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func zst(b []byte) []byte {
	enc, _ := zstd.NewWriter(nil)
	return enc.EncodeAll(b, nil)
}

func TestEncodingsAndNDJSON(t *testing.T) {
	s := storetest.Open(t)
	n := startNode(t, s, t.TempDir(), nil)
	ts := now()
	nd := fmt.Sprintf("{\"seq\": 3}\n{\"panel\": \"B1\", \"ts\": %d, \"pin\": 50, \"wh\": 2}\n{\"panel\": \"B2\", \"ts\": %d, \"pin\": 60, \"wh\": 2}\n", ts, ts)
	cases := []struct {
		name    string
		body    []byte
		headers []string
		want    int
	}{
		{"gzip JSON", gz(body(1, ts, 5)), []string{"Content-Encoding", "gzip"}, 5},
		{"zstd JSON", zst(body(2, ts+60_000, 5)), []string{"Content-Encoding", "zstd"}, 5},
		{"NDJSON", []byte(nd), []string{"Content-Type", "application/x-ndjson"}, 2},
		{"gzip NDJSON", gz([]byte(strings.Replace(nd, `"seq": 3`, `"seq": 4`, 1))), []string{"Content-Type", "application/x-ndjson", "Content-Encoding", "gzip"}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if a := post(t, n.url, "key-gw1", c.body, c.headers...); a.Status != 200 || a.Accepted != c.want {
				t.Fatalf("%+v", a)
			}
		})
	}
}

func TestErrorPaths(t *testing.T) {
	s := storetest.Open(t)
	n := startNode(t, s, t.TempDir(), func(o *ingest.Options) { o.MaxBodySize = 64 << 10; o.MaxReadings = 100 })
	ts := now()
	big := body(9, ts, 2000) // > 64 KiB
	cases := []struct {
		name    string
		key     string
		body    []byte
		headers []string
		status  int
		code    string
	}{
		{"no key is 401", "", body(1, ts, 1), nil, 401, "unauthorized"},
		{"unknown key is 401", "nope", body(1, ts, 1), nil, 401, "unauthorized"},
		{"unmonitored system is 403", "key-fire", body(1, ts, 1), nil, 403, "unmonitored"},
		{"body over the limit is 413", "key-gw1", big, nil, 413, "too_large"},
		{"too many readings is 413", "key-gw1", body(2, ts, 101), nil, 413, "too_large"},
		{"decompressed body over the limit is 413", "key-gw1", gz(big), []string{"Content-Encoding", "gzip"}, 413, "too_large"},
		{"malformed JSON is 400", "key-gw1", []byte(`{"seq": 1, "readings": [`), nil, 400, "malformed"},
		{"missing seq is 400", "key-gw1", []byte(`{"readings": []}`), nil, 400, "malformed"},
		{"corrupt gzip is 400", "key-gw1", []byte("not gzip"), []string{"Content-Encoding", "gzip"}, 400, "malformed"},
		{"unknown encoding is 415", "key-gw1", body(3, ts, 1), []string{"Content-Encoding", "br"}, 415, "unsupported_encoding"},
		{"unknown content type is 415", "key-gw1", body(3, ts, 1), []string{"Content-Type", "text/csv"}, 415, "unsupported_media_type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := post(t, n.url, c.key, c.body, c.headers...)
			if a.Status != c.status || a.Error.Code != c.code {
				t.Fatalf("got %d %q, want %d %q", a.Status, a.Error.Code, c.status, c.code)
			}
		})
	}
	flushed(t, n.svc)
	if got := readingSums(t, s, 10); got.N != 0 {
		t.Fatalf("rejected requests stored %d readings", got.N)
	}
}

// Past the backlog limit ingest answers 429 with Retry-After and stores
// nothing of the refused request.
func TestBackpressureAnswers429(t *testing.T) {
	s := storetest.Open(t)
	// Nothing is flushed for an hour: the first request's record stays in
	// the backlog, which the 1-byte limit then exceeds.
	hold := func(o *ingest.Options) { o.MaxBacklog = 1; o.FlushInterval = time.Hour; o.BatchRows = 1 << 20 }
	n := startNode(t, s, t.TempDir(), hold)
	if a := post(t, n.url, "key-gw1", body(1, now(), 3)); a.Status != 200 {
		t.Fatalf("first request: %+v", a)
	}
	a := post(t, n.url, "key-gw1", body(2, now()+60_000, 3))
	if a.Status != 429 || a.RetryAfter == "" || a.Error.Code != "overloaded" {
		t.Fatalf("over the backlog: %+v", a)
	}
	// Shutdown flushes the backlog; the refused seq was not remembered, so
	// its retry is stored.
	n.stop(t)
	n = startNode(t, s, n.dir, nil)
	if a := post(t, n.url, "key-gw1", body(2, now()+60_000, 3)); a.Status != 200 || a.Duplicate || a.Accepted != 3 {
		t.Fatalf("retry: %+v", a)
	}
	flushed(t, n.svc)
	if got := readingSums(t, s, 10); got.N != 6 {
		t.Fatalf("stored %d readings, want 6", got.N)
	}
}

// Concurrent posts of one seq: exactly one is stored.
func TestConcurrentSameSeqStoresOnce(t *testing.T) {
	s := storetest.Open(t)
	n := startNode(t, s, t.TempDir(), nil)
	ts := now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				a := post(t, n.url, "key-gw2", body(42, ts, 30))
				if a.Status == 429 {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if a.Status != 200 {
					t.Errorf("%+v", a)
				}
				return
			}
		}()
	}
	wg.Wait()
	flushed(t, n.svc)
	if got := readingSums(t, s, 20); got.N != 30 {
		t.Fatalf("stored %d readings, want 30", got.N)
	}
}

func clickhouseNamed(name string, v uint32) any {
	return clickhouse.Named(name, fmt.Sprint(v))
}

// A seq is a promise that the body is the same (DESIGN §5): the same seq
// with other readings answers 409 seq_reused and stores nothing — also
// after a restart, and with the WAL gone, when only ClickHouse remembers —
// while the same body again, however compressed, is a duplicate.
func TestSeqReusedWithOtherReadingsIs409(t *testing.T) {
	s := storetest.Open(t)
	dir := t.TempDir()
	n := startNode(t, s, dir, nil)
	ts := now()
	first, other := body(7, ts, 30), body(7, ts+60_000, 30)
	if a := post(t, n.url, "key-gw1", first); a.Status != 200 || a.Accepted != 30 {
		t.Fatalf("first: %+v", a)
	}
	check := func(when string) {
		t.Helper()
		if a := post(t, n.url, "key-gw1", other); a.Status != 409 || a.Error.Code != "seq_reused" {
			t.Fatalf("%s: other readings under seq 7: %+v", when, a)
		}
		if a := post(t, n.url, "key-gw1", gz(first), "Content-Encoding", "gzip"); a.Status != 200 || !a.Duplicate || a.Accepted != 0 {
			t.Fatalf("%s: the same body again: %+v", when, a)
		}
	}
	check("at once")
	flushed(t, n.svc)
	n.stop(t)
	n = startNode(t, s, dir, nil)
	check("after a restart")
	flushed(t, n.svc)
	n.stop(t)
	n = startNode(t, s, t.TempDir(), nil)
	check("with the WAL gone")
	flushed(t, n.svc)
	if got := readingSums(t, s, 10); got.N != 30 {
		t.Fatalf("stored %d readings, want the first request's 30", got.N)
	}
}

// A gateway whose counter starts again from 1 (a reboot, a firmware
// update) is not refused: seqs it used long ago are not remembered, and
// its new requests are stored.
func TestCounterResetIsNotADuplicate(t *testing.T) {
	s := storetest.Open(t)
	n := startNode(t, s, t.TempDir(), nil)
	ts := now() - 3_600_000
	for seq := uint64(1); seq <= ingest.SeqWindow+4; seq++ {
		if a := post(t, n.url, "key-gw2", body(seq, ts+int64(seq)*60_000, 3)); a.Status != 200 || a.Accepted != 3 {
			t.Fatalf("seq %d: %+v", seq, a)
		}
	}
	later := ts + 3_600_000
	for seq := uint64(1); seq <= 3; seq++ {
		if a := post(t, n.url, "key-gw2", body(seq, later+int64(seq)*60_000, 3)); a.Status != 200 || a.Duplicate || a.Accepted != 3 {
			t.Fatalf("after the reset, seq %d: %+v", seq, a)
		}
	}
	flushed(t, n.svc)
	if got := readingSums(t, s, 20); got.N != 3*(ingest.SeqWindow+4)+9 {
		t.Fatalf("stored %d readings, want %d", got.N, 3*(ingest.SeqWindow+4)+9)
	}
}

// labelled builds a request of readings at ts with the given panel labels.
func labelled(seq uint64, ts int64, labels []string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"seq": %d, "readings": [`, seq)
	for i, l := range labels {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"panel": %q, "ts": %d, "pin": 3, "wh": 1}`, l, ts)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

func labels(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// A system has at most MaxPanels panel labels: readings of new labels
// beyond it are rejected one by one (too_many_panels) and not stored, and
// power now and the panel count stay those of the panels admitted — issue
// 14 took a 14-panel system to 6 015 panels with two posts of 3 000 labels.
func TestPanelCap(t *testing.T) {
	s := storetest.Open(t)
	n := startNode(t, s, t.TempDir(), nil) // the default cap, 4096
	ts := now()
	if a := post(t, n.url, "key-gw1", labelled(1, ts, labels("A", 1, 14))); a.Status != 200 || a.Accepted != 14 {
		t.Fatalf("14 panels: %+v", a)
	}
	if a := post(t, n.url, "key-gw1", labelled(2, ts+60_000, labels("X", 1, 3000))); a.Status != 200 || a.Accepted != 3000 {
		t.Fatalf("3000 new labels: %+v", a)
	}
	// Known labels first, then new ones: 1082 places are left.
	second := append(labels("A", 1, 14), labels("Y", 1, 3000)...)
	a := post(t, n.url, "key-gw1", labelled(3, ts+120_000, second))
	if a.Status != 200 || a.Accepted != 14+1082 || a.Rejected != 3000-1082 {
		t.Fatalf("3000 more new labels: accepted %d, rejected %d (%d %s)", a.Accepted, a.Rejected, a.Status, a.Error.Code)
	}
	for i, e := range a.Errors {
		if e.Index != 14+1082+i || !strings.Contains(e.Error, "too_many_panels") {
			t.Fatalf("rejection %d: %+v", i, e)
		}
	}
	flushed(t, n.svc)
	if got := readingSums(t, s, 10); got.N != 14+3000+14+1082 {
		t.Fatalf("stored %d readings, want %d", got.N, 14+3000+14+1082)
	}
	live, _ := n.svc.Live().Live(10)
	if live.Panels != 4096 || live.PowerDW != 4096*30 {
		t.Fatalf("live state %+v, want 4096 panels of 3 W", live)
	}
	// Known labels are still taken; the rejected ones remain refused, also
	// after a restart.
	if a := post(t, n.url, "key-gw1", labelled(4, ts+180_000, []string{"A1", "Y2999", "X7"})); a.Accepted != 2 || a.Rejected != 1 || a.Errors[0].Index != 1 {
		t.Fatalf("mixed: %+v", a)
	}
	flushed(t, n.svc)
	n.stop(t)
	n = startNode(t, s, n.dir, nil)
	if a := post(t, n.url, "key-gw1", labelled(5, ts+240_000, []string{"Y2999", "A2"})); a.Accepted != 1 || a.Rejected != 1 || a.Errors[0].Index != 0 {
		t.Fatalf("after a restart: %+v", a)
	}
	// Every rejection but the cap's is reported as before, in index order.
	mixed := fmt.Sprintf(`{"seq": 6, "readings": [{"panel": "bad label!", "ts": %d, "pin": 1, "wh": 1}, {"panel": "Z1", "ts": %d, "pin": 1, "wh": 1}, {"panel": "A3", "ts": %d, "pin": 1, "wh": 1}, {"panel": "A4", "ts": %d, "pin": 99999, "wh": 1}]}`,
		ts, ts, ts+300_000, ts)
	a = post(t, n.url, "key-gw1", []byte(mixed))
	if a.Accepted != 1 || len(a.Errors) != 3 || a.Errors[0].Index != 0 || a.Errors[1].Index != 1 || a.Errors[2].Index != 3 ||
		!strings.Contains(a.Errors[1].Error, "too_many_panels") {
		t.Fatalf("mixed rejections: %+v", a)
	}
}
