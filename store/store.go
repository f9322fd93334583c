// Package store is fleetscope's only door to ClickHouse: the connection
// (clickhouse-go/v2, always), the schema and its migrations, and the
// embedded engine when no server is configured.
//
// One code path serves both deployments. Embedded (the default), the engine
// runs in this process (package store/engine) and clickhouse-go reaches it
// over its HTTP protocol through an in-process transport; with
// `--clickhouse http://host:8123` it reaches an engine that `fleetscope
// engine` serves for several processes; with `--clickhouse
// clickhouse://user:pass@host:9000/db?cluster=name` it speaks the native
// protocol to a ClickHouse server or cluster, and the migrations create
// Replicated tables with Distributed tables sharded by system_id.
//
// Open applies missing migrations before it returns, so every caller sees
// the whole schema. Every statement is counted and timed in Prometheus
// (fleetscope_store_*).
package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetscope/fleetscope/store/engine"
)

// DefaultDatabase is the database fleetscope uses when the DSN names none.
const DefaultDatabase = "fleetscope"

// Config selects and configures the ClickHouse fleetscope talks to.
type Config struct {
	// ClickHouse is a DSN: empty for the embedded engine,
	// clickhouse://user:pass@host:9000/db?cluster=name&secure=true for a
	// server or cluster over the native protocol, or http://host:8123 for an
	// engine served by `fleetscope engine`.
	ClickHouse string
	// DataDir holds the embedded engine's data (in DataDir/engine).
	DataDir string
	// Engine, if set, is an embedded engine opened by the caller (tests share
	// one per process, since chDB serves one data directory per process).
	// The Store uses it instead of opening one and does not close it.
	Engine *engine.Engine
	// Database overrides the database (default: the DSN's, else
	// DefaultDatabase).
	Database string
	// Sessions is the embedded engine's session count (see engine.Options).
	Sessions int
	// MaxConns bounds clickhouse-go's connection pool. Default: 16, enough
	// for the ingest flushers, the rollup worker and concurrent dashboard
	// history queries on a small node.
	MaxConns int
	// Registerer receives store (and engine) metrics; nil registers nothing.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// SkipMigrations opens without touching the schema (for tools that only
	// read).
	SkipMigrations bool
}

func (c *Config) setDefaults() {
	if c.MaxConns <= 0 {
		c.MaxConns = 16
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
}

// Store is an open connection to ClickHouse with the schema in place.
type Store struct {
	conn     driver.Conn
	engine   *engine.Engine
	ownsEng  bool
	database string
	cluster  string
	log      *slog.Logger
	m        *metrics
}

// Open connects, checks the connection and applies missing migrations.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg.setDefaults()
	s := &Store{log: cfg.Logger, m: newMetrics(cfg.Registerer)}
	opts, err := s.options(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.ensureDatabase(ctx, opts); err != nil {
		s.Close()
		return nil, err
	}
	opts.Auth.Database = s.database
	if s.conn, err = clickhouse.Open(opts); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: open: %w", err)
	}
	if err := s.conn.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: ping: %w", err)
	}
	if !cfg.SkipMigrations {
		if err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// options builds clickhouse-go options for the configured deployment; for
// the embedded one it opens the engine.
func (s *Store) options(cfg Config) (*clickhouse.Options, error) {
	if cfg.ClickHouse == "" {
		eng := cfg.Engine
		if eng == nil {
			var err error
			eng, err = engine.Open(engine.Options{
				Dir:        filepath.Join(cfg.DataDir, "engine"),
				Sessions:   cfg.Sessions,
				Registerer: cfg.Registerer,
				Logger:     cfg.Logger,
			})
			if err != nil {
				return nil, err
			}
			s.ownsEng = true
		}
		s.engine = eng
		s.database = DefaultDatabase
		if cfg.Database != "" {
			s.database = cfg.Database
		}
		rt := s.m.countingTransport(eng.RoundTripper())
		return &clickhouse.Options{
			Protocol:      clickhouse.HTTP,
			Addr:          []string{"embedded"},
			TransportFunc: func(*http.Transport) (http.RoundTripper, error) { return rt, nil },
			MaxOpenConns:  cfg.MaxConns,
			MaxIdleConns:  cfg.MaxConns,
			DialTimeout:   5 * time.Second,
		}, nil
	}
	dsn, cluster, err := splitCluster(cfg.ClickHouse)
	if err != nil {
		return nil, err
	}
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: --clickhouse: %w", err)
	}
	s.cluster = cluster
	s.database = opts.Auth.Database
	if cfg.Database != "" {
		s.database = cfg.Database
	}
	if s.database == "" {
		s.database = DefaultDatabase
	}
	opts.MaxOpenConns = cfg.MaxConns
	opts.MaxIdleConns = cfg.MaxConns
	if opts.Protocol == clickhouse.HTTP {
		base := opts.TransportFunc
		opts.TransportFunc = func(t *http.Transport) (http.RoundTripper, error) {
			var rt http.RoundTripper = t
			if base != nil {
				var err error
				if rt, err = base(t); err != nil {
					return nil, err
				}
			}
			return s.m.countingTransport(rt), nil
		}
	} else {
		tlsConf, timeout := opts.TLS, opts.DialTimeout
		opts.DialContext = func(ctx context.Context, addr string) (net.Conn, error) {
			d := &net.Dialer{Timeout: timeout}
			var c net.Conn
			var err error
			if tlsConf != nil {
				c, err = (&tls.Dialer{NetDialer: d, Config: tlsConf}).DialContext(ctx, "tcp", addr)
			} else {
				c, err = d.DialContext(ctx, "tcp", addr)
			}
			if err != nil {
				return nil, err
			}
			return s.m.countingConn(c), nil
		}
	}
	return opts, nil
}

// splitCluster takes fleetscope's own `cluster` parameter out of the DSN.
func splitCluster(dsn string) (string, string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", "", fmt.Errorf("store: --clickhouse: %w", err)
	}
	q := u.Query()
	cluster := q.Get("cluster")
	q.Del("cluster")
	u.RawQuery = q.Encode()
	if cluster != "" && !identRe.MatchString(cluster) {
		return "", "", fmt.Errorf("store: --clickhouse: invalid cluster name %q", cluster)
	}
	return u.String(), cluster, nil
}

// ensureDatabase creates the database on a short-lived connection that does
// not select it yet.
func (s *Store) ensureDatabase(ctx context.Context, opts *clickhouse.Options) error {
	boot := *opts
	boot.Auth.Database = ""
	boot.MaxOpenConns = 1
	conn, err := clickhouse.Open(&boot)
	if err != nil {
		return fmt.Errorf("store: open: %w", err)
	}
	defer conn.Close()
	q := "CREATE DATABASE IF NOT EXISTS " + quoteIdent(s.database) + onCluster(s.cluster)
	if err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("store: create database: %w", err)
	}
	return nil
}

// Close closes the connection and the embedded engine.
func (s *Store) Close() error {
	var errs []error
	if s.conn != nil {
		errs = append(errs, s.conn.Close())
	}
	if s.engine != nil && s.ownsEng {
		errs = append(errs, s.engine.Close())
	}
	return errors.Join(errs...)
}

// Embedded returns the embedded engine, or nil when fleetscope talks to a
// server.
func (s *Store) Embedded() *engine.Engine { return s.engine }

// Database is the database every statement runs in.
func (s *Store) Database() string { return s.database }

// Cluster is the configured cluster name, "" for a single server or the
// embedded engine.
func (s *Store) Cluster() string { return s.cluster }

// Ping checks that ClickHouse answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.observe("ping", s.conn.Ping(ctx), time.Now())
}

// ServerVersion reports what the connection's hello said.
func (s *Store) ServerVersion() (*driver.ServerVersion, error) { return s.conn.ServerVersion() }

// Exec runs a statement without a result. Arguments bind to {name:Type}
// placeholders (clickhouse.Named) or positional ? markers; values are never
// spliced into SQL by fleetscope code.
func (s *Store) Exec(ctx context.Context, query string, args ...any) error {
	start := time.Now()
	return s.observe(opOf(query), s.conn.Exec(ctx, query, args...), start)
}

// Query runs a statement and returns its rows; the caller closes them.
func (s *Store) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	start := time.Now()
	rows, err := s.conn.Query(ctx, query, args...)
	return rows, s.observe("select", err, start)
}

// QueryRow runs a statement expected to return one row.
func (s *Store) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	start := time.Now()
	row := s.conn.QueryRow(ctx, query, args...)
	s.observe("select", row.Err(), start)
	return row
}

// PrepareBatch starts an INSERT batch. Rows are counted in
// fleetscope_store_inserted_rows_total when Send succeeds.
func (s *Store) PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	start := time.Now()
	b, err := s.conn.PrepareBatch(ctx, query, opts...)
	if err != nil {
		return nil, s.observe("insert", err, start)
	}
	return &countedBatch{Batch: b, s: s, table: insertTable(query)}, nil
}

type countedBatch struct {
	driver.Batch
	s     *Store
	table string
}

func (b *countedBatch) Send() error {
	rows := b.Batch.Rows()
	start := time.Now()
	err := b.Batch.Send()
	if err == nil {
		b.s.m.insertedRows.WithLabelValues(b.table).Add(float64(rows))
	}
	return b.s.observe("insert", err, start)
}

// observe records a statement's outcome and passes err through, marked
// ErrUnavailable when retrying can cure it (see Transient).
func (s *Store) observe(op string, err error, start time.Time) error {
	s.m.statements.WithLabelValues(op).Inc()
	s.m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		s.m.errors.WithLabelValues(errorCode(err)).Inc()
	}
	return Transient(err)
}

func opOf(query string) string {
	head := strings.TrimSpace(query)
	if i := strings.IndexAny(head, " \t\r\n("); i > 0 {
		head = head[:i]
	}
	switch strings.ToUpper(head) {
	case "SELECT", "WITH":
		return "select"
	case "INSERT":
		return "insert"
	case "CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE":
		return "ddl"
	}
	return "other"
}

// insertTable extracts the table of `INSERT INTO t …` for metric labels.
func insertTable(query string) string {
	f := strings.Fields(query)
	for i := 0; i+1 < len(f); i++ {
		if strings.EqualFold(f[i], "INTO") {
			t := f[i+1]
			if strings.EqualFold(t, "TABLE") && i+2 < len(f) {
				t = f[i+2]
			}
			if j := strings.IndexByte(t, '('); j >= 0 {
				t = t[:j]
			}
			return strings.Trim(t, "`\"")
		}
	}
	return "unknown"
}

// errorCode labels an error: the ClickHouse exception code, or a class.
func errorCode(err error) string {
	var ex *clickhouse.Exception
	switch {
	case errors.As(err, &ex):
		return fmt.Sprint(ex.Code)
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	}
	return "client"
}
