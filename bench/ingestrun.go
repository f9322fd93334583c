package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/ingest"
	"github.com/fleetscope/fleetscope/store"
)

// IngestOptions configure `fleetscope bench ingest`.
type IngestOptions struct {
	// Binary is the fleetscope executable to start (serve) — normally the
	// running one. URL and Token instead target a server already running
	// (then the engine baseline runs in a temporary directory here).
	Binary     string
	URL, Token string

	Gateways    int // simulated gateways
	Panels      int // panels per gateway (readings per request)
	Concurrency int
	Duration    time.Duration // of the saturation phase; the half-rate phase takes as long
	NDJSON      bool
	Gzip        bool
	// OpsAddr starts the server with --ops-addr: its /metrics, /readyz
	// and Go's /debug/pprof/ there, to profile it under the load.
	OpsAddr string
	// EngineInserts is the number of 1 M-row JSONEachRow inserts of the
	// engine's own JSON baseline (EngineJSON); 0 = as many as the
	// saturation phase acknowledged readings (at least 3), so that the
	// merges that follow are of a like amount: with the readings table's
	// merge_selector_base of 10, 10 parts of 1 M rows are not merged at
	// all and 13 are.
	EngineInserts int
	Log           io.Writer // progress
}

func (o *IngestOptions) setDefaults() {
	if o.Gateways <= 0 {
		o.Gateways = 2000
	}
	if o.Panels <= 0 {
		o.Panels = 30
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// IngestReport is the result of `fleetscope bench ingest`.
type IngestReport struct {
	Saturation, Half LoadResult
	// Drain is how long after the saturation phase ClickHouse took to hold
	// every acknowledged reading.
	Drain time.Duration
	// EndToEnd is acknowledged readings over load plus drain time: the
	// rate at which readings went from HTTP to durable in ClickHouse.
	EndToEnd float64
	// ServerCPU is the server's CPU time (its process_cpu_seconds_total,
	// the engine's threads included) from the start of the saturation
	// phase to the end of the drain: everything it spent on those readings.
	ServerCPU time.Duration
	// SettleCPU is the server's CPU after the drain until it fell idle
	// (below serverIdle for settleQuiet): the merges that follow the
	// saturation phase, as the JSON baseline counts them. Settle is how
	// long that took.
	SettleCPU time.Duration
	Settle    time.Duration
	// MaxRSS is the server's peak resident memory during saturation.
	MaxRSS int64
	// Insert is the engine's own insert of the same rows into the same
	// schema, measured in the same run (the flusher's batch size, in the
	// order the gateways deliver them), and the same inserts through
	// clickhouse-go, the way the flusher sends them.
	Insert StoreInsertResult
	// HTTP is the same load against a server that reads each body and
	// answers at once, in this process: what this client and machine can
	// carry at all, whatever the server does.
	HTTP LoadResult
	// JSON is the engine ingesting the same readings itself as
	// JSONEachRow, the merges that follow included: DESIGN §7's baseline
	// of the server's CPU per reading.
	JSON EngineJSONResult
	Opts IngestOptions
}

// targetRate is DESIGN §7's end-to-end ingest target, readings/s.
const targetRate = 1_000_000

// targetCostRatio is DESIGN §7's ingest cost target: the server's CPU per
// reading over the engine's own JSON ingest's CPU per row.
const targetCostRatio = 0.80

// ServerCPUPerReading is the server's CPU per reading acknowledged at
// saturation, from the start of the phase until the merges that followed
// settled.
func (r IngestReport) ServerCPUPerReading() time.Duration {
	return perReading(r.ServerCPU+r.SettleCPU, r.Saturation.Readings)
}

// CostRatio is ServerCPUPerReading over the engine's JSON CPU per row,
// both with the merges that follow: DESIGN §7's ingest cost figure.
func (r IngestReport) CostRatio() float64 {
	return float64(r.ServerCPUPerReading()) / float64(r.JSON.CPUPerRow())
}

func (r IngestReport) Print(w io.Writer) {
	o := r.Opts
	fmt.Fprintf(w, "ingest: %d gateways × %d panels, %d connections, %s per phase, body %s%s\n",
		o.Gateways, o.Panels, o.Concurrency, o.Duration, map[bool]string{false: "JSON", true: "NDJSON"}[o.NDJSON], map[bool]string{false: "", true: "+gzip"}[o.Gzip])
	r.Saturation.Print(w, "saturation (acknowledged)")
	r.Half.Print(w, "half of saturation")
	fmt.Fprintf(w, "  drain after saturation         %10s\n", r.Drain.Round(time.Millisecond))
	fmt.Fprintf(w, "  end to end (HTTP → ClickHouse) %10.0f readings/s   (target ≥ 1,000,000)\n", r.EndToEnd)
	fmt.Fprintf(w, "  engine alone, same rows        %10.0f rows/s (baseline: %d-row blocks in arrival order)\n", r.Insert.EngineRate(), r.Insert.BatchRows)
	fmt.Fprintf(w, "  same inserts via clickhouse-go %10.0f rows/s   (the flusher's path, no HTTP, no WAL)\n", r.Insert.BridgeRate())
	fmt.Fprintf(w, "  ratio end to end / engine      %10.2f×   (target ≥ 0.50×)\n", r.EndToEnd/r.Insert.EngineRate())
	fmt.Fprintf(w, "  HTTP ceiling, same load        %10.0f readings/s (a server that only reads the body; ratio %.2f×)\n", r.HTTP.ReadingsPerSecond(), r.EndToEnd/r.HTTP.ReadingsPerSecond())
	fmt.Fprintf(w, "  p99 ack at half saturation    %8.2f ms   (target ≤ 10 ms)\n", float64(r.Half.Percentile(99).Microseconds())/1000)
	fmt.Fprintf(w, "  server peak RSS at saturation  %7d MiB\n", r.MaxRSS>>20)
	r.printCPU(w)
}

// printCPU prints the CPU budget of a reading: CPU time is steadier than
// throughput on a shared machine, and it says what a rate needs — at
// targetRate every reading may cost the server and the load generator
// together at most cores/targetRate.
func (r IngestReport) printCPU(w io.Writer) {
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
	server, client := perReading(r.ServerCPU, r.Saturation.Readings), r.Saturation.CPUPerReading()
	cores := runtime.NumCPU()
	fmt.Fprintf(w, "CPU per reading at saturation (µs; %d cores carry %d k readings/s at ≤ %.2f µs of server and load generator together)\n",
		cores, targetRate/1000, float64(cores)*1e6/targetRate)
	fmt.Fprintf(w, "  server, engine included         %6.2f   (saturation start to drained)\n", us(server))
	fmt.Fprintf(w, "  server, merges after included   %6.2f   (on until idle: %s, %.1f s CPU more)\n", us(r.ServerCPUPerReading()), r.Settle.Round(100*time.Millisecond), r.SettleCPU.Seconds())
	fmt.Fprintf(w, "  load generator                  %6.2f\n", us(client))
	if server+client > 0 {
		fmt.Fprintf(w, "  rate %d cores carry at that cost %6.0f k readings/s\n", cores, float64(cores)*1e6/us(server+client)/1000)
	}
	fmt.Fprintf(w, "  HTTP ceiling run, both ends     %6.2f   (HTTP alone)\n", us(r.HTTP.CPUPerReading()))
	fmt.Fprintf(w, "  engine alone, insert            %6.2f   (per row, with the merges that ran meanwhile)\n", us(r.Insert.EngineCPUPerRow()))
	fmt.Fprintf(w, "  clickhouse-go path, insert      %6.2f\n", us(r.Insert.BridgeCPUPerRow()))
	j := r.JSON
	fmt.Fprintf(w, "engine's own JSON ingest, same readings (baseline): %d × %d k-row JSONEachRow inserts → Null table → MV → readings\n", j.Inserts, engineJSONRows/1000)
	fmt.Fprintf(w, "  inserts                         %6.2f µs/row  %10.0f rows/s  %.0f bytes/row\n", us(j.InsertCPUPerRow()), j.Rate(), float64(j.Bytes)/float64(max(j.Rows, 1)))
	fmt.Fprintf(w, "  merges that followed            %6.2f µs/row  (settled after %s, %d parts)\n", us(perReading(j.MergeCPU, uint64(j.Rows))), j.Settle.Round(100*time.Millisecond), j.Parts)
	fmt.Fprintf(w, "  engine JSON, merges included    %6.2f µs/row\n", us(j.CPUPerRow()))
	fmt.Fprintf(w, "INGEST COST: server %.2f µs/reading / engine JSON %.2f µs/row = %.2f×   (target ≤ %.2f×)\n",
		us(r.ServerCPUPerReading()), us(j.CPUPerRow()), r.CostRatio(), targetCostRatio)
}

// Ingest runs the ingest benchmark: it starts a fleetscope (unless URL is
// set), creates a fleet through the API, posts at saturation and at half of
// it, waits until ClickHouse holds everything, and measures the engine's
// own insert rate for comparison.
func Ingest(ctx context.Context, o IngestOptions) (IngestReport, error) {
	o.setDefaults()
	rep := IngestReport{Opts: o}
	api := &API{Base: strings.TrimSuffix(o.URL, "/"), Token: o.Token}
	var srv *exec.Cmd
	if o.URL == "" {
		var stop func()
		var err error
		srv, api, stop, err = startServer(ctx, o.Binary, o.OpsAddr)
		if err != nil {
			return rep, err
		}
		defer stop()
	}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	// ops serves /metrics and /readyz.
	ops := api.Base
	if o.OpsAddr != "" {
		ops = "http://" + o.OpsAddr
	}
	if err := (&API{Base: ops}).WaitReady(wctx); err != nil {
		return rep, err
	}
	fmt.Fprintf(o.Log, "setting up %d gateways through the API…\n", o.Gateways)
	gws, err := SetupFleet(ctx, api, o.Gateways, o.Panels, "bench"+strconv.FormatInt(time.Now().Unix()%100000, 10))
	if err != nil {
		return rep, fmt.Errorf("bench ingest: set up the fleet: %w", err)
	}
	// Clocks start half a minute back and advance a second per request, as
	// a real-time feed: at saturation a gateway posts several times a
	// second, so its clock runs ahead of the wall clock, and the phases are
	// short enough that no reading goes past the 5 minutes ingest accepts
	// ahead. (Started an hour back, every reading would be late and the
	// rollup worker would recompute every minute it touches: a backfill,
	// not a live fleet.)
	sim := NewSim(gws, time.Now().Add(-30*time.Second).Truncate(time.Second), time.Second)
	lo := LoadOptions{URL: api.Base + "/v1/ingest", Concurrency: o.Concurrency, NDJSON: o.NDJSON, Gzip: o.Gzip, Step: time.Second}
	fmt.Fprintln(o.Log, "warming up…")
	if err := warmUp(ctx, sim, lo, ops); err != nil {
		return rep, err
	}
	before, err := scrapeMetric(ops, "fleetscope_ingest_flushed_readings_total")
	if err != nil {
		return rep, err
	}
	fmt.Fprintln(o.Log, "saturation phase…")
	lo.Duration = o.Duration
	cpu0, err := scrapeMetric(ops, "process_cpu_seconds_total")
	if err != nil {
		return rep, err
	}
	rss := sampleRSS(srv, ops)
	rep.Saturation, err = sim.Load(ctx, lo)
	rep.MaxRSS = rss()
	if err != nil {
		return rep, err
	}
	// Drain: until the flushed counter has grown by everything acknowledged.
	drainStart := time.Now()
	want := before + float64(rep.Saturation.Readings)
	for {
		got, err := scrapeMetric(ops, "fleetscope_ingest_flushed_readings_total")
		if err != nil {
			return rep, err
		}
		// Warm-up readings acknowledged before `before` was read may also
		// be flushed in this window; ≥ is what matters.
		if got >= want {
			break
		}
		if time.Since(drainStart) > 5*time.Minute {
			return rep, fmt.Errorf("bench ingest: ClickHouse did not catch up within 5 minutes (%.0f of %.0f)", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rep.Drain = time.Since(drainStart)
	cpu1, err := scrapeMetric(ops, "process_cpu_seconds_total")
	if err != nil {
		return rep, err
	}
	rep.ServerCPU = time.Duration((cpu1 - cpu0) * float64(time.Second))
	rep.EndToEnd = float64(rep.Saturation.Readings) / (rep.Saturation.Elapsed + rep.Drain).Seconds()
	fmt.Fprintln(o.Log, "waiting for the server's merges to settle…")
	cpu2, settle, err := settleServer(ctx, ops, cpu1)
	if err != nil {
		return rep, err
	}
	rep.SettleCPU, rep.Settle = time.Duration((cpu2-cpu1)*float64(time.Second)), settle
	fmt.Fprintln(o.Log, "half-rate phase…")
	lo.Rate = rep.Saturation.RequestsPerSecond() / 2
	if rep.Half, err = sim.Load(ctx, lo); err != nil {
		return rep, err
	}
	if srv != nil {
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
	}
	fmt.Fprintln(o.Log, "HTTP ceiling…")
	if rep.HTTP, err = httpCeiling(ctx, sim, lo); err != nil {
		return rep, err
	}
	fmt.Fprintln(o.Log, "engine baseline…")
	if rep.Insert, err = engineRate(ctx, o); err != nil {
		return rep, err
	}
	inserts := o.EngineInserts
	if inserts <= 0 {
		inserts = max(3, int((rep.Saturation.Readings+engineJSONRows/2)/engineJSONRows))
	}
	fmt.Fprintf(o.Log, "engine JSON baseline (%d × 1 M rows)…\n", inserts)
	rep.JSON, err = EngineJSON(ctx, inserts, o.Gateways, o.Panels)
	return rep, err
}

// serverIdle is the CPU rate, in cores, under which the server counts as
// idle once the load has stopped: its timers and scrapes, no merges.
const serverIdle = 0.05

// settleServer waits until the server has been idle for settleQuiet (the
// merges after the load done) and returns its CPU counter at the start of
// that quiet time and how long after the call it began.
func settleServer(ctx context.Context, base string, cpu0 float64) (float64, time.Duration, error) {
	start := time.Now()
	type sample struct {
		at  time.Time
		cpu float64
	}
	samples := []sample{{start, cpu0}}
	for {
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		c, err := scrapeMetric(base, "process_cpu_seconds_total")
		if err != nil {
			return 0, 0, err
		}
		now := time.Now()
		samples = append(samples, sample{now, c})
		// The oldest sample at least settleQuiet back: idle since then?
		for i := len(samples) - 1; i >= 0; i-- {
			if now.Sub(samples[i].at) < settleQuiet {
				continue
			}
			if (c-samples[i].cpu)/now.Sub(samples[i].at).Seconds() < serverIdle {
				return samples[i].cpu, samples[i].at.Sub(start), nil
			}
			break
		}
		if now.Sub(start) > 5*time.Minute {
			return 0, 0, fmt.Errorf("bench ingest: the server did not fall idle within 5 minutes after the load")
		}
	}
}

// warmUp posts for 3 s, and on until the server's WAL writes into a
// preallocated segment (at most 30 s more): a fresh server's first segment
// grows as it is written, which costs more per fsync than the steady state
// the figures describe.
func warmUp(ctx context.Context, sim *Sim, lo LoadOptions, base string) error {
	lo.Duration = 3 * time.Second
	for range 11 {
		if _, err := sim.Load(ctx, lo); err != nil {
			return err
		}
		if n, err := scrapeMetric(base, "fleetscope_wal_preallocated_segments_total"); err != nil || n > 0 {
			return nil
		}
	}
	return nil
}

// startServer starts `fleetscope serve` on a free port with a fresh data
// directory and a random support token.
func startServer(ctx context.Context, binary, opsAddr string) (*exec.Cmd, *API, func(), error) {
	dir, err := os.MkdirTemp("", "fleetscope-bench-ingest-")
	if err != nil {
		return nil, nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	var tok [16]byte
	rand.Read(tok[:])
	token := "bench-" + hex.EncodeToString(tok[:])
	args := []string{"serve", "--addr", addr, "--data", dir}
	if opsAddr != "" {
		args = append(args, "--ops-addr", opsAddr)
	}
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), "FLEETSCOPE_SUPPORT_TOKEN="+token, "FLEETSCOPE_LOG_LEVEL=warn")
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return nil, nil, nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			cmd.Process.Kill()
		}
		logf.Close()
		os.RemoveAll(dir)
	}
	return cmd, &API{Base: "http://" + addr, Token: token}, stop, nil
}

// sampleRSS samples the server's resident memory until the returned
// function is called, which returns the peak: from /proc when the server is
// a child, else from its process_resident_memory_bytes.
func sampleRSS(cmd *exec.Cmd, base string) func() int64 {
	sample := func() int64 {
		v, _ := scrapeMetric(base, "process_resident_memory_bytes")
		return int64(v)
	}
	if cmd != nil && cmd.Process != nil {
		sample = func() int64 { return rss(cmd.Process.Pid) }
	}
	done := make(chan int64)
	stop := make(chan struct{})
	go func() {
		var peak int64
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if v := sample(); v > peak {
				peak = v
			}
			select {
			case <-stop:
				done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 { close(stop); return <-done }
}

func rss(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// scrapeMetric reads one metric's value from /metrics.
func scrapeMetric(base, name string) (float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// engineBatchRows is the block size of the engine baseline: the flusher's
// default batch, which it fills at saturation.
const engineBatchRows = ingest.DefaultBatchRows

// engineRate measures the embedded engine inserting the rows the load sends
// — the same gateways and panels, in the order they arrive, in the
// flusher's batch size — into the readings schema on its own: the baseline
// of the ingest figures. (`fleetscope bench store` measures 100 k-row
// blocks already in the table's order.)
func engineRate(ctx context.Context, o IngestOptions) (StoreInsertResult, error) {
	dir, err := os.MkdirTemp("", "fleetscope-bench-engine-")
	if err != nil {
		return StoreInsertResult{}, err
	}
	defer os.RemoveAll(dir)
	s, err := store.Open(ctx, store.Config{DataDir: dir, Logger: quietLogger()})
	if err != nil {
		return StoreInsertResult{}, err
	}
	defer s.Close()
	cols := ArrivalColumns(1, engineBatchRows, o.Gateways, o.Panels, time.Now().Add(-time.Hour).Truncate(time.Second), time.Second)
	return StoreInsert(ctx, s, cols, 5)
}

// httpCeiling runs the saturation load for a third of its duration against
// a fasthttp server in this process that reads each body and answers with
// every reading accepted: no decoding, no WAL, no engine.
func httpCeiling(ctx context.Context, sim *Sim, lo LoadOptions) (LoadResult, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return LoadResult{}, err
	}
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		body, _ := c.Request.BodyUncompressed()
		n := bytes.Count(body, []byte(`"panel"`))
		c.SetContentType("application/json")
		c.SetBody(fmt.Appendf(nil, `{"accepted":%d,"rejected":0,"errors":[],"duplicate":false}`, n))
	}}
	go srv.Serve(ln)
	defer srv.Shutdown()
	lo.URL = "http://" + ln.Addr().String() + "/v1/ingest"
	lo.Rate = 0
	lo.Duration = max(lo.Duration/3, 3*time.Second)
	return sim.Load(ctx, lo)
}
