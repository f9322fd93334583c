package acl

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/internal/storetest"
	"github.com/fleetscope/fleetscope/store"
)

// logGen makes random events as node `node` would: stamps from its own
// clock, the node id in the stamp.
func logGen(seed uint64, now func() time.Time) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, 3)), clock: NewHLC(0, now), seen: map[Stamp]bool{}, now: now}
}

func eventFrom(g *gen, node uint16) Event {
	for {
		ev := g.event()
		ev.Stamp.Node = node
		if !g.seen[ev.Stamp] {
			g.seen[ev.Stamp] = true
			return ev
		}
	}
}

func openLogT(t *testing.T, s *store.Store, node uint16, now func() time.Time) (*Index, *Log) {
	t.Helper()
	x := New(Options{Node: node, Now: now})
	l, err := OpenLog(context.Background(), x, LogOptions{Store: s, PollInterval: time.Hour, Logger: storetest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return x, l
}

// The state folded from the stored log is the state the writing node had,
// and both equal the brute-force evaluation of the events.
func TestLogRebuildEqualsLiveState(t *testing.T) {
	s := storetest.Open(t)
	clock := time.Now()
	now := func() time.Time { return clock }
	x, l := openLogT(t, s, 1, now)
	g := logGen(11, now)
	var m model
	for i := range 600 {
		ev := eventFrom(g, 1)
		if err := l.Persist([]Event{ev}); err != nil {
			t.Fatal(err)
		}
		if _, err := x.Apply(ev); err != nil {
			t.Fatal(err)
		}
		m.events = append(m.events, ev)
		if i%100 == 0 {
			clock = clock.Add(time.Second)
		}
	}
	m.asOf = clock.UnixMilli()
	x.Expire(clock)
	check(t, x.Snapshot(), m.eval(), -1)

	y, _ := openLogT(t, s, 2, now)
	y.Expire(clock)
	check(t, y.Snapshot(), m.eval(), -2)
}

// Two nodes on one store, each making changes: after a poll each has the
// other's changes, and both equal the brute force over all events — also
// when concurrent changes hit the same registers.
func TestTwoNodesConverge(t *testing.T) {
	s := storetest.Open(t)
	clock := time.Now()
	now := func() time.Time { return clock }
	x1, l1 := openLogT(t, s, 1, now)
	x2, l2 := openLogT(t, s, 2, now)
	g := logGen(12, now)
	var m model
	ctx := context.Background()
	for round := range 10 {
		for range 40 {
			node, x, l := uint16(1), x1, l1
			if g.r.IntN(2) == 0 {
				node, x, l = 2, x2, l2
			}
			ev := eventFrom(g, node)
			if err := l.Persist([]Event{ev}); err != nil {
				t.Fatal(err)
			}
			if _, err := x.Apply(ev); err != nil {
				t.Fatal(err)
			}
			m.events = append(m.events, ev)
		}
		clock = clock.Add(300 * time.Millisecond)
		if err := l1.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l2.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		m.asOf = clock.UnixMilli()
		x1.Expire(clock)
		x2.Expire(clock)
		tr := m.eval()
		check(t, x1.Snapshot(), tr, round)
		check(t, x2.Snapshot(), tr, round)
	}
}

// A change made through Do on one node is visible to the other after its
// tailer's next poll.
func TestDoIsPersistedAndTailed(t *testing.T) {
	s := storetest.Open(t)
	x1, l1 := openLogT(t, s, 1, nil)
	x2, l2 := openLogT(t, s, 2, nil)
	if _, err := l1.Record([]Event{{Kind: KindAccountRegister, Account: 1, Email: "a@x.test"}, {Kind: KindAccountVerify, Account: 1, Verified: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l1.Do(1, CreateOrg{Org: 1, Name: "Sunny Installs"}); err != nil {
		t.Fatal(err)
	}
	if err := l2.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	o1, ok1 := x1.Snapshot().Org(1)
	o2, ok2 := x2.Snapshot().Org(1)
	if !ok1 || !ok2 || o1.Name != o2.Name || !x2.Snapshot().IsOrgAdmin(1, 1) {
		t.Fatalf("node 2 did not converge: %+v %v / %+v %v", o1, ok1, o2, ok2)
	}
}
