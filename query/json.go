package query

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// jsonBuf appends JSON by hand: answers are flat and hot (a page of 50
// locations in a few microseconds), and encoding/json's reflection would be
// most of a list request's time.
type jsonBuf struct{ b []byte }

func (w *jsonBuf) raw(s string) { w.b = append(w.b, s...) }

// key writes ,"name": (without the comma after '{' or '[').
func (w *jsonBuf) key(name string) {
	if n := len(w.b); n > 0 && w.b[n-1] != '{' && w.b[n-1] != '[' {
		w.b = append(w.b, ',')
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, name...)
	w.b = append(w.b, '"', ':')
}

// sep writes the comma between array elements.
func (w *jsonBuf) sep() {
	if n := len(w.b); n > 0 && w.b[n-1] != '[' {
		w.b = append(w.b, ',')
	}
}

const hexDigits = "0123456789abcdef"

// str writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func (w *jsonBuf) str(s string) {
	b := append(w.b, '"')
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
	w.b = append(b, '"')
}

// strOrNull writes s, or null when empty.
func (w *jsonBuf) strOrNull(s string) {
	if s == "" {
		w.raw("null")
		return
	}
	w.str(s)
}

func (w *jsonBuf) int(v int64)   { w.b = strconv.AppendInt(w.b, v, 10) }
func (w *jsonBuf) uint(v uint64) { w.b = strconv.AppendUint(w.b, v, 10) }

func (w *jsonBuf) bool(v bool) { w.b = strconv.AppendBool(w.b, v) }

// scaled writes v/div as a decimal number: deciwatts as watts, mWh as Wh.
func (w *jsonBuf) scaled(v float64, div float64) {
	w.b = strconv.AppendFloat(w.b, v/div, 'f', -1, 64)
}

// time writes t as an RFC 3339 UTC timestamp with milliseconds.
func (w *jsonBuf) time(t time.Time) {
	w.b = append(w.b, '"')
	w.b = t.UTC().AppendFormat(w.b, "2006-01-02T15:04:05.000Z07:00")
	w.b = append(w.b, '"')
}

// msOrNull writes Unix ms as a timestamp, or null for 0.
func (w *jsonBuf) msOrNull(ms int64) {
	if ms == 0 {
		w.raw("null")
		return
	}
	w.time(time.UnixMilli(ms))
}
