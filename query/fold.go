package query

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Fold returns s in the form search compares (DESIGN §5): case and accents
// folded, so that "muller" finds "Müller Residence", "jurgen" finds
// "Jürgen", "strasse" finds "Straße" and "sao" finds "São". Text is
// decomposed (NFKD), its combining marks dropped, then Unicode full case
// folding applied (golang.org/x/text: "ß" and "ẞ" fold to "ss"); letters
// that carry their stroke in the letter itself, which no decomposition
// removes, are mapped by hand (ø→o, ł→l, đ→d, æ→ae, œ→oe, þ→th, ı→i). NUL
// is dropped (the gram index never holds it). The index folds every name
// and key once, each query once; both must fold alike.
func Fold(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' || c == 0 {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD") // fold what a reader would see
	}
	f := folders.Get().(transform.Transformer)
	defer folders.Put(f)
	f.Reset()
	out, _, err := transform.String(f, s)
	if err != nil {
		return strings.ToLower(s) // not reached with valid UTF-8
	}
	return out
}

// fold is Fold inside the package.
func fold(s string) string { return Fold(s) }

// strokeLetters are letters whose diacritic is part of the letter: NFKD
// leaves them whole.
var strokeLetters = strings.NewReplacer(
	"ø", "o", "Ø", "o", "ł", "l", "Ł", "l", "đ", "d", "Đ", "d", "ð", "d", "Ð", "d",
	"æ", "ae", "Æ", "ae", "œ", "oe", "Œ", "oe", "þ", "th", "Þ", "th", "ı", "i", "ħ", "h", "Ħ", "h",
)

// folders pools the folding transformer chain: it keeps state and is not
// safe for concurrent use.
var folders = sync.Pool{New: func() any {
	return transform.Chain(
		norm.NFKD,
		runes.Remove(runes.Predicate(func(r rune) bool { return unicode.Is(unicode.Mn, r) || r == 0 })),
		cases.Fold(),
		strokeTransformer{},
	)
}}

// strokeTransformer applies strokeLetters; the output is at most twice
// the input (ae, oe, th from one rune of two bytes).
type strokeTransformer struct{ transform.NopResetter }

func (strokeTransformer) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		r, size := utf8.DecodeRune(src[nSrc:])
		if r == utf8.RuneError && size == 1 && !atEOF && !utf8.FullRune(src[nSrc:]) {
			return nDst, nSrc, transform.ErrShortSrc
		}
		rep := string(src[nSrc : nSrc+size])
		if r >= 0x80 {
			if m := strokeLetters.Replace(rep); m != rep {
				rep = m
			}
		}
		if nDst+len(rep) > len(dst) {
			return nDst, nSrc, transform.ErrShortDst
		}
		nDst += copy(dst[nDst:], rep)
		nSrc += size
	}
	return nDst, nSrc, nil
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
