package acl

import (
	"errors"
	"testing"
	"time"
)

// TestPlanChangesNothing: Plan returns the events an op needs, stamped in
// order and carrying the actor, and applies none of them; applying them
// does what Do would have done.
func TestPlanChangesNothing(t *testing.T) {
	f := newFixture(t)
	before := f.snap()
	evs, err := f.x.Plan(f.home, GrantRole{System: f.sys, To: EmailPrincipal("Friend@Example.test"), Role: RoleViewer, ExpiresAt: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if f.snap() != before {
		t.Fatal("Plan published a snapshot")
	}
	want := Event{Kind: KindGrantPut, Stamp: evs[0].Stamp, Actor: f.home, System: f.sys,
		Grantee: EmailPrincipal("friend@example.test"), Role: RoleViewer, Expires: t0.Add(time.Hour).UnixMilli()}
	if len(evs) != 1 || evs[0] != want || evs[0].Stamp.IsZero() {
		t.Fatalf("planned %+v, want %+v", evs, want)
	}
	friend := f.account("friend@example.test")
	if _, err := f.x.Apply(evs...); err != nil {
		t.Fatal(err)
	}
	f.wantPerms(friend, f.sys, PermView)

	if _, err := f.x.Plan(f.sales, DeleteSystem{System: f.sys}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("Plan of a forbidden op: %v", err)
	}
}

// TestReplayStopsAtAnInvalidEvent: what came before the bad batch is
// applied and published, and the error names the problem.
func TestReplayStopsAtAnInvalidEvent(t *testing.T) {
	x := New(Options{Now: func() time.Time { return t0 }})
	good := x.Stamp([]Event{
		{Kind: KindAccountRegister, Account: 1, Email: "a@x.test"},
		{Kind: KindAccountVerify, Account: 1, Verified: true},
	})
	bad := x.Stamp([]Event{{Kind: KindAccountRegister, Account: 2, Email: "NOT NORMALIZED@x.test"}})
	late := x.Stamp([]Event{{Kind: KindAccountRegister, Account: 3, Email: "c@x.test"}})
	s, err := x.Replay(func(yield func([]Event, error) bool) {
		_ = yield(good, nil) && yield(bad, nil) && yield(late, nil)
	})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Replay error = %v, want ErrInvalid", err)
	}
	if s != x.Snapshot() {
		t.Fatal("Replay did not publish what it applied")
	}
	if a, ok := s.Account(1); !ok || !a.Active {
		t.Fatalf("account of the first batch: %+v %v", a, ok)
	}
	if _, ok := s.Account(3); ok {
		t.Fatal("Replay went on after the bad batch")
	}

	errLog := errors.New("log unreadable")
	if _, err := New(Options{}).Replay(func(yield func([]Event, error) bool) { yield(nil, errLog) }); !errors.Is(err, errLog) {
		t.Fatalf("Replay error = %v, want the log's", err)
	}
}
