package chhttp_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/internal/storetest"
	"github.com/fleetscope/fleetscope/store"
	"github.com/fleetscope/fleetscope/store/engine"
	"github.com/fleetscope/fleetscope/store/engine/chhttp"
)

// serveHTTP serves the shared engine's ClickHouse HTTP interface on a
// loopback port, as `fleetscope engine` does, and returns its address.
func serveHTTP(t *testing.T, opts chhttp.Options, tweak ...func(*fasthttp.Server)) (string, *engine.Engine) {
	t.Helper()
	e := storetest.Engine(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{
		Handler:            chhttp.Handler(e, opts),
		MaxRequestBodySize: 64 << 20,
		ReadTimeout:        time.Minute,
		IdleTimeout:        time.Minute,
		CloseOnShutdown:    true,
	}
	for _, f := range tweak {
		f(srv)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String(), e
}

type reply struct {
	status int
	body   string
	code   string // X-ClickHouse-Exception-Code
}

func call(t *testing.T, c *http.Client, method, u, body string, hdr map[string]string) reply {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, body: string(b), code: resp.Header.Get("X-ClickHouse-Exception-Code")}
}

func q(sql string) string { return "/?query=" + url.QueryEscape(sql) }

func exec(t *testing.T, e *engine.Engine, sql string) string {
	t.Helper()
	out, err := e.Exec(context.Background(), sql, nil, nil)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return string(out)
}

// testDB creates a database with one table t (x UInt32) for a test.
func testDB(t *testing.T, e *engine.Engine) string {
	t.Helper()
	db := fmt.Sprintf("http_%d", time.Now().UnixNano())
	exec(t, e, "CREATE DATABASE "+db)
	exec(t, e, "CREATE TABLE "+db+".t (x UInt32) ENGINE = MergeTree ORDER BY x")
	t.Cleanup(func() { _, _ = e.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db, nil, nil) })
	return db
}

// The interface answers as a ClickHouse server's does for the requests
// operators' tools send: GET runs read-only statements, POST runs any, the
// body is the statement or an INSERT's data, TabSeparated is the default.
func TestHTTPInterface(t *testing.T) {
	addr, e := serveHTTP(t, chhttp.Options{})
	db := testDB(t, e)
	exec(t, e, "INSERT INTO "+db+".t VALUES (7)")
	base := "http://" + addr
	c := &http.Client{}
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     string // exact body for 200, a substring otherwise
		code                     string
	}{
		{"GET runs a SELECT", "GET", q("SELECT 1"), "", 200, "1\n", ""},
		{"HEAD is answered", "HEAD", q("SELECT 1"), "", 200, "", ""},
		{"TabSeparated by default", "GET", q("SELECT 1, 'a'"), "", 200, "1\ta\n", ""},
		{"FORMAT clause wins", "GET", q("SELECT 1 AS n FORMAT JSONEachRow"), "", 200, "{\"n\":1}\n", ""},
		{"default_format wins", "GET", q("SELECT 1, 'a'") + "&default_format=CSV", "", 200, "1,\"a\"\n", ""},
		{"settings as parameters", "GET", q("SELECT getSetting('max_threads')") + "&max_threads=1", "", 200, "1\n", ""},
		{"GET reads tables", "GET", q("SELECT x FROM " + db + ".t"), "", 200, "7\n", ""},
		{"POST with an empty body runs the query", "POST", q("SELECT 2"), "", 200, "2\n", ""},
		{"POST body is the statement", "POST", "/", "SELECT 3", 200, "3\n", ""},
		{"POST body continues the query", "POST", q("SELECT"), "4", 200, "4\n", ""},
		{"POST INSERT with data in the body", "POST", q("INSERT INTO " + db + ".t FORMAT TSV"), "1\n2\n", 200, "", ""},
		{"POST INSERT VALUES in the body", "POST", q("INSERT INTO " + db + ".t VALUES"), "(3)", 200, "", ""},
		{"the inserts are there", "GET", q("SELECT count(), sum(x) FROM " + db + ".t"), "", 200, "4\t13\n", ""},
		{"ping", "GET", "/ping", "", 200, "Ok.\n", ""},
		{"GET / without a query", "GET", "/", "", 200, "Ok.\n", ""},
		{"GET refuses DROP", "GET", q("DROP TABLE " + db + ".t"), "", 403, "READONLY", "164"},
		{"GET refuses INSERT", "GET", q("INSERT INTO " + db + ".t VALUES (9)"), "", 403, "READONLY", "164"},
		{"GET refuses CREATE", "GET", q("CREATE TABLE " + db + ".u (x UInt8) ENGINE = Memory"), "", 403, "READONLY", "164"},
		{"GET refuses ALTER", "GET", q("ALTER TABLE " + db + ".t DELETE WHERE 1"), "", 403, "READONLY", "164"},
		{"GET refuses SET", "GET", q("SET readonly = 0"), "", 403, "READONLY", "164"},
		{"GET refuses a second statement", "GET", q("SELECT 1; DROP TABLE " + db + ".t"), "", 403, "READONLY", "164"},
		{"GET refuses lifting readonly", "GET", q("SELECT 1 SETTINGS readonly = DEFAULT"), "", 403, "READONLY", "164"},
		{"GET refuses a comment-hidden DROP", "GET", q("/* /* */ SELECT */ DROP TABLE " + db + ".t"), "", 403, "READONLY", "164"},
		{"GET: the engine refuses WITH … INSERT", "GET", q("WITH 9 AS v INSERT INTO " + db + ".t SELECT v"), "", 403, "READONLY", "164"},
		{"GET refuses INTO OUTFILE", "GET", q("SELECT 1 INTO OUTFILE '/tmp/fleetscope-outfile'"), "", 403, "READONLY", "164"},
		{"GET: a readonly parameter cannot lift it", "GET", q("WITH 9 AS v INSERT INTO "+db+".t SELECT v") + "&readonly=0", "", 403, "READONLY", "164"},
		{"after all that, POST still writes", "POST", q("INSERT INTO " + db + ".t VALUES (5)"), "", 200, "", ""},
		{"and GET still reads", "GET", q("SELECT count() FROM " + db + ".t"), "", 200, "5\n", ""},
		{"errors as ClickHouse", "GET", q("SELECT * FROM " + db + ".missing"), "", 404, "UNKNOWN_TABLE", "60"},
		{"other paths", "GET", "/play", "", 404, "There is no handle /play", ""},
		{"other methods", "PUT", q("SELECT 1"), "", 405, "not allowed", "36"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, c, tc.method, base+tc.path, tc.body, nil)
			if r.status != tc.status || r.code != tc.code {
				t.Fatalf("%s %s: %d (code %q) %q; want %d (code %q)", tc.method, tc.path, r.status, r.code, r.body, tc.status, tc.code)
			}
			if tc.status == 200 && r.body != tc.want || tc.status != 200 && !strings.Contains(r.body, tc.want) {
				t.Fatalf("%s %s: body %q; want %q", tc.method, tc.path, r.body, tc.want)
			}
		})
	}
	// Each pooled session runs a GET under readonly=2 and the next POST
	// without it, whatever ran on it before.
	for i := range 12 {
		sql := q("SELECT getSetting('readonly')")
		if r := call(t, c, "GET", base+sql+"&max_threads=1", "", nil); r.body != "2\n" {
			t.Fatalf("GET %d: readonly %q", i, r.body)
		}
		if r := call(t, c, "POST", base+sql, "", nil); r.body != "0\n" {
			t.Fatalf("POST %d: readonly %q", i, r.body)
		}
	}
	if got := exec(t, e, "EXISTS TABLE "+db+".t"); got != "1\n" {
		t.Fatalf("table %s.t is gone after the refused GETs: EXISTS = %q", db, got)
	}
}

// With a password every statement needs it, by any of ClickHouse's three
// ways; without one, requests need no credentials but web pages are
// refused.
func TestHTTPAuthentication(t *testing.T) {
	const pass = "s3cret:pa$$"
	withPass, _ := serveHTTP(t, chhttp.Options{Password: pass})
	noPass, _ := serveHTTP(t, chhttp.Options{})
	c := &http.Client{}
	f := func(addr, path string, hdr map[string]string, status int, code string) {
		t.Helper()
		send := map[string]string{}
		for k, v := range hdr {
			if k == "basic" {
				k, v = "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(v))
			}
			send[k] = v
		}
		r := call(t, c, "GET", "http://"+addr+path, "", send)
		if r.status != status || r.code != code {
			t.Fatalf("GET %s %v: %d (code %q) %q; want %d (code %q)", path, hdr, r.status, r.code, r.body, status, code)
		}
		if status == 200 && path != "/ping" && r.body != "1\n" {
			t.Fatalf("GET %s %v: body %q", path, hdr, r.body)
		}
	}
	sel := q("SELECT 1")
	// With a password.
	f(withPass, sel, nil, 401, "194")
	f(withPass, sel, map[string]string{"basic": "default:" + pass}, 200, "")
	f(withPass, sel, map[string]string{"basic": "default:wrong"}, 403, "516")
	f(withPass, sel, map[string]string{"basic": "admin:" + pass}, 403, "516")
	f(withPass, sel, map[string]string{"X-ClickHouse-User": "default", "X-ClickHouse-Key": pass}, 200, "")
	f(withPass, sel, map[string]string{"X-ClickHouse-Key": pass}, 200, "")
	f(withPass, sel, map[string]string{"X-ClickHouse-Key": pass[:len(pass)-1]}, 403, "516")
	f(withPass, sel+"&user=default&password="+url.QueryEscape(pass), nil, 200, "")
	f(withPass, sel+"&password=nope", nil, 403, "516")
	f(withPass, sel+"&password="+url.QueryEscape(pass), map[string]string{"basic": "default:" + pass}, 403, "516")
	f(withPass, sel, map[string]string{"Authorization": "Bearer " + pass}, 403, "516")
	f(withPass, sel, map[string]string{"basic": "default:" + pass, "Origin": "http://evil.example"}, 200, "")
	f(withPass, sel, map[string]string{"Origin": "http://evil.example"}, 401, "194")
	f(withPass, "/ping", nil, 200, "")
	// Without a password.
	f(noPass, sel, nil, 200, "")
	f(noPass, sel, map[string]string{"basic": "default:"}, 200, "")
	f(noPass, sel, map[string]string{"basic": "default:guess"}, 403, "516")
	f(noPass, sel, map[string]string{"Origin": "http://evil.example"}, 403, "497")
	f(noPass, sel, map[string]string{"Origin": "null"}, 403, "497")
	f(noPass, sel, map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, 403, "497")
	f(noPass, sel, map[string]string{"Sec-Fetch-Site": "same-origin"}, 403, "497")
	f(noPass, sel, map[string]string{"Sec-Fetch-Site": "none"}, 200, "")
}

// clickhouse-go carries the DSN's credentials (as basic auth over plain
// HTTP), so `serve --clickhouse http://default:PASS@host:8123` reaches an
// engine with a password, and a wrong one is refused.
func TestHTTPClickHouseGoCarriesDSNPassword(t *testing.T) {
	const pass = "p@ss w0rd"
	addr, e := serveHTTP(t, chhttp.Options{Password: pass})
	db := fmt.Sprintf("http_dsn_%d", time.Now().UnixNano())
	t.Cleanup(func() { _, _ = e.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db, nil, nil) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := (&url.URL{Scheme: "http", User: url.UserPassword("default", pass), Host: addr}).String()
	s, err := store.Open(ctx, store.Config{ClickHouse: dsn, Database: db, SkipMigrations: true})
	if err != nil {
		t.Fatalf("store.Open with the password: %v", err)
	}
	defer s.Close()
	var n uint64
	if err := s.QueryRow(ctx, "SELECT sum(number) FROM numbers(10)").Scan(&n); err != nil || n != 45 {
		t.Fatalf("query: %v %d", err, n)
	}
	_, err = store.Open(ctx, store.Config{ClickHouse: "http://default:wrong@" + addr, Database: db, SkipMigrations: true})
	if err == nil || !strings.Contains(err.Error(), "AUTHENTICATION_FAILED") {
		t.Fatalf("store.Open with a wrong password: %v; want AUTHENTICATION_FAILED", err)
	}
	_, err = store.Open(ctx, store.Config{ClickHouse: "http://" + addr, Database: db, SkipMigrations: true})
	if err == nil || !strings.Contains(err.Error(), "REQUIRED_PASSWORD") {
		t.Fatalf("store.Open without a password: %v; want REQUIRED_PASSWORD", err)
	}
}

// No goroutine outlives its request: 10 000 statements leave the count
// where it was.
func TestHTTPRequestsLeaveNoGoroutines(t *testing.T) {
	addr, _ := serveHTTP(t, chhttp.Options{})
	const workers, perWorker = 4, 2500
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	c := &http.Client{Transport: tr}
	u := "http://" + addr + q("SELECT 1")
	get := func() error {
		resp, err := c.Get(u)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(b) != "1\n" {
			return fmt.Errorf("GET: %v %d %q", err, resp.StatusCode, b)
		}
		return nil
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	tr.CloseIdleConnections()
	before := settledGoroutines(-1)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				if err := get(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	tr.CloseIdleConnections()
	after := settledGoroutines(before + 5)
	t.Logf("%d requests in %v; goroutines %d before, %d after", workers*perWorker, elapsed, before, after)
	if after > before+5 {
		t.Fatalf("goroutines: %d before, %d after %d requests", before, after, workers*perWorker)
	}
}

// settledGoroutines waits up to 5 s for the goroutine count to drop to
// target (or, with target < 0, to stop changing) and returns it.
func settledGoroutines(target int) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		m := runtime.NumGoroutine()
		if target >= 0 && m <= target || target < 0 && m == n {
			return m
		}
		n = m
	}
	return n
}

// A client that disconnects mid-statement gets the statement cancelled: it
// leaves system.processes within moments, not when it would have ended.
func TestHTTPDisconnectCancelsStatement(t *testing.T) {
	addr, e := serveHTTP(t, chhttp.Options{})
	marker := fmt.Sprint(time.Now().UnixNano())
	running := func() string {
		return exec(t, e, "SELECT count() FROM system.processes WHERE position(query, concat('fs-cancel-', '"+marker+"')) > 0")
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// Minutes of work on one thread, were it not cancelled.
	sql := "SELECT 'fs-cancel-" + marker + "', count() FROM numbers(100000000000) WHERE sipHash64(number) % 7 = 3"
	fmt.Fprintf(conn, "GET %s&max_threads=1 HTTP/1.1\r\nHost: engine\r\n\r\n", q(sql))
	deadline := time.Now().Add(10 * time.Second)
	for running() != "1\n" {
		if time.Now().After(deadline) {
			t.Fatal("the statement never showed in system.processes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn.Close()
	gone := time.Now()
	for running() != "0\n" {
		if time.Since(gone) > 5*time.Second {
			t.Fatal("the statement still runs 5 s after its client disconnected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("statement gone %v after the client disconnected", time.Since(gone))
}

// The disconnect watch neither eats pipelined requests nor ends a statement
// that runs longer than the server's ReadTimeout.
func TestHTTPPipeliningAndLongStatements(t *testing.T) {
	addr, _ := serveHTTP(t, chhttp.Options{}, func(s *fasthttp.Server) { s.ReadTimeout = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Both requests in one write: the second waits in the socket while the
	// first (a one-second statement) runs.
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: engine\r\n\r\nGET %s HTTP/1.1\r\nHost: engine\r\n\r\n",
		q("SELECT sleep(1), 'first'"), q("SELECT 'second'"))
	br := bufio.NewReader(conn)
	for _, want := range []string{"0\tfirst\n", "second\n"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("pipelined answer %d %q; want %q", resp.StatusCode, b, want)
		}
	}
}

// /metrics serves the gatherer given, the interface's own counters included.
func TestHTTPMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	addr, _ := serveHTTP(t, chhttp.Options{Metrics: reg, Registerer: reg})
	c := &http.Client{}
	call(t, c, "GET", "http://"+addr+q("DROP TABLE nothing"), "", nil)
	r := call(t, c, "GET", "http://"+addr+"/metrics", "", nil)
	if r.status != 200 {
		t.Fatalf("/metrics: %d %q", r.status, r.body)
	}
	for _, want := range []string{"go_goroutines ", `fleetscope_engine_http_refused_total{reason="readonly"} 1`, `fleetscope_engine_http_refused_total{reason="auth"} 0`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestCheckExposure(t *testing.T) {
	f := func(ip, password string, refused bool) {
		t.Helper()
		err := chhttp.CheckExposure(&net.TCPAddr{IP: net.ParseIP(ip), Port: 8123}, password)
		if got := errors.Is(err, chhttp.ErrPasswordRequired); got != refused {
			t.Fatalf("CheckExposure(%s, %q) = %v; want refused %v", ip, password, err, refused)
		}
	}
	f("127.0.0.1", "", false)
	f("127.0.1.1", "", false)
	f("::1", "", false)
	f("0.0.0.0", "", true)
	f("::", "", true)
	f("192.0.2.10", "", true)
	f("2001:db8::1", "", true)
	f("0.0.0.0", "pw", false)
	f("192.0.2.10", "pw", false)
}
