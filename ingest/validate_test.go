package ingest

import (
	"math"
	"regexp"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/api/reply"
)

func TestValidPanel(t *testing.T) {
	tests := []struct {
		panel string
		want  bool
	}{
		{"A1", true},
		{"B12", true},
		{"roof-2.string_3", true},
		{"0123456789abcdef", true},
		{"", false},
		{"0123456789abcdefg", false},
		{"A 1", false},
		{"A/1", false},
		{"A\x001", false},
		{"Ä1", false},
		{"A1\n", false},
		{`A"1`, false},
	}
	for _, tt := range tests {
		if got := ValidPanel([]byte(tt.panel)); got != tt.want {
			t.Errorf("ValidPanel(%q) = %v, want %v", tt.panel, got, tt.want)
		}
	}
}

func TestValidateNonFiniteValues(t *testing.T) {
	var l Limits
	for _, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		for f := FieldVin; f < numFields; f++ {
			r := validWant
			r.setNumber(f, x)
			if reason, field := l.Validate(&r, testNowMS); reason != ReasonNotFinite || field != f {
				t.Errorf("%s = %v: %v %v, want not_finite %v", f, x, reason, field, f)
			}
		}
	}
}

func TestValidateMaxAge(t *testing.T) {
	tests := []struct {
		name   string
		maxAge time.Duration
		ageMS  int64
		want   Reason
	}{
		{"default window accepts 35 days", 0, DefaultMaxAge.Milliseconds(), ReasonNone},
		{"default window rejects 35 days + 1 ms", 0, DefaultMaxAge.Milliseconds() + 1, ReasonTSTooOld},
		{"negative MaxAge means the default, not unlimited", -1, DefaultMaxAge.Milliseconds() + 1, ReasonTSTooOld},
		{"a one-year window accepts 300 days", 365 * 24 * time.Hour, 300 * 86400e3, ReasonNone},
		{"a one-day window rejects two days", 24 * time.Hour, 2 * 86400e3, ReasonTSTooOld},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := Limits{MaxAge: tt.maxAge}
			r := withTS(testNowMS - tt.ageMS)
			if got, _ := l.Validate(&r, testNowMS); got != tt.want {
				t.Fatalf("%v, want %v", got, tt.want)
			}
		})
	}
}

// TestValidationRangesFitStorage proves the promise of validate.go: every
// accepted value converts to its storage integer without saturating.
func TestValidationRangesFitStorage(t *testing.T) {
	ranges := []struct {
		name      string
		lo, hi    float64
		scale     float64
		tmin, tmx float64
	}{
		{"vin", MinVin, MaxVin, ScaleVolts, 0, math.MaxUint16},
		{"iin", MinIin, MaxIin, ScaleAmps, 0, math.MaxUint16},
		{"pin", MinPin, MaxPin, ScaleWatts, 0, math.MaxUint16},
		{"vout", MinVout, MaxVout, ScaleVolts, 0, math.MaxUint16},
		{"temp", MinTemp, MaxTemp, ScaleCelsius, math.MinInt16, math.MaxInt16},
		{"rssi", MinRSSI, MaxRSSI, 1, 0, math.MaxUint8},
		{"wh", MinWh, MaxWh, ScaleWh, 0, math.MaxUint32},
	}
	for _, r := range ranges {
		if r.lo*r.scale < r.tmin || r.hi*r.scale > r.tmx {
			t.Errorf("%s: range %v..%v × %v does not fit %v..%v", r.name, r.lo, r.hi, r.scale, r.tmin, r.tmx)
		}
	}
}

func TestReasonNamesAreStableLabels(t *testing.T) {
	label := regexp.MustCompile(`^[a-z][a-z_]*[a-z]$`)
	seen := map[string]bool{}
	for _, r := range Reasons() {
		name := r.String()
		if !label.MatchString(name) || seen[name] || name == "none" {
			t.Errorf("reason %d: name %q is not a unique snake_case label", r, name)
		}
		seen[name] = true
		if r.Message() == "" {
			t.Errorf("reason %s has no message", name)
		}
	}
	if len(seen) != int(numReasons)-1 {
		t.Errorf("%d reasons, want %d", len(seen), numReasons-1)
	}
	// Names are API: a rename must be deliberate.
	for r, want := range map[Reason]string{ReasonTSFuture: "ts_future", ReasonTSTooOld: "ts_too_old", ReasonPanelInvalid: "panel_invalid",
		ReasonVinRange: "vin_range", ReasonNotFinite: "not_finite", ReasonMissingField: "missing_field"} {
		if r.String() != want {
			t.Errorf("%d: %q, want %q", r, r.String(), want)
		}
	}
	if Reason(200).String() != "unknown" || Field(200).String() != "unknown" {
		t.Error("out-of-range enum values must not panic")
	}
}

// TestProblemTextNeedsNoEscaping: the ingest answer writes each problem's
// text between quotes as it is (no escaping on the hot path), which is
// valid JSON only while no field name, reason or message needs escaping.
func TestProblemTextNeedsNoEscaping(t *testing.T) {
	for f := FieldNone; f < numFields; f++ {
		for _, r := range append(Reasons(), ReasonNone) {
			text := string(Problem{Reason: r, Field: f}.AppendText(nil))
			if got := string(reply.AppendString(nil, text)); got != `"`+text+`"` {
				t.Fatalf("field %d reason %s: %q needs escaping (%s)", f, r, text, got)
			}
		}
	}
}
