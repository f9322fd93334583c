package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/bench"
	"github.com/fleetscope/fleetscope/ingest"
	"github.com/fleetscope/fleetscope/internal/storetest"
	"github.com/fleetscope/fleetscope/store"
	"github.com/fleetscope/fleetscope/store/engine"
)

// These tests run the real binary as child processes: built once per test
// run from this package.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func fleetscopeBinary(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(engine.LibraryPath()); err != nil {
		storetest.Engine(t) // skips or fails as engine tests do
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fleetscope-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "fleetscope")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// child is a fleetscope process the test starts, kills and restarts.
type child struct {
	t    *testing.T
	args []string
	env  []string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	out  *lockedWriter // writes log
	mu   sync.Mutex
}

// output is what the process wrote so far.
func (c *child) output() string {
	c.mu.Lock()
	out := c.out
	c.mu.Unlock()
	out.mu.Lock()
	defer out.mu.Unlock()
	return out.w.String()
}

func startChild(t *testing.T, env []string, args ...string) *child {
	c := &child{t: t, args: args, env: env}
	c.start()
	t.Cleanup(func() { c.kill() })
	return c
}

func (c *child) start() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = &bytes.Buffer{}
	c.cmd = exec.Command(fleetscopeBinary(c.t), c.args...)
	c.cmd.Env = append(os.Environ(), c.env...)
	c.out = &lockedWriter{w: c.log}
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
}

// kill sends SIGKILL and waits for the process to end.
func (c *child) kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil || c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// stop sends SIGTERM (graceful: the WAL is flushed) and waits.
func (c *child) stop() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			c.t.Fatalf("graceful stop: %v\n%s", err, c.log)
		}
	case <-time.After(2 * time.Minute):
		c.cmd.Process.Kill()
		c.t.Fatalf("no graceful stop within 2 minutes\n%s", c.log)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func waitReady(t *testing.T, api *bench.API, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := api.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}

// ledger is what the gateways' posts acknowledged: every reading answered
// 200 must be in ClickHouse exactly once, and nothing else.
type ledger struct {
	mu                          sync.Mutex
	readings                    uint64
	pinSum, whSum, tsSum, sysID uint64
	throttled, failed           uint64
}

// poster posts one gateway's requests in seq order; a request that is not
// answered 200 is sent again, identical, until it is (the server may be
// down, or shedding load). A 200 with duplicate:true acknowledges too: the
// readings were stored by an attempt whose answer was lost.
type poster struct {
	api    *bench.API
	system uint32
	panels int
	seq    uint64
	ts0    int64
}

func (p *poster) body() []byte {
	readings := make([]ingest.Reading, p.panels)
	ts := p.ts0 + int64(p.seq)*1000
	for i := range readings {
		readings[i] = ingest.Reading{Panel: []byte(fmt.Sprintf("P%d", i)), TS: ts, Vin: 38, Iin: 9,
			Pin: float64(100 + int(p.seq)%500 + i), Vout: 37, Temp: 40, RSSI: 180, Wh: float64(1 + int(p.seq)%7)}
	}
	return ingest.AppendJSON(nil, p.seq, readings)
}

// postOnce sends the current request once; on success the ledger records
// it and the seq advances.
func (p *poster) postOnce(ctx context.Context, l *ledger) bool {
	req, _ := http.NewRequestWithContext(ctx, "POST", p.api.Base+"/v1/ingest", bytes.NewReader(p.body()))
	req.Header.Set("Authorization", "Bearer "+p.api.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		l.mu.Lock()
		l.failed++
		l.mu.Unlock()
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		l.mu.Lock()
		if resp.StatusCode == 429 {
			l.throttled++
		} else {
			l.failed++
		}
		l.mu.Unlock()
		return false
	}
	ts := p.ts0 + int64(p.seq)*1000
	l.mu.Lock()
	for i := range p.panels {
		l.readings++
		l.pinSum += uint64((100 + int(p.seq)%500 + i) * 10) // deciwatts
		l.whSum += uint64(1+int(p.seq)%7) * 1000
		l.tsSum += uint64(ts)
		l.sysID += uint64(p.system)
	}
	l.mu.Unlock()
	p.seq++
	return true
}

// check compares the ledger with what the readings table holds: as many
// readings, the same sums of values, and no (system, panel, ts) twice.
func (l *ledger) check(t *testing.T, s *store.Store) {
	t.Helper()
	var n, pin, wh, ts, sys, doubled uint64
	err := s.QueryRow(context.Background(), `SELECT count(), sum(pin), sum(wh), toUInt64(sum(toUnixTimestamp64Milli(ts))), sum(system_id),
		toUInt64(count() - uniqExact(system_id, panel, ts)) FROM readings`).Scan(&n, &pin, &wh, &ts, &sys, &doubled)
	if err != nil {
		t.Fatal(err)
	}
	if n != l.readings || pin != l.pinSum || wh != l.whSum || ts != l.tsSum || sys != l.sysID || doubled != 0 {
		t.Fatalf("ClickHouse holds %d readings (pin %d, wh %d, ts %d, system %d, %d doubled); acknowledged %d (pin %d, wh %d, ts %d, system %d)",
			n, pin, wh, ts, sys, doubled, l.readings, l.pinSum, l.whSum, l.tsSum, l.sysID)
	}
	t.Logf("%d acknowledged readings stored exactly once (%d answers 429, %d failed attempts retried)", n, l.throttled, l.failed)
}

// run posts until ctx is done, then settles: the request in flight at the
// end is retried until acknowledged, so that nothing stored is missing
// from the ledger.
func (p *poster) run(ctx context.Context, l *ledger, settle time.Duration) {
	pending := false
	for ctx.Err() == nil {
		if pending = !p.postOnce(ctx, l); pending {
			time.Sleep(20 * time.Millisecond)
		}
	}
	deadline := time.Now().Add(settle)
	for pending && time.Now().Before(deadline) {
		if pending = !p.postOnce(context.Background(), l); pending {
			time.Sleep(50 * time.Millisecond)
		}
	}
}
