package acl

// ptab is a persistent map from uint32 to *T: a 4-level radix tree of
// 256-way nodes. Lookups are four loads. A write copies the nodes on its path
// — unless a node already belongs to the writer's current generation, which
// it then changes in place — so a published version is never modified and
// readers holding it need no lock. Dense keys (system, account and party ids)
// fill whole leaves; the copies a change costs are four 2 KiB nodes, once per
// generation.
//
// Values are immutable once published, like the nodes: a writer replaces the
// *T rather than changing it (see batch).
type ptab[T any] struct{ root *pnode3[T] }

const (
	pfan  = 256
	pmask = pfan - 1
)

type pnode3[T any] struct {
	gen  uint64
	kids [pfan]*pnode2[T]
}

type pnode2[T any] struct {
	gen  uint64
	kids [pfan]*pnode1[T]
}

type pnode1[T any] struct {
	gen  uint64
	kids [pfan]*pleaf[T]
}

type pleaf[T any] struct {
	gen  uint64
	vals [pfan]*T
}

func (t ptab[T]) get(k uint32) *T {
	n3 := t.root
	if n3 == nil {
		return nil
	}
	n2 := n3.kids[k>>24]
	if n2 == nil {
		return nil
	}
	n1 := n2.kids[k>>16&pmask]
	if n1 == nil {
		return nil
	}
	l := n1.kids[k>>8&pmask]
	if l == nil {
		return nil
	}
	return l.vals[k&pmask]
}

// own returns n if it belongs to generation gen, else a copy of it (or a new
// node) that does.
func own[N any](n *N, gen uint64, genOf func(*N) *uint64) *N {
	if n != nil && *genOf(n) == gen {
		return n
	}
	c := new(N)
	if n != nil {
		*c = *n
	}
	*genOf(c) = gen
	return c
}

// set stores v under k, copying the path unless it belongs to gen.
func (t *ptab[T]) set(k uint32, v *T, gen uint64) {
	n3 := own(t.root, gen, func(n *pnode3[T]) *uint64 { return &n.gen })
	t.root = n3
	n2 := own(n3.kids[k>>24], gen, func(n *pnode2[T]) *uint64 { return &n.gen })
	n3.kids[k>>24] = n2
	n1 := own(n2.kids[k>>16&pmask], gen, func(n *pnode1[T]) *uint64 { return &n.gen })
	n2.kids[k>>16&pmask] = n1
	l := own(n1.kids[k>>8&pmask], gen, func(n *pleaf[T]) *uint64 { return &n.gen })
	n1.kids[k>>8&pmask] = l
	l.vals[k&pmask] = v
}

// each calls f for every key with a value, in increasing key order, until f
// returns false.
func (t ptab[T]) each(f func(k uint32, v *T) bool) {
	if t.root == nil {
		return
	}
	for i3, n2 := range t.root.kids {
		if n2 == nil {
			continue
		}
		for i2, n1 := range n2.kids {
			if n1 == nil {
				continue
			}
			for i1, l := range n1.kids {
				if l == nil {
					continue
				}
				for i0, v := range l.vals {
					if v != nil && !f(uint32(i3)<<24|uint32(i2)<<16|uint32(i1)<<8|uint32(i0), v) {
						return
					}
				}
			}
		}
	}
}

// last returns the greatest key in [lo, hi] that has a value: a walk down
// the rightmost children in range, a few node visits for dense keys.
func (t ptab[T]) last(lo, hi uint32) (uint32, bool) {
	if t.root == nil || lo > hi {
		return 0, false
	}
	for i3 := int(hi >> 24); i3 >= int(lo>>24); i3-- {
		n2 := t.root.kids[i3]
		if n2 == nil {
			continue
		}
		for i2 := pmask; i2 >= 0; i2-- {
			n1 := n2.kids[i2]
			if n1 == nil {
				continue
			}
			for i1 := pmask; i1 >= 0; i1-- {
				l := n1.kids[i1]
				if l == nil {
					continue
				}
				base := uint32(i3)<<24 | uint32(i2)<<16 | uint32(i1)<<8
				if base > hi || base|pmask < lo {
					continue
				}
				for i0 := pmask; i0 >= 0; i0-- {
					k := base | uint32(i0)
					if k >= lo && k <= hi && l.vals[i0] != nil {
						return k, true
					}
				}
			}
		}
	}
	return 0, false
}
