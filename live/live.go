// Package live keeps what the dashboards show as "now": per system, the
// latest reading of each panel, power now (their sum), energy of the
// current local day and when it was last seen. The ingest path updates it
// from every record as it leaves the write-ahead log, before the readings
// reach ClickHouse, so All Locations is current to the second; package
// query reads it through Reader without ever blocking ingest. It is a
// package of its own so that query depends on the live state, not on the
// ingest path that feeds it.
package live

import (
	"sync"
	"sync/atomic"
	"time"
)

// Reader is what the query package reads of live state. Implementations
// are safe for concurrent use and never block on ingest.
type Reader interface {
	// Live returns the live state of a system; ok is false when the system
	// has never reported.
	Live(system uint32) (s System, ok bool)
	// MaxSystem is the highest system id with live state, so readers can
	// scan 1..MaxSystem.
	MaxSystem() uint32
}

// System is a system's live state at one moment.
type System struct {
	// LastSeen is the time of the newest reading (Unix ms).
	LastSeen int64
	// PowerDW is the sum of each panel's latest pin, in deciwatts.
	PowerDW int64
	// EnergyTodayMWh is the sum of wh since local midnight in the system's
	// time zone, in milliwatt-hours; Day is that local day (days since
	// 1970-01-01). Energy of a past day reads as zero today: see EnergyOn.
	EnergyTodayMWh uint64
	Day            int32
	// Panels is the number of panels seen.
	Panels int32
}

// EnergyOn returns the energy of local day `day`: the stored value if it is
// that day's, zero if the system has not produced on that day yet.
func (s System) EnergyOn(day int32) uint64 {
	if s.Day == day {
		return s.EnergyTodayMWh
	}
	return 0
}

// State keeps every system's live state, updated in O(1) per reading by the
// ingest path and read without locks by queries: each value is an atomic,
// and a reader may see a reading's power before its energy, never a torn
// value.
type State struct {
	mu     sync.Mutex // guards growing the chunk table
	chunks atomic.Pointer[[]*liveChunk]
	max    atomic.Uint32
	zones  ZoneFunc
}

// ZoneFunc returns a system's time zone, for its local midnight.
type ZoneFunc func(system uint32) *time.Location

const liveChunkBits = 12 // 4096 systems per chunk: growth copies a small table, never the states

type liveChunk [1 << liveChunkBits]systemState

type systemState struct {
	mu       sync.Mutex // serializes writers of this system
	lastSeen atomic.Int64
	power    atomic.Int64
	energy   atomic.Uint64
	day      atomic.Int32
	panels   atomic.Int32
	latest   map[string]*panelLatest // guarded by mu; pointers, so a reading updates its panel with one lookup
	// dayFrom and dayTo bound the current local day in Unix ms (guarded by
	// mu), so most readings find their day without a calendar computation.
	dayFrom, dayTo int64
	// applied is the WAL position of the last record applied (guarded by
	// mu): after a restart, records the restored state already holds are
	// skipped.
	applied uint64
}

type panelLatest struct {
	ts  int64
	pin int64 // deciwatts
}

// New returns empty live state. zones may be nil (UTC for every system).
func New(zones ZoneFunc) *State {
	l := &State{zones: zones}
	empty := []*liveChunk{}
	l.chunks.Store(&empty)
	return l
}

func (l *State) state(system uint32, create bool) *systemState {
	chunks := *l.chunks.Load()
	ci := int(system >> liveChunkBits)
	if ci < len(chunks) && chunks[ci] != nil {
		return &chunks[ci][system&(1<<liveChunkBits-1)]
	}
	if !create {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	chunks = *l.chunks.Load()
	if ci >= len(chunks) {
		grown := make([]*liveChunk, ci+1)
		copy(grown, chunks)
		chunks = grown
	} else {
		chunks = append([]*liveChunk(nil), chunks...)
	}
	if chunks[ci] == nil {
		chunks[ci] = new(liveChunk)
	}
	l.chunks.Store(&chunks)
	return &chunks[ci][system&(1<<liveChunkBits-1)]
}

// localDay is the day number of ms (Unix ms) in loc, with the bounds of
// that local day in Unix ms.
func localDay(ms int64, loc *time.Location) (day int32, from, to int64) {
	t := time.UnixMilli(ms).In(loc)
	y, m, d := t.Date()
	start := time.Date(y, m, d, 0, 0, 0, 0, loc)
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400), start.UnixMilli(), start.AddDate(0, 0, 1).UnixMilli()
}

func (l *State) zone(system uint32) *time.Location {
	if l.zones != nil {
		if z := l.zones(system); z != nil {
			return z
		}
	}
	return time.UTC
}

// Update is one reading's contribution to live state.
type Update struct {
	Panel string
	TS    int64 // Unix ms
	PinDW int64 // deciwatts
	WhMWh uint64
}

// Apply adds the readings of WAL record lsn, all of one system; records
// must come in LSN order, and one the state already holds (lsn at or below
// what Restore set) is skipped. A reading older than its panel's latest
// still counts toward energy of its day but does not change power now. The
// panel strings are kept: they must not be mutated afterwards.
func (l *State) Apply(system uint32, lsn uint64, readings []Update) {
	if len(readings) == 0 {
		return
	}
	s := l.state(system, true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if lsn != 0 && lsn <= s.applied {
		return
	}
	s.applied = max(s.applied, lsn)
	if s.latest == nil {
		s.latest = make(map[string]*panelLatest)
	}
	// The record's effect is summed here and published with one atomic
	// operation per value, not per reading.
	last := s.lastSeen.Load()
	var power int64
	var energy uint64
	var added int32
	for _, r := range readings {
		last = max(last, r.TS)
		switch p := s.latest[r.Panel]; {
		case p == nil:
			s.latest[r.Panel] = &panelLatest{ts: r.TS, pin: r.PinDW}
			power += r.PinDW
			added++
		case r.TS >= p.ts:
			power += r.PinDW - p.pin
			p.ts, p.pin = r.TS, r.PinDW
		}
		switch {
		case r.TS >= s.dayFrom && r.TS < s.dayTo:
			energy += r.WhMWh
		case r.TS >= s.dayTo:
			// A new local day: yesterday's energy is done. The zone is
			// looked up here, once a day per system, not per record.
			day, from, to := localDay(r.TS, l.zone(system))
			s.energy.Store(0)
			s.day.Store(day)
			s.dayFrom, s.dayTo = from, to
			energy = r.WhMWh
		}
		// Older than the current day: it belongs to a finished day.
	}
	s.lastSeen.Store(last)
	s.power.Add(power)
	s.energy.Add(energy)
	s.panels.Add(added)
	for {
		m := l.max.Load()
		if system <= m || l.max.CompareAndSwap(m, system) {
			break
		}
	}
}

// Restore sets a system's state as rebuilt from storage at start-up: the
// latest reading of each panel and the energy of a local day, as of WAL
// record lsn.
func (l *State) Restore(system uint32, lsn uint64, day int32, energyMWh uint64, panels []string, pins []int64, ts []int64) {
	s := l.state(system, true)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = lsn
	s.latest = make(map[string]*panelLatest, len(panels))
	var power, last int64
	for i, p := range panels {
		s.latest[p] = &panelLatest{ts: ts[i], pin: pins[i]}
		power += pins[i]
		last = max(last, ts[i])
	}
	s.power.Store(power)
	s.lastSeen.Store(last)
	s.panels.Store(int32(len(panels)))
	s.day.Store(day)
	s.energy.Store(energyMWh)
	loc := l.zone(system)
	y, m, d := time.Unix(int64(day)*86400, 0).UTC().Date()
	start := time.Date(y, m, d, 0, 0, 0, 0, loc)
	s.dayFrom, s.dayTo = start.UnixMilli(), start.AddDate(0, 0, 1).UnixMilli()
	for {
		m := l.max.Load()
		if system <= m || l.max.CompareAndSwap(m, system) {
			break
		}
	}
}

// Row is a system's whole live state, as persisted in system_live and
// given back to Restore at start-up.
type Row struct {
	System uint32
	LSN    uint64 // the WAL record it holds everything up to
	Day    int32  // the local day of Energy (days since 1970-01-01)
	Energy uint64 // mWh of Day
	LastTS int64  // Unix ms of the newest reading
	// Panels, Pins (deciwatts) and PanelTS (Unix ms) are each panel's latest
	// reading, index by index.
	Panels  []string
	Pins    []uint16
	PanelTS []int64
}

// Row copies a system's state into dst for persisting it (see Restore),
// reusing dst's slices; false if the system has no state.
func (l *State) Row(system uint32, dst *Row) bool {
	s := l.state(system, false)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	*dst = Row{System: system, LSN: s.applied, Day: s.day.Load(), Energy: s.energy.Load(), LastTS: s.lastSeen.Load(),
		Panels: dst.Panels[:0], Pins: dst.Pins[:0], PanelTS: dst.PanelTS[:0]}
	for p, v := range s.latest {
		dst.Panels = append(dst.Panels, p)
		dst.Pins = append(dst.Pins, uint16(v.pin))
		dst.PanelTS = append(dst.PanelTS, v.ts)
	}
	return true
}

// Live implements Reader.
func (l *State) Live(system uint32) (System, bool) {
	s := l.state(system, false)
	if s == nil {
		return System{}, false
	}
	last := s.lastSeen.Load()
	if last == 0 {
		return System{}, false
	}
	return System{
		LastSeen:       last,
		PowerDW:        s.power.Load(),
		EnergyTodayMWh: s.energy.Load(),
		Day:            s.day.Load(),
		Panels:         s.panels.Load(),
	}, true
}

// MaxSystem implements Reader.
func (l *State) MaxSystem() uint32 { return l.max.Load() }
