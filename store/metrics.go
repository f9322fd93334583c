package store

import (
	"io"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	statements   *prometheus.CounterVec
	errors       *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	insertedRows *prometheus.CounterVec
	sentBytes    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		statements: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "store", Name: "statements_total",
			Help: "Statements sent to ClickHouse, by operation (select, insert, ddl, ping, other).",
		}, []string{"op"}),
		errors: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "store", Name: "errors_total",
			Help: "Statements that failed, by ClickHouse exception code (or canceled, deadline, client).",
		}, []string{"code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "fleetscope", Subsystem: "store", Name: "statement_duration_seconds",
			Help:    "Time from sending a statement to its answer, by operation. For selects this is the time to the first block.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"op"}),
		insertedRows: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "store", Name: "inserted_rows_total",
			Help: "Rows inserted into ClickHouse by successful batches, by table.",
		}, []string{"table"}),
		sentBytes: f.NewCounter(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "store", Name: "sent_bytes_total",
			Help: "Bytes sent to ClickHouse: statements and inserted data, as encoded on the wire.",
		}),
	}
	// The codes the client itself gives exist from the start, so that a
	// dashboard's error panel shows 0 rather than nothing.
	for _, code := range []string{"canceled", "deadline", "client"} {
		m.errors.WithLabelValues(code)
	}
	return m
}

// countingTransport counts request bytes on the way to the engine or an
// HTTP server.
func (m *metrics) countingTransport(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Body != nil && req.Body != http.NoBody {
			req.Body = &countingReader{ReadCloser: req.Body, c: m.sentBytes}
		}
		return rt.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type countingReader struct {
	io.ReadCloser
	c prometheus.Counter
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.c.Add(float64(n))
	return n, err
}

// countingConn counts bytes written to a native-protocol connection.
func (m *metrics) countingConn(c net.Conn) net.Conn { return &countingConn{Conn: c, c: m.sentBytes} }

type countingConn struct {
	net.Conn
	c prometheus.Counter
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.c.Add(float64(n))
	return n, err
}
