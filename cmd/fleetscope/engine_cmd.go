package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/store/engine"
	"github.com/fleetscope/fleetscope/store/engine/chhttp"
)

// runEngine serves the embedded engine's ClickHouse HTTP interface, so that
// several fleetscope processes (`serve --clickhouse http://ADDR`) share one
// engine: chDB lets only one process open a data directory.
func runEngine(ctx context.Context, log *slog.Logger, args []string) error {
	fs := newFlags("engine")
	addr := fs.String("addr", "127.0.0.1:8123", "listen address of the ClickHouse HTTP interface; beyond loopback it needs --password")
	data := fs.String("data", "./data", "data directory; the engine's files live in DATA/engine")
	password := fs.String("password", "", "password of user default, which clients send as ClickHouse's do (--clickhouse http://default:PASS@HOST:8123); prefer the environment variable, which ps does not show")
	sessions := fs.Int("sessions", 0, "engine sessions (statements run at once); 0 = default")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Listen before opening the engine: a busy port or a refused address
	// fails in milliseconds, not after loading the library.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("engine: listen: %w", err)
	}
	defer ln.Close()
	if err := chhttp.CheckExposure(ln.Addr(), *password); err != nil {
		return fmt.Errorf("%w: set --password or %sPASSWORD, or listen on 127.0.0.1", err, envPrefixes["engine"])
	}
	if *password == "" {
		log.Warn("engine has no password: every local user and process can run any statement; set --password or "+envPrefixes["engine"]+"PASSWORD",
			"addr", ln.Addr().String())
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerBuildInfo(reg)
	eng, err := engine.Open(engine.Options{
		Dir: filepath.Join(*data, "engine"), Sessions: *sessions,
		Registerer: reg, Logger: log,
	})
	if err != nil {
		return err
	}
	defer eng.Close()
	srv := &fasthttp.Server{
		// Statements are cancelled when ctx ends (SIGINT/SIGTERM), so that
		// shutdown does not wait for long queries; writers retry from their
		// WAL.
		Handler: chhttp.Handler(eng, chhttp.Options{Password: *password, Metrics: reg, Context: ctx, Registerer: reg}),
		Name:    "fleetscope-engine",
		// INSERT data arrives as one body; a flusher's batch is tens of MB.
		MaxRequestBodySize: 1 << 30,
		ReadTimeout:        5 * time.Minute,
		IdleTimeout:        time.Minute,
		CloseOnShutdown:    true,
		Logger:             slogPrintf{log},
	}
	log.Info("engine serving the ClickHouse HTTP interface", "addr", ln.Addr().String(), "data", *data,
		"version", eng.Version(), "password", *password != "")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("engine shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.ShutdownWithContext(sctx)
}

// slogPrintf adapts slog to fasthttp's Printf logger.
type slogPrintf struct{ log *slog.Logger }

func (l slogPrintf) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if strings.Contains(msg, "body size exceeds the given limit") {
		// A request refused before its body was read (api.HeaderReceived):
		// answered and counted (fleetscope_http_refused_before_body_total);
		// a warning each would let anyone flood the log.
		l.log.Debug(msg, "component", "http")
		return
	}
	l.log.Warn(msg, "component", "http")
}
