package acl

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/fleetscope/fleetscope/store"
)

// Log keeps the index persistent and shared: every change this node makes
// is an event row in the acl_events table before it is applied, start-up
// folds the table into the index, and a tailer applies the events other
// nodes write, so every node converges on the same state (the state is a
// function of the set of events; see the package doc).
//
// Tailing reads events by the server's insertion time with an overlap, so
// an event that became visible late is still seen; re-applying an event is
// harmless. A change made on another node is applied here within
// PollInterval plus the overlap's worst case, inside DESIGN's 2 s.
type Log struct {
	opts LogOptions
	x    *Index
	m    logMetrics

	mu      sync.Mutex // guards since
	since   time.Time  // insertion time up to which this node has read
	stop    context.CancelFunc
	stopped chan struct{}
}

// LogOptions configure a Log.
type LogOptions struct {
	Store *store.Store
	// PollInterval is how often other nodes' events are read. Default
	// 500 ms: a change reaches every node well within 2 s.
	PollInterval time.Duration
	// Overlap is how far back each poll looks behind the newest insertion
	// it has seen, for inserts that commit after later ones. Default 5 s.
	Overlap    time.Duration
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
}

// OpenLog folds the stored events into x (which must be new and empty) and
// starts tailing.
func OpenLog(ctx context.Context, x *Index, opts LogOptions) (*Log, error) {
	opts.setDefaults()
	f := promauto.With(opts.Registerer)
	l := &Log{opts: opts, x: x, stopped: make(chan struct{}), m: logMetrics{
		persisted: f.NewCounter(prometheus.CounterOpts{Namespace: "fleetscope", Subsystem: "acl", Name: "events_persisted_total",
			Help: "Access-control events this node wrote to the event log."}),
		applied: f.NewCounter(prometheus.CounterOpts{Namespace: "fleetscope", Subsystem: "acl", Name: "events_tailed_total",
			Help: "Access-control events of other nodes applied from the event log."}),
		pollErrs: f.NewCounter(prometheus.CounterOpts{Namespace: "fleetscope", Subsystem: "acl", Name: "poll_errors_total",
			Help: "Failed reads of the event log while tailing (retried at the next poll)."}),
		loadSecs: f.NewGauge(prometheus.GaugeOpts{Namespace: "fleetscope", Subsystem: "acl", Name: "load_seconds",
			Help: "Time the start-up fold of the event log took."}),
		events: f.NewGauge(prometheus.GaugeOpts{Namespace: "fleetscope", Subsystem: "acl", Name: "events_loaded",
			Help: "Events folded at start-up."}),
	}}
	start := time.Now()
	n, err := l.load(ctx)
	if err != nil {
		return nil, err
	}
	l.m.loadSecs.Set(time.Since(start).Seconds())
	l.m.events.Set(float64(n))
	opts.Logger.Info("access-control log loaded", "events", n, "took", time.Since(start).String())
	tctx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	go l.tail(tctx)
	return l, nil
}

// load replays every stored event, in stamp order, in batches.
func (l *Log) load(ctx context.Context) (int, error) {
	rows, err := l.opts.Store.Query(ctx, "SELECT event, ins FROM acl_events ORDER BY hlc, node")
	if err != nil {
		return 0, fmt.Errorf("acl: read event log: %w", err)
	}
	defer rows.Close()
	n := 0
	var newest time.Time
	batches := func(yield func([]Event, error) bool) {
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
				yield(nil, fmt.Errorf("acl: stored event %d: %w", n, err))
				return
			}
			if ins.After(newest) {
				newest = ins
			}
			batch = append(batch, ev)
			n++
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
	if _, err := l.x.Replay(iter.Seq2[[]Event, error](batches)); err != nil {
		return n, fmt.Errorf("acl: fold event log: %w", err)
	}
	l.since = newest
	return n, nil
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

// tail applies other nodes' events until ctx is done.
func (l *Log) tail(ctx context.Context) {
	defer close(l.stopped)
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

// Poll reads and applies the events other nodes stored since the last
// poll. The tailer calls it every PollInterval; tests call it to converge
// at once.
func (l *Log) Poll(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	since := l.since.Add(-l.opts.Overlap)
	rows, err := l.opts.Store.Query(ctx, "SELECT event, ins FROM acl_events WHERE ins >= fromUnixTimestamp64Milli({since:Int64}, 'UTC') AND node != {node:UInt16} ORDER BY ins",
		clickhouse.Named("since", strconv.FormatInt(since.UnixMilli(), 10)),
		clickhouse.Named("node", strconv.Itoa(int(l.x.Clock().Node()))))
	if err != nil {
		return err
	}
	defer rows.Close()
	var evs []Event
	newest := l.since
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
		l.m.applied.Add(float64(len(evs)))
	}
	l.since = newest
	return nil
}

// Close stops tailing.
func (l *Log) Close() error {
	if l.stop == nil {
		return errors.New("acl: log not open")
	}
	l.stop()
	<-l.stopped
	return nil
}
