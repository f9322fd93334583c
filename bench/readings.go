package bench

import (
	"math"
	"math/rand/v2"
	"time"
)

// Columns are readings laid out the way the readings table stores them:
// scaled integers (see package store), one slice per column.
type Columns struct {
	SystemID  []uint32
	GatewayID []uint32
	Panel     []string
	TS        []int64  // Unix milliseconds, as the flusher sends them
	Vin       []uint16 // centivolts
	Iin       []uint16 // milliamps
	Pin       []uint16 // deciwatts
	Vout      []uint16 // centivolts
	Temp      []int16  // deci-°C
	RSSI      []uint8
	Wh        []uint32 // milliwatt-hours
}

// Len is the number of rows.
func (c *Columns) Len() int { return len(c.SystemID) }

// Row appends one reading.
func (c *Columns) add(sys, gw uint32, panel string, ts time.Time, vin, iin, pin, vout uint16, temp int16, rssi uint8, wh uint32) {
	c.SystemID = append(c.SystemID, sys)
	c.GatewayID = append(c.GatewayID, gw)
	c.Panel = append(c.Panel, panel)
	c.TS = append(c.TS, ts.UnixMilli())
	c.Vin = append(c.Vin, vin)
	c.Iin = append(c.Iin, iin)
	c.Pin = append(c.Pin, pin)
	c.Vout = append(c.Vout, vout)
	c.Temp = append(c.Temp, temp)
	c.RSSI = append(c.RSSI, rssi)
	c.Wh = append(c.Wh, wh)
}

// Sun is the clear-sky fraction of peak output at a time of day: a
// half-sine between 06:00 and 18:00 local solar time, zero at night.
func Sun(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60 + float64(t.Second())/3600
	if h < 6 || h > 18 {
		return 0
	}
	return math.Sin((h - 6) / 12 * math.Pi)
}

// PanelLabels returns n labels in the A1, A2, … B1 … style of a real
// layout, 12 panels to a string.
func PanelLabels(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = string(rune('A'+i/12%26)) + itoa(i%12+1)
	}
	return out
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// PanelReading is one panel's measurement at a moment, in physical units,
// on a diurnal curve with per-panel variation and sensor noise.
type PanelReading struct {
	Vin, Iin, Pin, Vout, Temp, RSSI, Wh float64
}

// Simulate returns a plausible reading for a panel rated peakW watts at t,
// for an interval of step since its previous reading.
func Simulate(rng *rand.Rand, t time.Time, step time.Duration, peakW float64) PanelReading {
	sun := Sun(t) * (0.85 + 0.15*rng.Float64())
	pin := peakW * sun
	vin := 0.0
	if sun > 0 {
		vin = 32 + 8*sun + rng.Float64()
	}
	iin := 0.0
	if vin > 0 {
		iin = pin / vin
	}
	return PanelReading{
		Vin: vin, Iin: iin, Pin: pin, Vout: vin * 0.98,
		Temp: 12 + 35*sun + 2*rng.Float64(), RSSI: float64(140 + rng.IntN(100)),
		Wh: pin * step.Hours(),
	}
}

// FleetColumns generates rows readings of a fleet: systems of panels
// panels each, every panel reporting once per step, starting at start. The
// same seed gives the same rows.
func FleetColumns(seed uint64, rows, panels int, start time.Time, step time.Duration) *Columns {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	labels := PanelLabels(panels)
	c := &Columns{}
	sys := uint32(1)
	t := start
	for c.Len() < rows {
		for p := 0; p < panels && c.Len() < rows; p++ {
			c.addSimulated(sys, labels[p], t, Simulate(rng, t, step, 400))
		}
		sys++
		if sys%1000 == 0 {
			t = t.Add(step)
		}
	}
	return c
}

// ArrivalColumns generates rows readings in the order a fleet of gateways
// delivers them to ingest, which is the order the flusher hands them to the
// engine: interval after interval, the gateways of each interval in a random
// order, each request one reading per panel. Unlike FleetColumns, a block of
// them is far from the table's sort order, so the engine sorts it on insert.
func ArrivalColumns(seed uint64, rows, gateways, panels int, start time.Time, step time.Duration) *Columns {
	rng := rand.New(rand.NewPCG(seed, 0xa11))
	labels := PanelLabels(panels)
	c := &Columns{}
	for t := start; c.Len() < rows; t = t.Add(step) {
		for _, g := range rng.Perm(gateways) {
			sys := uint32(g + 1)
			for p := 0; p < panels && c.Len() < rows; p++ {
				c.addSimulated(sys, labels[p], t, Simulate(rng, t, step, 400))
			}
		}
	}
	return c
}

// addSimulated appends a simulated reading in its storage scales.
func (c *Columns) addSimulated(sys uint32, panel string, t time.Time, r PanelReading) {
	c.add(sys, sys, panel, t, uint16(r.Vin*100), uint16(r.Iin*1000), uint16(r.Pin*10),
		uint16(r.Vout*100), int16(r.Temp*10), uint8(r.RSSI), uint32(r.Wh*1000))
}
