package acl

import (
	"sync"
	"time"
)

// zones caches loaded time zones by IANA name: a zone is loaded from the
// system's database once per process, and every system of a zone shares
// its *time.Location (ingest's local days, query's history buckets, the
// catalogue's per-system zones).
var zones sync.Map // string → *time.Location

// LoadZone returns the time zone named name and whether it is one a system
// may have: an IANA name the zone database knows. "Local" (the server's own
// zone, which differs between machines) and "" are not.
func LoadZone(name string) (*time.Location, bool) {
	if name == "" || name == "Local" {
		return time.UTC, false
	}
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), true
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC, false
	}
	zones.Store(name, loc)
	return loc, true
}

// Zone returns the time zone of a stored system: its zone, or UTC if the
// name is not one LoadZone accepts (records written before names were
// checked).
func Zone(name string) *time.Location {
	loc, _ := LoadZone(name)
	return loc
}

// SystemZone returns a system's time zone (UTC if the system does not
// exist): what ingest needs to find a reading's local day.
func (s *Snapshot) SystemZone(id SystemID) *time.Location {
	r := s.systems.get(uint32(id))
	if !r.live() {
		return time.UTC
	}
	_, _, _, tz := r.fields()
	return Zone(tz)
}
