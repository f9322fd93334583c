package wal

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	fsyncSeconds     prometheus.Histogram
	groupRecords     prometheus.Histogram
	writtenBytes     prometheus.Counter
	appendedRecords  prometheus.Counter
	segments         prometheus.Gauge
	backlogBytes     prometheus.Gauge
	backlogRecords   prometheus.Gauge
	truncatedSegs    prometheus.Counter
	tornBytesDropped prometheus.Counter
	corruptSkipped   prometheus.Counter
	// corruptSkippedRecords: LSN gaps left by skipped corruption.
	corruptSkippedRecords prometheus.Counter
	preallocatedSegs      prometheus.Counter
	preallocFailures      prometheus.Counter
	writeErrors           prometheus.Counter
	repairs               *prometheus.CounterVec
	broken                prometheus.Gauge
}

// newMetrics registers the WAL's metrics with reg; nil reg registers
// nothing. One WAL per registry: wrap reg (prometheus.WrapRegistererWith)
// to run several.
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	const ns, sub = "fleetscope", "wal"
	m := &metrics{
		fsyncSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "fsync_duration_seconds",
			Help: "Duration of one group commit's fdatasync.",
			// 100 µs (NVMe with a write cache) to ~3 s (a stalled disk).
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 16),
		}),
		groupRecords: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "group_records",
			Help: "Records made durable by one fsync (group commit size).",
			// 1 to 16384: one request alone up to a saturated disk's backlog.
			Buckets: prometheus.ExponentialBuckets(1, 2, 15),
		}),
		writtenBytes: f.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "written_bytes_total",
			Help: "Bytes written to segment files, framing included.",
		}),
		appendedRecords: f.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "appended_records_total",
			Help: "Records made durable.",
		}),
		segments: f.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "segments",
			Help: "Segment files on disk.",
		}),
		backlogBytes: f.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "backlog_bytes",
			Help: "Bytes of records in segment files on disk (not yet truncated), framing and headers included; preallocated files take up to a segment more.",
		}),
		backlogRecords: f.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "backlog_records",
			Help: "Records at or after the last truncation point, i.e. not yet committed downstream.",
		}),
		truncatedSegs: f.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "truncated_segments_total",
			Help: "Segment files deleted by TruncateBefore.",
		}),
		tornBytesDropped: f.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "torn_tail_dropped_bytes_total",
			Help: "Bytes cut from the end of the last segment on open: a write torn by a crash, never acknowledged.",
		}),
		corruptSkipped: f.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "corrupt_skipped_bytes_total",
			Help: "Bytes of older segments skipped on open because they were corrupt (Options.SkipCorrupt).",
		}),
		corruptSkippedRecords: f.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "corrupt_skipped_records_total",
			Help: "Records lost to corruption skipped on open (Options.SkipCorrupt), as far as the LSNs of the records that remain tell.",
		}),
		preallocatedSegs: f.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "preallocated_segments_total",
			Help: "Segments started in a zero-filled file prepared in advance; the others (the first after open, or when the spare was not ready) grow as they are written and cost more per fsync.",
		}),
		preallocFailures: f.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "preallocation_failures_total",
			Help: "Failed attempts to prepare the next segment file in advance (see the log).",
		}),
		writeErrors: f.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "write_errors_total",
			Help: "Group commits whose write or fsync failed (a full disk, no file descriptors left, an I/O error): each breaks the log until it repairs itself.",
		}),
		repairs: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "repairs_total",
			Help: "Attempts to repair a broken log, by result (ok: appends resume; error: the fault lasts, retried with backoff).",
		}, []string{"result"}),
		broken: f.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "broken",
			Help: "1 while a write error keeps the log from taking appends (ingest answers 503), until it repairs itself.",
		}),
	}
	for _, r := range []string{"ok", "error"} {
		m.repairs.WithLabelValues(r)
	}
	return m
}
