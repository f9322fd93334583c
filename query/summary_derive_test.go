package query_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/bench"
	"github.com/fleetscope/fleetscope/query"
)

// The fleet summary of a large installer after changes of its access —
// systems granted to its org and taken back, one of them made unmonitored,
// then a change too large to derive — equals the summary a service that
// never saw the caller before computes from scratch: the sums derived from
// the caller's previous bitmap (a bitmap difference) are the sums.
func TestFleetSummaryAfterChangesEqualsAFreshOne(t *testing.T) {
	f := bench.GenerateFleet(bench.FleetSpec{Systems: 90_000, Accounts: 2_000, BigOrg: 30_000, Seed: 3})
	newService := func() *query.Service {
		svc, err := query.New(query.Options{ACL: f.ACL, Live: f.Live, Now: func() time.Time { return f.Now },
			Logger: slog.New(slog.DiscardHandler), LiveRefresh: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	svc := newService()
	defer svc.Close()
	check := func(what string) {
		t.Helper()
		got := svc.FleetSummary(f.Big)
		fresh := newService()
		want := fresh.FleetSummary(f.Big)
		fresh.Close()
		got.LiveAt, want.LiveAt = time.Time{}, time.Time{}
		if got != want {
			t.Fatalf("%s: summary %+v, from scratch %+v", what, got, want)
		}
		if got.ByStatus[query.StatusOnline] == 0 || got.PowerDW == 0 {
			t.Fatalf("%s: nothing online to sum: %+v", what, got)
		}
	}
	apply := func(evs ...acl.Event) {
		t.Helper()
		ch, err := f.ACL.Apply(f.ACL.Stamp(evs)...)
		if err != nil {
			t.Fatal(err)
		}
		svc.OnACLChange(ch)
	}
	check("first")

	snap := f.ACL.Snapshot()
	held := snap.Systems(f.Big, acl.PermView)
	var org acl.OrgID
	if sys, ok := snap.System(acl.SystemID(held.Minimum())); ok {
		org = sys.Org
	}
	// Systems outside the org, online ones among them.
	var outside []acl.SystemID
	it := snap.AllSystems().Iterator()
	for it.HasNext() && len(outside) < 6000 {
		if id := it.Next(); !held.Contains(id) {
			outside = append(outside, acl.SystemID(id))
		}
	}
	grant := func(ids []acl.SystemID, put bool) {
		t.Helper()
		var evs []acl.Event
		for _, id := range ids {
			ev := acl.Event{Kind: acl.KindGrantPut, System: id, Grantee: acl.OrgPrincipal(org), Role: acl.RoleViewer}
			if !put {
				ev = acl.Event{Kind: acl.KindGrantDelete, System: id, Grantee: acl.OrgPrincipal(org)}
			}
			evs = append(evs, ev)
		}
		apply(evs...)
	}
	grant(outside[:3], true)
	check("three systems granted to the org")
	grant(outside[:1], false)
	check("one of them revoked")

	// A system of the org made unmonitored (a pending change of the
	// catalogue), then monitored again.
	sys, _ := f.ACL.Snapshot().System(acl.SystemID(held.Maximum()))
	put := acl.Event{Kind: acl.KindSystemPut, System: sys.ID, GUID: sys.GUID, Name: sys.Name, Address: sys.Address,
		Timezone: sys.Timezone, Org: sys.Org, Monitored: false}
	apply(put)
	check("a system unmonitored")
	grant(outside[3:5], true)
	check("two more granted while it is pending")
	put.Monitored = true
	apply(put)
	check("monitored again")

	// More than a derivation takes: summed afresh.
	grant(outside[5:], true)
	check("thousands granted")
	grant(outside[5:], false)
	check("and revoked")
}
