package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/api"
	"github.com/fleetscope/fleetscope/ingest"
	"github.com/fleetscope/fleetscope/internal/graceful"
	"github.com/fleetscope/fleetscope/live"
	"github.com/fleetscope/fleetscope/mail"
	"github.com/fleetscope/fleetscope/query"
	"github.com/fleetscope/fleetscope/rollup"
	"github.com/fleetscope/fleetscope/store"
)

// serveConfig is `fleetscope serve`'s configuration.
type serveConfig struct {
	addr       string
	data       string
	clickhouse string
	demo       bool
	nodeID     int
	rollup     bool
	// energyTiles is query.Options.EnergyTiles (negative: none).
	energyTiles int64
	opsAddr     string

	ingest ingest.Options // the limits and batching flags

	// Identity and abuse limits (package api).
	sessionTTL     time.Duration
	keyGrace       time.Duration
	limits         api.Limits
	maxConnsPerIP  int
	publicURL      string
	trustedProxies string
	corsOrigins    string
	// Mail.
	smtpURL          string
	mailFrom         string
	mailPerRecipient int
}

func parseServe(args []string) (serveConfig, error) {
	fs := newFlags("serve")
	var c serveConfig
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&c.data, "data", "./data", "data directory: the embedded engine (DATA/engine) and the write-ahead log (DATA/wal)")
	fs.StringVar(&c.clickhouse, "clickhouse", "", "ClickHouse DSN: empty = embedded engine; clickhouse://user:pass@host:9000/db?cluster=name[&secure=true] for a server or cluster; http://127.0.0.1:8123 for `fleetscope engine`")
	fs.BoolVar(&c.demo, "demo", false, "create a demo fleet (once) and a gateway simulator feeding it, and print tokens to try it with")
	fs.IntVar(&c.nodeID, "node-id", 0, "this node's id, 1–65535, distinct per node sharing a ClickHouse; 0 = a random id kept in DATA/node-id")
	fs.BoolVar(&c.rollup, "rollup", true, "run the rollup worker on this node (idempotent; on several nodes it only repeats work)")
	fs.StringVar(&c.opsAddr, "ops-addr", "", "serve /metrics, /readyz, /healthz and Go's /debug/pprof/ profiles on this address (e.g. 127.0.0.1:9180) instead of --addr; empty = /metrics and /readyz on --addr, profiles nowhere")
	debugAddr := fs.String("debug-addr", "", "deprecated: --ops-addr")
	maxBody := fs.Bytes("ingest-max-body", ingest.DefaultMaxBodySize, "largest ingest body, before and after decompression (units: KiB, MiB, GiB)")
	fs.IntVar(&c.ingest.MaxReadings, "ingest-max-readings", ingest.DefaultMaxReadings, "most readings in one ingest request")
	fs.IntVar(&c.ingest.MaxPanels, "ingest-max-panels", live.DefaultMaxPanels, "most panel labels of a system; a reading with a new label beyond it is rejected (too_many_panels)")
	fs.DurationVar(&c.ingest.Retention, "retention", ingest.DefaultMaxAge, "how old a reading may be and still be accepted (at most --raw-retention)")
	fs.DurationVar(&c.ingest.RawRetention, "raw-retention", store.DefaultRawRetention, "how long raw readings, and rollups finer than an hour, are kept (a table TTL); hourly and daily rollups are kept forever")
	energyTiles := fs.Bytes("energy-tiles", query.DefaultEnergyTiles, "memory fleet energy keeps every system's cumulative energy at recently asked instants in, so that repeated ranges are summed here instead of in ClickHouse (units: KiB, MiB, GiB; 0 = none)")
	backlog := fs.Bytes("ingest-max-backlog", 2<<30, "WAL bytes that may wait for ClickHouse before ingest answers 429 (units: KiB, MiB, GiB)")
	fs.IntVar(&c.ingest.BatchRows, "ingest-batch-rows", ingest.DefaultBatchRows, "most readings in one ClickHouse insert")
	fs.DurationVar(&c.ingest.FlushInterval, "ingest-flush-interval", ingest.DefaultFlushInterval, "longest a reading waits for its insert batch to fill")
	fs.DurationVar(&c.sessionTTL, "session-ttl", 30*24*time.Hour, "how long a session lives after its last use")
	fs.DurationVar(&c.keyGrace, "key-grace", 24*time.Hour, "how long a gateway's previous ingest key works after a rotation")
	fs.IntVar(&c.limits.LoginFailures, "login-max-failures", 10, "failed logins per e-mail within --login-window that lock its logins until the window passes")
	fs.DurationVar(&c.limits.LoginWindow, "login-window", 15*time.Minute, "window of the login limits")
	fs.IntVar(&c.limits.LoginFailuresPerIP, "login-max-failures-per-ip", 100, "failed logins per client address within --login-window")
	fs.IntVar(&c.limits.RegistrationsPerIP, "registrations-per-ip", 10, "registrations per client address per hour")
	fs.IntVar(&c.limits.ResetsPerIP, "resets-per-ip", 10, "password-reset requests per client address per hour")
	fs.IntVar(&c.limits.ResetsPerEmail, "resets-per-email", 3, "password-reset requests per e-mail per hour")
	fs.IntVar(&c.limits.CodeTries, "code-tries", 5, "wrong tries that burn a verification or reset code")
	fs.IntVar(&c.maxConnsPerIP, "max-conns-per-ip", 256, "connections one client address may hold open at once")
	fs.StringVar(&c.publicURL, "public-url", "", "the dashboard's address as users reach it, for links in mail (default: http:// and --addr)")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", "", "reverse proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For and X-Forwarded-Proto are believed")
	fs.StringVar(&c.corsOrigins, "cors-origins", "", "browser origins of other sites allowed to call the API (comma-separated, e.g. https://portal.example.com); empty = none")
	fs.StringVar(&c.smtpURL, "smtp-url", "", "send mail through this SMTP server (smtp://user:pass@host:587 with STARTTLS, smtps://… on 465); empty = the outbox only (support reads it)")
	fs.StringVar(&c.mailFrom, "mail-from", "", "sender of the mail fleetscope sends (e.g. fleetscope <noreply@example.com>); needed with --smtp-url unless the URL has ?from=")
	fs.IntVar(&c.mailPerRecipient, "mail-per-recipient", 10, "mails one address may receive per hour (invitations, codes)")
	fs.BoolVar(&c.ingest.WALSkipCorrupt, "wal-skip-corrupt", false, "start past a corrupt sealed WAL segment, losing the readings in it (logged and counted); off: such a WAL stops start-up")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case *debugAddr == "" || *debugAddr == c.opsAddr:
	case c.opsAddr == "":
		c.opsAddr = *debugAddr
		slog.Warn("--debug-addr is deprecated: it is --ops-addr, which serves /metrics and /readyz there too", "ops_addr", c.opsAddr)
	default:
		return c, errors.New("--debug-addr (deprecated) and --ops-addr differ: use --ops-addr alone")
	}
	if *maxBody <= 0 || *maxBody > 1<<30 {
		return c, errors.New("--ingest-max-body: 1 byte to 1GiB")
	}
	c.ingest.MaxBodySize, c.ingest.MaxBacklog = int(*maxBody), *backlog
	if c.energyTiles = *energyTiles; c.energyTiles <= 0 {
		c.energyTiles = -1 // query.Options: none
	}
	if c.ingest.MaxReadings <= 0 || c.ingest.MaxPanels <= 0 || c.ingest.BatchRows <= 0 || c.ingest.MaxBacklog <= 0 || c.ingest.Retention <= 0 || c.ingest.FlushInterval <= 0 {
		return c, errors.New("limits must be positive (none means unlimited)")
	}
	if c.ingest.RawRetention < time.Hour {
		return c, errors.New("--raw-retention: at least 1h")
	}
	if c.ingest.Retention > c.ingest.RawRetention {
		return c, fmt.Errorf("--retention %s is longer than --raw-retention %s: readings would be accepted only to expire", c.ingest.Retention, c.ingest.RawRetention)
	}
	if c.nodeID < 0 || c.nodeID > 65535 {
		return c, errors.New("--node-id: 1–65535")
	}
	if c.sessionTTL <= 0 || c.keyGrace <= 0 || c.maxConnsPerIP <= 0 || c.mailPerRecipient <= 0 || c.limits.LoginWindow <= 0 ||
		c.limits.LoginFailures <= 0 || c.limits.LoginFailuresPerIP <= 0 || c.limits.RegistrationsPerIP <= 0 ||
		c.limits.ResetsPerIP <= 0 || c.limits.ResetsPerEmail <= 0 || c.limits.CodeTries <= 0 {
		return c, errors.New("limits must be positive (none means unlimited)")
	}
	if _, err := api.ParseCIDRs(c.trustedProxies); err != nil {
		return c, fmt.Errorf("--trusted-proxies: %w", err)
	}
	return c, nil
}

// server is a running `fleetscope serve`: its components and HTTP routes.
type server struct {
	cfg    serveConfig
	log    *slog.Logger
	reg    *prometheus.Registry
	store  *store.Store
	acl    *acl.Index
	aclLog *acl.Log
	api    *api.Server
	ingest *ingest.Service
	rollup *rollup.Worker
	query  *query.Service
	// changes forwards acl change notifications to the query service;
	// those arriving before it exists are kept and replayed to it.
	changes aclChanges
	http    *fasthttp.Server
	health  *health
	start   time.Time
	mailM   *mail.Metrics
}

// serveGCPercent is the garbage collector's target when GOGC is not set.
// Every insert batch leaves ~200 bytes of garbage per reading in
// clickhouse-go (it appends column values one at a time, doubling its
// buffers, and copies them again to encode): ~100 MB/s at saturation, and
// with Go's default of 100 the collector ran ~4 times a second, its pauses
// and assists landing on the handlers' acknowledgements. With 300, in
// `fleetscope bench ingest` runs alternated on this machine, p99 ack at half
// of saturation went from 9.4–11.4 ms to 8.7–8.9 ms and at saturation from
// 16–18.5 ms to 10.6–12.5 ms, for ~500 MiB more peak RSS (1.1 → 1.6 GiB).
const serveGCPercent = 300

func runServe(ctx context.Context, log *slog.Logger, args []string) error {
	cfg, err := parseServe(args)
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	if err := os.MkdirAll(cfg.data, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if cfg.nodeID == 0 {
		if cfg.nodeID, err = persistedNodeID(cfg.data); err != nil {
			return err
		}
	}
	s := &server{cfg: cfg, log: log, reg: prometheus.NewRegistry(), start: time.Now()}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerBuildInfo(s.reg)
	s.health = newHealth(s.reg)
	if err := s.open(ctx); err != nil {
		s.close()
		return err
	}
	defer s.close()

	raw, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ln := graceful.Listen(s.api.LimitConnections(raw, cfg.maxConnsPerIP))
	s.http = &fasthttp.Server{
		Handler:            s.api.Handler(),
		HeaderReceived:     s.api.HeaderReceived,
		ErrorHandler:       s.api.ErrorHandler,
		Name:               "fleetscope",
		ReadTimeout:        30 * time.Second,
		WriteTimeout:       30 * time.Second,
		IdleTimeout:        2 * time.Minute,
		MaxRequestBodySize: max(16<<20, cfg.ingest.MaxBodySize+1<<20),
		Logger:             slogPrintf{log},
	}
	errc := make(chan error, 2)
	opsURL := "http://" + ln.Addr().String()
	if cfg.opsAddr != "" {
		oln, err := net.Listen("tcp", cfg.opsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("--ops-addr: %w", err)
		}
		ops := &fasthttp.Server{Handler: s.api.OpsHandler(), Name: "fleetscope-ops", ReadTimeout: 30 * time.Second,
			WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute, Logger: slogPrintf{log}} // a CPU profile takes 30 s
		defer ops.Shutdown()
		go func() { errc <- ops.Serve(oln) }()
		opsURL = "http://" + oln.Addr().String()
	}
	go func() { errc <- s.http.Serve(ln) }()
	pctx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	go s.probe(pctx)
	mode := "embedded"
	if cfg.clickhouse != "" {
		mode = "server"
	}
	log.Info("fleetscope serving", "addr", ln.Addr().String(), "ops_addr", cfg.opsAddr, "version", version, "clickhouse", mode, "node", cfg.nodeID,
		"ingest_max_body", cfg.ingest.MaxBodySize, "ingest_max_readings", cfg.ingest.MaxReadings, "ingest_max_panels", cfg.ingest.MaxPanels, "ingest_max_backlog", cfg.ingest.MaxBacklog,
		"ingest_batch_rows", cfg.ingest.BatchRows, "ingest_flush_interval", cfg.ingest.FlushInterval.String(), "retention", cfg.ingest.Retention.String(),
		"raw_retention", cfg.ingest.RawRetention.String(), "wal_skip_corrupt", cfg.ingest.WALSkipCorrupt)
	fmt.Fprintf(os.Stderr, "fleetscope is up: http://%s (readiness: %s/readyz, metrics: %s/metrics)\n", ln.Addr(), opsURL, opsURL)
	if cfg.demo {
		if err := s.startDemo(ctx, "http://"+ln.Addr().String()); err != nil {
			log.Error("demo fleet", "err", err)
		}
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.health.shutdown.Store(true)
	s.health.ready.Set(0)
	log.Info("shutting down: no new connections, finishing requests in flight, flushing the WAL")
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	if err := graceful.Shutdown(sctx, s.http, ln); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	return nil
}

// open starts the components in dependency order: ClickHouse, access
// control (its log folded), ingest (restored from ClickHouse and its WAL),
// the rollup worker.
func (s *server) open(ctx context.Context) error {
	cfg := s.cfg
	octx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var err error
	s.store, err = store.Open(octx, store.Config{ClickHouse: cfg.clickhouse, DataDir: cfg.data, Registerer: s.reg, Logger: s.log})
	if err != nil {
		return err
	}
	s.acl = acl.New(acl.Options{Node: uint16(cfg.nodeID), OnChange: s.changes.forward})
	if s.aclLog, err = acl.OpenLog(octx, s.acl, acl.LogOptions{Store: s.store, Registerer: s.reg, Logger: s.log}); err != nil {
		return err
	}
	go s.acl.RunExpiry(ctx, 0)
	io := cfg.ingest
	io.Dir, io.Store, io.Gateways = filepath.Join(cfg.data, "wal"), s.store, api.Gateways(s.acl)
	io.Zones = func(id uint32) *time.Location { return s.acl.Snapshot().SystemZone(acl.SystemID(id)) }
	io.Registerer, io.Logger = s.reg, s.log
	if s.ingest, err = ingest.Open(octx, io); err != nil {
		return err
	}
	if cfg.rollup {
		// The worker waits as long as ingest lets a reading be late.
		s.rollup = rollup.Start(rollup.Options{Store: s.store, Lateness: s.ingest.Lateness(), Registerer: s.reg, Logger: s.log})
	}
	q, err := query.New(query.Options{Store: s.store, ACL: s.acl, Live: s.ingest.Live(), Registerer: s.reg, Logger: s.log,
		MinuteRetention: s.cfg.ingest.RawRetention, EnergyTiles: s.cfg.energyTiles})
	if err != nil {
		return err
	}
	s.query = q
	s.changes.attach(q)
	outbox := mail.NewOutbox(s.store, mail.OutboxOptions{Logger: s.log, Metrics: s.mailMetrics()})
	var mailer mail.Mailer = outbox
	if cfg.smtpURL != "" {
		smtp, err := mail.NewSMTP(cfg.smtpURL, mail.SMTPOptions{From: cfg.mailFrom, Logger: s.log, Metrics: s.mailMetrics()})
		if err != nil {
			return fmt.Errorf("--smtp-url: %w", err)
		}
		// Delivered by SMTP, and still in the outbox for support.
		mailer = mail.Tee(smtp, outbox)
	}
	mailer = mail.Limit(mailer, mail.LimitOptions{Max: cfg.mailPerRecipient, Window: time.Hour, Metrics: s.mailMetrics()})
	proxies, _ := api.ParseCIDRs(cfg.trustedProxies)
	var cors []string
	for _, o := range strings.Split(cfg.corsOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			cors = append(cors, o)
		}
	}
	s.api = api.New(api.Options{
		ACL: s.acl, Log: s.aclLog, Query: q, Ingest: s.ingest.Handle,
		Metrics:     fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg})),
		OpsSeparate: cfg.opsAddr != "",
		Ready:       s.ready, Mailer: mailer, Outbox: outbox, BaseURL: publicURL(cfg),
		SessionTTL: cfg.sessionTTL, KeyGrace: cfg.keyGrace, Limits: cfg.limits,
		TrustedProxies: proxies, CORSOrigins: cors, IngestMaxBody: cfg.ingest.MaxBodySize,
		Registerer: s.reg, Logger: s.log,
	})
	if tok := os.Getenv("FLEETSCOPE_SUPPORT_TOKEN"); tok != "" {
		if _, err := s.api.EnsureSupport(octx, tok); err != nil {
			return fmt.Errorf("FLEETSCOPE_SUPPORT_TOKEN: %w", err)
		}
	}
	return nil
}

// publicURL is the dashboard's address for links in mail: --public-url,
// or one made of --addr.
func publicURL(cfg serveConfig) string {
	if cfg.publicURL != "" {
		return cfg.publicURL
	}
	host, port, err := net.SplitHostPort(cfg.addr)
	if err != nil {
		return "http://" + cfg.addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// mailMetrics are the mail package's metrics, one set per registry.
func (s *server) mailMetrics() *mail.Metrics {
	if s.mailM == nil {
		s.mailM = mail.NewMetrics(s.reg)
	}
	return s.mailM
}

// aclChanges forwards acl change notifications (acl.Options.OnChange) to
// the query service. The acl log starts tailing before the query service
// exists; what changes meanwhile is kept and handed over on attach.
type aclChanges struct {
	mu      sync.Mutex
	q       *query.Service
	pending []acl.Change
}

func (f *aclChanges) forward(c acl.Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.q == nil {
		f.pending = append(f.pending, c)
		return
	}
	f.q.OnACLChange(c)
}

func (f *aclChanges) attach(q *query.Service) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.pending {
		q.OnACLChange(c)
	}
	f.q, f.pending = q, nil
}

// close stops what open started, in reverse: the WAL is flushed to
// ClickHouse before ClickHouse closes.
func (s *server) close() {
	if s.ingest != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := s.ingest.Close(ctx); err != nil {
			s.log.Warn("ingest shutdown", "err", err)
		}
		cancel()
	}
	if s.rollup != nil {
		s.rollup.Stop()
	}
	if s.query != nil {
		s.query.Close()
	}
	if s.aclLog != nil {
		s.aclLog.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
	s.log.Info("stopped")
}

// persistedNodeID returns this data directory's node id, made at random on
// first use: nodes sharing a ClickHouse need distinct ids, and a restart
// must keep its own.
func persistedNodeID(dir string) (int, error) {
	path := filepath.Join(dir, "node-id")
	if b, err := os.ReadFile(path); err == nil {
		return strconv.Atoi(strings.TrimSpace(string(b)))
	}
	var b [2]byte
	rand.Read(b[:])
	id := int(binary.BigEndian.Uint16(b[:])%65535) + 1
	if err := os.WriteFile(path, []byte(strconv.Itoa(id)+"\n"), 0o644); err != nil {
		return 0, fmt.Errorf("node id: %w", err)
	}
	return id, nil
}
