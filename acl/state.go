package acl

import (
	"cmp"
	"slices"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"
)

// state is the whole access-control state: the registers (see the package
// doc) and the index derived from them. A Snapshot is an immutable state; the
// writer builds the next one by path-copying into the structures below.
//
// Records are immutable once published. The writer changes a record only
// after taking its own copy for the current generation (see batch), so the
// published versions readers hold never change under them.
type state struct {
	systems  ptab[sysRec]
	accounts ptab[acctRec]
	emails   ptab[emailRec] // by party id (pid)
	orgs     ptab[orgRec]
	emailIx  htab            // e-mail → pid
	guidIx   htab            // GUID → 1 + the live system found by it (see writer.guidSet)
	live     *roaring.Bitmap // systems that exist and are not deleted
	nextPID  uint32
	asOf     int64 // Unix ms: a grant expiring at or before asOf no longer counts

	// Gateways and credentials (gateway.go, cred.go): no part of the index.
	gateways ptab[gwRec]       // by gateway id
	gwLists  ptab[[]GatewayID] // by system: its gateways whose register is a put, by serial and id
	gwMax    uint32            // the largest gateway id any event named
	creds    ptab[credRec]     // by account id
	caps     ptab[capRec]      // by system: its capacity register (SystemCapacity), nil until one
	tokens   ptab[tokenRec]    // by token number (tid), allocated like party ids
	tokenIx  htab              // token id → tid
	nextTID  uint32
	// acctTokens lists each account's tokens (tids, ascending) whose put
	// names it and that are not revoked — expired ones included.
	acctTokens ptab[[]uint32]
}

func (st *state) emailKey(pid uint32) string { return st.emails.get(pid).email }
func (st *state) guidKey(v uint32) string    { return st.systems.get(v - 1).guid() }

// sysRec holds a system's registers: its record, its owner and its grants.
// Fields are ordered for packing: two million of them.
type sysRec struct {
	metaHLC  uint64 // 0 until the first SystemPut: the system does not exist yet; deleted: the deletion's
	ownerHLC uint64
	// createdHLC and createdNode are the stamp of the first SystemPut:
	// when the system was commissioned. Edits move metaHLC, not this.
	createdHLC  uint64
	meta        string     // GUID, name, address and timezone joined by NUL (text cannot contain NUL)
	grants      []grantRec // by key; revoked grants stay as tombstones
	exp         *[]grantExpiry
	owner       uint32 // the owner's party; 0 = none
	org         OrgID
	metaNode    uint16
	ownerNode   uint16
	createdNode uint16
	monitored   bool
	deleted     bool // final: a deleted system never comes back and its id is never reused
}

func (s *sysRec) metaStamp() Stamp  { return Stamp{s.metaHLC, s.metaNode} }
func (s *sysRec) ownerStamp() Stamp { return Stamp{s.ownerHLC, s.ownerNode} }

// grantExpiry is the expiry of a temporary grant. Kept beside the grants,
// not in them, because most grants are permanent: 8 bytes saved on each of
// ten million grants.
type grantExpiry struct {
	at  int64 // Unix ms
	key pkey
}

// expires returns the expiry of k's grant; 0 = permanent.
func (s *sysRec) expires(k pkey) int64 {
	if s.exp != nil {
		for _, e := range *s.exp {
			if e.key == k {
				return e.at
			}
		}
	}
	return 0
}

// setExpires records the expiry of k's grant (0: permanent). s must belong
// to the writer's generation, with exp private to it (see writer.sysMut).
func (s *sysRec) setExpires(k pkey, at int64) {
	var exp []grantExpiry
	if s.exp != nil {
		exp = *s.exp
	}
	i := slices.IndexFunc(exp, func(e grantExpiry) bool { return e.key == k })
	switch {
	case i >= 0 && at == 0:
		exp = slices.Delete(exp, i, i+1)
	case i >= 0:
		exp[i].at = at
	case at != 0:
		exp = append(exp, grantExpiry{at: at, key: k})
	}
	if len(exp) == 0 {
		s.exp = nil
	} else {
		s.exp = &exp
	}
}

// counts reports whether grant i of s counts at asOf.
func (s *sysRec) counts(i int, asOf int64) bool {
	g := s.grants[i]
	if g.role == RoleNone {
		return false
	}
	at := s.expires(g.key())
	return at == 0 || at > asOf
}

func (s *sysRec) live() bool { return s != nil && s.metaHLC != 0 && !s.deleted }

func (s *sysRec) fields() (guid, name, address, tz string) {
	guid, rest, _ := strings.Cut(s.meta, "\x00")
	name, rest, _ = strings.Cut(rest, "\x00")
	address, tz, _ = strings.Cut(rest, "\x00")
	return guid, name, address, tz
}

func (s *sysRec) guid() string {
	g, _, _ := strings.Cut(s.meta, "\x00")
	return g
}

func (s *sysRec) findGrant(k pkey) (int, bool) {
	if s == nil {
		return 0, false
	}
	return slices.BinarySearchFunc(s.grants, k, func(g grantRec, k pkey) int { return g.key().compare(k) })
}

// pkey names a principal inside the state: an org id, or the party id of an
// e-mail. Party ids are allocated in the order e-mails are first seen, so they
// differ between nodes; they never leave the process.
type pkey struct {
	id  uint32
	org bool
}

func (k pkey) compare(o pkey) int {
	if k.org != o.org {
		if k.org {
			return 1
		}
		return -1
	}
	return cmp.Compare(k.id, o.id)
}

// grantRec is the register of one (system, principal) grant: 16 bytes, ten
// million of them. A temporary grant's expiry is in sysRec.exp.
type grantRec struct {
	hlc  uint64
	who  uint32
	node uint16
	org  bool
	role Role // RoleNone: revoked
}

func (g grantRec) key() pkey    { return pkey{g.who, g.org} }
func (g grantRec) stamp() Stamp { return Stamp{g.hlc, g.node} }

// acctRec holds an account's registers, stamps unpacked for size.
type acctRec struct {
	regHLC   uint64 // the registration in force: the earliest
	verHLC   uint64
	supHLC   uint64
	pid      uint32 // its e-mail's party; 0 until the registration is known
	regNode  uint16
	verNode  uint16
	supNode  uint16
	verified bool
	support  bool
}

func (a *acctRec) reg() Stamp           { return Stamp{a.regHLC, a.regNode} }
func (a *acctRec) verifiedStamp() Stamp { return Stamp{a.verHLC, a.verNode} }
func (a *acctRec) supportStamp() Stamp  { return Stamp{a.supHLC, a.supNode} }

// emailRec is the party of one e-mail address, with or without an account.
// 64 bytes: a million of them.
type emailRec struct {
	email  string
	set    roleSet    // direct roles: grants to this e-mail and ownership
	more   *emailMore // nil for most e-mails: at most one registration, no membership
	holder AccountID  // the account the e-mail belongs to (see writer.setClaims); 0 = none
}

type emailMore struct {
	claims []AccountID  // every account registered with the e-mail if there are several, ascending; replaced, never changed in place
	orgs   []membership // the e-mail's memberships, by org
}

// claims returns the accounts registered with the e-mail, ascending. With
// one registration, that account holds the e-mail and is not stored twice.
func (e *emailRec) claims() []AccountID {
	if e.more != nil && len(e.more.claims) > 0 {
		return e.more.claims
	}
	if e.holder != 0 {
		return []AccountID{e.holder}
	}
	return nil
}

func (e *emailRec) orgs() []membership {
	if e.more == nil {
		return nil
	}
	return e.more.orgs
}

// membership is an e-mail's membership in an org as the index needs it: the
// permissions the member keeps of what the org holds.
type membership struct {
	org   OrgID
	perms Perm // AllPerms for org_admin; the member role's, or 0 if it does not exist
}

func (e *emailRec) membership(org OrgID) (int, bool) {
	return slices.BinarySearchFunc(e.orgs(), org, func(m membership, o OrgID) int { return cmp.Compare(m.org, o) })
}

// orgRec holds an organization's registers and the index of what it holds.
type orgRec struct {
	name      string
	nameStamp Stamp // zero until OrgPut: the org is not created (yet)
	set       roleSet
	members   []memberReg // by pid; removed members stay as tombstones
	roles     []roleReg   // by name; deleted roles stay as tombstones
}

type memberReg struct {
	pid     uint32
	role    string
	stamp   Stamp
	deleted bool
}

type roleReg struct {
	name    string
	perms   Perm
	stamp   Stamp
	deleted bool
}

func (o *orgRec) member(pid uint32) (int, bool) {
	if o == nil {
		return 0, false
	}
	return slices.BinarySearchFunc(o.members, pid, func(m memberReg, p uint32) int { return cmp.Compare(m.pid, p) })
}

func (o *orgRec) role(name string) (int, bool) {
	if o == nil {
		return 0, false
	}
	return slices.BinarySearchFunc(o.roles, name, func(r roleReg, n string) int { return strings.Compare(r.name, n) })
}

// orgRolePerms returns what a member with org role name keeps of the org's
// permissions: everything for org_admin, the member role's permissions, or
// nothing if that member role does not exist (any more).
func (o *orgRec) orgRolePerms(name string) Perm {
	if name == OrgAdmin {
		return AllPerms
	}
	if i, ok := o.role(name); ok && !o.roles[i].deleted {
		return o.roles[i].perms
	}
	return 0
}

// capRec is a system's capacity register, replaced by every event that
// wins it (last writer wins). A deleted system's goes with it.
type capRec struct {
	hlc  uint64
	w    uint32 // watts; 0 = unknown
	node uint16
}

func (c *capRec) stamp() Stamp { return Stamp{c.hlc, c.node} }
