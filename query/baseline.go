package query

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/rollup"
)

// FleetEnergyBruteForce is fleet energy's baseline, what a team would write
// without fleetscope's planner: every system's energy over [from, to) summed
// from the rollups — days, hours, quarter hours and minutes, tiled as for
// one system's history, up to where they reach — for every system in the
// tables, the caller's kept afterwards and sorted by energy. It answers
// what FleetEnergy answers (ids and energies, in -energy order, without
// the zeros) and where its sums end; bench times one against the other.
func (s *Service) FleetEnergyBruteForce(ctx context.Context, caller acl.AccountID, from, to time.Time) ([]SystemEnergy, time.Time, error) {
	from, to = from.UTC().Truncate(time.Minute), to.UTC().Truncate(time.Minute)
	bm := s.opts.ACL.Snapshot().Systems(caller, acl.PermView|acl.PermData)
	ctx, cancel, err := s.storeCtx(ctx)
	if err != nil {
		return nil, from, err
	}
	defer cancel()
	wm, err := s.watermarks(ctx)
	if err != nil {
		return nil, from, storeErr("fleet energy baseline", err)
	}
	tiles := planTiles(from, to, len(rollup.Levels)-1, wm, false, 0)
	until := tilesEnd(tiles, from)
	groups, args := groupTiles(tiles, nil)
	if len(groups) == 0 {
		return nil, until, nil
	}
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = "SELECT system_id, wh FROM system_rollup_" + rollup.Levels[g.level].Name + " FINAL WHERE " + g.cond
	}
	all, err := s.fleetEnergyPage(ctx, "SELECT system_id, sum(wh) AS e FROM ("+strings.Join(parts, " UNION ALL ")+") GROUP BY system_id", args)
	if err != nil {
		return nil, until, err
	}
	out := all[:0]
	for _, e := range all {
		if e.EnergyMWh > 0 && bm.Contains(uint32(e.ID)) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b SystemEnergy) int {
		if a.EnergyMWh != b.EnergyMWh {
			if a.EnergyMWh > b.EnergyMWh {
				return -1
			}
			return 1
		}
		return int(b.ID) - int(a.ID)
	})
	return out, until, nil
}
