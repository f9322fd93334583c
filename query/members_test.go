package query

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
)

// The two kinds of members answer every operation alike: a set held as
// words and the same set in roaring, through removals and cuts.
func TestMembersAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		n := uint32(1 + rng.IntN(300_000))
		b := roaring.New()
		for range rng.IntN(20_000) {
			b.Add(uint32(rng.IntN(int(n))))
		}
		if b.IsEmpty() {
			b.Add(n - 1)
		}
		sets := []members{&roaringSet{b: b.Clone()}, denseAnswer([]*roaring.Bitmap{b}, b, nil)}
		cand := roaring.New()
		for range rng.IntN(50) {
			cand.Add(uint32(rng.IntN(int(n) + 100)))
		}
		cutAt := uint32(rng.IntN(int(n) + 10))
		lo, hi := uint32(rng.IntN(int(n))), uint32(rng.IntN(int(n)+70))
		type seen struct {
			card int
			tail []uint32
			ids  []uint32
			rng  []uint32
			has  []bool
		}
		var got []seen
		for _, s := range sets {
			s.remove(cand)
			var v seen
			v.tail = s.cut(cutAt)
			v.card = s.card()
			v.ids = s.bitmap().ToArray()
			s.each(lo, hi, func(ids []uint32) { v.rng = append(v.rng, ids...) })
			for _, id := range []uint32{0, lo, hi, cutAt, n - 1, n + 5} {
				v.has = append(v.has, s.has(id))
			}
			all := 0
			s.each(0, ^uint32(0), func(ids []uint32) { all += len(ids) })
			if all != v.card {
				t.Fatalf("round %d, %T: each gave %d ids, card %d", round, s, all, v.card)
			}
			// split: about half below (words split at a word boundary).
			below := 0
			s.each(0, s.split(), func(ids []uint32) { below += len(ids) })
			if v.card > 200 && (below < v.card/2-64 || below > v.card/2+64) {
				t.Fatalf("round %d, %T: %d of %d ids below the split", round, s, below, v.card)
			}
			s.release()
			got = append(got, v)
		}
		a, d := got[0], got[1]
		want := roaring.AndNot(b, cand)
		want.RemoveRange(uint64(cutAt), 1<<32)
		if a.card != d.card || a.card != int(want.GetCardinality()) || !slices.Equal(a.ids, d.ids) ||
			!slices.Equal(a.tail, d.tail) || !slices.Equal(a.rng, d.rng) || !slices.Equal(a.has, d.has) {
			t.Fatalf("round %d: roaring %+v\nwords %+v", round, a, d)
		}
	}
}

// denseAnswer is (∪ parts) ∩ within ∪ exact for parts of every container
// kind — arrays, bitmaps, runs — in any order, and an exact part of
// either kind.
func TestDenseAnswer(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	random := func(n int, p float64) *roaring.Bitmap {
		b := roaring.New()
		for i := range n {
			if rng.Float64() < p {
				b.Add(uint32(i))
			}
		}
		if rng.IntN(2) == 0 {
			b.AddRange(uint64(rng.IntN(n)), uint64(n)) // a run
		}
		b.RunOptimize()
		return b
	}
	kinds := map[bool]int{}
	for round := range 60 {
		n := 1 + rng.IntN(400_000)
		var parts []*roaring.Bitmap
		for range 1 + rng.IntN(4) {
			parts = append(parts, random(n+rng.IntN(100_000), []float64{0.001, 0.03, 0.3}[rng.IntN(3)]))
		}
		within := random(n, 0.5)
		var exact *roaring.Bitmap
		if rng.IntN(2) == 0 {
			exact = roaring.And(within, random(n, []float64{0.001, 0.3}[rng.IntN(2)]))
			kinds[hasBitmapContainers(exact)]++
		}
		want := roaring.And(roaring.FastOr(parts...), within)
		if exact != nil {
			want.Or(exact)
		}
		got := denseAnswer(slices.Clone(parts), within, exact)
		if got.card() != int(want.GetCardinality()) || !got.bitmap().Equals(want) {
			t.Fatalf("round %d: %d ids, want %d", round, got.card(), want.GetCardinality())
		}
		got.release()
	}
	if kinds[true] == 0 || kinds[false] == 0 {
		t.Fatalf("exact parts by bitmap containers %v: the test does not reach both", kinds)
	}
}
