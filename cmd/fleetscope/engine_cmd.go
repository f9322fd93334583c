package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/store/engine"
)

// runEngine serves the embedded engine's ClickHouse HTTP interface, so that
// several fleetscope processes (`serve --clickhouse http://ADDR`) share one
// engine: chDB lets only one process open a data directory.
func runEngine(ctx context.Context, log *slog.Logger, args []string) error {
	fs := newFlags("engine")
	addr := fs.String("addr", "127.0.0.1:8123", "listen address of the ClickHouse HTTP interface (keep it on loopback: it has no authentication)")
	data := fs.String("data", "./data", "data directory; the engine's files live in DATA/engine")
	sessions := fs.Int("sessions", 0, "engine sessions (statements run at once); 0 = default")
	if err := fs.Parse(args); err != nil {
		return err
	}
	eng, err := engine.Open(engine.Options{
		Dir: filepath.Join(*data, "engine"), Sessions: *sessions,
		Registerer: prometheus.NewRegistry(), Logger: log,
	})
	if err != nil {
		return err
	}
	defer eng.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("engine: listen: %w", err)
	}
	srv := &fasthttp.Server{
		Handler: eng.HandleHTTP,
		Name:    "fleetscope-engine",
		// INSERT data arrives as one body; a flusher's batch is tens of MB.
		MaxRequestBodySize: 1 << 30,
		ReadTimeout:        5 * time.Minute,
		IdleTimeout:        time.Minute,
		Logger:             slogPrintf{log},
	}
	log.Info("engine serving the ClickHouse HTTP interface", "addr", ln.Addr().String(), "data", *data, "version", eng.Version())
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
	l.log.Warn(fmt.Sprintf(format, args...), "component", "http")
}
