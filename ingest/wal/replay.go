package wal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
)

// Replay calls fn for every durable record with LSN ≥ from, in LSN order,
// starting at the oldest record on disk if from is older. It visits the
// records durable when it was called; later appends are not visited.
//
// payload is valid only during the call: it points into a buffer that the
// next record overwrites, so fn must copy what it keeps. fn may call Append
// and TruncateBefore; records truncated meanwhile may be skipped. An error
// from fn stops Replay and is returned as is. A record that no longer checks
// out (bit rot since Open) is an ErrCorrupt error.
func (w *WAL) Replay(from uint64, fn func(lsn uint64, payload []byte) error) error {
	if err := w.checkOpen(); err != nil {
		return err
	}
	w.segMu.Lock()
	segs := slices.Clone(w.segs)
	w.segMu.Unlock()
	var buf []byte
	for _, s := range segs {
		if s.records == 0 || s.end() <= from {
			continue
		}
		var err error
		buf, err = w.replaySegment(s, from, buf, fn)
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *WAL) replaySegment(s segment, from uint64, buf []byte, fn func(uint64, []byte) error) ([]byte, error) {
	name := segmentName(s.base)
	f, err := os.Open(segmentPath(w.dir, s.base))
	if errors.Is(err, fs.ErrNotExist) && w.truncated(s.base) {
		return buf, nil // removed by a TruncateBefore since the snapshot
	}
	if err != nil {
		return buf, fmt.Errorf("wal: replay: %w", err)
	}
	defer f.Close()
	r := readerFor(f)
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return buf, fmt.Errorf("%w: %s: %w", ErrCorrupt, name, err)
	}
	if base, err := checkHeader(h[:]); err != nil || base != s.base {
		return buf, fmt.Errorf("%w: %s: header changed since open", ErrCorrupt, name)
	}
	sc := newScanner(r, s.size-headerSize)
	sc.buf = buf
	for lsn := s.base; lsn < s.end(); lsn++ {
		p, ok := sc.next()
		if !ok {
			err := sc.err
			if err == nil {
				err = errTorn
			}
			return sc.buf, fmt.Errorf("%w: %s: record %d: %w", ErrCorrupt, name, lsn, err)
		}
		if lsn < from {
			continue
		}
		if err := fn(lsn, p); err != nil {
			return sc.buf, err
		}
	}
	return sc.buf, nil
}

// truncated reports whether the segment with the given base has been
// removed by TruncateBefore.
func (w *WAL) truncated(base uint64) bool {
	w.segMu.Lock()
	defer w.segMu.Unlock()
	return base < w.segs[0].base
}

// TruncateBefore deletes the segments whose records all have LSNs < lsn:
// call it once everything below lsn is committed downstream. The active
// segment is never deleted, so disk is freed a whole segment at a time; Stats
// reports what remains. It returns the number of segments deleted. LSNs keep
// counting up after truncation and across restarts.
func (w *WAL) TruncateBefore(lsn uint64) (int, error) {
	if err := w.checkOpen(); err != nil {
		return 0, err
	}
	w.segMu.Lock()
	w.truncPoint = max(w.truncPoint, lsn)
	n := 0
	for n < len(w.segs)-1 && w.segs[n+1].base <= lsn {
		n++
	}
	victims := make([]uint64, n)
	for i := range victims {
		victims[i] = w.segs[i].base
	}
	w.segs = slices.Delete(w.segs, 0, n)
	w.updateGaugesLocked()
	w.segMu.Unlock()
	if n == 0 {
		return 0, nil
	}
	var errs []error
	for _, base := range victims {
		if err := os.Remove(segmentPath(w.dir, base)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	w.m.truncatedSegs.Add(float64(n))
	if err := syncDir(w.dir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("wal: truncate: %w", err)
	}
	return n, nil
}

func (w *WAL) checkOpen() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	return nil
}
