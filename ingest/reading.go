package ingest

import "math"

// Reading is one panel's telemetry at one instant, in the units gateways send.
//
// Readings are kept row by row (not column by column) because everything the
// ingest path does with them — decoding, validation, scaling, encoding the WAL
// record — works on one whole reading at a time; the batcher builds ClickHouse
// columns from many requests anyway.
type Reading struct {
	// Panel is the panel label, e.g. "A1" (see ValidPanel). When the Reading
	// comes from a Decoder it aliases the decoder's buffers: see Decoder.
	Panel []byte
	// TS is the end of the measured interval, Unix milliseconds (UTC).
	TS int64

	Vin  float64 // optimizer input (panel) voltage, V
	Iin  float64 // optimizer input current, A
	Pin  float64 // optimizer input power, W
	Vout float64 // optimizer output voltage, V
	Temp float64 // optimizer temperature, °C
	RSSI float64 // radio signal strength as reported by the gateway, 0–255
	Wh   float64 // energy produced by the panel in the interval ending at TS, Wh
}

// Storage scales: a reading is stored in ClickHouse as integers, value×scale
// rounded to nearest, so that T64+ZSTD codecs get each reading under 8 bytes.
// Queries divide by the same constants.
const (
	ScaleVolts   = 100  // vin, vout: centivolts in UInt16 (max 655.35 V)
	ScaleAmps    = 1000 // iin: milliamps in UInt16 (max 65.535 A)
	ScaleWatts   = 10   // pin: deciwatts in UInt16 (max 6553.5 W)
	ScaleCelsius = 10   // temp: deci-°C in Int16 (±3276.7 °C)
	ScaleWh      = 1000 // wh: milliwatt-hours in UInt32 (max 4 294 967.295 Wh)
	// rssi is stored as is, rounded, in UInt8.
)

// ScaledReading is a Reading in its storage encoding: the integer columns of
// the ClickHouse readings table (see the Scale* constants).
type ScaledReading struct {
	Panel []byte // aliases the source's buffer, like Reading.Panel
	TS    int64  // Unix milliseconds

	Vin  uint16 // centivolts
	Iin  uint16 // milliamps
	Pin  uint16 // deciwatts
	Vout uint16 // centivolts
	Temp int16  // deci-°C
	RSSI uint8  // as reported
	Wh   uint32 // milliwatt-hours
}

// Scaled returns r in its storage encoding, each value rounded to the nearest
// step of its scale. Every reading that passes Limits.Validate converts
// exactly (the validation ranges fit the integer types); values outside a
// type's range saturate at its bounds and NaN becomes 0, so Scaled never
// produces an implementation-defined conversion. Panel is shared, not copied.
func (r *Reading) Scaled() ScaledReading {
	return ScaledReading{
		Panel: r.Panel,
		TS:    r.TS,
		Vin:   scaleUint16(r.Vin, ScaleVolts),
		Iin:   scaleUint16(r.Iin, ScaleAmps),
		Pin:   scaleUint16(r.Pin, ScaleWatts),
		Vout:  scaleUint16(r.Vout, ScaleVolts),
		Temp:  scaleInt16(r.Temp, ScaleCelsius),
		RSSI:  uint8(scaleUint(r.RSSI, 1, math.MaxUint8)),
		Wh:    uint32(scaleUint(r.Wh, ScaleWh, math.MaxUint32)),
	}
}

// Reading is the inverse of Reading.Scaled: it returns the values in the
// units gateways send. For every ScaledReading s, s.Reading().Scaled() == s.
// Panel is shared, not copied.
func (s *ScaledReading) Reading() Reading {
	return Reading{
		Panel: s.Panel,
		TS:    s.TS,
		Vin:   float64(s.Vin) / ScaleVolts,
		Iin:   float64(s.Iin) / ScaleAmps,
		Pin:   float64(s.Pin) / ScaleWatts,
		Vout:  float64(s.Vout) / ScaleVolts,
		Temp:  float64(s.Temp) / ScaleCelsius,
		RSSI:  float64(s.RSSI),
		Wh:    float64(s.Wh) / ScaleWh,
	}
}

func scaleUint16(x, scale float64) uint16 {
	return uint16(scaleUint(x, scale, math.MaxUint16))
}

// scaleUint returns round(x*scale) clamped to [0, maxV]; NaN gives 0.
func scaleUint(x, scale, maxV float64) uint64 {
	v := math.Round(x * scale)
	if !(v > 0) { // also NaN
		return 0
	}
	if v > maxV {
		return uint64(maxV)
	}
	return uint64(v)
}

func scaleInt16(x, scale float64) int16 {
	v := math.Round(x * scale)
	switch {
	case v != v: // NaN
		return 0
	case v < math.MinInt16:
		return math.MinInt16
	case v > math.MaxInt16:
		return math.MaxInt16
	}
	return int16(v)
}

// setNumber sets the numeric field f (FieldVin … FieldWh); other fields are
// left alone.
func (r *Reading) setNumber(f Field, x float64) {
	switch f {
	case FieldVin:
		r.Vin = x
	case FieldIin:
		r.Iin = x
	case FieldPin:
		r.Pin = x
	case FieldVout:
		r.Vout = x
	case FieldTemp:
		r.Temp = x
	case FieldRSSI:
		r.RSSI = x
	case FieldWh:
		r.Wh = x
	}
}
