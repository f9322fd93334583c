package acl

import (
	"cmp"
	"sync/atomic"
	"time"
)

// Stamp orders events: a hybrid logical clock reading plus the id of the node
// that made the event. (HLC, Node) is unique per event because a node's clock
// never returns the same reading twice, so stamps totally order all events
// and every node resolves concurrent changes to the same register the same
// way: the greater stamp wins.
type Stamp struct {
	HLC  uint64 // Unix milliseconds << 16 | logical counter
	Node uint16
}

// Compare returns -1, 0 or +1 as s is before, equal to or after t.
func (s Stamp) Compare(t Stamp) int {
	if c := cmp.Compare(s.HLC, t.HLC); c != 0 {
		return c
	}
	return cmp.Compare(s.Node, t.Node)
}

// After reports whether s is after t.
func (s Stamp) After(t Stamp) bool { return s.Compare(t) > 0 }

// IsZero reports whether s is unset.
func (s Stamp) IsZero() bool { return s == Stamp{} }

// Time returns the wall-clock part of the stamp: when the event was made,
// to the millisecond, as seen by a clock that never runs backwards.
func (s Stamp) Time() time.Time { return time.UnixMilli(int64(s.HLC >> hlcLogicalBits)).UTC() }

const hlcLogicalBits = 16

// HLC is a hybrid logical clock (Kulkarni et al., 2014) packed in a uint64:
// the high 48 bits are Unix milliseconds, the low 16 a counter that breaks
// ties within a millisecond. A reading is never smaller than any reading it
// returned or observed before, and stays close to wall time, so an event
// made after seeing another is stamped after it even when the nodes' clocks
// disagree. It is safe for concurrent use.
type HLC struct {
	node uint16
	now  func() time.Time
	last atomic.Uint64
}

// NewHLC returns a clock for node. now is the wall clock; nil means time.Now.
func NewHLC(node uint16, now func() time.Time) *HLC {
	if now == nil {
		now = time.Now
	}
	return &HLC{node: node, now: now}
}

// Node returns the node id the clock stamps with.
func (c *HLC) Node() uint16 { return c.node }

// Now returns a new stamp, after every stamp the clock returned or observed.
func (c *HLC) Now() Stamp {
	wall := uint64(c.now().UnixMilli()) << hlcLogicalBits
	for {
		last := c.last.Load()
		next := max(wall, last+1)
		if c.last.CompareAndSwap(last, next) {
			return Stamp{HLC: next, Node: c.node}
		}
	}
}

// Observe moves the clock past a stamp received from another node, so that
// the next local event is ordered after it.
func (c *HLC) Observe(s Stamp) {
	for {
		last := c.last.Load()
		if s.HLC <= last || c.last.CompareAndSwap(last, s.HLC) {
			return
		}
	}
}
