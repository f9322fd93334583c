package query

import (
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/fleetscope/fleetscope/acl"
)

// doc is what the catalogue knows of one system for search, sort and
// status: its folded name, the folded keys matched by prefix (GUID, the
// owner's e-mail, its gateways' serials — and, marked private, the e-mails
// of its other grantees and invitations), whether it is monitored and its
// time zone. Display fields (name as
// written, address, owner, installer) are read from the acl snapshot of the
// request instead, so they are never stale.
type doc struct {
	id        uint32
	name      string
	keys      []string
	monitored bool
	loc       *time.Location
}

// privateKey marks a key only callers who may share the system match:
// the e-mail of a grantee other than the owner (DESIGN §5 — a viewer
// cannot spell out who else has access). Folded text never holds it, and
// it sorts the private keys apart, before every other key.
const privateKey = "\x01"

// matches reports whether the doc's name contains q or one of its keys
// starts with q (q folded; "" matches everything); private keys count only
// when private is true.
func (d *doc) matches(q string, private bool) bool {
	if q == "" || strings.Contains(d.name, q) {
		return true
	}
	for _, k := range d.keys {
		if p, ok := strings.CutPrefix(k, privateKey); ok {
			if private && strings.HasPrefix(p, q) {
				return true
			}
			continue
		}
		if strings.HasPrefix(k, q) {
			return true
		}
	}
	return false
}

// docOf reads a system's doc from an acl snapshot; nil if the system does
// not exist (any more).
func docOf(snap *acl.Snapshot, id uint32) *doc {
	sys, ok := snap.System(acl.SystemID(id))
	if !ok {
		return nil
	}
	emails := snap.Emails(sys.ID)
	gws := snap.Gateways(sys.ID)
	d := &doc{id: id, name: fold(sys.Name), monitored: sys.Monitored, loc: acl.Zone(sys.Timezone),
		keys: make([]string, 0, 1+len(emails)+len(gws))}
	d.keys = append(d.keys, fold(sys.GUID))
	for _, e := range emails {
		if e == sys.Owner {
			d.keys = append(d.keys, fold(e))
		} else {
			d.keys = append(d.keys, privateKey+fold(e))
		}
	}
	for _, g := range gws {
		d.keys = append(d.keys, fold(g.Serial))
	}
	return d
}

// baseIndex is the immutable index of every system of one acl snapshot:
// the text index, the order of names, the unmonitored systems and each
// system's time zone. It is rebuilt in the background when the changes
// since (the catalogue's delta) grow past Options.DeltaLimit.
type baseIndex struct {
	seq   uint64 // the acl snapshot it was built from
	text  *textIndex
	unmon *roaring.Bitmap
	zone  []uint16 // by id: index into zones
	zones []*time.Location
	n     uint32 // ids below n are covered by the slices
	built time.Duration
}

// buildBase indexes every existing system of snap, with up to GOMAXPROCS
// goroutines reading the snapshot.
func buildBase(snap *acl.Snapshot) *baseIndex {
	start := time.Now()
	all := snap.AllSystems().ToArray()
	b := &baseIndex{seq: snap.Seq(), unmon: roaring.New()}
	if len(all) > 0 {
		b.n = all[len(all)-1] + 1
	}
	workers := min(runtime.GOMAXPROCS(0), 4, 1+len(all)/50_000)
	parts := make([][]*doc, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := len(all)*w/workers, len(all)*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]*doc, 0, hi-lo)
			for _, id := range all[lo:hi] {
				if d := docOf(snap, id); d != nil {
					out = append(out, d)
				}
			}
			parts[w] = out
		}()
	}
	wg.Wait()
	docs := make([]searchDoc, 0, len(all))
	b.zone = make([]uint16, b.n)
	zoneIx := map[*time.Location]uint16{}
	var unmon []uint32
	for _, part := range parts {
		for _, d := range part {
			docs = append(docs, searchDoc{id: d.id, name: d.name, keys: d.keys})
			if !d.monitored {
				unmon = append(unmon, d.id)
			}
			zi, ok := zoneIx[d.loc]
			if !ok && len(b.zones) < 1<<16 {
				zi = uint16(len(b.zones))
				zoneIx[d.loc] = zi
				b.zones = append(b.zones, d.loc)
			}
			b.zone[d.id] = zi
		}
	}
	if len(b.zones) == 0 {
		b.zones = []*time.Location{time.UTC}
	}
	b.unmon.AddMany(unmon)
	b.text = buildTextIndex(docs)
	b.built = time.Since(start)
	return b
}

// deltaDoc is a system changed since the base was built, as of acl
// snapshot seq; doc is nil if the system no longer exists.
type deltaDoc struct {
	doc *doc
	seq uint64
}

// catalogue is the published, immutable state of the search side: the base
// index plus the systems changed since (delta). Readers combine them: base
// answers for its systems minus the changed ones (deltaIDs), the delta docs
// and anything newer (pending changes, systems beyond the base) are matched
// one by one.
type catalogue struct {
	base     *baseIndex
	delta    map[uint32]deltaDoc
	deltaIDs *roaring.Bitmap
	unmon    *roaring.Bitmap // unmonitored systems, base and delta combined
	n        uint32          // every known id is below n
	seq      uint64          // the newest acl snapshot folded in
}

func newCatalogue(b *baseIndex) *catalogue {
	return &catalogue{base: b, delta: map[uint32]deltaDoc{}, deltaIDs: roaring.New(),
		unmon: b.unmon, n: b.n, seq: b.seq}
}

// withChanges returns the catalogue with the systems ids re-read from snap.
func (c *catalogue) withChanges(snap *acl.Snapshot, ids *roaring.Bitmap) *catalogue {
	nc := &catalogue{base: c.base, delta: make(map[uint32]deltaDoc, len(c.delta)+int(ids.GetCardinality())),
		n: c.n, seq: max(c.seq, snap.Seq())}
	for id, d := range c.delta {
		nc.delta[id] = d
	}
	unmonSame := true
	it := ids.Iterator()
	for it.HasNext() {
		id := it.Next()
		d := docOf(snap, id)
		nc.delta[id] = deltaDoc{doc: d, seq: snap.Seq()}
		nc.n = max(nc.n, id+1)
		if unmon := d != nil && !d.monitored; unmon != c.unmon.Contains(id) {
			unmonSame = false
		}
	}
	nc.finish()
	if unmonSame {
		// Keep the pointer: summaries cache their unmonitored correction
		// by it, and monitored flags rarely change.
		nc.unmon = c.unmon
	}
	return nc
}

// rebased returns the catalogue on a new base: delta docs the base already
// includes (read from a snapshot no newer than the base's) are dropped.
func (c *catalogue) rebased(b *baseIndex) *catalogue {
	nc := &catalogue{base: b, delta: map[uint32]deltaDoc{}, n: max(c.n, b.n), seq: max(c.seq, b.seq)}
	for id, d := range c.delta {
		if d.seq > b.seq {
			nc.delta[id] = d
		}
	}
	nc.finish()
	return nc
}

// finish derives the combined bitmaps from base and delta.
func (c *catalogue) finish() {
	ids := make([]uint32, 0, len(c.delta))
	var unmon []uint32
	for id, d := range c.delta {
		ids = append(ids, id)
		if d.doc != nil && !d.doc.monitored {
			unmon = append(unmon, id)
		}
	}
	slices.Sort(ids)
	slices.Sort(unmon)
	c.deltaIDs = roaring.New()
	c.deltaIDs.AddMany(ids)
	if len(ids) == 0 {
		c.unmon = c.base.unmon
		return
	}
	c.unmon = roaring.AndNot(c.base.unmon, c.deltaIDs)
	c.unmon.AddMany(unmon)
}

// systems counts the systems the catalogue holds: the base's, plus those
// created since, minus those deleted since.
func (c *catalogue) systems() int {
	n := int(c.base.text.ids.GetCardinality())
	for id, d := range c.delta {
		switch inBase := c.base.text.ids.Contains(id); {
		case d.doc != nil && !inBase:
			n++
		case d.doc == nil && inBase:
			n--
		}
	}
	return n
}

// pending holds the systems acl reported changed that the catalogue does
// not include yet. Requests read their docs from their own acl snapshot,
// so search never lags the access state. fresh collects the changes that
// arrive while the refresher works on ids (taken).
type pending struct {
	ids   *roaring.Bitmap
	fresh *roaring.Bitmap
	taken bool
}

var noPending = &pending{ids: roaring.New()}
