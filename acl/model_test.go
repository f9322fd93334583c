package acl

import (
	"crypto/sha256"

	"github.com/RoaringBitmap/roaring/v2"

	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	flagSeed = flag.Uint64("acl.seed", 1, "seed of the randomized acl tests; 0 picks a random one")
	flagOps  = flag.Int("acl.ops", 3000, "operations per randomized acl test")
)

func testSeed(t *testing.T) uint64 {
	seed := *flagSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (rerun with -acl.seed=%d)", seed, seed)
	return seed
}

// ---------------------------------------------------------------------------
// The brute-force model: the rules of DESIGN §4 evaluated directly over the
// raw relations — the log of every event applied — with no index, no
// incremental state and nothing shared with the implementation but the
// public types. Each register is the event with the greatest stamp for its
// key (the least, for a registration); everything else follows from the
// rules as the package doc states them. Gateways and credentials too: a
// gateway counts if its latest event is a put naming a live system; a token
// authenticates if no revocation of it exists at all and its latest put
// names a registered account.

type model struct {
	events []Event
	asOf   int64
}

type (
	mGrantKey struct {
		sys SystemID
		p   Principal
	}
	mMemberKey struct {
		org   OrgID
		email string
	}
	mRoleKey struct {
		org  OrgID
		name string
	}
)

// truth is the model's state at one moment.
type truth struct {
	asOf      int64
	reg       map[AccountID]Event // earliest registration
	verified  map[AccountID]Event
	support   map[AccountID]Event
	orgName   map[OrgID]Event
	member    map[mMemberKey]Event
	role      map[mRoleKey]Event
	sysPut    map[SystemID]Event
	sysDel    map[SystemID]bool
	owner     map[SystemID]Event
	grant     map[mGrantKey]Event
	activeAcc map[AccountID]bool
	gateway   map[GatewayID]Event
	tokenPut  map[string]Event
	tokenMeta map[string]Event
	tokenDel  map[string]bool
	password  map[AccountID]Event
	code      map[AccountID]Event
	name      map[AccountID]Event
	capacity  map[SystemID]Event
}

func later(a, b Event) bool { return a.Stamp.Compare(b.Stamp) > 0 }

func keepLatest[K comparable](m map[K]Event, k K, ev Event) {
	if old, ok := m[k]; !ok || later(ev, old) {
		m[k] = ev
	}
}

func (m *model) eval() *truth {
	t := &truth{asOf: m.asOf, reg: map[AccountID]Event{}, verified: map[AccountID]Event{},
		support: map[AccountID]Event{}, orgName: map[OrgID]Event{}, member: map[mMemberKey]Event{},
		role: map[mRoleKey]Event{}, sysPut: map[SystemID]Event{}, sysDel: map[SystemID]bool{},
		owner: map[SystemID]Event{}, grant: map[mGrantKey]Event{}, activeAcc: map[AccountID]bool{},
		gateway: map[GatewayID]Event{}, tokenPut: map[string]Event{}, tokenMeta: map[string]Event{}, tokenDel: map[string]bool{},
		password: map[AccountID]Event{}, code: map[AccountID]Event{}, name: map[AccountID]Event{},
		capacity: map[SystemID]Event{}}
	for _, ev := range m.events {
		switch ev.Kind {
		case KindAccountRegister:
			if old, ok := t.reg[ev.Account]; !ok || later(old, ev) {
				t.reg[ev.Account] = ev
			}
		case KindAccountVerify:
			keepLatest(t.verified, ev.Account, ev)
		case KindAccountSupport:
			keepLatest(t.support, ev.Account, ev)
		case KindOrgPut:
			keepLatest(t.orgName, ev.Org, ev)
		case KindMemberPut, KindMemberDelete:
			keepLatest(t.member, mMemberKey{ev.Org, ev.Email}, ev)
		case KindRolePut, KindRoleDelete:
			keepLatest(t.role, mRoleKey{ev.Org, ev.Name}, ev)
		case KindSystemPut:
			keepLatest(t.sysPut, ev.System, ev)
		case KindSystemDelete:
			t.sysDel[ev.System] = true
		case KindOwnerSet:
			keepLatest(t.owner, ev.System, ev)
		case KindGrantPut, KindGrantDelete:
			keepLatest(t.grant, mGrantKey{ev.System, ev.Grantee}, ev)
		case KindGatewayPut, KindGatewayDelete, KindGatewayRekey:
			keepLatest(t.gateway, ev.Gateway, ev)
		case KindTokenPut:
			keepLatest(t.tokenPut, ev.Token, ev)
		case KindTokenMeta:
			keepLatest(t.tokenMeta, ev.Token, ev)
		case KindSystemCapacity:
			keepLatest(t.capacity, ev.System, ev)
		case KindTokenDelete:
			t.tokenDel[ev.Token] = true
		case KindPasswordSet:
			keepLatest(t.password, ev.Account, ev)
		case KindCodeSet:
			keepLatest(t.code, ev.Account, ev)
		case KindAccountName:
			keepLatest(t.name, ev.Account, ev)
		}
	}
	for id := range t.reg {
		t.activeAcc[id] = t.holder(t.reg[id].Email) == id && t.verified[id].Verified
	}
	return t
}

// holder: of the accounts registered with the e-mail, the verified one,
// then the earliest registration.
func (t *truth) holder(email string) AccountID {
	var best AccountID
	for id, r := range t.reg {
		if r.Email != email {
			continue
		}
		if best == 0 {
			best = id
			continue
		}
		bv, v := t.verified[best].Verified, t.verified[id].Verified
		if v && !bv || v == bv && later(t.reg[best], r) || v == bv && t.reg[best].Stamp == r.Stamp && id < best {
			best = id
		}
	}
	return best
}

func (t *truth) live(sys SystemID) bool {
	_, put := t.sysPut[sys]
	return put && !t.sysDel[sys]
}

func (t *truth) grantRole(sys SystemID, p Principal) Role {
	g, ok := t.grant[mGrantKey{sys, p}]
	if !ok || g.Kind != KindGrantPut || (g.Expires != 0 && g.Expires <= t.asOf) {
		return RoleNone
	}
	return g.Role
}

// memberPerms is what a member keeps of its org's permissions.
func (t *truth) memberPerms(org OrgID, email string) (Perm, bool) {
	m, ok := t.member[mMemberKey{org, email}]
	if !ok || m.Kind != KindMemberPut {
		return 0, false
	}
	if m.OrgRole == OrgAdmin {
		return AllPerms, true
	}
	r, ok := t.role[mRoleKey{org, m.OrgRole}]
	if !ok || r.Kind != KindRolePut {
		return 0, true
	}
	return r.Perms, true
}

func (t *truth) perms(acct AccountID, sys SystemID) Perm {
	if !t.activeAcc[acct] || !t.live(sys) {
		return 0
	}
	if t.support[acct].Support {
		return SystemPerms
	}
	email := t.reg[acct].Email
	var p Perm
	if o, ok := t.owner[sys]; ok && o.Email == email {
		p |= RoleOwner.Perms()
	}
	p |= t.grantRole(sys, EmailPrincipal(email)).Perms()
	for k := range t.member {
		if k.email != email {
			continue
		}
		if mp, ok := t.memberPerms(k.org, email); ok {
			p |= t.grantRole(sys, OrgPrincipal(k.org)).Perms() & mp
		}
	}
	return p
}

func (t *truth) canInOrg(acct AccountID, p Perm, org OrgID) bool {
	if !t.activeAcc[acct] || p == 0 || !MemberPerms.Has(p) {
		return false
	}
	if t.support[acct].Support {
		return true
	}
	mp, ok := t.memberPerms(org, t.reg[acct].Email)
	return ok && mp.Has(p)
}

func (t *truth) emails(sys SystemID) []string {
	if !t.live(sys) {
		return nil
	}
	var out []string
	if o, ok := t.owner[sys]; ok {
		out = append(out, o.Email)
	}
	for k := range t.grant {
		if k.sys == sys && !k.p.IsOrg() && t.grantRole(sys, k.p) != RoleNone {
			out = append(out, k.p.Email)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// gateways lists the gateways of a live system whose latest event is a put
// naming it, by serial and id.
func (t *truth) gateways(sys SystemID) []Gateway {
	if !t.live(sys) {
		return nil
	}
	var out []Gateway
	for id, ev := range t.gateway {
		if ev.Kind != KindGatewayDelete && ev.System == sys {
			out = append(out, Gateway{ID: id, System: sys, Serial: ev.Serial})
		}
	}
	slices.SortFunc(out, func(a, b Gateway) int {
		if c := strings.Compare(a.Serial, b.Serial); c != 0 {
			return c
		}
		return int(a.ID) - int(b.ID)
	})
	return out
}

func (t *truth) gatewayOf(id GatewayID) (Gateway, [32]byte, bool) {
	ev, ok := t.gateway[id]
	if !ok || ev.Kind == KindGatewayDelete || !t.live(ev.System) {
		return Gateway{}, [32]byte{}, false
	}
	return Gateway{ID: id, System: ev.System, Serial: ev.Serial}, ev.Hash, true
}

// acceptsKey: the gateway's current key, or after a rotation its previous
// one until the grace ends.
func (t *truth) acceptsKey(id GatewayID, hash [32]byte) bool {
	_, h, ok := t.gatewayOf(id)
	if !ok {
		return false
	}
	ev := t.gateway[id]
	return h == hash || ev.Kind == KindGatewayRekey && ev.PrevHash == hash && t.asOf < ev.Expires
}

// token: a put, no revocation at all, a registered account, and not
// expired — by its expiry register, else DefaultTokenTTL after the put.
func (t *truth) token(id string) (AccountID, [32]byte, bool) {
	ev, ok := t.tokenPut[id]
	if _, reg := t.reg[ev.Account]; !ok || !reg || t.tokenDel[id] {
		return 0, [32]byte{}, false
	}
	exp := ev.Stamp.Time().Add(DefaultTokenTTL).UnixMilli()
	if m, ok := t.tokenMeta[id]; ok {
		exp = m.Expires
	}
	if exp <= t.asOf {
		return 0, [32]byte{}, false
	}
	return ev.Account, ev.Hash, true
}

// mayGrant is DESIGN §4's answer, by brute force, to whether actor may
// make op: see the rules' package doc and its no-escalation paragraph.
func (t *truth) mayGrant(actor AccountID, op GrantRole) bool {
	if !t.activeAcc[actor] || !t.live(op.System) {
		return false
	}
	have := t.perms(actor, op.System)
	if !have.Has(PermView) || op.Role < RoleViewer || op.Role > RoleAdmin {
		return false
	}
	to := op.To
	to.Email = NormalizeEmail(to.Email)
	if to.IsOrg() {
		if _, ok := t.orgName[to.Org]; !ok {
			return false
		}
	} else if o, ok := t.owner[op.System]; ok && o.Email == to.Email {
		return false // the owner's grant moves only by transfer
	}
	if exp := op.ExpiresAt; !exp.IsZero() && (exp.UnixMilli() <= t.asOf || exp.UTC().Year() > 9999) {
		return false
	}
	needs := func(r Role) bool {
		switch r {
		case RoleViewer, RoleData:
			return have.Has(PermShare) || have.Has(PermManageUsers)
		case RoleUser, RoleInstaller:
			return have.Has(PermManageUsers)
		}
		return have.Has(PermAdmin)
	}
	if !needs(op.Role) {
		return false
	}
	if old := t.grantRole(op.System, to); old != RoleNone && !needs(old) {
		return false // replacing a grant is revoking it too
	}
	if t.support[actor].Support {
		return true
	}
	email := t.reg[actor].Email
	if !have.Has(PermAdmin) && op.Role.Perms()&^have != 0 {
		return false // no escalation
	}
	if !to.IsOrg() && to.Email == email {
		return false // nobody grants itself
	}
	if to.IsOrg() && !have.Has(PermAdmin) {
		if m, ok := t.member[mMemberKey{to.Org, email}]; ok && m.Kind == KindMemberPut {
			return false // nor its own organization
		}
	}
	return true
}

func (t *truth) members(org OrgID) []string {
	var out []string
	for k, m := range t.member {
		if k.org == org && m.Kind == KindMemberPut {
			out = append(out, k.email+"="+m.OrgRole)
		}
	}
	slices.Sort(out)
	return out
}

// ---------------------------------------------------------------------------
// The universe the random operations draw from: small, so that operations
// collide on the same registers all the time.

const (
	uAccounts = 10
	uEmails   = 12
	uOrgs     = 3
	uSystems  = 12
	uRoles    = 3
	uGateways = 8
	uSerials  = 4
	uTokens   = 5
	uHashes   = 3
)

func uEmail(i int) string  { return fmt.Sprintf("u%d@x.test", i) }
func uRole(i int) string   { return fmt.Sprintf("r%d", i) }
func uSerial(i int) string { return fmt.Sprintf("S:%d", i) }
func uToken(i int) string  { return fmt.Sprintf("t%d", i) }

// uHash returns one of a few non-zero hashes, so that keys, token secrets
// and codes collide and a code sent matches the pending one now and then.
func uHash(i int) [32]byte { return [32]byte{0: byte(1 + i%uHashes)} }

// keyHash is the hash of the gateway key secret "k<i>", so that the model
// can present keys to AuthenticateGateway.
func keyHash(i int) [32]byte { return sha256.Sum256([]byte(fmt.Sprintf("k%d", i%uHashes))) }

var checkPerms = func() []Perm {
	var ps []Perm
	for b := Perm(1); b <= AllPerms; b <<= 1 {
		ps = append(ps, b)
	}
	return append(ps, PermView|PermData, PermView|PermShare, PermData|PermFirmware, PermView|PermCreatePlant)
}()

// check compares every bitmap, permission check and lookup of the snapshot
// with the brute-force evaluation.
func check(t *testing.T, s *Snapshot, tr *truth, step int) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("step %d: "+format, append([]any{step}, args...)...)
	}
	// Listings answers what System, Installers and Org do, one by one.
	sysIDs := make([]SystemID, uSystems+1)
	for i := range sysIDs {
		sysIDs[i] = SystemID(i)
	}
	ls := make([]Listing, len(sysIDs))
	s.Listings(sysIDs, ls)
	for _, id := range sysIDs {
		sys, ok := s.System(id)
		var w uint32
		if c, has := tr.capacity[id]; has && tr.live(id) {
			w = c.Capacity
		}
		if ok && sys.CapacityW != w {
			fail("System(%d).CapacityW = %d, brute force %d", id, sys.CapacityW, w)
		}
	}
	for i, id := range sysIDs {
		want := Listing{}
		want.System, want.Found = s.System(id)
		if orgs := s.Installers(id); len(orgs) > 0 {
			want.Installer = orgs[0]
			if o, ok := s.Org(orgs[0]); ok {
				want.InstallerName = o.Name
			}
		}
		if ls[i] != want {
			fail("Listings: system %d: %+v, one by one %+v", id, ls[i], want)
		}
	}
	for a := AccountID(1); a <= uAccounts; a++ {
		for _, p := range checkPerms {
			var want []uint32
			for sys := SystemID(0); sys < uSystems; sys++ {
				h := p != 0 && SystemPerms.Has(p) && tr.perms(a, sys).Has(p)
				if h {
					want = append(want, uint32(sys))
				}
				if got := s.Can(a, p, sys); got != h {
					fail("Can(%d, %s, %d) = %v, brute force %v", a, p, sys, got, h)
				}
			}
			if got := s.Systems(a, p).ToArray(); !slices.Equal(got, want) && (len(got)+len(want) > 0) {
				fail("Systems(%d, %s) = %v, brute force %v", a, p, got, want)
			}
			if got := roaring.FastOr(s.SystemsParts(a, p)...).ToArray(); !slices.Equal(got, want) && (len(got)+len(want) > 0) {
				fail("the union of SystemsParts(%d, %s) = %v, brute force %v", a, p, got, want)
			}
		}
		for sys := SystemID(0); sys < uSystems; sys++ {
			if got, want := s.Perms(a, sys), tr.perms(a, sys); got != want {
				fail("Perms(%d, %d) = %s, brute force %s", a, sys, got, want)
			}
		}
		for org := OrgID(1); org <= uOrgs; org++ {
			for _, p := range []Perm{PermView, PermCreatePlant, PermFirmware | PermView} {
				if got, want := s.CanInOrg(a, p, org), tr.canInOrg(a, p, org); got != want {
					fail("CanInOrg(%d, %s, %d) = %v, brute force %v", a, p, org, got, want)
				}
			}
		}
		acc, ok := s.Account(a)
		_, reg := tr.reg[a]
		if ok != reg || ok && (acc.Active != tr.activeAcc[a] || acc.Email != tr.reg[a].Email || acc.Name != tr.name[a].Name) {
			fail("Account(%d) = %+v %v, brute force registered %v active %v name %q", a, acc, ok, reg, tr.activeAcc[a], tr.name[a].Name)
		}
		pw, ok := s.PasswordHash(a)
		wpw := tr.password[a].PasswordHash
		if !reg {
			wpw = "" // the credentials of an account not registered are not found
		}
		if wok := wpw != ""; ok != wok || string(pw) != wpw {
			fail("PasswordHash(%d) = %q %v, brute force %q %v", a, pw, ok, wpw, wok)
		}
		code, exp, ok := s.VerificationCode(a)
		wc := tr.code[a]
		if wok := reg && wc.Hash != [32]byte{}; ok != wok || ok && (code != wc.Hash || exp != wc.Expires) {
			fail("VerificationCode(%d) = %x %d %v, brute force %x %d %v", a, code, exp, ok, wc.Hash, wc.Expires, wok)
		}
	}
	for i := range 4 * uTokens {
		a, h, ok := s.Token(uToken(i))
		wa, wh, wok := tr.token(uToken(i))
		if a != wa || h != wh || ok != wok {
			fail("Token(%s) = %d %x %v, brute force %d %x %v", uToken(i), a, h, ok, wa, wh, wok)
		}
	}
	ids := map[GatewayID]bool{}
	for id := range GatewayID(uGateways + 2) {
		ids[id] = true
	}
	for id := range tr.gateway {
		ids[id] = true
	}
	for id := range ids {
		g, ok := s.Gateway(id)
		h, hok := s.GatewayKeyHash(id)
		wg, wh, wok := tr.gatewayOf(id)
		if g != wg || ok != wok || h != wh || hok != wok {
			fail("Gateway(%d) = %+v %v key %x %v, brute force %+v %v key %x", id, g, ok, h, hok, wg, wok, wh)
		}
	}
	for id := range ids {
		for h := range uHashes {
			key := fmt.Sprintf("fsk_%d_k%d", id, h)
			_, _, ok := s.AuthenticateGateway([]byte(key))
			if want := tr.acceptsKey(id, keyHash(h)); ok != want {
				fail("AuthenticateGateway(%s) = %v, brute force %v", key, ok, want)
			}
		}
	}
	for sys := SystemID(0); sys < uSystems; sys++ {
		want := tr.gateways(sys)
		if got := s.Gateways(sys); !slices.Equal(got, want) {
			fail("Gateways(%d) = %+v, brute force %+v", sys, got, want)
		}
		for i := range uSerials {
			g, ok := s.GatewayBySerial(sys, strings.ToLower(uSerial(i)))
			j := slices.IndexFunc(want, func(g Gateway) bool { return g.Serial == uSerial(i) })
			if ok != (j >= 0) || ok && g != want[j] {
				fail("GatewayBySerial(%d, %s) = %+v %v, brute force %+v", sys, uSerial(i), g, ok, want)
			}
		}
	}
	for sys := SystemID(0); sys < uSystems; sys++ {
		if got, want := s.Emails(sys), tr.emails(sys); !slices.Equal(got, want) {
			fail("Emails(%d) = %v, brute force %v", sys, got, want)
		}
		if got, want := s.AllSystems().Contains(uint32(sys)), tr.live(sys); got != want {
			fail("system %d live = %v, brute force %v", sys, got, want)
		}
		o, ok := s.Owner(sys)
		wo, wok := tr.owner[sys]
		if wok = wok && tr.live(sys); ok != wok || ok && o != wo.Email {
			fail("Owner(%d) = %q %v, brute force %q %v", sys, o, ok, wo.Email, wok)
		}
	}
	for org := OrgID(1); org <= uOrgs; org++ {
		var got []string
		for _, m := range s.Members(org) {
			got = append(got, m.Email+"="+m.Role)
		}
		if want := tr.members(org); !slices.Equal(got, want) {
			fail("Members(%d) = %v, brute force %v", org, got, want)
		}
	}
}

// ---------------------------------------------------------------------------
// Random events.

type gen struct {
	r     *rand.Rand
	clock *HLC
	seen  map[Stamp]bool
	first uint64
	now   func() time.Time
}

// stamp returns a fresh stamp, or now and then an old one — an event from a
// node that was slow to deliver it.
func (g *gen) stamp() Stamp {
	for {
		s := g.clock.Now()
		if g.first == 0 {
			g.first = s.HLC
		}
		s.Node = uint16(g.r.IntN(3))
		if g.r.IntN(6) == 0 {
			s.HLC = g.first + g.r.Uint64N(s.HLC-g.first+1)
		}
		if !g.seen[s] {
			g.seen[s] = true
			return s
		}
	}
}

func (g *gen) principal() Principal {
	if g.r.IntN(3) == 0 {
		return OrgPrincipal(OrgID(1 + g.r.IntN(uOrgs)))
	}
	return EmailPrincipal(uEmail(g.r.IntN(uEmails)))
}

func (g *gen) event() Event {
	r := g.r
	ev := Event{Actor: AccountID(r.IntN(uAccounts + 1))}
	acct := AccountID(1 + r.IntN(uAccounts))
	org := OrgID(1 + r.IntN(uOrgs))
	sys := SystemID(r.IntN(uSystems))
	switch n := r.IntN(136); {
	case n < 5:
		ev.Kind, ev.Account, ev.Email = KindAccountRegister, acct, uEmail(r.IntN(uEmails))
	case n < 13:
		ev.Kind, ev.Account, ev.Verified = KindAccountVerify, acct, r.IntN(5) > 0
	case n < 15:
		ev.Kind, ev.Account, ev.Support = KindAccountSupport, acct, r.IntN(4) == 0
	case n < 18:
		ev.Kind, ev.Org, ev.Name = KindOrgPut, org, "org"
	case n < 30:
		ev.Kind, ev.Org, ev.Email, ev.OrgRole = KindMemberPut, org, uEmail(r.IntN(uEmails)), uRole(r.IntN(uRoles))
		if r.IntN(4) == 0 {
			ev.OrgRole = OrgAdmin
		}
	case n < 35:
		ev.Kind, ev.Org, ev.Email = KindMemberDelete, org, uEmail(r.IntN(uEmails))
	case n < 43:
		ev.Kind, ev.Org, ev.Name, ev.Perms = KindRolePut, org, uRole(r.IntN(uRoles)), Perm(r.IntN(int(MemberPerms)+1))&MemberPerms
	case n < 47:
		ev.Kind, ev.Org, ev.Name = KindRoleDelete, org, uRole(r.IntN(uRoles))
	case n < 53:
		ev.Kind, ev.System, ev.GUID, ev.Name, ev.Org = KindSystemPut, sys, fmt.Sprintf("G%d", r.IntN(uSystems+2)), "site", org
	case n < 54:
		ev.Kind, ev.System = KindSystemDelete, sys
	case n < 60:
		ev.Kind, ev.System, ev.Email = KindOwnerSet, sys, uEmail(r.IntN(uEmails))
	case n < 90:
		ev.Kind, ev.System, ev.Grantee, ev.Role = KindGrantPut, sys, g.principal(), Role(1+r.IntN(int(RoleAdmin)))
		if r.IntN(3) == 0 {
			ev.Expires = g.now().Add(time.Duration(r.IntN(8000)-2000) * time.Millisecond).UnixMilli()
		}
	case n < 100:
		ev.Kind, ev.System, ev.Grantee = KindGrantDelete, sys, g.principal()
	case n < 108:
		ev.Kind, ev.System, ev.Gateway, ev.Serial, ev.Hash = KindGatewayPut, sys, GatewayID(1+r.IntN(uGateways)), uSerial(r.IntN(uSerials)), keyHash(r.IntN(uHashes))
	case n < 111:
		ev.Kind, ev.System, ev.Gateway = KindGatewayDelete, sys, GatewayID(1+r.IntN(uGateways))
	case n < 115:
		ev.Kind, ev.Account, ev.Token, ev.Hash = KindTokenPut, acct, uToken(r.IntN(uTokens)), uHash(r.IntN(uHashes))
	case n < 117:
		ev.Kind, ev.Token = KindTokenDelete, uToken(r.IntN(uTokens))
	case n < 119:
		pw := make([]byte, r.IntN(4)) // empty: no password
		for i := range pw {
			pw[i] = []byte{0, 'a', 0xff}[r.IntN(3)]
		}
		ev.Kind, ev.Account, ev.PasswordHash = KindPasswordSet, acct, string(pw)
	case n < 122:
		ev.Kind, ev.Account = KindCodeSet, acct
		if r.IntN(4) > 0 {
			ev.Hash, ev.Expires = uHash(r.IntN(uHashes)), g.now().Add(time.Duration(r.IntN(8000)-2000)*time.Millisecond).UnixMilli()
		}
	case n < 125:
		ev.Kind, ev.Account, ev.Name = KindAccountName, acct, []string{"", "Ana", "Bo"}[r.IntN(3)]
	case n < 129:
		ev.Kind, ev.Token, ev.Name = KindTokenMeta, uToken(r.IntN(uTokens)), []string{"", "curl/8"}[r.IntN(2)]
		ev.Expires = g.now().Add(time.Duration(r.IntN(8000)-2000) * time.Millisecond).UnixMilli()
		if ev.Expires <= 0 {
			ev.Expires = 1
		}
	case n < 133:
		ev.Kind, ev.System, ev.Capacity = KindSystemCapacity, sys, uint32(r.IntN(3)*5000)
	default:
		ev.Kind, ev.System, ev.Gateway, ev.Serial = KindGatewayRekey, sys, GatewayID(1+r.IntN(uGateways)), uSerial(r.IntN(uSerials))
		ev.Hash, ev.PrevHash = keyHash(r.IntN(uHashes)), keyHash(r.IntN(uHashes))
		ev.Expires = g.now().Add(time.Duration(r.IntN(8000)-2000) * time.Millisecond).UnixMilli()
	}
	ev.Stamp = g.stamp()
	return ev
}

// actor picks who asks for op: often an account with some standing on the
// system or org concerned (so that many operations pass authorization and
// those that fail, fail for subtler reasons), otherwise anyone.
func (g *gen) actor(s *Snapshot, op Op) AccountID {
	var cands []AccountID
	for a := AccountID(1); a <= uAccounts; a++ {
		var ok bool
		switch op := op.(type) {
		case GrantRole:
			ok = s.Can(a, PermView, op.System)
		case RevokeGrant:
			ok = s.Can(a, PermView, op.System)
		case TransferOwnership:
			ok = s.Can(a, PermOwner, op.System)
		case DeleteSystem:
			ok = s.Can(a, PermAdmin, op.System)
		case Commission:
			ok = s.CanInOrg(a, PermCreatePlant, op.Org)
		case PutMember:
			ok = s.IsOrgAdmin(a, op.Org)
		case RemoveMember:
			ok = s.IsOrgAdmin(a, op.Org)
		case DeleteMemberRole:
			ok = s.IsOrgAdmin(a, op.Org)
		case AddGateway:
			ok = s.Can(a, PermAddGateway, op.System)
		case RemoveGateway:
			ok = s.Can(a, PermAddGateway, op.System)
		case IssueToken:
			ok = a == op.Account
		case SetVerificationCode:
			ok = a == op.Account
		case VerifyAccount:
			ok = a == op.Account
		case RevokeToken:
			owner, _, _ := s.Token(op.ID)
			ok = a == owner
		case TouchToken:
			owner, _, _ := s.Token(op.ID)
			ok = a == owner
		case RevokeSessions:
			ok = a == op.Account
		case RotateGatewayKey:
			ok = s.Can(a, PermAddGateway, op.System)
		}
		if ok {
			cands = append(cands, a)
		}
	}
	switch op.(type) {
	case IssueToken, SetVerificationCode, RevokeToken, TouchToken, RevokeSessions:
		if g.r.IntN(3) == 0 {
			return Platform
		}
	}
	if len(cands) == 0 || g.r.IntN(4) == 0 {
		return AccountID(1 + g.r.IntN(uAccounts))
	}
	return cands[g.r.IntN(len(cands))]
}

// op returns a random user operation. The operations on gateways and
// credentials mostly aim at what s holds — a live system, an account with a
// pending code — so that they pass as often as they fail.
func (g *gen) op(s *Snapshot) Op {
	r := g.r
	sys := SystemID(r.IntN(uSystems))
	acct := AccountID(1 + r.IntN(uAccounts))
	k := r.IntN(17)
	if k == 8 || k == 9 || k == 16 {
		var where []SystemID // where someone may add a gateway
		for a := AccountID(1); a <= uAccounts; a++ {
			s.Systems(a, PermAddGateway).Iterate(func(x uint32) bool {
				where = append(where, SystemID(x))
				return true
			})
		}
		if len(where) > 0 && r.IntN(4) > 0 {
			sys = where[r.IntN(len(where))]
		}
	}
	switch k {
	case 8:
		var id GatewayID // mostly allocated by the op
		if r.IntN(3) == 0 {
			id = GatewayID(1 + r.IntN(uGateways))
		}
		return AddGateway{Gateway: id, System: sys, Serial: strings.ToLower(uSerial(r.IntN(uSerials))), KeyHash: keyHash(r.IntN(uHashes))}
	case 9:
		serial := uSerial(r.IntN(uSerials))
		if gws := s.Gateways(sys); len(gws) > 0 && r.IntN(2) == 0 {
			serial = gws[r.IntN(len(gws))].Serial
		}
		return RemoveGateway{System: sys, Serial: serial}
	case 10:
		// Token ids are never reused: draw from more than the events use.
		op := IssueToken{Account: acct, ID: uToken(r.IntN(4 * uTokens)), Hash: uHash(r.IntN(uHashes)), Agent: "test/1"}
		if r.IntN(2) == 0 {
			op.ExpiresAt = g.now().Add(time.Duration(r.IntN(6000)-1000) * time.Millisecond)
		}
		return op
	case 14:
		return TouchToken{ID: uToken(r.IntN(4 * uTokens)), ExpiresAt: g.now().Add(time.Duration(r.IntN(6000)-1000) * time.Millisecond)}
	case 15:
		op := RevokeSessions{Account: acct}
		if r.IntN(2) == 0 {
			op.Keep = uToken(r.IntN(4 * uTokens))
		}
		return op
	case 16:
		serial := uSerial(r.IntN(uSerials))
		if gws := s.Gateways(sys); len(gws) > 0 && r.IntN(4) > 0 {
			serial = gws[r.IntN(len(gws))].Serial
		}
		return RotateGatewayKey{System: sys, Serial: serial, KeyHash: keyHash(r.IntN(uHashes)), Grace: g.now().Add(time.Duration(r.IntN(6000)-1000) * time.Millisecond)}
	case 11:
		return RevokeToken{ID: uToken(r.IntN(4 * uTokens))}
	case 12:
		return SetVerificationCode{Account: acct, Hash: uHash(r.IntN(uHashes)), ExpiresAt: g.now().Add(time.Duration(r.IntN(5000)) * time.Millisecond)}
	case 13:
		code := uHash(r.IntN(uHashes))
		var pending []AccountID
		for a := AccountID(1); a <= uAccounts; a++ {
			if _, _, ok := s.VerificationCode(a); ok {
				pending = append(pending, a)
			}
		}
		if len(pending) > 0 && r.IntN(2) == 0 {
			acct = pending[r.IntN(len(pending))]
			if r.IntN(3) > 0 {
				code, _, _ = s.VerificationCode(acct)
			}
		}
		return VerifyAccount{Account: acct, Code: code}
	case 0:
		return GrantRole{System: sys, To: g.principal(), Role: Role(1 + r.IntN(int(RoleAdmin)))}
	case 1:
		return RevokeGrant{System: sys, From: g.principal()}
	case 2:
		return TransferOwnership{System: sys, To: uEmail(r.IntN(uEmails))}
	case 3:
		return Commission{System: sys, GUID: fmt.Sprintf("C%d", r.IntN(50)), Org: OrgID(1 + r.IntN(uOrgs)), OwnerEmail: uEmail(r.IntN(uEmails))}
	case 4:
		return PutMember{Org: OrgID(1 + r.IntN(uOrgs)), Email: uEmail(r.IntN(uEmails)), Role: uRole(r.IntN(uRoles))}
	case 5:
		return DeleteMemberRole{Org: OrgID(1 + r.IntN(uOrgs)), Name: uRole(r.IntN(uRoles))}
	case 6:
		return RemoveMember{Org: OrgID(1 + r.IntN(uOrgs)), Email: uEmail(r.IntN(uEmails))}
	default:
		return DeleteSystem{System: sys}
	}
}

// TestModel applies thousands of random events and operations — grants,
// revokes, expiries on a fake clock, memberships, member-role edits and
// deletions, invitations, verifications, transfers, installer changes,
// system deletions, late and out-of-order deliveries — and after each one
// compares every account's bitmap for every permission, every Can and
// Perms, and the lookups with the brute-force evaluation.
func TestModel(t *testing.T) {
	t.Run("small sets", testModel)
	t.Run("large sets", func(t *testing.T) {
		// Thresholds so low that principals switch between the slice and the
		// bitmap forms of their sets all the time.
		defer setThresholds(3, 1)()
		testModel(t)
	})
}

func setThresholds(hi, lo int) (restore func()) {
	oldHi, oldLo := smallMax, smallMin
	smallMax, smallMin = hi, lo
	return func() { smallMax, smallMin = oldHi, oldLo }
}

func testModel(t *testing.T) {
	seed := testSeed(t)
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	now := t0
	clockNow := func() time.Time { return now }
	x := New(Options{Node: 7, Now: clockNow})
	g := &gen{r: r, clock: NewHLC(0, clockNow), seen: map[Stamp]bool{}, now: clockNow}
	m := &model{asOf: now.UnixMilli()}
	accepted := 0
	type keptSnap struct {
		s    *Snapshot
		dump string
		step int
	}
	var kept []keptSnap
	rejects := map[string]int{}
	grants := [2]int{}
	for step := range *flagOps {
		switch n := r.IntN(100); {
		case n < 6: // time passes
			now = now.Add(time.Duration(r.IntN(3000)) * time.Millisecond)
			x.Expire(now)
			m.asOf = now.UnixMilli()
		case n < 18: // a user operation, authorized or refused
			var evs []Event
			op := g.op(x.Snapshot())
			actor := g.actor(x.Snapshot(), op)
			// Grants are checked against the rules' oracle, self-grants and
			// grants to the actor's own organizations among them.
			var oracle *bool
			if gr, ok := op.(GrantRole); ok {
				if acc, ok := x.Snapshot().Account(actor); ok && r.IntN(4) == 0 {
					gr.To = EmailPrincipal(acc.Email)
				}
				if r.IntN(5) == 0 {
					gr.ExpiresAt = now.Add(time.Duration(r.IntN(4000)-2000) * time.Millisecond)
				}
				op = gr
				want := m.eval().mayGrant(actor, gr)
				oracle = &want
			}
			_, err := x.Do(actor, op, func(e []Event) error {
				evs = append(evs, e...)
				return nil
			})
			if oracle != nil && *oracle != (err == nil) {
				t.Fatalf("step %d: %+v by %d: %v, the rules say allowed=%v", step, op, actor, err, *oracle)
			}
			if err != nil && testing.Verbose() {
				rejects[fmt.Sprintf("%T: %v", op, sentinel(err))]++
			}
			if err == nil && testing.Verbose() {
				rejects[fmt.Sprintf("%T: accepted", op)]++
			}
			if err == nil {
				accepted++
				m.events = append(m.events, evs...)
				for _, e := range evs {
					g.seen[e.Stamp] = true
				}
			}
		default: // one or a few events, as replication delivers them
			evs := []Event{g.event()}
			for r.IntN(4) == 0 {
				evs = append(evs, g.event())
			}
			if _, err := x.Apply(evs...); err != nil {
				t.Fatalf("step %d: apply %+v: %v", step, evs, err)
			}
			m.events = append(m.events, evs...)
		}
		check(t, x.Snapshot(), m.eval(), step)
		if step%100 == 0 {
			n := checkGrants(t, x.Snapshot(), m.eval(), now, step)
			grants[0], grants[1] = grants[0]+n[0], grants[1]+n[1]
		}
		if step%50 == 0 {
			kept = append(kept, keptSnap{x.Snapshot(), dump(x.Snapshot()), step})
		}
	}
	// Snapshots are immutable: what every one of them answered when it was
	// current, it still answers after all the changes since.
	for _, k := range kept {
		if d := dump(k.s); d != k.dump {
			t.Fatalf("snapshot of step %d changed after publication:\n%s", k.step, firstDiff(k.dump, d))
		}
	}
	t.Logf("%d steps, %d events, %d operations accepted; outcomes: %v", *flagOps, len(m.events), accepted, rejects)
	t.Logf("grants checked against the rules: %d allowed, %d refused", grants[0], grants[1])
	if grants[0] == 0 || grants[1] == 0 {
		t.Fatalf("the grant checks never saw both outcomes: %v", grants)
	}
}

// checkGrants asks, of every account, to grant every role on every system
// to every principal — its own e-mail and organizations included, with no
// expiry, a past one and a future one — and requires Authorize to answer
// what the rules' oracle says (DESIGN §4, no escalation). It returns how
// many were allowed and refused.
func checkGrants(t *testing.T, s *Snapshot, tr *truth, now time.Time, step int) [2]int {
	t.Helper()
	var n [2]int
	var to []Principal
	for i := range uEmails {
		to = append(to, EmailPrincipal(uEmail(i)))
	}
	for o := range OrgID(uOrgs) {
		to = append(to, OrgPrincipal(o+1))
	}
	for a := AccountID(1); a <= uAccounts; a++ {
		for sys := SystemID(0); sys < uSystems; sys++ {
			for r := RoleViewer; r <= RoleAdmin; r++ {
				for i, p := range to {
					op := GrantRole{System: sys, To: p, Role: r}
					switch i % 3 {
					case 1:
						op.ExpiresAt = now.Add(time.Hour)
					case 2:
						op.ExpiresAt = now.Add(-time.Second)
					}
					got := s.Authorize(a, op) == nil
					if want := tr.mayGrant(a, op); got != want {
						t.Fatalf("step %d: %+v by %d: allowed=%v, the rules say %v (%v)", step, op, a, got, want, s.Authorize(a, op))
					}
					if got {
						n[0]++
					} else {
						n[1]++
					}
				}
			}
		}
	}
	return n
}

// TestOrderIndependence applies one random set of events in several orders
// and batchings, with duplicates, and requires identical states — equal to
// the brute-force evaluation, and equal to each other in every lookup.
func TestOrderIndependence(t *testing.T) {
	t.Run("small sets", testOrderIndependence)
	t.Run("large sets", func(t *testing.T) {
		defer setThresholds(3, 1)()
		testOrderIndependence(t)
	})
}

func testOrderIndependence(t *testing.T) {
	seed := testSeed(t)
	r := rand.New(rand.NewPCG(seed, 0x0de7))
	clockNow := func() time.Time { return t0 }
	g := &gen{r: r, clock: NewHLC(0, clockNow), seen: map[Stamp]bool{}, now: clockNow}
	n := max(*flagOps/2, 100)
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = g.event()
	}
	end := t0.Add(3 * time.Second) // some grants expire before, some after
	m := &model{events: evs, asOf: end.UnixMilli()}
	tr := m.eval()

	orders := map[string]func() [][]Event{
		"in order, one by one": func() [][]Event { return oneByOne(evs) },
		"reversed": func() [][]Event {
			rev := slices.Clone(evs)
			slices.Reverse(rev)
			return oneByOne(rev)
		},
		"shuffled": func() [][]Event {
			sh := slices.Clone(evs)
			r.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
			return oneByOne(sh)
		},
		"shuffled with duplicates, in random batches": func() [][]Event {
			sh := append(slices.Clone(evs), evs[:n/3]...)
			r.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
			var out [][]Event
			for len(sh) > 0 {
				k := min(len(sh), 1+r.IntN(40))
				out = append(out, sh[:k])
				sh = sh[k:]
			}
			return out
		},
		"all in one batch": func() [][]Event { return [][]Event{evs} },
	}
	// Replay changes records in place when the index is fresh (and compacts
	// them after), but must copy them when it is not.
	replay := func(x *Index, batches [][]Event) {
		seq := func(yield func([]Event, error) bool) {
			for _, b := range batches {
				if !yield(b, nil) {
					return
				}
			}
		}
		if _, err := x.Replay(seq); err != nil {
			t.Fatal(err)
		}
	}
	var ref string
	var refName string
	for _, name := range slices.Sorted(mapKeys(orders)) {
		x := New(Options{Now: clockNow})
		for _, batch := range orders[name]() {
			if _, err := x.Apply(batch...); err != nil {
				t.Fatal(err)
			}
		}
		x.Expire(end)
		check(t, x.Snapshot(), tr, -1)
		d := dump(x.Snapshot())
		if ref == "" {
			ref, refName = d, name
		} else if d != ref {
			t.Fatalf("%q and %q disagree:\n%s", refName, name, firstDiff(ref, d))
		}
	}
	for _, name := range []string{"replayed into a fresh index", "replayed after some applied"} {
		x := New(Options{Now: clockNow})
		sh := slices.Clone(evs)
		r.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
		var before *Snapshot
		var beforeDump string
		if name == "replayed after some applied" {
			if _, err := x.Apply(sh[:n/4]...); err != nil {
				t.Fatal(err)
			}
			before, beforeDump = x.Snapshot(), dump(x.Snapshot())
			sh = sh[n/4:]
		}
		var batches [][]Event
		for len(sh) > 0 {
			k := min(len(sh), 1+r.IntN(100))
			batches = append(batches, sh[:k])
			sh = sh[k:]
		}
		replay(x, batches)
		if before != nil && dump(before) != beforeDump {
			t.Fatalf("%s: replay changed a published snapshot", name)
		}
		x.Expire(end)
		check(t, x.Snapshot(), tr, -1)
		d := dump(x.Snapshot())
		if ref == "" {
			ref, refName = d, name
		} else if d != ref {
			t.Fatalf("%q and %q disagree:\n%s", refName, name, firstDiff(ref, d))
		}
	}
}

func sentinel(err error) error {
	for _, s := range []error{ErrInvalid, ErrNotFound, ErrForbidden, ErrUnverified, ErrExists, ErrOwnerGrant, ErrRoleInUse, ErrLastOrgAdmin} {
		if errors.Is(err, s) {
			return s
		}
	}
	return err
}

func oneByOne(evs []Event) [][]Event {
	out := make([][]Event, len(evs))
	for i := range evs {
		out[i] = evs[i : i+1]
	}
	return out
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// dump renders everything a snapshot answers about the universe.
func dump(s *Snapshot) string {
	var b strings.Builder
	for a := AccountID(1); a <= uAccounts; a++ {
		acc, ok := s.Account(a)
		fmt.Fprintf(&b, "account %d %+v %v\n", a, acc, ok)
		for _, p := range checkPerms {
			fmt.Fprintf(&b, "  %s %v\n", p, s.Systems(a, p).ToArray())
		}
		for org := OrgID(1); org <= uOrgs; org++ {
			role, ok := s.OrgRole(a, org)
			fmt.Fprintf(&b, "  org %d %q %v admin=%v\n", org, role, ok, s.IsOrgAdmin(a, org))
		}
	}
	for i := range uEmails {
		acc, ok := s.AccountByEmail(uEmail(i))
		fmt.Fprintf(&b, "e-mail %s %+v %v\n", uEmail(i), acc, ok)
	}
	for sys := SystemID(0); sys < uSystems; sys++ {
		rec, ok := s.System(sys)
		fmt.Fprintf(&b, "system %d %+v %v\n  grants %+v\n  installers %v emails %v\n", sys, rec, ok, s.Grants(sys), s.Installers(sys), s.Emails(sys))
	}
	for i := range uSystems + 2 {
		id, ok := s.SystemByGUID(fmt.Sprintf("G%d", i))
		fmt.Fprintf(&b, "guid G%d %d %v\n", i, id, ok)
	}
	for org := OrgID(1); org <= uOrgs; org++ {
		o, ok := s.Org(org)
		fmt.Fprintf(&b, "org %d %+v %v\n  members %+v\n  roles %+v\n", org, o, ok, s.Members(org), s.MemberRoles(org))
	}
	for sys := SystemID(0); sys < uSystems; sys++ {
		fmt.Fprintf(&b, "gateways of %d %+v\n", sys, s.Gateways(sys))
		for i := range uSerials {
			g, ok := s.GatewayBySerial(sys, uSerial(i))
			fmt.Fprintf(&b, "  serial %s %+v %v\n", uSerial(i), g, ok)
		}
	}
	for id := range GatewayID(uGateways + 4) {
		g, ok := s.Gateway(id)
		h, hok := s.GatewayKeyHash(id)
		fmt.Fprintf(&b, "gateway %d %+v %v key %x %v\n", id, g, ok, h, hok)
	}
	for i := range 4 * uTokens {
		a, h, ok := s.Token(uToken(i))
		fmt.Fprintf(&b, "token %s %d %x %v\n", uToken(i), a, h, ok)
	}
	for a := AccountID(1); a <= uAccounts; a++ {
		pw, pok := s.PasswordHash(a)
		code, exp, cok := s.VerificationCode(a)
		fmt.Fprintf(&b, "credentials %d password %q %v code %x %d %v\n", a, pw, pok, code, exp, cok)
	}
	return b.String()
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n  %s\n  %s", i+1, al[i], bl[i])
		}
	}
	return "lengths differ"
}
