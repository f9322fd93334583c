package query

import (
	"errors"
	"strings"
	"testing"
)

func TestCursorRoundTrip(t *testing.T) {
	f := func(c cursor) {
		t.Helper()
		s := encodeCursor(c)
		got, err := decodeCursor(s)
		if err != nil || got != c {
			t.Fatalf("%+v → %q → %+v, %v", c, s, got, err)
		}
	}
	f(cursor{sort: sortSpec{key: sortName}, scope: 7, id: 0, name: ""})
	f(cursor{sort: sortSpec{key: sortName, desc: true}, scope: 1 << 31, id: 1<<32 - 1, name: "müller résidence"})
	f(cursor{sort: sortSpec{key: sortPower, desc: true}, id: 42, key: 1 << 31})
	f(cursor{sort: sortSpec{key: sortLastSeen}, id: 3, key: 1763798400000})
	f(cursor{sort: sortSpec{key: sortFleetEnergy, desc: true}, id: 9, key: 1<<64 - 1})
	f(cursor{sort: sortSpec{key: sortName}, name: strings.Repeat("ǅ", 300)})
}

func TestCursorRejectsGarbage(t *testing.T) {
	for _, s := range []string{
		"", "!", "AQ", "AgAAAAAAAA", // unknown version
		encodeCursor(cursor{sort: sortSpec{key: sortName}, name: "x"}) + "A",     // trailing
		encodeCursor(cursor{sort: sortSpec{key: sortName}, name: "x"})[:8],       // truncated
		strings.Repeat("A", maxCursorLen+1),                                      // too long
		encodeCursor(cursor{sort: sortSpec{key: sortPower}, key: 1})[:10] + "_-", // mangled
	} {
		if _, err := decodeCursor(s); !errors.Is(err, errBadCursor) {
			t.Errorf("decodeCursor(%q) = %v, want errBadCursor", s, err)
		}
	}
}

// FuzzDecodeCursor: cursors come from clients. Decoding never panics, and
// what decodes encodes back to the same text (one text per cursor).
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(cursor{sort: sortSpec{key: sortName}, scope: 3, id: 5, name: "acme"}))
	f.Add(encodeCursor(cursor{sort: sortSpec{key: sortEnergy, desc: true}, id: 1, key: 77}))
	f.Add("AQQAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			return
		}
		if again := encodeCursor(c); again != s {
			t.Fatalf("%q decodes to %+v, which encodes to %q", s, c, again)
		}
	})
}
