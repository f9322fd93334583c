package query

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/RoaringBitmap/roaring/v2"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/rollup"
)

// reading is one stored reading, as the test knows it.
type reading struct {
	sys                 acl.SystemID
	panel               string
	ts                  time.Time
	vin, iin, pin, vout uint16
	temp                int16
	wh                  uint32
}

// history fills the readings table for systems: three panels each, one
// reading a minute over [from, to), values varying by panel and minute;
// then runs the rollup worker as of t0, which computes 1 min up to t0 − 2
// min (its lateness), 15 min to 11:45, 1 h to 11:00, 1 day to 00:00 — so
// answers need every level and raw readings.
func (h *harness) history(systems []acl.SystemID, from, to time.Time) []reading {
	h.t.Helper()
	ctx := context.Background()
	b, err := h.store.PrepareBatch(ctx, "INSERT INTO readings (system_id, gateway_id, panel, ts, vin, iin, pin, vout, temp, rssi, wh)")
	if err != nil {
		h.t.Fatal(err)
	}
	var out []reading
	for ts := from; ts.Before(to); ts = ts.Add(time.Minute) {
		for _, sys := range systems {
			for p := 1; p <= 3; p++ {
				m := ts.Hour()*60 + ts.Minute()
				r := reading{sys: sys, panel: fmt.Sprintf("A%d", p), ts: ts, vin: uint16(3000 + m%500), iin: uint16(1000 * p),
					pin: uint16(100*p + m%97), vout: uint16(2900 + m%400), temp: int16(m%300 - 50), wh: uint32(1000 + 10*p + m%13)}
				out = append(out, r)
				if err := b.Append(uint32(r.sys), uint32(r.sys), r.panel, r.ts, r.vin, r.iin, r.pin, r.vout, r.temp, uint8(180), r.wh); err != nil {
					h.t.Fatal(err)
				}
			}
		}
	}
	if err := b.Send(); err != nil {
		h.t.Fatal(err)
	}
	r := rollup.Start(rollup.Options{Store: h.store, Interval: time.Hour, MaxWindow: 24 * time.Hour, Logger: h.svc.log, Now: h.clock.now})
	if err := r.Pass(ctx); err != nil {
		h.t.Fatal(err)
	}
	r.Stop()
	return out
}

type point struct {
	TS        string   `json:"ts"`
	EnergyWh  float64  `json:"energy_wh"`
	AvgPowerW *float64 `json:"avg_power_w"`
	PowerW    *float64 `json:"power_w"`
	MaxPanelW *float64 `json:"max_panel_power_w"`
	MaxPowerW *float64 `json:"max_power_w"`
	AvgVinV   *float64 `json:"avg_vin_v"`
	AvgTempC  *float64 `json:"avg_temp_c"`
	MaxTempC  float64  `json:"max_temp_c"`
	Samples   int      `json:"samples"`
	Panels    int      `json:"panels"`
	RSSI      *int     `json:"rssi"`
	TempC     *float64 `json:"temp_c"`
	VinV      *float64 `json:"vin_v"`
	IinA      *float64 `json:"iin_a"`
	VoutV     *float64 `json:"vout_v"`
	AvgIinA   *float64 `json:"avg_iin_a"`
	AvgVoutV  *float64 `json:"avg_vout_v"`
}

type telemetryAnswer struct {
	System   uint32  `json:"system"`
	Step     string  `json:"step"`
	From     string  `json:"from"`
	Timezone string  `json:"timezone"`
	Points   []point `json:"points"`
}

// bucketOf is the start of the bucket holding ts: whole steps in UTC, or
// local midnight for a day.
func bucketOf(ts time.Time, step string, loc *time.Location) time.Time {
	switch step {
	case "raw":
		return ts
	case "1d":
		y, m, d := ts.In(loc).Date()
		return time.Date(y, m, d, 0, 0, 0, 0, loc).UTC()
	case "1mo":
		y, m, _ := ts.In(loc).Date()
		return time.Date(y, m, 1, 0, 0, 0, 0, loc).UTC()
	case "1y":
		return time.Date(ts.In(loc).Year(), 1, 1, 0, 0, 0, 0, loc).UTC()
	}
	d, _ := time.ParseDuration(step)
	return ts.Truncate(d)
}

// expectPoints aggregates the test's readings as the answer should.
func expectPoints(rs []reading, sys acl.SystemID, panel string, from, to time.Time, step string, loc *time.Location) []point {
	type acc struct {
		n, wh, pin, pinMax uint64
		temp               int64
		tempMax            int16
		vin                uint64
		panels             map[string]bool
	}
	buckets := map[time.Time]*acc{}
	for _, r := range rs {
		if r.sys != sys || (panel != "" && r.panel != panel) || r.ts.Before(from) || !r.ts.Before(to) {
			continue
		}
		b := bucketOf(r.ts, step, loc)
		a := buckets[b]
		if a == nil {
			a = &acc{tempMax: math.MinInt16, panels: map[string]bool{}}
			buckets[b] = a
		}
		a.n++
		a.wh += uint64(r.wh)
		a.pin += uint64(r.pin)
		a.pinMax = max(a.pinMax, uint64(r.pin))
		a.temp += int64(r.temp)
		a.tempMax = max(a.tempMax, r.temp)
		a.vin += uint64(r.vin)
		a.panels[r.panel] = true
	}
	var keys []time.Time
	for k := range buckets {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b time.Time) int { return a.Compare(b) })
	var out []point
	for _, k := range keys {
		a := buckets[k]
		p := point{TS: k.UTC().Format("2006-01-02T15:04:05.000Z07:00"), EnergyWh: float64(a.wh) / 1000, MaxTempC: float64(a.tempMax) / 10,
			Samples: int(a.n), Panels: len(a.panels)}
		switch {
		case step == "raw":
			w := float64(a.pin) / 10
			p.PowerW = &w
		case panel != "":
			w, mx, v := float64(a.pin)/float64(a.n)/10, float64(a.pinMax)/10, float64(a.vin)/float64(a.n)/100
			p.AvgPowerW, p.MaxPowerW, p.AvgVinV = &w, &mx, &v
		default:
			w, mx := float64(a.pin)*float64(len(a.panels))/float64(a.n)/10, float64(a.pinMax)/10
			p.AvgPowerW, p.MaxPanelW = &w, &mx
		}
		out = append(out, p)
	}
	return out
}

func near(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Abs(*a-*b) < 1e-6*math.Max(1, math.Abs(*b))
}

func TestTelemetryAgreesWithRawReadingsAtEveryStep(t *testing.T) {
	f := newFleet(t, harnessOpts{store: true})
	berlin, _ := time.LoadLocation("Europe/Berlin")
	s0, s2 := f.sys[0], f.sys[2] // Europe/Berlin, UTC
	rs := f.history([]acl.SystemID{s0, s2}, t0.Add(-36*time.Hour), t0)
	cases := []struct {
		sys      acl.SystemID
		loc      *time.Location
		panel    string
		step     string
		from, to time.Time
	}{
		{s2, time.UTC, "", "15m", t0.Add(-24 * time.Hour), t0},
		{s2, time.UTC, "", "15m", t0.Add(-24*time.Hour + 7*time.Minute), t0.Add(-3 * time.Minute)},
		{s2, time.UTC, "", "1m", t0.Add(-30 * time.Minute), t0},
		{s2, time.UTC, "", "1h", t0.Add(-36 * time.Hour), t0},
		{s2, time.UTC, "", "1d", t0.Add(-36 * time.Hour), t0},
		{s0, berlin, "", "1d", t0.Add(-36 * time.Hour), t0}, // local days
		{s0, berlin, "", "raw", t0.Add(-10 * time.Minute), t0},
		{s0, berlin, "A2", "15m", t0.Add(-5 * time.Hour), t0},
		{s0, berlin, "A3", "1h", t0.Add(-30 * time.Hour), t0},
		{s0, berlin, "A1", "raw", t0.Add(-20 * time.Minute), t0.Add(-10 * time.Minute)},
		{s2, time.UTC, "", "1mo", t0.Add(-36 * time.Hour), t0}, // local calendar months and years
		{s0, berlin, "", "1mo", t0.Add(-36 * time.Hour), t0},
		{s0, berlin, "A2", "1y", t0.Add(-30 * time.Hour), t0.Add(-7 * time.Minute)},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d/%s/%s/%s", c.sys, c.panel, c.step, c.from.Format(time.TimeOnly)), func(t *testing.T) {
			params := url.Values{"from": {c.from.Format(time.RFC3339)}, "to": {fmt.Sprint(c.to.UnixMilli())}, "step": {c.step}}
			if c.panel != "" {
				params.Set("panel", c.panel)
			}
			var got telemetryAnswer
			f.getJSON(f.alice, fmt.Sprintf("/v1/systems/%d/telemetry", c.sys), params, &got)
			want := expectPoints(rs, c.sys, c.panel, bucketOf(c.from, c.step, c.loc), c.to, c.step, c.loc)
			if got.Step != c.step || len(got.Points) != len(want) {
				t.Fatalf("%d points (step %s), want %d", len(got.Points), got.Step, len(want))
			}
			for i := range want {
				g, w := got.Points[i], want[i]
				if g.TempC != nil { // a raw panel reading has its temperature
					g.MaxTempC = *g.TempC
				}
				if g.TS != w.TS || math.Abs(g.EnergyWh-w.EnergyWh) > 1e-9 || g.MaxTempC != w.MaxTempC ||
					!near(g.AvgPowerW, w.AvgPowerW) || !near(g.PowerW, w.PowerW) || !near(g.MaxPanelW, w.MaxPanelW) ||
					!near(g.MaxPowerW, w.MaxPowerW) || !near(g.AvgVinV, w.AvgVinV) ||
					(c.step != "raw" && (g.Samples != w.Samples || (c.panel == "" && g.Panels != w.Panels))) {
					t.Fatalf("point %d: %+v, want %+v", i, g, w)
				}
			}
		})
	}
	// Auto step: a day is 15 min.
	var got telemetryAnswer
	f.getJSON(f.alice, fmt.Sprintf("/v1/systems/%d/telemetry", s2), url.Values{"to": {fmt.Sprint(t0.UnixMilli())}}, &got)
	if got.Step != "15m" || len(got.Points) != 96 {
		t.Fatalf("default range and step: %s, %d points", got.Step, len(got.Points))
	}
	// The GUID works as the id.
	f.getJSON(f.alice, "/v1/systems/04C05B000003/telemetry", url.Values{"to": {fmt.Sprint(t0.UnixMilli())}}, &got)
	if got.System != uint32(s2) || len(got.Points) != 96 {
		t.Fatalf("by GUID: system %d, %d points", got.System, len(got.Points))
	}
	// Too many points, too long a raw range.
	f.wantError(f.alice, fmt.Sprintf("/v1/systems/%d/telemetry", s2), url.Values{"step": {"1m"}, "from": {"0"}}, 400, "bad_request")
	f.wantError(f.alice, fmt.Sprintf("/v1/systems/%d/telemetry", s2), url.Values{"step": {"raw"}, "from": {fmt.Sprint(t0.Add(-72 * time.Hour).UnixMilli())}}, 400, "bad_request")
}

func TestTelemetryAnswers404WithoutData(t *testing.T) {
	f := newFleet(t, harnessOpts{store: true})
	viewer := f.account("viewer@example.com")
	f.grant(f.alice, f.sys[0], acl.EmailPrincipal("viewer@example.com"), acl.RoleViewer, time.Time{})
	f.grant(f.alice, f.sys[1], acl.EmailPrincipal("viewer@example.com"), acl.RoleData, time.Time{})
	var d locItem
	f.getJSON(viewer, fmt.Sprintf("/v1/systems/%d", f.sys[0]), nil, &d) // it may view s[0]
	for _, sub := range []string{"telemetry", "panels"} {
		f.wantError(viewer, fmt.Sprintf("/v1/systems/%d/%s", f.sys[0], sub), nil, 404, "not_found")  // view, no data
		f.wantError(viewer, fmt.Sprintf("/v1/systems/%d/%s", f.sys[2], sub), nil, 404, "not_found")  // nothing
		f.wantError(f.alice, fmt.Sprintf("/v1/systems/%d/%s", f.sys[6], sub), nil, 404, "not_found") // another org's
		f.wantError(f.alice, "/v1/systems/4242/"+sub, nil, 404, "not_found")
		var ok map[string]any
		f.getJSON(viewer, fmt.Sprintf("/v1/systems/%d/%s", f.sys[1], sub), nil, &ok) // data
	}
	// A member role with data but not view is no access either.
	f.must(f.alice, acl.PutMemberRole{Org: f.sunshine, Name: "meter", Perms: acl.PermData})
	meter := f.account("meter@sunshine.test")
	f.must(f.alice, acl.PutMember{Org: f.sunshine, Email: "meter@sunshine.test", Role: "meter"})
	f.wantError(meter, fmt.Sprintf("/v1/systems/%d/telemetry", f.sys[1]), nil, 404, "not_found")
	var fe struct{ Total int }
	f.getJSON(meter, "/v1/fleet/energy", nil, &fe)
	if fe.Total != 0 {
		t.Fatalf("fleet energy without view: %d systems", fe.Total)
	}
}

func TestPanelEnergyOfALocalDay(t *testing.T) {
	f := newFleet(t, harnessOpts{store: true})
	s0 := f.sys[0] // Europe/Berlin: June 20 is [June 19 22:00, June 20 22:00) UTC
	rs := f.history([]acl.SystemID{s0}, t0.Add(-36*time.Hour), t0)
	var got struct {
		Date     string `json:"date"`
		Timezone string `json:"timezone"`
		From     string `json:"from"`
		Items    []struct {
			Panel     string  `json:"panel"`
			Row       string  `json:"row"`
			Col       int     `json:"col"`
			EnergyWh  float64 `json:"energy_wh"`
			MaxPowerW float64 `json:"max_power_w"`
			Samples   int     `json:"samples"`
		} `json:"items"`
		Total int `json:"total"`
	}
	for _, date := range []string{"2026-06-20", "2026-06-19", ""} {
		f.getJSON(f.alice, fmt.Sprintf("/v1/systems/%d/panels", s0), url.Values{"date": {date}}, &got)
		day := date
		if day == "" {
			day = "2026-06-20" // today in Berlin at t0
		}
		berlin, _ := time.LoadLocation("Europe/Berlin")
		from, _ := time.ParseInLocation(time.DateOnly, day, berlin)
		to := from.AddDate(0, 0, 1)
		if got.Date != day || got.Timezone != "Europe/Berlin" || got.Total != 3 || len(got.Items) != 3 {
			t.Fatalf("date %q: %+v", date, got)
		}
		for i, it := range got.Items {
			var wh, n, mx uint64
			for _, r := range rs {
				if r.panel == it.Panel && !r.ts.Before(from) && r.ts.Before(to) {
					wh += uint64(r.wh)
					n++
					mx = max(mx, uint64(r.pin))
				}
			}
			if it.Panel != fmt.Sprintf("A%d", i+1) || it.Row != "A" || it.Col != i+1 || it.EnergyWh != float64(wh)/1000 ||
				it.Samples != int(n) || it.MaxPowerW != float64(mx)/10 {
				t.Fatalf("date %q panel %d: %+v, want %d mWh %d samples", date, i, it, wh, n)
			}
		}
	}
	f.wantError(f.alice, fmt.Sprintf("/v1/systems/%d/panels", s0), url.Values{"date": {"20.6.2026"}}, 400, "bad_request")
}

func TestFleetEnergyPushesTheCallersBitmapDown(t *testing.T) {
	f := newFleet(t, harnessOpts{store: true})
	with := []acl.SystemID{f.sys[0], f.sys[2], f.sys[3], f.sys[6]} // s[6] is the other org's
	rs := f.history(with, t0.Add(-36*time.Hour), t0)
	from, to := t0.Add(-30*time.Hour-7*time.Minute), t0
	until := t0.Add(-2 * time.Minute) // the rollup's 1-minute watermark: fleet sums read rollups only
	want := f.energyOf(rs, from, until)
	type item struct {
		ID       uint32  `json:"id"`
		GUID     string  `json:"guid"`
		Name     string  `json:"name"`
		EnergyWh float64 `json:"energy_wh"`
	}
	type answer struct {
		Items      []item  `json:"items"`
		Total      int     `json:"total"`
		NextCursor *string `json:"next_cursor"`
		Until      string  `json:"until"`
	}
	for _, arrayMax := range []int{1 << 20, 1} { // the ids as an array, then as a bitmap
		f.svc.opts.ArrayParamMax = arrayMax
		for _, sort := range []string{"-energy", "energy", "id", "-id"} {
			for _, limit := range []string{"2", "100"} {
				params := url.Values{"from": {fmt.Sprint(from.UnixMilli())}, "to": {to.Format(time.RFC3339)}, "sort": {sort}, "limit": {limit}}
				var items []item
				for {
					var a answer
					f.getJSON(f.alice, "/v1/fleet/energy", params, &a)
					if a.Total != 6 || a.Until != until.Format("2006-01-02T15:04:05.000Z07:00") {
						t.Fatalf("%v: total %d until %s", params, a.Total, a.Until)
					}
					items = append(items, a.Items...)
					if a.NextCursor == nil {
						break
					}
					params.Set("cursor", *a.NextCursor)
				}
				if len(items) != 6 {
					t.Fatalf("sort %s limit %s: %d items", sort, limit, len(items))
				}
				for i, it := range items {
					if w, ok := want[it.ID]; !ok || math.Abs(it.EnergyWh-w) > 1e-6 || it.Name == "" {
						t.Fatalf("item %+v, want %v Wh", it, w)
					}
					if i == 0 {
						continue
					}
					prev := items[i-1]
					var inOrder bool
					switch sort {
					case "-energy":
						inOrder = prev.EnergyWh > it.EnergyWh || prev.EnergyWh == it.EnergyWh && prev.ID > it.ID
					case "energy":
						inOrder = prev.EnergyWh < it.EnergyWh || prev.EnergyWh == it.EnergyWh && prev.ID < it.ID
					case "id":
						inOrder = prev.ID < it.ID
					default:
						inOrder = prev.ID > it.ID
					}
					if !inOrder {
						t.Fatalf("sort %s: %+v before %+v", sort, prev, it)
					}
				}
			}
		}
	}
	// A single system's owner: one system.
	hans := f.account("hans@mueller.de")
	var a energyAnswer
	f.getJSON(hans, "/v1/fleet/energy", url.Values{"from": {fmt.Sprint(from.UnixMilli())}, "to": {fmt.Sprint(to.UnixMilli())}}, &a)
	if a.Total != 1 || len(a.Items) != 1 || a.Items[0].ID != uint32(f.sys[0]) || math.Abs(a.Items[0].EnergyWh-want[uint32(f.sys[0])]) > 1e-6 {
		t.Fatalf("owner: %+v", a)
	}
}

// Over several days the minute cumulative table does not hold, fleet
// energy reads whole days from the day cumulative table (two rows per
// system) and the edges from rollups; the sums agree with the raw
// readings, also after late readings change an earlier day.
func TestFleetEnergyOverDaysUsesTheCumulativeTable(t *testing.T) {
	f := newFleet(t, harnessOpts{store: true})
	// Minute rows kept a day and a minute, with a day's margin: the minute
	// table is read for nothing older than a minute ago.
	f.svc.opts.MinuteRetention = 24*time.Hour + time.Minute
	with := []acl.SystemID{f.sys[0], f.sys[2], f.sys[6]} // s[6] is the other org's
	rs := f.history(with, t0.Add(-4*24*time.Hour), t0)
	from, to := t0.Add(-3*24*time.Hour-7*time.Minute), t0
	until := t0.Add(-2 * time.Minute)
	check := func(rs []reading) {
		t.Helper()
		want := f.energyOf(rs, from, until)
		for _, arrayMax := range []int{1 << 20, 1} {
			f.svc.opts.ArrayParamMax = arrayMax
			var a energyAnswer
			f.getJSON(f.alice, "/v1/fleet/energy", url.Values{"from": {fmt.Sprint(from.UnixMilli())}, "to": {fmt.Sprint(to.UnixMilli())}}, &a)
			if a.Total != 6 || len(a.Items) != 6 || a.Until != until.Format("2006-01-02T15:04:05.000Z07:00") {
				t.Fatalf("answer %+v", a)
			}
			for _, it := range a.Items {
				if w, ok := want[it.ID]; !ok || math.Abs(it.EnergyWh-w) > 1e-6 {
					t.Fatalf("system %d: %v Wh, want %v", it.ID, it.EnergyWh, w)
				}
			}
		}
		// The answer came through the cumulative table: two whole days.
		wm, err := f.svc.watermarks(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		cum := 0
		for _, tl := range planFleetTiles(from, to, wm, f.svc.cumWatermark(), f.svc.cumMinute()) {
			if tl.level == levelCum {
				cum++
				if got := tl.to.Sub(tl.from); got < 48*time.Hour {
					t.Fatalf("cumulative tile of %s", got)
				}
			}
		}
		if cum != 1 {
			t.Fatalf("%d cumulative tiles, want 1 (cumulative watermark %s)", cum, f.svc.cumWatermark())
		}
	}
	check(rs)

	// A late reading two days back.
	late := f.lateReading(f.sys[2], t0.Add(-50*time.Hour).Truncate(time.Minute).Add(30*time.Second), 777_000)
	check(append(rs, late))
}

// Over the last 7 whole days fleet energy reads one cumulative row per
// system — the row at the end carries the one 7 days before — and agrees
// with the raw readings, in every order, also after late readings change a
// day inside the span.
func TestFleetEnergyOverAWeekReadsOneRowPerSystem(t *testing.T) {
	f := newFleet(t, harnessOpts{store: true})
	to := t0.Truncate(24 * time.Hour)
	from := to.AddDate(0, 0, -7)
	with := []acl.SystemID{f.sys[0], f.sys[2], f.sys[6]} // s[6] is the other org's
	rs := f.history(with, from.Add(-5*time.Hour), t0)
	check := func(rs []reading) {
		t.Helper()
		want := f.energyOf(rs, from, to)
		for _, sort := range []string{"-energy", "energy", "id"} {
			var a energyAnswer
			f.getJSON(f.alice, "/v1/fleet/energy", url.Values{"from": {fmt.Sprint(from.UnixMilli())}, "to": {fmt.Sprint(to.UnixMilli())}, "sort": {sort}}, &a)
			if a.Total != 6 || len(a.Items) != 6 {
				t.Fatalf("sort %s: answer %+v", sort, a)
			}
			for _, it := range a.Items {
				if w, ok := want[it.ID]; !ok || math.Abs(it.EnergyWh-w) > 1e-6 {
					t.Fatalf("sort %s: system %d: %v Wh, want %v", sort, it.ID, it.EnergyWh, w)
				}
			}
		}
		// The plan: one cumulative tile of 7 days, read as one row per
		// system.
		wm, err := f.svc.watermarks(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		tiles := planFleetTiles(from, to, wm, f.svc.cumWatermark(), f.svc.cumMinute())
		if len(tiles) != 1 || tiles[0].level != levelCum {
			t.Fatalf("tiles %+v, want one cumulative tile (cumulative watermark %s)", tiles, f.svc.cumWatermark())
		}
		if _, one := cumPart(tiles[0], pushdown(roaring.BitmapOf(1), "ids", 0)); !one {
			t.Fatalf("a 7-day tile read as two rows per system")
		}
	}
	check(rs)

	// A late reading three days back.
	late := f.lateReading(f.sys[2], to.Add(-70*time.Hour).Add(30*time.Second), 555_000)
	check(append(rs, late))
}

// energyAnswer is the part of a /v1/fleet/energy answer tests compare.
type energyAnswer struct {
	Items []struct {
		ID       uint32  `json:"id"`
		EnergyWh float64 `json:"energy_wh"`
	} `json:"items"`
	Total int    `json:"total"`
	Until string `json:"until"`
}

// energyOf is the energy (Wh) of each of Sunshine's systems over [from, to)
// in rs, 0 for those without readings.
func (f *fleet) energyOf(rs []reading, from, to time.Time) map[uint32]float64 {
	want := map[uint32]float64{}
	for _, s := range f.sys[:6] {
		want[uint32(s)] = 0
	}
	for _, r := range rs {
		if _, ok := want[uint32(r.sys)]; ok && !r.ts.Before(from) && r.ts.Before(to) {
			want[uint32(r.sys)] += float64(r.wh) / 1000
		}
	}
	return want
}

// lateReading stores a reading of panel A1 of sys at ts after its minute
// was rolled up, marks the minute dirty as the flusher does, and runs a
// rollup pass.
func (h *harness) lateReading(sys acl.SystemID, ts time.Time, wh uint32) reading {
	h.t.Helper()
	late := reading{sys: sys, panel: "A1", ts: ts, pin: 100, wh: wh}
	ctx := context.Background()
	if err := h.store.Exec(ctx, "INSERT INTO readings (system_id, gateway_id, panel, ts, vin, iin, pin, vout, temp, rssi, wh) VALUES ({s:UInt32}, {s:UInt32}, 'A1', {ts:DateTime64(3, 'UTC')}, 0, 0, 100, 0, 0, 0, {wh:UInt32})",
		clickhouse.Named("s", fmt.Sprint(uint32(sys))), clickhouse.Named("ts", ts), clickhouse.Named("wh", fmt.Sprint(wh))); err != nil {
		h.t.Fatal(err)
	}
	if err := h.store.Exec(ctx, "INSERT INTO rollup_dirty (ts, system_id, marked_at) VALUES ({m:DateTime('UTC')}, {s:UInt32}, now64(3))",
		clickhouse.Named("m", ts.Truncate(time.Minute)), clickhouse.Named("s", fmt.Sprint(uint32(sys)))); err != nil {
		h.t.Fatal(err)
	}
	r := rollup.Start(rollup.Options{Store: h.store, Interval: time.Hour, Logger: h.svc.log, Now: h.clock.now})
	defer r.Stop()
	if err := r.Pass(ctx); err != nil {
		h.t.Fatal(err)
	}
	return late
}

// The bitmap parameter decodes in the engine to exactly the ids sent, in
// both of ClickHouse's layouts (small set up to 32 ids, roaring above).
func TestGroupBitmapStateDecodesInTheEngine(t *testing.T) {
	h := newHarness(t, harnessOpts{store: true})
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 31, 32, 33, 1000, 70_000} {
		bm := roaring.New()
		for bm.GetCardinality() < uint64(n) {
			bm.Add(rng.Uint32N(3_000_000))
		}
		if n == 70_000 {
			bm.AddRange(5_000_000, 5_100_000) // a run container
			bm.RunOptimize()
		}
		var card, sum, xor uint64
		err := h.store.QueryRow(context.Background(),
			"SELECT bitmapCardinality(b), arraySum(bitmapToArray(b)), toUInt64(arrayReduce('groupBitXor', bitmapToArray(b))) FROM (SELECT CAST(base64Decode({b:String}) AS AggregateFunction(groupBitmap, UInt32)) AS b)",
			clickhouse.Named("b", base64.StdEncoding.EncodeToString(GroupBitmapState(bm)))).Scan(&card, &sum, &xor)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		var wantSum, wantXor uint64
		for _, v := range bm.ToArray() {
			wantSum += uint64(v)
			wantXor ^= uint64(v)
		}
		if card != bm.GetCardinality() || sum != wantSum || xor != wantXor {
			t.Fatalf("n=%d: engine read %d ids (sum %d, xor %d), sent %d (sum %d, xor %d)", n, card, sum, xor, bm.GetCardinality(), wantSum, wantXor)
		}
	}
}

func TestPlanTiles(t *testing.T) {
	at := func(s string) time.Time {
		tt, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	wm := [4]time.Time{at("2026-06-20T11:58:00Z"), at("2026-06-20T11:45:00Z"), at("2026-06-20T11:00:00Z"), at("2026-06-20T00:00:00Z")}
	f := func(from, to string, top int, raw bool, want string) {
		t.Helper()
		got := ""
		for _, tl := range planTiles(at(from), at(to), top, wm, raw, 0) {
			name := "raw"
			if tl.level >= 0 {
				name = rollup.Levels[tl.level].Name
			}
			got += fmt.Sprintf("%s[%s,%s) ", name, tl.from.Format("02T15:04:05"), tl.to.Format("02T15:04:05"))
		}
		if got != want {
			t.Fatalf("plan(%s, %s, %d):\n got %s\nwant %s", from, to, top, got, want)
		}
	}
	f("2026-06-18T22:30:10Z", "2026-06-20T12:00:00Z", 3, true,
		"raw[18T22:30:10,18T22:31:00) 1m[18T22:31:00,18T22:45:00) 15m[18T22:45:00,18T23:00:00) 1h[18T23:00:00,19T00:00:00) "+
			"1d[19T00:00:00,20T00:00:00) 1h[20T00:00:00,20T11:00:00) 15m[20T11:00:00,20T11:45:00) 1m[20T11:45:00,20T11:58:00) raw[20T11:58:00,20T12:00:00) ")
	f("2026-06-18T22:30:10Z", "2026-06-20T12:00:00Z", 3, false,
		"1m[18T22:31:00,18T22:45:00) 15m[18T22:45:00,18T23:00:00) 1h[18T23:00:00,19T00:00:00) "+
			"1d[19T00:00:00,20T00:00:00) 1h[20T00:00:00,20T11:00:00) 15m[20T11:00:00,20T11:45:00) 1m[20T11:45:00,20T11:58:00) ")
	f("2026-06-20T10:00:00Z", "2026-06-20T10:30:00Z", 1, true, "15m[20T10:00:00,20T10:30:00) ")
	f("2026-06-20T11:50:00Z", "2026-06-20T11:59:00Z", 3, true, "1m[20T11:50:00,20T11:58:00) raw[20T11:58:00,20T11:59:00) ")
	f("2026-06-21T00:00:00Z", "2026-06-22T00:00:00Z", 3, true, "raw[21T00:00:00,22T00:00:00) ")
	f("2026-06-21T00:00:00Z", "2026-06-22T00:00:00Z", 3, false, "")
	// With raw stretches: short edges are read raw, not split further.
	g := func(from, to string, want string) {
		t.Helper()
		got := ""
		for _, tl := range planTiles(at(from), at(to), 1, wm, true, rawStretch) {
			name := "raw"
			if tl.level >= 0 {
				name = rollup.Levels[tl.level].Name
			}
			got += fmt.Sprintf("%s[%s,%s) ", name, tl.from.Format("02T15:04"), tl.to.Format("02T15:04"))
		}
		if got != want {
			t.Fatalf("plan(%s, %s) with raw stretches:\n got %s\nwant %s", from, to, got, want)
		}
	}
	g("2026-06-19T12:07:00Z", "2026-06-20T12:00:00Z", "raw[19T12:07,19T12:15) 15m[19T12:15,20T11:45) raw[20T11:45,20T12:00) ")
	g("2026-06-20T11:00:00Z", "2026-06-20T11:50:00Z", "raw[20T11:00,20T11:50) ")
}

// The system detail carries its lifetime energy (as far as the rollups go:
// lifetime_until), and fleet energy the specific yield of systems with a
// capacity, sortable.
func TestLifetimeEnergyAndSpecificYield(t *testing.T) {
	f := newFleet(t, harnessOpts{store: true})
	s0, s2 := f.sys[0], f.sys[2]
	rs := f.history([]acl.SystemID{s0, s2}, t0.Add(-30*time.Hour), t0)
	var before struct {
		Created time.Time `json:"created"`
	}
	f.getJSON(f.alice, fmt.Sprintf("/v1/systems/%d", s2), nil, &before)
	capacity, name := uint32(6400), "Sunny Acres Farm (renamed)"
	f.clock.set(t0.Add(time.Hour)) // the edit an hour after the commissioning
	f.must(f.alice, acl.EditSystem{System: s2, CapacityW: &capacity, Name: &name})
	f.clock.set(t0)
	f.refresh()
	var d struct {
		LifetimeWh float64   `json:"lifetime_energy_wh"`
		Until      string    `json:"lifetime_until"`
		CapacityW  *uint32   `json:"capacity_w"`
		Created    time.Time `json:"created"`
		Name       string    `json:"name"`
	}
	f.getJSON(f.alice, fmt.Sprintf("/v1/systems/%d", s2), nil, &d)
	// When it was commissioned, which an edit does not move.
	if before.Created.IsZero() || before.Created.After(t0) || !d.Created.Equal(before.Created) || d.Name != name {
		t.Fatalf("created %s, after an edit %s (%q)", before.Created, d.Created, d.Name)
	}
	until, err := time.Parse(time.RFC3339, d.Until)
	if err != nil {
		t.Fatalf("lifetime_until %q: %v", d.Until, err)
	}
	var want uint64
	for _, r := range rs {
		if r.sys == s2 && r.ts.Before(until) {
			want += uint64(r.wh)
		}
	}
	if math.Abs(d.LifetimeWh-float64(want)/1000) > 1e-9 || until.Before(t0.Add(-5*time.Minute)) || d.CapacityW == nil || *d.CapacityW != capacity {
		t.Fatalf("lifetime %v Wh until %s (want %v Wh), capacity %v", d.LifetimeWh, until, float64(want)/1000, d.CapacityW)
	}
	var fe struct {
		Items []struct {
			ID        uint32   `json:"id"`
			EnergyWh  float64  `json:"energy_wh"`
			CapacityW *uint32  `json:"capacity_w"`
			Yield     *float64 `json:"kwh_per_kwp"`
		} `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}
	params := url.Values{"from": {fmt.Sprint(t0.Add(-24 * time.Hour).UnixMilli())}, "to": {fmt.Sprint(t0.UnixMilli())}, "sort": {"-yield"}, "limit": {"2"}}
	f.getJSON(f.alice, "/v1/fleet/energy", params, &fe)
	if len(fe.Items) != 2 || fe.Items[0].ID != uint32(s2) || fe.Items[0].Yield == nil || fe.Items[1].Yield != nil || fe.NextCursor == nil {
		t.Fatalf("-yield: %+v", fe)
	}
	if got, want := *fe.Items[0].Yield, fe.Items[0].EnergyWh/1000/(float64(capacity)/1000); math.Abs(got-want) > 0.001 {
		t.Fatalf("kwh_per_kwp %v, want %v", got, want)
	}
	// Paging through the yield order lists every system once.
	seen := map[uint32]bool{}
	for page := 0; ; page++ {
		for _, it := range fe.Items {
			if seen[it.ID] {
				t.Fatalf("system %d listed twice", it.ID)
			}
			seen[it.ID] = true
		}
		if fe.NextCursor == nil || page > 10 {
			break
		}
		params.Set("cursor", *fe.NextCursor)
		fe.Items, fe.NextCursor = nil, nil
		f.getJSON(f.alice, "/v1/fleet/energy", params, &fe)
	}
	if len(seen) != 6 { // alice's org's six systems
		t.Fatalf("paged %d systems, want 6", len(seen))
	}
	// The CSV downloads hold the same: every system, every point.
	params.Del("cursor")
	params.Set("format", "csv")
	rows := f.getCSV(f.alice, "/v1/fleet/energy", params, false)
	if len(rows) != 7 || rows[1][0] != fmt.Sprint(s2) || rows[1][5] == "" || rows[2][5] != "" {
		t.Fatalf("fleet energy CSV: %v", rows)
	}
	var tel telemetryAnswer
	tp := url.Values{"from": {fmt.Sprint(t0.Add(-24 * time.Hour).UnixMilli())}, "to": {fmt.Sprint(t0.UnixMilli())}, "step": {"1h"}}
	f.getJSON(f.alice, fmt.Sprintf("/v1/systems/%d/telemetry", s0), tp, &tel)
	tp.Set("format", "csv")
	rows = f.getCSV(f.alice, fmt.Sprintf("/v1/systems/%d/telemetry", s0), tp, false)
	if len(rows) != len(tel.Points)+1 || rows[1][1] != fmt.Sprint(tel.Points[0].EnergyWh) {
		t.Fatalf("telemetry CSV: %d rows for %d points; first %v, %+v", len(rows), len(tel.Points), rows[1], tel.Points[0])
	}
}

// Fleet energy over every shape of range equals the sum of the raw
// readings up to where the rollups reach (Until): on a fresh start with
// nothing rolled up, then with history — whole days, the last 30 days to
// now (older than the minute table), the last 40 hours, today so far, the
// last hour, a range a minute long and odd minutes — and again after a late
// reading changes a minute inside them. Those inside the minute cumulative
// table are read from it alone.
func TestFleetEnergyOverAnyRangeEqualsTheRawSum(t *testing.T) {
	f := newFleet(t, harnessOpts{store: true})
	today := t0.Truncate(24 * time.Hour)
	lastMinute := t0.Add(-rollup.DefaultLateness) // the minute rollup's watermark
	type shape struct {
		name     string
		from, to time.Time
		minute   bool // read from the minute cumulative table alone
	}
	shapes := []shape{
		{"30 whole days", today.AddDate(0, 0, -30), today, false},
		{"last 30 days to now", t0.AddDate(0, 0, -30), t0, false},
		{"last 40 hours to now", t0.Add(-40 * time.Hour), t0, true},
		{"today so far", today, t0, true},
		{"one hour ago to now", t0.Add(-time.Hour), t0, true},
		{"a minute ago to now", t0.Add(-time.Minute), t0, false},
		{"a minute, an hour ago", t0.Add(-time.Hour), t0.Add(-59 * time.Minute), true},
		{"odd minutes", t0.Add(-47*time.Hour - 13*time.Minute), t0.Add(-3*time.Hour - 29*time.Minute), true},
		{"from the table's origin", t0.Add(-50 * time.Hour), t0.Add(-7 * time.Minute), true},
	}
	check := func(rs []reading, minuteTable bool) {
		t.Helper()
		for _, sh := range shapes {
			until := sh.to
			if lastMinute.Before(until) {
				until = lastMinute
			}
			if len(rs) == 0 || until.Before(sh.from) {
				until = sh.from // nothing rolled up in the range: zeros
			}
			want := f.energyOf(rs, sh.from, until)
			for _, sort := range []string{"-energy", "id", "-yield"} {
				var a energyAnswer
				f.getJSON(f.alice, "/v1/fleet/energy", url.Values{"from": {fmt.Sprint(sh.from.UnixMilli())}, "to": {fmt.Sprint(sh.to.UnixMilli())}, "sort": {sort}}, &a)
				if a.Total != 6 || len(a.Items) != 6 {
					t.Fatalf("%s, sort %s: answer %+v", sh.name, sort, a)
				}
				if a.Until != until.Format("2006-01-02T15:04:05.000Z07:00") {
					t.Fatalf("%s: until %s, want %s", sh.name, a.Until, until)
				}
				for _, it := range a.Items {
					if w, ok := want[it.ID]; !ok || math.Abs(it.EnergyWh-w) > 1e-6 {
						t.Fatalf("%s, sort %s: system %d: %v Wh, want %v", sh.name, sort, it.ID, it.EnergyWh, w)
					}
				}
			}
			// The brute-force baseline bench compares against answers the
			// same.
			bf, bfUntil, err := f.svc.FleetEnergyBruteForce(context.Background(), f.alice, sh.from, sh.to)
			if err != nil || !bfUntil.Equal(until) {
				t.Fatalf("%s: brute force until %s: %v", sh.name, bfUntil, err)
			}
			nonzero := 0
			for _, w := range want {
				if w > 0 {
					nonzero++
				}
			}
			if len(bf) != nonzero {
				t.Fatalf("%s: brute force %+v, want %v", sh.name, bf, want)
			}
			for _, e := range bf {
				if math.Abs(float64(e.EnergyMWh)/1000-want[uint32(e.ID)]) > 1e-6 {
					t.Fatalf("%s: brute force system %d: %d mWh, want %v Wh", sh.name, e.ID, e.EnergyMWh, want[uint32(e.ID)])
				}
			}
			if !minuteTable {
				continue
			}
			wm, err := f.svc.watermarks(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			tiles := planFleetTiles(sh.from, sh.to, wm, f.svc.cumWatermark(), f.svc.cumMinute())
			if only := len(tiles) == 1 && tiles[0].level == levelCumMinute; only != sh.minute {
				t.Fatalf("%s: tiles %+v (minute table %+v)", sh.name, tiles, f.svc.cumMinute())
			}
		}
	}
	// A fresh start: no readings, no rollups, no minute table.
	check(nil, false)

	with := []acl.SystemID{f.sys[0], f.sys[2], f.sys[3], f.sys[6]} // s[6] is the other org's
	rs := f.history(with, t0.Add(-50*time.Hour), t0)
	f.svc.loadWatermarks(context.Background())
	if sp := f.svc.cumMinute(); !sp.from.Equal(t0.Add(-50*time.Hour)) || !sp.to.Equal(lastMinute) {
		t.Fatalf("minute table spans %+v", sp)
	}
	check(rs, true)

	// A late reading 20 hours back, inside most of the ranges.
	late := f.lateReading(f.sys[2], t0.Add(-20*time.Hour).Add(30*time.Second), 888_000)
	f.svc.loadWatermarks(context.Background())
	check(append(rs, late), true)
}
