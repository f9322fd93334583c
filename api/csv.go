package api

import (
	"context"
	"strconv"
	"time"

	"github.com/fleetscope/fleetscope/api/reply"
	"github.com/fleetscope/fleetscope/query"
)

// CSV answers (DESIGN §5): GET /v1/locations, /v1/fleet/energy and
// /v1/systems/{id}/telemetry answer text/csv to `Accept: text/csv` or
// ?format=csv — every page, no limit, streamed as the pages are read: the
// reports installers hand to customers and accountants. The first page is
// read before the answer starts, so a bad request still gets its JSON
// error; a failure later ends the download short (and is logged).

// csvPage is the page size CSV reads with.
const csvPage = 500

// csvTimeout bounds a whole CSV download's reads: a 200 k-system fleet is
// 400 pages.
const csvTimeout = 5 * time.Minute

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func msTime(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

func (s *Server) csvFailed(endpoint string) func(error) {
	return func(err error) { s.opts.Logger.Warn("api: CSV download cut short", "endpoint", endpoint, "err", err) }
}

func (s *Server) locationsCSV(c *call, lq query.LocationsQuery) error {
	lq.Limit, lq.Cursor = csvPage, ""
	first, err := s.opts.Query.Locations(c.caller, lq)
	if err != nil {
		return err
	}
	caller := c.caller
	header := []string{"id", "guid", "name", "address", "timezone", "monitored", "capacity_w", "owner_email", "installer",
		"status", "power_w", "energy_today_wh", "panels", "last_seen"}
	reply.StreamCSV(c.ctx, "locations.csv", header, func(w *reply.CSV) error {
		page := first
		for {
			for _, l := range page.Items {
				capacity := ""
				if l.CapacityW > 0 {
					capacity = strconv.FormatUint(uint64(l.CapacityW), 10)
				}
				w.Row(strconv.FormatUint(uint64(l.ID), 10), l.GUID, l.Name, l.Address, l.Timezone, strconv.FormatBool(l.Monitored),
					capacity, l.OwnerEmail, l.InstallerName, l.Status.String(), num(float64(l.PowerDW)/10),
					num(float64(l.EnergyMWh)/1000), strconv.Itoa(int(l.Panels)), msTime(l.LastSeen))
			}
			if page.NextCursor == "" {
				return nil
			}
			if err := w.Flush(); err != nil {
				return err
			}
			lq.Cursor = page.NextCursor
			var err error
			if page, err = s.opts.Query.Locations(caller, lq); err != nil {
				return err
			}
		}
	}, s.csvFailed("locations"))
	return nil
}

func (s *Server) fleetEnergyCSV(c *call, fq query.FleetEnergyQuery) error {
	fq.Limit, fq.Cursor = csvPage, ""
	ctx, cancel := context.WithTimeout(context.Background(), csvTimeout)
	first, err := s.opts.Query.FleetEnergy(ctx, c.caller, fq)
	if err != nil {
		cancel()
		return err
	}
	caller := c.caller
	header := []string{"id", "guid", "name", "energy_wh", "capacity_w", "kwh_per_kwp", "from", "to", "until"}
	reply.StreamCSV(c.ctx, "fleet-energy.csv", header, func(w *reply.CSV) error {
		defer cancel()
		page := first
		for {
			for _, it := range page.Items {
				capacity, yield := "", ""
				if y, ok := it.Yield(); ok {
					capacity, yield = strconv.FormatUint(uint64(it.CapacityW), 10), strconv.FormatFloat(y, 'f', 3, 64)
				}
				w.Row(strconv.FormatUint(uint64(it.ID), 10), it.GUID, it.Name, num(float64(it.EnergyMWh)/1000), capacity, yield,
					page.From.Format(time.RFC3339), page.To.Format(time.RFC3339), page.Until.Format(time.RFC3339))
			}
			if page.NextCursor == "" {
				return nil
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fq.Cursor = page.NextCursor
			var err error
			if page, err = s.opts.Query.FleetEnergy(ctx, caller, fq); err != nil {
				return err
			}
		}
	}, s.csvFailed("fleet_energy"))
	return nil
}

func (s *Server) telemetryCSV(c *call, t query.Telemetry) error {
	header := []string{"ts", "energy_wh", "power_w", "max_panel_power_w", "max_temp_c", "samples", "panels"}
	if t.Panel != "" {
		header = []string{"ts", "energy_wh", "power_w", "max_power_w", "vin_v", "iin_a", "vout_v", "temp_c", "samples"}
	}
	raw := t.Step == "raw"
	name := "telemetry-" + strconv.FormatUint(uint64(t.System), 10) + ".csv"
	reply.StreamCSV(c.ctx, name, header, func(w *reply.CSV) error {
		for _, p := range t.Points {
			n := float64(max(p.Samples, 1))
			if raw {
				n = 1
			}
			ts := p.TS.UTC().Format(time.RFC3339)
			if t.Panel != "" {
				w.Row(ts, num(float64(p.EnergyMWh)/1000), num(float64(p.PinSumDW)/n/10), num(float64(p.PinMaxDW)/10),
					num(float64(p.VinSumCV)/n/100), num(float64(p.IinSumMA)/n/1000), num(float64(p.VoutSumCV)/n/100),
					num(float64(p.TempSumDC)/n/10), strconv.FormatUint(p.Samples, 10))
				continue
			}
			power := float64(p.PinSumDW) * float64(p.Panels) / n / 10 // the panels' average readings added up
			if raw {
				power = float64(p.PinSumDW) / 10
			}
			w.Row(ts, num(float64(p.EnergyMWh)/1000), num(power), num(float64(p.PinMaxDW)/10), num(float64(p.TempMaxDC)/10),
				strconv.FormatUint(p.Samples, 10), strconv.FormatUint(p.Panels, 10))
		}
		return nil
	}, s.csvFailed("telemetry"))
	return nil
}
