package ingest

import (
	"math"
	"strconv"
)

// Number and timestamp parsing for the decoder. The scanner takes any run of
// [0-9.eE+-] (and the NaN/Infinity spellings) as a number token, so the
// raw text of every number goes through the strict RFC 8259 grammar here.
// These functions do not allocate, except for numbers longer than 32 bytes
// or beyond the float64 range (strconv's copy of the text and error value).

// float64pow10 holds the powers of ten that float64 represents exactly.
var float64pow10 = [...]float64{
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
}

// parseFloat parses s, the raw text of a JSON number, to the correctly
// rounded float64 (like strconv.ParseFloat). It returns ReasonTypeInvalid if s
// is not a JSON number and ReasonNotFinite for NaN/Infinity spellings and
// for numbers beyond the float64 range.
func parseFloat(s []byte) (float64, Reason) {
	i := 0
	neg := false
	if i < len(s) && s[i] == '-' {
		neg = true
		i++
	}
	// Integer part: 0 or [1-9][0-9]*; a fraction has at least one digit.
	start := i
	mant, ints, frac, dot, i := decimal(s, i) // mant wraps past 19 digits; only used when nd ≤ 19
	if ints == 0 {
		if isNonFinite(s[start:]) {
			return 0, ReasonNotFinite
		}
		return 0, ReasonTypeInvalid
	}
	if s[start] == '0' && ints > 1 {
		return 0, ReasonTypeInvalid // leading zero
	}
	if dot && frac == 0 {
		return 0, ReasonTypeInvalid
	}
	nd := ints + frac // digits, without the dot
	exp := false
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		exp = true
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		estart := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == estart {
			return 0, ReasonTypeInvalid
		}
	}
	if i != len(s) {
		return 0, ReasonTypeInvalid
	}
	if !exp && nd <= 19 && mant <= 1<<53 && frac < len(float64pow10) {
		// mant and 10^frac are exact float64s, so one division is
		// correctly rounded: the result equals strconv.ParseFloat's.
		f := float64(mant) / float64pow10[frac]
		if neg {
			f = -f
		}
		return f, ReasonNone
	}
	// The string(s) conversion stays on the stack for up to 32 bytes:
	// ParseFloat's argument does not escape.
	f, err := strconv.ParseFloat(string(s), 64)
	if math.IsInf(f, 0) {
		return 0, ReasonNotFinite
	}
	if err != nil {
		return 0, ReasonTypeInvalid
	}
	return f, ReasonNone
}

// decimal reads the integer and fraction digits of a number from s[i:]: the
// digits as one integer (it wraps past 19 digits), how many stand on each
// side of a '.', whether there was a '.', and where the digits end.
// parseFloat and the scanner's fast path (scanner.float) share it.
func decimal(s []byte, i int) (mant uint64, ints, frac int, dot bool, end int) {
	start := i
	for i < len(s) && isDigit(s[i]) {
		mant = mant*10 + uint64(s[i]-'0')
		i++
	}
	ints = i - start
	if i < len(s) && s[i] == '.' {
		dot = true
		i++
		fstart := i
		for i < len(s) && isDigit(s[i]) {
			mant = mant*10 + uint64(s[i]-'0')
			i++
		}
		frac = i - fstart
	}
	return mant, ints, frac, dot, i
}

// isNonFinite reports whether s is a NaN or infinity spelling the scanner
// takes as a number token ("nan", "inf", "infinity", any case, signed).
func isNonFinite(s []byte) bool {
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	return equalFoldASCII(s, "nan") || equalFoldASCII(s, "inf") || equalFoldASCII(s, "infinity")
}

func equalFoldASCII(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseInt parses s as a JSON integer: -?(0|[1-9][0-9]*), within int64.
func parseInt(s []byte) (int64, bool) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	u, ok := parseUint(s)
	if !ok {
		return 0, false
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// parseUint parses s as a non-negative JSON integer: 0|[1-9][0-9]*, within
// uint64.
func parseUint(s []byte) (uint64, bool) {
	if len(s) == 0 || len(s) > 20 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	var u uint64
	for _, c := range s {
		if !isDigit(c) {
			return 0, false
		}
		d := uint64(c - '0')
		if u > (math.MaxUint64-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	return u, true
}

// parseRFC3339 parses an RFC 3339 date-time, e.g. "2025-11-22T08:00:00Z" or
// "2025-11-22T09:00:00.250+01:00", to Unix milliseconds. 'T' and 'Z' may be
// lower case (RFC 3339 §5.6); the fraction has 1–9 digits and is truncated
// to milliseconds; seconds are 00–59 (no leap seconds, like package time);
// the offset is at most ±23:59.
func parseRFC3339(s []byte) (int64, bool) {
	// 2006-01-02T15:04:05 is 19 bytes, then [.frac] and Z or ±hh:mm.
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	rest := s[19:]
	var ms int64
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		if n == 1 || n > 10 {
			return 0, false
		}
		// Milliseconds are the first three fraction digits, padded with zeros.
		for k := 1; k <= 3; k++ {
			ms *= 10
			if k < n {
				ms += int64(rest[k] - '0')
			}
		}
		rest = rest[n:]
	}
	var offset int64 // seconds east of UTC
	switch {
	case len(rest) == 1 && (rest[0] == 'Z' || rest[0] == 'z'):
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, okh := digits(rest[1:3])
		om, okm := digits(rest[4:6])
		if !okh || !okm || oh > 23 || om > 59 {
			return 0, false
		}
		offset = int64(oh*3600 + om*60)
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return 0, false
	}
	days := daysFromCivil(year, month, day)
	secs := days*86400 + int64(hour*3600+minute*60+sec) - offset
	return secs*1000 + ms, true
}

// digits parses a fixed-width run of ASCII digits.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the number of days from 1970-01-01 to the given
// proleptic Gregorian date (H. Hinnant's days_from_civil).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400 // [0, 399]
	mp := (m + 9) % 12 // March = 0
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
