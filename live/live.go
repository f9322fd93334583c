// Package live keeps what the dashboards show as "now": per system, the
// latest reading of each panel, power now (their sum), energy of the
// current local day and when it was last seen. The ingest path updates it
// from every record as it leaves the write-ahead log, before the readings
// reach ClickHouse, so All Locations is current to the second; package
// query reads it through Reader without ever blocking ingest. It is a
// package of its own so that query depends on the live state, not on the
// ingest path that feeds it.
//
// A reading counts once. A reading is identified by its system, panel and
// timestamp, and the same one may come again — resent by a gateway under a
// new seq, replayed after a restart. Each panel remembers the timestamps of
// its newest readings (the newest and seenSlots before it); a reading the
// panel remembers is a duplicate and changes nothing, and one older than
// everything the panel remembers is taken for one (its energy is not added
// to today's again): a gateway resending its backlog is common, a reading
// arriving after seenSlots newer ones of its panel is not. Such readings
// are stored all the same, and history and rollups count them once (see
// package store); only "energy today" may then miss one until the day ends.
// After a restart a panel remembers only its newest reading.
//
// Memory is bounded: a system has at most Options.MaxPanels panel labels
// (Admit refuses new ones beyond it, so the ingest path rejects their
// readings), a panel whose newest reading is Options.Silence older than its
// system's newest no longer counts in power now, and one Options.Forget
// older is forgotten — it leaves the panel count and frees its place.
package live

import (
	"cmp"
	"hash/maphash"
	"math"
	"slices"
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
	// Panels is the number of panels heard from within Options.Forget of
	// the system's newest reading.
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
	opts   Options
	// seed keys labelsHash: unknown to gateways, so that none can make
	// its labels collide with the list its system last had admitted.
	seed maphash.Seed
	// silenceMS and forgetMS are Options.Silence and Forget in ms.
	silenceMS, forgetMS int64
	// duplicates counts readings Apply skipped as already counted.
	duplicates atomic.Uint64
}

// Options configure live state. The zero value is valid: see each field.
type Options struct {
	// Zones gives each system's time zone, for its local midnight. Nil:
	// UTC for every system.
	Zones ZoneFunc
	// MaxPanels is the most panel labels a system has (Admit). Default
	// DefaultMaxPanels.
	MaxPanels int
	// Silence is how much older than its system's newest reading a panel's
	// newest may be and still count in power now. Default 15 minutes: a
	// panel optimizer reports every few seconds to minutes, and a panel
	// that stops (shaded out, failed, relabelled) must not hold its last
	// power for ever; query shows a whole system as offline after the same
	// time.
	Silence time.Duration
	// Forget is how long a panel may be silent before it is forgotten: it
	// leaves the panel count, its memory is freed, and its place under
	// MaxPanels too. Default 7 days: panels report only in daylight, and a
	// week without a reading outlasts any weather.
	Forget time.Duration
}

// DefaultMaxPanels is Options.MaxPanels when unset: 4096 panels is a 1.6 MW
// commercial roof behind one system — far beyond a residential one, and
// enough for the few plants that label every optimizer of a small field.
const DefaultMaxPanels = 4096

func (o *Options) setDefaults() {
	if o.MaxPanels <= 0 {
		o.MaxPanels = DefaultMaxPanels
	}
	if o.Silence <= 0 {
		o.Silence = 15 * time.Minute
	}
	if o.Forget <= 0 {
		o.Forget = 7 * 24 * time.Hour
	}
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
	latest   map[string]*panelState // guarded by mu; pointers, so a reading updates its panel with one lookup
	// pending are labels admitted whose first reading has not been applied
	// yet (guarded by mu), with the system's newest reading when they were:
	// they count toward MaxPanels, and are dropped if no reading comes.
	pending map[string]int64
	// dayFrom and dayTo bound the current local day in Unix ms (guarded by
	// mu), so most readings find their day without a calendar computation.
	dayFrom, dayTo int64
	// applied is the WAL position of the last record applied (guarded by
	// mu): after a restart, records the restored state already holds are
	// skipped.
	applied uint64
	// sweepAt is the newest-reading time at which the panels are next
	// checked for silence (guarded by mu).
	sweepAt int64
	// admitted is the labelsHash of the last label list Admit admitted
	// whole (guarded by mu; 0: none): each of its labels is in latest or
	// pending until a sweep or a restore drops one, which clears it. A
	// gateway posts the same labels request after request, so Admit is
	// then one hash instead of a map lookup per label.
	admitted uint64
}

// seenSlots is how many readings before its newest a panel remembers, to
// know a duplicate from a late reading: a gateway resending its last seven
// batches is found out (its newest alone catches the common resend of the
// last one). 7 makes a panel's state 48 bytes.
const seenSlots = 7

// noFloor: every reading counted older than the newest is in seen.
const noFloor = math.MaxUint32

// panelState is one panel's newest reading and the timestamps it
// remembers.
type panelState struct {
	ts    int64 // Unix ms of the newest reading
	pin   int32 // its power, deciwatts
	live  bool  // pin is part of power now (the panel is not silent)
	floor uint32
	// seen are the timestamps of readings counted before the newest, as
	// milliseconds before ts, ascending, 0 = none; every reading counted
	// less than floor ms before ts is among them (noFloor: every one).
	seen [seenSlots]uint32
}

// add classifies a reading of the panel at ts and remembers it: fresh is
// whether it was not counted before (a duplicate, or older than what the
// panel remembers, is not), newest whether it is the panel's newest.
func (p *panelState) add(ts int64) (fresh, newest bool) {
	switch {
	case ts > p.ts:
		d := ts - p.ts
		if p.ts != 0 {
			// Every remembered reading moves d further back, the old newest
			// among them; what no longer fits is forgotten behind the floor.
			floor := int64(p.floor)
			if p.floor != noFloor {
				floor = min(floor+d, noFloor-1)
			}
			next := [seenSlots + 1]int64{d}
			n := 1
			for _, o := range p.seen {
				if o != 0 {
					next[n] = int64(o) + d
					n++
				}
			}
			clear(p.seen[:])
			k := 0
			for _, o := range next[:n] {
				if o >= floor {
					break
				}
				if k == seenSlots || o >= noFloor {
					floor = min(o, noFloor-1)
					break
				}
				p.seen[k] = uint32(o)
				k++
			}
			p.floor = uint32(floor)
		}
		p.ts = ts
		return true, true
	case ts == p.ts:
		return false, false
	}
	d := p.ts - ts
	if d >= int64(p.floor) {
		return false, false // older than what the panel remembers
	}
	i, found := slices.BinarySearchFunc(p.seen[:p.seenLen()], uint32(d), cmp.Compare[uint32])
	if found {
		return false, false
	}
	if n := p.seenLen(); n == seenSlots {
		// Full: the oldest remembered (perhaps this one) is forgotten.
		if i == seenSlots {
			p.floor = uint32(d)
			return true, false
		}
		p.floor = p.seen[seenSlots-1]
		copy(p.seen[i+1:], p.seen[i:seenSlots-1])
	} else {
		copy(p.seen[i+1:n+1], p.seen[i:n])
	}
	p.seen[i] = uint32(d)
	return true, false
}

func (p *panelState) seenLen() int {
	n := 0
	for n < seenSlots && p.seen[n] != 0 {
		n++
	}
	return n
}

// New returns empty live state with default Options but Zones. zones may be
// nil (UTC for every system).
func New(zones ZoneFunc) *State { return NewState(Options{Zones: zones}) }

// NewState returns empty live state.
func NewState(opts Options) *State {
	opts.setDefaults()
	l := &State{opts: opts, seed: maphash.MakeSeed(), silenceMS: opts.Silence.Milliseconds(), forgetMS: opts.Forget.Milliseconds()}
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
	if l.opts.Zones != nil {
		if z := l.opts.Zones(system); z != nil {
			return z
		}
	}
	return time.UTC
}

// MaxPanels is the most panel labels a system has.
func (l *State) MaxPanels() int { return l.opts.MaxPanels }

// Admit checks the panel labels of one request of a system against
// MaxPanels, before its readings are made durable: a known label is
// admitted, a new one while the system has room (it then holds a place,
// until its first reading is applied or, if none comes, until the system's
// readings move Silence past it). admitted[i] reports labels[i]; Admit
// returns how many were refused. Labels are copied, not retained.
func (l *State) Admit(system uint32, labels [][]byte, admitted []bool) (refused int) {
	h := l.labelsHash(labels)
	s := l.state(system, true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if h != 0 && h == s.admitted {
		for i := range labels {
			admitted[i] = true
		}
		return 0
	}
	if refused = l.admit(s, labels, admitted); refused == 0 {
		s.admitted = h
	}
	return refused
}

// admit is Admit without its fast path. Requires s.mu.
func (l *State) admit(s *systemState, labels [][]byte, admitted []bool) (refused int) {
	for i, label := range labels {
		if _, ok := s.latest[string(label)]; ok {
			admitted[i] = true
			continue
		}
		if _, ok := s.pending[string(label)]; ok {
			admitted[i] = true
			continue
		}
		if len(s.latest)+len(s.pending) >= l.opts.MaxPanels {
			admitted[i] = false
			refused++
			continue
		}
		if s.pending == nil {
			s.pending = make(map[string]int64)
		}
		s.pending[string(label)] = s.lastSeen.Load()
		admitted[i] = true
	}
	return refused
}

// labelsHash identifies a list of labels, in order (Admit's fast path).
func (l *State) labelsHash(labels [][]byte) uint64 {
	var h maphash.Hash
	h.SetSeed(l.seed)
	var n [2]byte
	for _, label := range labels {
		if len(label) > 0xffff {
			return 0
		}
		n[0], n[1] = byte(len(label)), byte(len(label)>>8)
		h.Write(n[:])
		h.Write(label)
	}
	return h.Sum64()
}

// sweep takes panels silent for Silence out of power now and forgets those
// silent for Forget, and admitted labels that never reported; it returns
// the power and panel count to subtract. Requires s.mu.
func (l *State) sweep(s *systemState, last int64) (power int64, panels int32) {
	for label, p := range s.latest {
		switch {
		case p.ts < last-l.forgetMS:
			if p.live {
				power += int64(p.pin)
			}
			delete(s.latest, label)
			s.admitted = 0
			panels++
		case p.live && p.ts < last-l.silenceMS:
			power += int64(p.pin)
			p.live = false
		}
	}
	for label, at := range s.pending {
		switch {
		case at == 0:
			s.pending[label] = last // admitted before the system's first reading
		case at < last-l.silenceMS:
			delete(s.pending, label)
			s.admitted = 0
		}
	}
	return power, panels
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
// what Restore set) is skipped. A reading the state counted before (see the
// package documentation) changes nothing; Apply returns how many it
// skipped so. A reading older than its panel's newest still counts toward
// energy of its day but does not change power now. The panel strings are
// kept: they must not be mutated afterwards.
func (l *State) Apply(system uint32, lsn uint64, readings []Update) (duplicates int) {
	if len(readings) == 0 {
		return 0
	}
	s := l.state(system, true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if lsn != 0 && lsn <= s.applied {
		return 0
	}
	s.applied = max(s.applied, lsn)
	if s.latest == nil {
		s.latest = make(map[string]*panelState)
	}
	// The record's effect is summed here and published with one atomic
	// operation per value, not per reading.
	last := s.lastSeen.Load()
	for _, r := range readings {
		last = max(last, r.TS)
	}
	var power int64
	var energy uint64
	var added int32
	for _, r := range readings {
		p := s.latest[r.Panel]
		if p == nil {
			if len(s.latest) >= l.opts.MaxPanels {
				// Admitted once (a record replayed after a restart whose
				// state holds other panels): its energy counts, the panel
				// is not kept.
				e := l.energyOf(s, system, r, &energy)
				energy += e
				continue
			}
			p = &panelState{floor: noFloor}
			s.latest[r.Panel] = p
			delete(s.pending, r.Panel)
			added++
		}
		fresh, newest := p.add(r.TS)
		if !fresh {
			duplicates++
			continue
		}
		if newest {
			if p.live {
				power -= int64(p.pin)
			}
			p.pin = int32(r.PinDW)
			if p.live = r.TS >= last-l.silenceMS; p.live {
				power += r.PinDW
			}
		}
		e := l.energyOf(s, system, r, &energy)
		energy += e
	}
	if last >= s.sweepAt {
		// Once a minute of the system's readings: silent panels leave.
		dp, dn := l.sweep(s, last)
		power -= dp
		added -= dn
		s.sweepAt = last + min(l.silenceMS, 60_000)
	}
	s.lastSeen.Store(last)
	s.power.Add(power)
	s.energy.Add(energy)
	s.panels.Add(added)
	if duplicates > 0 {
		l.duplicates.Add(uint64(duplicates))
	}
	for {
		m := l.max.Load()
		if system <= m || l.max.CompareAndSwap(m, system) {
			break
		}
	}
	return duplicates
}

// energyOf returns the energy r adds to today's, the energy summed so far
// in this record being *sum: when r starts a new local day, yesterday's is
// done and the sum restarts (energyOf zeroes *sum and the stored energy).
// Requires s.mu.
func (l *State) energyOf(s *systemState, system uint32, r Update, sum *uint64) uint64 {
	switch {
	case r.TS >= s.dayFrom && r.TS < s.dayTo:
		return r.WhMWh
	case r.TS >= s.dayTo:
		// A new local day: yesterday's energy is done. The zone is looked
		// up here, once a day per system, not per record.
		day, from, to := localDay(r.TS, l.zone(system))
		s.energy.Store(0)
		s.day.Store(day)
		s.dayFrom, s.dayTo = from, to
		*sum = 0
		return r.WhMWh
	}
	return 0 // older than the current day: it belongs to a finished day
}

// Duplicates is how many readings Apply has skipped as counted before.
func (l *State) Duplicates() uint64 { return l.duplicates.Load() }

// Restore sets a system's state as rebuilt from storage at start-up: the
// latest reading of each panel and the energy of a local day, as of WAL
// record lsn. A panel remembers only that reading (see the package
// documentation); beyond MaxPanels the panels heard from last are kept.
func (l *State) Restore(system uint32, lsn uint64, day int32, energyMWh uint64, panels []string, pins []int64, ts []int64) {
	s := l.state(system, true)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = lsn
	var last int64
	for i := range panels {
		last = max(last, ts[i])
	}
	order := make([]int, len(panels))
	for i := range order {
		order[i] = i
	}
	if len(order) > l.opts.MaxPanels {
		slices.SortFunc(order, func(a, b int) int { return cmp.Compare(ts[b], ts[a]) })
		order = order[:l.opts.MaxPanels]
	}
	s.latest = make(map[string]*panelState, len(order))
	s.pending = nil
	s.admitted = 0
	var power int64
	for _, i := range order {
		p := &panelState{ts: ts[i], pin: int32(pins[i]), floor: 1, live: ts[i] >= last-l.silenceMS}
		if p.live {
			power += pins[i]
		}
		s.latest[panels[i]] = p
	}
	s.power.Store(power)
	s.lastSeen.Store(last)
	s.panels.Store(int32(len(s.latest)))
	s.sweepAt = 0
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
