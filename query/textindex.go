package query

import (
	"runtime"
	"slices"
	"strings"
	"sync"
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

// textIndex is an immutable index over a set of documents; its bitmaps are
// never changed after build, so any number of goroutines read it.
//
// Names are interned: each distinct folded name is stored once, in sorted
// order in one string (arena, cut by nameOff), and nameID maps a system to
// its name's number. Comparing two systems' names is comparing
// their name ids, the order of all systems by (name, id) is a counting sort,
// and a substring is verified once per distinct name, not once per system
// (catalogues repeat names: "Müller Residence", "Smith Barn").
//
// Name substrings are found through gram bitmaps: every 1-, 2- and 3-rune
// gram of every name maps to the ids holding it, so a query of up to three
// runes is answered exactly by one bitmap, and a longer one by the
// intersection of its trigrams with the caller's set, verified against the
// names (the trigrams may occur apart).
//
// Key prefixes are found in the sorted list of distinct keys: the keys
// starting with q are one range of it. A range holding few postings (ids)
// is walked, testing each id against the caller's set; a range holding more
// than heavyPostings has its union precomputed as a bitmap, intersected with
// the caller's set. Every range of a prefix is a node of the trie of the
// keys, so the heavy ranges are found by descending it; a chain of prefixes
// with one range (a long shared prefix) shares one bitmap. Either way a
// query costs at most heavyPostings lookups or one intersection, whatever
// the catalogue size.
type textIndex struct {
	grams     map[gram]posting
	nameID    []uint32 // by id: the name's number; noName for ids not indexed
	arena     string   // the distinct folded names, ascending, concatenated
	nameOff   []uint32 // name n is arena[nameOff[n]:nameOff[n+1]]
	nameStart []uint32 // name n's systems are order.order[nameStart[n]:nameStart[n+1]]
	ids       *roaring.Bitmap
	order     ordering // ids by (name, id)
	memos     sync.Pool

	// Words: the names' space-separated words. A query without a space
	// lies inside one word of every name holding it, so its systems are
	// the union of the systems of the words containing it — exact, with
	// no name to verify. words are found through their own trigrams.
	words     []string
	wordSys   []posting // by word: the ids whose name holds it
	wordGrams map[gram]*roaring.Bitmap

	keys    []string // distinct keys, ascending
	postOff []uint32 // postings of keys[i]: postIDs[postOff[i]:postOff[i+1]]
	postIDs []uint32
	heavy   map[uint64]*roaring.Bitmap // lo<<32 | hi → ids of keys[lo:hi]
}

const noName = ^uint32(0)

// posting is an index bitmap with the names its ids hold: numbers
// [loName, hiName). Distinct names are numbered in sorted order, so a
// posting's ids lie in one stretch of the name order, and a page walks
// only that stretch — a set that skips the first names ("12 Main Street",
// the addresses) does not make its walk start far before its first id.
type posting struct {
	bm             *roaring.Bitmap
	loName, hiName uint32
}

// span is a stretch [lo, hi) of the name order's positions.
type span struct{ lo, hi int }

// span returns the positions of p's names.
func (ti *textIndex) span(p posting) span {
	return span{int(ti.nameStart[p.loName]), int(ti.nameStart[p.hiName])}
}

// union widens s to hold t too; an empty span (lo ≥ hi) holds nothing.
func (s span) union(t span) span {
	switch {
	case s.lo >= s.hi:
		return t
	case t.lo >= t.hi:
		return s
	}
	return span{min(s.lo, t.lo), max(s.hi, t.hi)}
}

// name returns a system's folded name ("" if not indexed).
func (ti *textIndex) name(id uint32) string {
	if int(id) >= len(ti.nameID) || ti.nameID[id] == noName {
		return ""
	}
	return ti.dname(ti.nameID[id])
}

// dname returns distinct name n.
func (ti *textIndex) dname(n uint32) string { return ti.arena[ti.nameOff[n]:ti.nameOff[n+1]] }

// names is the number of distinct names.
func (ti *textIndex) names() int { return len(ti.nameOff) - 1 }

// maxQueryWords is the most words a query without a space may match and
// still be answered by the union of their systems; past it (a common
// syllable) the trigram path is cheaper.
const maxQueryWords = 256

// heavyPostings is the most postings a prefix range may hold and still be
// walked at query time: 2,048 Contains calls take ~30 µs. Above it the
// range's union is precomputed. Lower means faster worst-case prefix
// queries and more memory (each posting is counted once per heavy trie node
// above it).
const heavyPostings = 2048

// gramBuf collects a gram's ids (ascending) and moves them into its bitmap
// in sorted batches, which roaring adds far faster than one by one.
type gramBuf struct {
	ids            []uint32
	bm             *roaring.Bitmap
	loName, hiName uint32
}

func newGramBuf() *gramBuf { return &gramBuf{bm: roaring.New(), loName: noName} }

// holds widens the names the buffer's ids hold to name nid.
func (g *gramBuf) holds(nid uint32) {
	g.loName = min(g.loName, nid)
	g.hiName = max(g.hiName, nid+1)
}

func (g *gramBuf) posting() posting {
	g.flush()
	g.bm.RunOptimize()
	return posting{bm: g.bm, loName: g.loName, hiName: g.hiName}
}

func (g *gramBuf) flush() {
	g.bm.AddMany(g.ids)
	g.ids = g.ids[:0]
}

// addToBufs appends id to the buffers numbered ixs.
func addToBufs(bufs []*gramBuf, ixs []uint32, id uint32) {
	for _, ix := range ixs {
		b := bufs[ix]
		b.ids = append(b.ids, id)
		if len(b.ids) == 4096 {
			b.flush()
		}
	}
}

// buildTextIndex indexes docs (ids should be dense: they index a slice). It
// sorts docs by id and keeps their strings.
func buildTextIndex(docs []searchDoc) *textIndex {
	ti := &textIndex{grams: make(map[gram]posting), ids: roaring.New(), heavy: map[uint64]*roaring.Bitmap{},
		wordGrams: make(map[gram]*roaring.Bitmap)}
	slices.SortFunc(docs, func(a, b searchDoc) int { return int(a.id) - int(b.id) })
	n := uint32(0)
	if len(docs) > 0 {
		n = docs[len(docs)-1].id + 1
	}
	// Intern the names, then number the distinct ones in sorted order.
	ti.nameID = make([]uint32, n)
	for i := range ti.nameID {
		ti.nameID[i] = noName
	}
	intern := map[string]uint32{}
	var dnames []string
	for _, d := range docs {
		nid, ok := intern[d.name]
		if !ok {
			nid = uint32(len(dnames))
			intern[d.name] = nid
			dnames = append(dnames, d.name)
		}
		ti.nameID[d.id] = nid
	}
	intern = nil
	perm := make([]uint32, len(dnames)) // sorted position → first-seen number
	for i := range perm {
		perm[i] = uint32(i)
	}
	parallelSort(perm, func(a, b uint32) int { return strings.Compare(dnames[a], dnames[b]) })
	renum := make([]uint32, len(perm))
	var arena strings.Builder
	ti.nameOff = make([]uint32, 0, len(perm)+1)
	for pos, old := range perm {
		renum[old] = uint32(pos)
		ti.nameOff = append(ti.nameOff, uint32(arena.Len()))
		arena.WriteString(dnames[old])
	}
	ti.nameOff = append(ti.nameOff, uint32(arena.Len()))
	ti.arena = arena.String()
	dnames = nil
	ids := make([]uint32, 0, len(docs))
	for _, d := range docs {
		ti.nameID[d.id] = renum[ti.nameID[d.id]]
		ids = append(ids, d.id)
	}
	ti.ids.AddMany(ids)
	ti.order, ti.nameStart = nameOrder(ti.nameID, ids, ti.names())

	// Grams: each distinct name's grams once (as buffer indexes), then each
	// system's id appended to its name's grams, in id order.
	bufs := []*gramBuf{}
	gramIx := map[gram]uint32{}
	nameGrams := make([][]uint32, ti.names())
	nameWords := make([][]uint32, ti.names())
	wordIx := map[string]uint32{}
	var wordBufs []*gramBuf
	var rs []rune
	for _, d := range docs {
		nid := ti.nameID[d.id]
		ws := nameWords[nid]
		if ws == nil {
			ws = []uint32{}
			for w := range strings.SplitSeq(d.name, " ") {
				if w == "" {
					continue
				}
				wid, ok := wordIx[w]
				if !ok {
					wid = uint32(len(ti.words))
					wordIx[w] = wid
					ti.words = append(ti.words, w)
					wordBufs = append(wordBufs, newGramBuf())
				}
				if !slices.Contains(ws, wid) {
					ws = append(ws, wid)
					wordBufs[wid].holds(nid)
				}
			}
			nameWords[nid] = ws
		}
		addToBufs(wordBufs, ws, d.id)
		gs := nameGrams[nid]
		if gs == nil {
			gs = []uint32{}
			rs = append(rs[:0], []rune(d.name)...)
			for w := 1; w <= 3; w++ {
				for i := 0; i+w <= len(rs); i++ {
					g := makeGram(rs[i : i+w])
					ix, ok := gramIx[g]
					if !ok {
						ix = uint32(len(bufs))
						gramIx[g] = ix
						bufs = append(bufs, newGramBuf())
					}
					if !slices.Contains(gs, ix) {
						gs = append(gs, ix)
						bufs[ix].holds(nid)
					}
				}
			}
			nameGrams[nid] = gs
		}
		addToBufs(bufs, gs, d.id)
	}
	for g, ix := range gramIx {
		ti.grams[g] = bufs[ix].posting()
	}
	nameGrams, bufs, gramIx = nil, nil, nil
	ti.wordSys = make([]posting, len(wordBufs))
	for wid, b := range wordBufs {
		ti.wordSys[wid] = b.posting()
	}
	nameWords, wordBufs, wordIx = nil, nil, nil
	ti.buildWordGrams()

	// Keys: (key, id) pairs sorted, deduplicated into postings.
	type pair struct {
		key string
		id  uint32
	}
	var pairs []pair
	for _, d := range docs {
		for _, k := range d.keys {
			if k != "" {
				pairs = append(pairs, pair{k, d.id})
			}
		}
	}
	parallelSort(pairs, func(a, b pair) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return int(int64(a.id) - int64(b.id))
	})
	ti.postIDs = make([]uint32, 0, len(pairs))
	for i, p := range pairs {
		if i == 0 || p.key != pairs[i-1].key {
			ti.keys = append(ti.keys, p.key)
			ti.postOff = append(ti.postOff, uint32(len(ti.postIDs)))
		} else if p.id == pairs[i-1].id {
			continue // the same key twice on one system
		}
		ti.postIDs = append(ti.postIDs, p.id)
	}
	ti.postOff = append(ti.postOff, uint32(len(ti.postIDs)))
	ti.keys = slices.Clip(ti.keys)
	pairs = nil
	ti.buildHeavy(0, len(ti.keys), 0, nil)
	return ti
}

// buildWordGrams indexes every trigram of every word by word id.
func (ti *textIndex) buildWordGrams() {
	var rs []rune
	var seen []gram
	for wid, w := range ti.words {
		rs = append(rs[:0], []rune(w)...)
		seen = seen[:0]
		for i := 0; i+3 <= len(rs); i++ {
			g := makeGram(rs[i : i+3])
			if slices.Contains(seen, g) {
				continue
			}
			seen = append(seen, g)
			b := ti.wordGrams[g]
			if b == nil {
				b = roaring.New()
				ti.wordGrams[g] = b
			}
			b.Add(uint32(wid)) // ascending: appends to the last container
		}
	}
	for _, b := range ti.wordGrams {
		b.RunOptimize()
	}
}

// nameOrder orders ids by (name id, id): a counting sort by name id, stable
// in id order. It also returns where each name's ids start in the order.
func nameOrder(nameID, ids []uint32, names int) (ordering, []uint32) {
	start := make([]uint32, names+1)
	for _, id := range ids {
		start[nameID[id]+1]++
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	nameStart := slices.Clone(start)
	order := make([]uint32, len(ids))
	for _, id := range ids {
		nid := nameID[id]
		order[start[nid]] = id
		start[nid]++
	}
	return ordering{order: order, nameID: nameID}, nameStart
}

// parallelSort sorts s, its two halves on two goroutines when it is large.
func parallelSort[E any](s []E, cmp func(a, b E) int) {
	if len(s) < 100_000 || runtime.GOMAXPROCS(0) < 2 {
		slices.SortFunc(s, cmp)
		return
	}
	mid := len(s) / 2
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); slices.SortFunc(s[:mid], cmp) }()
	slices.SortFunc(s[mid:], cmp)
	wg.Wait()
	merged := make([]E, 0, len(s))
	a, b := s[:mid], s[mid:]
	for len(a) > 0 && len(b) > 0 {
		if cmp(a[0], b[0]) <= 0 {
			merged, a = append(merged, a[0]), a[1:]
		} else {
			merged, b = append(merged, b[0]), b[1:]
		}
	}
	merged = append(append(merged, a...), b...)
	copy(s, merged)
}

// postings returns how many postings keys[lo:hi] hold.
func (ti *textIndex) postings(lo, hi int) int { return int(ti.postOff[hi] - ti.postOff[lo]) }

// buildHeavy precomputes the bitmap of every prefix range within
// keys[lo:hi] — the keys sharing their first depth bytes — that holds more
// than heavyPostings postings. scratch is reused between calls.
func (ti *textIndex) buildHeavy(lo, hi, depth int, scratch []uint32) []uint32 {
	for hi-lo > 0 && ti.postings(lo, hi) > heavyPostings {
		k := uint64(lo)<<32 | uint64(hi)
		if ti.heavy[k] == nil {
			scratch = append(scratch[:0], ti.postIDs[ti.postOff[lo]:ti.postOff[hi]]...)
			slices.Sort(scratch)
			b := roaring.New()
			b.AddMany(scratch)
			b.RunOptimize()
			ti.heavy[k] = b
		}
		// A key of exactly depth bytes sorts first and ends the prefix.
		if len(ti.keys[lo]) == depth {
			lo++
		}
		if lo == hi {
			return scratch
		}
		// Split by the byte at depth. When one group is the whole range,
		// descend without recursion (long shared prefixes).
		c := ti.keys[lo][depth]
		end := lo + 1
		for end < hi && ti.keys[end][depth] == c {
			end++
		}
		if end == hi {
			depth++
			continue
		}
		for start := lo; start < hi; {
			c := ti.keys[start][depth]
			end := start + 1
			for end < hi && ti.keys[end][depth] == c {
				end++
			}
			scratch = ti.buildHeavy(start, end, depth+1, scratch)
			start = end
		}
		return scratch
	}
	return scratch
}

// match returns the ids whose name contains q or one of whose keys starts
// with q, restricted to within. q must be folded. The result is a new set
// the caller owns (and releases).
//
// The parts of the answer that are dense index bitmaps (a common gram's,
// word's, heavy prefix range's) are united word-wise and intersected with
// within once. For a large caller the answer then stays words (a
// denseSet): its ids are never extracted unless a page scans them.
//
// It also returns a stretch of the name order that holds every matching id.
//
// Private keys (see privateKey) starting with q match only systems of the
// set private returns, which the caller must hold share or manage_users on
// (within those); private is called at most once, and only when some
// private key starts with q.
func (ti *textIndex) match(q string, within *roaring.Bitmap, private func() *roaring.Bitmap) (members, span) {
	var m matcher
	ti.matchName(&m, q, within)
	ti.addPrefix(&m, q, within)
	ti.addPrivate(&m, q, private)
	return m.result(within), m.span
}

// addPrivate adds to m the ids of private that hold a private key starting
// with q.
func (ti *textIndex) addPrivate(m *matcher, q string, private func() *roaring.Bitmap) {
	if q == "" || len(ti.keys) == 0 || private == nil {
		return
	}
	lo, hi := ti.prefixRange(privateKey + q)
	if lo >= hi {
		return
	}
	if ti.postings(lo, hi) > heavyPostings {
		// An exact part: the heavy range's bitmap is the index's, and
		// within (the caller's view) is wider than private.
		for _, id := range roaring.And(ti.heavy[uint64(lo)<<32|uint64(hi)], private()).ToArray() {
			m.add(id)
		}
		m.span = ti.everywhere()
		return
	}
	ti.addPostings(m, lo, hi, private())
}

// matcher collects the parts of one query's answer.
type matcher struct {
	global []*roaring.Bitmap // index bitmaps (read-only), not yet within
	exact  *roaring.Bitmap   // ids already within, owned
	span   span              // holds every part's ids
}

func (m *matcher) add(id uint32) {
	if m.exact == nil {
		m.exact = roaring.New()
	}
	m.exact.Add(id)
}

// addPosting adds an index bitmap to the answer.
func (m *matcher) addPosting(ti *textIndex, p posting) {
	m.global = append(m.global, p.bm)
	m.span = m.span.union(ti.span(p))
}

// everywhere is the span of the whole name order.
func (ti *textIndex) everywhere() span { return span{0, len(ti.order.order)} }

func (m *matcher) result(within *roaring.Bitmap) members {
	var dense, sparse []*roaring.Bitmap
	var ids uint64
	for _, b := range m.global {
		ids += b.GetCardinality()
		if isDense(b, 16) {
			dense = append(dense, b)
		} else {
			sparse = append(sparse, b)
		}
	}
	// A large caller's answer from large parts is computed in words and
	// stays words: every part is written into them (a sparse one id by id,
	// without the mispredicted branch per id of roaring's intersection)
	// and the union is intersected with within once. A small caller's is
	// cheaper in roaring: its containers are short arrays, probed id by
	// id, where words would cover the whole catalogue.
	if ids >= denseAnswerIDs && isDense(within, 32) {
		return denseAnswer(m.global, within, m.exact)
	}
	// Dense parts are united word-wise and intersected once; a sparse part
	// is intersected alone — uniting it first would turn its containers
	// into bitmaps.
	var out *roaring.Bitmap
	switch len(dense) {
	case 0:
	case 1:
		out = roaring.And(dense[0], within)
	default:
		out = roaring.And(roaring.FastOr(dense...), within)
	}
	add := func(part *roaring.Bitmap) {
		if out == nil {
			out = part
		} else {
			out.Or(part)
		}
	}
	for _, b := range sparse {
		add(roaring.And(b, within))
	}
	if m.exact != nil {
		add(m.exact)
	}
	if out == nil {
		out = roaring.New()
	}
	return &roaringSet{b: out, owned: true}
}

// denseAnswerIDs is the fewest ids the index parts of an answer hold for
// it to be computed in words: a few passes over a word per 64 catalogue
// ids against a branch per id that roaring's intersection mispredicts
// about as often as not. Measured for the 200 k-system caller at 2 M
// systems (all 200 bench texts): 64 k gave p50 244–260 µs and p99
// 718–755 µs; 16 k p50 302–328, p99 778–860; never p99 0.91–1.76 ms.
const denseAnswerIDs = 64 << 10

// isDense reports whether b holds more than one id in per of the span its
// containers cover: at 16, most of its containers are bitmaps.
func isDense(b *roaring.Bitmap, per uint64) bool {
	if b.IsEmpty() {
		return false
	}
	span := uint64(b.Maximum()>>16-b.Minimum()>>16+1) << 16
	return b.GetCardinality()*per > span
}

func (ti *textIndex) matchName(m *matcher, q string, within *roaring.Bitmap) {
	n := utf8.RuneCountInString(q)
	switch {
	case n == 0:
		m.global = append(m.global, ti.ids)
		m.span = ti.everywhere()
		return
	case n <= 3:
		if p, ok := ti.grams[makeGram([]rune(q))]; ok {
			m.addPosting(ti, p)
		}
		return
	}
	rs := []rune(q)
	if strings.IndexByte(q, ' ') < 0 && ti.matchWords(m, rs, q) {
		return
	}
	// Intersect the smallest bitmaps first: the trigrams in order of size,
	// the caller's set after the first.
	// Every id lies in the span shared by all the trigrams'.
	tris := make([]*roaring.Bitmap, 0, len(rs)-2)
	sp := ti.everywhere()
	for i := 0; i+3 <= len(rs); i++ {
		p, ok := ti.grams[makeGram(rs[i:i+3])]
		if !ok {
			return
		}
		tris = append(tris, p.bm)
		t := ti.span(p)
		sp = span{max(sp.lo, t.lo), min(sp.hi, t.hi)}
	}
	slices.SortFunc(tris, func(a, b *roaring.Bitmap) int {
		return int(int64(a.GetCardinality()) - int64(b.GetCardinality()))
	})
	cand := roaring.And(tris[0], within)
	for _, b := range tris[1:] {
		if cand.IsEmpty() {
			return
		}
		cand.And(b)
	}
	// The trigrams may occur apart; keep the names that hold q itself.
	for _, id := range ti.verify(cand, q) {
		cand.Remove(id)
	}
	if m.exact == nil {
		m.exact = cand
	} else {
		m.exact.Or(cand)
	}
	m.span = m.span.union(sp)
}

// matchWords answers a query of four runes or more without a space from
// the words holding it (q folded, rs its runes): the systems of those
// words. It declines (false) when more than maxQueryWords words hold q.
func (ti *textIndex) matchWords(m *matcher, rs []rune, q string) bool {
	var cand *roaring.Bitmap
	for i := 0; i+3 <= len(rs); i++ {
		b := ti.wordGrams[makeGram(rs[i:i+3])]
		if b == nil {
			return true // no word holds this trigram
		}
		if cand == nil {
			cand = b.Clone()
		} else {
			cand.And(b)
		}
		if cand.IsEmpty() {
			return true
		}
	}
	var hits []posting
	it := cand.Iterator()
	for it.HasNext() {
		wid := it.Next()
		if !strings.Contains(ti.words[wid], q) {
			continue
		}
		if len(hits) == maxQueryWords {
			return false
		}
		hits = append(hits, ti.wordSys[wid])
	}
	for _, p := range hits {
		m.addPosting(ti, p)
	}
	return true
}

// verify returns the ids of cand whose name does not contain q. Each
// distinct name is checked once, and in name order, which reads the arena
// front to back: the candidates' names are spread over it, and checking them
// in id order would miss the cache on nearly every one.
func (ti *textIndex) verify(cand *roaring.Bitmap, q string) []uint32 {
	m := ti.memo()
	defer ti.memos.Put(m)
	var uniq []uint32
	it := cand.ManyIterator()
	buf := make([]uint32, 256)
	for n := it.NextMany(buf); n > 0; n = it.NextMany(buf) {
		for _, id := range buf[:n] {
			if nid := ti.nameID[id]; m.seen[nid]>>1 != m.gen {
				m.seen[nid] = m.gen << 1
				uniq = append(uniq, nid)
			}
		}
	}
	radixSort32(uniq)
	all := true
	for _, nid := range uniq {
		if strings.Contains(ti.dname(nid), q) {
			m.seen[nid] |= 1
		} else {
			all = false
		}
	}
	if all {
		return nil // the usual case: the trigrams were not apart anywhere
	}
	var drop []uint32
	it = cand.ManyIterator()
	for n := it.NextMany(buf); n > 0; n = it.NextMany(buf) {
		for _, id := range buf[:n] {
			if m.seen[ti.nameID[id]]&1 == 0 {
				drop = append(drop, id)
			}
		}
	}
	return drop
}

// radixSort32 sorts s ascending: three passes of 11 bits (small counting
// tables, no comparisons).
func radixSort32(s []uint32) {
	if len(s) < 256 {
		slices.Sort(s)
		return
	}
	tmp := make([]uint32, len(s))
	src, dst := s, tmp
	for shift := uint(0); shift < 33; shift += 11 {
		var count [1 << 11]int
		for _, v := range src {
			count[(v>>shift)&(1<<11-1)]++
		}
		sum := 0
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for _, v := range src {
			d := (v >> shift) & (1<<11 - 1)
			dst[count[d]] = v
			count[d]++
		}
		src, dst = dst, src
	}
	copy(s, src) // three passes: the result is in tmp
}

// nameMemo remembers, for one query, which distinct names were checked
// (seen[nid]>>1 == gen) and whether they matched (the low bit). Memos are
// pooled and never cleared: a new query just takes the next gen.
type nameMemo struct {
	seen []uint32
	gen  uint32
}

func (ti *textIndex) memo() *nameMemo {
	m, _ := ti.memos.Get().(*nameMemo)
	if m == nil {
		m = &nameMemo{seen: make([]uint32, ti.names())}
	}
	m.gen++
	if m.gen >= 1<<31 {
		clear(m.seen)
		m.gen = 1
	}
	return m
}

// prefixRange returns the range of keys starting with q.
func (ti *textIndex) prefixRange(q string) (lo, hi int) {
	lo, _ = slices.BinarySearch(ti.keys, q)
	// Folded text is UTF-8, which never holds 0xff: every key starting
	// with q sorts below q+"\xff".
	hi = lo + sortSearch(len(ti.keys)-lo, func(i int) bool { return ti.keys[lo+i] >= q+"\xff" })
	return lo, hi
}

// addPrefix adds to m the ids one of whose keys starts with q.
func (ti *textIndex) addPrefix(m *matcher, q string, within *roaring.Bitmap) {
	if q == "" || len(ti.keys) == 0 {
		return
	}
	lo, hi := ti.prefixRange(q)
	if lo >= hi {
		return
	}
	if ti.postings(lo, hi) > heavyPostings {
		m.global = append(m.global, ti.heavy[uint64(lo)<<32|uint64(hi)])
		m.span = ti.everywhere() // keys say nothing of names
		return
	}
	ti.addPostings(m, lo, hi, within)
}

// addPostings adds to m the ids of within in the postings of keys [lo, hi).
func (ti *textIndex) addPostings(m *matcher, lo, hi int, within *roaring.Bitmap) {
	loName, hiName := noName, uint32(0)
	for _, id := range ti.postIDs[ti.postOff[lo]:ti.postOff[hi]] {
		if within.Contains(id) {
			m.add(id)
			nid := ti.nameID[id]
			loName, hiName = min(loName, nid), max(hiName, nid+1)
		}
	}
	if hiName > 0 {
		m.span = m.span.union(ti.span(posting{loName: loName, hiName: hiName}))
	}
}

// sizeBytes estimates the index's memory: name bitmaps (grams, words)
// and key bitmaps, posting lists and string headers (string bytes are mostly shared with the acl snapshot).
func (ti *textIndex) sizeBytes() (grams, keys uint64) {
	for _, p := range ti.grams {
		grams += p.bm.GetSizeInBytes() + 32
	}
	grams += 4 * uint64(len(ti.nameStart))
	grams += uint64(len(ti.nameID))*4 + uint64(len(ti.order.order))*4
	grams += uint64(len(ti.arena)) + 4*uint64(len(ti.nameOff))
	for _, p := range ti.wordSys {
		grams += p.bm.GetSizeInBytes() + 16
	}
	for _, b := range ti.wordGrams {
		grams += b.GetSizeInBytes() + 24
	}
	for _, w := range ti.words {
		grams += uint64(len(w)) + 16
	}
	for _, b := range ti.heavy {
		keys += b.GetSizeInBytes() + 16
	}
	keys += uint64(len(ti.keys))*16 + uint64(len(ti.postOff))*4 + uint64(len(ti.postIDs))*4
	for _, k := range ti.keys {
		keys += uint64(len(k))
	}
	return grams, keys
}

// sortSearch is sort.Search without the import.
func sortSearch(n int, f func(int) bool) int {
	i, j := 0, n
	for i < j {
		h := int(uint(i+j) >> 1)
		if !f(h) {
			i = h + 1
		} else {
			j = h
		}
	}
	return i
}

// validQuery reports whether q is usable text.
func validQuery(q string) bool { return utf8.ValidString(q) }
