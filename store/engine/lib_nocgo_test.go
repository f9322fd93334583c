//go:build !cgo

package engine

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Without cgo, opening the engine fails at once with the sentinel, before
// it touches the data directory.
func TestOpenWithoutCgo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "engine")
	e, err := Open(Options{Dir: dir})
	if !errors.Is(err, ErrUnavailable) || e != nil {
		t.Fatalf("Open = %v, %v; want ErrUnavailable", e, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data directory created: %v", err)
	}
}
