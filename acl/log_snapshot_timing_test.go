package acl

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/internal/storetest"
)

var flagRebuild = flag.String("acl.rebuild", "", "measure rebuilding an index of `systems,accounts,grants` from a snapshot and from the whole log, in memory and through the embedded engine (e.g. 2000000,1000000,10000000); off by default")

// TestRebuildTime measures start-up at scale, when asked:
//
//	FLEETSCOPE_REQUIRE_ENGINE=1 go test ./acl -run TestRebuildTime -v -timeout 2h \
//	    -acl.rebuild=2000000,1000000,10000000
//
// It builds the fleet of TestIndexHeap, stores its snapshot as a blob in
// memory and replays it into a fresh index; then writes the fleet's events
// to the event log of the embedded engine and times OpenLog from the whole
// log, Log.Snapshot, and OpenLog from the snapshot plus a tail of tailEvents
// new grants. Every rebuilt index is compared with the live one on a sample
// of lookups.
func TestRebuildTime(t *testing.T) {
	if *flagRebuild == "" {
		t.Skip("set -acl.rebuild=systems,accounts,grants to measure")
	}
	var spec fleetSpec
	if _, err := fmt.Sscanf(*flagRebuild, "%d,%d,%d", &spec.systems, &spec.accounts, &spec.grants); err != nil {
		t.Fatalf("-acl.rebuild: %v", err)
	}
	spec.bigOrgMembers = 1000
	const tailEvents = 100_000
	ctx := context.Background()
	clockNow := func() time.Time { return t0 }
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }

	logEvents := 0
	start := time.Now()
	x := New(Options{Now: clockNow})
	if _, err := x.Replay(func(yield func([]Event, error) bool) {
		genFleet(spec, x.Clock(), func(evs []Event) {
			logEvents += len(evs)
			yield(evs, nil)
		})
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("live index: %d generated events replayed in %v", logEvents, time.Since(start).Round(time.Millisecond))

	// In memory: the snapshot as one blob.
	start = time.Now()
	blob, h, err := appendSnapshotBlob(nil, snapHeader{HLC: x.Clock().Now().HLC}, x.Snapshot().Export())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot blob: %d events, %d chunks, %.1f MiB, exported and compressed in %v",
		h.Events, h.Chunks, mib(int64(len(blob))), time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if _, err := decodeSnapshotBlob(blob, func([]Event) error { return nil }); err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot blob: decoded (checksums, zstd, events) in %v", time.Since(start).Round(time.Millisecond))
	runtime.GC()
	start = time.Now()
	y := New(Options{Now: clockNow})
	if _, err := y.Replay(func(yield func([]Event, error) bool) {
		if _, err := decodeSnapshotBlob(blob, func(evs []Event) error {
			if !yield(evs, nil) {
				return errStopped
			}
			return nil
		}); err != nil {
			yield(nil, err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot blob: decoded and replayed into a fresh index in %v", time.Since(start).Round(time.Millisecond))
	sameSample(t, x, y)
	blob, y = nil, nil
	runtime.GC()

	// Through the embedded engine.
	s := storetest.Open(t)
	opts := LogOptions{Store: s, PollInterval: time.Hour, Overlap: time.Second, ManualSnapshots: true, Logger: storetest.Logger()}
	w, err := OpenLog(ctx, New(Options{Now: clockNow}), opts)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	genFleet(spec, NewHLC(0, clockNow), func(evs []Event) {
		if err := w.Persist(evs); err != nil {
			t.Fatal(err)
		}
	})
	w.Close()
	t.Logf("event log: %d events written in %v", logEvents, time.Since(start).Round(time.Millisecond))

	open := func(what string) (*Index, *Log) {
		t.Helper()
		runtime.GC()
		y := New(Options{Now: clockNow})
		start := time.Now()
		l, err := OpenLog(ctx, y, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: OpenLog in %v (source %s: %d snapshot events, %d log events), process RSS %s",
			what, time.Since(start).Round(time.Millisecond), l.loaded.source, l.loaded.snapEvents, l.loaded.logEvents, rss())
		return y, l
	}
	y, l := open("whole log")
	sameSample(t, x, y)
	info, err := l.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Log.Snapshot: %d events, %d chunks, %.1f MiB, in %v", info.Events, info.Chunks, mib(info.Bytes), info.Took.Round(time.Millisecond))
	// Ten minutes of changes after the snapshot: new grants, applied to the
	// live index too.
	r := rand.New(rand.NewPCG(7, 7))
	tail := make([]Event, tailEvents)
	for i := range tail {
		tail[i] = Event{Kind: KindGrantPut, Stamp: x.Clock().Now(), System: SystemID(r.IntN(spec.systems)),
			Grantee: EmailPrincipal(fmt.Sprintf("u%d@fleet.test", 1+r.IntN(spec.accounts-spec.bigOrgMembers))), Role: RoleViewer}
	}
	for i := 0; i < len(tail); i += 10_000 {
		if err := l.Persist(tail[i : i+10_000]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := x.Apply(tail...); err != nil {
		t.Fatal(err)
	}
	l.Close()
	y, l = nil, nil

	y, l = open(fmt.Sprintf("snapshot + %d tail events", tailEvents))
	if l.loaded.source != loadSnapshot {
		t.Fatalf("loaded %+v, want the snapshot", l.loaded)
	}
	sameSample(t, x, y)
	l.Close()
}

// sameSample compares two indexes of a fleet on a sample of lookups: the
// bitmaps of a thousand accounts and the grants of a thousand systems.
func sameSample(t *testing.T, x, y *Index) {
	t.Helper()
	sx, sy := x.Snapshot(), y.Snapshot()
	if a, b := sx.AllSystems().GetCardinality(), sy.AllSystems().GetCardinality(); a != b {
		t.Fatalf("%d systems, the live index %d", b, a)
	}
	r := rand.New(rand.NewPCG(1, 1))
	n := int(sx.AllSystems().GetCardinality())
	for range 1000 {
		a := AccountID(1 + r.IntN(n/2))
		for _, p := range []Perm{PermView, PermData, PermFirmware} {
			if !sx.Systems(a, p).Equals(sy.Systems(a, p)) {
				t.Fatalf("Systems(%d, %s) differs from the live index", a, p)
			}
		}
		sys := SystemID(r.IntN(n))
		if a, b := fmt.Sprint(sx.Grants(sys)), fmt.Sprint(sy.Grants(sys)); a != b {
			t.Fatalf("Grants(%d) = %s, live %s", sys, b, a)
		}
	}
}
