package ingest

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// journal records which WAL records each flush batch holds, so that after a
// crash a batch is sent again with the same records and the same
// deduplication token, and ClickHouse drops what the first attempt already
// stored. Batches are cut by size or by a deadline, so without the journal
// a restart would cut differently and a retried insert would carry other
// rows under another token.
//
// The file is a sequence of 24-byte entries:
//
//	0   1  kind: 1 = intent (records first..last are about to be sent),
//	           2 = committed (every record up to last is stored; first = 0)
//	1   3  zero
//	4   8  first LSN, little-endian
//	12  8  last LSN
//	20  4  CRC-32C of bytes 0–19
//
// An intent is fsynced before its batch is sent, a committed entry before
// the WAL segments it lets go are deleted: were the entry lost while the
// segments are gone, the journal's older intents would name records that no
// longer exist and the records after them would be cut anew (issue 14,
// finding 5; see resume). A torn last entry is ignored.
type journal struct {
	path   string
	f      *os.File
	size   int64
	synced int64 // bytes of the file known to be on stable storage
	// broken: a write or sync failed, so the file may end in a torn entry
	// after which nothing would be read back; the next write rewrites it
	// from the state in memory first.
	broken    bool
	committed uint64 // every record ≤ committed is stored
	pending   []span // intents above committed, in LSN order
}

// span is a batch: WAL records first..last inclusive.
type span struct{ first, last uint64 }

const (
	journalEntry     = 24
	journalIntent    = 1
	journalCommitted = 2
	// journalCompactAt is the size past which the journal is rewritten to
	// its state: 64 KiB is ~1,300 batches, minutes of ingest.
	journalCompactAt = 64 << 10
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

type journalRec struct {
	kind byte
	s    span
}

// decodeJournal returns the entries of a journal file up to the first one
// that does not check out.
func decodeJournal(b []byte) []journalRec {
	var out []journalRec
	for len(b) >= journalEntry {
		e := b[:journalEntry]
		b = b[journalEntry:]
		if crc32.Checksum(e[:20], crc32c) != binary.LittleEndian.Uint32(e[20:]) {
			break // torn by a crash mid-write
		}
		out = append(out, journalRec{e[0], span{binary.LittleEndian.Uint64(e[4:]), binary.LittleEndian.Uint64(e[12:])}})
	}
	return out
}

func openJournal(dir string) (*journal, error) {
	j := &journal{path: filepath.Join(dir, "flush.journal")}
	b, err := os.ReadFile(j.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("ingest: journal: %w", err)
	}
	for _, e := range decodeJournal(b) {
		switch e.kind {
		case journalIntent:
			j.pending = append(j.pending, e.s)
		case journalCommitted:
			j.committed = max(j.committed, e.s.last)
		}
	}
	j.pending = slices.DeleteFunc(j.pending, func(s span) bool { return s.last <= j.committed })
	slices.SortFunc(j.pending, func(a, b span) int { return cmp.Compare(a.first, b.first) })
	if err := j.rewrite(); err != nil {
		return nil, err
	}
	return j, nil
}

// rewrite replaces the file with one holding only the current state.
func (j *journal) rewrite() error {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	tmp := j.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("ingest: journal: %w", err)
	}
	buf := appendEntry(nil, journalCommitted, span{0, j.committed})
	for _, s := range j.pending {
		buf = appendEntry(buf, journalIntent, s)
	}
	_, werr := f.Write(buf)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("ingest: journal: %w", err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fmt.Errorf("ingest: journal: %w", err)
	}
	if d, err := os.Open(filepath.Dir(j.path)); err == nil {
		d.Sync()
		d.Close()
	}
	if j.f, err = os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return fmt.Errorf("ingest: journal: %w", err)
	}
	j.size = int64(len(buf))
	j.synced = j.size
	j.broken = false
	return nil
}

// write appends one entry and syncs it, rewriting the file first if an
// earlier write failed.
func (j *journal) write(kind byte, s span) error {
	if j.f == nil || j.broken {
		if err := j.rewrite(); err != nil {
			return err
		}
	}
	if _, err := j.f.Write(appendEntry(nil, kind, s)); err != nil {
		j.broken = true
		return fmt.Errorf("ingest: journal: %w", err)
	}
	j.size += journalEntry
	if err := j.f.Sync(); err != nil {
		j.broken = true
		return fmt.Errorf("ingest: journal: %w", err)
	}
	j.synced = j.size
	return nil
}

func appendEntry(dst []byte, kind byte, s span) []byte {
	start := len(dst)
	dst = append(dst, kind, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint64(dst, s.first)
	dst = binary.LittleEndian.AppendUint64(dst, s.last)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], crc32c))
}

// intend durably records that span s is about to be sent. After an error
// it may be called again for the same span.
func (j *journal) intend(s span) error {
	if err := j.write(journalIntent, s); err != nil {
		return err
	}
	j.pending = append(j.pending, s)
	return nil
}

// commit durably records that every record up to last is stored, and
// compacts the file when it has grown. Only once it returns nil may the WAL
// segments below last be deleted.
func (j *journal) commit(last uint64) error {
	j.committed = max(j.committed, last)
	j.pending = slices.DeleteFunc(j.pending, func(s span) bool { return s.last <= j.committed })
	if j.size+journalEntry > journalCompactAt {
		return j.rewrite()
	}
	return j.write(journalCommitted, span{0, j.committed})
}

func (j *journal) close() error {
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// resume returns where flushing resumes given the oldest record the WAL
// still holds: the committed LSN and the journalled spans to cut again.
//
// A span that starts before firstLSN lost records to truncation, and the
// WAL is truncated only below what was stored: such a span was stored, and
// so was every span before it. Its commit entry is missing only if the
// journal lost it (commit fsyncs before segments go, so not by a power
// loss). Were it cut again, the records left of it would go out at other
// boundaries under new deduplication tokens — stored twice — and so would
// every span after it.
func (j *journal) resume(firstLSN uint64) (committed uint64, redo []span) {
	committed = j.committed
	for _, s := range j.pending {
		if s.first < firstLSN {
			committed = max(committed, s.last)
			continue
		}
		redo = append(redo, s)
	}
	return committed, redo
}
