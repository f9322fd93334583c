package ingest

import (
	"math"
	"time"
)

// Validation of one reading.
//
// A reading is accepted only if every check below passes; otherwise it is
// rejected alone, with one Reason, and the rest of its batch goes on
// (DESIGN §5). The ranges are those of a per-panel DC optimizer behind one
// residential/commercial module, with margin; each fits its storage type
// (see the Scale* constants in reading.go), so an accepted reading always
// converts to its ScaledReading exactly.
//
//	field  unit      required  accepted range                 stored as
//	-----  --------  --------  -----------------------------  --------------------------
//	panel  label     yes       1–16 bytes of [A-Za-z0-9_.-]   String, e.g. "A1", "B12"
//	ts     Unix ms   yes       [now − MaxAge, now + 5 min]    DateTime64(3, 'UTC')
//	vin    V         no (0)    0 … 120                        UInt16 centivolts (≤ 655.35)
//	iin    A         no (0)    0 … 30                         UInt16 milliamps (≤ 65.535)
//	pin    W         yes       0 … 1500                       UInt16 deciwatts (≤ 6553.5)
//	vout   V         no (0)    0 … 120                        UInt16 centivolts
//	temp   °C        no (0)    −50 … 125                      Int16 deci-°C (±3276.7)
//	rssi   —         no (0)    0 … 255                        UInt8
//	wh     Wh        yes       0 … 2000                       UInt32 milliwatt-hours
//
// Every number must be finite. Bounds are inclusive and apply to the value as
// sent, before rounding to the storage scale.
//
// Required fields: panel and ts identify the row; pin is the headline "power
// now" figure; wh is what every energy total (today's energy, rollups, fleet
// energy) sums, so a missing wh would silently under-count energy. The other
// fields are diagnostics that some optimizer models do not report: a missing
// (or null) diagnostic is stored as 0. Unknown fields are ignored, so
// gateways may send more than this version reads.
//
// A panel label is case-sensitive and limited to the ASCII characters above so
// that it is safe in URLs, logs, metrics and ClickHouse without escaping.
//
// Two readings of the same panel and ts in one request are both accepted;
// duplicate rows are the storage layer's to collapse, as they are across
// requests.

// Validation ranges, inclusive, in the units gateways send.
const (
	MinVin, MaxVin   = 0, 120   // V
	MinIin, MaxIin   = 0, 30    // A
	MinPin, MaxPin   = 0, 1500  // W
	MinVout, MaxVout = 0, 120   // V
	MinTemp, MaxTemp = -50, 125 // °C
	MinRSSI, MaxRSSI = 0, 255   // as reported
	MinWh, MaxWh     = 0, 2000  // Wh per interval
	MaxPanelLen      = 16       // bytes
)

// Time bounds of validation.
const (
	// MaxFuture is how far a reading's ts may be ahead of the server clock
	// (DESIGN §5): enough for a gateway clock that drifts, not for one that
	// is set to the wrong day.
	MaxFuture = 5 * time.Minute
	// DefaultMaxAge is Limits.MaxAge when unset: a gateway that lost its
	// uplink for a month can still upload its buffer.
	DefaultMaxAge = 35 * 24 * time.Hour
)

// Reason says why a reading was rejected. Its String is stable and meant for
// API responses and as a Prometheus label value.
type Reason uint8

// Reasons. The zero value, ReasonNone, means the reading was accepted.
const (
	ReasonNone             Reason = iota
	ReasonMalformedReading        // the element is not a JSON object
	ReasonDuplicateField          // a known field appears twice
	ReasonMissingField            // a required field is absent or null
	ReasonTypeInvalid             // a field has the wrong JSON type, or a number is not valid JSON
	ReasonNotFinite               // NaN, ±Inf, or a number too large for float64
	ReasonPanelInvalid            // panel is not 1–16 bytes of [A-Za-z0-9_.-]
	ReasonTSInvalid               // ts is not an integer number nor an RFC 3339 string
	ReasonTSFuture                // ts is more than 5 minutes after the server clock
	ReasonTSTooOld                // ts is older than the retention window
	ReasonVinRange
	ReasonIinRange
	ReasonPinRange
	ReasonVoutRange
	ReasonTempRange
	ReasonRSSIRange
	ReasonWhRange
	// ReasonTooManyPanels: a new panel label of a system that has its
	// Options.MaxPanels labels already (checked by the service, not by
	// Validate).
	ReasonTooManyPanels
	numReasons
)

var reasonNames = [numReasons]string{
	ReasonNone:             "none",
	ReasonMalformedReading: "malformed_reading",
	ReasonDuplicateField:   "duplicate_field",
	ReasonMissingField:     "missing_field",
	ReasonTypeInvalid:      "type_invalid",
	ReasonNotFinite:        "not_finite",
	ReasonPanelInvalid:     "panel_invalid",
	ReasonTSInvalid:        "ts_invalid",
	ReasonTSFuture:         "ts_future",
	ReasonTSTooOld:         "ts_too_old",
	ReasonVinRange:         "vin_range",
	ReasonIinRange:         "iin_range",
	ReasonPinRange:         "pin_range",
	ReasonVoutRange:        "vout_range",
	ReasonTempRange:        "temp_range",
	ReasonRSSIRange:        "rssi_range",
	ReasonWhRange:          "wh_range",
	ReasonTooManyPanels:    "too_many_panels",
}

var reasonMessages = [numReasons]string{
	ReasonNone:             "accepted",
	ReasonMalformedReading: "reading is not a JSON object",
	ReasonDuplicateField:   "field appears more than once",
	ReasonMissingField:     "required field missing (panel, ts, pin and wh are required)",
	ReasonTypeInvalid:      "field has the wrong type or is not a valid JSON number",
	ReasonNotFinite:        "number is not finite",
	ReasonPanelInvalid:     "panel must be 1-16 characters of A-Z a-z 0-9 _ . -",
	ReasonTSInvalid:        "ts must be integer Unix milliseconds or an RFC 3339 string",
	ReasonTSFuture:         "ts is more than 5 minutes in the future",
	ReasonTSTooOld:         "ts is older than the retention window",
	ReasonVinRange:         "vin outside 0..120 V",
	ReasonIinRange:         "iin outside 0..30 A",
	ReasonPinRange:         "pin outside 0..1500 W",
	ReasonVoutRange:        "vout outside 0..120 V",
	ReasonTempRange:        "temp outside -50..125 °C",
	ReasonRSSIRange:        "rssi outside 0..255",
	ReasonWhRange:          "wh outside 0..2000 Wh",
	ReasonTooManyPanels:    "the system has as many panel labels as it may have (--ingest-max-panels); a new label is refused",
}

// String returns the stable snake_case name of r, e.g. "ts_future".
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Message returns a short human-readable explanation of r.
func (r Reason) Message() string {
	if r < numReasons {
		return reasonMessages[r]
	}
	return "unknown"
}

// Reasons returns every rejection reason (all but ReasonNone), e.g. to
// initialise a counter vector's label values.
func Reasons() []Reason {
	rs := make([]Reason, 0, numReasons-1)
	for r := ReasonNone + 1; r < numReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

// Field names a reading field, to say which one a Problem is about.
type Field uint8

// Fields, in the order gateways usually send them. FieldNone is for problems
// about the whole reading.
const (
	FieldNone Field = iota
	FieldPanel
	FieldTS
	FieldVin
	FieldIin
	FieldPin
	FieldVout
	FieldTemp
	FieldRSSI
	FieldWh
	numFields
)

var fieldNames = [numFields]string{"", "panel", "ts", "vin", "iin", "pin", "vout", "temp", "rssi", "wh"}

// String returns the JSON key of f ("" for FieldNone).
func (f Field) String() string {
	if f < numFields {
		return fieldNames[f]
	}
	return "unknown"
}

// Limits are the time bounds of validation. The zero value is valid: see
// each field for its default.
type Limits struct {
	// MaxAge rejects readings older than now−MaxAge (ts_too_old). Pass the
	// readings table's retention window. Values ≤ 0 mean DefaultMaxAge,
	// never "unlimited".
	MaxAge time.Duration
}

// maxAgeMS returns MaxAge in milliseconds with the default applied.
func (l *Limits) maxAgeMS() int64 {
	if l.MaxAge <= 0 {
		return DefaultMaxAge.Milliseconds()
	}
	return l.MaxAge.Milliseconds()
}

// Validate checks r against the table at the top of this file, with nowMS
// the server clock in Unix milliseconds, and returns the first failing check
// (ReasonNone if r is accepted) and the field it concerns. Fields are checked
// in the order panel, ts, vin, iin, pin, vout, temp, rssi, wh. Validate does
// not know whether a field was present: the decoder reports missing fields.
func (l *Limits) Validate(r *Reading, nowMS int64) (Reason, Field) {
	if !ValidPanel(r.Panel) {
		return ReasonPanelInvalid, FieldPanel
	}
	if r.TS > nowMS+MaxFuture.Milliseconds() {
		return ReasonTSFuture, FieldTS
	}
	if r.TS < nowMS-l.maxAgeMS() {
		return ReasonTSTooOld, FieldTS
	}
	if reason, f := checkRange(r.Vin, MinVin, MaxVin, ReasonVinRange, FieldVin); reason != ReasonNone {
		return reason, f
	}
	if reason, f := checkRange(r.Iin, MinIin, MaxIin, ReasonIinRange, FieldIin); reason != ReasonNone {
		return reason, f
	}
	if reason, f := checkRange(r.Pin, MinPin, MaxPin, ReasonPinRange, FieldPin); reason != ReasonNone {
		return reason, f
	}
	if reason, f := checkRange(r.Vout, MinVout, MaxVout, ReasonVoutRange, FieldVout); reason != ReasonNone {
		return reason, f
	}
	if reason, f := checkRange(r.Temp, MinTemp, MaxTemp, ReasonTempRange, FieldTemp); reason != ReasonNone {
		return reason, f
	}
	if reason, f := checkRange(r.RSSI, MinRSSI, MaxRSSI, ReasonRSSIRange, FieldRSSI); reason != ReasonNone {
		return reason, f
	}
	return checkRange(r.Wh, MinWh, MaxWh, ReasonWhRange, FieldWh)
}

func checkRange(x, lo, hi float64, reason Reason, f Field) (Reason, Field) {
	if lo <= x && x <= hi {
		return ReasonNone, FieldNone
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return ReasonNotFinite, f
	}
	return reason, f
}

// ValidPanel reports whether p is a valid panel label: 1–16 bytes, each one
// of A–Z, a–z, 0–9, '_', '.', '-'.
func ValidPanel(p []byte) bool {
	if len(p) == 0 || len(p) > MaxPanelLen {
		return false
	}
	for _, c := range p {
		if !panelChar[c] {
			return false
		}
	}
	return true
}

var panelChar = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['_'], t['.'], t['-'] = true, true, true
	return t
}()
