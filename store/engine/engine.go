// Package engine is the embedded ClickHouse engine: chDB's libchdb.so,
// loaded at run time with dlopen, behind the ClickHouse HTTP interface.
//
// fleetscope reaches ClickHouse only through clickhouse-go, so the embedded
// engine speaks the protocol clickhouse-go's HTTP transport speaks: in process
// through an http.RoundTripper (no socket; see Engine.RoundTripper), or on a
// port for other fleetscope processes and operators' tools
// (package chhttp behind a fasthttp server, which `fleetscope engine`
// runs, with ClickHouse's authentication and read-only GET).
//
// What the bridge does with a request:
//   - the statement comes from the `query` URL parameter, the body, or both
//     (the body continues the parameter's text, as in ClickHouse); when the
//     parameter is an `INSERT … FORMAT F` the body is its data, which is
//     streamed into a memfd and inserted with `FROM INFILE
//     '/proc/self/fd/N'`, because binary data inlined in the statement text
//     is cut by the engine;
//   - `param_<name>` parameters are bound by the engine to {name:Type}
//     placeholders, never spliced into the text;
//   - every other unknown URL parameter is a setting, applied to the session
//     with SET before the statement (and reset to DEFAULT before the next
//     statement that does not carry it);
//   - multipart bodies carry external tables, loaded into temporary tables of
//     the session for the one statement;
//   - errors answer 500 with the engine's `Code: N. DB::Exception: …` text and
//     the X-ClickHouse-Exception-Code header, which clickhouse-go turns into a
//     *clickhouse.Exception;
//   - clickhouse-go's hello (`SELECT displayName(), version(), revision(),
//     timezone()`) is answered by the bridge with revision 0, because the
//     engine writes revision-0 Native and clickhouse-go decodes every later
//     answer with the revision the hello reported.
//
// A chDB session runs one statement at a time, and several sessions on one
// data directory run in parallel, so the engine keeps a pool of sessions and
// hands them out first come, first served. A second process cannot open the
// same directory; that is what `fleetscope engine` is for.
//
// Loading the library needs cgo (dlopen). A build without cgo still compiles
// this package, and Open answers ErrUnavailable, so such a binary runs
// against a ClickHouse server only.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Options configure an Engine. The zero value is valid apart from Dir.
type Options struct {
	// Dir holds the engine's data. It is created if missing.
	Dir string
	// Sessions is the number of engine sessions, i.e. statements that run at
	// once. Default: max(4, GOMAXPROCS+2) — a long INSERT or merge-heavy
	// SELECT must not hold up short queries, and the engine parallelizes each
	// statement internally, so more sessions than cores mostly buys latency
	// isolation, not throughput.
	Sessions int
	// Registerer receives the engine's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Sessions <= 0 {
		o.Sessions = max(4, runtime.GOMAXPROCS(0)+2)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Engine is the embedded ClickHouse engine with its pool of sessions.
type Engine struct {
	opts    Options
	idle    chan *session
	all     []*session
	control *session // runs KILL QUERY for cancelled statements; never pooled
	ctlMu   sync.Mutex
	hello   []byte
	version string
	tagSeq  atomic.Uint64
	closed  atomic.Bool
	m       metrics
}

type metrics struct {
	statements *prometheus.CounterVec
	errors     *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	wait       prometheus.Histogram
	busy       prometheus.Gauge
	cancels    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) metrics {
	f := promauto.With(reg)
	return metrics{
		statements: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "engine", Name: "statements_total",
			Help: "Statements run by the embedded engine, by kind (select, insert, other).",
		}, []string{"kind"}),
		errors: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "engine", Name: "errors_total",
			Help: "Statements the embedded engine failed, by ClickHouse error name.",
		}, []string{"name"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "fleetscope", Subsystem: "engine", Name: "statement_duration_seconds",
			Help:    "Time the embedded engine spent on a statement, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"kind"}),
		wait: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: "fleetscope", Subsystem: "engine", Name: "session_wait_seconds",
			Help:    "Time a statement waited for a free engine session.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		busy: f.NewGauge(prometheus.GaugeOpts{
			Namespace: "fleetscope", Subsystem: "engine", Name: "sessions_busy",
			Help: "Engine sessions running a statement now.",
		}),
		cancels: f.NewCounter(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "engine", Name: "cancels_total",
			Help: "Statements cancelled because their caller went away.",
		}),
	}
}

// Open loads the engine library (once per process) and opens the sessions.
// In a build without cgo it returns ErrUnavailable.
func Open(opts Options) (*Engine, error) {
	if err := available(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	if opts.Dir == "" {
		return nil, errors.New("engine: no data directory")
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	e := &Engine{opts: opts, idle: make(chan *session, opts.Sessions), m: newMetrics(opts.Registerer)}
	for i := 0; i <= opts.Sessions; i++ {
		s, err := openSession(opts.Dir)
		if err != nil {
			e.closeSessions()
			return nil, err
		}
		if i == 0 {
			e.control = s
			continue
		}
		e.all = append(e.all, s)
		e.idle <- s
	}
	if err := e.prepareHello(); err != nil {
		e.closeSessions()
		return nil, err
	}
	return e, nil
}

// Version is the engine's ClickHouse version, e.g. "26.5.1.1".
func (e *Engine) Version() string { return e.version }

// Close waits for running statements and closes every session.
func (e *Engine) Close() error {
	if !e.closed.CompareAndSwap(false, true) {
		return nil
	}
	for range e.all {
		s := <-e.idle
		s.close()
	}
	e.ctlMu.Lock()
	e.control.close()
	e.ctlMu.Unlock()
	return nil
}

func (e *Engine) closeSessions() {
	for _, s := range e.all {
		s.close()
	}
	if e.control != nil {
		e.control.close()
	}
}

var errClosed = &Error{Code: 1002, Name: "ENGINE_CLOSED", Message: "Code: 1002. DB::Exception: fleetscope embedded engine is closed. (ENGINE_CLOSED)"}

// acquire waits for a free session, first come first served: goroutines
// blocked on a channel receive are woken in arrival order.
func (e *Engine) acquire(ctx context.Context) (*session, error) {
	if e.closed.Load() {
		return nil, errClosed
	}
	start := time.Now()
	select {
	case s := <-e.idle:
		e.m.wait.Observe(time.Since(start).Seconds())
		e.m.busy.Inc()
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (e *Engine) release(s *session) {
	e.m.busy.Dec()
	e.idle <- s
}

// statement is one request decoded from the HTTP interface.
type statement struct {
	sql      string
	format   string // default output format
	database string
	params   map[string]string
	settings map[string]string
	data     dataSource // INSERT data, or nil
	external []externalTable
}

// dataSource writes the data of an INSERT into the memfd the engine reads.
type dataSource interface {
	writeTo(f *os.File) (int64, error)
}

type externalTable struct {
	name      string
	format    string
	structure string
	data      dataSource
}

// answer is the engine's reply; body points into C memory until free.
type answer struct {
	res  result
	body []byte
}

func (a *answer) free() {
	a.res.free()
	a.res = result{}
	a.body = nil
}

// run executes st on a pooled session. On success the caller owns the answer
// and must free it.
func (e *Engine) run(ctx context.Context, st *statement) (*answer, error) {
	if st.sql == helloQuery {
		return &answer{body: e.hello}, nil
	}
	kind := statementKind(st.sql)
	s, err := e.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer e.release(s)
	start := time.Now()
	a, err := e.runOn(ctx, s, st)
	e.m.statements.WithLabelValues(kind).Inc()
	e.m.duration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	if err != nil {
		var ee *Error
		if errors.As(err, &ee) {
			e.m.errors.WithLabelValues(ee.Name).Inc()
		}
		return nil, err
	}
	return a, nil
}

func (e *Engine) runOn(ctx context.Context, s *session, st *statement) (*answer, error) {
	if err := s.prepare(st); err != nil {
		return nil, err
	}
	var cleanup []func()
	defer func() {
		for _, f := range cleanup {
			f()
		}
	}()
	for _, x := range st.external {
		drop, err := s.loadExternal(x)
		if drop != nil {
			cleanup = append(cleanup, drop)
		}
		if err != nil {
			return nil, err
		}
	}
	sql := st.sql
	if st.data != nil {
		f, err := memfd("insert")
		if err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() { f.Close() })
		if _, err := st.data.writeTo(f); err != nil {
			return nil, fmt.Errorf("engine: read insert data: %w", err)
		}
		sql, err = insertFromFile(sql, fdPath(f))
		if err != nil {
			return nil, err
		}
	}
	// Tag the statement so that a cancelled caller can KILL exactly it.
	tag := "/*fs:" + strconv.FormatUint(e.tagSeq.Add(1), 36) + "*/ "
	stop := context.AfterFunc(ctx, func() { e.kill(tag) })
	res, err := s.query(tag+sql, st.format, st.params)
	stop()
	if err != nil {
		res.free()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return &answer{res: res, body: res.bytes()}, nil
}

// kill stops the statement carrying tag. KILL … ASYNC returns at once; the
// statement then fails with QUERY_WAS_CANCELLED. (KILL … SYNC was seen to
// hang in chDB, so it is not used.)
func (e *Engine) kill(tag string) {
	e.m.cancels.Inc()
	e.ctlMu.Lock()
	defer e.ctlMu.Unlock()
	if !e.control.isOpen() {
		return
	}
	res, err := e.control.query("KILL QUERY WHERE startsWith(query, {tag:String}) ASYNC FORMAT Null", "TSV",
		map[string]string{"tag": tag})
	res.free()
	if err != nil {
		e.opts.Logger.Warn("engine: cancel failed", "err", err)
	}
}

func statementKind(sql string) string {
	head := strings.TrimLeft(sql, " \t\r\n(")
	for _, k := range [...]struct{ prefix, kind string }{
		{"SELECT", "select"}, {"WITH", "select"}, {"INSERT", "insert"},
	} {
		if len(head) >= len(k.prefix) && strings.EqualFold(head[:len(k.prefix)], k.prefix) {
			return k.kind
		}
	}
	return "other"
}

// Exec runs one statement directly on the engine, outside clickhouse-go,
// with data as the body of an `INSERT … FORMAT F` and settings applied for
// the statement; it returns the answer in TabSeparated (or the statement's
// FORMAT). fleetscope's own paths go through clickhouse-go; Exec exists to
// measure the engine alone (bench compares the two in the same run).
func (e *Engine) Exec(ctx context.Context, sql string, data []byte, settings map[string]string) ([]byte, error) {
	st := &statement{sql: sql, format: "TabSeparated", settings: settings}
	if data != nil {
		st.data = bytesSource(data)
	}
	a, err := e.run(ctx, st)
	if err != nil {
		return nil, err
	}
	defer a.free()
	return append([]byte(nil), a.body...), nil
}
