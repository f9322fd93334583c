package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
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
}

// gatewayState is one simulated gateway's clock and sequence.
type gatewayState struct {
	mu   sync.Mutex
	gw   Gateway
	seq  uint64
	ts   time.Time
	rng  *rand.Rand
	read []ingest.Reading
	lbls [][]byte
}

// next builds the gateway's next request body into dst.
func (g *gatewayState) next(dst []byte, o *LoadOptions) ([]byte, uint64, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seq++
	g.ts = g.ts.Add(o.Step)
	g.read = g.read[:0]
	for p := 0; p < g.gw.Panels; p++ {
		r := Simulate(g.rng, g.ts, o.Step, 400)
		g.read = append(g.read, ingest.Reading{Panel: g.lbls[p], TS: g.ts.UnixMilli(),
			Vin: round2(r.Vin), Iin: round2(r.Iin), Pin: round2(r.Pin), Vout: round2(r.Vout),
			Temp: round2(r.Temp), RSSI: r.RSSI, Wh: round2(r.Wh)})
	}
	if o.NDJSON {
		dst = ingest.AppendNDJSON(dst, g.seq, g.read)
	} else {
		dst = ingest.AppendJSON(dst, g.seq, g.read)
	}
	return dst, g.seq, len(g.read)
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

// Sim is a simulated gateway fleet: each gateway's clock and seq carry on
// from one Load to the next, so phases of a benchmark never repeat a seq.
type Sim struct {
	states []*gatewayState
}

// NewSim makes the gateways' state: clocks at start, seqs at 0.
func NewSim(gws []Gateway, start time.Time, seed uint64) *Sim {
	s := &Sim{states: make([]*gatewayState, len(gws))}
	for i, gw := range gws {
		st := &gatewayState{gw: gw, ts: start, rng: rand.New(rand.NewPCG(seed, uint64(i)))}
		for _, l := range PanelLabels(gw.Panels) {
			st.lbls = append(st.lbls, []byte(l))
		}
		s.states[i] = st
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
	start := time.Now()
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
				body, _, n = st.next(body[:0], &o)
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
				switch {
				case err != nil:
					local.Errors++
				case resp.StatusCode() == fasthttp.StatusOK:
					local.Requests++
					local.Readings += uint64(n)
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
			res.Latencies = append(res.Latencies, local.Latencies...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	slices.Sort(res.Latencies)
	return res, nil
}
