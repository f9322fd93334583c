package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/bench"
	"github.com/fleetscope/fleetscope/ingest"
)

// demoHistoryDays is how much history the demo fleet starts with: enough
// for the 7- and 30-day views to be full on first sight.
const demoHistoryDays = 30

// demoRecent is the end of the demo's history that its gateways post
// through the ingest API at the first start (postRecentDemo), rather than
// the engine writing it: the live state then counts each site's energy
// today — whatever its time zone, a local day is within the last 26 hours
// — as it would have had the readings come as they were made.
const demoRecent = 26 * time.Hour

// demoStep is the interval of the demo's history.
const demoStep = 5 * time.Minute

// backfillDemo writes the demo fleet's history before `until` into the
// readings table — a reading per panel every 5 minutes from
// demoHistoryDays before, a sun over each site's local day and a cloudiness
// per site and day — generated in the engine (one INSERT … SELECT per
// system), then rewinds the rollup worker so that history, heat maps and
// rankings are full once it has caught up (a minute or so).
// postRecentDemo posts what comes after, the simulator what comes then.
func (s *server) backfillDemo(ctx context.Context, until time.Time) error {
	snap := s.acl.Snapshot()
	from := until.Add(-demoHistoryDays * 24 * time.Hour).Truncate(time.Hour)
	steps := int(until.Sub(from) / demoStep)
	for i, site := range demoSites {
		if !site.monitored {
			continue
		}
		id, ok := snap.SystemByGUID(fmt.Sprintf("DEMO-%04d", i+1))
		if !ok {
			continue
		}
		gws := snap.Gateways(id)
		if len(gws) == 0 {
			continue
		}
		panels := demoPanels(i)
		err := s.store.Exec(ctx, `INSERT INTO readings (system_id, gateway_id, panel, ts, vin, iin, pin, vout, temp, rssi, wh)
SELECT {sys:UInt32}, {gw:UInt32}, concat(char(65 + intDiv(p, 12) % 26), toString(p % 12 + 1)), t,
	toUInt16(if(s > 0, (32 + 8 * s) * 100, 0)), toUInt16(if(s > 0, pw / (32 + 8 * s) * 1000, 0)), toUInt16(round(pw * 10)),
	toUInt16(if(s > 0, (32 + 8 * s) * 98, 0)), toInt16(round((12 + 35 * s) * 10)), toUInt8(140 + (p * 7 + m) % 100),
	toUInt32(round(pw * {step:UInt32} / 3600 * 1000))
FROM (
	SELECT number % {panels:UInt32} AS p, intDiv(number, {panels:UInt32}) AS m,
		toDateTime64({from:Int64} + m * {step:UInt32}, 3, 'UTC') AS t,
		toHour(t, {tz:String}) + toMinute(t, {tz:String}) / 60 AS h,
		0.55 + 0.45 * (cityHash64({sys:UInt32}, toDate(t, {tz:String})) % 1000) / 1000 AS cloud,
		if(h < 6 OR h > 18, 0, sin((h - 6) / 12 * pi())) * cloud AS s,
		{peak:Float64} * s * (0.92 + (p % 5) / 50) AS pw
	FROM numbers({n:UInt64}))`,
			clickhouse.Named("sys", strconv.FormatUint(uint64(id), 10)), clickhouse.Named("gw", strconv.FormatUint(uint64(gws[0].ID), 10)),
			clickhouse.Named("panels", strconv.Itoa(panels)), clickhouse.Named("from", strconv.FormatInt(from.Unix(), 10)),
			clickhouse.Named("tz", acl.Zone(site.tz).String()), clickhouse.Named("peak", strconv.FormatFloat(demoPeakW(i), 'f', -1, 64)),
			clickhouse.Named("n", strconv.Itoa(steps*panels)), clickhouse.Named("step", strconv.Itoa(int(demoStep.Seconds()))))
		if err != nil {
			return fmt.Errorf("demo history of %s: %w", site.name, err)
		}
	}
	if s.rollup == nil {
		s.log.Warn("demo history written, but this node runs no rollup worker (--rollup=false): it shows once another node's has rolled it up")
		return nil
	}
	return s.rollup.Rewind(ctx, from)
}

// demoPanels is the panel count of demo site i; demoPeakW its panels' peak
// power — the simulator posts the same — a little under their nameplate
// rating, demoNameplateW, as real panels' is.
func demoPanels(i int) int    { return 12 + (i*7)%19 }
func demoPeakW(i int) float64 { return 360 + float64(i%4)*15 }

const demoNameplateW = 410

// postRecentDemo posts the last demoRecent of the demo's history before
// until through the ingest API, each gateway its readings in time order (an
// hour of them per request), as gateways coming back online upload what
// they buffered. It returns where the engine-written history is to end.
func postRecentDemo(ctx context.Context, base string, gws []demoGateway, until time.Time) (time.Time, error) {
	from := until.Add(-demoRecent).Truncate(demoStep)
	errs := make(chan error, len(gws))
	for i, gw := range gws {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			api := &bench.API{Base: base, Token: gw.Key}
			labels := bench.PanelLabels(gw.Panels)
			for hour := from; hour.Before(until); hour = hour.Add(time.Hour) {
				var readings []ingest.Reading
				for t := hour; t.Before(hour.Add(time.Hour)) && t.Before(until); t = t.Add(demoStep) {
					for p := range gw.Panels {
						r := bench.Simulate(rng, t.In(gw.loc), demoStep, gw.peakW*(0.92+float64(p%5)/50))
						readings = append(readings, ingest.Reading{Panel: []byte(labels[p]), TS: t.UnixMilli(), Vin: r.Vin, Iin: r.Iin,
							Pin: r.Pin, Vout: r.Vout, Temp: r.Temp, RSSI: r.RSSI, Wh: r.Wh})
					}
				}
				// Seqs below the simulator's, which start at the clock's seconds.
				if err := api.Post(ctx, "/v1/ingest", ingest.AppendJSON(nil, uint64(hour.Unix()), readings)); err != nil {
					errs <- fmt.Errorf("demo history: %w", err)
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range gws {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return from, first
}
