package api

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fleetscope/fleetscope/query"

	"github.com/fleetscope/fleetscope/api/reply"
)

// The dashboards' reads (DESIGN §5 Queries), answered by package query.
// Answers are encoded by hand with reply.Buf: a page of 50 locations is a
// few microseconds, and encoding/json's reflection would be most of a list
// request's time. History statements run under the request's context
// (fasthttp's RequestCtx is one: a server shutdown cancels them) and end
// before the handler returns.

// locations serves GET /v1/locations.
func (s *Server) locations(c *call) error {
	lq := query.LocationsQuery{Q: c.arg("q"), Sort: c.arg("sort"), Cursor: c.arg("cursor")}
	var err error
	if lq.Limit, err = parseLimit(c.arg("limit")); err != nil {
		return err
	}
	if lq.Status, err = parseStatusList(c.arg("status")); err != nil {
		return err
	}
	if reply.WantsCSV(c.ctx) {
		return s.locationsCSV(c, lq)
	}
	page, err := s.opts.Query.Locations(c.caller, lq)
	if err != nil {
		return err
	}
	w := reply.Buf{B: make([]byte, 0, 256+300*len(page.Items))}
	w.Raw(`{"items":[`)
	for i := range page.Items {
		w.Sep()
		writeLocation(&w, &page.Items[i])
		w.Raw("}")
	}
	w.Raw("]")
	w.Key("total")
	w.Int(int64(page.Total))
	w.Key("next_cursor")
	w.StrOrNull(page.NextCursor)
	w.Key("live_at")
	w.Time(page.LiveAt)
	w.Raw("}")
	return c.answer("locations", &w, len(page.Items))
}

// writeLocation writes a location's fields after an opening brace, leaving
// the object open.
func writeLocation(w *reply.Buf, l *query.Location) {
	w.Raw("{")
	w.Key("id")
	w.Uint(uint64(l.ID))
	w.Key("guid")
	w.Str(l.GUID)
	w.Key("name")
	w.Str(l.Name)
	w.Key("address")
	w.Str(l.Address)
	w.Key("timezone")
	w.Str(l.Timezone)
	w.Key("monitored")
	w.Bool(l.Monitored)
	w.Key("capacity_w")
	if l.CapacityW == 0 {
		w.Raw("null")
	} else {
		w.Uint(uint64(l.CapacityW))
	}
	w.Key("owner_email")
	w.StrOrNull(l.OwnerEmail)
	w.Key("installer")
	if l.InstallerID == 0 {
		w.Raw("null")
	} else {
		w.Raw("{")
		w.Key("id")
		w.Uint(uint64(l.InstallerID))
		w.Key("name")
		w.Str(l.InstallerName)
		w.Raw("}")
	}
	w.Key("status")
	w.Str(l.Status.String())
	w.Key("power_w")
	w.Scaled(float64(l.PowerDW), 10)
	w.Key("energy_today_wh")
	w.Scaled(float64(l.EnergyMWh), 1000)
	w.Key("panels")
	w.Int(int64(l.Panels))
	w.Key("last_seen")
	w.MsOrNull(l.LastSeen)
}

// fleetSummary serves GET /v1/fleet/summary.
func (s *Server) fleetSummary(c *call) error {
	sum := s.opts.Query.FleetSummary(c.caller)
	w := reply.Buf{B: make([]byte, 0, 256)}
	w.Raw("{")
	w.Key("systems")
	w.Int(int64(sum.Systems))
	w.Key("status")
	w.Raw("{")
	for _, st := range query.Statuses() {
		w.Key(st.String())
		w.Int(int64(sum.ByStatus[st]))
	}
	w.Raw("}")
	w.Key("power_w")
	w.Scaled(float64(sum.PowerDW), 10)
	w.Key("energy_today_wh")
	w.Scaled(float64(sum.EnergyMWh), 1000)
	w.Key("panels")
	w.Int(sum.Panels)
	w.Key("live_at")
	w.Time(sum.LiveAt)
	w.Raw("}")
	return c.answer("fleet_summary", &w, 1)
}

// system serves GET /v1/systems/{id}.
func (s *Server) system(c *call) error {
	d, err := s.opts.Query.System(c.caller, c.param("id"))
	if err != nil {
		return err
	}
	// Lifetime energy comes from the store: when it cannot answer, the
	// detail — record and live state, from memory — still does, without it.
	lifetime, until, lerr := s.opts.Query.LifetimeEnergy(c.ctx, c.caller, c.param("id"))
	if lerr != nil && !errors.Is(lerr, query.ErrUnavailable) {
		return lerr
	}
	w := reply.Buf{B: make([]byte, 0, 512)}
	writeLocation(&w, &d.Location)
	w.Key("gateways")
	w.Raw("[")
	for _, g := range d.Gateways {
		w.Sep()
		w.Raw("{")
		w.Key("id")
		w.Uint(uint64(g.ID))
		w.Key("serial")
		w.Str(g.Serial)
		w.Raw("}")
	}
	w.Raw("]")
	w.Key("permissions")
	w.Raw("[")
	for _, p := range d.Permissions.Names() {
		w.Sep()
		w.Str(p)
	}
	w.Raw("]")
	if !d.Created.IsZero() {
		w.Key("created")
		w.Time(d.Created)
	}
	w.Key("lifetime_energy_wh")
	if lerr == nil {
		w.Scaled(float64(lifetime), 1000)
		w.Key("lifetime_until")
		w.Time(until)
	} else {
		w.Raw("null")
	}
	w.Raw("}")
	return c.answer("system", &w, 1)
}

// telemetry serves GET /v1/systems/{id}/telemetry?from=&to=&step=&panel=.
// from defaults to 24 h before to, to to now.
func (s *Server) telemetry(c *call) error {
	tq := query.TelemetryQuery{Step: c.arg("step"), Panel: c.arg("panel")}
	var err error
	if tq.From, tq.To, err = c.parseRange(24 * time.Hour); err != nil {
		return err
	}
	t, err := s.opts.Query.Telemetry(c.ctx, c.caller, c.param("id"), tq)
	if err != nil {
		return err
	}
	if reply.WantsCSV(c.ctx) {
		return s.telemetryCSV(c, t)
	}
	w := reply.Buf{B: make([]byte, 0, 256+160*len(t.Points))}
	w.Raw("{")
	w.Key("system")
	w.Uint(uint64(t.System))
	w.Key("panel")
	w.StrOrNull(t.Panel)
	w.Key("step")
	w.Str(t.Step)
	w.Key("from")
	w.Time(t.From)
	w.Key("to")
	w.Time(t.To)
	w.Key("timezone")
	w.Str(t.Timezone)
	w.Key("points")
	w.Raw("[")
	for i := range t.Points {
		w.Sep()
		writePoint(&w, &t.Points[i], t.Step == "raw", t.Panel != "")
	}
	w.Raw("]}")
	return c.answer("telemetry", &w, len(t.Points))
}

// writePoint writes one point in physical units: W, Wh, V, A, °C.
func writePoint(w *reply.Buf, p *query.Point, raw, panel bool) {
	w.Raw("{")
	w.Key("ts")
	w.Time(p.TS)
	w.Key("energy_wh")
	w.Scaled(float64(p.EnergyMWh), 1000)
	n := float64(max(p.Samples, 1))
	switch {
	case raw && panel:
		w.Key("power_w")
		w.Scaled(float64(p.PinSumDW), 10)
		w.Key("vin_v")
		w.Scaled(float64(p.VinSumCV), 100)
		w.Key("iin_a")
		w.Scaled(float64(p.IinSumMA), 1000)
		w.Key("vout_v")
		w.Scaled(float64(p.VoutSumCV), 100)
		w.Key("temp_c")
		w.Scaled(float64(p.TempMaxDC), 10)
		w.Key("rssi")
		w.Uint(uint64(p.RSSI))
	case raw:
		w.Key("power_w")
		w.Scaled(float64(p.PinSumDW), 10)
		w.Key("panels")
		w.Uint(p.Panels)
		w.Key("max_temp_c")
		w.Scaled(float64(p.TempMaxDC), 10)
	case panel:
		w.Key("avg_power_w")
		w.Scaled(float64(p.PinSumDW)/n, 10)
		w.Key("max_power_w")
		w.Scaled(float64(p.PinMaxDW), 10)
		w.Key("avg_vin_v")
		w.Scaled(float64(p.VinSumCV)/n, 100)
		w.Key("avg_iin_a")
		w.Scaled(float64(p.IinSumMA)/n, 1000)
		w.Key("avg_vout_v")
		w.Scaled(float64(p.VoutSumCV)/n, 100)
		w.Key("avg_temp_c")
		w.Scaled(float64(p.TempSumDC)/n, 10)
		w.Key("max_temp_c")
		w.Scaled(float64(p.TempMaxDC), 10)
		w.Key("samples")
		w.Uint(p.Samples)
	default:
		// The system's average power: the panels' average readings added up.
		w.Key("avg_power_w")
		w.Scaled(float64(p.PinSumDW)*float64(p.Panels)/n, 10)
		w.Key("max_panel_power_w")
		w.Scaled(float64(p.PinMaxDW), 10)
		w.Key("max_temp_c")
		w.Scaled(float64(p.TempMaxDC), 10)
		w.Key("samples")
		w.Uint(p.Samples)
		w.Key("panels")
		w.Uint(p.Panels)
	}
	w.Raw("}")
}

// panels serves GET /v1/systems/{id}/panels?date=YYYY-MM-DD.
func (s *Server) panels(c *call) error {
	pd, err := s.opts.Query.PanelsOn(c.ctx, c.caller, c.param("id"), c.arg("date"))
	if err != nil {
		return err
	}
	w := reply.Buf{B: make([]byte, 0, 256+100*len(pd.Panels))}
	w.Raw("{")
	w.Key("system")
	w.Uint(uint64(pd.System))
	w.Key("date")
	w.Str(pd.Date)
	w.Key("timezone")
	w.Str(pd.Timezone)
	w.Key("from")
	w.Time(pd.From)
	w.Key("to")
	w.Time(pd.To)
	w.Key("items")
	w.Raw("[")
	for _, p := range pd.Panels {
		w.Sep()
		w.Raw("{")
		w.Key("panel")
		w.Str(p.Panel)
		w.Key("row")
		w.Str(p.Row)
		w.Key("col")
		w.Int(int64(p.Col))
		w.Key("energy_wh")
		w.Scaled(float64(p.EnergyMWh), 1000)
		w.Key("max_power_w")
		w.Scaled(float64(p.PinMaxDW), 10)
		w.Key("samples")
		w.Uint(p.Samples)
		w.Raw("}")
	}
	w.Raw("]")
	w.Key("total")
	w.Int(int64(len(pd.Panels)))
	w.Key("next_cursor")
	w.Raw("null}")
	return c.answer("panels", &w, len(pd.Panels))
}

// fleetEnergy serves GET /v1/fleet/energy?from=&to=&sort=&limit=&cursor=.
// from defaults to 30 days before to, to to now.
func (s *Server) fleetEnergy(c *call) error {
	fq := query.FleetEnergyQuery{Sort: c.arg("sort"), Cursor: c.arg("cursor")}
	var err error
	if fq.From, fq.To, err = c.parseRange(30 * 24 * time.Hour); err != nil {
		return err
	}
	if fq.Limit, err = parseLimit(c.arg("limit")); err != nil {
		return err
	}
	if reply.WantsCSV(c.ctx) {
		return s.fleetEnergyCSV(c, fq)
	}
	fe, err := s.opts.Query.FleetEnergy(c.ctx, c.caller, fq)
	if err != nil {
		return err
	}
	w := reply.Buf{B: make([]byte, 0, 256+100*len(fe.Items))}
	w.Raw(`{"items":[`)
	for _, it := range fe.Items {
		w.Sep()
		w.Raw("{")
		w.Key("id")
		w.Uint(uint64(it.ID))
		w.Key("guid")
		w.Str(it.GUID)
		w.Key("name")
		w.Str(it.Name)
		w.Key("energy_wh")
		w.Scaled(float64(it.EnergyMWh), 1000)
		y, known := it.Yield()
		w.Key("capacity_w")
		if known {
			w.Uint(uint64(it.CapacityW))
		} else {
			w.Raw("null")
		}
		w.Key("kwh_per_kwp")
		if known {
			w.B = strconv.AppendFloat(w.B, math.Round(y*1000)/1000, 'f', -1, 64)
		} else {
			w.Raw("null")
		}
		w.Raw("}")
	}
	w.Raw("]")
	w.Key("total")
	w.Int(int64(fe.Total))
	w.Key("next_cursor")
	w.StrOrNull(fe.NextCursor)
	w.Key("from")
	w.Time(fe.From)
	w.Key("to")
	w.Time(fe.To)
	w.Key("until")
	w.Time(fe.Until)
	w.Raw("}")
	return c.answer("fleet_energy", &w, len(fe.Items))
}

// parseLimit reads limit=; 0 when absent (the query's default).
func parseLimit(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, badRequest("limit must be a positive integer")
	}
	return n, nil
}

// parseStatusList reads status=online,offline.
func parseStatusList(s string) ([]query.Status, error) {
	if s == "" {
		return nil, nil
	}
	var out []query.Status
	for _, part := range strings.Split(s, ",") {
		st, err := query.ParseStatus(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// parseTime reads a time of the API: Unix milliseconds or RFC 3339, in
// years 1 to 9999.
func parseTime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < -62135596800000 || ms > 253402300799999 {
			return time.Time{}, badRequest("time %q out of range", s)
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, badRequest("time %q is neither Unix milliseconds nor RFC 3339", s)
	}
	return t.UTC(), nil
}

// parseRange reads from= and to=: to defaults to now, from to span before
// to.
func (c *call) parseRange(span time.Duration) (from, to time.Time, err error) {
	to = c.s.opts.Now().UTC()
	if v := c.arg("to"); v != "" {
		if to, err = parseTime(v); err != nil {
			return
		}
	}
	from = to.Add(-span)
	if v := c.arg("from"); v != "" {
		if from, err = parseTime(v); err != nil {
			return
		}
	}
	if !from.Before(to) {
		err = badRequest("from must be before to")
	}
	return
}

// answer writes a JSON answer the handler encoded and records its item
// count.
func (c *call) answer(endpoint string, w *reply.Buf, items int) error {
	c.s.m.items.WithLabelValues(endpoint).Observe(float64(items))
	return c.body(w.B)
}
