//go:build !linux

package wal

import "os"

// fdatasync falls back to fsync where fdatasync(2) is not in package syscall.
func fdatasync(f *os.File) error { return f.Sync() }
