package query

import (
	"slices"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/acl"
)

// A change reaches search through every stage: pending (matched against
// the request's snapshot), folded into the delta, then a rebuilt base —
// and at each stage the answer is the same.
func TestChangesThroughPendingDeltaAndRebuild(t *testing.T) {
	f := newFleet(t, harnessOpts{tweak: func(o *Options) { o.DeltaLimit = 3 }})
	// The set-up's changes outgrow DeltaLimit, so a rebuild may still be in
	// flight; one installed after the rename would skip the delta stage.
	// A service started now has every change in its base and none pending.
	f.start()
	rename := func(id acl.SystemID, name string) {
		sys, _ := f.x.Snapshot().System(id)
		f.apply(acl.Event{Kind: acl.KindSystemPut, System: id, GUID: sys.GUID, Name: name, Address: sys.Address,
			Timezone: sys.Timezone, Monitored: sys.Monitored, Org: sys.Org})
	}
	want := func(stage, q string, ids ...acl.SystemID) {
		t.Helper()
		if got := f.search(f.alice, q); !slices.Equal(got, u32s(ids...)) && !(len(got) == 0 && len(ids) == 0) {
			t.Fatalf("%s: q=%q: %v, want %v", stage, q, got, u32s(ids...))
		}
	}
	f.svc.holdFold.Store(true)
	rename(f.sys[0], "Schwarzwald Hof")
	if f.svc.pend.Load().ids.IsEmpty() {
		t.Fatal("the rename is not pending")
	}
	want("pending", "schwarzwald", f.sys[0])
	want("pending", "müller")
	f.svc.holdFold.Store(false)
	f.refresh()
	if cat := f.svc.cat.Load(); !cat.deltaIDs.Contains(uint32(f.sys[0])) || !f.svc.pend.Load().ids.IsEmpty() {
		t.Fatal("the rename is not in the delta")
	}
	want("delta", "schwarzwald", f.sys[0])
	want("delta", "müller")
	base := f.svc.cat.Load().base
	for i, name := range []string{"Alpha", "Beta", "Gamma", "Delta"} {
		rename(f.sys[1+i], name+" Hof")
	}
	f.refresh()
	deadline := time.Now().Add(10 * time.Second)
	for f.svc.cat.Load().base == base {
		if time.Now().After(deadline) {
			t.Fatal("the base was not rebuilt past DeltaLimit")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The first rename is in the new base and out of the delta. (The later
	// ones may not be: the rebuild starts once the delta outgrows its
	// limit, and a rename after its snapshot stays in the delta, as
	// TestRebaseKeepsNewerDeltaDocs requires.)
	if cat := f.svc.cat.Load(); cat.base.seq <= base.seq || cat.base.text.name(uint32(f.sys[0])) != "schwarzwald hof" || cat.deltaIDs.Contains(uint32(f.sys[0])) {
		t.Fatalf("after the rebuild: base seq %d (was %d), name in base %q, delta %d", cat.base.seq, base.seq, cat.base.text.name(uint32(f.sys[0])), len(cat.delta))
	}
	want("rebuilt", "hof", f.sys[:5]...)
	want("rebuilt", "schwarzwald", f.sys[0])
	want("rebuilt", "ñandú")
}

// A base built from an older snapshot than a delta doc keeps that doc; one
// built from a newer snapshot drops it.
func TestRebaseKeepsNewerDeltaDocs(t *testing.T) {
	f := newFleet(t, harnessOpts{})
	old := buildBase(f.x.Snapshot())
	sys, _ := f.x.Snapshot().System(f.sys[2])
	f.apply(acl.Event{Kind: acl.KindSystemPut, System: f.sys[2], GUID: sys.GUID, Name: "Renamed", Address: sys.Address,
		Timezone: sys.Timezone, Monitored: false, Org: sys.Org})
	f.refresh()
	cat := f.svc.cat.Load()
	if d := cat.delta[uint32(f.sys[2])]; d.doc == nil || d.doc.name != "renamed" || !cat.unmon.Contains(uint32(f.sys[2])) {
		t.Fatalf("delta doc %+v", d.doc)
	}
	if kept := cat.rebased(old); len(kept.delta) != 1 || !kept.unmon.Contains(uint32(f.sys[2])) || !kept.deltaIDs.Contains(uint32(f.sys[2])) {
		t.Fatalf("rebased on an older base: delta %d", len(kept.delta))
	}
	fresh := buildBase(f.x.Snapshot())
	if dropped := cat.rebased(fresh); len(dropped.delta) != 0 || !dropped.unmon.Contains(uint32(f.sys[2])) || dropped.base.text.name(uint32(f.sys[2])) != "renamed" {
		t.Fatalf("rebased on a newer base: delta %d", len(dropped.delta))
	}
}
