package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openT(t testing.TB, dir string, opts Options) *WAL {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	w, err := Open(dir, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func payload(i int) []byte {
	// Sizes 0–99 so records straddle every alignment.
	return bytes.Repeat([]byte{byte(i), byte(i >> 8)}, i%50)
}

type rec struct {
	lsn     uint64
	payload []byte
}

func replayAll(t testing.TB, w *WAL, from uint64) []rec {
	t.Helper()
	var out []rec
	err := w.Replay(from, func(lsn uint64, p []byte) error {
		out = append(out, rec{lsn, bytes.Clone(p)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkRecords asserts that got holds payload(i) at LSN i for i in [first, last].
func checkRecords(t testing.TB, got []rec, first, last uint64) {
	t.Helper()
	if uint64(len(got)) != last-first+1 {
		t.Fatalf("%d records, want LSNs %d..%d", len(got), first, last)
	}
	for i, r := range got {
		lsn := first + uint64(i)
		if r.lsn != lsn || !bytes.Equal(r.payload, payload(int(lsn))) {
			t.Fatalf("record %d: LSN %d, %d bytes; want LSN %d, %d bytes", i, r.lsn, len(r.payload), lsn, len(payload(int(lsn))))
		}
	}
}

func appendN(t testing.TB, w *WAL, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		lsn, err := w.Append(payload(i))
		if err != nil {
			t.Fatal(err)
		}
		if lsn != uint64(i) {
			t.Fatalf("Append %d: LSN %d", i, lsn)
		}
	}
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDurableAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir, Options{})
	if s := w.Stats(); s.NextLSN != 1 || s.FirstLSN != 1 || s.Records != 0 || s.Segments != 1 {
		t.Fatalf("new log: %+v", s)
	}
	appendN(t, w, 1, 100)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openT(t, dir, Options{})
	if r := w.Recovery(); r.Records != 100 || r.TornBytes != 0 || r.Segments != 1 {
		t.Fatalf("recovery %+v", r)
	}
	checkRecords(t, replayAll(t, w, 0), 1, 100)
	appendN(t, w, 101, 110)
	checkRecords(t, replayAll(t, w, 0), 1, 110)
	if s := w.Stats(); s.FirstLSN != 1 || s.NextLSN != 111 || s.Records != 110 || s.Backlog != 110 {
		t.Fatalf("stats %+v", s)
	}
}

func TestReplayFrom(t *testing.T) {
	w := openT(t, t.TempDir(), Options{SegmentSize: 512})
	appendN(t, w, 1, 60)
	tests := []struct {
		name        string
		from        uint64
		first, last uint64
	}{
		{"0 means from the start", 0, 1, 60},
		{"from the middle of a segment", 37, 37, 60},
		{"from the last record", 60, 60, 60},
		{"past the end visits nothing", 61, 61, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRecords(t, replayAll(t, w, tt.from), tt.first, tt.last)
		})
	}
	t.Run("an error from the callback stops the replay", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := w.Replay(0, func(uint64, []byte) error {
			n++
			if n == 5 {
				return stop
			}
			return nil
		})
		if err != stop || n != 5 {
			t.Fatalf("err %v after %d records", err, n)
		}
	})
}

func TestConcurrentAppends(t *testing.T) {
	reg := prometheus.NewRegistry()
	w, err := Open(t.TempDir(), Options{SegmentSize: 64 << 10, Logger: quiet}, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const writers, each = 16, 150
	var mu sync.Mutex
	got := map[uint64][]byte{}
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				p := fmt.Appendf(nil, "writer %d record %d", g, i)
				var lsn uint64
				var err error
				if i%10 == 9 { // some batches among single appends
					var first uint64
					first, err = w.AppendBatch([][]byte{p, append(p, '+')})
					lsn = first
					mu.Lock()
					got[first+1] = append(bytes.Clone(p), '+')
					mu.Unlock()
				} else {
					lsn, err = w.Append(p)
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if _, dup := got[lsn]; dup {
					t.Errorf("LSN %d returned twice", lsn)
				}
				got[lsn] = p
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	total := writers * (each + each/10)
	if len(got) != total {
		t.Fatalf("%d LSNs, want %d", len(got), total)
	}
	replayed := replayAll(t, w, 0)
	if len(replayed) != total {
		t.Fatalf("replayed %d, want %d", len(replayed), total)
	}
	for i, r := range replayed {
		if r.lsn != uint64(i)+1 || !bytes.Equal(r.payload, got[r.lsn]) {
			t.Fatalf("LSN %d: replayed %q, appended %q", r.lsn, r.payload, got[r.lsn])
		}
	}
	fsyncs := histogramCount(t, reg, "fleetscope_wal_group_records")
	t.Logf("%d records in %d group commits", total, fsyncs)
	if fsyncs == 0 || fsyncs > uint64(total) {
		t.Fatalf("%d group commits for %d records", fsyncs, total)
	}
}

func histogramCount(t testing.TB, g prometheus.Gatherer, name string) uint64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func metricValue(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func TestMetrics(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	w, err := Open(dir, Options{SegmentSize: 256, Logger: quiet}, reg)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, w, 1, 20)
	removed, err := w.TruncateBefore(15)
	if err != nil || removed == 0 {
		t.Fatalf("TruncateBefore: %d, %v", removed, err)
	}
	s := w.Stats()
	for name, want := range map[string]float64{
		"fleetscope_wal_appended_records_total":   20,
		"fleetscope_wal_segments":                 float64(s.Segments),
		"fleetscope_wal_backlog_bytes":            float64(s.Bytes),
		"fleetscope_wal_backlog_records":          6,
		"fleetscope_wal_truncated_segments_total": float64(removed),
	} {
		if got := metricValue(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := metricValue(t, reg, "fleetscope_wal_written_bytes_total"); got < 20*recordHeaderSize {
		t.Errorf("written bytes %v", got)
	}
	if n := histogramCount(t, reg, "fleetscope_wal_fsync_duration_seconds"); n != 20 {
		t.Errorf("%d fsyncs observed, want 20 (sequential appends)", n)
	}
	end := activeEnd(w)
	w.Close()
	// A torn tail on reopen is counted: garbage right after the last
	// record, and whatever follows it in the file (preallocated zeros).
	last := segmentFiles(t, dir)
	f := last[len(last)-1]
	writeAt(t, f, end, []byte{1, 2, 3})
	torn := fileSize(t, f) - end
	reg2 := prometheus.NewRegistry()
	w, err = Open(dir, Options{Logger: quiet}, reg2)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := metricValue(t, reg2, "fleetscope_wal_torn_tail_dropped_bytes_total"); got != float64(torn) {
		t.Errorf("torn bytes metric %v, want %d", got, torn)
	}
}

// activeEnd is the offset after the last record of the active segment.
func activeEnd(w *WAL) int64 {
	w.segMu.Lock()
	defer w.segMu.Unlock()
	return w.segs[len(w.segs)-1].size
}

func writeAt(t testing.TB, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestTornTailAtEveryOffset cuts the last record of the last segment at every
// byte offset: the earlier records must survive, the torn one must be gone
// and its LSN reused by the next append (it was never acknowledged).
func TestTornTailAtEveryOffset(t *testing.T) {
	src := t.TempDir()
	w := openT(t, src, Options{})
	appendN(t, w, 1, 3)
	w.Close()
	path := segmentFiles(t, src)[0]
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lastStart := int64(len(orig)) - int64(recordHeaderSize+len(payload(3)))
	for cut := lastStart; cut < int64(len(orig)); cut++ {
		t.Run(fmt.Sprintf("cut=%d", cut), func(t *testing.T) {
			dir := t.TempDir()
			dst := filepath.Join(dir, filepath.Base(path))
			if err := os.WriteFile(dst, orig[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
			w := openT(t, dir, Options{})
			if r := w.Recovery(); r.TornBytes != cut-lastStart || r.Records != 2 {
				t.Fatalf("recovery %+v, want %d torn bytes, 2 records", r, cut-lastStart)
			}
			if size := fileSize(t, dst); size != lastStart {
				t.Fatalf("file is %d bytes, want truncated to %d", size, lastStart)
			}
			checkRecords(t, replayAll(t, w, 0), 1, 2)
			appendN(t, w, 3, 4)
			w.Close()
			w = openT(t, dir, Options{})
			checkRecords(t, replayAll(t, w, 0), 1, 4)
		})
	}
}

func TestTornTailGarbage(t *testing.T) {
	tests := []struct {
		name string
		tail []byte
	}{
		{"zeros, then garbage", append(make([]byte, 4096), 1)},
		{"random bytes", func() []byte { b := make([]byte, 1000); rand.New(rand.NewSource(1)).Read(b); return b }()},
		{"a length past the end of the file", []byte{0xff, 0xff, 0, 0, 1, 2, 3, 4, 5}},
		{"an intact-looking header with a bad CRC", append(appendRecord(nil, []byte("hello"))[:4], 0, 0, 0, 0, 'h', 'e', 'l', 'l', 'o')},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w := openT(t, dir, Options{})
			appendN(t, w, 1, 5)
			w.Close()
			appendBytes(t, segmentFiles(t, dir)[0], tt.tail)
			w = openT(t, dir, Options{})
			if r := w.Recovery(); r.TornBytes != int64(len(tt.tail)) {
				t.Fatalf("torn bytes %d, want %d", r.TornBytes, len(tt.tail))
			}
			checkRecords(t, replayAll(t, w, 0), 1, 5)
			appendN(t, w, 6, 6)
		})
	}
}

func TestTornSegmentHeader(t *testing.T) {
	for _, size := range []int{0, 1, 16, headerSize - 1, headerSize} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			dir := t.TempDir()
			w := openT(t, dir, Options{SegmentSize: 100})
			appendN(t, w, 1, 6) // several segments
			w.Close()
			// A crash while creating the next segment: header cut short (or,
			// at 32 bytes, never written: the file size made it, the data did not).
			path := segmentPath(dir, 7)
			if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
				t.Fatal(err)
			}
			w = openT(t, dir, Options{SegmentSize: 100})
			checkRecords(t, replayAll(t, w, 0), 1, 6)
			if s := w.Stats(); s.NextLSN != 7 {
				t.Fatalf("next LSN %d, want 7", s.NextLSN)
			}
			appendN(t, w, 7, 8)
			w.Close()
			w = openT(t, dir, Options{})
			checkRecords(t, replayAll(t, w, 0), 1, 8)
		})
	}
}

// corruptByte flips one bit of the byte at off in path.
func corruptByte(t testing.TB, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x10
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCRCFlipDetection flips every bit position class of one record — length,
// CRC, payload — and checks that no flipped record is ever returned.
func TestCRCFlipDetection(t *testing.T) {
	src := t.TempDir()
	w := openT(t, src, Options{})
	appendN(t, w, 1, 3)
	w.Close()
	path := segmentFiles(t, src)[0]
	orig, _ := os.ReadFile(path)
	rec2 := int64(headerSize + recordHeaderSize + len(payload(1)))
	rec2End := rec2 + recordHeaderSize + int64(len(payload(2)))
	for off := rec2; off < rec2End; off++ {
		dir := t.TempDir()
		dst := filepath.Join(dir, filepath.Base(path))
		os.WriteFile(dst, orig, 0o644)
		corruptByte(t, dst, off)
		w := openT(t, dir, Options{})
		// The last segment: cut at the bad record, later records go too.
		if r := w.Recovery(); r.Records != 1 || r.TornBytes != int64(len(orig))-rec2 {
			t.Fatalf("flip at %d: recovery %+v", off, r)
		}
		checkRecords(t, replayAll(t, w, 0), 1, 1)
		w.Close()
	}
}

func TestCorruptSealedSegment(t *testing.T) {
	setup := func(t *testing.T) string {
		dir := t.TempDir()
		w := openT(t, dir, Options{SegmentSize: 200})
		appendN(t, w, 1, 30)
		w.Close()
		return dir
	}
	segs := func(t *testing.T, dir string) []string {
		s := segmentFiles(t, dir)
		if len(s) < 4 {
			t.Fatalf("%d segments, want ≥ 4", len(s))
		}
		return s
	}
	t.Run("a flipped payload byte fails Open", func(t *testing.T) {
		dir := setup(t)
		corruptByte(t, segs(t, dir)[1], headerSize+recordHeaderSize)
		if _, err := Open(dir, Options{Logger: quiet}, nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
	})
	t.Run("a bad header fails Open", func(t *testing.T) {
		dir := setup(t)
		corruptByte(t, segs(t, dir)[0], 3)
		if _, err := Open(dir, Options{Logger: quiet}, nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
	})
	t.Run("a missing middle segment fails Open", func(t *testing.T) {
		dir := setup(t)
		os.Remove(segs(t, dir)[1])
		if _, err := Open(dir, Options{Logger: quiet}, nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
	})
	t.Run("a header naming another base fails Open", func(t *testing.T) {
		dir := setup(t)
		s := segs(t, dir)
		b, _ := os.ReadFile(s[1])
		os.WriteFile(s[1], append(appendHeader(nil, 999), b[headerSize:]...), 0o644)
		if _, err := Open(dir, Options{Logger: quiet}, nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
	})
	t.Run("SkipCorrupt keeps the readable records and their LSNs", func(t *testing.T) {
		dir := setup(t)
		s := segs(t, dir)
		second, _ := parseSegmentName(filepath.Base(s[1]))
		third, _ := parseSegmentName(filepath.Base(s[2]))
		corruptByte(t, s[1], headerSize+recordHeaderSize) // first record of the 2nd segment
		w := openT(t, dir, Options{SkipCorrupt: true})
		if r := w.Recovery(); r.CorruptSkipped != fileSize(t, s[1])-headerSize {
			t.Fatalf("recovery %+v", r)
		}
		got := replayAll(t, w, 0)
		checkRecords(t, got[:second-1], 1, second-1)
		checkRecords(t, got[second-1:], third, 30)
		if r := w.Recovery(); r.SkippedRecords != third-second {
			t.Fatalf("skipped records %d, want %d", r.SkippedRecords, third-second)
		}
		// A Tailer goes on past the gap rather than waiting in it for
		// records that will never come.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tl := w.Tail(1)
		defer tl.Close()
		var lsns []uint64
		for len(lsns) < len(got) {
			lsn, _, err := tl.Next(ctx)
			if err != nil {
				t.Fatalf("tailer after %v: %v", lsns, err)
			}
			lsns = append(lsns, lsn)
		}
		if lsns[second-2] != second-1 || lsns[second-1] != third {
			t.Fatalf("tailer read %v around the gap %d–%d", lsns, second, third-1)
		}
		appendN(t, w, 31, 31)
	})
	t.Run("SkipCorrupt sets a last segment with a bad header aside", func(t *testing.T) {
		dir := setup(t)
		s := segs(t, dir)
		lastPath := s[len(s)-1]
		base, _ := parseSegmentName(filepath.Base(lastPath))
		corruptByte(t, lastPath, 0)
		w := openT(t, dir, Options{SkipCorrupt: true})
		checkRecords(t, replayAll(t, w, 0), 1, base-1)
		if _, err := os.Stat(lastPath + ".corrupt"); err != nil {
			t.Fatal(err)
		}
		if lsn, err := w.Append(payload(int(base))); err != nil || lsn != base {
			t.Fatalf("append: %d, %v; want LSN %d", lsn, err, base)
		}
	})
	t.Run("Replay reports corruption that appeared after Open", func(t *testing.T) {
		dir := setup(t)
		w := openT(t, dir, Options{})
		corruptByte(t, segs(t, dir)[1], headerSize+recordHeaderSize)
		err := w.Replay(0, func(uint64, []byte) error { return nil })
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
	})
}

func TestTruncateBefore(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir, Options{SegmentSize: 300})
	appendN(t, w, 1, 100)
	before := w.Stats()
	if before.Segments < 10 || before.Segments != len(segmentFiles(t, dir)) {
		t.Fatalf("stats %+v, %d files", before, len(segmentFiles(t, dir)))
	}
	n, err := w.TruncateBefore(50)
	if err != nil {
		t.Fatal(err)
	}
	s := w.Stats()
	if n == 0 || s.Segments != before.Segments-n || len(segmentFiles(t, dir)) != s.Segments {
		t.Fatalf("removed %d: stats %+v, %d files", n, s, len(segmentFiles(t, dir)))
	}
	// The first remaining segment holds LSN 49 or 50: nothing ≥ 50 went.
	if s.FirstLSN > 50 || s.Records != 100-s.FirstLSN+1 || s.Backlog != 51 || s.NextLSN != 101 {
		t.Fatalf("stats %+v", s)
	}
	checkRecords(t, replayAll(t, w, 0), s.FirstLSN, 100)
	checkRecords(t, replayAll(t, w, 50), 50, 100)
	if n, _ := w.TruncateBefore(10); n != 0 {
		t.Fatalf("truncating below the first LSN removed %d segments", n)
	}
	// Everything committed: all but the active segment go.
	if _, err := w.TruncateBefore(1 << 62); err != nil {
		t.Fatal(err)
	}
	if s := w.Stats(); s.Segments != 1 || s.Backlog != 0 || len(segmentFiles(t, dir)) != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestLSNContinuityAfterTruncationAndReopen(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir, Options{SegmentSize: 100})
	appendN(t, w, 1, 40)
	if _, err := w.TruncateBefore(41); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w = openT(t, dir, Options{SegmentSize: 100})
	s := w.Stats()
	if s.NextLSN != 41 || s.Segments != 1 {
		t.Fatalf("after reopen: %+v", s)
	}
	appendN(t, w, 41, 45)
	checkRecords(t, replayAll(t, w, 0), s.FirstLSN, 45)
	// Truncate again, including the segment just reopened, then reopen.
	if _, err := w.TruncateBefore(46); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w = openT(t, dir, Options{})
	if s := w.Stats(); s.NextLSN != 46 {
		t.Fatalf("after second reopen: %+v", s)
	}
	appendN(t, w, 46, 46)
}

func TestSegmentRollover(t *testing.T) {
	dir := t.TempDir()
	const segSize = 1000
	w := openT(t, dir, Options{SegmentSize: segSize})
	big := bytes.Repeat([]byte("x"), 3*segSize)
	var lsns []uint64
	for i := range 30 {
		p := []byte("small record")
		if i == 10 {
			p = big
		}
		lsn, err := w.Append(p)
		if err != nil {
			t.Fatal(err)
		}
		lsns = append(lsns, lsn)
	}
	if first, err := w.AppendBatch([][]byte{big, []byte("a"), []byte("b")}); err != nil || first != 31 {
		t.Fatalf("batch: %d, %v", first, err)
	}
	bigs := 0
	for _, path := range segmentFiles(t, dir) {
		if size := fileSize(t, path); size > segSize {
			bigs++
			if size != headerSize+recordHeaderSize+int64(len(big)) {
				t.Errorf("%s: %d bytes: only a lone big record may exceed the segment size", path, size)
			}
		}
	}
	if bigs != 2 {
		t.Errorf("%d oversized segments, want 2", bigs)
	}
	got := replayAll(t, w, 0)
	if len(got) != 33 || !bytes.Equal(got[10].payload, big) || !bytes.Equal(got[32].payload, []byte("b")) {
		t.Fatalf("replay: %d records", len(got))
	}
	if !slices.Equal(lsns, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30}) {
		t.Fatalf("LSNs %v", lsns)
	}
}

func TestLimits(t *testing.T) {
	w := openT(t, t.TempDir(), Options{MaxRecordSize: 10})
	if _, err := w.Append(make([]byte, 11)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append: %v, want ErrTooLarge", err)
	}
	if _, err := w.AppendBatch([][]byte{{1}, make([]byte, 11)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("AppendBatch: %v, want ErrTooLarge", err)
	}
	if lsn, err := w.Append(make([]byte, 10)); err != nil || lsn != 1 {
		t.Fatalf("Append at the limit: %d, %v", lsn, err)
	}
	if first, err := w.AppendBatch(nil); err != nil || first != 0 {
		t.Fatalf("empty batch: %d, %v", first, err)
	}
	if lsn, err := w.Append(nil); err != nil || lsn != 2 {
		t.Fatalf("empty payload: %d, %v", lsn, err)
	}
	got := replayAll(t, w, 2)
	if len(got) != 1 || len(got[0].payload) != 0 {
		t.Fatalf("empty payload replayed as %v", got)
	}
}

// TestOverloaded holds the writer in its commit to fill the queue.
func TestOverloaded(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	first := true
	w, err := open(t.TempDir(), Options{MaxPendingBytes: 16, Logger: quiet}, nil, func() {
		if first {
			first = false
			entered <- struct{}{}
			<-release
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	results := make(chan error, 3)
	go func() { _, err := w.Append(make([]byte, 10)); results <- err }()
	<-entered // the writer holds record 1
	go func() { _, err := w.Append(make([]byte, 10)); results <- err }()
	for w.queuedBytes() == 0 {
		runtime.Gosched()
	}
	if _, err := w.Append(make([]byte, 10)); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("third append: %v, want ErrOverloaded", err)
	}
	close(release)
	for range 2 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if s := w.Stats(); s.NextLSN != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func (w *WAL) queuedBytes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queued
}

// TestBrokenAfterWriteError makes the write fail: the group and every later
// append get ErrBroken, and reopening recovers.
func TestBrokenAfterWriteError(t *testing.T) {
	dir := t.TempDir()
	var w *WAL
	fail := make(chan bool, 10)
	w, err := open(dir, Options{Logger: quiet}, nil, func() {
		if <-fail {
			w.f.Close() // the next write fails with "file already closed"
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	fail <- false
	appendN(t, w, 1, 1)
	fail <- true
	if _, err := w.Append([]byte("x")); !errors.Is(err, ErrBroken) {
		t.Fatalf("append: %v, want ErrBroken", err)
	}
	if _, err := w.Append([]byte("y")); !errors.Is(err, ErrBroken) {
		t.Fatalf("later append: %v, want ErrBroken", err)
	}
	if !errors.Is(w.Err(), ErrBroken) {
		t.Fatalf("Err() = %v", w.Err())
	}
	// The log repairs itself: the failed records were never acknowledged,
	// so their LSNs go to the next appends.
	waitRepaired(t, w)
	fail <- false
	appendN(t, w, 2, 2)
	w.Close()
	w = openT(t, dir, Options{})
	checkRecords(t, replayAll(t, w, 0), 1, 2)
	appendN(t, w, 3, 3)
}

func waitRepaired(t *testing.T, w *WAL) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for w.Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not repaired: %v", w.Err())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCloseAndLock(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir, Options{})
	if _, err := Open(dir, Options{Logger: quiet}, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	appendN(t, w, 1, 1)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := w.Append(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := w.Replay(0, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Replay after Close: %v", err)
	}
	if !errors.Is(w.Err(), ErrClosed) {
		t.Fatalf("Err after Close: %v", w.Err())
	}
	w = openT(t, dir, Options{}) // the lock went with Close
	checkRecords(t, replayAll(t, w, 0), 1, 1)
}

func TestCloseDrainsQueuedAppends(t *testing.T) {
	w := openT(t, t.TempDir(), Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			if _, err := w.Append(payload(i)); err != nil && !errors.Is(err, ErrClosed) {
				errs <- err
			}
		})
	}
	w.Close()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestReplayWhileAppending(t *testing.T) {
	w := openT(t, t.TempDir(), Options{SegmentSize: 4096})
	appendN(t, w, 1, 200)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 201; i <= 600; i++ {
			if _, err := w.Append(payload(i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 5 {
		got := replayAll(t, w, 0)
		checkRecords(t, got, 1, uint64(len(got)))
		if len(got) < 200 {
			t.Fatalf("replay saw %d records, want ≥ 200", len(got))
		}
	}
	<-done
	checkRecords(t, replayAll(t, w, 0), 1, 600)
}

func TestReplayToleratesConcurrentTruncation(t *testing.T) {
	w := openT(t, t.TempDir(), Options{SegmentSize: 200})
	appendN(t, w, 1, 50)
	var seen []uint64
	err := w.Replay(0, func(lsn uint64, _ []byte) error {
		seen = append(seen, lsn)
		if lsn == 3 {
			if _, err := w.TruncateBefore(40); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Records before 40 may be skipped; none at or after 40 may be.
	for lsn := uint64(40); lsn <= 50; lsn++ {
		if !slices.Contains(seen, lsn) {
			t.Fatalf("LSN %d not replayed: %v", lsn, seen)
		}
	}
	if !slices.IsSorted(seen) {
		t.Fatalf("out of order: %v", seen)
	}
}

func TestFormat(t *testing.T) {
	if crc := appendRecord(nil, nil); bytes.Equal(crc, make([]byte, recordHeaderSize)) {
		t.Fatal("an empty record encodes as zeros: zero-filled tails would read as records")
	}
	if name := segmentName(1842); name != "00000000000000001842.seg" {
		t.Fatalf("segment name %q", name)
	}
	for _, name := range []string{"1842.seg", "0000000000000000184x.seg", "00000000000000001842.seg.corrupt", "00000000000000001842.tmp"} {
		if _, ok := parseSegmentName(name); ok {
			t.Errorf("%q parsed as a segment name", name)
		}
	}
	h := appendHeader(nil, 77)
	if base, err := checkHeader(h); err != nil || base != 77 || len(h) != headerSize {
		t.Fatalf("header round trip: %d, %v, %d bytes", base, err, len(h))
	}
}

// TestPreallocatedSegments fills segments started in prepared spares: their
// files are a whole segment long, their zero tails read as a clean end on
// reopen, sealed or active, and appends after a reopen continue over the
// zeros.
func TestPreallocatedSegments(t *testing.T) {
	dir := t.TempDir()
	const segSize = 4 << 10
	stale := filepath.Join(dir, "3"+spareExt)
	if err := os.WriteFile(stale, []byte("half prepared"), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	w, err := Open(dir, Options{SegmentSize: segSize, Logger: quiet}, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { w.Close() }()
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a spare left by a crash is not removed on open: %v", err)
	}
	// Append one record at a time; whenever a spare has been asked for,
	// wait until it is ready, so that every segment after the first starts
	// in one.
	lsn := 0
	for len(segmentFiles(t, dir)) < 4 {
		lsn++
		appendN(t, w, lsn, lsn)
		if w.pre.asked {
			waitFor(t, func() bool { return w.pre.prepared.Load() >= int64(len(segmentFiles(t, dir))) })
		}
	}
	segs := segmentFiles(t, dir)
	// Sealed segments lose their unused zeros; the active one keeps them.
	w.segMu.Lock()
	sealed := slices.Clone(w.segs[:len(w.segs)-1])
	w.segMu.Unlock()
	for i, seg := range sealed {
		if size := fileSize(t, segs[i]); size != seg.size {
			t.Errorf("sealed %s: %d bytes, want its %d bytes of records", filepath.Base(segs[i]), size, seg.size)
		}
	}
	if size := fileSize(t, segs[len(segs)-1]); size != segSize {
		t.Errorf("active %s: %d bytes, want a preallocated %d", filepath.Base(segs[len(segs)-1]), size, segSize)
	}
	if got := metricValue(t, reg, "fleetscope_wal_preallocated_segments_total"); got != float64(len(segs)-1) {
		t.Errorf("preallocated segments %v, want %d", got, len(segs)-1)
	}
	w.Close()

	// A crash between sealing a segment and cutting its zeros leaves them:
	// they read as the end of its data.
	writeAt(t, segs[1], fileSize(t, segs[1]), make([]byte, 100))
	w = openT(t, dir, Options{SegmentSize: segSize})
	if r := w.Recovery(); r.TornBytes != 0 || r.Records != uint64(lsn) {
		t.Fatalf("recovery %+v: zero tails are not torn writes; want %d records", r, lsn)
	}
	appendN(t, w, lsn+1, lsn+3)
	active := segs[len(segs)-1]
	if size := fileSize(t, active); size != segSize {
		t.Fatalf("active segment grew to %d bytes: appends after reopen must write over its zeros", size)
	}
	w.Close()
	w = openT(t, dir, Options{SegmentSize: segSize})
	checkRecords(t, replayAll(t, w, 0), 1, uint64(lsn+3))

	// Garbage after the last record of a preallocated segment is a torn
	// write: it and the zeros after it go, the records stay.
	end := activeEnd(w)
	w.Close()
	writeAt(t, active, end, []byte{0xde, 0xad})
	w = openT(t, dir, Options{SegmentSize: segSize})
	if r := w.Recovery(); r.TornBytes != segSize-end {
		t.Fatalf("torn bytes %d, want %d (garbage and the zeros after it)", r.TornBytes, segSize-end)
	}
	checkRecords(t, replayAll(t, w, 0), 1, uint64(lsn+3))
	appendN(t, w, lsn+4, lsn+4)
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met within 10 s")
}
