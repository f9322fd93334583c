package query

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
)

func TestFold(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := fold(in); got != want {
			t.Errorf("fold(%q) = %q, want %q", in, got, want)
		}
	}
	f("solar", "solar")
	f("Solar Farm", "solar farm")
	f("MÜLLER", "müller")
	f("Ñandú", "ñandú")
	f("ΣΟΛΑΡ", "σολαρ")
	f("a\x00b", "ab")
}

func sampleDocs() []searchDoc {
	raw := []struct {
		name string
		keys []string
	}{
		{"Müller Residence", []string{"hans@mueller.de", "a1b2-c3d4", "cca-00:11:22"}},
		{"Ñandú Solar", []string{"ana@nandu.ar", "ffee-0001"}},
		{"Sunny Acres Farm", []string{"monitoring@oursolarcompany.com", "ab12-0000"}},
		{"acme warehouse", []string{"ops@acme.com", "a1b2-ffff"}},
		{"Solar Acme", []string{"ops@acme.com"}},
	}
	var docs []searchDoc
	for i, r := range raw {
		d := searchDoc{id: uint32(i + 1), name: fold(r.name)}
		for _, k := range r.keys {
			d.keys = append(d.keys, fold(k))
		}
		docs = append(docs, d)
	}
	return docs
}

func TestTextIndexMatches(t *testing.T) {
	ti := buildTextIndex(sampleDocs())
	all := roaring.BitmapOf(1, 2, 3, 4, 5)
	cases := []struct {
		name   string
		q      string
		within *roaring.Bitmap
		want   []uint32
	}{
		{"name substring in the middle", "sidenc", all, []uint32{1}},
		{"Unicode name, any case", fold("MÜLL"), all, []uint32{1}},
		{"Unicode first letter alone", fold("Ñ"), all, []uint32{2}},
		{"two-rune query", "ac", all, []uint32{3, 4, 5}},
		{"e-mail prefix", "monitoring@", all, []uint32{3}},
		{"e-mail prefix shared by two systems", "ops@ac", all, []uint32{4, 5}},
		{"GUID prefix", "a1b2", all, []uint32{1, 4}},
		{"short key prefix", "a1", all, []uint32{1, 4}},
		{"serial prefix", "cca-00", all, []uint32{1}},
		{"e-mail matches only as a prefix", "acme.com", all, nil},
		{"name and prefix together", "a", all, []uint32{1, 2, 3, 4, 5}},
		{"restricted to the caller's systems", "acme", roaring.BitmapOf(4), []uint32{4}},
		{"trigrams present but apart", "solar farm", all, nil},
		{"no such text", "zzz", all, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ti.match(c.q, c.within).ToArray()
			if fmt.Sprint(got) != fmt.Sprint(c.want) && !(len(got) == 0 && len(c.want) == 0) {
				t.Fatalf("match(%q) = %v, want %v", c.q, got, c.want)
			}
		})
	}
}

// The index answers exactly what a scan of every document answers, for
// random names, keys, queries and caller sets.
func TestTextIndexAgreesWithScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	alphabet := []rune("abcdeéñüo -@.")
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	var docs []searchDoc
	for id := uint32(1); id <= 2000; id++ {
		d := searchDoc{id: id, name: fold(word(3 + rng.IntN(12)))}
		for range rng.IntN(3) {
			d.keys = append(d.keys, fold(word(2+rng.IntN(8))))
		}
		docs = append(docs, d)
	}
	ti := buildTextIndex(append([]searchDoc(nil), docs...))
	for i := range 3000 {
		q := fold(word(1 + rng.IntN(5)))
		within := roaring.New()
		for _, d := range docs {
			if rng.IntN(3) > 0 {
				within.Add(d.id)
			}
		}
		want := roaring.New()
		for _, d := range docs {
			if !within.Contains(d.id) {
				continue
			}
			hit := strings.Contains(d.name, q)
			for _, k := range d.keys {
				hit = hit || strings.HasPrefix(k, q)
			}
			if hit {
				want.Add(d.id)
			}
		}
		if got := ti.match(q, within); !got.Equals(want) {
			t.Fatalf("query %d %q: index %v, scan %v", i, q, got.ToArray(), want.ToArray())
		}
	}
}
