//go:build linux

package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
	"golang.org/x/sys/unix"

	"github.com/fleetscope/fleetscope/internal/storetest"
	"github.com/fleetscope/fleetscope/store"
	"github.com/fleetscope/fleetscope/store/engine/chhttp"
)

// Fault injection (issue 14, finding 4): a node runs in a child process —
// this test binary, in TestIngestChildProcess — and the test lowers one of
// its resource limits while gateways post, then raises it again. The kernel
// makes the faults: with the file size limit every write that grows a file
// fails as on a full disk (EFBIG rather than ENOSPC; Go ignores SIGXFSZ),
// with the descriptor limit every open fails with EMFILE — WAL segments,
// the flush journal, connections to the engine and from gateways. The
// engine runs in the test process, served over ClickHouse's HTTP interface
// as `fleetscope engine` serves it: chDB itself aborts its process when it
// runs out of descriptors in the middle of a statement (seen in these
// tests), which no retry in fleetscope can help — the engine must not share
// the ingest node's limits for the node to ride out the fault.
// Meanwhile ingest answers 503 or 429, never 200 without the readings
// durable; once the limit is back it resumes by itself; the node is then
// killed (kill -9) and restarted, and every acknowledged reading is in
// ClickHouse exactly once.

// The child's data directory, and the engine's address and database.
const (
	childEnv   = "FLEETSCOPE_INGEST_CHILD_DIR"
	childCHEnv = "FLEETSCOPE_INGEST_CHILD_CLICKHOUSE"
	childDBEnv = "FLEETSCOPE_INGEST_CHILD_DATABASE"
)

// childKeys are the child node's gateways: key-<i> is gateway i of system
// 100+i.
type childKeys struct{}

func (childKeys) Gateway(key []byte) (Gateway, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(string(key), "key-"))
	if err != nil || n < 1 || n > 64 {
		return Gateway{}, false
	}
	return Gateway{ID: uint32(n), System: uint32(100 + n), Monitored: true}, true
}

// TestIngestChildProcess is the child: an ingest node with its WAL in
// $FLEETSCOPE_INGEST_CHILD_DIR, on the engine at
// $FLEETSCOPE_INGEST_CHILD_CLICKHOUSE, with small WAL segments (a new one
// every few requests, so that segment files are opened all the time). It
// prints "ADDR host:port", serves /v1/ingest and /metrics, and on "stop"
// from stdin flushes, prints "SUMS {…}" and ends.
func TestIngestChildProcess(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		t.Skip("the child of the fault-injection tests")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	s, err := store.Open(ctx, store.Config{ClickHouse: os.Getenv(childCHEnv), Database: os.Getenv(childDBEnv), DataDir: dir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	svc, err := Open(ctx, Options{Dir: filepath.Join(dir, "wal"), Store: s, Gateways: childKeys{}, FlushInterval: 50 * time.Millisecond,
		Logger: log, Registerer: reg, walSegmentSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metrics := fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		if string(c.Path()) == "/metrics" {
			metrics(c)
			return
		}
		svc.Handle(c)
	}}
	go srv.Serve(ln)
	fmt.Printf("ADDR %s\n", ln.Addr())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() && in.Text() != "stop" {
	}
	srv.Shutdown()
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var sum faultLedger
	if err := s.QueryRow(ctx, "SELECT count(), sum(pin), toUInt64(sum(toUnixTimestamp64Milli(ts))), sum(system_id) FROM readings FINAL").
		Scan(&sum.Readings, &sum.Pin, &sum.TS, &sum.System); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(sum)
	fmt.Printf("SUMS %s\n", b)
}

// faultLedger is what was acknowledged (or stored): readings and sums of
// their values, deciwatts and Unix ms.
type faultLedger struct {
	Readings, Pin, TS, System uint64
}

// childNode is a running child.
type childNode struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	url   string
	log   *lockedBuffer // the child's stderr
}

// childEngine is the engine the children use: this process's, served on a
// loopback port, and a database of the test's.
type childEngine struct{ url, db string }

func serveEngine(t *testing.T) childEngine {
	t.Helper()
	s := storetest.Open(t) // the database, migrated, dropped at the end
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: chhttp.Handler(storetest.Engine(t), chhttp.Options{}), MaxRequestBodySize: 1 << 30}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return childEngine{url: "http://" + ln.Addr().String(), db: s.Database()}
}

func startChildNode(t *testing.T, dir string, e childEngine) *childNode {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIngestChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+dir, childCHEnv+"="+e.url, childDBEnv+"="+e.db)
	n := &childNode{cmd: cmd, log: &lockedBuffer{b: &bytes.Buffer{}}}
	cmd.Stderr = n.log
	var err error
	if n.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	n.out = bufio.NewScanner(stdout)
	if line := n.line(t, "ADDR "); line != "" {
		n.url = "http://" + line
	}
	return n
}

// line returns the rest of the first output line with prefix.
func (n *childNode) line(t *testing.T, prefix string) string {
	t.Helper()
	for n.out.Scan() {
		if rest, ok := strings.CutPrefix(n.out.Text(), prefix); ok {
			return rest
		}
	}
	t.Fatalf("the child ended without %q:\n%s", prefix, n.log)
	return ""
}

func (n *childNode) kill() {
	n.cmd.Process.Kill()
	n.cmd.Wait()
}

func (n *childNode) stop(t *testing.T) faultLedger {
	t.Helper()
	fmt.Fprintln(n.stdin, "stop")
	var sum faultLedger
	if err := json.Unmarshal([]byte(n.line(t, "SUMS ")), &sum); err != nil {
		t.Fatal(err)
	}
	n.cmd.Wait()
	return sum
}

// metrics returns the child's /metrics (the ingest and WAL metrics), and
// checks them with promlint.
func (n *childNode) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	problems, err := promlint.New(bytes.NewReader(b)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	return string(b)
}

// metric returns the sum of a metric family's samples on the child's
// /metrics whose line starts with name.
func (n *childNode) metric(t *testing.T, name string) float64 {
	t.Helper()
	b := n.metrics(t)
	var v float64
	for _, l := range strings.Split(b, "\n") {
		if strings.HasPrefix(l, name) {
			f, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			v += f
		}
	}
	return v
}

type lockedBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// faultPoster is one gateway posting 10-reading requests in seq order, each
// sent again, unchanged, until it is answered 200.
type faultPoster struct {
	gw      int
	seq     uint64
	ts0     int64
	client  *http.Client
	mu      sync.Mutex
	acked   faultLedger
	answers map[int]int // status (0: no answer) → count
	since   map[int]int // the same, since the last reset
}

func (p *faultPoster) body() []byte {
	rs := make([]Reading, 10)
	ts := p.ts0 + int64(p.seq)*1000
	for i := range rs {
		rs[i] = Reading{Panel: fmt.Appendf(nil, "P%d", i), TS: ts, Vin: 38, Iin: 3, Pin: float64(100 + i + int(p.seq%50)), Wh: 1}
	}
	return AppendJSON(nil, p.seq, rs)
}

func (p *faultPoster) post(url string) bool {
	req, _ := http.NewRequest("POST", url+"/v1/ingest", bytes.NewReader(p.body()))
	req.Header.Set("Authorization", fmt.Sprintf("Bearer key-%d", p.gw))
	status := 0
	if resp, err := p.client.Do(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answers[status]++
	p.since[status]++
	if status != 200 {
		return false
	}
	ts := p.ts0 + int64(p.seq)*1000
	for i := range 10 {
		p.acked.Readings++
		p.acked.Pin += uint64((100 + i + int(p.seq%50)) * 10)
		p.acked.TS += uint64(ts)
		p.acked.System += uint64(100 + p.gw)
	}
	p.seq++
	return true
}

// run posts until ctx is done, then until its pending request is taken.
func (p *faultPoster) run(ctx context.Context, url string) {
	pending := false
	for ctx.Err() == nil {
		if pending = !p.post(url); pending {
			time.Sleep(20 * time.Millisecond)
		}
	}
	for deadline := time.Now().Add(time.Minute); pending && time.Now().Before(deadline); {
		if pending = !p.post(url); pending {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func (p *faultPoster) sinceReset() map[int]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.since
	p.since = map[int]int{}
	return out
}

// faultScenario runs the posters against a child, applies the fault for a
// few seconds, lifts it, and checks what every section promises.
func faultScenario(t *testing.T, apply func(pid int) (lift func())) (*childNode, string, childEngine, []*faultPoster) {
	e := serveEngine(t)
	dir := t.TempDir()
	n := startChildNode(t, dir, e)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	posters := make([]*faultPoster, 4)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range posters {
		posters[i] = &faultPoster{gw: i + 1, seq: 1, ts0: time.Now().Add(-2*time.Hour).UnixMilli() / 1000 * 1000, client: client,
			answers: map[int]int{}, since: map[int]int{}}
		wg.Add(1)
		go func() { defer wg.Done(); posters[i].run(ctx, n.url) }()
	}
	phase := func(name string, d time.Duration) map[int]int {
		for _, p := range posters {
			p.sinceReset()
		}
		time.Sleep(d)
		all := map[int]int{}
		for _, p := range posters {
			for st, c := range p.sinceReset() {
				all[st] += c
			}
		}
		t.Logf("%s: answers by status %v", name, all)
		return all
	}
	if before := phase("before the fault", time.Second); before[200] == 0 {
		t.Fatalf("nothing acknowledged before the fault\n%s", n.log)
	}
	lift := apply(n.cmd.Process.Pid)
	during := phase("during the fault", 3*time.Second)
	lift()
	for st := range during {
		if st != 200 && st != 429 && st != 503 && st != 0 {
			t.Errorf("during the fault: %d answers %d, want only 200 (durable), 429 or 503", during[st], st)
		}
	}
	if during[429]+during[503] == 0 {
		t.Errorf("the fault did not show: %v", during)
	}
	// Ingest resumes by itself: every gateway is acknowledged again.
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range posters {
		for p.sinceReset()[200] == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("gateway %d is not acknowledged since the fault was lifted\n%s", p.gw, n.log)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	phase("after the fault", time.Second)
	if os.Getenv("FLEETSCOPE_TEST_LOG") != "" {
		t.Logf("child log:\n%s", n.log)
	}
	cancel()
	wg.Wait()
	return n, dir, e, posters
}

// checkLedger kills the child (what was acknowledged must be durable),
// restarts it on the same data, and compares what ClickHouse holds with
// what the gateways were acknowledged.
func checkLedger(t *testing.T, n *childNode, dir string, e childEngine, posters []*faultPoster) {
	t.Helper()
	n.kill()
	n = startChildNode(t, dir, e)
	got := n.stop(t)
	var want faultLedger
	for _, p := range posters {
		want.Readings += p.acked.Readings
		want.Pin += p.acked.Pin
		want.TS += p.acked.TS
		want.System += p.acked.System
	}
	if got != want {
		t.Fatalf("ClickHouse holds %+v; acknowledged %+v\n%s", got, want, n.log)
	}
	t.Logf("%d acknowledged readings stored exactly once", got.Readings)
}

// prlimit sets resource's soft limit of process pid and returns a function
// that sets it back.
func prlimit(t *testing.T, pid, resource int, cur func(old unix.Rlimit) uint64) func() {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Prlimit(pid, resource, nil, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = cur(old)
	if err := unix.Prlimit(pid, resource, &lim, nil); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := unix.Prlimit(pid, resource, &old, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func TestIngestHealsAfterTheDiskFills(t *testing.T) {
	n, dir, e, posters := faultScenario(t, func(pid int) func() {
		// Files may not grow past 8 KiB: the WAL's 16 KiB segments fill.
		return prlimit(t, pid, unix.RLIMIT_FSIZE, func(unix.Rlimit) uint64 { return 8 << 10 })
	})
	if errs := n.metric(t, "fleetscope_wal_write_errors_total"); errs == 0 {
		t.Error("no WAL write error counted")
	}
	if broken := n.metric(t, "fleetscope_wal_broken"); broken != 0 {
		t.Errorf("fleetscope_wal_broken %v after the fault", broken)
	}
	checkLedger(t, n, dir, e, posters)
}

func TestIngestHealsWithoutFileDescriptors(t *testing.T) {
	n, dir, e, posters := faultScenario(t, func(pid int) func() {
		// Half the lowest descriptor number free: no open succeeds until
		// the limit is back, or until the process closes one of its
		// oldest descriptors.
		return prlimit(t, pid, unix.RLIMIT_NOFILE, func(unix.Rlimit) uint64 {
			fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
			if err != nil {
				t.Fatal(err)
			}
			used := map[uint64]bool{}
			for _, fd := range fds {
				n, _ := strconv.ParseUint(fd.Name(), 10, 64)
				used[n] = true
			}
			free := uint64(0)
			for used[free] {
				free++
			}
			return max(free/2, 8)
		})
	})
	if errs := n.metric(t, "fleetscope_ingest_unavailable_total{reason=\"wal\"}") + n.metric(t, "fleetscope_ingest_throttled_total"); errs == 0 {
		t.Error("no 503 or 429 counted")
	}
	checkLedger(t, n, dir, e, posters)
}
