package acl

import (
	"cmp"
	"container/heap"
	"slices"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"
)

// writer folds events into the working state. It is owned by Index and used
// under its mutex. Every method keeps two invariants: a register changes only
// for an event with a greater stamp (a smaller one for registrations), and
// after every change the index (roleSets, memberships, live) equals what the
// rules derive from the registers.
type writer struct {
	st        state
	b         batch
	liveOwned bool // st.live belongs to this generation
	expiry    expiryHeap
	ch        changes
	// guidDup lists, for the rare GUID two live systems share (commissioned
	// concurrently on two nodes), all of them; the index finds the smallest.
	// Only the writer needs it, to pick the next one when that one goes.
	guidDup map[string][]SystemID
}

func (w *writer) gen() uint64 { return w.b.gen }

// batch is the writer's context for one generation: which records and
// bitmaps it created — and may change in place until they are published.
type batch struct {
	gen uint64
	// all: every record may change in place — Replay into an index that has
	// published no record yet, so no reader can hold one.
	all   bool
	recs  map[any]struct{}
	owned map[*roaring.Bitmap]struct{}
}

func (b *batch) owns(rec any) bool {
	if b.all {
		return true
	}
	_, ok := b.recs[rec]
	return ok
}

func (b *batch) own(rec any) {
	if !b.all {
		b.recs[rec] = struct{}{}
	}
}

func (b *batch) ownsBitmap(bm *roaring.Bitmap) bool {
	_, ok := b.owned[bm]
	return ok || b.all && bm != nil
}

func (b *batch) newBitmap() *roaring.Bitmap {
	bm := roaring.New()
	b.owned[bm] = struct{}{}
	return bm
}

func (b *batch) clone(bm *roaring.Bitmap) *roaring.Bitmap {
	c := bm.Clone()
	b.owned[c] = struct{}{}
	return c
}

// Records, copied on first change in a generation.

func (w *writer) sysMut(id SystemID) *sysRec {
	r := w.st.systems.get(uint32(id))
	if r != nil && w.b.owns(r) {
		return r
	}
	c := &sysRec{}
	if r != nil {
		*c = *r
		c.grants = slices.Clone(r.grants)
		if r.exp != nil {
			exp := slices.Clone(*r.exp)
			c.exp = &exp
		}
	}
	w.b.own(c)
	w.st.systems.set(uint32(id), c, w.gen())
	return c
}

func (w *writer) acctMut(id AccountID) *acctRec {
	r := w.st.accounts.get(uint32(id))
	if r != nil && w.b.owns(r) {
		return r
	}
	c := &acctRec{}
	if r != nil {
		*c = *r
	}
	w.b.own(c)
	w.st.accounts.set(uint32(id), c, w.gen())
	return c
}

func (w *writer) emailMut(pid uint32) *emailRec {
	r := w.st.emails.get(pid)
	if w.b.owns(r) {
		return r
	}
	c := *r
	c.set = r.set.clone()
	if r.more != nil {
		m := emailMore{claims: slices.Clone(r.more.claims), orgs: slices.Clone(r.more.orgs)}
		c.more = &m
	}
	w.b.own(&c)
	w.st.emails.set(pid, &c, w.gen())
	return &c
}

func (w *writer) orgMut(id OrgID) *orgRec {
	r := w.st.orgs.get(uint32(id))
	if r != nil && w.b.owns(r) {
		return r
	}
	c := &orgRec{}
	if r != nil {
		*c = *r
		c.set = r.set.clone()
	}
	w.b.own(c)
	w.st.orgs.set(uint32(id), c, w.gen())
	return c
}

// orgLists is the ownership key of an org record's member and role lists.
type orgLists struct{ o *orgRec }

// ownLists makes o's member and role lists private to this generation. They
// are copied lazily because an org's grants change far more often than its
// members, and an org can have thousands of them.
func (w *writer) ownLists(o *orgRec) {
	if !w.b.owns(orgLists{o}) {
		o.members = slices.Clone(o.members)
		o.roles = slices.Clone(o.roles)
		w.b.own(orgLists{o})
	}
}

// pid returns the party of an e-mail, creating it on first sight.
func (w *writer) pid(email string) uint32 {
	if p := w.st.emailIx.get(email, w.st.emailKey); p != 0 {
		return p
	}
	w.st.nextPID++
	p := w.st.nextPID
	e := &emailRec{email: email}
	w.b.own(e)
	w.st.emails.set(p, e, w.gen())
	w.st.emailIx.set(email, p, w.st.emailKey, w.gen())
	return p
}

func (w *writer) key(p Principal) pkey {
	if p.IsOrg() {
		return pkey{id: uint32(p.Org), org: true}
	}
	return pkey{id: w.pid(p.Email)}
}

// apply folds one valid event into the working state.
func (w *writer) apply(ev Event) {
	switch ev.Kind {
	case KindAccountRegister:
		w.register(ev)
	case KindAccountVerify:
		a := w.st.accounts.get(uint32(ev.Account))
		if a != nil && !ev.Stamp.After(a.verifiedStamp()) {
			return
		}
		a = w.acctMut(ev.Account)
		a.verified, a.verHLC, a.verNode = ev.Verified, ev.Stamp.HLC, ev.Stamp.Node
		w.ch.account(ev.Account)
		w.rebind(a.pid)
	case KindAccountSupport:
		a := w.st.accounts.get(uint32(ev.Account))
		if a != nil && !ev.Stamp.After(a.supportStamp()) {
			return
		}
		a = w.acctMut(ev.Account)
		a.support, a.supHLC, a.supNode = ev.Support, ev.Stamp.HLC, ev.Stamp.Node
		w.ch.account(ev.Account)
	case KindOrgPut:
		o := w.st.orgs.get(uint32(ev.Org))
		if o != nil && !ev.Stamp.After(o.nameStamp) {
			return
		}
		o = w.orgMut(ev.Org)
		o.name, o.nameStamp = ev.Name, ev.Stamp
		w.ch.org(ev.Org)
	case KindMemberPut, KindMemberDelete:
		w.member(ev)
	case KindRolePut, KindRoleDelete:
		w.memberRole(ev)
	case KindSystemPut:
		w.systemPut(ev)
	case KindSystemDelete:
		w.systemDelete(ev)
	case KindOwnerSet:
		s := w.st.systems.get(uint32(ev.System))
		if s != nil && (s.deleted || !ev.Stamp.After(s.ownerStamp())) {
			return
		}
		p := w.pid(ev.Email)
		s = w.sysMut(ev.System)
		old := s.owner
		s.owner, s.ownerHLC, s.ownerNode = p, ev.Stamp.HLC, ev.Stamp.Node
		if old != p {
			if old != 0 {
				w.refresh(ev.System, s, pkey{id: old})
			}
			w.refresh(ev.System, s, pkey{id: p})
		}
		w.ch.system(ev.System)
	case KindGrantPut, KindGrantDelete:
		w.grant(ev)
	case KindGatewayPut, KindGatewayDelete, KindGatewayRekey:
		w.gateway(ev)
	case KindTokenPut, KindTokenDelete, KindTokenMeta:
		w.token(ev)
	case KindPasswordSet, KindCodeSet, KindAccountName:
		w.cred(ev)
	case KindSystemCapacity:
		if s := w.st.systems.get(uint32(ev.System)); s != nil && s.deleted {
			return // the system is gone for good, its registers with it
		}
		if c := w.st.caps.get(uint32(ev.System)); c != nil && !ev.Stamp.After(c.stamp()) {
			return
		}
		w.st.caps.set(uint32(ev.System), &capRec{hlc: ev.Stamp.HLC, w: ev.Capacity, node: ev.Stamp.Node}, w.gen())
		w.ch.system(ev.System)
	}
}

// register: the first registration of an account id wins (the smallest
// stamp), so an id allocated twice by racing nodes resolves the same way
// everywhere; the loser is an account without an e-mail, which can do nothing.
func (w *writer) register(ev Event) {
	a := w.st.accounts.get(uint32(ev.Account))
	if a != nil && a.pid != 0 && !a.reg().After(ev.Stamp) {
		return
	}
	p := w.pid(ev.Email)
	a = w.acctMut(ev.Account)
	old := a.pid
	a.pid, a.regHLC, a.regNode = p, ev.Stamp.HLC, ev.Stamp.Node
	w.ch.account(ev.Account)
	if old != p {
		if old != 0 {
			claims := slices.Clone(w.st.emails.get(old).claims())
			if i, ok := slices.BinarySearch(claims, ev.Account); ok {
				w.setClaims(old, slices.Delete(claims, i, i+1))
			}
		}
		claims := slices.Clone(w.st.emails.get(p).claims())
		if i, ok := slices.BinarySearch(claims, ev.Account); !ok {
			claims = slices.Insert(claims, i, ev.Account)
		}
		w.setClaims(p, claims)
	} else {
		w.rebind(p) // the registration's stamp changed: it may rank differently
	}
}

// setClaims stores the accounts registered with an e-mail and recomputes
// which one the e-mail belongs to: a verified one before an unverified one,
// then the earliest registration, then the smallest id. Preferring verified
// accounts means registering someone else's address first takes nothing
// from them: once they register and verify, the address is theirs.
func (w *writer) setClaims(pid uint32, claims []AccountID) {
	var best AccountID
	var bestA *acctRec
	for _, c := range claims {
		a := w.st.accounts.get(uint32(c))
		if bestA == nil || a.verified && !bestA.verified ||
			a.verified == bestA.verified && a.reg().Compare(bestA.reg()) < 0 {
			best, bestA = c, a
		}
	}
	e := w.st.emails.get(pid)
	if best == e.holder && slices.Equal(claims, e.claims()) {
		return
	}
	if best != e.holder {
		w.ch.account(e.holder)
		w.ch.account(best)
	}
	e = w.emailMut(pid)
	e.holder = best
	if len(claims) < 2 {
		claims = nil
	}
	w.setMore(e, claims, e.orgs())
}

// rebind recomputes the holder of an e-mail after a claim's verification or
// registration changed.
func (w *writer) rebind(pid uint32) {
	if pid != 0 {
		w.setClaims(pid, w.st.emails.get(pid).claims())
	}
}

// setMore stores the rarely used parts of an owned e-mail record, dropping
// the extra allocation when both are empty.
func (w *writer) setMore(e *emailRec, claims []AccountID, orgs []membership) {
	if len(claims) == 0 && len(orgs) == 0 {
		e.more = nil
		return
	}
	if e.more == nil {
		e.more = &emailMore{}
	}
	e.more.claims, e.more.orgs = claims, orgs
}

func (w *writer) member(ev Event) {
	p := w.pid(ev.Email)
	o := w.st.orgs.get(uint32(ev.Org))
	i, found := o.member(p)
	if found && !ev.Stamp.After(o.members[i].stamp) {
		return
	}
	o = w.orgMut(ev.Org)
	w.ownLists(o)
	reg := memberReg{pid: p, role: ev.OrgRole, stamp: ev.Stamp, deleted: ev.Kind == KindMemberDelete}
	if found {
		o.members[i] = reg
	} else {
		o.members = slices.Insert(o.members, i, reg)
	}
	w.refreshMember(ev.Org, o, p)
	w.ch.org(ev.Org)
}

func (w *writer) memberRole(ev Event) {
	o := w.st.orgs.get(uint32(ev.Org))
	i, found := o.role(ev.Name)
	if found && !ev.Stamp.After(o.roles[i].stamp) {
		return
	}
	var before Perm
	if o != nil {
		before = o.orgRolePerms(ev.Name)
	}
	o = w.orgMut(ev.Org)
	w.ownLists(o)
	reg := roleReg{name: ev.Name, perms: ev.Perms, stamp: ev.Stamp, deleted: ev.Kind == KindRoleDelete}
	if found {
		o.roles[i] = reg
	} else {
		o.roles = slices.Insert(o.roles, i, reg)
	}
	// An edit applies to every member holding the role at once.
	if o.orgRolePerms(ev.Name) != before {
		for _, m := range o.members {
			if !m.deleted && m.role == ev.Name {
				w.refreshMember(ev.Org, o, m.pid)
			}
		}
	}
	w.ch.org(ev.Org)
}

// refreshMember brings the e-mail's membership entry in line with the org's
// member register and member roles.
func (w *writer) refreshMember(org OrgID, o *orgRec, pid uint32) {
	var perms Perm
	i, live := o.member(pid)
	if live = live && !o.members[i].deleted; live {
		perms = o.orgRolePerms(o.members[i].role)
	}
	e := w.st.emails.get(pid)
	j, has := e.membership(org)
	if has == live && (!live || e.orgs()[j].perms == perms) {
		return
	}
	e = w.emailMut(pid)
	orgs := e.orgs()
	switch {
	case !live:
		orgs = slices.Delete(orgs, j, j+1)
	case has:
		orgs[j].perms = perms
	default:
		orgs = slices.Insert(orgs, j, membership{org: org, perms: perms})
	}
	var claims []AccountID
	if e.more != nil {
		claims = e.more.claims
	}
	w.setMore(e, claims, orgs)
}

func (w *writer) systemPut(ev Event) {
	s := w.st.systems.get(uint32(ev.System))
	if s != nil && (s.deleted || !ev.Stamp.After(s.metaStamp())) {
		if !s.deleted && s.createdHLC != 0 && (Stamp{s.createdHLC, s.createdNode}).After(ev.Stamp) {
			// An older put, arrived late: the system was commissioned then.
			s = w.sysMut(ev.System)
			s.createdHLC, s.createdNode = ev.Stamp.HLC, ev.Stamp.Node
		}
		return
	}
	wasLive := s.live()
	if wasLive && s.guid() != ev.GUID {
		w.guidSet(s.guid(), ev.System, false) // while the record still has it
	}
	s = w.sysMut(ev.System)
	oldGUID := s.guid()
	s.meta = ev.GUID + "\x00" + ev.Name + "\x00" + ev.Address + "\x00" + ev.Timezone
	s.metaHLC, s.metaNode, s.org, s.monitored = ev.Stamp.HLC, ev.Stamp.Node, ev.Org, ev.Monitored
	if s.createdHLC == 0 || (Stamp{s.createdHLC, s.createdNode}).After(ev.Stamp) {
		s.createdHLC, s.createdNode = ev.Stamp.HLC, ev.Stamp.Node
	}
	if !wasLive {
		// Grants and the owner may have arrived before the system: they count now.
		w.liveSet(ev.System, true)
		w.refreshAll(ev.System, s)
	}
	if !wasLive || oldGUID != ev.GUID {
		w.guidSet(s.guid(), ev.System, true)
	}
	w.ch.system(ev.System)
}

// systemDelete is final, so once the roles it held are cleared its registers
// can go: no later event can revive them. The tombstone keeps the greatest
// stamp of the deletions in metaHLC and metaNode: any would do, since a
// deletion is absorbing, but the greatest is the same on every node, so the
// state's export (Snapshot.Export) is a function of the events too.
func (w *writer) systemDelete(ev Event) {
	id := ev.System
	s := w.st.systems.get(uint32(id))
	if s != nil && s.deleted {
		if ev.Stamp.After(s.metaStamp()) {
			s = w.sysMut(id)
			s.metaHLC, s.metaNode = ev.Stamp.HLC, ev.Stamp.Node
		}
		return
	}
	wasLive := s.live()
	s = w.sysMut(id)
	s.deleted = true
	if wasLive {
		w.liveSet(id, false)
		w.guidSet(s.guid(), id, false)
		w.refreshAll(id, s)
	}
	*s = sysRec{deleted: true, metaHLC: ev.Stamp.HLC, metaNode: ev.Stamp.Node}
	w.dropGateways(id)
	w.st.caps.set(uint32(id), nil, w.gen())
	w.ch.system(id)
}

func (w *writer) grant(ev Event) {
	s := w.st.systems.get(uint32(ev.System))
	if s != nil && s.deleted {
		return
	}
	k := w.key(ev.Grantee)
	i, found := s.findGrant(k)
	if found && !ev.Stamp.After(s.grants[i].stamp()) {
		return
	}
	s = w.sysMut(ev.System)
	g := grantRec{hlc: ev.Stamp.HLC, node: ev.Stamp.Node, who: k.id, org: k.org}
	if ev.Kind == KindGrantPut {
		g.role = ev.Role
	}
	if found {
		s.grants[i] = g
	} else {
		s.grants = slices.Insert(s.grants, i, g)
	}
	s.setExpires(k, ev.Expires)
	w.refresh(ev.System, s, k)
	if g.role != RoleNone && ev.Expires > w.st.asOf {
		heap.Push(&w.expiry, expiryItem{at: ev.Expires, sys: ev.System, key: k, stamp: ev.Stamp})
	}
	w.ch.system(ev.System)
}

// refresh recomputes the role principal k holds on system id from the
// system's registers — the owner register and k's grant — and stores it in
// k's roleSet. This is the one place the index learns a role.
func (w *writer) refresh(id SystemID, s *sysRec, k pkey) {
	r := RoleNone
	if s.live() {
		if !k.org && k.id == s.owner {
			r = RoleOwner
		}
		if i, ok := s.findGrant(k); ok && s.counts(i, w.st.asOf) {
			r = max(r, s.grants[i].role)
		}
	}
	if k.org {
		o := w.st.orgs.get(k.id)
		if (o == nil && r == RoleNone) || (o != nil && o.set.role(uint32(id)) == r) {
			return
		}
		w.orgMut(OrgID(k.id)).set.set(&w.b, uint32(id), r)
		return
	}
	if w.st.emails.get(k.id).set.role(uint32(id)) == r {
		return
	}
	w.emailMut(k.id).set.set(&w.b, uint32(id), r)
}

func (w *writer) refreshAll(id SystemID, s *sysRec) {
	for _, g := range s.grants {
		w.refresh(id, s, g.key())
	}
	if s.owner != 0 {
		w.refresh(id, s, pkey{id: s.owner})
	}
}

func (w *writer) liveSet(id SystemID, on bool) {
	if !w.liveOwned {
		w.st.live = w.st.live.Clone()
		w.liveOwned = true
	}
	if on {
		w.st.live.Add(uint32(id))
	} else {
		w.st.live.Remove(uint32(id))
	}
}

// guidSet adds or removes id from the live systems carrying guid. Two live
// systems share a GUID only if two nodes commissioned it concurrently; then
// lookups find the smaller id, the same on every node. The record of id must
// still carry guid when this is called.
func (w *writer) guidSet(guid string, id SystemID, on bool) {
	cur := w.st.guidIx.get(guid, w.st.guidKey)
	ids, dup := w.guidDup[guid]
	switch {
	case dup:
	case cur == 0:
		ids = nil
	default:
		ids = []SystemID{SystemID(cur - 1)}
	}
	i, found := slices.BinarySearch(ids, id)
	switch {
	case on && !found:
		ids = slices.Insert(ids, i, id)
	case !on && found:
		ids = slices.Delete(ids, i, i+1)
	default:
		return
	}
	if len(ids) > 1 {
		if w.guidDup == nil {
			w.guidDup = map[string][]SystemID{}
		}
		w.guidDup[guid] = ids
	} else {
		delete(w.guidDup, guid)
	}
	var next uint32
	if len(ids) > 0 {
		next = uint32(ids[0]) + 1
	}
	if next != cur {
		w.st.guidIx.set(guid, next, w.st.guidKey, w.gen())
	}
}

// expire moves the state's time to asOf (never backwards) and drops from
// the index every grant that expired by then.
func (w *writer) expire(asOf int64) {
	w.st.asOf = max(w.st.asOf, asOf)
	for len(w.expiry) > 0 && w.expiry[0].at <= w.st.asOf {
		it := heap.Pop(&w.expiry).(expiryItem)
		s := w.st.systems.get(uint32(it.sys))
		i, ok := s.findGrant(it.key)
		if !ok || s.grants[i].stamp() != it.stamp {
			continue // replaced, revoked or system deleted since
		}
		w.refresh(it.sys, s, it.key)
		w.ch.system(it.sys)
	}
}

// expiryItem is a grant that stops counting at a time. Entries of grants
// replaced since are skipped when they come up.
type expiryItem struct {
	at    int64
	sys   SystemID
	key   pkey
	stamp Stamp
}

type expiryHeap []expiryItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryItem)) }
func (h *expiryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// changes collects what one Apply or Expire touched.
type changes struct {
	off      bool // Replay: record nothing
	systems  *roaring.Bitmap
	orgs     map[OrgID]struct{}
	accounts map[AccountID]struct{}
}

func (c *changes) system(id SystemID) {
	if c.off {
		return
	}
	if c.systems == nil {
		c.systems = roaring.New()
	}
	c.systems.Add(uint32(id))
}

func (c *changes) org(id OrgID) {
	if c.off {
		return
	}
	if c.orgs == nil {
		c.orgs = map[OrgID]struct{}{}
	}
	c.orgs[id] = struct{}{}
}

func (c *changes) account(id AccountID) {
	if id == 0 || c.off {
		return
	}
	if c.accounts == nil {
		c.accounts = map[AccountID]struct{}{}
	}
	c.accounts[id] = struct{}{}
}

func sortedKeys[K cmp.Ordered](m map[K]struct{}) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// compact copies every record into fresh, exactly sized allocations, at the
// end of a Replay into a fresh index. A replay grows millions of small
// slices one element at a time, which leaves them with spare capacity and
// leaves the heap's spans half full of garbage between survivors; after the
// copy the survivors sit together and the old spans are free to return to
// the OS. Only for Replay: the records must be the writer's alone (batch.all).
func (w *writer) compact() {
	w.st.systems.each(func(id uint32, r *sysRec) bool {
		c := *r
		c.grants = slices.Clip(slices.Clone(r.grants))
		c.meta = strings.Clone(r.meta)
		w.st.systems.set(id, &c, w.gen())
		return true
	})
	w.st.accounts.each(func(id uint32, r *acctRec) bool {
		c := *r
		w.st.accounts.set(id, &c, w.gen())
		return true
	})
	w.st.emails.each(func(id uint32, r *emailRec) bool {
		c := *r
		c.set.small = slices.Clip(slices.Clone(r.set.small))
		w.st.emails.set(id, &c, w.gen())
		return true
	})
}
