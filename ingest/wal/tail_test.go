package wal

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// A Tailer sees every record exactly once, in order, while writers append
// across segment boundaries.
func TestTailFollowsConcurrentAppends(t *testing.T) {
	w := openT(t, t.TempDir(), Options{SegmentSize: 4 << 10})
	const n = 3000
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 4 {
				if _, err := w.Append(payload(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	tl := w.Tail(1)
	defer tl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []rec
	for len(got) < n {
		lsn, p, err := tl.Next(ctx)
		if err != nil {
			t.Fatalf("after %d records: %v", len(got), err)
		}
		got = append(got, rec{lsn, bytes.Clone(p)})
	}
	wg.Wait()
	want := replayAll(t, w, 1)
	if len(want) != n {
		t.Fatalf("replay %d records", len(want))
	}
	for i := range got {
		if got[i].lsn != want[i].lsn || !bytes.Equal(got[i].payload, want[i].payload) {
			t.Fatalf("record %d: tail LSN %d, replay LSN %d", i, got[i].lsn, want[i].lsn)
		}
	}
	if tl.Position() != n+1 {
		t.Fatalf("position %d", tl.Position())
	}
}

func TestTailStartsMidSegmentAndSkipsTruncated(t *testing.T) {
	w := openT(t, t.TempDir(), Options{SegmentSize: 2 << 10})
	appendN(t, w, 1, 400)
	tl := w.Tail(250)
	ctx := context.Background()
	lsn, p, err := tl.Next(ctx)
	if err != nil || lsn != 250 || !bytes.Equal(p, payload(250)) {
		t.Fatalf("first record: lsn %d err %v", lsn, err)
	}
	tl.Close()
	if _, err := w.TruncateBefore(300); err != nil {
		t.Fatal(err)
	}
	tl = w.Tail(1)
	defer tl.Close()
	lsn, _, err = tl.Next(ctx)
	if err != nil || lsn != w.Stats().FirstLSN || lsn > 300 {
		t.Fatalf("after truncation: lsn %d (first on disk %d) err %v", lsn, w.Stats().FirstLSN, err)
	}
}

func TestTailWaitsAndStops(t *testing.T) {
	w := openT(t, t.TempDir(), Options{})
	tl := w.Tail(1)
	defer tl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := tl.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("empty log: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := tl.Next(context.Background())
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if _, err := w.Append([]byte("late")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("woken by append: %v", err)
	}
	go func() {
		_, _, err := tl.Next(context.Background())
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	w.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}
