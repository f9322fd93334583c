package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/ingest"
)

// Gateway is one simulated gateway: its ingest key and its panels.
type Gateway struct {
	Key    string
	Panels int
	System uint32
}

// LoadOptions shape an ingest load.
type LoadOptions struct {
	URL string // …/v1/ingest
	// Concurrency is the number of connections posting at once (each a
	// keep-alive connection).
	Concurrency int
	// Rate caps requests per second over all connections; 0 = as fast as
	// the server answers (saturation).
	Rate     float64
	Duration time.Duration
	// NDJSON sends application/x-ndjson instead of JSON; Gzip compresses.
	NDJSON bool
	Gzip   bool
	// Step is how far each request advances its gateway's clock (one
	// reading per panel per step).
	Step time.Duration
}

// LoadResult is what a load measured from the client's side.
type LoadResult struct {
	Requests, Readings uint64 // acknowledged (200, accepted)
	Errors             uint64 // non-200 answers and transport errors
	Throttled          uint64 // 429 answers
	Elapsed            time.Duration
	Latencies          []time.Duration // of acknowledged requests, sorted
	Bytes              uint64          // request bodies sent
	// CPU is what this process spent during the load, user and system: the
	// load generator's cost, and the server's too when it runs in process
	// (the HTTP ceiling).
	CPU time.Duration
	// FirstError describes the first error, to say what went wrong.
	FirstError string
}

// CPUPerReading is CPU over acknowledged readings.
func (r LoadResult) CPUPerReading() time.Duration { return perReading(r.CPU, r.Readings) }

func perReading(cpu time.Duration, readings uint64) time.Duration {
	if readings == 0 {
		return 0
	}
	return cpu / time.Duration(readings)
}

// processCPU is the CPU time this process has used, every thread (the
// embedded engine's included).
func processCPU() time.Duration { return rusageCPU(syscall.RUSAGE_SELF) }

// threadCPU is the CPU time of the calling OS thread.
func threadCPU() time.Duration { return rusageCPU(1 /* RUSAGE_THREAD */) }

// rusageCPU is the user and system time getrusage(2) reports for who.
func rusageCPU(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r LoadResult) ReadingsPerSecond() float64 { return float64(r.Readings) / r.Elapsed.Seconds() }
func (r LoadResult) RequestsPerSecond() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// Percentile returns the p-th latency percentile (0 < p ≤ 100).
func (r LoadResult) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.Latencies)-1) * p / 100)
	return r.Latencies[i]
}

func (r LoadResult) Print(w io.Writer, label string) {
	fmt.Fprintf(w, "  %-28s %10.0f readings/s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  (%d errors, %d throttled)\n",
		label, r.ReadingsPerSecond(), r.RequestsPerSecond(),
		float64(r.Percentile(50).Microseconds())/1000, float64(r.Percentile(99).Microseconds())/1000, r.Errors, r.Throttled)
	if r.FirstError != "" {
		fmt.Fprintf(w, "    first error: %s\n", r.FirstError)
	}
}

// gatewayState is one simulated gateway's clock and sequence.
type gatewayState struct {
	mu      sync.Mutex
	gw      Gateway
	seq     uint64
	ts      time.Time
	variant int
}

// A request body is a template with the seq and the timestamps patched in:
// building every body from scratch (simulating 30 panels, formatting 270
// numbers) costs the load generator more CPU than the server spends
// decoding it, and both share the machine. Templates are made per panel
// count, hour of the day (the diurnal curve) and one of a few variants;
// seqs are 12 digits and timestamps 13, so they patch in place.
type templates struct {
	mu   sync.Mutex
	byID map[templateKey]*template
	step time.Duration
}

type templateKey struct {
	panels, hour, variant int
	ndjson                bool
}

type template struct {
	body   []byte
	seqAt  int
	tsAt   []int
	nreads int
}

const (
	templateVariants = 8
	seqBase          = 100_000_000_000   // 12 digits
	tsPlaceholder    = 1_000_000_000_000 // 13 digits
)

func (ts *templates) get(k templateKey) *template {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t := ts.byID[k]; t != nil {
		return t
	}
	rng := rand.New(rand.NewPCG(uint64(k.panels), uint64(k.hour*templateVariants+k.variant)))
	at := time.Date(2026, 6, 21, k.hour, 30, 0, 0, time.UTC)
	labels := PanelLabels(k.panels)
	readings := make([]ingest.Reading, k.panels)
	for p := range readings {
		r := Simulate(rng, at, ts.step, 400)
		readings[p] = ingest.Reading{Panel: []byte(labels[p]), TS: tsPlaceholder,
			Vin: round2(r.Vin), Iin: round2(r.Iin), Pin: round2(r.Pin), Vout: round2(r.Vout),
			Temp: round2(r.Temp), RSSI: r.RSSI, Wh: round2(r.Wh)}
	}
	t := &template{nreads: k.panels}
	if k.ndjson {
		t.body = ingest.AppendNDJSON(nil, seqBase, readings)
	} else {
		t.body = ingest.AppendJSON(nil, seqBase, readings)
	}
	t.seqAt = bytes.Index(t.body, []byte(strconv.FormatUint(seqBase, 10)))
	marker := []byte(`"ts":` + strconv.FormatInt(tsPlaceholder, 10))
	for off := 0; ; {
		i := bytes.Index(t.body[off:], marker)
		if i < 0 {
			break
		}
		t.tsAt = append(t.tsAt, off+i+5)
		off += i + len(marker)
	}
	if ts.byID == nil {
		ts.byID = map[templateKey]*template{}
	}
	ts.byID[k] = t
	return t
}

// next builds the gateway's next request body into dst.
func (g *gatewayState) next(dst []byte, o *LoadOptions, tpl *templates) ([]byte, int) {
	g.mu.Lock()
	g.seq++
	g.ts = g.ts.Add(o.Step)
	// A gateway posting faster than its step runs ahead of the wall
	// clock; ingest refuses readings more than 5 minutes ahead, so the
	// clock waits at 4.
	if limit := time.Now().Add(4 * time.Minute); g.ts.After(limit) {
		g.ts = limit.Truncate(time.Second)
	}
	seq, ts := g.seq, g.ts
	g.mu.Unlock()
	t := tpl.get(templateKey{panels: g.gw.Panels, hour: ts.Hour(), variant: g.variant, ndjson: o.NDJSON})
	dst = append(dst[:0], t.body...)
	var num [20]byte
	copy(dst[t.seqAt:t.seqAt+12], strconv.AppendUint(num[:0], seqBase+seq, 10))
	tsDigits := strconv.AppendInt(num[:0], ts.UnixMilli(), 10)
	for _, at := range t.tsAt {
		copy(dst[at:at+13], tsDigits)
	}
	return dst, t.nreads
}

// acceptedOf reads "accepted" from an ingest answer without decoding it all.
func acceptedOf(body []byte) (int, bool) {
	const key = `"accepted":`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return 0, false
	}
	n := 0
	j := i + len(key)
	for ; j < len(body) && body[j] >= '0' && body[j] <= '9'; j++ {
		n = n*10 + int(body[j]-'0')
	}
	return n, j > i+len(key)
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

// Sim is a simulated gateway fleet: each gateway's clock and seq carry on
// from one Load to the next, so phases of a benchmark never repeat a seq.
type Sim struct {
	states    []*gatewayState
	templates templates
}

// NewSim makes the gateways' state: clocks at start, seqs at 0.
func NewSim(gws []Gateway, start time.Time, step time.Duration) *Sim {
	s := &Sim{states: make([]*gatewayState, len(gws)), templates: templates{step: step}}
	for i, gw := range gws {
		s.states[i] = &gatewayState{gw: gw, ts: start, variant: i % templateVariants}
	}
	return s
}

// Load posts gateway requests at the server until the duration ends. Every
// request is a gateway's next interval: readings on a diurnal curve, a new
// seq, its own timestamp.
func (sim *Sim) Load(ctx context.Context, o LoadOptions) (LoadResult, error) {
	if len(sim.states) == 0 {
		return LoadResult{}, fmt.Errorf("bench: no gateways")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.Step <= 0 {
		o.Step = time.Minute
	}
	states := sim.states
	client := &fasthttp.Client{
		MaxConnsPerHost:     o.Concurrency * 2,
		ReadTimeout:         30 * time.Second,
		WriteTimeout:        30 * time.Second,
		MaxIdleConnDuration: time.Minute,
	}
	var (
		res      LoadResult
		mu       sync.Mutex
		next     atomic.Uint64
		requests atomic.Uint64
	)
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	start, cpu0 := time.Now(), processCPU()
	// Pacing: request n is due at start + n/Rate; a ticker cannot tick
	// every few hundred microseconds reliably, a schedule can.
	var slot atomic.Uint64
	interval := time.Duration(0)
	if o.Rate > 0 {
		interval = time.Duration(float64(time.Second) / o.Rate)
	}
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			var body, zipped []byte
			var local LoadResult
			for ctx.Err() == nil {
				if interval > 0 {
					due := start.Add(time.Duration(slot.Add(1)-1) * interval)
					if d := time.Until(due); d > 0 {
						select {
						case <-time.After(d):
						case <-ctx.Done():
							continue
						}
					}
				}
				st := states[next.Add(1)%uint64(len(states))]
				var n int
				body, n = st.next(body, &o, &sim.templates)
				req.Reset()
				req.SetRequestURI(o.URL)
				req.Header.SetMethod("POST")
				req.Header.Set("Authorization", "Bearer "+st.gw.Key)
				if o.NDJSON {
					req.Header.SetContentType("application/x-ndjson")
				} else {
					req.Header.SetContentType("application/json")
				}
				payload := body
				if o.Gzip {
					zipped = fasthttp.AppendGzipBytes(zipped[:0], body)
					payload = zipped
					req.Header.Set("Content-Encoding", "gzip")
				}
				req.SetBody(payload)
				t0 := time.Now()
				err := client.Do(req, resp)
				lat := time.Since(t0)
				local.Bytes += uint64(len(payload))
				if local.FirstError == "" && (err != nil || resp.StatusCode() != fasthttp.StatusOK && resp.StatusCode() != fasthttp.StatusTooManyRequests) {
					if err != nil {
						local.FirstError = err.Error()
					} else {
						local.FirstError = fmt.Sprintf("%d %.200s", resp.StatusCode(), resp.Body())
					}
				}
				switch {
				case err != nil:
					local.Errors++
				case resp.StatusCode() == fasthttp.StatusOK:
					acc, ok := acceptedOf(resp.Body())
					if !ok || acc != n {
						// Readings rejected one by one are not ingest
						// throughput; a benchmark that sends them is wrong.
						local.Errors++
						if local.FirstError == "" {
							local.FirstError = fmt.Sprintf("200 %.200s", resp.Body())
						}
						break
					}
					local.Requests++
					local.Readings += uint64(acc)
					local.Latencies = append(local.Latencies, lat)
				case resp.StatusCode() == fasthttp.StatusTooManyRequests:
					local.Throttled++
				default:
					local.Errors++
				}
				requests.Add(1)
			}
			mu.Lock()
			res.Requests += local.Requests
			res.Readings += local.Readings
			res.Errors += local.Errors
			res.Throttled += local.Throttled
			res.Bytes += local.Bytes
			if res.FirstError == "" {
				res.FirstError = local.FirstError
			}
			res.Latencies = append(res.Latencies, local.Latencies...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed, res.CPU = time.Since(start), processCPU()-cpu0
	// The next load has a client of its own: these connections would count
	// against the server's --max-conns-per-ip until they idled out.
	client.CloseIdleConnections()
	slices.Sort(res.Latencies)
	return res, nil
}
