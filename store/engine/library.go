package engine

import (
	"errors"
	"os"
	"path/filepath"
)

// Version is the chDB release whose libchdb.so fleetscope is built and tested
// against; `make engine` installs exactly this one.
const Version = "26.5.3"

// ErrNotInstalled reports that the embedded engine's library was not found.
// Its message tells the operator what to run.
var ErrNotInstalled = errors.New("engine: libchdb.so not found: run `make engine` (or set FLEETSCOPE_ENGINE_LIB, or use --clickhouse to point at a ClickHouse server)")

// ErrUnavailable reports a build without cgo: it cannot load the library at
// all, so only a ClickHouse server (--clickhouse) is reachable. Every build
// defines it, so callers can test for it with errors.Is in either.
var ErrUnavailable = errors.New("fleetscope: embedded engine unavailable in this build (built without cgo); use --clickhouse to reach a ClickHouse server")

// LibraryPath returns where the engine library is looked for:
// FLEETSCOPE_ENGINE_LIB if set, else the install cache that `make engine`
// fills ($XDG_CACHE_HOME or ~/.cache, then fleetscope/chdb/<Version>).
func LibraryPath() string {
	if p := os.Getenv("FLEETSCOPE_ENGINE_LIB"); p != "" {
		return p
	}
	return filepath.Join(CacheDir(), "libchdb.so")
}

// CacheDir is the directory `make engine` installs the library into.
func CacheDir() string {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "fleetscope", "chdb", Version)
}
