package main

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/fleetscope/fleetscope/store"
	"github.com/fleetscope/fleetscope/store/engine/chhttp"
)

// Start-up refuses to serve beyond loopback without a password, and reads
// its own FLEETSCOPE_ENGINE_* twins; each case fails before the engine
// loads.
func TestEngineStartupRefusals(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // were a case to get past its refusal, it would stop at once
	f := func(env map[string]string, args []string, is error, mentions ...string) {
		t.Helper()
		for _, k := range []string{"FLEETSCOPE_ENGINE_ADDR", "FLEETSCOPE_ENGINE_DATA", "FLEETSCOPE_ENGINE_PASSWORD", "FLEETSCOPE_ENGINE_SESSIONS"} {
			t.Setenv(k, env[k])
			if _, ok := env[k]; !ok {
				os.Unsetenv(k)
			}
		}
		err := runEngine(ctx, log, append([]string{"--data", t.TempDir()}, args...))
		if err == nil || is != nil && !errors.Is(err, is) {
			t.Fatalf("runEngine(%v, env %v) = %v; want %v", args, env, err, is)
		}
		for _, m := range mentions {
			if !strings.Contains(err.Error(), m) {
				t.Fatalf("runEngine(%v, env %v) = %q; want it to mention %q", args, env, err, m)
			}
		}
	}
	f(nil, []string{"--addr", "0.0.0.0:0"}, chhttp.ErrPasswordRequired, "--password", "FLEETSCOPE_ENGINE_PASSWORD")
	f(nil, []string{"--addr", "[::]:0"}, chhttp.ErrPasswordRequired, "--password")
	f(map[string]string{"FLEETSCOPE_ENGINE_ADDR": "0.0.0.0:0"}, nil, chhttp.ErrPasswordRequired, "FLEETSCOPE_ENGINE_PASSWORD")
	f(map[string]string{"FLEETSCOPE_ENGINE_ADDR": "0.0.0.0:0", "FLEETSCOPE_ENGINE_PASSWORD": ""}, nil, chhttp.ErrPasswordRequired)
	f(map[string]string{"FLEETSCOPE_ENGINE_SESSIONS": "many"}, nil, nil, "FLEETSCOPE_ENGINE_SESSIONS")
}

// The real subcommand, configured through its environment twins (serve's
// FLEETSCOPE_ADDR and FLEETSCOPE_DATA, set to unusable values, are not
// read): it wants the password, clickhouse-go reaches it with the password
// in the DSN, and /metrics carries engine, Go and process metrics that pass
// promlint.
func TestEngineProcess(t *testing.T) {
	const pass = "engine-secret"
	addr, data := freeAddr(t), t.TempDir()
	eng := startChild(t, []string{
		"FLEETSCOPE_LOG_LEVEL=warn",
		"FLEETSCOPE_ENGINE_ADDR=" + addr, "FLEETSCOPE_ENGINE_DATA=" + data, "FLEETSCOPE_ENGINE_PASSWORD=" + pass,
		"FLEETSCOPE_ADDR=256.0.0.1:1", "FLEETSCOPE_DATA=/nonexistent/fleetscope",
	}, "engine")
	waitEngine(t, addr)
	if _, err := os.Stat(filepath.Join(data, "engine")); err != nil {
		t.Fatalf("FLEETSCOPE_ENGINE_DATA not used: %v", err)
	}
	get := func(path string, auth bool) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if auth {
			req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("default:"+pass)))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	sel := "/?query=" + url.QueryEscape("SELECT 1")
	if st, body := get(sel, false); st != http.StatusUnauthorized {
		t.Fatalf("without the password: %d %q", st, body)
	}
	if st, body := get(sel, true); st != 200 || body != "1\n" {
		t.Fatalf("with the password: %d %q", st, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := (&url.URL{Scheme: "http", User: url.UserPassword("default", pass), Host: addr}).String()
	s, err := store.Open(ctx, store.Config{ClickHouse: dsn, SkipMigrations: true})
	if err != nil {
		t.Fatalf("store.Open(%s): %v\n%s", strings.Replace(dsn, pass, "…", 1), err, eng.log)
	}
	var n uint64
	if err := s.QueryRow(ctx, "SELECT count() FROM numbers(1000)").Scan(&n); err != nil || n != 1000 {
		t.Fatalf("query over the DSN: %v %d", err, n)
	}
	s.Close()
	st, metrics := get("/metrics", false)
	if st != 200 {
		t.Fatalf("/metrics: %d %q", st, metrics)
	}
	for _, want := range []string{"go_goroutines ", "process_cpu_seconds_total ", "fleetscope_build_info{", "fleetscope_engine_statements_total{",
		`fleetscope_engine_http_refused_total{reason="auth"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	problems, err := promlint.New(strings.NewReader(metrics)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	eng.stop()

	// On loopback without a password it serves, and warns.
	open := startChild(t, []string{"FLEETSCOPE_LOG_LEVEL=warn"}, "engine", "--addr", addr, "--data", t.TempDir())
	waitEngine(t, addr)
	if st, body := get(sel, false); st != 200 || body != "1\n" {
		t.Fatalf("without a password configured: %d %q", st, body)
	}
	open.stop()
	if log := open.log.String(); !strings.Contains(log, "engine has no password") {
		t.Fatalf("no warning about the missing password in the log:\n%s", log)
	}
}
