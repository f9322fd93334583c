package acl

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
)

// Snapshot is one consistent, immutable state of the access-control model.
// All methods are safe for concurrent use and never block. Bitmaps it returns
// may be shared with the index and with other readers: callers must treat
// them as read-only — no Add, Remove, in-place And/Or, RunOptimize or
// SetCopyOnWrite; use roaring.And(bm, other) and friends, which allocate, or
// Clone first.
type Snapshot struct {
	state
	seq uint64
}

// Seq numbers snapshots in the order this index published them.
func (s *Snapshot) Seq() uint64 { return s.seq }

// AsOf is the state's time: grants expiring at or before it no longer count.
func (s *Snapshot) AsOf() time.Time { return time.UnixMilli(s.asOf).UTC() }

// acting returns the account's records if it may act: it is registered, its
// e-mail belongs to it, and is verified.
func (s *Snapshot) acting(id AccountID) (*acctRec, *emailRec) {
	a := s.accounts.get(uint32(id))
	if a == nil || a.pid == 0 || !a.verified {
		return nil, nil
	}
	e := s.emails.get(a.pid)
	if e.holder != id {
		return nil, nil
	}
	return a, e
}

// Systems returns the systems on which acct holds every permission of p:
// the index's bitmap for (acct, p). It is empty for an account that cannot
// act (unknown, unverified, or its e-mail taken by a verified account) and
// for p empty or containing PermCreatePlant; a support account holds every
// existing system.
//
// The bitmap is read-only (see Snapshot). It is composed without walking any
// relation: the sets the account's e-mail holds directly, plus, for each of
// its organizations whose member role covers p, the org's set — shared, not
// copied, when there is one part; a union when there are several.
func (s *Snapshot) Systems(acct AccountID, p Perm) *roaring.Bitmap {
	if bits.OnesCount16(uint16(p)) > 1 {
		// Several permissions may come from different parts (a role of its
		// own, an org's): intersect per permission.
		var out *roaring.Bitmap
		for b := Perm(1); b != 0 && b <= p; b <<= 1 {
			if p&b == 0 {
				continue
			}
			// Often every permission comes from the same part (an org
			// admin's org, an owner's grants): the same shared bitmap, which
			// needs no intersection.
			if next := s.systems1(acct, b); out == nil {
				out = next
			} else if next != out {
				out = roaring.And(out, next)
			}
		}
		return out
	}
	return s.systems1(acct, p)
}

// systems1 is Systems for at most one permission.
func (s *Snapshot) systems1(acct AccountID, p Perm) *roaring.Bitmap {
	var parts [8]*roaring.Bitmap
	all, mine := s.parts1(acct, p, parts[:0])
	switch {
	case len(all) == 0:
		return roaring.New()
	case len(all) == 1:
		return all[0]
	case mine != nil:
		for _, bm := range all {
			if bm != mine {
				mine.Or(bm)
			}
		}
		return mine
	default:
		return roaring.FastOr(all...)
	}
}

// SystemsParts returns bitmaps whose union is Systems(acct, p) for a single
// permission p: the sets it is composed of — the account's own, each org's
// — which may overlap. An org's set is shared by its members and kept
// between snapshots while unchanged, so a caller may cache what it derives
// from one by pointer. The bitmaps must not be modified.
func (s *Snapshot) SystemsParts(acct AccountID, p Perm) []*roaring.Bitmap {
	if bits.OnesCount16(uint16(p)) != 1 {
		return []*roaring.Bitmap{s.Systems(acct, p)}
	}
	all, _ := s.parts1(acct, p, nil)
	return all
}

// parts1 appends to all the sets acct's p-systems are the union of, and
// returns which of them, if any, is a fresh one nobody else holds (which
// may be written).
func (s *Snapshot) parts1(acct AccountID, p Perm, all []*roaring.Bitmap) (_ []*roaring.Bitmap, mine *roaring.Bitmap) {
	a, e := s.acting(acct)
	r := needRole(p)
	if a == nil || r == RoleNone {
		return all, nil
	}
	if a.support {
		return append(all, s.live), nil
	}
	if bm, shared := e.set.atLeast(r); bm != nil {
		all = append(all, bm)
		if !shared {
			mine = bm
		}
	}
	for _, m := range e.orgs() {
		if !m.perms.Has(p) {
			continue
		}
		if o := s.orgs.get(uint32(m.org)); o != nil {
			if bm, shared := o.set.atLeast(r); bm != nil {
				all = append(all, bm)
				if !shared && mine == nil {
					mine = bm
				}
			}
		}
	}
	return all, mine
}

// Can reports whether acct holds every permission of p on sys.
func (s *Snapshot) Can(acct AccountID, p Perm, sys SystemID) bool {
	if bits.OnesCount16(uint16(p)) > 1 {
		for b := Perm(1); b != 0 && b <= p; b <<= 1 {
			if p&b != 0 && !s.can1(acct, b, sys) {
				return false
			}
		}
		return true
	}
	return s.can1(acct, p, sys)
}

func (s *Snapshot) can1(acct AccountID, p Perm, sys SystemID) bool {
	a, e := s.acting(acct)
	r := needRole(p)
	if a == nil || r == RoleNone {
		return false
	}
	if a.support {
		return s.live.Contains(uint32(sys))
	}
	if e.set.role(uint32(sys)) >= r {
		return true
	}
	for _, m := range e.orgs() {
		if m.perms.Has(p) {
			if o := s.orgs.get(uint32(m.org)); o != nil && o.set.role(uint32(sys)) >= r {
				return true
			}
		}
	}
	return false
}

// Perms returns every permission acct holds on sys: the union of its own
// role's, and of each org's role's intersected with its member role.
func (s *Snapshot) Perms(acct AccountID, sys SystemID) Perm {
	a, e := s.acting(acct)
	if a == nil {
		return 0
	}
	if a.support {
		if s.live.Contains(uint32(sys)) {
			return SystemPerms
		}
		return 0
	}
	p := e.set.role(uint32(sys)).Perms()
	for _, m := range e.orgs() {
		if o := s.orgs.get(uint32(m.org)); o != nil {
			p |= o.set.role(uint32(sys)).Perms() & m.perms
		}
	}
	return p
}

// Require returns nil if acct holds p on sys; ErrNotFound if it cannot even
// view sys (so that ids cannot be probed); ErrForbidden otherwise.
func (s *Snapshot) Require(acct AccountID, p Perm, sys SystemID) error {
	have := s.Perms(acct, sys)
	switch {
	case p != 0 && have.Has(p):
		return nil
	case !have.Has(PermView):
		return fmt.Errorf("%w: system %d", ErrNotFound, sys)
	default:
		return fmt.Errorf("%w: %s on system %d needs %s", ErrForbidden, have, sys, p&^have)
	}
}

// AllSystems returns every existing system (read-only).
func (s *Snapshot) AllSystems() *roaring.Bitmap { return s.live }

// System is a system's record.
type System struct {
	ID        SystemID
	GUID      string
	Name      string
	Address   string
	Timezone  string
	Monitored bool
	Org       OrgID     // the commissioning org
	Owner     string    // the owner's e-mail; "" if none
	Created   time.Time // when it was commissioned (the stamp of its first SystemPut)
	// CapacityW is the nameplate DC capacity in watts, 0 if unknown: what
	// specific yield (kWh per kWp) divides by.
	CapacityW uint32
}

// System returns the record of an existing system.
func (s *Snapshot) System(id SystemID) (System, bool) {
	r := s.systems.get(uint32(id))
	if !r.live() {
		return System{}, false
	}
	sys := recSystem(id, r, s.email(r.owner))
	if c := s.caps.get(uint32(id)); c != nil {
		sys.CapacityW = c.w
	}
	return sys, true
}

// recSystem is the System of a live record whose owner's e-mail is owner.
func recSystem(id SystemID, r *sysRec, owner string) System {
	sys := System{ID: id, Monitored: r.monitored, Org: r.org, Owner: owner}
	sys.GUID, sys.Name, sys.Address, sys.Timezone = r.fields()
	if r.createdHLC != 0 {
		sys.Created = Stamp{HLC: r.createdHLC}.Time()
	}
	return sys
}

// Listing is what a list row shows of a system: the system and the first
// installer org that counts (Installers).
type Listing struct {
	System
	Found         bool // the system exists; else the rest is zero
	Installer     OrgID
	InstallerName string
}

// Listings fills out[i] (len(out) ≥ len(ids)) with what System and
// Installers answer for ids[i], stage by stage over all ids rather than id
// by id. A page's systems are scattered over a heap of gigabytes, each a
// chain of cache misses (table leaf, record, metadata, owner's e-mail,
// grants); short loops of loads that do not depend on each other let the
// processor overlap the misses of different systems instead of taking them
// one after the other.
func (s *Snapshot) Listings(ids []SystemID, out []Listing) {
	recs := make([]*sysRec, len(ids))
	for i, id := range ids {
		recs[i] = s.systems.get(uint32(id))
	}
	owners := make([]*emailRec, len(ids))
	for i, r := range recs {
		if r.live() && r.owner != 0 {
			owners[i] = s.emails.get(r.owner)
		}
	}
	for i, r := range recs {
		out[i] = Listing{}
		if !r.live() {
			continue
		}
		owner := ""
		if e := owners[i]; e != nil {
			owner = e.email
		}
		l := &out[i]
		l.System, l.Found = recSystem(ids[i], r, owner), true
		if c := s.caps.get(uint32(ids[i])); c != nil {
			l.System.CapacityW = c.w
		}
		for j := range r.grants {
			if s.installs(r, j) {
				l.Installer = OrgID(r.grants[j].who)
				break
			}
		}
	}
	for i := range ids {
		if l := &out[i]; l.Installer != 0 {
			if o := s.orgs.get(uint32(l.Installer)); o != nil && !o.nameStamp.IsZero() {
				l.InstallerName = o.name
			}
		}
	}
}

// SystemByGUID finds an existing system by GUID (exact match).
func (s *Snapshot) SystemByGUID(guid string) (SystemID, bool) {
	v := s.guidIx.get(guid, s.guidKey)
	return SystemID(v - 1), v != 0
}

func (s *Snapshot) email(pid uint32) string {
	if pid == 0 {
		return ""
	}
	return s.emails.get(pid).email
}

// pending reports whether no verified account holds the e-mail of party pid.
func (s *Snapshot) pending(pid uint32) bool {
	e := s.emails.get(pid)
	if e.holder == 0 {
		return true
	}
	a := s.accounts.get(uint32(e.holder))
	return !a.verified
}

// Grant is one principal's access to a system, as listed by Grants.
type Grant struct {
	Principal Principal
	Role      Role
	ExpiresAt time.Time // zero: permanent
	// Pending: the grantee is an e-mail no verified account holds yet — an
	// invitation that takes effect once the e-mail is verified.
	Pending bool
	Since   time.Time // when the grant (or ownership) was last set
}

// Grants lists who holds what on an existing system: the owner first, then
// e-mail grants by e-mail, then org grants by org id. Revoked and expired
// grants are left out.
func (s *Snapshot) Grants(sys SystemID) []Grant {
	r := s.systems.get(uint32(sys))
	if !r.live() {
		return nil
	}
	var out []Grant
	if r.owner != 0 {
		out = append(out, Grant{Principal: Principal{Email: s.email(r.owner)}, Role: RoleOwner,
			Pending: s.pending(r.owner), Since: r.ownerStamp().Time()})
	}
	first := len(out)
	for i, g := range r.grants {
		if !r.counts(i, s.asOf) || (!g.org && g.who == r.owner) {
			continue // the owner is listed once, as owner
		}
		gr := Grant{Role: g.role, Since: g.stamp().Time()}
		if at := r.expires(g.key()); at != 0 {
			gr.ExpiresAt = time.UnixMilli(at).UTC()
		}
		if g.org {
			gr.Principal = OrgPrincipal(OrgID(g.who))
		} else {
			gr.Principal = Principal{Email: s.email(g.who)}
			gr.Pending = s.pending(g.who)
		}
		out = append(out, gr)
	}
	slices.SortFunc(out[first:], func(a, b Grant) int {
		if a.Principal.IsOrg() != b.Principal.IsOrg() {
			if a.Principal.IsOrg() {
				return 1
			}
			return -1
		}
		if c := strings.Compare(a.Principal.Email, b.Principal.Email); c != 0 {
			return c
		}
		return int(a.Principal.Org) - int(b.Principal.Org)
	})
	return out
}

// grantOf returns the grant principal k holds on r, if it counts.
func (s *Snapshot) grantOf(r *sysRec, k pkey) (grantRec, bool) {
	i, ok := r.findGrant(k)
	if !ok || !r.counts(i, s.asOf) {
		return grantRec{}, false
	}
	return r.grants[i], true
}

// Owner returns the owner's e-mail of an existing system.
func (s *Snapshot) Owner(sys SystemID) (string, bool) {
	r := s.systems.get(uint32(sys))
	if !r.live() || r.owner == 0 {
		return "", false
	}
	return s.email(r.owner), true
}

// Installers returns the orgs holding an installer grant on the system,
// ascending — normally one, the commissioning org or its replacement.
func (s *Snapshot) Installers(sys SystemID) []OrgID {
	r := s.systems.get(uint32(sys))
	if !r.live() {
		return nil
	}
	var out []OrgID
	for i, g := range r.grants {
		if s.installs(r, i) {
			out = append(out, OrgID(g.who))
		}
	}
	return out
}

// installs reports whether r's grant i is an installer org's that counts.
func (s *Snapshot) installs(r *sysRec, i int) bool {
	g := r.grants[i]
	return g.org && g.role == RoleInstaller && r.counts(i, s.asOf)
}

// Emails returns the e-mails associated with an existing system — the
// owner's and every e-mail grantee's, pending invitations included — sorted
// and without duplicates. The search index matches user e-mails against these.
func (s *Snapshot) Emails(sys SystemID) []string {
	r := s.systems.get(uint32(sys))
	if !r.live() {
		return nil
	}
	var out []string
	if r.owner != 0 {
		out = append(out, s.email(r.owner))
	}
	for i, g := range r.grants {
		if !g.org && r.counts(i, s.asOf) {
			out = append(out, s.email(g.who))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Account is an account's state.
type Account struct {
	ID       AccountID
	Email    string
	Name     string // the display name given at registration, or since
	Verified bool
	Support  bool
	// Active: the account may act — its e-mail is verified and belongs to it.
	// An account whose e-mail a verified account also registered is inactive.
	Active bool
}

// Account returns a registered account.
func (s *Snapshot) Account(id AccountID) (Account, bool) {
	a := s.accounts.get(uint32(id))
	if a == nil || a.pid == 0 {
		return Account{}, false
	}
	e := s.emails.get(a.pid)
	acc := Account{ID: id, Email: e.email, Verified: a.verified, Support: a.support,
		Active: a.verified && e.holder == id}
	if c := s.creds.get(uint32(id)); c != nil {
		acc.Name = c.name
	}
	return acc, true
}

// AccountByEmail returns the account an e-mail belongs to (normalized
// before lookup): the verified one, or the earliest registered.
func (s *Snapshot) AccountByEmail(email string) (Account, bool) {
	pid := s.emailIx.get(NormalizeEmail(email), s.emailKey)
	if pid == 0 {
		return Account{}, false
	}
	e := s.emails.get(pid)
	if e == nil || e.holder == 0 {
		return Account{}, false
	}
	return s.Account(e.holder)
}

// Org is an organization's state.
type Org struct {
	ID   OrgID
	Name string
}

// Org returns a created organization.
func (s *Snapshot) Org(id OrgID) (Org, bool) {
	o := s.orgs.get(uint32(id))
	if o == nil || o.nameStamp.IsZero() {
		return Org{}, false
	}
	return Org{ID: id, Name: o.name}, true
}

// Member is one member of an organization.
type Member struct {
	Email string
	Role  string // OrgAdmin or a member role's name
	// Pending: no verified account holds the e-mail yet; the membership
	// takes effect once one does.
	Pending bool
}

// Members lists an organization's members by e-mail.
func (s *Snapshot) Members(org OrgID) []Member {
	o := s.orgs.get(uint32(org))
	if o == nil {
		return nil
	}
	var out []Member
	for _, m := range o.members {
		if !m.deleted {
			out = append(out, Member{Email: s.email(m.pid), Role: m.role, Pending: s.pending(m.pid)})
		}
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Email, b.Email) })
	return out
}

// MemberRole is a named permission set of an organization (a customer type).
type MemberRole struct {
	Name  string
	Perms Perm
}

// MemberRoles lists an organization's member roles by name.
func (s *Snapshot) MemberRoles(org OrgID) []MemberRole {
	o := s.orgs.get(uint32(org))
	if o == nil {
		return nil
	}
	var out []MemberRole
	for _, r := range o.roles {
		if !r.deleted {
			out = append(out, MemberRole{Name: r.name, Perms: r.perms})
		}
	}
	return out
}

// memberReg returns the live membership of the e-mail's party in org.
func (s *Snapshot) memberReg(o *orgRec, pid uint32) (memberReg, bool) {
	i, ok := o.member(pid)
	if !ok || o.members[i].deleted {
		return memberReg{}, false
	}
	return o.members[i], true
}

// OrgRole returns the org role of acct in org, if it is a member (pending
// memberships included).
func (s *Snapshot) OrgRole(acct AccountID, org OrgID) (string, bool) {
	a := s.accounts.get(uint32(acct))
	if a == nil || a.pid == 0 {
		return "", false
	}
	m, ok := s.memberReg(s.orgs.get(uint32(org)), a.pid)
	return m.role, ok
}

// CanInOrg reports whether acct holds p in org itself (not on its systems):
// PermCreatePlant to commission systems under it. An org_admin holds every
// member permission; support holds everything.
func (s *Snapshot) CanInOrg(acct AccountID, p Perm, org OrgID) bool {
	a, e := s.acting(acct)
	if a == nil || p == 0 || !MemberPerms.Has(p) {
		return false
	}
	if a.support {
		return true
	}
	i, ok := e.membership(org)
	return ok && e.orgs()[i].perms.Has(p)
}

// IsOrgAdmin reports whether acct may manage org's members and member roles:
// it is an acting org_admin of the org, or support.
func (s *Snapshot) IsOrgAdmin(acct AccountID, org OrgID) bool {
	a, e := s.acting(acct)
	if a == nil {
		return false
	}
	if a.support {
		return true
	}
	m, ok := s.memberReg(s.orgs.get(uint32(org)), a.pid)
	return ok && m.role == OrgAdmin && e != nil
}

// MaxIDs are the greatest ids a snapshot knows of each kind.
type MaxIDs struct {
	Account AccountID
	Org     OrgID
	System  SystemID // deleted systems included: a system id is never reused
	Gateway GatewayID
}

// MaxIDs returns the greatest ids the state holds, for allocating new ones.
func (s *Snapshot) MaxIDs() MaxIDs {
	var m MaxIDs
	if k, ok := s.accounts.last(0, ^uint32(0)); ok {
		m.Account = AccountID(k)
	}
	if k, ok := s.orgs.last(0, ^uint32(0)); ok {
		m.Org = OrgID(k)
	}
	if k, ok := s.systems.last(0, ^uint32(0)); ok {
		m.System = SystemID(k)
	}
	m.Gateway = GatewayID(s.gwMax)
	return m
}

// Acts reports whether acct may act: it exists, its e-mail is verified and
// belongs to it. An account that does not act may only verify itself, and
// sees nothing — not even the organizations it was invited to.
func (s *Snapshot) Acts(acct AccountID) bool {
	a, _ := s.acting(acct)
	return a != nil
}

// Membership is an organization an account belongs to, with its org role
// and the permissions it keeps of what the org holds.
type Membership struct {
	Org   OrgID
	Name  string
	Role  string // OrgAdmin or a member role's name
	Perms Perm
}

// Memberships lists the organizations an acting account belongs to, by
// id; none for one that does not act.
func (s *Snapshot) Memberships(acct AccountID) []Membership {
	a, e := s.acting(acct)
	if a == nil {
		return nil
	}
	var out []Membership
	for _, m := range e.orgs() {
		o := s.orgs.get(uint32(m.org))
		if o == nil {
			continue
		}
		mr, ok := s.memberReg(o, a.pid)
		if !ok {
			continue
		}
		out = append(out, Membership{Org: m.org, Name: o.name, Role: mr.role, Perms: m.perms})
	}
	return out
}
