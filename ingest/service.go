package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetscope/fleetscope/ingest/wal"
	"github.com/fleetscope/fleetscope/live"
	"github.com/fleetscope/fleetscope/rollup"
	"github.com/fleetscope/fleetscope/store"
)

// Options configure the ingest service. The zero value of every field but
// Dir, Store and Gateways is valid; setDefaults explains each default.
type Options struct {
	// Dir holds the write-ahead log and the flush journal.
	Dir      string
	Store    *store.Store
	Gateways GatewayAuth
	// Zones gives each system's time zone, for energy today. Nil: UTC.
	Zones live.ZoneFunc

	// MaxBodySize bounds a request body, before and after decompression.
	MaxBodySize int
	// MaxReadings bounds the readings of one request.
	MaxReadings int
	// MaxPanels bounds a system's panel labels (see live.Options.MaxPanels):
	// a reading with a new label beyond it is rejected (too_many_panels).
	MaxPanels int
	// Retention is how old a reading may be and still be accepted.
	Retention time.Duration
	// RawRetention is how long raw readings are kept (and rollups finer
	// than an hour): Open sets it as the tables' TTL (store.SetRawRetention).
	// Default store.DefaultRawRetention; never below Retention, or accepted
	// readings would be stored only to expire.
	RawRetention time.Duration
	// BatchRows is the most readings one ClickHouse insert carries.
	BatchRows int
	// FlushInterval is how long a reading may wait for its batch to fill.
	FlushInterval time.Duration
	// Senders is the number of batches inserted at once.
	Senders int
	// MaxBacklog is how many bytes of WAL may wait for ClickHouse before
	// ingest answers 429.
	MaxBacklog int64
	// Lateness is how long after a minute ends the rollup worker waits
	// before computing it; readings flushed later than half of it mark their
	// bucket for recomputation.
	Lateness time.Duration

	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock (tests set it). Nil: time.Now.
	Now func() time.Time

	// WALSkipCorrupt opens a WAL with a corrupt sealed segment, skipping
	// what cannot be read (wal.Options.SkipCorrupt): those readings are
	// lost, logged and counted. Off, such a WAL stops Open, for an operator
	// to decide.
	WALSkipCorrupt bool

	// walSegmentSize overrides the WAL's segment size (tests).
	walSegmentSize int64
	// hooks are called at points tests need to observe (nil: none).
	hooks *testHooks
}

// testHooks are the points of the flush path that tests observe.
type testHooks struct {
	// truncated is called after the WAL dropped segments, with the size of
	// the flush journal that is durable (fsynced) at that moment.
	truncated func(journalSynced int64)
	// beforeFlusher is called once the WAL is open and replayed, before
	// the flusher starts reading it.
	beforeFlusher func()
}

// DefaultBatchRows is Options.BatchRows when unset. Every insert is a part
// the engine merges again and again as parts grow, and at saturation those
// background merges of the readings table took half a core: the larger the
// first part, the fewer merges each row goes through. With 1 M rows instead
// of 200 k, `fleetscope bench ingest` on this machine acknowledged 391–413 k
// readings/s instead of 336–350 k, and p99 ack at half of saturation fell
// from 19–23 ms to 14–15 ms (the WAL's fsyncs compete with fewer part
// writes); the cost is memory: batches in flight (encoded in Go, copied to
// the engine, sorted there) took the server's peak RSS from ~560 MiB to
// ~1.1 GiB.
const DefaultBatchRows = 1_000_000

// DefaultFlushInterval is Options.FlushInterval when unset: long enough for
// a fleet at a few hundred thousand readings/s to fill DefaultBatchRows,
// short enough that history and fleet energy trail the gateways by seconds
// (the rollups they read trail by ~2 minutes anyway); the live state the
// dashboards show does not wait for it.
const DefaultFlushInterval = 3 * time.Second

func (o *Options) setDefaults() {
	if o.MaxBodySize <= 0 {
		o.MaxBodySize = DefaultMaxBodySize
	}
	if o.MaxReadings <= 0 {
		o.MaxReadings = DefaultMaxReadings
	}
	if o.MaxPanels <= 0 {
		o.MaxPanels = live.DefaultMaxPanels
	}
	if o.Retention <= 0 {
		o.Retention = DefaultMaxAge
	}
	if o.RawRetention <= 0 {
		o.RawRetention = store.DefaultRawRetention
	}
	if o.BatchRows <= 0 {
		o.BatchRows = DefaultBatchRows
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.Senders <= 0 {
		// 2: one batch is encoded in Go while the previous is inserted.
		o.Senders = 2
	}
	if o.MaxBacklog <= 0 {
		// 2 GiB of WAL: ~100 s of ClickHouse outage at 1 M readings/s, half
		// an hour at a 200 k-system fleet's 100 k readings/s.
		o.MaxBacklog = 2 << 30
	}
	if o.Lateness <= 0 {
		o.Lateness = rollup.DefaultLateness
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Service is the running ingest path: the HTTP handler, the WAL, the
// flusher that moves the WAL into ClickHouse, and the live state.
type Service struct {
	opts    Options
	log     *slog.Logger
	m       *metrics
	wal     *wal.WAL
	dedup   *dedup
	live    *live.State
	flusher *flusher
	logID   string // see walID

	decoders sync.Pool // *requestState

	// closing turns new requests away (503) during shutdown; requests hold
	// gate's read lock, so Close's write lock waits for those in flight.
	closing atomic.Bool
	gate    sync.RWMutex
	closed  bool // guarded by gate's write lock
	// faultLogged is when a failed WAL append was last logged (Unix ns):
	// during a fault every request fails, and the log says so once in a
	// while, not once per request.
	faultLogged atomic.Int64
}

// Open opens the WAL, restores idempotency and live state, and starts the
// flusher. The store must be reachable: state is restored from it.
func Open(ctx context.Context, opts Options) (*Service, error) {
	opts.setDefaults()
	if opts.Dir == "" || opts.Store == nil || opts.Gateways == nil {
		return nil, errors.New("ingest: Dir, Store and Gateways are required")
	}
	if opts.Retention > opts.RawRetention {
		return nil, fmt.Errorf("ingest: readings are accepted up to %s old but kept only %s", opts.Retention, opts.RawRetention)
	}
	if err := opts.Store.SetRawRetention(ctx, opts.RawRetention); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	logID, err := walID(opts.Dir)
	if err != nil {
		return nil, err
	}
	s := &Service{
		opts:  opts,
		log:   opts.Logger,
		m:     newMetrics(opts.Registerer),
		dedup: newDedup(),
		live:  live.NewState(live.Options{Zones: opts.Zones, MaxPanels: opts.MaxPanels}),
		logID: logID,
	}
	s.decoders.New = func() any { return newRequestState(opts) }
	s.wal, err = wal.Open(opts.Dir, wal.Options{Logger: opts.Logger, SegmentSize: opts.walSegmentSize, SkipCorrupt: opts.WALSkipCorrupt}, opts.Registerer)
	if errors.Is(err, wal.ErrCorrupt) {
		return nil, fmt.Errorf("ingest: %w (the acknowledged readings in it cannot all be read; to start past what cannot be, losing it, set Options.WALSkipCorrupt — serve's --wal-skip-corrupt)", err)
	}
	if err != nil {
		return nil, err
	}
	if r := s.wal.Recovery(); r.CorruptSkipped > 0 {
		s.log.Error("ingest: started past corrupt WAL data; the readings in it are lost", "skipped_bytes", r.CorruptSkipped,
			"skipped_records", r.SkippedRecords, "dir", opts.Dir)
	}
	if err := s.restore(ctx); err != nil {
		s.wal.Close()
		return nil, err
	}
	if h := opts.hooks; h != nil && h.beforeFlusher != nil {
		h.beforeFlusher()
	}
	if s.flusher, err = startFlusher(s); err != nil {
		s.wal.Close()
		return nil, err
	}
	return s, nil
}

// walID returns the identity of this write-ahead log, made when the log
// is: it prefixes the insert deduplication tokens ("<id>:<first>-<last>").
// It belongs to the log, not to the node (whose identity is serve's
// --node-id): LSNs restart at 1 when the WAL directory is wiped, and the new
// log's tokens must never name rows of the old one, so a new log gets a new
// id even where the node keeps its own. Logs made before it had this name
// kept it in "node-id"; that file is renamed.
func walID(dir string) (string, error) {
	path := filepath.Join(dir, "wal-id")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if b, err := os.ReadFile(filepath.Join(dir, "node-id")); err == nil {
		if err := os.Rename(filepath.Join(dir, "node-id"), path); err != nil {
			return "", fmt.Errorf("ingest: wal id: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("ingest: wal id: %w", err)
	}
	return id, nil
}

// Lateness is how late a reading may reach ClickHouse before it marks its
// minute for recomputation; the rollup worker waits as long before it
// computes a minute, so serve hands it this value.
func (s *Service) Lateness() time.Duration { return s.opts.Lateness }

// Live returns the live state the query package reads.
func (s *Service) Live() *live.State { return s.live }

// Ready reports whether ingest works: the WAL is writable and the flusher
// is reading it.
func (s *Service) Ready() error {
	if err := s.wal.Err(); err != nil {
		return err
	}
	if err := s.flusher.readErr.Load(); err != nil {
		return *err
	}
	return nil
}

// restore rebuilds idempotency and live state: the seq windows and live
// rows stored in ClickHouse, then every record still in the WAL.
func (s *Service) restore(ctx context.Context) error {
	st := s.opts.Store
	rows, err := st.Query(ctx, "SELECT gateway_id, max_seq, seqs FROM ingest_dedup FINAL")
	if err != nil {
		return fmt.Errorf("ingest: restore seq windows: %w", err)
	}
	for rows.Next() {
		var cp checkpoint
		var seqs string
		if err := rows.Scan(&cp.gateway, &cp.max, &seqs); err != nil {
			rows.Close()
			return err
		}
		cp.seqs = []byte(seqs)
		if err := s.dedup.restore(cp); err != nil {
			s.log.Warn("ingest: seq window not restored", "err", err)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = st.Query(ctx, "SELECT system_id, lsn, day, energy_today, panels, panel_pin, panel_ts FROM system_live FINAL")
	if err != nil {
		return fmt.Errorf("ingest: restore live state: %w", err)
	}
	for rows.Next() {
		var (
			sys    uint32
			lsn    uint64
			day    time.Time
			energy uint64
			panels []string
			pins   []uint16
			ts     []time.Time
		)
		if err := rows.Scan(&sys, &lsn, &day, &energy, &panels, &pins, &ts); err != nil {
			rows.Close()
			return err
		}
		pin64 := make([]int64, len(pins))
		ts64 := make([]int64, len(ts))
		for i := range pins {
			pin64[i] = int64(pins[i])
			ts64[i] = ts[i].UnixMilli()
		}
		s.live.Restore(sys, lsn, int32(day.Unix()/86400), energy, panels, pin64, ts64)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var rec Record
	return s.wal.Replay(0, func(lsn uint64, p []byte) error {
		if err := rec.Decode(p); err != nil {
			return nil // the flusher reports it
		}
		s.dedup.observe(rec.GatewayID, rec.Seq, rec.BodyHash)
		return nil
	})
}

// Close stops accepting requests, waits for the ones in flight, flushes
// what the WAL holds to ClickHouse (until ctx is done; what is left stays in
// the WAL for the next start) and closes the WAL.
// Close is idempotent.
func (s *Service) Close(ctx context.Context) error {
	s.closing.Store(true)
	s.gate.Lock()
	defer s.gate.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	ferr := s.flusher.stop(ctx)
	werr := s.wal.Close()
	return errors.Join(ferr, werr)
}

// WaitFlushed blocks until every record durable now is stored in
// ClickHouse, or ctx is done. Tests and benchmarks use it to read back.
func (s *Service) WaitFlushed(ctx context.Context) error {
	target := s.wal.Stats().NextLSN - 1
	for {
		if s.flusher.committed.Load() >= target {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
