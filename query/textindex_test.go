package query

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/RoaringBitmap/roaring/v2"
)

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
		{"accented first letter alone: folded, any n", fold("Ñ"), all, []uint32{1, 2, 3}},
		{"accents folded both ways", fold("múller"), all, []uint32{1}},
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
		{"a word's substring, by the word index", "rehou", all, []uint32{4}},
		{"no word holds it, two words together do", "mewar", all, nil},
		{"no such text", "zzz", all, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, _ := ti.match(c.q, c.within, func() *roaring.Bitmap { return c.within })
			got := m.bitmap().ToArray()
			if fmt.Sprint(got) != fmt.Sprint(c.want) && !(len(got) == 0 && len(c.want) == 0) {
				t.Fatalf("match(%q) = %v, want %v", c.q, got, c.want)
			}
		})
	}
}

// The index answers exactly what a scan of every document answers, for
// random names, keys, queries and caller sets — with few documents, and
// with enough sharing prefixes and names that prefix ranges get heavy
// bitmaps and verification meets repeated names.
func TestTextIndexAgreesWithScan(t *testing.T) {
	// (The small catalogue's callers are sparse: roaring answers. The
	// largest one's are dense: answers from parts of over denseAnswerIDs
	// ids are words.)
	t.Run("small", func(t *testing.T) { textIndexAgreesWithScan(t, 2000, 3000, "abcdeéñüo -@.", 1, "*query.roaringSet") })
	t.Run("heavy prefixes", func(t *testing.T) { textIndexAgreesWithScan(t, 30_000, 1500, "abcé@.", 8, "*query.roaringSet") })
	t.Run("answers in words", func(t *testing.T) {
		textIndexAgreesWithScan(t, 100_000, 300, "abcdé@.", 3, "*query.denseSet", "*query.roaringSet")
	})
}

func textIndexAgreesWithScan(t *testing.T, n, queries int, letters string, keys int, reach ...string) {
	rng := rand.New(rand.NewPCG(7, uint64(n)))
	alphabet := []rune(letters)
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	var docs []searchDoc
	var names []string
	for id := uint32(1); id <= uint32(n); id++ {
		name := fold(word(3 + rng.IntN(12)))
		if len(names) > 0 && rng.IntN(3) == 0 {
			name = names[rng.IntN(len(names))] // a repeated name
		}
		names = append(names, name)
		d := searchDoc{id: id, name: name}
		for range rng.IntN(keys) {
			d.keys = append(d.keys, fold(word(2+rng.IntN(8))))
		}
		docs = append(docs, d)
	}
	ti := buildTextIndex(append([]searchDoc(nil), docs...))
	if keys > 3 && len(ti.heavy) == 0 {
		t.Fatal("no heavy prefix range: the test does not reach them")
	}
	pos := make([]int, n+1)
	for p, id := range ti.order.order {
		pos[id] = p
	}
	narrow := 0 // answers whose span is narrower than the whole order
	kinds := map[string]int{}
	for i := range queries {
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
		m, sp := ti.match(q, within, func() *roaring.Bitmap { return within })
		kinds[fmt.Sprintf("%T", m)]++
		if got := m.bitmap(); !got.Equals(want) || m.card() != int(want.GetCardinality()) {
			t.Fatalf("query %d %q (%T): index %v (card %d), scan %v", i, q, m, got.ToArray(), m.card(), want.ToArray())
		}
		m.release()
		// Pages walk only the span: it must hold every answer.
		for _, id := range want.ToArray() {
			if p := pos[id]; p < sp.lo || p >= sp.hi {
				t.Fatalf("query %d %q: id %d at position %d, outside the span %v", i, q, id, p, sp)
			}
		}
		if !want.IsEmpty() && sp.hi-sp.lo < len(ti.order.order) {
			narrow++
		}
	}
	if narrow == 0 {
		t.Fatal("no answer had a span narrower than the whole order: the test does not reach them")
	}
	for _, k := range reach {
		if kinds[k] == 0 {
			t.Fatalf("no answer was a %s (%v): the test does not reach them", k, kinds)
		}
	}
}

// The name order is (name, id), names compared as folded strings.
func TestTextIndexNameOrder(t *testing.T) {
	docs := sampleDocs()
	docs = append(docs, searchDoc{id: 9, name: fold("Acme Warehouse")}, searchDoc{id: 7, name: fold("Solar Acme")})
	ti := buildTextIndex(docs)
	var got []string
	for _, id := range ti.order.order {
		got = append(got, fmt.Sprintf("%d:%s", id, ti.name(id)))
	}
	want := []string{"4:acme warehouse", "9:acme warehouse", "1:muller residence", "2:nandu solar", "5:solar acme", "7:solar acme", "3:sunny acres farm"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("order %v\nwant  %v", got, want)
	}
}

func TestRadixSorts(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 10, 300, 5000} {
		s := make([]uint32, n)
		for i := range s {
			s[i] = rng.Uint32() >> uint(rng.IntN(32))
		}
		want := slices.Clone(s)
		slices.Sort(want)
		radixSort32(s)
		if !slices.Equal(s, want) {
			t.Fatalf("radixSort32 of %d values", n)
		}
		keys := make([]uint64, n)
		for i := range keys {
			keys[i] = rng.Uint64() >> uint(rng.IntN(64)) % 5 // ties
		}
		got := radixOrder(keys)
		ids := make([]uint32, n)
		for i := range ids {
			ids[i] = uint32(i)
		}
		slices.SortStableFunc(ids, func(a, b uint32) int { return cmp.Compare(keys[a], keys[b]) })
		if !slices.Equal(got, ids) {
			t.Fatalf("radixOrder of %d keys: %v, want %v", n, got, ids)
		}
	}
}

// A page is the k best of the set past the start, whichever strategy
// (walk, scan, walk giving up) picks it: checked against sorting, for sets
// spread out, bunched and tiny, both directions, both key kinds.
func TestOrderingPage(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 200_000
	perm := rng.Perm(n)
	order := make([]uint32, n)
	for i, p := range perm {
		order[i] = uint32(p)
	}
	byRank := newOrdering(order, n)
	nameID := make([]uint32, n) // a name order: (nameID, id)
	for id := range nameID {
		nameID[id] = uint32(rng.IntN(5000))
	}
	ids := make([]uint32, n)
	for i := range ids {
		ids[i] = uint32(i)
	}
	byName, _ := nameOrder(nameID, ids, 5000)
	sets := map[string]func() *roaring.Bitmap{
		"spread": func() *roaring.Bitmap {
			b := roaring.New()
			for range 30_000 {
				b.Add(uint32(rng.IntN(n)))
			}
			return b
		},
		"bunched": func() *roaring.Bitmap { // a stretch of the order near its end
			b := roaring.New()
			for _, id := range order[n-20_000:] {
				if rng.IntN(2) == 0 {
					b.Add(id)
				}
			}
			return b
		},
		"small": func() *roaring.Bitmap { return roaring.BitmapOf(order[5], order[77], order[n-1]) },
		"dense": func() *roaring.Bitmap {
			b := roaring.New()
			b.AddRange(0, n)
			return b
		},
	}
	for _, o := range []*ordering{&byRank, &byName} {
		pos := make([]int, n)
		for p, id := range o.order {
			pos[id] = p
		}
		for name, mk := range sets {
			bm := mk()
			set := &roaringSet{b: bm}
			dense := denseAnswer([]*roaring.Bitmap{bm}, bm, nil) // the same set as words
			if dense.card() != set.card() {
				t.Fatalf("%s set: %d ids as words, %d in roaring", name, dense.card(), set.card())
			}
			// The stretch of the order the set's ids lie in.
			tight := span{n, 0}
			for _, id := range bm.ToArray() {
				tight = span{min(tight.lo, pos[id]), max(tight.hi, pos[id]+1)}
			}
			for _, desc := range []bool{false, true} {
				for _, start := range []int{0, 1234, n / 2, n - 3, n} {
					got := o.page(set, span{0, n}, start, desc, 51)
					var want []uint32
					for _, id := range bm.ToArray() {
						if p := pos[id]; (!desc && p >= start) || (desc && p < start) {
							want = append(want, id)
						}
					}
					slices.SortFunc(want, func(a, b uint32) int {
						if desc {
							return pos[b] - pos[a]
						}
						return pos[a] - pos[b]
					})
					want = want[:min(51, len(want))]
					if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
						t.Fatalf("%s set, desc %v, start %d (name order %v): %v, want %v", name, desc, start, o.nameID != nil, got, want)
					}
					// Each strategy on its own (the scan splits over two
					// cores past parallelScanAbove ids).
					strategies := map[string][]uint32{"scan": o.scan(set, start, desc, 51),
						"page walking its span":    o.page(set, tight, start, desc, 51),
						"page of the words":        o.page(dense, span{0, n}, start, desc, 51),
						"scan of the words":        o.scan(dense, start, desc, 51),
						"words walking their span": o.page(dense, tight, start, desc, 51)}
					rest := span{start, n}
					if desc {
						rest = span{0, start}
					}
					if got, ok := o.denseWalk(set, rest, desc, 51, n); ok {
						strategies["dense walk"] = got
					} else {
						t.Fatalf("%s set: a dense walk with a budget of the whole order gave up", name)
					}
					for s, got := range strategies {
						if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
							t.Fatalf("%s of the %s set, desc %v, start %d (name order %v): %v, want %v", s, name, desc, start, o.nameID != nil, got, want)
						}
					}
				}
			}
		}
	}
}

func TestFold(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := Fold(in); got != want {
			t.Fatalf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
	f("Müller Residence", "muller residence")
	f("MÜLLER", "muller")
	f("Jürgen", "jurgen")
	f("Straße", "strasse")
	f("STRASSE", "strasse")
	f("ẞ", "ss")
	f("São Paulo", "sao paulo")
	f("Ñandú Solar", "nandu solar")
	f("Σολάρ Σπίτι", "σολαρ σπιτι")
	f("İstanbul", "istanbul")
	f("Øster Ålborg", "oster alborg")
	f("Łódź", "lodz")
	f("Æble Œuvre", "aeble oeuvre")
	f("ﬁle", "file") // a ligature decomposes
	f("plain ascii", "plain ascii")
	f("ΣΟΛΑΡ", "σολαρ")
	f("Upper ASCII", "upper ascii")
	f("nul\x00byte", "nulbyte")
	f("bad\xffutf8", "bad\ufffdutf8")
	f("héllo@example.com", "hello@example.com")
}

func FuzzFold(f *testing.F) {
	for _, s := range []string{"Müller", "Straße", "\xff", "İ", "Łódź", "ﬁ", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Fold(s)
		if !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 {
			t.Fatalf("Fold(%q) = %q: invalid UTF-8 or a NUL", s, got)
		}
		if again := Fold(got); again != got {
			t.Fatalf("Fold is not idempotent: %q → %q → %q", s, got, again)
		}
	})
}
