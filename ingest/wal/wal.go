// Package wal is a segmented write-ahead log of opaque records, made durable
// with group commit.
//
// Contract:
//
//   - Append and AppendBatch return only once the records are on stable
//     storage (written and fdatasync'ed), with their LSNs; an answered
//     request may then be acknowledged. They are safe for concurrent use. A
//     returned error means the records may or may not be durable: the caller
//     answers with a retryable error and relies on its own deduplication.
//   - LSNs (log sequence numbers) are dense: 1, 2, 3, … in append order, one
//     per record, never reused for an acknowledged record, across restarts and
//     truncation. LSN 0 means "none". A segment file is named after its first
//     record's LSN, and a record's LSN is that base plus its index in the
//     segment, so the LSN is not stored per record.
//   - Group commit: one writer goroutine takes every append queued while the
//     previous fsync ran, writes them with one write(2) into the active
//     segment and one fdatasync(2), then releases all their callers. Under
//     load one fsync covers many requests; an idle log commits one record
//     alone at once, without waiting for company.
//   - Open recovers: it verifies every record's CRC-32C, and cuts a torn or
//     corrupt tail off the last segment (a crash mid-write; those records were
//     never acknowledged), reporting the dropped bytes in Recovery and a
//     metric. Zero bytes after a segment's last record are the unused end of
//     a preallocated segment, not a tail to cut (see prealloc.go). A torn
//     tail never makes Open fail. Corruption inside an older, sealed segment
//     does, unless Options.SkipCorrupt is set.
//   - Replay visits durable records in LSN order from a given LSN. The
//     payload passed to its callback is valid only during the callback.
//   - TruncateBefore(lsn) deletes whole segments whose records are all below
//     lsn, once they are committed downstream; the active segment stays.
//   - A write or fsync error breaks the log: after a failed fsync the kernel
//     may have dropped the dirty pages, so retrying the same write cannot be
//     trusted. Appends fail with ErrBroken (Err reports it, for /readyz) until
//     the log has repaired itself: after a backoff (repairBackoff, doubling to
//     maxRepairBackoff) the writer reopens the active segment, cuts it back
//     to its durable records and syncs that — what the failed writes left is
//     gone, and none of it was acknowledged — and appends go on at the next
//     LSN. A fault that lasts (a full disk, no file descriptors left) fails
//     each attempt and is retried, counted in metrics, until it clears;
//     nothing needs a restart.
//   - One process per directory: Open takes an exclusive lock on dir/LOCK.
package wal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Errors.
var (
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("wal: closed")
	// ErrBroken: an earlier write or fsync failed; reopen the log.
	ErrBroken = errors.New("wal: broken by an earlier write error")
	// ErrOverloaded: more than Options.MaxPendingBytes wait to be written,
	// the disk does not keep up. Shed load (HTTP 429) and retry later.
	ErrOverloaded = errors.New("wal: overloaded")
	// ErrTooLarge: a payload is over Options.MaxRecordSize.
	ErrTooLarge = errors.New("wal: record too large")
	// ErrCorrupt: a sealed segment fails verification (Open without
	// SkipCorrupt, or Replay).
	ErrCorrupt = errors.New("wal: corrupt segment")
	// ErrLocked: another process has the directory open.
	ErrLocked = errors.New("wal: directory locked")
)

// Options configure a WAL. The zero value is valid: each field documents its
// default.
type Options struct {
	// SegmentSize is the size at which the active segment is sealed and a
	// new one started. Default 64 MiB: ~3 s of ingest at 1 M readings/s
	// (~20 B per reading), so TruncateBefore frees disk within seconds of
	// ClickHouse catching up, while the two fsyncs of starting a segment
	// (file and directory) stay rare next to group commits. A record larger
	// than this gets a segment of its own.
	SegmentSize int64
	// MaxRecordSize bounds one payload (ErrTooLarge). Default 8 MiB: 40× an
	// ingest record of 10,000 readings, and the most a Replay buffers.
	MaxRecordSize int
	// MaxPendingBytes bounds the payload bytes queued behind the write in
	// progress; beyond it appends fail fast with ErrOverloaded instead of
	// queueing without bound. Default 16 MiB: ~0.8 s of ingest at 1 M
	// readings/s, far more than one fsync on a healthy disk.
	MaxPendingBytes int
	// SkipCorrupt makes Open keep going past corruption in sealed segments,
	// logging and counting the bytes it cannot read; their records are lost
	// (Replay skips them). Off by default: silent data loss needs an
	// operator's decision.
	SkipCorrupt bool
	// Logger receives recovery warnings. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.SegmentSize <= 0 {
		o.SegmentSize = 64 << 20
	}
	if o.MaxRecordSize <= 0 {
		o.MaxRecordSize = 8 << 20
	}
	if o.MaxRecordSize > maxRecordLen {
		o.MaxRecordSize = maxRecordLen
	}
	if o.MaxPendingBytes <= 0 {
		o.MaxPendingBytes = 16 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Recovery describes what Open found.
type Recovery struct {
	Segments       int    // segment files found
	Records        uint64 // valid records found
	TornBytes      int64  // bytes cut off the end of the last segment
	CorruptSkipped int64  // bytes of sealed segments skipped (SkipCorrupt)
	// SkippedRecords are the LSNs lost to skipped corruption (SkipCorrupt):
	// the gaps between the records that remain. Records in the corrupt end
	// of the newest sealed segment cannot be counted (no later segment
	// says where they ended) and are only in CorruptSkipped.
	SkippedRecords uint64
}

// Stats is a snapshot of the log's extent.
type Stats struct {
	// FirstLSN is the oldest record on disk; with no record on disk it is
	// NextLSN.
	FirstLSN uint64
	// NextLSN is the LSN the next record will get; the last durable record
	// is NextLSN-1 (0: none yet).
	NextLSN uint64
	// Records and Bytes are what is on disk, not yet truncated: whole
	// segments go at once, so they include committed records that share a
	// segment with uncommitted ones. Bytes include framing and headers.
	Records  uint64
	Bytes    int64
	Segments int
	// Backlog is the number of records at or after the last TruncateBefore
	// point: not yet committed downstream. Use it, or Bytes, for
	// backpressure.
	Backlog uint64
}

// segment is one segment file. base and the durable extent (records, size)
// change only under WAL.segMu.
type segment struct {
	base    uint64
	records uint64
	size    int64 // bytes that hold valid, durable records, header included
}

func (s *segment) end() uint64 { return s.base + s.records } // next LSN after s

// waiter is one queued Append/AppendBatch.
type waiter struct {
	one      [1][]byte
	payloads [][]byte
	first    uint64
	err      error
	done     chan struct{}
}

var waiterPool = sync.Pool{New: func() any { return &waiter{done: make(chan struct{}, 1)} }}

// WAL is an open write-ahead log. See the package documentation.
type WAL struct {
	dir  string
	opts Options
	m    *metrics
	lock *os.File
	rec  Recovery

	// Queue of appends, guarded by mu.
	mu      sync.Mutex
	cond    sync.Cond // signalled when the queue becomes non-empty or on close
	queue   []*waiter
	spare   []*waiter
	queued  int // payload bytes in queue
	closed  bool
	broken  error // write error until repaired, read by appenders
	writerQ chan struct{}
	// Repair of a broken log, guarded by mu: repairDue is set by
	// repairTimer when the next attempt is due; backoff is the wait before
	// the attempt after.
	repairDue   bool
	repairTimer *time.Timer
	backoff     time.Duration

	// Segment list and durable extent, guarded by segMu. The writer appends
	// segments and grows the last one; TruncateBefore removes from the front.
	segMu      sync.Mutex
	segs       []segment
	next       uint64 // next LSN to assign = end of the last segment
	truncPoint uint64 // highest TruncateBefore argument
	// durable is closed (and replaced) whenever records become durable or
	// the log closes, waking Tailers.
	durable chan struct{}

	// Writer goroutine state.
	f   *os.File // active segment
	off int64    // where the next record goes in f
	buf []byte
	pre *preallocator

	hookCommit func() // tests: called by the writer before each group commit
}

// Open opens or creates the log in dir and recovers it (see the package
// documentation). reg receives the metrics; nil registers none.
func Open(dir string, opts Options, reg prometheus.Registerer) (*WAL, error) {
	return open(dir, opts, reg, nil)
}

func open(dir string, opts Options, reg prometheus.Registerer, hookCommit func()) (*WAL, error) {
	opts.setDefaults()
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("wal: %w", err)
		}
		// Make the new directory's own entry durable too.
		if err := syncDir(filepath.Dir(filepath.Clean(dir))); err != nil {
			return nil, err
		}
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: lock: %w", err)
	}
	w := &WAL{dir: dir, opts: opts, m: newMetrics(reg), lock: lock, writerQ: make(chan struct{}), durable: make(chan struct{}), hookCommit: hookCommit}
	w.cond.L = &w.mu
	if w.pre, err = startPreallocator(dir, opts.SegmentSize, opts.Logger, w.m.preallocFailures.Inc); err != nil {
		lock.Close()
		return nil, err
	}
	if err := w.recover(); err != nil {
		w.pre.stop()
		if w.f != nil {
			w.f.Close()
		}
		lock.Close()
		return nil, err
	}
	w.updateGauges()
	go w.run()
	return w, nil
}

// recover scans the segments, repairs the tail and opens the active segment.
func (w *WAL) recover() error {
	bases, err := listSegments(w.dir)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	w.rec.Segments = len(bases)
	for i, base := range bases {
		if base == 0 {
			return fmt.Errorf("%w: %s: LSNs start at 1", ErrCorrupt, segmentName(0))
		}
		last := i == len(bases)-1
		seg, err := w.scanSegment(base, last)
		if err != nil {
			return err
		}
		if n := len(w.segs); n > 0 {
			prev := &w.segs[n-1]
			if seg.base < prev.end() || (seg.base > prev.end() && !w.opts.SkipCorrupt) {
				return fmt.Errorf("%w: %s follows a segment ending at LSN %d", ErrCorrupt, segmentName(base), prev.end())
			}
			if gap := seg.base - prev.end(); gap > 0 {
				w.opts.Logger.Error("wal: records lost to a skipped corrupt segment", "first_lsn", prev.end(), "last_lsn", seg.base-1, "records", gap)
				w.rec.SkippedRecords += gap
				w.m.corruptSkippedRecords.Add(float64(gap))
			}
		}
		w.segs = append(w.segs, seg)
		w.rec.Records += seg.records
	}
	if len(w.segs) == 0 {
		if err := w.createSegment(1); err != nil {
			return err
		}
	} else {
		last := w.segs[len(w.segs)-1]
		f, err := os.OpenFile(segmentPath(w.dir, last.base), os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("wal: %w", err)
		}
		w.f, w.off = f, last.size
	}
	w.next = w.segs[len(w.segs)-1].end()
	w.truncPoint = w.segs[0].base
	return nil
}

// scanSegment verifies one segment. For the last one a torn or corrupt tail
// is cut off, and a header torn while the segment was being created is
// rewritten.
func (w *WAL) scanSegment(base uint64, last bool) (segment, error) {
	path := segmentPath(w.dir, base)
	name := segmentName(base)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return segment{}, fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return segment{}, fmt.Errorf("wal: %w", err)
	}
	size := fi.Size()
	seg := segment{base: base, size: headerSize}
	var h [headerSize]byte
	_, herr := io.ReadFull(f, h[:])
	hbase, cerr := checkHeader(h[:])
	switch {
	case herr == nil && cerr == nil && hbase != base:
		return segment{}, fmt.Errorf("%w: %s: header says base LSN %d", ErrCorrupt, name, hbase)
	case herr == nil && cerr == nil:
	case last && size <= headerSize:
		// Crashed while creating the segment: no record was ever written
		// to it, so rewrite the header.
		w.opts.Logger.Warn("wal: rewriting torn segment header", "segment", name, "bytes", size)
		if err := writeHeader(f, base); err != nil {
			return segment{}, err
		}
		w.rec.TornBytes += size
		w.m.tornBytesDropped.Add(float64(size))
		return seg, nil
	case w.opts.SkipCorrupt:
		if cerr == nil {
			cerr = herr
		}
		w.opts.Logger.Error("wal: skipping segment with a bad header", "segment", name, "bytes", size, "err", cerr)
		w.rec.CorruptSkipped += size
		w.m.corruptSkipped.Add(float64(size))
		if last {
			// Records cannot be appended after bytes that do not parse:
			// keep the file for forensics under a name Open ignores, and
			// start the segment afresh.
			if err := os.Rename(path, path+".corrupt"); err != nil {
				return segment{}, fmt.Errorf("wal: %w", err)
			}
			nf, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
			if err != nil {
				return segment{}, fmt.Errorf("wal: %w", err)
			}
			defer nf.Close()
			if err := writeHeader(nf, base); err != nil {
				return segment{}, err
			}
			return seg, syncDir(w.dir)
		}
		seg.size = 0 // nothing readable; records stays 0
		return seg, nil
	default:
		if herr != nil {
			cerr = herr
		}
		return segment{}, fmt.Errorf("%w: %s: %w", ErrCorrupt, name, cerr)
	}
	sc := newScanner(readerFor(f), size-headerSize)
	for {
		if _, ok := sc.next(); !ok {
			break
		}
		seg.records++
	}
	seg.size = headerSize + sc.off
	if sc.err == nil {
		return seg, nil
	}
	// The unused end of a preallocated segment is zeros, not a torn write.
	switch zero, err := zeroFrom(f, seg.size, size); {
	case err != nil:
		return segment{}, fmt.Errorf("wal: %w", err)
	case zero:
		return seg, nil
	}
	dropped := size - seg.size
	switch {
	case last:
		// The tail of the last write, which no caller saw succeed.
		w.opts.Logger.Warn("wal: truncating torn tail", "segment", name, "offset", seg.size, "dropped_bytes", dropped, "reason", sc.err)
		if err := f.Truncate(seg.size); err != nil {
			return segment{}, fmt.Errorf("wal: truncate torn tail: %w", err)
		}
		if err := fdatasync(f); err != nil {
			return segment{}, fmt.Errorf("wal: %w", err)
		}
		w.rec.TornBytes += dropped
		w.m.tornBytesDropped.Add(float64(dropped))
		return seg, nil
	case w.opts.SkipCorrupt:
		w.opts.Logger.Error("wal: skipping corrupt end of sealed segment", "segment", name, "offset", seg.size, "skipped_bytes", dropped, "reason", sc.err)
		w.rec.CorruptSkipped += dropped
		w.m.corruptSkipped.Add(float64(dropped))
		return seg, nil
	}
	return segment{}, fmt.Errorf("%w: %s at offset %d (record %d): %w", ErrCorrupt, name, seg.size, base+seg.records, sc.err)
}

// zeroFrom reports whether bytes [from, to) of f are all zero.
func zeroFrom(f *os.File, from, to int64) (bool, error) {
	buf := make([]byte, min(zeroChunk, max(to-from, 0)))
	for off := from; off < to; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), to-off)], off)
		if n == 0 && err != nil {
			return false, err
		}
		for _, b := range buf[:n] {
			if b != 0 {
				return false, nil
			}
		}
		off += int64(n)
	}
	return true, nil
}

// writeHeader makes f an empty segment with a durable header.
func writeHeader(f *os.File, base uint64) error {
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return putHeader(f, base)
}

// putHeader writes a segment header at the start of f and syncs it.
func putHeader(f *os.File, base uint64) error {
	if _, err := f.WriteAt(appendHeader(nil, base), 0); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	if err := fdatasync(f); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}

// createSegment starts a new active segment whose first record is base, in
// the prepared spare if one is ready. The header and the directory entry are
// durable before any record is written.
func (w *WAL) createSegment(base uint64) error {
	path := segmentPath(w.dir, base)
	f := w.pre.take()
	if f != nil {
		if err := installSpare(f, path, base); err != nil {
			w.opts.Logger.Warn("wal: could not start a segment in its prepared file; starting a growing one", "segment", segmentName(base), "err", err)
			f.Close()
			os.Remove(f.Name())
			f = nil
		} else {
			w.m.preallocatedSegs.Inc()
		}
	}
	if f == nil {
		var err error
		if f, err = os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); err != nil {
			return fmt.Errorf("wal: %w", err)
		}
		if err := putHeader(f, base); err != nil {
			f.Close()
			return err
		}
	}
	if err := syncDir(w.dir); err != nil {
		f.Close()
		return err
	}
	if w.f != nil {
		// The sealed segment's unused zeros go: what remains is a segment
		// as builds without preallocation write and read it. Not synced —
		// if the cut is lost, the zeros read as the end of the data anyway.
		if err := w.f.Truncate(w.off); err != nil {
			w.opts.Logger.Warn("wal: could not cut the unused end of a sealed segment", "err", err)
		}
		if err := w.f.Close(); err != nil {
			f.Close()
			return fmt.Errorf("wal: %w", err)
		}
	}
	w.f, w.off = f, headerSize
	w.segMu.Lock()
	w.segs = append(w.segs, segment{base: base, size: headerSize})
	w.segMu.Unlock()
	return nil
}

// installSpare makes a prepared spare the segment at path: its header is
// synced before the rename, so a segment file never lacks one.
func installSpare(f *os.File, path string, base uint64) error {
	if err := putHeader(f, base); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("wal: sync directory: %w", err)
	}
	return nil
}

// Recovery returns what Open found and repaired.
func (w *WAL) Recovery() Recovery { return w.rec }

// Dir returns the log's directory.
func (w *WAL) Dir() string { return w.dir }

// Append makes payload durable and returns its LSN. payload is not copied:
// it must not be modified until Append returns. See the package
// documentation for errors.
func (w *WAL) Append(payload []byte) (uint64, error) {
	if len(payload) > w.opts.MaxRecordSize {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(payload), w.opts.MaxRecordSize)
	}
	wt := waiterPool.Get().(*waiter)
	wt.one[0] = payload
	wt.payloads = wt.one[:]
	return w.submit(wt, len(payload))
}

// AppendBatch makes all payloads durable together and returns the LSN of
// the first; they get consecutive LSNs first, first+1, … An empty batch
// returns 0, nil. payloads are not copied: see Append.
func (w *WAL) AppendBatch(payloads [][]byte) (first uint64, err error) {
	if len(payloads) == 0 {
		return 0, nil
	}
	size := 0
	for _, p := range payloads {
		size += len(p)
		if len(p) > w.opts.MaxRecordSize {
			return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(p), w.opts.MaxRecordSize)
		}
	}
	wt := waiterPool.Get().(*waiter)
	wt.payloads = payloads
	return w.submit(wt, size)
}

func (w *WAL) submit(wt *waiter, size int) (uint64, error) {
	defer func() {
		wt.one[0] = nil
		wt.payloads, wt.err, wt.first = nil, nil, 0
		waiterPool.Put(wt)
	}()
	w.mu.Lock()
	switch {
	case w.closed:
		w.mu.Unlock()
		return 0, ErrClosed
	case w.broken != nil:
		err := w.broken
		w.mu.Unlock()
		return 0, err
	case len(w.queue) > 0 && w.queued+size > w.opts.MaxPendingBytes:
		// A lone record over the limit still goes: it cannot wait for a
		// smaller queue.
		w.mu.Unlock()
		return 0, ErrOverloaded
	}
	w.queue = append(w.queue, wt)
	w.queued += size
	if len(w.queue) == 1 {
		w.cond.Signal()
	}
	w.mu.Unlock()
	<-wt.done
	if wt.err != nil {
		return 0, wt.err
	}
	return wt.first, nil
}

// Repair backoff: the first attempt 100 ms after the failure (a transient
// error is gone by then), doubling to 5 s while the fault lasts (a full
// disk is not freed in milliseconds, and each attempt costs an open, a
// truncate and an fsync).
const (
	repairBackoff    = 100 * time.Millisecond
	maxRepairBackoff = 5 * time.Second
)

// run is the writer goroutine: it commits whatever is queued, as one group,
// until the log is closed and drained, and repairs the log when a write
// broke it.
func (w *WAL) run() {
	defer close(w.writerQ)
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.closed && !w.repairDue {
			w.cond.Wait()
		}
		if w.repairDue && !w.closed {
			w.repairDue = false
			w.mu.Unlock()
			w.tryRepair()
			continue
		}
		if len(w.queue) == 0 {
			w.mu.Unlock()
			return
		}
		group := w.queue
		w.queue, w.spare = w.spare, nil
		w.queued = 0
		broken := w.broken
		w.mu.Unlock()

		if w.hookCommit != nil {
			w.hookCommit()
		}
		err := broken
		if err == nil {
			if err = w.commit(group); err != nil {
				err = fmt.Errorf("%w: %w", ErrBroken, err)
				w.opts.Logger.Error("wal: write failed; appends are refused until the log has repaired itself", "err", err)
				w.m.writeErrors.Inc()
				w.m.broken.Set(1)
				w.mu.Lock()
				w.broken = err
				w.backoff = repairBackoff
				w.scheduleRepairLocked()
				w.mu.Unlock()
			}
		}
		for _, wt := range group {
			wt.err = err
			wt.done <- struct{}{}
		}
		clear(group)
		w.mu.Lock()
		w.spare = group[:0]
		w.mu.Unlock()
	}
}

// scheduleRepairLocked arms the timer of the next repair attempt, backoff
// (with jitter) from now. Requires mu.
func (w *WAL) scheduleRepairLocked() {
	d := w.backoff/2 + rand.N(w.backoff/2+1)
	if w.repairTimer != nil {
		w.repairTimer.Stop()
	}
	w.repairTimer = time.AfterFunc(d, func() {
		w.mu.Lock()
		w.repairDue = true
		w.cond.Broadcast()
		w.mu.Unlock()
	})
}

// tryRepair attempts to repair a broken log (writer goroutine only) and
// either clears the error or schedules the next attempt.
func (w *WAL) tryRepair() {
	err := w.repair()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.broken == nil {
		return
	}
	if err != nil {
		w.m.repairs.WithLabelValues("error").Inc()
		w.backoff = min(2*w.backoff, maxRepairBackoff)
		w.opts.Logger.Warn("wal: repair failed; retrying", "err", err, "next_in", w.backoff.String())
		w.scheduleRepairLocked()
		return
	}
	w.m.repairs.WithLabelValues("ok").Inc()
	w.m.broken.Set(0)
	w.opts.Logger.Info("wal: repaired; appends resume", "was", w.broken)
	w.broken = nil
}

// repair makes the active segment hold exactly its durable records again:
// it drops the file a failed write may have left in a bad state, reopens
// the segment, cuts off whatever the failed writes put after the durable
// records and syncs that. A segment file beyond the active one can only be
// one whose creation failed half-way, with nothing durable in it: it goes.
func (w *WAL) repair() error {
	w.segMu.Lock()
	last := w.segs[len(w.segs)-1]
	w.segMu.Unlock()
	if w.f != nil {
		w.f.Close() // its error is the fault being repaired
		w.f = nil
	}
	bases, err := listSegments(w.dir)
	if err != nil {
		return fmt.Errorf("wal: repair: %w", err)
	}
	for _, b := range bases {
		if b > last.base {
			if err := os.Remove(segmentPath(w.dir, b)); err != nil {
				return fmt.Errorf("wal: repair: %w", err)
			}
		}
	}
	f, err := os.OpenFile(segmentPath(w.dir, last.base), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("wal: repair: %w", err)
	}
	if err := f.Truncate(last.size); err != nil {
		f.Close()
		return fmt.Errorf("wal: repair: %w", err)
	}
	if err := fdatasync(f); err != nil {
		f.Close()
		return fmt.Errorf("wal: repair: %w", err)
	}
	if err := syncDir(w.dir); err != nil {
		f.Close()
		return err
	}
	w.f, w.off = f, last.size
	return nil
}

// commit writes a group of appends and makes it durable, starting new
// segments as the active one fills. It assigns the LSNs.
func (w *WAL) commit(group []*waiter) error {
	w.segMu.Lock()
	lsn := w.next
	active := w.segs[len(w.segs)-1]
	w.segMu.Unlock()

	buf := w.buf[:0]
	pending := uint64(0) // records in buf
	for _, wt := range group {
		wt.first = lsn
		for _, p := range wt.payloads {
			size := int64(recordHeaderSize + len(p))
			if active.size+int64(len(buf))+size > w.opts.SegmentSize && (active.records > 0 || pending > 0) {
				if err := w.flush(buf, pending); err != nil {
					return err
				}
				buf, pending = buf[:0], 0
				if err := w.createSegment(lsn); err != nil {
					return err
				}
				active = segment{base: lsn, size: headerSize}
			}
			buf = appendRecord(buf, p)
			pending++
			lsn++
		}
	}
	err := w.flush(buf, pending)
	// Keep the buffer for the next group unless one huge group grew it past
	// 4 MiB (~200 ingest records, far above a normal group): memory stays
	// flat after a burst.
	if cap(buf) <= 4<<20 {
		w.buf = buf[:0]
	} else {
		w.buf = nil
	}
	return err
}

// flush writes buf, holding n records, to the active segment and syncs it.
func (w *WAL) flush(buf []byte, n uint64) error {
	if n == 0 {
		return nil
	}
	if _, err := w.f.WriteAt(buf, w.off); err != nil {
		return err
	}
	w.off += int64(len(buf))
	start := time.Now()
	if err := fdatasync(w.f); err != nil {
		return err
	}
	w.m.fsyncSeconds.Observe(time.Since(start).Seconds())
	w.m.groupRecords.Observe(float64(n))
	w.m.writtenBytes.Add(float64(len(buf)))
	w.m.appendedRecords.Add(float64(n))
	w.segMu.Lock()
	last := &w.segs[len(w.segs)-1]
	last.records += n
	last.size += int64(len(buf))
	w.next = last.end()
	w.updateGaugesLocked()
	w.wakeTailersLocked()
	w.segMu.Unlock()
	if w.off > w.opts.SegmentSize/2 {
		w.pre.ask()
	}
	return nil
}

// wakeTailersLocked wakes every Tailer waiting for durable records.
// Requires segMu.
func (w *WAL) wakeTailersLocked() {
	close(w.durable)
	w.durable = make(chan struct{})
}

// Err returns nil while the log accepts appends, else why not (ErrClosed or
// the ErrBroken write error, until the log has repaired itself).
func (w *WAL) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	return w.broken
}

// Close writes what is queued, stops the writer and closes the files. Later
// appends fail with ErrClosed. Close is idempotent.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	if w.repairTimer != nil {
		w.repairTimer.Stop()
	}
	w.cond.Broadcast()
	w.mu.Unlock()
	<-w.writerQ
	w.pre.stop()
	w.segMu.Lock()
	w.wakeTailersLocked()
	w.segMu.Unlock()
	var err error
	if w.f != nil {
		err = w.f.Close()
	}
	if lerr := w.lock.Close(); err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("wal: close: %w", err)
	}
	return nil
}

// Stats returns the log's current extent.
func (w *WAL) Stats() Stats {
	w.segMu.Lock()
	defer w.segMu.Unlock()
	return w.statsLocked()
}

func (w *WAL) statsLocked() Stats {
	s := Stats{FirstLSN: w.segs[0].base, NextLSN: w.next, Segments: len(w.segs)}
	for i := range w.segs {
		s.Records += w.segs[i].records
		s.Bytes += w.segs[i].size
	}
	if s.Records == 0 {
		s.FirstLSN = w.next
	} else {
		// The first segment may hold no readable record (SkipCorrupt).
		for i := range w.segs {
			if w.segs[i].records > 0 {
				s.FirstLSN = w.segs[i].base
				break
			}
		}
	}
	from := max(w.truncPoint, s.FirstLSN)
	if from < w.next {
		s.Backlog = w.next - from
	}
	return s
}

func (w *WAL) updateGauges() {
	w.segMu.Lock()
	w.updateGaugesLocked()
	w.segMu.Unlock()
}

func (w *WAL) updateGaugesLocked() {
	s := w.statsLocked()
	w.m.segments.Set(float64(s.Segments))
	w.m.backlogBytes.Set(float64(s.Bytes))
	w.m.backlogRecords.Set(float64(s.Backlog))
}
