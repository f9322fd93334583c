package mail

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the mail metrics, shared by the mailers of a process: each
// mailer labels its series with its name (mailer="smtp" or "outbox"), so one
// registry holds them once.
type Metrics struct {
	sent     *prometheus.CounterVec   // mailer
	failures *prometheus.CounterVec   // mailer
	duration *prometheus.HistogramVec // mailer
	limited  prometheus.Counter
}

// mailerNames are the values of the mailer label, initialised up front so
// that a rate() over a failure counter starts at zero rather than at the
// first failure.
var mailerNames = []string{"smtp", "outbox"}

// NewMetrics registers the mail metrics with reg; a nil reg keeps them
// unregistered (tests, benchmarks).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	const ns, sub = "fleetscope", "mail"
	m := &Metrics{
		sent: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "sent_total",
			Help: "Mails a mailer accepted: submitted to the SMTP server, or written to the outbox table."}, []string{"mailer"}),
		failures: f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "failures_total",
			Help: "Mails a mailer failed to send, invalid messages included."}, []string{"mailer"}),
		// 1 ms to ~33 s: an outbox insert takes milliseconds, an SMTP
		// submission with TLS handshakes up to seconds, and SMTPOptions'
		// default timeout is 30 s.
		duration: f.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "send_duration_seconds",
			Help:    "Time a mailer took to send a mail, failures included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, []string{"mailer"}),
		limited: f.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "rate_limited_total",
			Help: "Mails not sent because their recipient had reached the per-address limit."}),
	}
	for _, n := range mailerNames {
		m.sent.WithLabelValues(n)
		m.failures.WithLabelValues(n)
		m.duration.WithLabelValues(n)
	}
	return m
}

func (m *Metrics) observe(mailer string, start time.Time, err error) {
	m.duration.WithLabelValues(mailer).Observe(time.Since(start).Seconds())
	if err != nil {
		m.failures.WithLabelValues(mailer).Inc()
		return
	}
	m.sent.WithLabelValues(mailer).Inc()
}
