package ingest

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// scanner reads one JSON text in a single pass without building a tree: the
// decoder asks for the token it expects next (a key, a number, a string, a
// value to skip) and the scanner checks it and moves on. A tree parser
// (fastjson) cost 17 µs per 30-reading body, most of it building and then
// visiting the tree; see BenchmarkDecodeJSON for what this costs.
//
// The language is RFC 8259 JSON with two leniencies that keep one bad
// number from failing a whole request: a number token is any run of
// [0-9.eE+-] (parseFloat, parseInt and parseUint then apply the strict
// grammar, so "01" or "1." rejects one reading), and the non-finite
// spellings NaN, Inf and Infinity, signed or not and in any case, are number
// tokens too (what Python's json module writes for non-finite floats; the
// reading is then rejected as not finite). Strings are strict: no raw
// control characters, only the escapes RFC 8259 defines. Bytes that are not
// UTF-8 pass through (labels are validated against their own alphabet).
type scanner struct {
	b   []byte
	pos int
	err error // the first syntax error; once set, every method fails
}

// maxDepth bounds nesting: skipping a hostile [[[[… must not exhaust the
// stack.
const maxDepth = 300

var errSyntax = errors.New("syntax error")

func (s *scanner) reset(b []byte) { *s = scanner{b: b} }

// fail records a syntax error at the current position and stops the scan.
func (s *scanner) fail(what string) bool {
	if s.err == nil {
		if s.pos >= len(s.b) {
			s.err = fmt.Errorf("%w: %s at the end of the input", errSyntax, what)
		} else {
			s.err = fmt.Errorf("%w: %s at byte %d (%q)", errSyntax, what, s.pos, s.b[s.pos])
		}
	}
	s.pos = len(s.b)
	return false
}

// peek skips white space and returns the next byte, or 0 at the end.
func (s *scanner) peek() byte {
	if s.pos < len(s.b) && s.b[s.pos] > ' ' {
		return s.b[s.pos] // no white space: the common case, inlined
	}
	return s.peekSlow()
}

func (s *scanner) peekSlow() byte {
	for s.pos < len(s.b) {
		switch c := s.b[s.pos]; c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return c
		}
	}
	return 0
}

// consume skips white space and the byte c if it is next.
func (s *scanner) consume(c byte) bool {
	if s.peek() == c && s.err == nil {
		s.pos++
		return true
	}
	return false
}

// expect is consume, failing when c is not next.
func (s *scanner) expect(c byte, what string) bool {
	if s.consume(c) {
		return true
	}
	return s.fail("want " + what)
}

// end reports whether only white space is left.
func (s *scanner) end() bool {
	if s.peek() != 0 || s.pos < len(s.b) {
		return s.fail("unexpected data after the JSON value")
	}
	return s.err == nil
}

// next reports whether a container has another element: it consumes the
// ',' before it, or the closing byte after the last one.
func (s *scanner) next(closing byte) bool {
	if s.consume(',') {
		return true
	}
	if s.consume(closing) {
		return false
	}
	if closing == '}' {
		return s.fail("want ',' or '}'")
	}
	return s.fail("want ',' or ']'")
}

// str reads a string at the current position (after white space) and
// returns its raw content between the quotes, and whether that holds
// escapes (see unescape).
func (s *scanner) str() (raw []byte, escaped, ok bool) {
	if s.peek() != '"' {
		return nil, false, s.fail("want a string")
	}
	b := s.b
	start := s.pos + 1
	for i := start; i < len(b); {
		c := b[i]
		if !strSpecial[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			s.pos = i + 1
			return b[start:i], escaped, true
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				s.pos = len(b)
				return nil, false, s.fail("unterminated string")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex4(b[i+2:i+6]) {
					s.pos = i
					return nil, false, s.fail(`invalid \u escape`)
				}
				i += 6
			default:
				s.pos = i
				return nil, false, s.fail("invalid escape")
			}
		default:
			s.pos = i
			return nil, false, s.fail("control character in string")
		}
	}
	s.pos = len(b)
	return nil, false, s.fail("unterminated string")
}

// strSpecial marks the bytes that end a run of plain string content.
var strSpecial = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// key reads an object key and the ':' after it. A key with escapes is
// unescaped into *scratch.
func (s *scanner) key(scratch *[]byte) ([]byte, bool) {
	raw, escaped, ok := s.str()
	if !ok || !s.expect(':', "':' after an object key") {
		return nil, false
	}
	if escaped {
		*scratch = unescape((*scratch)[:0], raw)
		return *scratch, true
	}
	return raw, true
}

// numChar marks the bytes of a number token's outline.
var numChar = func() (t [256]bool) {
	for _, c := range []byte("0123456789.eE+-") {
		t[c] = true
	}
	return t
}()

// isNumberStart reports whether c begins a number token (numbers and the
// non-finite spellings; "null" also begins with n: check it first).
func isNumberStart(c byte) bool {
	return numChar[c] || c == 'n' || c == 'N' || c == 'i' || c == 'I'
}

// number reads a number token: the outline run or a non-finite spelling.
func (s *scanner) number() ([]byte, bool) {
	s.peek()
	b := s.b
	start, i := s.pos, s.pos
	for i < len(b) && numChar[b[i]] {
		i++
	}
	if i == start || (i == start+1 && (b[start] == '-' || b[start] == '+')) {
		j := i
		for j < len(b) && (b[j]|0x20 >= 'a' && b[j]|0x20 <= 'z') {
			j++
		}
		if j == i || !isNonFinite(b[start:j]) {
			return nil, s.fail("want a value")
		}
		i = j
	}
	s.pos = i
	return b[start:i], true
}

// float reads a number token as a float64, with parseFloat's reasons. The
// common token (an optional minus, at most 19 digits with an optional
// fraction, no exponent) is parsed as it is scanned; anything else is
// scanned whole and left to parseFloat. Both give the same value: the fast
// path is parseFloat's own exact case.
func (s *scanner) float() (float64, Reason, bool) {
	s.peek()
	b, i := s.b, s.pos
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start := i
	mant, ints, frac, dot, i := decimal(b, i)
	if ints > 0 && (ints == 1 || b[start] != '0') && !(dot && frac == 0) && ints+frac <= 19 &&
		mant <= 1<<53 && frac < len(float64pow10) && (i == len(b) || !numChar[b[i]]) {
		s.pos = i
		f := float64(mant) / float64pow10[frac]
		if neg {
			f = -f
		}
		return f, ReasonNone, true
	}
	raw, ok := s.number()
	if !ok {
		return 0, ReasonNone, false
	}
	x, reason := parseFloat(raw)
	return x, reason, true
}

// int reads a number token as an int64 (parseInt's grammar); valid is
// false for a token that is not an integer in range.
func (s *scanner) int() (v int64, valid, ok bool) {
	s.peek()
	b, i := s.b, s.pos
	start := i
	for i < len(b) && isDigit(b[i]) && i-start < 18 {
		v = v*10 + int64(b[i]-'0')
		i++
	}
	if i > start && (i-start == 1 || b[start] != '0') && (i == len(b) || !numChar[b[i]]) {
		s.pos = i
		return v, true, true
	}
	raw, ok := s.number()
	if !ok {
		return 0, false, false
	}
	v, valid = parseInt(raw)
	return v, valid, true
}

// literal consumes lit if it is next.
func (s *scanner) literal(lit string) bool {
	if s.peek() != lit[0] {
		return false // inlined: values are rarely literals
	}
	return s.literalRest(lit)
}

func (s *scanner) literalRest(lit string) bool {
	if len(s.b)-s.pos >= len(lit) && string(s.b[s.pos:s.pos+len(lit)]) == lit {
		s.pos += len(lit)
		return true
	}
	return false
}

// skip reads and discards one value of any kind, nested at depth.
func (s *scanner) skip(depth int) bool {
	if depth >= maxDepth {
		return s.fail(fmt.Sprintf("nesting deeper than %d", maxDepth))
	}
	switch c := s.peek(); c {
	case '{':
		s.pos++
		if s.consume('}') {
			return true
		}
		var scratch []byte
		for {
			if _, ok := s.key(&scratch); !ok || !s.skip(depth+1) {
				return false
			}
			if !s.next('}') {
				return s.err == nil
			}
		}
	case '[':
		s.pos++
		if s.consume(']') {
			return true
		}
		for {
			if !s.skip(depth + 1) {
				return false
			}
			if !s.next(']') {
				return s.err == nil
			}
		}
	case '"':
		_, _, ok := s.str()
		return ok
	case 't':
		return s.literal("true") || s.fail("want a value")
	case 'f':
		return s.literal("false") || s.fail("want a value")
	}
	if s.literal("null") {
		return true
	}
	_, ok := s.number()
	return ok
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if hexVal(c) < 0 {
			return false
		}
	}
	return true
}

func hexVal(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

func hex4(b []byte) rune {
	return hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3])
}

// unescape appends the value of raw, the content of a string str has
// checked, to dst. A UTF-16 surrogate pair becomes one character; a lone
// surrogate becomes U+FFFD, as in encoding/json.
func unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch e := raw[i+1]; e {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i+2:])
			i += 6
			if utf16High(r) && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
				if lo := hex4(raw[i+2:]); utf16Low(lo) {
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
					i += 6
				}
			}
			dst = utf8.AppendRune(dst, r) // a lone surrogate is appended as U+FFFD
			continue
		default: // '"', '\\', '/'
			dst = append(dst, e)
		}
		i += 2
	}
	return dst
}

func utf16High(r rune) bool { return 0xD800 <= r && r < 0xDC00 }
func utf16Low(r rune) bool  { return 0xDC00 <= r && r < 0xE000 }
