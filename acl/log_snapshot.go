package acl

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// StoredSnapshot describes a snapshot Log.Snapshot stored.
type StoredSnapshot struct {
	// ID is the writer's clock reading when the snapshot was taken, with
	// its node: after every stamp in the snapshot.
	ID Stamp
	// Covers: every event inserted into the log before it is in the
	// snapshot. Start-up folds the events inserted from Covers on.
	Covers time.Time
	Events int   // one per register (see Snapshot.Export)
	Chunks int   // rows of records
	Bytes  int64 // compressed size of the chunks
	Took   time.Duration
}

// Snapshot stores the state this node has applied as a snapshot in the
// acl_snapshots table (the format is in snapfile.go), so that start-up
// folds it and only the events inserted after the point it covers. The
// background loop calls it (see LogOptions); tests and tools may call it any
// time. One runs at a time; readers and writers of the index are not held
// up: the state exported is an immutable Snapshot.
//
// The point covered is the tailer's: the newest insertion time Poll has
// seen, less Overlap (see Poll). Events of this node applied but inserted
// later, or inserted but not yet applied, are in the tail that start-up
// folds from that point on, and folding one twice is harmless.
//
// Afterwards the snapshots older than the newest SnapshotsKept are deleted;
// a failure to delete is logged, not returned. A snapshot that fails half
// way leaves chunks without a header, which start-up ignores and a later
// deletion removes.
func (l *Log) Snapshot(ctx context.Context) (StoredSnapshot, error) {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	start := time.Now()
	l.mu.Lock() // no poll half applied
	snap := l.x.Snapshot()
	since := l.since
	pending := l.pending.Load()
	l.mu.Unlock()
	info := StoredSnapshot{ID: l.x.Clock().Now(), Covers: time.UnixMilli(0).UTC()}
	if !since.IsZero() {
		info.Covers = time.UnixMilli(max(0, since.Add(-l.opts.Overlap).UnixMilli())).UTC()
	}
	h := snapHeader{Covers: info.Covers.UnixMilli(), HLC: info.ID.HLC, Node: info.ID.Node}
	created := time.Now()

	var w *snapWriter
	w, err := newSnapWriter(func(chunk []byte) error {
		return l.insertSnapshotRow(ctx, h, w.chunks, 0, chunk, created)
	})
	if err == nil {
		for ev := range snap.Export() {
			if err = w.add(ev); err != nil {
				break
			}
		}
		if cerr := w.close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		// The header last: with it the snapshot is complete.
		h.Events, h.Chunks = w.events, w.chunks
		err = l.insertSnapshotRow(ctx, h, 0, h.Events, h.appendBinary(nil), created)
	}
	if err != nil {
		l.m.snapErrs.Inc()
		return StoredSnapshot{}, fmt.Errorf("acl: store snapshot: %w", err)
	}
	l.pending.Add(-pending)
	info.Events, info.Chunks, info.Bytes, info.Took = int(w.events), int(w.chunks), w.bytes, time.Since(start)
	l.m.snaps.Inc()
	l.m.snapSecs.Set(info.Took.Seconds())
	l.m.snapBytes.Set(float64(info.Bytes))
	l.m.snapEvents.Set(float64(info.Events))
	l.opts.Logger.Info("access-control snapshot stored", "id", fmt.Sprint(info.ID), "covers", info.Covers,
		"events", info.Events, "chunks", info.Chunks, "bytes", info.Bytes, "duration_s", info.Took.Seconds())
	if err := l.pruneSnapshots(ctx); err != nil && ctx.Err() == nil {
		l.opts.Logger.Warn("acl: deleting old snapshots failed; the next snapshot retries", "err", err)
	}
	return info, nil
}

// insertSnapshotRow inserts one row of a snapshot: a chunk (chunk ≥ 1) or
// the header (chunk 0, with the event count). A retried insert is dropped
// by its deduplication token.
func (l *Log) insertSnapshotRow(ctx context.Context, h snapHeader, chunk uint32, events uint64, data []byte, created time.Time) error {
	token := "aclsnap:" + strconv.FormatUint(h.HLC, 10) + ":" + strconv.Itoa(int(h.Node)) + ":" + strconv.FormatUint(uint64(chunk), 10)
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_deduplication_token": token}))
	b, err := l.opts.Store.PrepareBatch(ctx, "INSERT INTO acl_snapshots (hlc, node, chunk, covers, events, data, created_at)")
	if err != nil {
		return err
	}
	if err := b.Append(h.HLC, h.Node, chunk, time.UnixMilli(h.Covers).UTC(), events, string(data), created); err != nil {
		b.Abort()
		return err
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert chunk %d: %w", chunk, err)
	}
	return nil
}

// pruneSnapshots deletes the snapshots older than the newest SnapshotsKept
// complete ones, and chunks left by snapshots that failed before them.
func (l *Log) pruneSnapshots(ctx context.Context) error {
	var keep uint64
	err := l.opts.Store.QueryRow(ctx, "SELECT hlc FROM acl_snapshots WHERE chunk = 0 ORDER BY hlc DESC LIMIT 1 OFFSET {n:UInt32}",
		clickhouse.Named("n", strconv.Itoa(l.opts.SnapshotsKept-1))).Scan(&keep)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil // fewer than SnapshotsKept
		}
		return err
	}
	return l.opts.Store.Exec(ctx, "DELETE FROM acl_snapshots WHERE hlc < {hlc:UInt64}", clickhouse.Named("hlc", strconv.FormatUint(keep, 10)))
}

// newestSnapshot returns the header of the newest complete snapshot — the
// one covering the most of the log — whose header is intact. Snapshots it
// passes over, and a failure to read the table, are logged: start-up then
// folds the whole log.
func (l *Log) newestSnapshot(ctx context.Context) (snapHeader, bool) {
	warn := func(msg string, args ...any) {
		l.opts.Logger.Warn("acl: "+msg, args...)
	}
	rows, err := l.opts.Store.Query(ctx, "SELECT hlc, node, data FROM acl_snapshots WHERE chunk = 0 ORDER BY covers DESC, hlc DESC, node DESC LIMIT {n:UInt32}",
		clickhouse.Named("n", strconv.Itoa(l.opts.SnapshotsKept+2)))
	if err != nil {
		warn("cannot read snapshots, folding the whole event log", "err", err)
		return snapHeader{}, false
	}
	type cand struct {
		hlc  uint64
		node uint16
		data string
	}
	var cands []cand
	for rows.Next() {
		var c cand
		if err := rows.Scan(&c.hlc, &c.node, &c.data); err != nil {
			rows.Close()
			warn("cannot read snapshots, folding the whole event log", "err", err)
			return snapHeader{}, false
		}
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		warn("cannot read snapshots, folding the whole event log", "err", err)
		return snapHeader{}, false
	}
	for _, c := range cands {
		id := fmt.Sprint(Stamp{c.hlc, c.node})
		h, rest, err := parseSnapHeader([]byte(c.data))
		if err == nil && (len(rest) > 0 || h.id() != (Stamp{c.hlc, c.node})) {
			err = fmt.Errorf("%w: header row does not match its snapshot", errSnapshot)
		}
		if err != nil {
			warn("snapshot header unusable, skipped", "snapshot", id, "err", err)
			continue
		}
		var n uint64
		if err := l.opts.Store.QueryRow(ctx, "SELECT uniqExact(chunk) FROM acl_snapshots WHERE hlc = {hlc:UInt64} AND node = {node:UInt16} AND chunk BETWEEN 1 AND {n:UInt32}",
			clickhouse.Named("hlc", strconv.FormatUint(h.HLC, 10)), clickhouse.Named("node", strconv.Itoa(int(h.Node))),
			clickhouse.Named("n", strconv.FormatUint(uint64(h.Chunks), 10))).Scan(&n); err != nil {
			warn("cannot read snapshots, folding the whole event log", "err", err)
			return snapHeader{}, false
		}
		if n != uint64(h.Chunks) {
			warn("snapshot incomplete, skipped", "snapshot", id, "chunks", n, "want", h.Chunks)
			continue
		}
		return h, true
	}
	return snapHeader{}, false
}

// readSnapshot reads a snapshot's chunks one by one, passing their events
// to emit (which must not retain them). Each chunk is checked before any of
// its events reaches emit.
func (l *Log) readSnapshot(ctx context.Context, h snapHeader, emit func([]Event) error) error {
	var r snapReader
	for i := uint32(1); i <= h.Chunks; i++ {
		var data string
		if err := l.opts.Store.QueryRow(ctx, "SELECT data FROM acl_snapshots WHERE hlc = {hlc:UInt64} AND node = {node:UInt16} AND chunk = {chunk:UInt32} LIMIT 1",
			clickhouse.Named("hlc", strconv.FormatUint(h.HLC, 10)), clickhouse.Named("node", strconv.Itoa(int(h.Node))),
			clickhouse.Named("chunk", strconv.FormatUint(uint64(i), 10))).Scan(&data); err != nil {
			return fmt.Errorf("read chunk %d: %w", i, err)
		}
		if err := r.chunk([]byte(data), emit); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
	}
	if r.events != h.Events {
		return fmt.Errorf("%w: %d events, the header says %d", errSnapshot, r.events, h.Events)
	}
	return nil
}

// noteEvents counts events that reached the state and wakes the snapshot
// loop once SnapshotEvents have.
func (l *Log) noteEvents(n int) {
	if n > 0 && l.pending.Add(int64(n)) >= int64(l.opts.SnapshotEvents) {
		l.wakeSnapshots()
	}
}

func (l *Log) wakeSnapshots() {
	select {
	case l.snapNow <- struct{}{}:
	default:
	}
}

// snapshotLoop stores a snapshot every SnapshotInterval if any event reached
// the state since the last one, and early when SnapshotEvents did.
func (l *Log) snapshotLoop(ctx context.Context) {
	t := time.NewTicker(l.opts.SnapshotInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if l.pending.Load() == 0 && !l.snapForce.Load() {
				continue
			}
		case <-l.snapNow:
			if l.pending.Load() < int64(l.opts.SnapshotEvents) && !l.snapForce.Load() {
				continue // woken for a count a snapshot since has taken
			}
		}
		l.snapForce.Store(false)
		if _, err := l.Snapshot(ctx); err != nil && ctx.Err() == nil {
			l.snapForce.Store(true) // again at the next tick
			l.opts.Logger.Warn("acl: storing a snapshot failed; retrying at the next interval", "err", err)
		}
	}
}
