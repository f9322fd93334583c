package wal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Tailer follows the log: it returns durable records in LSN order as they
// become durable, keeping its place in the segment file. A consumer that
// reads everything the log receives (the ingest flusher) uses it where
// Replay would rescan a segment from its start on every call.
//
// A Tailer is not safe for concurrent use. The payload Next returns is valid
// until the next call.
type Tailer struct {
	w    *WAL
	next uint64 // LSN of the next record to return
	f    *os.File
	base uint64 // base LSN of the open segment
	off  int64  // file offset of record `next` in the open segment
	sc   *scanner
	end  uint64 // records before this LSN are within the scanner's section
	buf  []byte
	// br is reused for every section: a follower that catches up thousands
	// of times a second must not allocate a read buffer each time.
	br *bufio.Reader
}

// Tail returns a Tailer positioned at from, or at the oldest record on disk
// if from is older.
func (w *WAL) Tail(from uint64) *Tailer { return &Tailer{w: w, next: from} }

// Next returns the next durable record, waiting for one until ctx is done.
// Records truncated before the Tailer reached them are skipped.
func (t *Tailer) Next(ctx context.Context) (uint64, []byte, error) {
	for {
		if t.sc != nil && t.next < t.end {
			p, ok := t.sc.next()
			if !ok {
				err := t.sc.err
				if err == nil {
					err = errTorn
				}
				return 0, nil, fmt.Errorf("%w: %s: record %d: %w", ErrCorrupt, segmentName(t.base), t.next, err)
			}
			t.buf = t.sc.buf
			lsn := t.next
			t.next++
			t.off += recordHeaderSize + int64(len(p))
			return lsn, p, nil
		}
		seg, found, wait, err := t.locate()
		if err != nil {
			return 0, nil, err
		}
		if !found {
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return 0, nil, ctx.Err()
			}
		}
		if err := t.open(seg); err != nil {
			return 0, nil, err
		}
	}
}

// Position is the LSN of the record Next returns next.
func (t *Tailer) Position() uint64 { return t.next }

// Close releases the open segment file.
func (t *Tailer) Close() error {
	if t.f == nil {
		return nil
	}
	err := t.f.Close()
	t.f = nil
	return err
}

// locate finds the segment holding record t.next, or returns a channel
// that is closed when more records are durable.
func (t *Tailer) locate() (seg segment, found bool, wait <-chan struct{}, err error) {
	w := t.w
	if err := w.checkOpen(); err != nil {
		return seg, false, nil, err
	}
	w.segMu.Lock()
	defer w.segMu.Unlock()
	if first := w.segs[0].base; t.next < first {
		t.next = first // truncated before we got there
	}
	for _, s := range w.segs {
		if t.next >= s.base && t.next < s.end() {
			return s, true, nil, nil
		}
		if t.next < s.base && s.records > 0 {
			// A gap left by a corrupt segment skipped on open
			// (SkipCorrupt): its records are gone; go on after it.
			t.next = s.base
			return s, true, nil, nil
		}
	}
	return seg, false, w.durable, nil
}

// open positions the scanner at record t.next of seg, limited to the
// records durable now: bytes past the durable size may be half written.
func (t *Tailer) open(seg segment) error {
	if t.f == nil || t.base != seg.base {
		t.Close()
		f, err := os.Open(segmentPath(t.w.dir, seg.base))
		if errors.Is(err, fs.ErrNotExist) {
			t.sc = nil // truncated meanwhile; locate skips ahead
			return nil
		}
		if err != nil {
			return fmt.Errorf("wal: tail: %w", err)
		}
		t.f, t.base, t.off = f, seg.base, headerSize
		var h [headerSize]byte
		if _, err := f.ReadAt(h[:], 0); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrCorrupt, segmentName(seg.base), err)
		}
		if base, err := checkHeader(h[:]); err != nil || base != seg.base {
			return fmt.Errorf("%w: %s: bad header", ErrCorrupt, segmentName(seg.base))
		}
		// Skip to t.next: once per segment opened mid-way.
		sc := newScanner(t.reader(io.NewSectionReader(f, t.off, seg.size-t.off)), seg.size-t.off)
		sc.buf = t.buf
		for lsn := seg.base; lsn < t.next; lsn++ {
			p, ok := sc.next()
			if !ok {
				return fmt.Errorf("%w: %s: record %d: %v", ErrCorrupt, segmentName(seg.base), lsn, sc.err)
			}
			t.off += recordHeaderSize + int64(len(p))
		}
		t.buf = sc.buf
	}
	size := seg.size - t.off
	t.sc = newScanner(t.reader(io.NewSectionReader(t.f, t.off, size)), size)
	t.sc.buf = t.buf
	t.end = seg.end()
	return nil
}

// reader returns the Tailer's buffered reader, reset to r. The section
// bounds what it reads ahead to the durable bytes.
func (t *Tailer) reader(r io.Reader) *bufio.Reader {
	if t.br == nil {
		t.br = bufio.NewReaderSize(r, 256<<10)
	} else {
		t.br.Reset(r)
	}
	return t.br
}
