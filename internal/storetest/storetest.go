// Package storetest gives tests a Store on the real embedded engine.
//
// chDB serves one data directory per process, so a test binary shares one
// engine: Open gives each test its own database on it. When the engine
// library is missing, tests fail if FLEETSCOPE_REQUIRE_ENGINE=1 (set by `make
// test` and CI) and are skipped with a message saying what to run otherwise.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/store"
	"github.com/fleetscope/fleetscope/store/engine"
)

var (
	mu     sync.Mutex
	shared *engine.Engine
	dir    string
)

// Engine returns the process's shared embedded engine, opening it on first
// use.
func Engine(t testing.TB) *engine.Engine {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if shared != nil {
		return shared
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "fleetscope-test-engine-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
	}
	e, err := engine.Open(engine.Options{Dir: filepath.Join(dir, "engine"), Logger: Logger()})
	if err != nil {
		if errors.Is(err, engine.ErrNotInstalled) && os.Getenv("FLEETSCOPE_REQUIRE_ENGINE") != "1" {
			t.Skipf("embedded engine not installed (run `make engine`, or `make test` which installs it): %v", err)
		}
		t.Fatalf("open embedded engine: %v", err)
	}
	shared = e
	return e
}

// Reopen closes the shared engine and opens it again on the same directory,
// as a process restart would.
func Reopen(t testing.TB) *engine.Engine {
	t.Helper()
	Engine(t)
	mu.Lock()
	shared.Close()
	shared = nil
	mu.Unlock()
	return Engine(t)
}

var nonIdent = regexp.MustCompile(`[^A-Za-z0-9_]`)

// Open returns a migrated Store in a fresh database named after the test,
// dropped when the test ends.
func Open(t testing.TB) *store.Store {
	t.Helper()
	db := "t_" + strings.ToLower(nonIdent.ReplaceAllString(t.Name(), "_"))
	if len(db) > 60 {
		db = db[:60]
	}
	db = fmt.Sprintf("%s_%d", db, time.Now().UnixNano()%1e6)
	return OpenDatabase(t, db)
}

// OpenDatabase opens a migrated Store on database db of the shared engine.
// The database is dropped when the test ends.
func OpenDatabase(t testing.TB, db string) *store.Store {
	t.Helper()
	eng := Engine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := store.Open(ctx, store.Config{Engine: eng, Database: db, Logger: Logger()})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = s.Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"`")
		s.Close()
	})
	return s
}

// Logger is quiet unless FLEETSCOPE_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("FLEETSCOPE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(discard{}, nil))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
