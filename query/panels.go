package query

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/rollup"
)

// PanelEnergy is one panel's production over a day.
type PanelEnergy struct {
	Panel     string
	Row       string // the label's letters ("A" of "A12"), for the layout
	Col       int    // the label's number (12 of "A12"); 0 if none
	EnergyMWh uint64
	Samples   uint64
	PinMaxDW  uint64
}

// PanelDay is GET /v1/systems/{id}/panels: every panel's energy over one
// local day of the system — the data of the panel layout heat map.
type PanelDay struct {
	System   acl.SystemID
	Date     string // YYYY-MM-DD in Timezone
	Timezone string
	From, To time.Time
	Panels   []PanelEnergy
}

// PanelsOn reads per-panel energy of a local day (date "YYYY-MM-DD"; ""
// means today) of a system the caller holds view and data on.
func (s *Service) PanelsOn(ctx context.Context, caller acl.AccountID, ref, date string) (PanelDay, error) {
	start := time.Now()
	snap := s.opts.ACL.Snapshot()
	sys, err := resolveSystem(snap, caller, ref, acl.PermView|acl.PermData)
	if err != nil {
		return PanelDay{}, err
	}
	loc := acl.Zone(sys.Timezone)
	var day time.Time
	if date == "" {
		y, m, d := s.opts.Now().In(loc).Date()
		day = time.Date(y, m, d, 0, 0, 0, 0, loc)
	} else if day, err = time.ParseInLocation(time.DateOnly, date, loc); err != nil {
		return PanelDay{}, fmt.Errorf("%w: date must be YYYY-MM-DD", ErrBadRequest)
	}
	out := PanelDay{System: sys.ID, Date: day.Format(time.DateOnly), Timezone: loc.String(),
		From: day.UTC(), To: day.AddDate(0, 0, 1).UTC()}
	ctx, cancel, err := s.storeCtx(ctx)
	if err != nil {
		return out, err
	}
	defer cancel()
	wm, err := s.watermarks(ctx)
	if err != nil {
		return out, storeErr("panels", err)
	}
	tiles := planTiles(out.From, out.To, 2, wm, true, rawStretch)
	groups, args := groupTiles(tiles, []any{clickhouse.Named("sys", strconv.FormatUint(uint64(sys.ID), 10))})
	var parts []string
	for _, g := range groups {
		if g.level == levelRaw {
			parts = append(parts, "SELECT toString(panel) AS p, sum(toUInt64(wh)) AS wh, count() AS samples, toUInt64(max(pin)) AS pin_max FROM "+
				readingsOnce("system_id = {sys:UInt32} AND "+g.cond)+" GROUP BY p")
			continue
		}
		parts = append(parts, "SELECT toString(panel) AS p, wh, toUInt64(samples) AS samples, toUInt64(pin_max) AS pin_max FROM panel_rollup_"+rollup.Levels[g.level].Name+
			" FINAL WHERE system_id = {sys:UInt32} AND "+g.cond)
	}
	if len(parts) == 0 {
		return out, nil
	}
	rows, err := s.opts.Store.Query(ctx, "SELECT p, sum(wh), sum(samples), max(pin_max) FROM ("+strings.Join(parts, " UNION ALL ")+") GROUP BY p", args...)
	if err != nil {
		return out, storeErr("panels", err)
	}
	defer rows.Close()
	for rows.Next() {
		var pe PanelEnergy
		if err := rows.Scan(&pe.Panel, &pe.EnergyMWh, &pe.Samples, &pe.PinMaxDW); err != nil {
			return out, storeErr("panels", err)
		}
		pe.Row, pe.Col = splitLabel(pe.Panel)
		out.Panels = append(out.Panels, pe)
	}
	if err := rows.Err(); err != nil {
		return out, storeErr("panels", err)
	}
	slices.SortFunc(out.Panels, func(a, b PanelEnergy) int {
		if c := strings.Compare(a.Row, b.Row); c != 0 {
			return c
		}
		if a.Col != b.Col {
			return a.Col - b.Col
		}
		return strings.Compare(a.Panel, b.Panel)
	})
	s.m.observe("panels_store", time.Since(start))
	return out, nil
}

// splitLabel splits a panel label into its letters and number: "B12" → "B",
// 12. A label of another shape is all row, column 0.
func splitLabel(label string) (string, int) {
	i := strings.IndexFunc(label, func(r rune) bool { return r >= '0' && r <= '9' })
	if i <= 0 {
		return label, 0
	}
	n, err := strconv.Atoi(label[i:])
	if err != nil || n < 0 {
		return label, 0
	}
	return label[:i], n
}
