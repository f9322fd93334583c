package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/fleetscope/fleetscope/internal/route"
	"github.com/fleetscope/fleetscope/store"
)

// serveConfig is `fleetscope serve`'s configuration.
type serveConfig struct {
	addr       string
	data       string
	clickhouse string
	demo       bool
}

func parseServe(args []string) (serveConfig, error) {
	fs := newFlags("serve")
	var c serveConfig
	addr := fs.String("addr", "127.0.0.1:8080", "HTTP listen address")
	data := fs.String("data", "./data", "data directory: the embedded engine (DATA/engine) and the write-ahead log (DATA/wal)")
	ch := fs.String("clickhouse", "", "ClickHouse DSN: empty = embedded engine; clickhouse://user:pass@host:9000/db?cluster=name[&secure=true] for a server or cluster; http://127.0.0.1:8123 for `fleetscope engine`")
	demo := fs.Bool("demo", false, "create a demo fleet on first start and print tokens to try it with")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.addr, c.data, c.clickhouse, c.demo = *addr, *data, *ch, *demo
	return c, nil
}

// server is a running `fleetscope serve`: its components and HTTP routes.
type server struct {
	cfg   serveConfig
	log   *slog.Logger
	reg   *prometheus.Registry
	store *store.Store
	http  *fasthttp.Server
	start time.Time
}

func runServe(ctx context.Context, log *slog.Logger, args []string) error {
	cfg, err := parseServe(args)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.data, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	s := &server{cfg: cfg, log: log, reg: prometheus.NewRegistry(), start: time.Now()}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	octx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	mode := "embedded"
	if cfg.clickhouse != "" {
		mode = "server"
	}
	log.Info("opening ClickHouse", "mode", mode, "data", cfg.data)
	s.store, err = store.Open(octx, store.Config{ClickHouse: cfg.clickhouse, DataDir: cfg.data, Registerer: s.reg, Logger: log})
	if err != nil {
		return err
	}
	defer s.store.Close()

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s.http = &fasthttp.Server{
		Handler:            s.routes(),
		Name:               "fleetscope",
		ReadTimeout:        30 * time.Second,
		WriteTimeout:       30 * time.Second,
		IdleTimeout:        2 * time.Minute,
		MaxRequestBodySize: 16 << 20,
		Logger:             slogPrintf{log},
	}
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(ln) }()
	log.Info("fleetscope serving", "addr", ln.Addr().String(), "version", version, "clickhouse", mode)
	fmt.Fprintf(os.Stderr, "fleetscope is up: http://%s (readiness: /readyz, metrics: /metrics)\n", ln.Addr())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: no new requests, finishing the ones in flight")
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	if err := s.http.ShutdownWithContext(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	log.Info("stopped")
	return nil
}

func (s *server) routes() fasthttp.RequestHandler {
	var r route.Router
	r.Handle("GET", "/healthz", s.healthz)
	r.Handle("GET", "/readyz", s.readyz)
	r.Handle("GET", "/metrics", fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg})))
	return r.Serve
}

func (s *server) healthz(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{"status": "ok", "uptime_s": int(time.Since(s.start).Seconds())})
}

// readyz answers 200 only when the engine answers, every migration is
// applied and the data directory (WAL) is writable.
func (s *server) readyz(ctx *fasthttp.RequestCtx) {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	ready := true
	fail := func(name string, err error) {
		checks[name] = err.Error()
		ready = false
	}
	if err := s.store.Ping(c); err != nil {
		fail("clickhouse", err)
	} else {
		checks["clickhouse"] = "ok"
		applied, err := s.store.AppliedMigrations(c)
		switch {
		case err != nil:
			fail("migrations", err)
		case !applied[store.SchemaVersion()]:
			fail("migrations", fmt.Errorf("schema version %d not applied", store.SchemaVersion()))
		default:
			checks["migrations"] = "ok"
		}
	}
	if err := checkWritable(s.cfg.data); err != nil {
		fail("data_dir", err)
	} else {
		checks["data_dir"] = "ok"
	}
	status := fasthttp.StatusOK
	if !ready {
		status = fasthttp.StatusServiceUnavailable
	}
	writeJSON(ctx, status, map[string]any{"ready": ready, "checks": checks})
}

// checkWritable creates, syncs and removes a file in dir.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".readyz-*")
	if err != nil {
		return err
	}
	name := f.Name()
	_, werr := f.Write([]byte("ok"))
	serr := f.Sync()
	cerr := f.Close()
	rerr := os.Remove(name)
	return errors.Join(werr, serr, cerr, rerr)
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	b, err := json.Marshal(v)
	if err != nil {
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		b = []byte(`{"error":{"code":"internal","message":"cannot encode answer"}}`)
	}
	ctx.SetBody(append(b, '\n'))
}
