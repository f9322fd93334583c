package query

import (
	"time"

	"github.com/fleetscope/fleetscope/acl"
)

// SystemDetail is GET /v1/systems/{id}: the location with its live state
// read now (not from the live view), its gateways and the caller's
// permissions on it.
type SystemDetail struct {
	Location
	Gateways    []acl.Gateway
	Permissions acl.Perm
	Created     time.Time
}

// System returns the detail of a system the caller may view.
func (s *Service) System(caller acl.AccountID, ref string) (SystemDetail, error) {
	v := s.view()
	sys, err := resolveSystem(v.snap, caller, ref, acl.PermView)
	if err != nil {
		return SystemDetail{}, err
	}
	id := uint32(sys.ID)
	st := StatusNever
	var d SystemDetail
	if s.opts.Live != nil {
		if sl, ok := s.opts.Live.Live(id); ok {
			loc := acl.Zone(sys.Timezone)
			now := s.opts.Now()
			d.EnergyMWh, d.LastSeen, d.Panels = sl.EnergyOn(localDay(now, loc)), sl.LastSeen, sl.Panels
			st = StatusOffline
			if now.UnixMilli()-sl.LastSeen <= s.opts.OnlineWindow.Milliseconds() {
				st, d.PowerDW = StatusOnline, max(sl.PowerDW, 0)
			}
		}
	}
	if !sys.Monitored {
		st, d.PowerDW = StatusUnmonitored, 0
	}
	live := d.Location
	d.Location = v.location(id, st)
	d.PowerDW, d.EnergyMWh, d.Panels, d.LastSeen = live.PowerDW, live.EnergyMWh, live.Panels, live.LastSeen
	d.Gateways = v.snap.Gateways(sys.ID)
	d.Permissions = v.snap.Perms(caller, sys.ID)
	d.Created = sys.Created
	return d, nil
}
