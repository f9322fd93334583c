package live

import (
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
