package ratelimit

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics holds the metric vectors every limiter of one registry shares,
// labelled by the limiter's name: a registry takes each metric name once,
// so limiters cannot register their own. Create one per registry with
// NewMetrics and pass it to every New and NewConnLimiter.
type Metrics struct {
	allowed     *prometheus.CounterVec // limiter
	limited     *prometheus.CounterVec // limiter
	keys        *prometheus.GaugeVec   // limiter
	evictions   *prometheus.CounterVec // limiter, reason
	connections *prometheus.GaugeVec   // limiter

	mu    sync.Mutex
	names map[string]bool
}

// Eviction reasons, the values of the reason label.
const (
	evictExpired = "expired"     // window or lock over
	evictBelow   = "below_limit" // least recently hit key below its limit
	evictLocked  = "locked"      // a lock cut short: every key was locked
)

// NewMetrics creates the vectors on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	const ns, sub = "fleetscope", "ratelimit"
	return &Metrics{
		allowed: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "allowed_total",
			Help: "Requests a limiter allowed (counted against their key), by limiter."}, []string{"limiter"}),
		limited: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "limited_total",
			Help: "Requests a limiter refused (429) or connections a connection limiter closed, by limiter."}, []string{"limiter"}),
		keys: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "keys",
			Help: "Keys a limiter tracks (ended windows included until their entry is reused); connection limiters: addresses with open connections."}, []string{"limiter"}),
		evictions: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "evictions_total",
			Help: "Keys forgotten to make room for new ones at a limiter's MaxKeys, by limiter and reason: expired (window or lock over), below_limit (least recently hit key under its limit), locked (every key was locked: a lock cut short, a sign of a flood)."}, []string{"limiter", "reason"}),
		connections: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "connections",
			Help: "Connections a connection limiter holds open, by limiter."}, []string{"limiter"}),
		names: map[string]bool{},
	}
}

// claim reserves a limiter name: two limiters with one name would sum
// into the same series and hide each other.
func (m *Metrics) claim(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.names[name] {
		panic(fmt.Sprintf("ratelimit: a limiter named %q already uses these metrics", name))
	}
	m.names[name] = true
}
