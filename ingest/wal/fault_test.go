//go:build linux

package wal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// withRlimit lowers a resource limit of this process for the duration of
// fn: real kernel faults, not mocked ones — a file size limit makes writes
// that grow a file fail as a full disk does (EFBIG instead of ENOSPC; Go
// ignores SIGXFSZ), a descriptor limit makes opens fail with EMFILE.
func withRlimit(t *testing.T, resource int, cur uint64, fn func()) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(resource, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = cur
	if err := syscall.Setrlimit(resource, &lim); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := syscall.Setrlimit(resource, &old); err != nil {
			t.Fatal(err)
		}
	}()
	fn()
}

// lowestFreeFD is the descriptor the next open gets: with the limit there,
// no open succeeds.
func lowestFreeFD(t *testing.T) uint64 {
	t.Helper()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return uint64(f.Fd())
}

// A disk that fills up under the log: appends fail (never acknowledged
// without being durable), the log repairs itself once space is back, and
// every acknowledged record is there, in LSN order, after a reopen too.
func TestLogHealsAfterTheDiskFills(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	w, err := Open(dir, Options{Logger: quiet, SegmentSize: 4 << 10}, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var acked [][]byte
	add := func(n int) (failed int) {
		for range n {
			p := bytes.Repeat([]byte{byte(len(acked))}, 100)
			lsn, err := w.Append(p)
			if err != nil {
				if !errors.Is(err, ErrBroken) {
					t.Fatalf("append: %v, want ErrBroken", err)
				}
				failed++
				continue
			}
			if lsn != uint64(len(acked)+1) {
				t.Fatalf("LSN %d after %d acknowledged records", lsn, len(acked))
			}
			acked = append(acked, p)
		}
		return failed
	}
	add(50)
	var failed int
	withRlimit(t, syscall.RLIMIT_FSIZE, 2<<10, func() {
		failed = add(100)
		if w.Err() == nil {
			t.Error("a full disk did not break the log")
		}
		time.Sleep(300 * time.Millisecond) // repair attempts fail meanwhile
	})
	if failed == 0 {
		t.Fatal("every append succeeded on a full disk")
	}
	waitRepaired(t, w)
	add(50)
	if got := counterValue(t, w.m.writeErrors); got == 0 {
		t.Error("no write error counted")
	}
	if ok := counterValue(t, w.m.repairs.WithLabelValues("ok")); ok == 0 {
		t.Error("no repair counted")
	}
	check := func(w *WAL) {
		t.Helper()
		var n int
		if err := w.Replay(0, func(lsn uint64, p []byte) error {
			if !bytes.Equal(p, acked[lsn-1]) {
				t.Fatalf("record %d differs", lsn)
			}
			n++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n != len(acked) {
			t.Fatalf("%d records, %d acknowledged", n, len(acked))
		}
	}
	check(w)
	w.Close()
	w2, err := Open(dir, Options{Logger: quiet, SegmentSize: 4 << 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	check(w2)
	t.Logf("%d appends failed on the full disk, %d acknowledged", failed, len(acked))
}

// Out of file descriptors: a new segment cannot be opened, by the writer
// or by a Tailer; both go on once descriptors are free again.
func TestLogHealsAfterDescriptorsRunOut(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{Logger: quiet, SegmentSize: 1 << 10}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tl := w.Tail(1)
	defer tl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	read := 0
	readAll := func() error {
		for read < int(w.Stats().NextLSN-1) {
			if _, _, err := tl.Next(ctx); err != nil {
				return err
			}
			read++
		}
		return nil
	}
	appendN(t, w, 1, 5)
	if err := readAll(); err != nil {
		t.Fatal(err)
	}
	// Segments the tailer has not opened yet.
	appendN(t, w, 6, 60)
	next, failed := 61, 0
	var tailErr error
	withRlimit(t, syscall.RLIMIT_NOFILE, lowestFreeFD(t), func() {
		for range 40 {
			if _, err := w.Append(payload(next)); err != nil {
				failed++
				continue
			}
			next++
		}
		tailErr = readAll()
		time.Sleep(300 * time.Millisecond) // repair attempts fail meanwhile
	})
	if failed == 0 {
		t.Fatal("no append failed without descriptors")
	}
	// The tailer fails to open its next segment — unless the writer, whose
	// appends failed, closed its active segment in a repair attempt just
	// before, freeing a descriptor: which of the two wins is a race, so
	// this is logged, not asserted. That the tailer resumes is (below).
	if tailErr == nil {
		t.Log("the tailer opened its next segment with a descriptor the writer's repair had freed")
	}
	waitRepaired(t, w)
	if bad := counterValue(t, w.m.repairs.WithLabelValues("error")); bad == 0 {
		t.Error("no failed repair counted: the repair needs descriptors too")
	}
	appendN(t, w, next, next+10)
	if err := readAll(); err != nil {
		t.Fatalf("the tailer does not resume: %v", err)
	}
	checkRecords(t, replayAll(t, w, 0), 1, uint64(next+10))
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
