package acl

import (
	"sync"
	"testing"
	"time"
)

func TestHLCIsMonotonicWhenTheWallClockIsNot(t *testing.T) {
	wall := t0
	c := NewHLC(3, func() time.Time { return wall })
	prev := c.Now()
	for i := range 1000 {
		if i%100 == 0 {
			wall = wall.Add(-time.Second) // the wall clock jumps back
		}
		s := c.Now()
		if !s.After(prev) || s.Node != 3 {
			t.Fatalf("stamp %d: %+v after %+v", i, s, prev)
		}
		prev = s
	}
	if got := prev.Time(); got.Before(t0) {
		t.Fatalf("stamp time %v went back before %v", got, t0)
	}
}

func TestHLCFollowsTheWallClock(t *testing.T) {
	wall := t0
	c := NewHLC(1, func() time.Time { return wall })
	c.Now()
	wall = wall.Add(time.Minute)
	if got := c.Now().Time(); !got.Equal(wall) {
		t.Fatalf("stamp time %v, wall %v", got, wall)
	}
}

func TestHLCObserveOrdersLaterEvents(t *testing.T) {
	c := NewHLC(1, func() time.Time { return t0 })
	remote := Stamp{HLC: uint64(t0.Add(time.Hour).UnixMilli()) << 16, Node: 2}
	c.Observe(remote)
	if s := c.Now(); !s.After(remote) {
		t.Fatalf("stamp %+v not after observed %+v", s, remote)
	}
	c.Observe(Stamp{HLC: 1}) // an old stamp does not move the clock back
	if s := c.Now(); !s.After(remote) {
		t.Fatalf("stamp %+v not after observed %+v", s, remote)
	}
}

func TestHLCConcurrentStampsAreUnique(t *testing.T) {
	c := NewHLC(1, func() time.Time { return t0 })
	var mu sync.Mutex
	seen := map[Stamp]bool{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				s := c.Now()
				mu.Lock()
				if seen[s] {
					t.Errorf("duplicate stamp %+v", s)
				}
				seen[s] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func TestStampCompare(t *testing.T) {
	a, b, c := Stamp{1, 2}, Stamp{1, 3}, Stamp{2, 0}
	if a.Compare(b) >= 0 || b.Compare(c) >= 0 || c.Compare(a) <= 0 || a.Compare(a) != 0 {
		t.Fatal("stamps do not order by (HLC, node)")
	}
}
