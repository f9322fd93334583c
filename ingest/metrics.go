package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	requests     *prometheus.CounterVec
	readings     *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	bytesIn      prometheus.Counter
	decode       prometheus.Histogram
	ack          prometheus.Histogram
	throttled    *prometheus.CounterVec
	unavailable  *prometheus.CounterVec
	batchRows    prometheus.Histogram
	flushSeconds prometheus.Histogram
	flushedRows  prometheus.Counter
	flushErrors  *prometheus.CounterVec
	flushRetries prometheus.Counter
	liveRepeats  prometheus.Counter
	stalled      *prometheus.GaugeVec

	// Children of the vectors above that every request touches, resolved
	// once: a label lookup per request is a hash and a lock.
	requestsOK       prometheus.Counter
	readingsAccepted prometheus.Counter
	readingsRejected prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "ingest", Name: "requests_total",
			Help: "Ingest requests answered, by HTTP status code (the label was status before version 0.2).",
		}, []string{"code"}),
		readings: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "ingest", Name: "readings_total",
			Help: "Readings received, by outcome: accepted (durable), rejected (invalid, see fleetscope_ingest_rejected_readings_total), duplicate (repeated seq and body), seq_reused (repeated seq, other body: 409, not stored).",
		}, []string{"outcome"}),
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "ingest", Name: "rejected_readings_total",
			Help: "Readings rejected one by one, by reason.",
		}, []string{"reason"}),
		bytesIn: f.NewCounter(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "ingest", Name: "received_bytes_total",
			Help: "Request body bytes received, as sent (compressed or not).",
		}),
		decode: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: "fleetscope", Subsystem: "ingest", Name: "decode_seconds",
			Help:    "Time to decompress, decode and validate one request body.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10),
		}),
		ack: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: "fleetscope", Subsystem: "ingest", Name: "request_duration_seconds",
			Help:    "Time from receiving a request to answering it; for 200 answers this includes the WAL fsync.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
		}),
		throttled: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "ingest", Name: "throttled_total",
			Help: "Requests answered 429, by reason: backlog (WAL waiting for ClickHouse over its limit), wal (fsync queue full), inflight (same seq in progress).",
		}, []string{"reason"}),
		unavailable: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "ingest", Name: "unavailable_total",
			Help: "Requests answered 503 with Retry-After, by reason: wal (the write-ahead log cannot make readings durable now — a full disk, no file descriptors — and repairs itself), shutting_down.",
		}, []string{"reason"}),
		batchRows: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: "fleetscope", Subsystem: "ingest", Name: "batch_rows",
			Help:    "Readings per ClickHouse insert batch.",
			Buckets: prometheus.ExponentialBuckets(100, 4, 8),
		}),
		flushSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: "fleetscope", Subsystem: "ingest", Name: "flush_duration_seconds",
			Help:    "Time to insert one batch into ClickHouse (every table it touches), for successful attempts.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		flushedRows: f.NewCounter(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "ingest", Name: "flushed_readings_total",
			Help: "Readings stored in ClickHouse by the flusher.",
		}),
		flushErrors: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "ingest", Name: "flush_errors_total",
			Help: "Flusher failures, by stage: insert (retried), wal (reading the log; retried unless corrupt), journal (writing the flush journal; retried), decode (record skipped).",
		}, []string{"stage"}),
		stalled: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "fleetscope", Subsystem: "ingest", Name: "stalled",
			Help: "Parts of the flush path held up by a fault and retrying with backoff, by stage: wal_read (the flusher reading the WAL), journal (writing the flush journal), insert (batches ClickHouse has not taken). The WAL keeps what ingest acknowledges meanwhile; past its backlog limit ingest answers 429.",
		}, []string{"stage"}),
		flushRetries: f.NewCounter(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "ingest", Name: "flush_retries_total",
			Help: "Batch inserts retried after a failure.",
		}),
		liveRepeats: f.NewCounter(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "ingest", Name: "repeated_readings_total",
			Help: "Readings of a panel and timestamp counted before (resent under another seq, or through another node), left out of power now and energy today; stored, and counted once by history and rollups.",
		}),
	}
	for _, r := range Reasons() {
		m.rejected.WithLabelValues(r.String())
	}
	for _, r := range []string{"backlog", "wal", "inflight"} {
		m.throttled.WithLabelValues(r)
	}
	for _, r := range []string{"wal", "shutting_down"} {
		m.unavailable.WithLabelValues(r)
	}
	for _, st := range []string{"insert", "wal", "journal", "decode"} {
		m.flushErrors.WithLabelValues(st)
	}
	for _, st := range []string{stageWALRead, stageJournal, stageInsert} {
		m.stalled.WithLabelValues(st)
	}
	for _, o := range []string{"accepted", "rejected", "duplicate", "seq_reused"} {
		m.readings.WithLabelValues(o)
	}
	m.requestsOK = m.requests.WithLabelValues("200")
	m.readingsAccepted = m.readings.WithLabelValues("accepted")
	m.readingsRejected = m.readings.WithLabelValues("rejected")
	// Every label value a dashboard or an alert names exists from the
	// start: a panel shows 0 rather than "no data" until the first incident.
	for _, code := range StatusCodes {
		m.requests.WithLabelValues(code)
	}
	for _, r := range []string{"backlog", "wal", "inflight"} {
		m.throttled.WithLabelValues(r)
	}
	for _, stage := range []string{"insert", "wal", "decode"} {
		m.flushErrors.WithLabelValues(stage)
	}
	return m
}

// StatusCodes are the HTTP status codes POST /v1/ingest answers, each a
// series of fleetscope_ingest_requests_total{code} from the start.
var StatusCodes = []string{"200", "400", "401", "403", "405", "409", "413", "415", "429", "503"}

// Backlog returns the WAL bytes waiting for ClickHouse, as the throttle
// estimates them, and the limit beyond which ingest answers 429
// (Options.MaxBacklog): readiness reports them.
func (s *Service) Backlog() (bytes, limit int64) {
	return backlogBytes(s.wal.Stats()), s.opts.MaxBacklog
}
