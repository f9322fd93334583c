package acl

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/fleetscope/fleetscope/internal/storetest"
	"github.com/fleetscope/fleetscope/store"
)

// openLogWith opens an index and its log on s with opts (Store, Logger and
// a long PollInterval filled in), closed when the test ends.
func openLogWith(t *testing.T, s *store.Store, node uint16, now func() time.Time, opts LogOptions) (*Index, *Log) {
	t.Helper()
	x := New(Options{Node: node, Now: now})
	opts.Store, opts.Logger = s, storetest.Logger()
	if opts.PollInterval == 0 {
		opts.PollInterval = time.Hour
	}
	l, err := OpenLog(context.Background(), x, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return x, l
}

// write persists and applies events as node would.
func write(t *testing.T, x *Index, l *Log, evs ...Event) {
	t.Helper()
	if err := l.Persist(evs); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Apply(evs...); err != nil {
		t.Fatal(err)
	}
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

func poll(t *testing.T, l *Log) {
	t.Helper()
	if err := l.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func snapshot(t *testing.T, l *Log) StoredSnapshot {
	t.Helper()
	info, err := l.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// sameState requires y to answer every lookup as x does, and as the brute
// force over m's events says, at the same time.
func sameState(t *testing.T, what string, x, y *Index, m *model, clock time.Time) {
	t.Helper()
	x.Expire(clock)
	y.Expire(clock)
	m.asOf = clock.UnixMilli()
	check(t, y.Snapshot(), m.eval(), -1)
	if a, b := dump(x.Snapshot()), dump(y.Snapshot()); a != b {
		t.Fatalf("%s differs from the live state:\n%s", what, firstDiff(a, b))
	}
}

func snapshotHeaders(t *testing.T, s *store.Store) int {
	t.Helper()
	var n uint64
	if err := s.QueryRow(context.Background(), "SELECT count() FROM acl_snapshots WHERE chunk = 0").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// The state rebuilt from a snapshot plus the log's tail, and from the whole
// log, equals the live state of the node that wrote them and the brute
// force; the rebuilt node then tails on from where the load ended.
func TestLogSnapshotRebuild(t *testing.T) {
	defer setChunkRaw(4096)() // several chunks
	s := storetest.Open(t)
	clock := time.Now()
	now := func() time.Time { return clock }
	opts := LogOptions{Overlap: time.Millisecond, ManualSnapshots: true}
	x, l := openLogWith(t, s, 1, now, opts)
	g := logGen(21, now)
	var m model
	// Before the snapshot: this node's events, and another node's that
	// reach this one through the log.
	for i := range 125 {
		evs := make([]Event, 4)
		for j := range evs {
			evs[j] = eventFrom(g, 1)
		}
		if i%2 == 0 {
			// Another node's event, which reaches this one by a poll.
			evs[0].Stamp.Node = 3
			g.seen[evs[0].Stamp] = true
			if err := l.Persist(evs[:1]); err != nil {
				t.Fatal(err)
			}
			m.events = append(m.events, evs[0])
			evs = evs[1:]
		}
		write(t, x, l, evs...)
		m.events = append(m.events, evs...)
		if i%25 == 0 {
			clock = clock.Add(time.Second)
		}
	}
	time.Sleep(5 * time.Millisecond) // past the overlap
	poll(t, l)
	info := snapshot(t, l)
	if want := len(slices.Collect(x.Snapshot().Export())); info.Events != want || info.Chunks < 2 {
		t.Fatalf("snapshot %+v, want %d events in several chunks", info, want)
	}
	// The tail: more events, late ones among them (the generator stamps
	// some in the past).
	for range 100 {
		evs := []Event{eventFrom(g, 1), eventFrom(g, 1), eventFrom(g, 1)}
		write(t, x, l, evs...)
		m.events = append(m.events, evs...)
	}
	clock = clock.Add(time.Second)

	y, ly := openLogWith(t, s, 2, now, opts)
	if got := ly.loaded; got.source != loadSnapshot || got.snapshot.id() != info.ID || got.snapEvents != info.Events ||
		got.logEvents < 300 || got.logEvents >= len(m.events) {
		t.Fatalf("load %+v; want snapshot %v of %d events and a tail of 300 to %d events", got, info.ID, info.Events, len(m.events))
	}
	if y.Clock().Now().HLC <= info.ID.HLC {
		t.Fatal("the rebuilt node's clock is not past the snapshot's stamp")
	}
	sameState(t, "state from snapshot + tail", x, y, &m, clock)

	// The rebuilt node tails on from where its load ended.
	for range 50 {
		ev := eventFrom(g, 1)
		write(t, x, l, ev)
		m.events = append(m.events, ev)
	}
	poll(t, ly)
	sameState(t, "state from snapshot + tail + poll", x, y, &m, clock)

	// Without snapshots: the whole log, the same state.
	if err := s.Exec(context.Background(), "TRUNCATE TABLE acl_snapshots"); err != nil {
		t.Fatal(err)
	}
	z, lz := openLogWith(t, s, 4, now, opts)
	if got := lz.loaded; got.source != loadLog || got.logEvents != len(m.events) {
		t.Fatalf("load %+v; want the whole log of %d events", got, len(m.events))
	}
	sameState(t, "state from the whole log", x, z, &m, clock)
	if v := value(lz.m.source.WithLabelValues(loadLog)); v != 1 {
		t.Fatalf("load_source{source=log} = %v", v)
	}
}

// A snapshot that cannot be used never fails start-up: a damaged header or
// a missing chunk is passed over for an older snapshot or the whole log, a
// damaged chunk abandons the snapshot for the whole log — and every way the
// state equals the live one.
func TestLogSnapshotUnusable(t *testing.T) {
	defer setChunkRaw(2048)()
	ctx := context.Background()
	f := func(name string, damage func(t *testing.T, s *store.Store, older, newest StoredSnapshot), wantSource string, wantOlder bool) {
		t.Run(name, func(t *testing.T) {
			s := storetest.Open(t)
			clock := time.Now()
			now := func() time.Time { return clock }
			opts := LogOptions{Overlap: time.Millisecond, ManualSnapshots: true, SnapshotsKept: 5}
			x, l := openLogWith(t, s, 1, now, opts)
			g := logGen(31, now)
			var m model
			var snaps []StoredSnapshot
			for range 2 {
				for range 50 {
					evs := make([]Event, 5)
					for i := range evs {
						evs[i] = eventFrom(g, 1)
					}
					write(t, x, l, evs...)
					m.events = append(m.events, evs...)
				}
				time.Sleep(5 * time.Millisecond)
				poll(t, l)
				snaps = append(snaps, snapshot(t, l))
			}
			if snaps[1].Chunks < 3 {
				t.Fatalf("want at least 3 chunks, got %d", snaps[1].Chunks)
			}
			damage(t, s, snaps[0], snaps[1])
			y, ly := openLogWith(t, s, 2, now, opts)
			got := ly.loaded
			if got.source != wantSource || wantOlder && got.snapshot.id() != snaps[0].ID {
				t.Fatalf("load %+v; want source %s (older snapshot %v)", got, wantSource, wantOlder)
			}
			sameState(t, "state after an unusable snapshot", x, y, &m, clock)
		})
	}
	// rewrite replaces one row's data (without the deduplication token,
	// which would drop the row as a retry).
	rewrite := func(t *testing.T, s *store.Store, id Stamp, chunk uint32, change func([]byte) []byte) {
		t.Helper()
		args := []any{clickhouse.Named("hlc", strconv.FormatUint(id.HLC, 10)), clickhouse.Named("node", strconv.Itoa(int(id.Node))),
			clickhouse.Named("chunk", strconv.FormatUint(uint64(chunk), 10))}
		where := " FROM acl_snapshots WHERE hlc = {hlc:UInt64} AND node = {node:UInt16} AND chunk = {chunk:UInt32}"
		var data string
		var covers time.Time
		var events uint64
		if err := s.QueryRow(ctx, "SELECT data, covers, events"+where, args...).Scan(&data, &covers, &events); err != nil {
			t.Fatal(err)
		}
		if err := s.Exec(ctx, "DELETE"+where, args...); err != nil {
			t.Fatal(err)
		}
		b, err := s.PrepareBatch(ctx, "INSERT INTO acl_snapshots (hlc, node, chunk, covers, events, data, created_at)")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Append(id.HLC, id.Node, chunk, covers, events, string(change([]byte(data))), time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	flip := func(i int) func([]byte) []byte {
		return func(b []byte) []byte {
			b[i%len(b)] ^= 0x10
			return b
		}
	}
	f("intact", func(*testing.T, *store.Store, StoredSnapshot, StoredSnapshot) {}, loadSnapshot, false)
	f("newest chunk damaged", func(t *testing.T, s *store.Store, _, newest StoredSnapshot) {
		rewrite(t, s, newest.ID, 2, flip(100))
	}, loadBadSnapshot, false)
	f("newest last chunk damaged", func(t *testing.T, s *store.Store, _, newest StoredSnapshot) {
		rewrite(t, s, newest.ID, uint32(newest.Chunks), flip(7))
	}, loadBadSnapshot, false)
	f("newest header damaged", func(t *testing.T, s *store.Store, _, newest StoredSnapshot) {
		rewrite(t, s, newest.ID, 0, flip(12))
	}, loadSnapshot, true)
	f("newest header of another snapshot", func(t *testing.T, s *store.Store, older, newest StoredSnapshot) {
		rewrite(t, s, newest.ID, 0, func([]byte) []byte {
			h := snapHeader{Covers: older.Covers.UnixMilli(), HLC: older.ID.HLC, Node: older.ID.Node,
				Events: uint64(older.Events), Chunks: uint32(older.Chunks)}
			return h.appendBinary(nil)
		})
	}, loadSnapshot, true)
	f("newest chunk missing", func(t *testing.T, s *store.Store, _, newest StoredSnapshot) {
		if err := s.Exec(ctx, "DELETE FROM acl_snapshots WHERE hlc = {hlc:UInt64} AND chunk = 1",
			clickhouse.Named("hlc", strconv.FormatUint(newest.ID.HLC, 10))); err != nil {
			t.Fatal(err)
		}
	}, loadSnapshot, true)
	f("every header damaged", func(t *testing.T, s *store.Store, older, newest StoredSnapshot) {
		rewrite(t, s, newest.ID, 0, flip(3))
		rewrite(t, s, older.ID, 0, func([]byte) []byte { return []byte("garbage") })
	}, loadLog, false)
}

// Two nodes write concurrently, each polling and storing snapshots while
// the other writes. Both converge on the brute force over all events, and a
// third node started from the newest snapshot and its tail does too.
func TestLogSnapshotWhileOtherNodeWrites(t *testing.T) {
	defer setChunkRaw(4096)()
	s := storetest.Open(t)
	clock := time.Now()
	now := func() time.Time { return clock } // only read while the writers run
	opts := LogOptions{Overlap: 200 * time.Millisecond, ManualSnapshots: true}
	x1, l1 := openLogWith(t, s, 1, now, opts)
	x2, l2 := openLogWith(t, s, 2, now, opts)
	g := logGen(41, now)
	var m model
	evs := map[uint16][]Event{}
	for range 800 {
		node := uint16(1 + g.r.IntN(2))
		ev := eventFrom(g, node)
		evs[node] = append(evs[node], ev)
		m.events = append(m.events, ev)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	var snapped sync.Map
	for _, n := range []struct {
		node uint16
		x    *Index
		l    *Log
	}{{1, x1, l1}, {2, x2, l2}} {
		wg.Go(func() {
			ctx := context.Background()
			for i, ev := range evs[n.node] {
				if err := n.l.Persist([]Event{ev}); err != nil {
					errs <- err
					return
				}
				if _, err := n.x.Apply(ev); err != nil {
					errs <- err
					return
				}
				if i%40 == 0 {
					time.Sleep(20 * time.Millisecond)
					if err := n.l.Poll(ctx); err != nil {
						errs <- err
						return
					}
				}
				if i%120 == 60 {
					info, err := n.l.Snapshot(ctx)
					if err != nil {
						errs <- err
						return
					}
					snapped.Store(info.ID, info)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	poll(t, l1)
	poll(t, l2)
	sameState(t, "node 2", x1, x2, &m, clock)

	x3, l3 := openLogWith(t, s, 3, now, opts)
	got := l3.loaded
	if _, ok := snapped.Load(got.snapshot.id()); got.source != loadSnapshot || !ok || got.logEvents >= len(m.events) {
		t.Fatalf("load %+v: want a snapshot of node 1 or 2 and a tail shorter than the log's %d events", got, len(m.events))
	}
	sameState(t, "node 3, from a snapshot", x1, x3, &m, clock)
	t.Logf("node 3 loaded snapshot %v (%d events) and %d of the log's %d events", got.snapshot.id(), got.snapEvents, got.logEvents, len(m.events))
}

// In the background a snapshot is stored every SnapshotInterval while
// events arrive, none when nothing changes, one as soon as SnapshotEvents
// arrived, and at once after start-up found the snapshot unusable; only the
// newest SnapshotsKept stay.
func TestLogBackgroundSnapshots(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	clock := time.Now()
	now := func() time.Time { return clock }
	g := logGen(51, now)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}

	x, l := openLogWith(t, s, 1, now, LogOptions{SnapshotInterval: 30 * time.Millisecond, SnapshotsKept: 2})
	for range 4 {
		write(t, x, l, eventFrom(g, 1))
		n := value(l.m.snaps)
		waitFor("a snapshot after a change", func() bool { return value(l.m.snaps) > n })
	}
	waitFor("the pending count to clear", func() bool { return l.pending.Load() == 0 })
	n := value(l.m.snaps)
	time.Sleep(150 * time.Millisecond)
	if got := value(l.m.snaps); got != n {
		t.Fatalf("%v snapshots stored with nothing changed", got-n)
	}
	if got := snapshotHeaders(t, s); got != 2 {
		t.Fatalf("%d snapshots kept, want 2", got)
	}
	l.Close()

	// SnapshotEvents reached before the interval is. What start-up read of
	// the log (the tail, within Overlap of the snapshot) counts.
	x, l = openLogWith(t, s, 1, now, LogOptions{SnapshotInterval: time.Hour, SnapshotEvents: 20})
	for range 19 - l.loaded.logEvents {
		write(t, x, l, eventFrom(g, 1))
	}
	time.Sleep(50 * time.Millisecond)
	if got := value(l.m.snaps); got != 0 {
		t.Fatalf("snapshot stored after %d events, SnapshotEvents is 20", l.pending.Load())
	}
	write(t, x, l, eventFrom(g, 1))
	waitFor("a snapshot after SnapshotEvents", func() bool { return value(l.m.snaps) == 1 })
	l.Close()

	// A damaged newest snapshot is replaced as soon as start-up is done.
	var hlc uint64
	if err := s.QueryRow(ctx, "SELECT max(hlc) FROM acl_snapshots WHERE chunk = 0").Scan(&hlc); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(ctx, "ALTER TABLE acl_snapshots UPDATE data = concat(data, 'x') WHERE hlc = {hlc:UInt64} AND chunk = 1 SETTINGS mutations_sync = 1",
		clickhouse.Named("hlc", strconv.FormatUint(hlc, 10))); err != nil {
		t.Fatal(err)
	}
	_, l = openLogWith(t, s, 1, now, LogOptions{SnapshotInterval: time.Hour})
	if l.loaded.source != loadBadSnapshot {
		t.Fatalf("load %+v, want the whole log after a bad snapshot", l.loaded)
	}
	waitFor("a snapshot replacing the bad one", func() bool { return value(l.m.snaps) == 1 })
}

// An event of this node that is in the log without having been applied —
// its insert succeeded but Persist reported a failure — is applied by the
// next poll, so it is in the node's state and its snapshots like everywhere
// else.
func TestPollAppliesOwnEventsNotApplied(t *testing.T) {
	s := storetest.Open(t)
	x, l := openLogWith(t, s, 1, nil, LogOptions{ManualSnapshots: true})
	ev := Event{Kind: KindOrgPut, Stamp: x.Clock().Now(), Org: 5, Name: "Landed anyway"}
	if err := l.Persist([]Event{ev}); err != nil {
		t.Fatal(err)
	}
	if _, ok := x.Snapshot().Org(5); ok {
		t.Fatal("persisting applied the event")
	}
	poll(t, l)
	if o, ok := x.Snapshot().Org(5); !ok || o.Name != "Landed anyway" {
		t.Fatalf("after a poll: %+v %v", o, ok)
	}
}

// An insert that commits late — its insertion time older than events the
// tailer has already seen, but within Overlap — is in the tail a node
// started from the snapshot folds, as it is in the next poll of the node
// that took the snapshot: the snapshot covers only up to the tailer's point
// less Overlap.
func TestLogSnapshotLateInsert(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	clock := time.Now()
	now := func() time.Time { return clock }
	opts := LogOptions{Overlap: 2 * time.Second, ManualSnapshots: true}
	x, l := openLogWith(t, s, 1, now, opts)
	g := logGen(61, now)
	var m model
	for range 20 {
		evs := []Event{eventFrom(g, 1), eventFrom(g, 1)}
		write(t, x, l, evs...)
		m.events = append(m.events, evs...)
	}
	poll(t, l)
	info := snapshot(t, l)
	if !info.Covers.Before(l.since) {
		t.Fatalf("snapshot covers %v, the tailer has read up to %v", info.Covers, l.since)
	}
	// Another node's insert, committed only now but stamped by the server
	// a second before the newest insertion the tailer has seen.
	late := Event{Kind: KindOrgPut, Stamp: Stamp{HLC: x.Clock().Now().HLC, Node: 2}, Org: uOrgs, Name: "Late Installs"}
	raw, err := late.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.PrepareBatch(ctx, "INSERT INTO acl_events (hlc, node, kind, actor, system_id, event, at, ins)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(late.Stamp.HLC, late.Stamp.Node, late.Kind.String(), uint32(late.Actor), uint32(late.System), string(raw),
		late.Stamp.Time(), l.since.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	m.events = append(m.events, late)
	poll(t, l)
	y, _ := openLogWith(t, s, 3, now, opts)
	sameState(t, "state from the snapshot, after a late insert", x, y, &m, clock)
}
