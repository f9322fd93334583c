package query

import (
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/RoaringBitmap/roaring/v2"
)

// searchDoc is what the text index knows of one location: its folded name
// and the folded keys matched by prefix (associated e-mails, GUID, gateway
// serials).
type searchDoc struct {
	id   uint32
	name string
	keys []string
}

// textIndex is an immutable index over a set of documents. Name substrings
// are found through gram bitmaps: every 1-, 2- and 3-rune gram of every
// name maps to the ids holding it, so a query of up to three runes is
// answered exactly by one bitmap, and a longer one by the intersection of
// its trigrams, verified against the names. Key prefixes are found in a
// sorted key list, with bitmaps precomputed for one- and two-byte prefixes
// because those ranges are long.
type textIndex struct {
	grams map[gram]*roaring.Bitmap
	names []string // folded name by id
	keys  []keyEntry
	short map[string]*roaring.Bitmap
	ids   *roaring.Bitmap
}

type keyEntry struct {
	key string
	id  uint32
}

// shortPrefixLen is the longest key prefix with a precomputed bitmap.
const shortPrefixLen = 2

// buildTextIndex indexes docs. Ids should be dense (they index a slice).
func buildTextIndex(docs []searchDoc) *textIndex {
	ti := &textIndex{
		grams: make(map[gram]*roaring.Bitmap),
		short: make(map[string]*roaring.Bitmap),
		ids:   roaring.New(),
	}
	// Adding ids in increasing order appends to each bitmap's last
	// container, which is cheap; so index the documents sorted by id.
	sort.Slice(docs, func(i, j int) bool { return docs[i].id < docs[j].id })
	if len(docs) > 0 {
		ti.names = make([]string, docs[len(docs)-1].id+1)
	}
	add := func(m map[gram]*roaring.Bitmap, g gram, id uint32) {
		b := m[g]
		if b == nil {
			b = roaring.New()
			m[g] = b
		}
		b.Add(id)
	}
	for _, d := range docs {
		ti.names[d.id] = d.name
		ti.ids.Add(d.id)
		for n := 1; n <= 3; n++ {
			grams(d.name, n, func(g gram) { add(ti.grams, g, d.id) })
		}
		for _, k := range d.keys {
			ti.keys = append(ti.keys, keyEntry{key: k, id: d.id})
			for l := 1; l <= shortPrefixLen && l <= len(k); l++ {
				b := ti.short[k[:l]]
				if b == nil {
					b = roaring.New()
					ti.short[k[:l]] = b
				}
				b.Add(d.id)
			}
		}
	}
	for _, b := range ti.grams {
		b.RunOptimize()
	}
	for _, b := range ti.short {
		b.RunOptimize()
	}
	sort.Slice(ti.keys, func(i, j int) bool {
		if ti.keys[i].key != ti.keys[j].key {
			return ti.keys[i].key < ti.keys[j].key
		}
		return ti.keys[i].id < ti.keys[j].id
	})
	return ti
}

// match returns the ids whose name contains q or one of whose keys starts
// with q, restricted to within. q must be folded. The result is a new
// bitmap the caller owns.
func (ti *textIndex) match(q string, within *roaring.Bitmap) *roaring.Bitmap {
	out := ti.matchName(q, within)
	out.Or(ti.matchPrefix(q, within))
	return out
}

func (ti *textIndex) matchName(q string, within *roaring.Bitmap) *roaring.Bitmap {
	rs := []rune(q)
	switch {
	case len(rs) == 0:
		return roaring.And(ti.ids, within)
	case len(rs) <= 3:
		b := ti.grams[makeGram(rs)]
		if b == nil {
			return roaring.New()
		}
		return roaring.And(b, within)
	}
	// Intersect the smallest bitmaps first: the caller's set, then the
	// trigrams in order of size.
	var tris []*roaring.Bitmap
	for i := 0; i+3 <= len(rs); i++ {
		b := ti.grams[makeGram(rs[i:i+3])]
		if b == nil {
			return roaring.New()
		}
		tris = append(tris, b)
	}
	sort.Slice(tris, func(i, j int) bool { return tris[i].GetCardinality() < tris[j].GetCardinality() })
	cand := roaring.And(tris[0], within)
	for _, b := range tris[1:] {
		if cand.IsEmpty() {
			break
		}
		cand.And(b)
	}
	// The trigrams may occur apart; keep the names that hold q itself.
	out := roaring.New()
	it := cand.Iterator()
	for it.HasNext() {
		id := it.Next()
		if int(id) < len(ti.names) && strings.Contains(ti.names[id], q) {
			out.Add(id)
		}
	}
	return out
}

func (ti *textIndex) matchPrefix(q string, within *roaring.Bitmap) *roaring.Bitmap {
	if q == "" {
		return roaring.New()
	}
	if len(q) <= shortPrefixLen {
		b := ti.short[q]
		if b == nil {
			return roaring.New()
		}
		return roaring.And(b, within)
	}
	i := sort.Search(len(ti.keys), func(i int) bool { return ti.keys[i].key >= q })
	out := roaring.New()
	for ; i < len(ti.keys) && strings.HasPrefix(ti.keys[i].key, q); i++ {
		if id := ti.keys[i].id; within.Contains(id) {
			out.Add(id)
		}
	}
	return out
}

// validQuery reports whether q is usable text.
func validQuery(q string) bool { return utf8.ValidString(q) }
