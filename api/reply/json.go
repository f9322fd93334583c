package reply

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Buf appends JSON by hand: answers are flat and hot (a page of 50
// locations in a few microseconds), and encoding/json's reflection would be
// most of a list request's time. The zero value is ready to use.
type Buf struct{ B []byte }

// Raw appends s as it is: punctuation and literals the caller knows to be
// JSON.
func (w *Buf) Raw(s string) { w.B = append(w.B, s...) }

// Key writes ,"name": (without the comma after '{' or '['). name must not
// need escaping: keys are the API's own field names.
func (w *Buf) Key(name string) {
	if n := len(w.B); n > 0 && w.B[n-1] != '{' && w.B[n-1] != '[' {
		w.B = append(w.B, ',')
	}
	w.B = append(w.B, '"')
	w.B = append(w.B, name...)
	w.B = append(w.B, '"', ':')
}

// Sep writes the comma between array elements.
func (w *Buf) Sep() {
	if n := len(w.B); n > 0 && w.B[n-1] != '[' {
		w.B = append(w.B, ',')
	}
}

// Str writes s as a JSON string.
func (w *Buf) Str(s string) { w.B = AppendString(w.B, s) }

// StrOrNull writes s, or null when empty.
func (w *Buf) StrOrNull(s string) {
	if s == "" {
		w.Raw("null")
		return
	}
	w.Str(s)
}

// Int writes v.
func (w *Buf) Int(v int64) { w.B = strconv.AppendInt(w.B, v, 10) }

// Uint writes v.
func (w *Buf) Uint(v uint64) { w.B = strconv.AppendUint(w.B, v, 10) }

// Bool writes v.
func (w *Buf) Bool(v bool) { w.B = strconv.AppendBool(w.B, v) }

// Scaled writes v/div as a decimal number: deciwatts as watts, mWh as Wh.
func (w *Buf) Scaled(v float64, div float64) {
	w.B = strconv.AppendFloat(w.B, v/div, 'f', -1, 64)
}

// Time writes t as an RFC 3339 UTC timestamp with milliseconds.
func (w *Buf) Time(t time.Time) {
	w.B = append(w.B, '"')
	w.B = t.UTC().AppendFormat(w.B, "2006-01-02T15:04:05.000Z07:00")
	w.B = append(w.B, '"')
}

// MsOrNull writes Unix ms as a timestamp, or null for 0.
func (w *Buf) MsOrNull(ms int64) {
	if ms == 0 {
		w.Raw("null")
		return
	}
	w.Time(time.UnixMilli(ms))
}

const hexDigits = "0123456789abcdef"

// AppendString appends s to b as a JSON string (RFC 8259): quotes,
// backslashes and control characters escaped, invalid UTF-8 as U+FFFD, and
// U+2028/U+2029 escaped so the answer is also valid JavaScript. Every rune
// above U+FFFF passes as its UTF-8 bytes, which JSON allows (Go's
// strconv.Quote would write \U0001xxxx, which JSON does not).
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
