package acl

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadersDuringWrites runs readers against a writer (meant for -race):
// every snapshot a reader takes is internally consistent, and snapshots only
// move forward.
func TestReadersDuringWrites(t *testing.T) {
	defer setThresholds(8, 2)() // exercise the shared bitmaps of the large form
	clockNow := func() time.Time { return t0 }
	x := New(Options{Now: clockNow})
	g := &gen{r: rand.New(rand.NewPCG(7, 8)), clock: NewHLC(0, clockNow), seen: map[Stamp]bool{}, now: clockNow}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			var last uint64
			for !stop.Load() {
				s := x.Snapshot()
				if s.Seq() < last {
					t.Errorf("snapshot %d after %d", s.Seq(), last)
					return
				}
				last = s.Seq()
				for a := AccountID(1); a <= uAccounts; a++ {
					for _, p := range []Perm{PermView, PermData, PermAdmin} {
						bm := s.Systems(a, p)
						for sys := range uint32(uSystems) {
							if s.Perms(a, SystemID(sys)).Has(p) != bm.Contains(sys) || s.Can(a, p, SystemID(sys)) != bm.Contains(sys) {
								t.Errorf("snapshot %d: account %d: Systems, Perms and Can disagree on %s", s.Seq(), a, p)
								return
							}
						}
					}
				}
			}
		})
	}
	for range 3000 {
		if _, err := x.Apply(g.event()); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
}

// TestRunExpiry: the background loop drops an expired grant without anyone
// calling Expire.
func TestRunExpiry(t *testing.T) {
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	x := New(Options{Now: clock})
	evs := x.Stamp([]Event{
		{Kind: KindAccountRegister, Account: 1, Email: "a@x.test"},
		{Kind: KindAccountVerify, Account: 1, Verified: true},
		{Kind: KindSystemPut, System: 3, GUID: "G"},
		{Kind: KindGrantPut, System: 3, Grantee: EmailPrincipal("a@x.test"), Role: RoleViewer, Expires: t0.Add(time.Second).UnixMilli()},
	})
	if _, err := x.Apply(evs...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go x.RunExpiry(ctx, time.Millisecond)
	if !x.Snapshot().Can(1, PermView, 3) {
		t.Fatal("grant does not count before it expires")
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for x.Snapshot().Can(1, PermView, 3) {
		if time.Now().After(deadline) {
			t.Fatal("RunExpiry did not expire the grant")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestOnChange reports what changed, in order, for a dependent index.
func TestOnChange(t *testing.T) {
	var got []Change
	h := &harness{t: t, now: t0, nextAcct: 1, nextOrg: 1}
	h.x = New(Options{Now: func() time.Time { return h.now }, OnChange: func(c Change) { got = append(got, c) }})
	boss := h.account("boss@x.test")
	org := h.org(boss, "X")
	got = nil
	sys := h.commission(boss, org, "home@x.test")
	if len(got) != 1 || !got[0].Systems.Contains(uint32(sys)) || got[0].Snapshot != h.snap() {
		t.Fatalf("commission: %+v", got)
	}
	if e := got[0].Snapshot.Emails(sys); len(e) != 1 || e[0] != "home@x.test" {
		t.Fatalf("e-mails of the new system: %v", e)
	}
	got = nil
	h.must(boss, PutMemberRole{Org: org, Name: "r", Perms: PermView})
	if len(got) != 1 || len(got[0].Orgs) != 1 || got[0].Orgs[0] != org {
		t.Fatalf("member role: %+v", got)
	}
	got = nil
	h.x.Expire(h.now) // nothing expires: no call
	if len(got) != 0 {
		t.Fatalf("empty change reported: %+v", got)
	}
}
