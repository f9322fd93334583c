package acl

import (
	"iter"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// batched groups a sequence of events into batches of up to n, for Replay.
// The batches are reused: Replay does not retain them.
func batched(evs iter.Seq[Event], n int) iter.Seq2[[]Event, error] {
	return func(yield func([]Event, error) bool) {
		b := make([]Event, 0, n)
		for ev := range evs {
			b = append(b, ev)
			if len(b) == n {
				if !yield(b, nil) {
					return
				}
				b = b[:0]
			}
		}
		if len(b) > 0 {
			yield(b, nil)
		}
	}
}

// rebuild replays s's export into a fresh index.
func rebuild(t *testing.T, s *Snapshot, opts Options) *Index {
	t.Helper()
	y := New(opts)
	if _, err := y.Replay(batched(s.Export(), 1+rand.IntN(64))); err != nil {
		t.Fatalf("replay of the export: %v", err)
	}
	return y
}

// exportKey renders an export as sorted encoded events: equal keys, equal
// sets of events.
func exportKey(t *testing.T, s *Snapshot) []string {
	t.Helper()
	var out []string
	for ev := range s.Export() {
		b, err := ev.MarshalBinary()
		if err != nil {
			t.Fatalf("exported an invalid event %+v: %v", ev, err)
		}
		out = append(out, string(b))
	}
	slices.Sort(out)
	return out
}

// TestExportRebuildsState folds random events and operations into an index,
// rebuilds a second index from its export, and requires the two to answer
// every lookup alike and as the brute force says. Then both take the same
// further events — fresh ones, duplicates, and late ones with old stamps that
// must lose to the tombstones and registers the export carried — and must
// still agree, with each other and with the brute force, and export the same
// set of events. Round after round, with time passing and grants expiring.
func TestExportRebuildsState(t *testing.T) {
	t.Run("small sets", testExportRebuildsState)
	t.Run("large sets", func(t *testing.T) {
		defer setThresholds(3, 1)()
		testExportRebuildsState(t)
	})
}

func testExportRebuildsState(t *testing.T) {
	seed := testSeed(t)
	r := rand.New(rand.NewPCG(seed, 0xc0de))
	now := t0
	clockNow := func() time.Time { return now }
	g := &gen{r: r, clock: NewHLC(0, clockNow), seen: map[Stamp]bool{}, now: clockNow}
	m := &model{asOf: now.UnixMilli()}
	x := New(Options{Node: 7, Now: clockNow})
	var y *Index // rebuilt from x's export at the start of each round
	var held []Event
	deliver := func(evs ...Event) {
		t.Helper()
		for _, z := range []*Index{x, y} {
			if _, err := z.Apply(evs...); err != nil {
				t.Fatal(err)
			}
		}
		m.events = append(m.events, evs...)
	}
	rounds := max(*flagOps/100, 10)
	for round := range rounds {
		y = rebuild(t, x.Snapshot(), Options{Node: 8, Now: clockNow})
		if d, e := dump(x.Snapshot()), dump(y.Snapshot()); d != e {
			t.Fatalf("round %d: rebuilt state differs from the original:\n%s", round, firstDiff(d, e))
		}
		check(t, y.Snapshot(), m.eval(), round)
		if a, b := exportKey(t, x.Snapshot()), exportKey(t, y.Snapshot()); !slices.Equal(a, b) {
			t.Fatalf("round %d: the rebuilt state exports %d events, the original %d", round, len(b), len(a))
		}
		for range 100 {
			switch n := r.IntN(100); {
			case n < 5:
				now = now.Add(time.Duration(r.IntN(3000)) * time.Millisecond)
				x.Expire(now)
				y.Expire(now)
				m.asOf = now.UnixMilli()
			case n < 15:
				op := g.op(x.Snapshot())
				var evs []Event
				if _, err := x.Do(g.actor(x.Snapshot(), op), op, func(e []Event) error {
					evs = append(evs, e...)
					return nil
				}); err == nil {
					for _, e := range evs {
						g.seen[e.Stamp] = true
					}
					if _, err := y.Apply(evs...); err != nil {
						t.Fatal(err)
					}
					m.events = append(m.events, evs...)
				}
			case n < 20 && len(m.events) > 0:
				deliver(m.events[r.IntN(len(m.events))]) // a duplicate
			case n < 30 && len(held) > 0:
				// A late delivery: an event made rounds ago, older than much
				// of what both indexes hold.
				i := r.IntN(len(held))
				deliver(held[i])
				held = slices.Delete(held, i, i+1)
			default:
				ev := g.event()
				if r.IntN(5) == 0 {
					held = append(held, ev)
					continue
				}
				deliver(ev)
			}
		}
		if d, e := dump(x.Snapshot()), dump(y.Snapshot()); d != e {
			t.Fatalf("round %d: after the same events the rebuilt state differs:\n%s", round, firstDiff(d, e))
		}
		check(t, y.Snapshot(), m.eval(), round)
		if a, b := exportKey(t, x.Snapshot()), exportKey(t, y.Snapshot()); !slices.Equal(a, b) {
			t.Fatalf("round %d: after the same events the exports differ (%d and %d events)", round, len(a), len(b))
		}
	}
	t.Logf("%d rounds, %d events, %d exported at the end, %d never delivered", rounds, len(m.events), len(exportKey(t, x.Snapshot())), len(held))
}

// TestExportIsCanonical: the export is a function of the set of events —
// the same whatever their order, batching and duplicates — and minimal: one
// event per register, each an event that was applied (its actor aside), or
// for a gateway whose put named a deleted system, a tombstone with the put's
// stamp.
func TestExportIsCanonical(t *testing.T) {
	seed := testSeed(t)
	r := rand.New(rand.NewPCG(seed, 0xca70))
	clockNow := func() time.Time { return t0 }
	g := &gen{r: r, clock: NewHLC(0, clockNow), seen: map[Stamp]bool{}, now: clockNow}
	evs := make([]Event, max(*flagOps/2, 200))
	for i := range evs {
		evs[i] = g.event()
	}
	byStamp := map[Stamp]Event{}
	for _, ev := range evs {
		byStamp[ev.Stamp] = ev
	}
	var ref []string
	for i := range 5 {
		sh := slices.Clone(evs)
		if i > 0 {
			sh = append(sh, evs[:len(evs)/3]...)
			r.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
		}
		x := New(Options{Now: clockNow})
		for len(sh) > 0 {
			k := min(len(sh), 1+r.IntN(30))
			if _, err := x.Apply(sh[:k]...); err != nil {
				t.Fatal(err)
			}
			sh = sh[k:]
		}
		key := exportKey(t, x.Snapshot())
		if ref == nil {
			ref = key
			seen := map[Stamp]bool{}
			for ev := range x.Snapshot().Export() {
				if seen[ev.Stamp] {
					t.Fatalf("two exported events share stamp %v: not one event per register", ev.Stamp)
				}
				seen[ev.Stamp] = true
				orig, ok := byStamp[ev.Stamp]
				orig.Actor = Platform
				switch {
				case ok && orig == ev:
				case ok && ev.Kind == KindGatewayDelete && (orig.Kind == KindGatewayPut || orig.Kind == KindGatewayRekey) && orig.Gateway == ev.Gateway && orig.System == ev.System:
				case ok && ev.Kind == KindSystemPut && orig.Kind == KindSystemPut && orig.System == ev.System:
					// An edited system's commissioning put, with its current
					// fields: it keeps when the system was commissioned.
				default:
					t.Fatalf("exported %+v, which no applied event accounts for (same stamp: %+v %v)", ev, orig, ok)
				}
			}
			continue
		}
		if !slices.Equal(key, ref) {
			t.Fatalf("order %d exports %d events, the first order %d", i, len(key), len(ref))
		}
	}
	t.Logf("%d events, %d exported", len(evs), len(ref))
}
