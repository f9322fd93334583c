package live

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func ms(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

func TestLivePowerIsSumOfLatestPanelPins(t *testing.T) {
	l := New(nil)
	l.Apply(7, 0, []Update{
		{Panel: "A1", TS: ms("2026-06-21T10:00:00Z"), PinDW: 3000, WhMWh: 50_000},
		{Panel: "A2", TS: ms("2026-06-21T10:00:00Z"), PinDW: 2000, WhMWh: 30_000},
	})
	l.Apply(7, 0, []Update{
		{Panel: "A1", TS: ms("2026-06-21T10:01:00Z"), PinDW: 3500, WhMWh: 55_000},
		// Late reading of A2: counts toward energy, not toward power now.
		{Panel: "A2", TS: ms("2026-06-21T09:59:00Z"), PinDW: 100, WhMWh: 1_000},
	})
	got, ok := l.Live(7)
	if !ok {
		t.Fatal("no live state")
	}
	want := System{LastSeen: ms("2026-06-21T10:01:00Z"), PowerDW: 5500, EnergyTodayMWh: 136_000, Day: got.Day, Panels: 2}
	if got != want {
		t.Fatalf("live = %+v, want %+v", got, want)
	}
	if _, ok := l.Live(8); ok {
		t.Fatal("a system that never reported has live state")
	}
}

func TestLiveEnergyResetsAtLocalMidnight(t *testing.T) {
	sydney, err := time.LoadLocation("Australia/Sydney")
	if err != nil {
		t.Skip("no time zone database")
	}
	l := New(func(uint32) *time.Location { return sydney })
	// 13:30 UTC is 23:30 in Sydney (AEST, +10): the local day ends at 14:00 UTC.
	l.Apply(1, 0, []Update{{Panel: "A1", TS: ms("2026-06-21T13:30:00Z"), PinDW: 10, WhMWh: 700}})
	before, _ := l.Live(1)
	l.Apply(1, 0, []Update{{Panel: "A1", TS: ms("2026-06-21T14:10:00Z"), PinDW: 10, WhMWh: 300}})
	after, _ := l.Live(1)
	if before.EnergyTodayMWh != 700 || after.EnergyTodayMWh != 300 || after.Day != before.Day+1 {
		t.Fatalf("before %+v after %+v", before, after)
	}
	// A straggler from the finished day does not leak into today.
	l.Apply(1, 0, []Update{{Panel: "A1", TS: ms("2026-06-21T13:50:00Z"), PinDW: 10, WhMWh: 999}})
	if got, _ := l.Live(1); got.EnergyTodayMWh != 300 || got.EnergyOn(after.Day) != 300 || got.EnergyOn(after.Day+1) != 0 {
		t.Fatalf("after straggler %+v", got)
	}
}

func TestLiveRestoreThenApply(t *testing.T) {
	l := New(nil)
	day := int32(ms("2026-06-21T00:00:00Z") / 86_400_000)
	l.Restore(3, 0, day, 10_000, []string{"A1", "A2"}, []int64{100, 200}, []int64{ms("2026-06-21T10:00:00Z"), ms("2026-06-21T10:00:00Z")})
	l.Apply(3, 0, []Update{{Panel: "A1", TS: ms("2026-06-21T10:01:00Z"), PinDW: 150, WhMWh: 5}})
	got, _ := l.Live(3)
	if got.PowerDW != 350 || got.EnergyTodayMWh != 10_005 || got.Panels != 2 {
		t.Fatalf("got %+v", got)
	}
	var row Row
	if !l.Row(3, &row) || len(row.Panels) != 2 || row.Energy != 10_005 {
		t.Fatalf("row %+v", row)
	}
}

// Writers of many systems and readers run at once (run with -race).
func TestLiveConcurrentWritersAndReaders(t *testing.T) {
	l := New(nil)
	var wg sync.WaitGroup
	base := ms("2026-06-21T10:00:00Z")
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				sys := uint32(w*10_000 + i%50 + 1)
				l.Apply(sys, 0, []Update{{Panel: "A1", TS: base + int64(i), PinDW: 10, WhMWh: 1}})
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 2000 {
			for sys := uint32(1); sys <= l.MaxSystem(); sys += 997 {
				l.Live(sys)
			}
		}
	}()
	wg.Wait()
	var total uint64
	for sys := uint32(1); sys <= l.MaxSystem(); sys++ {
		if s, ok := l.Live(sys); ok {
			total += s.EnergyTodayMWh
			if s.PowerDW != 10 || s.Panels != 1 {
				t.Fatalf("system %d: %+v", sys, s)
			}
		}
	}
	if total != 4*2000 {
		t.Fatalf("energy total %d, want %d", total, 4*2000)
	}
}

// After a restart the WAL is replayed from the committed point; records the
// restored state already holds must not count twice.
func TestLiveSkipsRecordsTheRestoredStateHolds(t *testing.T) {
	l := New(nil)
	day := int32(ms("2026-06-21T00:00:00Z") / 86_400_000)
	l.Restore(3, 41, day, 1_000, []string{"A1"}, []int64{100}, []int64{ms("2026-06-21T10:00:00Z")})
	l.Apply(3, 40, []Update{{Panel: "A1", TS: ms("2026-06-21T09:59:00Z"), PinDW: 90, WhMWh: 7}})
	l.Apply(3, 41, []Update{{Panel: "A1", TS: ms("2026-06-21T10:00:00Z"), PinDW: 100, WhMWh: 8}})
	l.Apply(3, 42, []Update{{Panel: "A1", TS: ms("2026-06-21T10:01:00Z"), PinDW: 120, WhMWh: 9}})
	if got, _ := l.Live(3); got.EnergyTodayMWh != 1_009 || got.PowerDW != 120 {
		t.Fatalf("got %+v", got)
	}
}

func TestLiveCountsAReadingOnce(t *testing.T) {
	l := New(nil)
	batch := func(ts string, wh uint64) []Update {
		var out []Update
		for _, p := range []string{"A1", "A2", "A3"} {
			out = append(out, Update{Panel: p, TS: ms(ts), PinDW: 1000, WhMWh: wh})
		}
		return out
	}
	l.Apply(1, 1, batch("2026-06-21T10:00:00Z", 10))
	l.Apply(1, 2, batch("2026-06-21T10:01:00Z", 20))
	// The same readings again, under other seqs (other records).
	if d := l.Apply(1, 3, batch("2026-06-21T10:01:00Z", 20)); d != 3 {
		t.Fatalf("resent newest batch: %d duplicates, want 3", d)
	}
	if d := l.Apply(1, 4, batch("2026-06-21T10:00:00Z", 10)); d != 3 {
		t.Fatalf("resent older batch: %d duplicates, want 3", d)
	}
	// A late reading never seen before counts.
	if d := l.Apply(1, 5, []Update{{Panel: "A2", TS: ms("2026-06-21T10:00:30Z"), PinDW: 1, WhMWh: 5}}); d != 0 {
		t.Fatalf("late reading taken for a duplicate")
	}
	got, _ := l.Live(1)
	if got.EnergyTodayMWh != 3*10+3*20+5 || got.PowerDW != 3000 || got.Panels != 3 {
		t.Fatalf("live = %+v", got)
	}
	if l.Duplicates() != 6 {
		t.Fatalf("duplicates %d, want 6", l.Duplicates())
	}
}

// A panel remembers its newest reading and seenSlots before it; whatever
// order the readings come in, none counts twice, and every reading that
// arrives while fewer than seenSlots newer ones of its panel have counts.
func TestPanelStateNeverCountsTwice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 2000 {
		var p panelState
		p.floor = noFloor
		counted := map[int64]bool{}
		base := int64(1_750_000_000_000)
		// Readings a minute apart, delivered with local disorder and
		// repeats of recent ones; every few rounds a far older one too.
		var order []int64
		key := map[int64]float64{}
		for i := range 40 {
			ts := base + int64(i)*60_000
			order = append(order, ts)
			key[ts] = float64(i) + 3*rng.Float64() // each at most 3 places out of order
		}
		slices.SortFunc(order, func(a, b int64) int { return cmp.Compare(key[a], key[b]) })
		var seq []int64
		for i, ts := range order {
			seq = append(seq, ts)
			if rng.IntN(3) == 0 && i > 0 {
				seq = append(seq, order[max(0, i-rng.IntN(5))])
			}
			if round%7 == 0 && rng.IntN(10) == 0 {
				seq = append(seq, base-int64(rng.IntN(1e9)))
			}
		}
		for _, ts := range seq {
			fresh, _ := p.add(ts)
			if fresh && counted[ts] {
				t.Fatalf("round %d: %d counted twice (state %+v)", round, ts, p)
			}
			if fresh {
				counted[ts] = true
			}
		}
		for _, ts := range order {
			if !counted[ts] {
				t.Fatalf("round %d: reading %d never counted (order %v)", round, ts, order)
			}
		}
	}
}

func TestLiveSilentPanelsLeavePowerNow(t *testing.T) {
	l := NewState(Options{Silence: 15 * time.Minute, Forget: time.Hour})
	at := func(s string, panels ...string) []Update {
		var out []Update
		for _, p := range panels {
			out = append(out, Update{Panel: p, TS: ms(s), PinDW: 1000, WhMWh: 1})
		}
		return out
	}
	l.Apply(1, 1, at("2026-06-21T10:00:00Z", "A1", "A2", "A3"))
	if got, _ := l.Live(1); got.PowerDW != 3000 {
		t.Fatalf("power %d", got.PowerDW)
	}
	// A3 goes quiet: 14 minutes later it still counts, 16 minutes later
	// it does not; it is still a panel of the system.
	l.Apply(1, 2, at("2026-06-21T10:14:00Z", "A1", "A2"))
	if got, _ := l.Live(1); got.PowerDW != 3000 {
		t.Fatalf("after 14 min: power %d, want 3000", got.PowerDW)
	}
	l.Apply(1, 3, at("2026-06-21T10:16:00Z", "A1", "A2"))
	if got, _ := l.Live(1); got.PowerDW != 2000 || got.Panels != 3 {
		t.Fatalf("after 16 min: %+v, want power 2000 of 3 panels", got)
	}
	// It reports again: back in power now.
	l.Apply(1, 4, at("2026-06-21T10:17:00Z", "A3"))
	if got, _ := l.Live(1); got.PowerDW != 3000 {
		t.Fatalf("A3 back: power %d", got.PowerDW)
	}
	// Silent past Forget: forgotten.
	l.Apply(1, 5, at("2026-06-21T11:30:00Z", "A1"))
	if got, _ := l.Live(1); got.PowerDW != 1000 || got.Panels != 1 {
		t.Fatalf("after forgetting: %+v, want 1 panel of 1000 dW", got)
	}
	var row Row
	if l.Row(1, &row); len(row.Panels) != 1 {
		t.Fatalf("row keeps forgotten panels: %v", row.Panels)
	}
}

func TestLiveAdmitCapsPanels(t *testing.T) {
	l := NewState(Options{MaxPanels: 4, Silence: time.Minute})
	labels := func(ls ...string) [][]byte {
		var out [][]byte
		for _, s := range ls {
			out = append(out, []byte(s))
		}
		return out
	}
	ok := make([]bool, 8)
	if n := l.Admit(1, labels("A1", "A2", "A3"), ok); n != 0 {
		t.Fatalf("refused %d", n)
	}
	l.Apply(1, 1, []Update{{Panel: "A1", TS: ms("2026-06-21T10:00:00Z"), PinDW: 1}, {Panel: "A2", TS: ms("2026-06-21T10:00:00Z"), PinDW: 1}})
	// A3 is still pending: it holds its place. Known labels pass, new ones
	// fill the last place and no more.
	if n := l.Admit(1, labels("A1", "B1", "B2", "A3"), ok); n != 1 || !ok[0] || !ok[1] || ok[2] || !ok[3] {
		t.Fatalf("refused %d, admitted %v", n, ok[:4])
	}
	if n := l.Admit(2, labels("B1"), ok); n != 0 {
		t.Fatal("another system's panels count")
	}
	// An admitted label that never reports gives its place back once the
	// system's readings move past it.
	l.Apply(1, 2, []Update{{Panel: "B1", TS: ms("2026-06-21T10:05:00Z"), PinDW: 1}})
	if n := l.Admit(1, labels("C1", "C2"), ok); n != 1 {
		t.Fatalf("after A3 expired: refused %d, want 1", n)
	}
	// Restoring more panels than the cap keeps those heard from last, and
	// those silent for a minute (Silence here) are not in power now.
	l.Restore(3, 0, 0, 0, []string{"A1", "A2", "A3", "A4", "A5", "A6"}, []int64{1, 2, 3, 4, 5, 6},
		[]int64{ms("2026-06-21T10:00:00Z"), ms("2026-06-21T10:06:00Z"), ms("2026-06-21T10:01:00Z"), ms("2026-06-21T10:05:00Z"),
			ms("2026-06-21T10:04:00Z"), ms("2026-06-21T10:03:00Z")})
	var row Row
	l.Row(3, &row)
	if got, _ := l.Live(3); got.Panels != 4 || len(row.Panels) != 4 || got.PowerDW != 2+4 {
		t.Fatalf("restored %+v (%v)", got, row.Panels)
	}
}

// Admit's fast path (a list admitted whole before) must not outlive a
// label of that list leaving the system.
func TestLiveAdmitAgainAfterSweep(t *testing.T) {
	l := NewState(Options{MaxPanels: 2, Silence: time.Minute})
	labels := func(ls ...string) [][]byte {
		var out [][]byte
		for _, s := range ls {
			out = append(out, []byte(s))
		}
		return out
	}
	ok := make([]bool, 4)
	for range 2 {
		if n := l.Admit(1, labels("P1", "P2"), ok); n != 0 || !ok[0] || !ok[1] {
			t.Fatalf("refused %d, admitted %v", n, ok[:2])
		}
	}
	l.Apply(1, 1, []Update{{Panel: "P1", TS: ms("2026-06-21T10:00:00Z"), PinDW: 1}})
	l.Apply(1, 2, []Update{{Panel: "P1", TS: ms("2026-06-21T10:05:00Z"), PinDW: 1}}) // P2 never reported: its place is free
	if n := l.Admit(1, labels("N1", "N2"), ok); n != 1 || !ok[0] || ok[1] {
		t.Fatalf("refused %d, admitted %v", n, ok[:2])
	}
	if n := l.Admit(1, labels("P1", "P2"), ok); n != 1 || !ok[0] || ok[1] {
		t.Fatalf("P2 came back past the cap: refused %d, admitted %v", n, ok[:2])
	}
}
