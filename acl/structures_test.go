package acl

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
)

// The persistent structures against plain maps: after random writes in
// random generations, every version equals the map it had when published.

func TestPtabIsPersistent(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var tab ptab[int]
	cur := map[uint32]int{}
	type version struct {
		tab  ptab[int]
		want map[uint32]int
	}
	var versions []version
	for gen := uint64(1); gen <= 50; gen++ {
		for range r.IntN(40) {
			k := r.Uint32N(2000)
			if r.IntN(10) == 0 {
				k = r.Uint32() // sparse keys too
			}
			v := r.Int()
			tab.set(k, &v, gen)
			cur[k] = v
		}
		versions = append(versions, version{tab, maps.Clone(cur)})
	}
	for i, v := range versions {
		n := 0
		v.tab.each(func(k uint32, p *int) bool {
			n++
			if v.want[k] != *p {
				t.Fatalf("version %d: key %d = %d, want %d", i, k, *p, v.want[k])
			}
			return true
		})
		if n != len(v.want) {
			t.Fatalf("version %d: %d keys, want %d", i, n, len(v.want))
		}
		for k, want := range v.want {
			if p := v.tab.get(k); p == nil || *p != want {
				t.Fatalf("version %d: get(%d) = %v, want %d", i, k, p, want)
			}
		}
	}
}

func TestHtabIsPersistent(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	// Two ids per key, as two systems can carry one GUID: id i and i+n both
	// have key i. At most 700 keys keep the table at its first size, 1024
	// slots, loaded up to 0.7: long probe runs that wrap around its end.
	const n = 700
	keyOf := func(id uint32) string { return fmt.Sprintf("user%d@example.test", (id-1)%n) }
	var h htab
	cur := map[string]uint32{}
	type version struct {
		h    htab
		want map[string]uint32
	}
	var versions []version
	for gen := uint64(1); gen <= 300; gen++ {
		for range r.IntN(100) {
			k := r.Uint32N(n)
			id := []uint32{0, k + 1, k + 1 + n}[r.IntN(3)]
			if gen%100 > 80 {
				id = 0 // phases of removals: backward shifts across the whole table
			}
			key := keyOf(k + 1)
			h.set(key, id, keyOf, gen)
			if id == 0 {
				delete(cur, key)
			} else {
				cur[key] = id
			}
		}
		if h.n != len(cur) {
			t.Fatalf("generation %d: %d entries, want %d", gen, h.n, len(cur))
		}
		versions = append(versions, version{h, maps.Clone(cur)})
	}
	for i, v := range versions {
		for k := range uint32(n) {
			key := keyOf(k + 1)
			if got := v.h.get(key, keyOf); got != v.want[key] {
				t.Fatalf("version %d: get(%q) = %d, want %d", i, key, got, v.want[key])
			}
		}
	}
}

// A probe run that wraps around the end of the table: keys whose home is
// the second-to-last slot fill it, the last and the first ones; removing
// each in turn must keep the others reachable.
func TestHtabRemoveAcrossTheEnd(t *testing.T) {
	var keys []string
	for i := 0; len(keys) < 5; i++ {
		if k := fmt.Sprint("k", i); hashKey(k)&(hchunkLen-1) == hchunkLen-2 {
			keys = append(keys, k)
		}
	}
	keyOf := func(id uint32) string { return keys[id-1] }
	for victim := range keys {
		var h htab
		for i, k := range keys {
			h.set(k, uint32(i+1), keyOf, 1)
		}
		if len(h.dir) != 1 || h.slot(0) == 0 {
			t.Fatal("the run does not wrap around")
		}
		h.set(keys[victim], 0, keyOf, 2)
		for i, k := range keys {
			want := uint32(i + 1)
			if i == victim {
				want = 0
			}
			if got := h.get(k, keyOf); got != want {
				t.Fatalf("after removing %s: get(%s) = %d, want %d", keys[victim], k, got, want)
			}
		}
	}
}

// roleSet against a map, through both forms and the switches between them,
// checking every published version stays as it was.
func TestRoleSet(t *testing.T) {
	defer setThresholds(24, 6)()
	r := rand.New(rand.NewPCG(5, 6))
	b := &batch{owned: map[*roaring.Bitmap]struct{}{}}
	var rs roleSet
	cur := map[uint32]Role{}
	type version struct {
		rs   roleSet
		want map[uint32]Role
	}
	var versions []version
	grew, shrank := false, false
	for gen := uint64(1); gen <= 400; gen++ {
		b.gen = gen
		clear(b.owned)
		rs = rs.clone() // as the writer does when it copies the record
		large := rs.lv != nil
		for range 1 + r.IntN(8) {
			sys := r.Uint32N(60) * 1000 // spread over several roaring containers
			role := Role(r.IntN(numRoles + 1))
			if gen%100 > 70 { // phases of mostly removals, so sets shrink
				role = RoleNone
			}
			rs.set(b, sys, role)
			if role == RoleNone {
				delete(cur, sys)
			} else {
				cur[sys] = role
			}
		}
		grew = grew || !large && rs.lv != nil
		shrank = shrank || large && rs.lv == nil
		versions = append(versions, version{rs, maps.Clone(cur)})
		checkRoleSet(t, rs, cur)
	}
	if !grew || !shrank {
		t.Fatalf("the test never switched forms (grew %v, shrank %v)", grew, shrank)
	}
	for _, v := range versions {
		checkRoleSet(t, v.rs, v.want)
	}
}

func checkRoleSet(t *testing.T, rs roleSet, want map[uint32]Role) {
	t.Helper()
	if rs.len() != len(want) {
		t.Fatalf("len %d, want %d", rs.len(), len(want))
	}
	for sys := uint32(0); sys < 60*1000; sys += 1000 {
		if got := rs.role(sys); got != want[sys] {
			t.Fatalf("role(%d) = %s, want %s", sys, got, want[sys])
		}
	}
	for r := RoleViewer; r <= RoleOwner; r++ {
		bm, _ := rs.atLeast(r)
		var n uint64
		for _, role := range want {
			if role >= r {
				n++
			}
		}
		if bm == nil && n > 0 || bm != nil && bm.GetCardinality() != n {
			t.Fatalf("atLeast(%s): %v, want %d systems", r, bm, n)
		}
	}
	if rs.lv != nil {
		for i := 0; i+1 < numRoles; i++ {
			a, c := rs.lv.at[i], rs.lv.at[i+1]
			if a != c && a != nil && c != nil && a.Equals(c) {
				t.Fatalf("levels %d and %d are equal but not shared", i+1, i+2)
			}
		}
	}
}

func TestPtabLast(t *testing.T) {
	var tab ptab[int]
	v := 1
	for _, k := range []uint32{0, 7, 255, 256, 70_000, 1 << 24, 1<<32 - 2} {
		tab.set(k, &v, 1)
	}
	f := func(lo, hi uint32, want uint32, wantOK bool) {
		t.Helper()
		if got, ok := tab.last(lo, hi); got != want || ok != wantOK {
			t.Fatalf("last(%d, %d) = %d, %v; want %d, %v", lo, hi, got, ok, want, wantOK)
		}
	}
	f(0, ^uint32(0), 1<<32-2, true)
	f(0, 1<<24-1, 70_000, true)
	f(0, 69_999, 256, true)
	f(8, 254, 0, false)
	f(0, 6, 0, true)
	f(1<<24, 1<<24, 1<<24, true)
	f(1<<24+1, 1<<32-3, 0, false)
	var empty ptab[int]
	if _, ok := empty.last(0, 10); ok {
		t.Fatal("empty table has a last key")
	}
}
