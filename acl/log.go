package acl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/fleetscope/fleetscope/store"
)

// Log keeps the index persistent and shared: every change this node makes
// is an event row in the acl_events table before it is applied, start-up
// folds the table into the index, and a tailer applies the events stored
// since, so every node converges on the same state (the state is a function
// of the set of events; see the package doc).
//
// Tailing reads events by the server's insertion time with an overlap, so
// an event that became visible late is still seen; re-applying an event is
// harmless. A change made on another node is applied here within
// PollInterval plus the overlap's worst case, inside DESIGN's 2 s. The
// tailer reads this node's own events too: one whose insert failed on the
// way back (a timeout after the row was written) was not applied by Do, yet
// is in the log and applied everywhere else.
//
// Snapshots (log_snapshot.go) keep start-up short: the state's registers are
// stored in the acl_snapshots table every SnapshotInterval or SnapshotEvents
// events, and start-up folds the newest snapshot plus the events inserted
// after the point it covers, instead of the whole log.
type Log struct {
	opts LogOptions
	x    *Index
	m    logMetrics

	mu    sync.Mutex // guards since; held by Poll while it applies
	since time.Time  // insertion time up to which this node has read

	// pending counts the events that reached the state through this log
	// (persisted here or tailed from other nodes) since the last snapshot
	// was taken.
	pending   atomic.Int64
	snapMu    sync.Mutex    // one snapshot at a time
	snapNow   chan struct{} // wakes the snapshot loop before its interval
	snapForce atomic.Bool   // the next wake-up stores a snapshot whatever pending says
	loaded    loadInfo
	// polled is when the event log was last read whole (start-up, or a
	// poll that succeeded), in Unix nanoseconds: the tail lag metric.
	polled atomic.Int64

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// LogOptions configure a Log. The zero value is valid apart from Store.
type LogOptions struct {
	Store *store.Store
	// PollInterval is how often other nodes' events are read. Default
	// 500 ms: a change reaches every node well within 2 s.
	PollInterval time.Duration
	// Overlap is how far back each poll looks behind the newest insertion
	// it has seen, for inserts that commit after later ones. Default 5 s.
	Overlap time.Duration

	// SnapshotInterval is how often the state is stored as a snapshot if
	// any event reached it since the last one. Default 10 min: a snapshot
	// of 10 M grants costs a few seconds of one core, and the tail
	// start-up folds after it is at most ten minutes of changes.
	SnapshotInterval time.Duration
	// SnapshotEvents stores a snapshot as soon as this many events reached
	// the state since the last one, before SnapshotInterval is up. Default
	// 1 000 000: a tail of a million events folds in about a second.
	SnapshotEvents int
	// SnapshotsKept is how many snapshots stay in the table; a node that
	// stores one deletes those older than the newest SnapshotsKept. Default
	// 3: start-up reads the newest, and a damaged or unfinished one leaves
	// older ones to fall back on.
	SnapshotsKept int
	// ManualSnapshots turns the background snapshots off: only calls to
	// Log.Snapshot store one (tests, tools).
	ManualSnapshots bool

	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

func (o *LogOptions) setDefaults() {
	if o.PollInterval <= 0 {
		o.PollInterval = 500 * time.Millisecond
	}
	if o.Overlap <= 0 {
		o.Overlap = 5 * time.Second
	}
	if o.SnapshotInterval <= 0 {
		o.SnapshotInterval = 10 * time.Minute
	}
	if o.SnapshotEvents <= 0 {
		o.SnapshotEvents = 1_000_000
	}
	if o.SnapshotsKept <= 0 {
		o.SnapshotsKept = 3
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

type logMetrics struct {
	persisted prometheus.Counter
	applied   prometheus.Counter
	pollErrs  prometheus.Counter
	loadSecs  prometheus.Gauge
	events    prometheus.Gauge
	logEvents prometheus.Gauge
	source    *prometheus.GaugeVec
	idBlocks  *prometheus.CounterVec

	snapSecs   prometheus.Gauge
	snapBytes  prometheus.Gauge
	snapEvents prometheus.Gauge
	snaps      prometheus.Counter
	snapErrs   prometheus.Counter
}

func newLogMetrics(reg prometheus.Registerer, pending, tailLag func() float64) logMetrics {
	f := promauto.With(reg)
	gauge := func(name, help string) prometheus.Gauge {
		return f.NewGauge(prometheus.GaugeOpts{Namespace: "fleetscope", Subsystem: "acl", Name: name, Help: help})
	}
	counter := func(name, help string) prometheus.Counter {
		return f.NewCounter(prometheus.CounterOpts{Namespace: "fleetscope", Subsystem: "acl", Name: name, Help: help})
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "fleetscope", Subsystem: "acl", Name: "snapshot_pending_events",
		Help: "Events that reached the state since the last snapshot was taken."}, pending)
	f.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "fleetscope", Subsystem: "acl", Name: "tail_lag_seconds",
		Help: "Time since this node last read the event log successfully: how late other nodes' access changes may reach it (normally under the poll interval)."}, tailLag)
	idBlocks := f.NewCounterVec(prometheus.CounterOpts{Namespace: "fleetscope", Subsystem: "acl", Name: "id_blocks_claimed_total",
		Help: "Blocks of ids this node claimed, by kind (account, org, system, gateway)."}, []string{"kind"})
	for _, k := range []string{"account", "org", "system", "gateway"} {
		idBlocks.WithLabelValues(k)
	}
	return logMetrics{
		persisted: counter("events_persisted_total", "Access-control events this node wrote to the event log."),
		applied:   counter("events_tailed_total", "Access-control events of other nodes applied from the event log."),
		pollErrs:  counter("poll_errors_total", "Failed reads of the event log while tailing (retried at the next poll)."),
		loadSecs:  gauge("load_seconds", "Time the start-up load took: the snapshot and the log's tail, or the whole log."),
		events:    gauge("events_loaded", "Events folded at start-up: the snapshot's and the log's."),
		logEvents: gauge("load_log_events", "Events read from the event log at start-up: the tail after the snapshot, or the whole log."),
		source: f.NewGaugeVec(prometheus.GaugeOpts{Namespace: "fleetscope", Subsystem: "acl", Name: "load_source",
			Help: "1 for what start-up loaded: snapshot (and the log's tail), log (no snapshot), log_after_bad_snapshot (the snapshot was unusable)."},
			[]string{"source"}),
		snapSecs:   gauge("snapshot_duration_seconds", "Time the last snapshot took: export, compression and insert."),
		snapBytes:  gauge("snapshot_bytes", "Size of the last snapshot stored, compressed."),
		snapEvents: gauge("snapshot_events", "Events (one per register) in the last snapshot stored."),
		snaps:      counter("snapshots_total", "Snapshots of the state this node stored."),
		snapErrs:   counter("snapshot_errors_total", "Snapshots that failed (retried at the next interval)."),
		idBlocks:   idBlocks,
	}
}

// Sources of the start-up load (the load_source metric).
const (
	loadSnapshot    = "snapshot"
	loadLog         = "log"
	loadBadSnapshot = "log_after_bad_snapshot"
)

// loadInfo says what start-up folded.
type loadInfo struct {
	source     string
	snapshot   snapHeader // the snapshot used (or tried)
	snapEvents int        // events of the snapshot replayed
	logEvents  int        // events read from the log
}

// OpenLog folds the newest usable snapshot and the events stored after it
// (or, without one, the whole log) into x, which must be new and empty, and
// starts tailing and, unless ManualSnapshots, storing snapshots.
func OpenLog(ctx context.Context, x *Index, opts LogOptions) (*Log, error) {
	opts.setDefaults()
	l := &Log{opts: opts, x: x, snapNow: make(chan struct{}, 1)}
	l.polled.Store(time.Now().UnixNano())
	l.m = newLogMetrics(opts.Registerer, func() float64 { return float64(l.pending.Load()) },
		func() float64 { return time.Since(time.Unix(0, l.polled.Load())).Seconds() })
	start := time.Now()
	info, err := l.load(ctx)
	if err != nil {
		return nil, err
	}
	took := time.Since(start)
	l.loaded = info
	l.m.loadSecs.Set(took.Seconds())
	l.m.events.Set(float64(info.snapEvents + info.logEvents))
	l.m.logEvents.Set(float64(info.logEvents))
	for _, s := range []string{loadSnapshot, loadLog, loadBadSnapshot} {
		v := 0.0
		if s == info.source {
			v = 1
		}
		l.m.source.WithLabelValues(s).Set(v)
	}
	opts.Logger.Info("access-control log loaded", "source", info.source, "snapshot_events", info.snapEvents,
		"log_events", info.logEvents, "duration_s", took.Seconds())

	// What start-up read from the log is what the next snapshot saves the
	// next start-up; a bad snapshot is replaced at once.
	l.pending.Store(int64(info.logEvents))
	if info.source == loadBadSnapshot {
		l.snapForce.Store(true)
	}
	if l.snapForce.Load() || info.logEvents >= opts.SnapshotEvents {
		l.wakeSnapshots()
	}

	tctx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.tail(tctx)
	}()
	if !opts.ManualSnapshots {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.snapshotLoop(tctx)
		}()
	}
	return l, nil
}

// errStopped: Replay stopped taking events.
var errStopped = errors.New("acl: replay stopped")

// load replays the newest usable snapshot and the log's events inserted
// after the point it covers — with the tailer's overlap, which the snapshot
// took into account — or, if there is no usable snapshot, the whole log. A
// snapshot found damaged while it is replayed is abandoned for the whole log,
// on top of what it applied: its events are registers the log's events
// produce, so folding the log over them gives the log's state.
func (l *Log) load(ctx context.Context) (loadInfo, error) {
	info := loadInfo{source: loadLog}
	hdr, ok := l.newestSnapshot(ctx)
	var covers time.Time // zero: the whole log
	var newest time.Time
	batches := func(yield func([]Event, error) bool) {
		if ok {
			info.snapshot = hdr
			// The snapshot's stamp is after every stamp in it, including the
			// losers of its registers that the replay does not see: this
			// node's next stamp must be after them all.
			l.x.Clock().Observe(hdr.id())
			err := l.readSnapshot(ctx, hdr, func(evs []Event) error {
				if !yield(evs, nil) {
					return errStopped
				}
				info.snapEvents += len(evs)
				return nil
			})
			switch {
			case errors.Is(err, errStopped):
				return
			case err != nil:
				l.opts.Logger.Warn("acl: stored snapshot unusable, folding the whole event log instead",
					"snapshot", fmt.Sprint(hdr.id()), "err", err)
				info.source = loadBadSnapshot
			default:
				info.source = loadSnapshot
				covers = time.UnixMilli(hdr.Covers)
			}
		}
		for evs, err := range l.readLog(ctx, covers, &info.logEvents, &newest) {
			if !yield(evs, err) {
				return
			}
		}
	}
	if _, err := l.x.Replay(iter.Seq2[[]Event, error](batches)); err != nil {
		return info, fmt.Errorf("acl: fold event log: %w", err)
	}
	l.since = newest
	if !covers.IsZero() {
		// The next poll reads from covers on even if the tail was empty.
		l.since = maxTime(newest, covers.Add(l.opts.Overlap))
	}
	return info, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// readLog yields, in batches, the stored events inserted at or after from
// (zero: all), counting them in *n and recording the newest insertion time
// in *newest.
func (l *Log) readLog(ctx context.Context, from time.Time, n *int, newest *time.Time) iter.Seq2[[]Event, error] {
	return func(yield func([]Event, error) bool) {
		rows, err := l.opts.Store.Query(ctx, "SELECT event, ins FROM acl_events WHERE ins >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') ORDER BY hlc, node",
			clickhouse.Named("from", strconv.FormatInt(max(0, from.UnixMilli()), 10)))
		if err != nil {
			yield(nil, fmt.Errorf("acl: read event log: %w", err))
			return
		}
		defer rows.Close()
		const size = 4096
		batch := make([]Event, 0, size)
		for rows.Next() {
			var raw string
			var ins time.Time
			if err := rows.Scan(&raw, &ins); err != nil {
				yield(nil, err)
				return
			}
			var ev Event
			if err := ev.UnmarshalBinary([]byte(raw)); err != nil {
				yield(nil, fmt.Errorf("acl: stored event %d: %w", *n, err))
				return
			}
			if ins.After(*newest) {
				*newest = ins
			}
			batch = append(batch, ev)
			*n++
			if len(batch) == size {
				if !yield(batch, nil) {
					return
				}
				batch = batch[:0]
			}
		}
		if err := rows.Err(); err != nil {
			yield(nil, err)
			return
		}
		if len(batch) > 0 {
			yield(batch, nil)
		}
	}
}

// eventColumns name the inserted columns' types: no DESCRIBE TABLE round
// trip before each change.
var eventColumns = []clickhouse.ColumnNameAndType{
	{Name: "hlc", Type: "UInt64"}, {Name: "node", Type: "UInt16"}, {Name: "kind", Type: "String"}, {Name: "actor", Type: "UInt32"},
	{Name: "system_id", Type: "UInt32"}, {Name: "event", Type: "String"}, {Name: "at", Type: "DateTime64(3, 'UTC')"},
}

// Persist writes events to the log. It is what Index.Do calls before
// applying: a change exists only once it is stored.
func (l *Log) Persist(evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A retry of the same insert (by the client library) must not store
	// the events twice: the first event's stamp names the insert.
	token := "acl:" + strconv.FormatUint(evs[0].Stamp.HLC, 10) + ":" + strconv.Itoa(int(evs[0].Stamp.Node))
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_deduplication_token": token}))
	b, err := l.opts.Store.PrepareBatch(clickhouse.Context(ctx, clickhouse.WithColumnNamesAndTypes(eventColumns)),
		"INSERT INTO acl_events (hlc, node, kind, actor, system_id, event, at)")
	if err != nil {
		return err
	}
	for _, ev := range evs {
		raw, err := ev.MarshalBinary()
		if err != nil {
			b.Abort()
			return err
		}
		if err := b.Append(ev.Stamp.HLC, ev.Stamp.Node, ev.Kind.String(), uint32(ev.Actor), uint32(ev.System), string(raw), ev.Stamp.Time()); err != nil {
			b.Abort()
			return err
		}
	}
	if err := b.Send(); err != nil {
		return err
	}
	l.m.persisted.Add(float64(len(evs)))
	l.noteEvents(len(evs))
	return nil
}

// Do authorizes op for actor, stores its events and applies them (see
// Index.Do).
func (l *Log) Do(actor AccountID, op Op) (Change, error) {
	return l.x.Do(actor, op, l.Persist)
}

// Record stores and applies events fleetscope makes itself (Platform
// actor: configuration, demo data), stamping them first.
func (l *Log) Record(evs []Event) (Change, error) {
	l.x.Stamp(evs)
	if err := l.Persist(evs); err != nil {
		return Change{}, err
	}
	return l.x.Apply(evs...)
}

// SystemEvents returns the newest limit events about a system (its
// record, owner and grants), newest first: its audit trail. An event that
// does not decode is skipped (a newer version wrote it).
func (l *Log) SystemEvents(ctx context.Context, sys SystemID, limit int) ([]Event, error) {
	rows, err := l.opts.Store.Query(ctx, "SELECT event FROM acl_events WHERE system_id = {s:UInt32} ORDER BY hlc DESC, node DESC LIMIT {n:UInt32}",
		clickhouse.Named("s", strconv.FormatUint(uint64(sys), 10)), clickhouse.Named("n", strconv.Itoa(limit)))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, store.Transient(err)
		}
		var ev Event
		if ev.UnmarshalBinary([]byte(raw)) == nil {
			out = append(out, ev)
		}
	}
	return out, store.Transient(rows.Err())
}

// tail applies the events stored since until ctx is done.
func (l *Log) tail(ctx context.Context) {
	t := time.NewTicker(l.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := l.Poll(ctx); err != nil && ctx.Err() == nil {
			l.m.pollErrs.Inc()
			l.opts.Logger.Warn("acl: reading other nodes' events failed; retrying", "err", err)
		}
	}
}

// Poll reads and applies the events stored since the last poll — other
// nodes', and this node's own (re-applying one is harmless; one whose
// Persist failed after the row was written is applied only so). The tailer
// calls it every PollInterval; tests call it to converge at once.
//
// Afterwards every event inserted before the newest insertion time seen,
// less Overlap, is applied (as far as inserts commit within Overlap, which
// is what tailing assumes): Snapshot relies on it.
func (l *Log) Poll(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	since := l.since.Add(-l.opts.Overlap)
	rows, err := l.opts.Store.Query(ctx, "SELECT event, ins FROM acl_events WHERE ins >= fromUnixTimestamp64Milli({since:Int64}, 'UTC') ORDER BY ins",
		clickhouse.Named("since", strconv.FormatInt(since.UnixMilli(), 10)))
	if err != nil {
		return err
	}
	defer rows.Close()
	var evs []Event
	newest := l.since
	node := l.x.Clock().Node()
	others, fresh := 0, 0 // other nodes' events; those not seen by an earlier poll (nearly)
	for rows.Next() {
		var raw string
		var ins time.Time
		if err := rows.Scan(&raw, &ins); err != nil {
			return err
		}
		var ev Event
		if err := ev.UnmarshalBinary([]byte(raw)); err != nil {
			return fmt.Errorf("acl: stored event: %w", err)
		}
		evs = append(evs, ev)
		if ev.Stamp.Node != node {
			others++
			if ins.After(l.since) {
				fresh++
			}
		}
		if ins.After(newest) {
			newest = ins
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(evs) > 0 {
		if _, err := l.x.Apply(evs...); err != nil {
			return err
		}
		l.m.applied.Add(float64(others))
		l.noteEvents(fresh)
	}
	l.since = newest
	l.polled.Store(time.Now().UnixNano())
	return nil
}

// Close stops tailing and storing snapshots, waiting for a snapshot being
// stored to give up.
func (l *Log) Close() error {
	if l.stop == nil {
		return errors.New("acl: log not open")
	}
	l.stop()
	l.wg.Wait()
	return nil
}

// IDBlockSize is how many ids a node claims at a time (ClaimIDBlock): ids
// stay dense — a node that restarts leaves at most a block's remainder
// unused — and a claim, two statements, is made once per this many
// creations.
const IDBlockSize = 64

// ClaimIDBlock claims for this node the first free block of ids of a kind
// ("account", "org", "system", "gateway") at or after block from, and
// returns it: the ids [block·IDBlockSize, (block+1)·IDBlockSize) are this
// node's to hand out, and no other node's. The claim is an insert whose
// deduplication token names the block — the engine keeps the first of
// concurrent claims and drops the others — followed by a read of the
// block's row: the node whose claim it holds owns the block; the others
// try the next one.
func (l *Log) ClaimIDBlock(ctx context.Context, what string, from uint32) (uint32, error) {
	node := strconv.Itoa(int(l.x.Clock().Node()))
	for block := from; ; block++ {
		var nonce [12]byte
		rand.Read(nonce[:])
		claim := hex.EncodeToString(nonce[:])
		b := strconv.FormatUint(uint64(block), 10)
		ictx := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_deduplication_token": "idblock:" + what + ":" + b}))
		if err := l.opts.Store.Exec(ictx, "INSERT INTO id_blocks (what, block, node, claim, at) VALUES ({w:String}, {b:UInt32}, {n:UInt16}, {c:String}, now64(3))",
			clickhouse.Named("w", what), clickhouse.Named("b", b), clickhouse.Named("n", node), clickhouse.Named("c", claim)); err != nil {
			return 0, fmt.Errorf("acl: claim %s id block %d: %w", what, block, err)
		}
		var owner string
		if err := l.opts.Store.QueryRow(ctx, "SELECT claim FROM id_blocks WHERE what = {w:String} AND block = {b:UInt32} ORDER BY at, claim LIMIT 1",
			clickhouse.Named("w", what), clickhouse.Named("b", b)).Scan(&owner); err != nil {
			return 0, fmt.Errorf("acl: read %s id block %d: %w", what, block, store.Transient(err))
		}
		if owner == claim {
			l.m.idBlocks.WithLabelValues(what).Inc()
			return block, nil
		}
	}
}

// LastIDBlock returns the highest block of a kind any node has claimed
// (ok false: none yet).
func (l *Log) LastIDBlock(ctx context.Context, what string) (block uint32, ok bool, err error) {
	var n uint64
	if err := l.opts.Store.QueryRow(ctx, "SELECT count(), max(block) FROM id_blocks WHERE what = {w:String}", clickhouse.Named("w", what)).Scan(&n, &block); err != nil {
		return 0, false, fmt.Errorf("acl: last %s id block: %w", what, store.Transient(err))
	}
	return block, n > 0, nil
}
