package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/fleetscope/fleetscope/ingest/wal"
	"github.com/fleetscope/fleetscope/internal/storetest"
	"github.com/fleetscope/fleetscope/store"
)

// oneGateway is a GatewayAuth with a single key, for the package's own
// tests (the e2e tests have their own).
type oneGateway struct{}

func (oneGateway) Gateway(key []byte) (Gateway, bool) {
	if string(key) != "key" {
		return Gateway{}, false
	}
	return Gateway{ID: 1, System: 10, Monitored: true}, true
}

// fillWAL appends n records of 30 readings (one interval each, a minute
// apart from ts0) to the WAL in dir, one record per segment.
func fillWAL(t *testing.T, dir string, n int, ts0 int64) {
	t.Helper()
	w, err := wal.Open(dir, wal.Options{SegmentSize: 512}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		rs := sampleReadings(30, int64(i))
		for k := range rs {
			rs[k].TS = ts0 + int64(i)*60_000
		}
		if _, err := w.Append(AppendRecord(nil, RecordHeader{GatewayID: 1, SystemID: 10, Seq: uint64(i + 1), ReceivedAt: ts0}, rs)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// copyDir copies the regular files of src into dst, the flush journal cut
// to its first journalBytes bytes: what a power loss leaves of a file
// written since its last fsync may be anything from nothing to all of it,
// and nothing is the case that can hurt.
//
// It reports false, having copied part, when a file went between listing
// and opening: another sender's truncation ran meanwhile (senders commit
// and truncate concurrently), and the copy is not a state the WAL passed
// through.
func copyDir(t *testing.T, src, dst string, journalBytes int64) bool {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".spare") || e.Name() == "LOCK" {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = in
		if e.Name() == "flush.journal" {
			r = io.LimitReader(in, journalBytes)
		}
		b, err := io.ReadAll(r)
		in.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return true
}

func countReadings(t *testing.T, s *store.Store) (rows, distinct uint64) {
	t.Helper()
	if err := s.QueryRow(context.Background(), "SELECT count(), uniqExact(system_id, panel, ts) FROM readings").Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	return rows, distinct
}

// Finding 5 of issue 14: the flusher deleted WAL segments once a batch was
// stored, but the journal entry saying so was not fsynced first. A power
// loss then left a journal whose oldest intents name records the WAL no
// longer has; the restarted flusher cut the records that remain at those
// stale boundaries, under deduplication tokens ClickHouse had never seen,
// and stored them twice. Here the state such a power loss leaves — the WAL
// as it was right after the first truncation, the journal as far as it was
// fsynced then — is restarted from, and every reading must be stored once.
func TestPowerLossAfterTruncationStoresNothingTwice(t *testing.T) {
	s := storetest.Open(t)
	dir, lost := t.TempDir(), t.TempDir()
	ts0 := time.Now().Add(-3*time.Hour).UnixMilli() / 60_000 * 60_000
	const records = 12
	fillWAL(t, dir, records, ts0)

	var copyMu sync.Mutex
	copied := false
	opts := Options{Dir: dir, Store: s, Gateways: oneGateway{}, Logger: storetest.Logger(),
		// Three records a batch, cut by size only; one record a segment.
		BatchRows: 90, FlushInterval: time.Hour, walSegmentSize: 512,
		hooks: &testHooks{truncated: func(synced int64) {
			copyMu.Lock()
			defer copyMu.Unlock()
			if !copied {
				if copied = copyDir(t, dir, lost, synced); !copied {
					// A later truncation copies afresh into an empty dir.
					if err := os.RemoveAll(lost); err != nil {
						t.Error(err)
					}
					if err := os.Mkdir(lost, 0o755); err != nil {
						t.Error(err)
					}
				}
			}
		}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WaitFlushed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, distinct := countReadings(t, s); rows != records*30 || distinct != rows {
		t.Fatalf("before the power loss: %d rows, %d distinct, want %d", rows, distinct, records*30)
	}
	if _, err := os.Stat(filepath.Join(lost, "flush.journal")); err != nil {
		t.Fatalf("no truncation was observed: %v", err)
	}

	opts.Dir, opts.hooks = lost, nil
	b, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFlushed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, distinct := countReadings(t, s); rows != distinct || rows != records*30 {
		t.Fatalf("after the power loss: %d rows for %d distinct readings, want %d once each", rows, distinct, records*30)
	}
}

// A journal whose intents name records the WAL no longer holds (they were
// stored and truncated, and the commit entry was lost, e.g. with a
// sealed segment skipped as corrupt) must not misalign the spans cut after
// them: each journalled span still present is cut exactly as before.
func TestStaleJournalSpansAreDropped(t *testing.T) {
	j := &journal{committed: 0, pending: []span{{1, 3}, {4, 6}, {7, 9}, {10, 12}}}
	committed, redo := j.resume(5)
	if want := fmt.Sprint([]span{{7, 9}, {10, 12}}); committed != 6 || fmt.Sprint(redo) != want {
		t.Fatalf("resume(5) = %d, %v; want 6, %s", committed, redo, want)
	}
	committed, redo = j.resume(1)
	if committed != 0 || len(redo) != 4 {
		t.Fatalf("resume(1) = %d, %v", committed, redo)
	}
}

// Finding 6 of issue 14: one corrupt sealed segment stopped the service
// from starting, with no way past it. It still stops Open by default (its
// acknowledged readings are lost if skipped: an operator decides); with
// WALSkipCorrupt the service starts, stores every record it can read, and
// says what it lost.
func TestCorruptSealedSegmentIsSkippedOnlyWhenAsked(t *testing.T) {
	s := storetest.Open(t)
	dir := t.TempDir()
	ts0 := time.Now().Add(-3*time.Hour).UnixMilli() / 60_000 * 60_000
	fillWAL(t, dir, 12, ts0)
	seg := filepath.Join(dir, fmt.Sprintf("%020d.seg", 5))
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[32+8] ^= 0xff // the first payload byte of record 5
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := Options{Dir: dir, Store: s, Gateways: oneGateway{}, Logger: storetest.Logger(), FlushInterval: 50 * time.Millisecond, walSegmentSize: 512}
	if _, err := Open(ctx, opts); !errors.Is(err, wal.ErrCorrupt) || !strings.Contains(err.Error(), "--wal-skip-corrupt") {
		t.Fatalf("open with a corrupt sealed segment: %v", err)
	}
	opts.WALSkipCorrupt = true
	svc, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if r := svc.wal.Recovery(); r.SkippedRecords != 1 || r.CorruptSkipped == 0 {
		t.Fatalf("recovery %+v, want record 5 skipped", r)
	}
	if err := svc.WaitFlushed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, distinct := countReadings(t, s); rows != 11*30 || distinct != rows {
		t.Fatalf("%d rows (%d distinct) stored, want the 11 readable records' 330", rows, distinct)
	}
}

// The flush path's own files fail — a WAL segment that cannot be opened
// (ELOOP here; EMFILE in the child-process tests), a flush journal that
// cannot be written — and flushing waits, retrying with backoff, says so
// in /readyz and the stalled gauge, and resumes by itself once the fault is
// gone; issue 14 found both stopped flushing until a restart.
func TestFlusherRetriesItsOwnFiles(t *testing.T) {
	s := storetest.Open(t)
	dir := t.TempDir()
	ts0 := time.Now().Add(-3*time.Hour).UnixMilli() / 60_000 * 60_000
	fillWAL(t, dir, 12, ts0)
	seg := filepath.Join(dir, fmt.Sprintf("%020d.seg", 1))
	restore := func() {
		if err := os.Remove(seg); err != nil {
			t.Error(err)
		}
		if err := os.Rename(seg+".aside", seg); err != nil {
			t.Error(err)
		}
	}
	opts := Options{Dir: dir, Store: s, Gateways: oneGateway{}, Logger: storetest.Logger(), FlushInterval: 50 * time.Millisecond,
		walSegmentSize: 512, Registerer: prometheus.NewRegistry(),
		hooks: &testHooks{beforeFlusher: func() {
			// The first segment, which the flusher reads first, becomes a
			// symbolic link to itself.
			if err := os.Rename(seg, seg+".aside"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(seg, seg); err != nil {
				t.Fatal(err)
			}
		}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svc, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(ctx)
	stalled := func(stage string) float64 {
		var m dto.Metric
		if err := svc.m.stalled.WithLabelValues(stage).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetGauge().GetValue()
	}
	waitStalled := func(stage string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); stalled(stage) != 1 || svc.Ready() == nil; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("stage %s not reported stalled (gauge %v, ready %v)", stage, stalled(stage), svc.Ready())
			}
		}
	}
	waitStalled(stageWALRead)
	time.Sleep(300 * time.Millisecond) // a few retries
	restore()
	if err := svc.WaitFlushed(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, _ := countReadings(t, s); rows != 12*30 {
		t.Fatalf("%d rows after the segment came back, want %d", rows, 12*30)
	}
	if stalled(stageWALRead) != 0 || svc.Ready() != nil {
		t.Fatalf("still stalled: %v, ready %v", stalled(stageWALRead), svc.Ready())
	}

	// The journal: its descriptor fails the next write, and its rewrite
	// fails while a directory stands where the new file goes.
	tmp := filepath.Join(dir, "flush.journal.tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	svc.flusher.jmu.Lock()
	svc.flusher.journal.f.Close()
	svc.flusher.jmu.Unlock()
	rs := sampleReadings(30, 99)
	for k := range rs {
		rs[k].TS = ts0 + 13*60_000
	}
	if _, err := svc.wal.Append(AppendRecord(nil, RecordHeader{GatewayID: 1, SystemID: 10, Seq: 13, ReceivedAt: ts0}, rs)); err != nil {
		t.Fatal(err)
	}
	waitStalled(stageJournal)
	time.Sleep(300 * time.Millisecond)
	if err := os.Remove(tmp); err != nil {
		t.Fatal(err)
	}
	if err := svc.WaitFlushed(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, _ := countReadings(t, s); rows != 13*30 {
		t.Fatalf("%d rows after the journal came back, want %d", rows, 13*30)
	}
	if stalled(stageJournal) != 0 || svc.Ready() != nil {
		t.Fatalf("still stalled: %v, ready %v", stalled(stageJournal), svc.Ready())
	}
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The journal reads back whole.
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	if j.committed != 13 || len(j.pending) != 0 {
		t.Fatalf("journal: committed %d, pending %v", j.committed, j.pending)
	}
}
