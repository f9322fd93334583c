package ingest

import (
	"math"
	"math/rand"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseFloat(t *testing.T) {
	tests := []struct {
		in     string
		want   float64
		reason Reason
	}{
		{"0", 0, ReasonNone},
		{"-0", math.Copysign(0, -1), ReasonNone},
		{"38.2", 38.2, ReasonNone},
		{"-50.25", -50.25, ReasonNone},
		{"1e3", 1000, ReasonNone},
		{"1E+3", 1000, ReasonNone},
		{"2.5e-3", 0.0025, ReasonNone},
		{"0.1000000000000000055511151231257827", 0.1, ReasonNone},
		{"123456789012345678", 123456789012345678, ReasonNone},
		{"4.9e-324", 5e-324, ReasonNone},
		{"1e-400", 0, ReasonNone},
		{"1e309", 0, ReasonNotFinite},
		{"-1e309", 0, ReasonNotFinite},
		{"NaN", 0, ReasonNotFinite},
		{"-inf", 0, ReasonNotFinite},
		{"Infinity", 0, ReasonNotFinite},
		{"", 0, ReasonTypeInvalid},
		{"-", 0, ReasonTypeInvalid},
		{"+1", 0, ReasonTypeInvalid},
		{"01", 0, ReasonTypeInvalid},
		{"-01", 0, ReasonTypeInvalid},
		{"1.", 0, ReasonTypeInvalid},
		{".5", 0, ReasonTypeInvalid},
		{"1e", 0, ReasonTypeInvalid},
		{"1e+", 0, ReasonTypeInvalid},
		{"1.2.3", 0, ReasonTypeInvalid},
		{"1-2", 0, ReasonTypeInvalid},
		{"0x10", 0, ReasonTypeInvalid},
		{"1_000", 0, ReasonTypeInvalid},
	}
	for _, tt := range tests {
		got, reason := parseFloat([]byte(tt.in))
		if reason != tt.reason || (reason == ReasonNone && math.Float64bits(got) != math.Float64bits(tt.want)) {
			t.Errorf("parseFloat(%q) = %v, %v; want %v, %v", tt.in, got, reason, tt.want, tt.reason)
		}
	}
}

// TestParseFloatMatchesStrconv checks exact agreement with strconv on many
// seeded random numbers in the shapes gateways send and in awkward ones.
func TestParseFloatMatchesStrconv(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200_000; i++ {
		var s string
		switch i % 4 {
		case 0: // what optimizers send: a few decimals
			s = strconv.FormatFloat(rng.Float64()*2000, 'f', rng.Intn(5), 64)
		case 1: // shortest round-trip form of any float
			s = strconv.FormatFloat(math.Float64frombits(rng.Uint64()), 'g', -1, 64)
		case 2: // 15–20 significant digits, around the fast path's edge
			s = strconv.FormatFloat(rng.Float64()*math.Pow10(rng.Intn(10)), 'f', 10+rng.Intn(10), 64)
		case 3:
			s = strconv.FormatFloat(rng.NormFloat64()*1e6, 'e', rng.Intn(18), 64)
		}
		want, err := strconv.ParseFloat(s, 64)
		got, reason := parseFloat([]byte(s))
		if err != nil || math.IsInf(want, 0) || math.IsNaN(want) {
			if reason == ReasonNone {
				t.Fatalf("parseFloat(%q) accepted, strconv: %v, %v", s, want, err)
			}
			continue
		}
		if reason != ReasonNone || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("parseFloat(%q) = %v, %v; strconv %v", s, got, reason, want)
		}
	}
}

func TestParseIntegers(t *testing.T) {
	uints := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true},
		{"1842", 1842, true},
		{"18446744073709551615", math.MaxUint64, true},
		{"18446744073709551616", 0, false},
		{"99999999999999999999", 0, false},
		{"00", 0, false},
		{"-1", 0, false},
		{"1.0", 0, false},
		{"", 0, false},
	}
	for _, tt := range uints {
		if got, ok := parseUint([]byte(tt.in)); got != tt.want || ok != tt.ok {
			t.Errorf("parseUint(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	ints := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1763798400000", 1763798400000, true},
		{"-1", -1, true},
		{"9223372036854775807", math.MaxInt64, true},
		{"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false},
		{"-", 0, false},
		{"1e3", 0, false},
	}
	for _, tt := range ints {
		if got, ok := parseInt([]byte(tt.in)); got != tt.want || ok != tt.ok {
			t.Errorf("parseInt(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseRFC3339(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"2025-11-22T08:00:00Z", 1763798400000, true},
		{"2025-11-22t08:00:00z", 1763798400000, true},
		{"2025-11-22T09:30:00+01:30", 1763798400000, true},
		{"2025-11-22T03:00:00-05:00", 1763798400000, true},
		{"2025-11-22T08:00:00.1Z", 1763798400100, true},
		{"2025-11-22T08:00:00.123456789Z", 1763798400123, true},
		{"1970-01-01T00:00:00Z", 0, true},
		{"1969-12-31T23:59:59.999Z", -1, true},
		{"2024-02-29T00:00:00Z", 1709164800000, true},
		{"0000-01-01T00:00:00Z", -62167219200000, true},
		{"9999-12-31T23:59:59Z", 253402300799000, true},
		{"2025-02-29T00:00:00Z", 0, false},
		{"2100-02-29T00:00:00Z", 0, false},
		{"2025-13-01T00:00:00Z", 0, false},
		{"2025-00-01T00:00:00Z", 0, false},
		{"2025-11-00T00:00:00Z", 0, false},
		{"2025-04-31T00:00:00Z", 0, false},
		{"2025-11-22T24:00:00Z", 0, false},
		{"2025-11-22T08:60:00Z", 0, false},
		{"2025-11-22T08:00:60Z", 0, false},
		{"2025-11-22T08:00:00", 0, false},
		{"2025-11-22 08:00:00Z", 0, false},
		{"2025-11-22T08:00:00.Z", 0, false},
		{"2025-11-22T08:00:00.1234567890Z", 0, false},
		{"2025-11-22T08:00:00+0100", 0, false},
		{"2025-11-22T08:00:00+24:00", 0, false},
		{"2025-11-22T08:00:00+01:60", 0, false},
		{"2025-11-22T08:00:00ZZ", 0, false},
		{"+025-11-22T08:00:00Z", 0, false},
		{"2025-1-22T08:00:00Z", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseRFC3339([]byte(tt.in))
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseRFC3339(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzParseRFC3339 checks that whatever parseRFC3339 accepts, package time
// accepts too and reads as the same instant.
func FuzzParseRFC3339(f *testing.F) {
	f.Add("2025-11-22T09:00:00.250+01:00")
	f.Add("1969-12-31T23:59:59.999999999-23:59")
	f.Add("2024-02-29t00:00:00z")
	shape := regexp.MustCompile(`^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)$`)
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseRFC3339([]byte(s))
		if !ok {
			return
		}
		if !shape.MatchString(s) {
			t.Fatalf("accepted %q, which is not RFC 3339", s)
		}
		// package time wants upper-case T and Z.
		tm, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
		if err != nil {
			t.Fatalf("accepted %q, time.Parse: %v", s, err)
		}
		if want := tm.UnixMilli(); got != want {
			t.Fatalf("parseRFC3339(%q) = %d, time.Parse says %d", s, got, want)
		}
	})
}
