package main

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Readiness (GET /readyz, for load balancers): a node can take traffic
// when ingest can make readings durable — its WAL is writable and its
// backlog under --ingest-max-backlog — and queries can answer from memory
// (the access-control index and the search catalogue are built), and it is
// not shutting down. The engine is not a condition: with it down, ingest
// goes on into the WAL and queries answer from memory, and as every node
// shares the engine, a load balancer that pulled nodes for it would pull
// them all. Its state is in the body ("engine": "up"/"down") and in
// fleetscope_store_up, probed in the background; a backlog that is full
// because the engine is down likewise stays in the body (ingest answers 429
// meanwhile) — only a backlog full while the engine answers (this node
// falls behind) makes the node unready. /readyz does no I/O: polling it
// every second costs nothing, and it says short states only.

// probeInterval is how often the engine is probed: an outage shows within
// a few seconds without a statement per /readyz call.
const probeInterval = 2 * time.Second

// health is the engine probe's state and the readiness metrics.
type health struct {
	engineUp atomic.Bool
	shutdown atomic.Bool
	storeUp  prometheus.Gauge
	ready    prometheus.Gauge
}

func newHealth(reg prometheus.Registerer) *health {
	f := promauto.With(reg)
	h := &health{
		storeUp: f.NewGauge(prometheus.GaugeOpts{Namespace: "fleetscope", Subsystem: "store", Name: "up",
			Help: "1 while ClickHouse (the engine) answers this node's probe, every 2 s; 0 during an outage (ingest goes on into the WAL)."}),
		ready: f.NewGauge(prometheus.GaugeOpts{Namespace: "fleetscope", Name: "ready",
			Help: "1 while this node can take traffic, as GET /readyz says (updated every 2 s)."}),
	}
	h.engineUp.Store(true) // start-up has just reached it
	h.storeUp.Set(1)
	return h
}

// probe pings the engine every probeInterval until ctx ends.
func (s *server) probe(ctx context.Context) {
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, probeInterval)
		err := s.store.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		s.health.engineUp.Store(err == nil)
		s.health.storeUp.Set(b2f(err == nil))
		ready, _ := s.ready(ctx)
		s.health.ready.Set(b2f(ready))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ready reports whether this node can take traffic, and each check's state
// in a word (see above).
func (s *server) ready(context.Context) (bool, map[string]string) {
	ready := true
	state := func(ok bool, good, bad string) string {
		if ok {
			return good
		}
		ready = false
		return bad
	}
	up := s.health.engineUp.Load()
	backlog, limit := s.ingest.Backlog()
	checks := map[string]string{
		"wal":      state(s.ingest.Ready() == nil, "ok", "failed"),
		"backlog":  state(backlog < limit || !up, "ok", "full"),
		"query":    state(s.query != nil, "ok", "starting"),
		"shutdown": state(!s.health.shutdown.Load(), "no", "yes"),
		"engine":   "up",
	}
	if !up {
		checks["engine"] = "down"
		if backlog >= limit {
			checks["backlog"] = "full"
		}
	}
	return ready, checks
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
