package acl

import (
	"cmp"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
)

// roleSet is what one principal (an e-mail or an organization) holds directly:
// its role on each system it holds one on. It is the index's unit of storage;
// an account's bitmap for a permission is composed from the roleSets of its
// e-mail and of its organizations (see Snapshot.Systems).
//
// Because roles are nested (each holds every permission of the ones below),
// "systems where the principal holds permission p" is "systems where its role
// is at least needRole(p)". So a roleSet needs at most six sets, one per
// role level, each a superset of the next, instead of one per permission.
//
// Small sets — most principals hold a handful of systems — are a sorted slice
// of system<<8|role: 8 bytes per system where a roaring bitmap of scattered
// ids costs tens of bytes per system and ~100 bytes per bitmap. Above
// smallMax systems a roleSet switches to one roaring bitmap per level, equal
// adjacent levels sharing one bitmap (an installer org holding only installer
// grants keeps a single bitmap for its four lower levels); below smallMin it
// switches back. The gap keeps a set near the threshold from flapping.
type roleSet struct {
	small []uint64 // small form: system<<8 | role, ascending
	lv    *levels  // non-nil: the large form
}

func entry(sys uint32, r Role) uint64 { return uint64(sys)<<8 | uint64(r) }

func (rs *roleSet) find(sys uint32) (int, bool) {
	return slices.BinarySearchFunc(rs.small, sys, func(e uint64, sys uint32) int { return cmp.Compare(uint32(e>>8), sys) })
}

// clone returns a copy that shares nothing a writer changes in place: the
// small slice is copied, the levels array too (its bitmaps are copied on
// write, see batch).
func (rs roleSet) clone() roleSet {
	if rs.lv != nil {
		lv := *rs.lv
		return roleSet{lv: &lv}
	}
	return roleSet{small: slices.Clone(rs.small)}
}

// The thresholds between the forms. Variables only so that tests can make
// them tiny and exercise the large form and the switches on small universes.
var (
	smallMax = 256
	smallMin = 64
)

// levels is the large form. at[i] holds the systems where the role is at least
// Role(i+1); nil is empty. Adjacent levels with the same content share one
// bitmap, and since levels are nested, equal cardinality means equal content.
type levels struct {
	n  int // systems with any role
	at [numRoles]*roaring.Bitmap
}

func (rs *roleSet) len() int {
	if rs.lv != nil {
		return rs.lv.n
	}
	return len(rs.small)
}

// role returns the role held on sys.
func (rs *roleSet) role(sys uint32) Role {
	if rs.lv == nil {
		if i, ok := rs.find(sys); ok {
			return Role(rs.small[i])
		}
		return RoleNone
	}
	// The levels containing sys are a prefix: binary search for its length.
	lo, hi := 0, numRoles
	for lo < hi {
		mid := (lo + hi) / 2
		if bm := rs.lv.at[mid]; bm != nil && bm.Contains(sys) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return Role(lo)
}

// atLeast returns the systems where the role is at least r (r ≥ RoleViewer),
// or nil if there are none. In the large form the bitmap is shared and
// read-only; in the small form it is new and the caller owns it.
func (rs *roleSet) atLeast(r Role) (bm *roaring.Bitmap, shared bool) {
	if rs.lv != nil {
		return rs.lv.at[r-1], true
	}
	for _, e := range rs.small {
		if Role(e) >= r {
			if bm == nil {
				bm = roaring.New()
			}
			bm.Add(uint32(e >> 8))
		}
	}
	return bm, false
}

// each calls f for every system with its role, in increasing system order.
func (rs *roleSet) each(f func(sys uint32, r Role)) {
	if rs.lv == nil {
		for _, e := range rs.small {
			f(uint32(e>>8), Role(e))
		}
		return
	}
	if rs.lv.at[0] == nil {
		return
	}
	it := rs.lv.at[0].Iterator()
	for it.HasNext() {
		id := it.Next()
		f(id, rs.role(id))
	}
}

// set makes the role on sys r (RoleNone removes it). rs must be private to
// the writer's generation (see clone); bitmaps of the large form are copied
// on first write in the generation (see batch).
func (rs *roleSet) set(b *batch, sys uint32, r Role) {
	if rs.role(sys) == r {
		return
	}
	if rs.lv == nil {
		i, found := rs.find(sys)
		switch {
		case r == RoleNone:
			rs.small = slices.Delete(rs.small, i, i+1)
		case found:
			rs.small[i] = entry(sys, r)
		default:
			rs.small = slices.Insert(rs.small, i, entry(sys, r))
		}
		if len(rs.small) > smallMax {
			rs.grow(b)
		}
		return
	}
	rs.setLarge(b, sys, r)
	if rs.lv.n < smallMin {
		rs.shrink()
	}
}

func (rs *roleSet) setLarge(b *batch, sys uint32, r Role) {
	lv := rs.lv
	old := rs.role(sys)
	// Levels lo..hi-1 (indexes into at) gain sys if the role rises, lose it
	// if it falls; the others are untouched.
	lo, hi, add := int(old), int(r), true
	if r < old {
		lo, hi, add = int(r), int(old), false
	}
	switch {
	case old == RoleNone:
		lv.n++
	case r == RoleNone:
		lv.n--
	}
	// A bitmap shared with a level outside lo..hi-1 must not change: give the
	// range its own copy. Levels inside the range that share a bitmap keep
	// sharing the copy.
	type swap struct{ from, to *roaring.Bitmap }
	var done [numRoles]swap
	nd := 0
	for i := lo; i < hi; i++ {
		bm := lv.at[i]
		var nbm *roaring.Bitmap
		for _, s := range done[:nd] {
			if s.from == bm {
				nbm = s.to
			}
		}
		if nbm == nil {
			owned := b.ownsBitmap(bm)
			switch {
			case bm == nil:
				nbm = b.newBitmap()
			case owned && (lo == 0 || lv.at[lo-1] != bm) && (hi == numRoles || lv.at[hi] != bm):
				nbm = bm
			default:
				nbm = b.clone(bm)
			}
			if add {
				nbm.Add(sys)
			} else {
				nbm.Remove(sys)
			}
			if nbm.IsEmpty() {
				delete(b.owned, nbm)
				nbm = nil
			}
			done[nd] = swap{bm, nbm}
			nd++
		}
		lv.at[i] = nbm
	}
	// Restore sharing between levels that became equal.
	for i := 0; i+1 < numRoles; i++ {
		a, c := lv.at[i], lv.at[i+1]
		if a != nil && c != nil && a != c && a.GetCardinality() == c.GetCardinality() {
			lv.at[i+1] = a
		}
	}
}

// grow switches to the large form.
func (rs *roleSet) grow(b *batch) {
	lv := &levels{n: len(rs.small)}
	buf := make([]uint32, 0, len(rs.small))
	for r := RoleViewer; r <= RoleOwner; r++ {
		buf = buf[:0]
		for _, e := range rs.small {
			if Role(e) >= r {
				buf = append(buf, uint32(e>>8))
			}
		}
		switch {
		case len(buf) == 0:
		case r > RoleViewer && lv.at[r-2] != nil && lv.at[r-2].GetCardinality() == uint64(len(buf)):
			lv.at[r-1] = lv.at[r-2]
		default:
			bm := b.newBitmap()
			bm.AddMany(buf)
			lv.at[r-1] = bm
		}
	}
	rs.small, rs.lv = nil, lv
}

// shrink switches to the small form.
func (rs *roleSet) shrink() {
	small := make([]uint64, 0, rs.lv.n)
	rs.each(func(id uint32, r Role) { small = append(small, entry(id, r)) })
	rs.small, rs.lv = small, nil
}
