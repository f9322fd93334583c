package api

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics of the HTTP layer. Every endpoint is counted the same way, so
// one dashboard panel shows them all; labels follow promhttp's (code,
// method).
type metrics struct {
	requests     *prometheus.CounterVec   // endpoint, method, code
	duration     *prometheus.HistogramVec // endpoint
	items        *prometheus.HistogramVec // endpoint
	panics       prometheus.Counter
	authFailures prometheus.Counter
	early        *prometheus.CounterVec // reason
}

// latencyBuckets span 50 µs to ~13 s: All Locations answers in well under
// a millisecond, history in milliseconds to seconds.
var latencyBuckets = prometheus.ExponentialBuckets(50e-6, 2, 19)

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	const ns, sub = "fleetscope", "http"
	return &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "API requests answered, by endpoint, method and HTTP status (ingest counts its own: fleetscope_ingest_requests_total)."},
			[]string{"endpoint", "method", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
			Help: "API request latency by endpoint, from routing to the answer written.", Buckets: latencyBuckets}, []string{"endpoint"}),
		items: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "response_items",
			Help: "Items in a query answer's page, by endpoint.", Buckets: prometheus.ExponentialBuckets(1, 4, 7)}, []string{"endpoint"}),
		panics: f.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "panics_total",
			Help: "Handlers that panicked (answered 500; each is a bug, logged with its stack)."}),
		authFailures: f.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "auth_failures_total",
			Help: "Requests refused with 401: credential missing, unknown, expired or revoked, or a failed login."}),
		early: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "refused_before_body_total",
			Help: "Requests answered before their body was read, by reason: body_limit (over the endpoint's limit, or no credential), malformed, timeout."},
			[]string{"reason"}),
	}
}

// preinit makes the series of every route exist from the start: its
// latency, and its 5xx answers, which error-rate alerts divide by all
// answers (0, not nothing, until the first failure).
func (m *metrics) preinit(routes []endpoint) {
	for _, e := range routes {
		m.duration.WithLabelValues(e.name)
		for _, code := range []string{"500", "503"} {
			m.requests.WithLabelValues(e.name, e.method, code)
		}
	}
}

func (m *metrics) observe(endpoint, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(endpoint, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(endpoint).Observe(d.Seconds())
}
