package query

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/acl"
)

// The HTTP handlers. The serve wiring authenticates the bearer token and
// calls them with the caller; {id} path parameters are in
// ctx.UserValue("id") as a string, the numeric system id or its GUID.
// History statements run under the request's context (fasthttp's
// RequestCtx is one: a server shutdown cancels them) and end before the
// handler returns.
// Answers are JSON; errors are {"error": {"code", "message"}} with 400
// (bad_request), 404 (not_found) or 503 (unavailable, with Retry-After).

// HandleLocations serves GET /v1/locations.
func (s *Service) HandleLocations(ctx *fasthttp.RequestCtx, caller acl.AccountID) {
	start := time.Now()
	args := ctx.QueryArgs()
	lq := LocationsQuery{Q: string(args.Peek("q")), Sort: string(args.Peek("sort")), Cursor: string(args.Peek("cursor"))}
	var err error
	if lq.Limit, err = parseLimit(args.Peek("limit")); err == nil {
		lq.Status, err = parseStatusList(string(args.Peek("status")))
	}
	var page LocationsPage
	if err == nil {
		page, err = s.Locations(caller, lq)
	}
	if err != nil {
		s.fail(ctx, "locations", start, err)
		return
	}
	w := jsonBuf{b: make([]byte, 0, 256+300*len(page.Items))}
	w.raw(`{"items":[`)
	for i := range page.Items {
		w.sep()
		writeLocation(&w, &page.Items[i])
		w.raw("}")
	}
	w.raw("]")
	w.key("total")
	w.int(int64(page.Total))
	w.key("next_cursor")
	w.strOrNull(page.NextCursor)
	w.key("live_at")
	w.time(page.LiveAt)
	w.raw("}")
	s.ok(ctx, "locations", start, w.b, len(page.Items))
}

// writeLocation writes a location's fields after an opening brace, leaving
// the object open.
func writeLocation(w *jsonBuf, l *Location) {
	w.raw("{")
	w.key("id")
	w.uint(uint64(l.ID))
	w.key("guid")
	w.str(l.GUID)
	w.key("name")
	w.str(l.Name)
	w.key("address")
	w.str(l.Address)
	w.key("timezone")
	w.str(l.Timezone)
	w.key("monitored")
	w.bool(l.Monitored)
	w.key("owner_email")
	w.strOrNull(l.OwnerEmail)
	w.key("installer")
	if l.InstallerID == 0 {
		w.raw("null")
	} else {
		w.raw("{")
		w.key("id")
		w.uint(uint64(l.InstallerID))
		w.key("name")
		w.str(l.InstallerName)
		w.raw("}")
	}
	w.key("status")
	w.str(l.Status.String())
	w.key("power_w")
	w.scaled(float64(l.PowerDW), 10)
	w.key("energy_today_wh")
	w.scaled(float64(l.EnergyMWh), 1000)
	w.key("panels")
	w.int(int64(l.Panels))
	w.key("last_seen")
	w.msOrNull(l.LastSeen)
}

// HandleFleetSummary serves GET /v1/fleet/summary.
func (s *Service) HandleFleetSummary(ctx *fasthttp.RequestCtx, caller acl.AccountID) {
	start := time.Now()
	sum := s.FleetSummary(caller)
	w := jsonBuf{b: make([]byte, 0, 256)}
	w.raw("{")
	w.key("systems")
	w.int(int64(sum.Systems))
	w.key("status")
	w.raw("{")
	for st := Status(0); st < numStatus; st++ {
		w.key(st.String())
		w.int(int64(sum.ByStatus[st]))
	}
	w.raw("}")
	w.key("power_w")
	w.scaled(float64(sum.PowerDW), 10)
	w.key("energy_today_wh")
	w.scaled(float64(sum.EnergyMWh), 1000)
	w.key("panels")
	w.int(sum.Panels)
	w.key("live_at")
	w.time(sum.LiveAt)
	w.raw("}")
	s.ok(ctx, "fleet_summary", start, w.b, 1)
}

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
			loc := s.zones.get(sys.Timezone)
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

// HandleSystem serves GET /v1/systems/{id}.
func (s *Service) HandleSystem(ctx *fasthttp.RequestCtx, caller acl.AccountID) {
	start := time.Now()
	d, err := s.System(caller, pathID(ctx))
	if err != nil {
		s.fail(ctx, "system", start, err)
		return
	}
	w := jsonBuf{b: make([]byte, 0, 512)}
	writeLocation(&w, &d.Location)
	w.key("gateways")
	w.raw("[")
	for _, g := range d.Gateways {
		w.sep()
		w.raw("{")
		w.key("id")
		w.uint(uint64(g.ID))
		w.key("serial")
		w.str(g.Serial)
		w.raw("}")
	}
	w.raw("]")
	w.key("permissions")
	w.raw("[")
	for _, p := range d.Permissions.Names() {
		w.sep()
		w.str(p)
	}
	w.raw("]")
	if !d.Created.IsZero() {
		w.key("created")
		w.time(d.Created)
	}
	w.raw("}")
	s.ok(ctx, "system", start, w.b, 1)
}

// HandleTelemetry serves GET /v1/systems/{id}/telemetry?from=&to=&step=&panel=.
// from defaults to 24 h before to, to to now.
func (s *Service) HandleTelemetry(ctx *fasthttp.RequestCtx, caller acl.AccountID) {
	start := time.Now()
	args := ctx.QueryArgs()
	tq := TelemetryQuery{Step: string(args.Peek("step")), Panel: string(args.Peek("panel"))}
	var err error
	tq.From, tq.To, err = s.parseRange(args, 24*time.Hour)
	var t Telemetry
	if err == nil {
		t, err = s.Telemetry(ctx, caller, pathID(ctx), tq)
	}
	if err != nil {
		s.fail(ctx, "telemetry", start, err)
		return
	}
	w := jsonBuf{b: make([]byte, 0, 256+160*len(t.Points))}
	w.raw("{")
	w.key("system")
	w.uint(uint64(t.System))
	w.key("panel")
	w.strOrNull(t.Panel)
	w.key("step")
	w.str(t.Step)
	w.key("from")
	w.time(t.From)
	w.key("to")
	w.time(t.To)
	w.key("timezone")
	w.str(t.Timezone)
	w.key("points")
	w.raw("[")
	for i := range t.Points {
		w.sep()
		writePoint(&w, &t.Points[i], t.Step == "raw", t.Panel != "")
	}
	w.raw("]}")
	s.ok(ctx, "telemetry", start, w.b, len(t.Points))
}

// writePoint writes one point in physical units: W, Wh, V, A, °C.
func writePoint(w *jsonBuf, p *Point, raw, panel bool) {
	w.raw("{")
	w.key("ts")
	w.time(p.TS)
	w.key("energy_wh")
	w.scaled(float64(p.EnergyMWh), 1000)
	n := float64(max(p.Samples, 1))
	switch {
	case raw && panel:
		w.key("power_w")
		w.scaled(float64(p.PinSumDW), 10)
		w.key("vin_v")
		w.scaled(float64(p.VinSumCV), 100)
		w.key("iin_a")
		w.scaled(float64(p.IinSumMA), 1000)
		w.key("vout_v")
		w.scaled(float64(p.VoutSumCV), 100)
		w.key("temp_c")
		w.scaled(float64(p.TempMaxDC), 10)
		w.key("rssi")
		w.uint(uint64(p.RSSI))
	case raw:
		w.key("power_w")
		w.scaled(float64(p.PinSumDW), 10)
		w.key("panels")
		w.uint(p.Panels)
		w.key("max_temp_c")
		w.scaled(float64(p.TempMaxDC), 10)
	case panel:
		w.key("avg_power_w")
		w.scaled(float64(p.PinSumDW)/n, 10)
		w.key("max_power_w")
		w.scaled(float64(p.PinMaxDW), 10)
		w.key("avg_vin_v")
		w.scaled(float64(p.VinSumCV)/n, 100)
		w.key("avg_iin_a")
		w.scaled(float64(p.IinSumMA)/n, 1000)
		w.key("avg_vout_v")
		w.scaled(float64(p.VoutSumCV)/n, 100)
		w.key("avg_temp_c")
		w.scaled(float64(p.TempSumDC)/n, 10)
		w.key("max_temp_c")
		w.scaled(float64(p.TempMaxDC), 10)
		w.key("samples")
		w.uint(p.Samples)
	default:
		// The system's average power: the panels' average readings added up.
		w.key("avg_power_w")
		w.scaled(float64(p.PinSumDW)*float64(p.Panels)/n, 10)
		w.key("max_panel_power_w")
		w.scaled(float64(p.PinMaxDW), 10)
		w.key("max_temp_c")
		w.scaled(float64(p.TempMaxDC), 10)
		w.key("samples")
		w.uint(p.Samples)
		w.key("panels")
		w.uint(p.Panels)
	}
	w.raw("}")
}

// HandlePanels serves GET /v1/systems/{id}/panels?date=YYYY-MM-DD.
func (s *Service) HandlePanels(ctx *fasthttp.RequestCtx, caller acl.AccountID) {
	start := time.Now()
	pd, err := s.PanelsOn(ctx, caller, pathID(ctx), string(ctx.QueryArgs().Peek("date")))
	if err != nil {
		s.fail(ctx, "panels", start, err)
		return
	}
	w := jsonBuf{b: make([]byte, 0, 256+100*len(pd.Panels))}
	w.raw("{")
	w.key("system")
	w.uint(uint64(pd.System))
	w.key("date")
	w.str(pd.Date)
	w.key("timezone")
	w.str(pd.Timezone)
	w.key("from")
	w.time(pd.From)
	w.key("to")
	w.time(pd.To)
	w.key("items")
	w.raw("[")
	for _, p := range pd.Panels {
		w.sep()
		w.raw("{")
		w.key("panel")
		w.str(p.Panel)
		w.key("row")
		w.str(p.Row)
		w.key("col")
		w.int(int64(p.Col))
		w.key("energy_wh")
		w.scaled(float64(p.EnergyMWh), 1000)
		w.key("max_power_w")
		w.scaled(float64(p.PinMaxDW), 10)
		w.key("samples")
		w.uint(p.Samples)
		w.raw("}")
	}
	w.raw("]")
	w.key("total")
	w.int(int64(len(pd.Panels)))
	w.key("next_cursor")
	w.raw("null}")
	s.ok(ctx, "panels", start, w.b, len(pd.Panels))
}

// HandleFleetEnergy serves GET /v1/fleet/energy?from=&to=&sort=&limit=&cursor=.
// from defaults to 30 days before to, to to now.
func (s *Service) HandleFleetEnergy(ctx *fasthttp.RequestCtx, caller acl.AccountID) {
	start := time.Now()
	args := ctx.QueryArgs()
	fq := FleetEnergyQuery{Sort: string(args.Peek("sort")), Cursor: string(args.Peek("cursor"))}
	var err error
	fq.From, fq.To, err = s.parseRange(args, 30*24*time.Hour)
	if err == nil {
		fq.Limit, err = parseLimit(args.Peek("limit"))
	}
	var fe FleetEnergy
	if err == nil {
		fe, err = s.FleetEnergy(ctx, caller, fq)
	}
	if err != nil {
		s.fail(ctx, "fleet_energy", start, err)
		return
	}
	w := jsonBuf{b: make([]byte, 0, 256+100*len(fe.Items))}
	w.raw(`{"items":[`)
	for _, it := range fe.Items {
		w.sep()
		w.raw("{")
		w.key("id")
		w.uint(uint64(it.ID))
		w.key("guid")
		w.str(it.GUID)
		w.key("name")
		w.str(it.Name)
		w.key("energy_wh")
		w.scaled(float64(it.EnergyMWh), 1000)
		w.raw("}")
	}
	w.raw("]")
	w.key("total")
	w.int(int64(fe.Total))
	w.key("next_cursor")
	w.strOrNull(fe.NextCursor)
	w.key("from")
	w.time(fe.From)
	w.key("to")
	w.time(fe.To)
	w.key("until")
	w.time(fe.Until)
	w.raw("}")
	s.ok(ctx, "fleet_energy", start, w.b, len(fe.Items))
}

func pathID(ctx *fasthttp.RequestCtx) string {
	id, _ := ctx.UserValue("id").(string)
	return id
}

func parseLimit(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: limit must be a positive integer", ErrBadRequest)
	}
	return n, nil
}

func parseStatusList(s string) ([]Status, error) {
	if s == "" {
		return nil, nil
	}
	var out []Status
	for _, part := range strings.Split(s, ",") {
		st, err := ParseStatus(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// ParseTime parses a query-string time: Unix milliseconds or RFC 3339.
func ParseTime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < -62135596800000 || ms > 253402300799999 { // years 1 to 9999
			return time.Time{}, fmt.Errorf("%w: time %q out of range", ErrBadRequest, s)
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: time %q is neither Unix milliseconds nor RFC 3339", ErrBadRequest, s)
	}
	return t.UTC(), nil
}

// parseRange reads from= and to=: to defaults to now, from to span before
// to.
func (s *Service) parseRange(args *fasthttp.Args, span time.Duration) (from, to time.Time, err error) {
	to = s.opts.Now().UTC()
	if v := args.Peek("to"); len(v) > 0 {
		if to, err = ParseTime(string(v)); err != nil {
			return
		}
	}
	from = to.Add(-span)
	if v := args.Peek("from"); len(v) > 0 {
		if from, err = ParseTime(string(v)); err != nil {
			return
		}
	}
	if !from.Before(to) {
		err = fmt.Errorf("%w: from must be before to", ErrBadRequest)
	}
	return
}

func (s *Service) ok(ctx *fasthttp.RequestCtx, endpoint string, start time.Time, body []byte, items int) {
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(body, '\n'))
	s.m.items.WithLabelValues(endpoint).Observe(float64(items))
	s.m.requests.WithLabelValues(endpoint, "200").Inc()
	s.m.duration.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
}

// fail answers an error: ErrBadRequest 400, ErrNotFound 404, ErrUnavailable
// 503 with Retry-After, anything else 500.
func (s *Service) fail(ctx *fasthttp.RequestCtx, endpoint string, start time.Time, err error) {
	status, code := fasthttp.StatusInternalServerError, "internal"
	msg := err.Error()
	switch {
	case errors.Is(err, ErrBadRequest):
		status, code = fasthttp.StatusBadRequest, "bad_request"
	case errors.Is(err, ErrNotFound):
		status, code, msg = fasthttp.StatusNotFound, "not_found", "no such system"
	case errors.Is(err, ErrUnavailable):
		status, code = fasthttp.StatusServiceUnavailable, "unavailable"
		ctx.Response.Header.Set("Retry-After", "1")
		s.log.Warn("history query failed", "endpoint", endpoint, "err", err)
	default:
		s.log.Error("query failed", "endpoint", endpoint, "err", err)
	}
	w := jsonBuf{b: make([]byte, 0, 64+len(msg))}
	w.raw(`{"error":{"code":`)
	w.str(code)
	w.raw(`,"message":`)
	w.str(msg)
	w.raw("}}")
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(w.b, '\n'))
	s.m.requests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
	s.m.duration.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
}
