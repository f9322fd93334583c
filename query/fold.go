package query

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// fold returns s in the form the search index compares: Unicode simple
// case folding to lower case ("MÜLLER" and "Müller" both become "müller",
// "ÑANDÚ" becomes "ñandú"). Accents are kept: "muller" does not match
// "Müller", as users type the name the way it is written.
func fold(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
		if 'A' <= c && c <= 'Z' {
			ascii = false
			break
		}
	}
	if ascii && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == 0 {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

// gram is one to three runes packed into one key, 21 bits per rune (any
// Unicode scalar fits). Indexed text never holds NUL (fold drops it), so a
// shorter gram, whose upper slots are zero, never equals a longer one.
type gram uint64

func makeGram(rs []rune) gram {
	var g gram
	for i, r := range rs {
		g |= gram(r&0x1FFFFF) << (21 * uint(i))
	}
	return g
}
