//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package wal

import (
	"os"
	"path/filepath"
)

// lockDir only creates dir/LOCK where flock(2) is not available: the
// single-process rule is then the operator's to keep.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
}
