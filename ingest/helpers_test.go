package ingest

import (
	"fmt"
	"math/rand"
	"time"
)

// testNowMS is the clock of every test decoder: 2025-11-22T08:01:00Z, one
// minute after the timestamps of sampleBody.
const testNowMS = 1763798400000 + 60_000

func testNow() time.Time { return time.UnixMilli(testNowMS) }

func newTestDecoder(maxReadings int) *Decoder {
	return NewDecoder(DecoderOptions{MaxReadings: maxReadings, Now: testNow})
}

// sampleReadings returns n valid readings of one gateway interval (panels
// A1…, the same ts), with values drawn from a seeded source and rounded to
// what optimizers report.
func sampleReadings(n int, seed int64) []Reading {
	rng := rand.New(rand.NewSource(seed))
	rs := make([]Reading, n)
	for i := range rs {
		vin := 30 + rng.Float64()*10
		iin := rng.Float64() * 10
		rs[i] = Reading{
			Panel: fmt.Appendf(nil, "%c%d", 'A'+byte(i/26%26), 1+i%26+26*(i/676)),
			TS:    1763798400000,
			Vin:   round(vin, 1),
			Iin:   round(iin, 2),
			Pin:   round(vin*iin, 1),
			Vout:  round(vin-0.3, 1),
			Temp:  round(20+rng.Float64()*30, 1),
			RSSI:  float64(rng.Intn(256)),
			Wh:    round(vin*iin/12, 2),
		}
	}
	return rs
}

func round(x float64, decimals int) float64 {
	p := float64(1)
	for range decimals {
		p *= 10
	}
	v := float64(int64(x*p+0.5)) / p
	return v
}

// sampleBody is the JSON body of sampleReadings(n, 1) with seq 1842.
func sampleBody(n int) []byte { return AppendJSON(nil, 1842, sampleReadings(n, 1)) }

// sampleNDJSON is the NDJSON body of sampleReadings(n, 1) with seq 1842.
func sampleNDJSON(n int) []byte { return AppendNDJSON(nil, 1842, sampleReadings(n, 1)) }

// readingsEqual compares readings field by field, panels by content.
func readingsEqual(a, b []Reading) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d readings, want %d", len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		if string(x.Panel) != string(y.Panel) || x.TS != y.TS || x.Vin != y.Vin || x.Iin != y.Iin ||
			x.Pin != y.Pin || x.Vout != y.Vout || x.Temp != y.Temp || x.RSSI != y.RSSI || x.Wh != y.Wh {
			return fmt.Errorf("reading %d: got %+v (panel %q), want %+v (panel %q)", i, x, x.Panel, y, y.Panel)
		}
	}
	return nil
}

// scaledEqual compares scaled readings field by field, panels by content.
func scaledEqual(a, b *ScaledReading) bool {
	return string(a.Panel) == string(b.Panel) && a.TS == b.TS && a.Vin == b.Vin && a.Iin == b.Iin && a.Pin == b.Pin &&
		a.Vout == b.Vout && a.Temp == b.Temp && a.RSSI == b.RSSI && a.Wh == b.Wh
}
