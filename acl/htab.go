package acl

import "hash/maphash"

// htab is a persistent hash index from string keys to non-zero uint32 ids —
// e-mail → party, GUID → system — as a flat open-addressing table with
// linear probing: 8 bytes per slot at a load of at most 0.7, about 16 bytes
// per key, where a trie of nodes costs over 30.
//
// A slot holds the id and the high half of its key's hash (the low bits
// choose the slot). The key itself is found through a keyFunc from the
// record that already keeps it (the party's e-mail, the system's GUID), so no
// key is stored twice; the hash half spares a probe that fetches another
// key's record and compares strings — two cache misses each, which made
// up most of replaying a large state before the tag was there.
//
// The slots live in 4 KiB chunks copied on first write in a generation, and
// the chunk directory is copied once per generation, so a published version
// never changes and readers need no lock. Deletion shifts later entries
// back (no tombstones), so a table that churns does not fill up.
type htab struct {
	dir    []*hchunk // len is a power of two
	dirGen uint64    // dir belongs to this writer generation
	n      int       // ids stored
}

const (
	hchunkBits = 10
	hchunkLen  = 1 << hchunkBits
)

type hchunk struct {
	gen   uint64
	slots [hchunkLen]hslot
}

// hslot is a slot: the high 32 bits of the key's hash, then the id; 0 is
// empty (ids are non-zero).
type hslot uint64

func makeSlot(h uint64, id uint32) hslot { return hslot(h>>32<<32 | uint64(id)) }

func (s hslot) id() uint32 { return uint32(s) }

// matches reports whether the slot may hold the key of hash h.
func (s hslot) matches(h uint64) bool { return uint64(s)>>32 == h>>32 }

// keyFunc returns the key of an id stored in the table. It must answer for
// every id in the version of the table it is used with.
type keyFunc func(id uint32) string

// hashSeed is per process: the table lives only in memory, and a random
// seed keeps crafted e-mails from piling up in one place.
var hashSeed = maphash.MakeSeed()

func hashKey(s string) uint64 { return maphash.String(hashSeed, s) }

func (t *htab) mask() uint64 { return uint64(len(t.dir))<<hchunkBits - 1 }

func (t *htab) slot(i uint64) hslot { return t.dir[i>>hchunkBits].slots[i&(hchunkLen-1)] }

// get returns the id of key, or 0.
func (t htab) get(key string, keyOf keyFunc) uint32 {
	if t.n == 0 {
		return 0
	}
	m := t.mask()
	h := hashKey(key)
	for i := h & m; ; i = (i + 1) & m {
		s := t.slot(i)
		if s == 0 {
			return 0
		}
		if s.matches(h) && keyOf(s.id()) == key {
			return s.id()
		}
	}
}

// set makes key map to id; id 0 removes key.
func (t *htab) set(key string, id uint32, keyOf keyFunc, gen uint64) {
	if id != 0 && (t.n+1)*10 > len(t.dir)*hchunkLen*7 {
		t.grow(keyOf, gen)
	}
	if len(t.dir) == 0 {
		return // removing from an empty table
	}
	m := t.mask()
	h := hashKey(key)
	i := h & m
	for ; ; i = (i + 1) & m {
		cur := t.slot(i)
		if cur == 0 {
			if id != 0 {
				t.put(i, makeSlot(h, id), gen)
				t.n++
			}
			return
		}
		if cur.matches(h) && keyOf(cur.id()) == key {
			break
		}
	}
	if id != 0 {
		t.put(i, makeSlot(h, id), gen)
		return
	}
	// Remove slot i: shift back every later entry of the run whose home is
	// not between i and its slot, so probes for it still pass through i.
	t.n--
	for j := i; ; {
		j = (j + 1) & m
		cur := t.slot(j)
		if cur == 0 {
			break
		}
		home := hashKey(keyOf(cur.id())) & m
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			t.put(i, cur, gen)
			i = j
		}
	}
	t.put(i, 0, gen)
}

// put writes slot i, copying its chunk (and the directory) first unless
// they belong to generation gen.
func (t *htab) put(i uint64, s hslot, gen uint64) {
	if t.dirGen != gen {
		t.dir = append([]*hchunk(nil), t.dir...)
		t.dirGen = gen
	}
	c := t.dir[i>>hchunkBits]
	if c.gen != gen {
		cp := *c
		cp.gen = gen
		c = &cp
		t.dir[i>>hchunkBits] = c
	}
	c.slots[i&(hchunkLen-1)] = s
}

// grow doubles the table (from one chunk), rehashing every entry into new
// chunks.
func (t *htab) grow(keyOf keyFunc, gen uint64) {
	old := *t
	size := max(1, 2*len(old.dir))
	*t = htab{dir: make([]*hchunk, size), dirGen: gen}
	for i := range t.dir {
		t.dir[i] = &hchunk{gen: gen}
	}
	m := t.mask()
	for _, c := range old.dir {
		for _, s := range c.slots {
			if s == 0 {
				continue
			}
			i := hashKey(keyOf(s.id())) & m
			for t.slot(i) != 0 {
				i = (i + 1) & m
			}
			t.put(i, s, gen)
			t.n++
		}
	}
}
