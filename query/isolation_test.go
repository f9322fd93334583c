package query

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/acl"
)

// model is a brute-force statement of DESIGN §4, kept beside the acl index:
// the same events applied to plain maps, and the rules evaluated per
// (account, system) from scratch on every question.
type model struct {
	accounts map[acl.AccountID]*mAccount
	orgs     map[acl.OrgID]*mOrg
	systems  map[acl.SystemID]*mSystem
	support  acl.AccountID
}

type mAccount struct {
	email    string
	verified bool
}

type mOrg struct {
	members map[string]string   // e-mail → org role
	roles   map[string]acl.Perm // member role → permissions
}

type mGrant struct {
	role    acl.Role
	expires time.Time // zero: permanent
}

type mSystem struct {
	name, guid string
	monitored  bool
	owner      string
	emails     map[string]mGrant
	orgs       map[acl.OrgID]mGrant
	serials    []string
	lastSeen   time.Time // zero: never reported
}

// rolePerms is the table of DESIGN §4.
var rolePerms = map[acl.Role]acl.Perm{
	acl.RoleViewer:    acl.PermView,
	acl.RoleData:      acl.PermView | acl.PermData,
	acl.RoleUser:      acl.PermView | acl.PermData | acl.PermShare | acl.PermManageUsers,
	acl.RoleInstaller: acl.PermView | acl.PermData | acl.PermShare | acl.PermManageUsers | acl.PermAddGateway | acl.PermDeleteDevice | acl.PermFirmware,
	acl.RoleAdmin:     acl.PermView | acl.PermData | acl.PermShare | acl.PermManageUsers | acl.PermAddGateway | acl.PermDeleteDevice | acl.PermFirmware | acl.PermAdmin,
}

// perms evaluates the rules for one account on one system at now.
func (m *model) perms(a acl.AccountID, id acl.SystemID, now time.Time) acl.Perm {
	acct, sys := m.accounts[a], m.systems[id]
	if acct == nil || !acct.verified || sys == nil {
		return 0
	}
	if a == m.support {
		return acl.SystemPerms
	}
	counts := func(g mGrant) bool { return g.expires.IsZero() || g.expires.After(now) }
	var p acl.Perm
	if sys.owner == acct.email {
		p |= acl.SystemPerms
	}
	if g, ok := sys.emails[acct.email]; ok && counts(g) {
		p |= rolePerms[g.role]
	}
	for oid, g := range sys.orgs {
		if !counts(g) {
			continue
		}
		role, ok := m.orgs[oid].members[acct.email]
		if !ok {
			continue
		}
		member := acl.AllPerms
		if role != acl.OrgAdmin {
			member = m.orgs[oid].roles[role] // 0 if the role does not exist
		}
		p |= rolePerms[g.role] & member
	}
	return p
}

// matches evaluates a search of a on one system by scanning its strings:
// the e-mails of grantees other than the owner only for a caller who may
// share the system (DESIGN §5).
func (m *model) matches(a acl.AccountID, id acl.SystemID, q string, now time.Time) bool {
	sys := m.systems[id]
	q = fold(strings.TrimSpace(q))
	if q == "" || strings.Contains(fold(sys.name), q) || strings.HasPrefix(fold(sys.guid), q) {
		return true
	}
	keys := slices.Clone(sys.serials)
	if sys.owner != "" {
		keys = append(keys, sys.owner)
	}
	p := m.perms(a, id, now)
	mayShare := p.Has(acl.PermView|acl.PermShare) || p.Has(acl.PermView|acl.PermManageUsers)
	for e, g := range sys.emails {
		if (g.expires.IsZero() || g.expires.After(now)) && (mayShare || e == sys.owner) {
			keys = append(keys, e)
		}
	}
	for _, k := range keys {
		if strings.HasPrefix(fold(k), q) {
			return true
		}
	}
	return false
}

func (m *model) status(id acl.SystemID, now time.Time) string {
	sys := m.systems[id]
	switch {
	case !sys.monitored:
		return "unmonitored"
	case sys.lastSeen.IsZero():
		return "never"
	case now.Sub(sys.lastSeen) <= 15*time.Minute:
		return "online"
	}
	return "offline"
}

// isoRun drives random changes into both the acl index and the model.
type isoRun struct {
	*harness
	m      *model
	rng    *rand.Rand
	emails []string
	orgIDs []acl.OrgID
	nextGW acl.GatewayID
	words  []string
}

func (r *isoRun) liveSystems() []acl.SystemID {
	var out []acl.SystemID
	for id := range r.m.systems {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func (r *isoRun) pick(ids []acl.SystemID) (acl.SystemID, bool) {
	if len(ids) == 0 {
		return 0, false
	}
	return ids[r.rng.IntN(len(ids))], true
}

func (r *isoRun) name() string {
	n := 1 + r.rng.IntN(3)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = r.words[r.rng.IntN(len(r.words))]
	}
	return strings.Join(parts, " ")
}

func (r *isoRun) newSystem() {
	id := r.nextSys
	r.nextSys++
	s := &mSystem{name: r.name(), guid: fmt.Sprintf("%02X%06d", r.rng.IntN(4), id), monitored: r.rng.IntN(6) > 0,
		emails: map[string]mGrant{}, orgs: map[acl.OrgID]mGrant{}}
	org := r.orgIDs[r.rng.IntN(len(r.orgIDs))]
	r.apply(acl.Event{Kind: acl.KindSystemPut, System: id, GUID: s.guid, Name: s.name, Address: "1 Way",
		Timezone: "UTC", Monitored: s.monitored, Org: org})
	r.m.systems[id] = s
	r.grantOrg(id, org, acl.RoleInstaller, time.Time{})
	if r.rng.IntN(4) > 0 {
		r.setOwner(id, r.emails[r.rng.IntN(len(r.emails))])
	}
}

func (r *isoRun) setOwner(id acl.SystemID, email string) {
	r.apply(acl.Event{Kind: acl.KindOwnerSet, System: id, Email: email})
	r.m.systems[id].owner = email
}

func (r *isoRun) grantOrg(id acl.SystemID, org acl.OrgID, role acl.Role, exp time.Time) {
	r.apply(acl.Event{Kind: acl.KindGrantPut, System: id, Grantee: acl.OrgPrincipal(org), Role: role, Expires: expMS(exp)})
	r.m.systems[id].orgs[org] = mGrant{role, exp}
}

func expMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// mutate makes one random change.
func (r *isoRun) mutate() {
	now := r.clock.now()
	ids := r.liveSystems()
	expiry := func() time.Time {
		if r.rng.IntN(3) == 0 {
			return now.Add(time.Duration(1+r.rng.IntN(90)) * time.Minute)
		}
		return time.Time{}
	}
	switch r.rng.IntN(14) {
	case 0, 1:
		r.newSystem()
	case 2:
		if id, ok := r.pick(ids); ok && r.rng.IntN(3) == 0 {
			r.apply(acl.Event{Kind: acl.KindSystemDelete, System: id})
			delete(r.m.systems, id)
		}
	case 3: // rename, or monitored flips
		if id, ok := r.pick(ids); ok {
			s := r.m.systems[id]
			if r.rng.IntN(2) == 0 {
				s.name = r.name()
			} else {
				s.monitored = !s.monitored
			}
			r.apply(acl.Event{Kind: acl.KindSystemPut, System: id, GUID: s.guid, Name: s.name, Address: "1 Way",
				Timezone: "UTC", Monitored: s.monitored, Org: r.orgIDs[0]})
		}
	case 4:
		if id, ok := r.pick(ids); ok {
			r.setOwner(id, r.emails[r.rng.IntN(len(r.emails))])
		}
	case 5, 6: // grant to an e-mail (maybe an invitation) or an org
		if id, ok := r.pick(ids); ok {
			role := acl.Role(1 + r.rng.IntN(int(acl.RoleAdmin)))
			if r.rng.IntN(2) == 0 {
				e := r.emails[r.rng.IntN(len(r.emails))]
				exp := expiry()
				r.apply(acl.Event{Kind: acl.KindGrantPut, System: id, Grantee: acl.EmailPrincipal(e), Role: role, Expires: expMS(exp)})
				r.m.systems[id].emails[e] = mGrant{role, exp}
			} else {
				r.grantOrg(id, r.orgIDs[r.rng.IntN(len(r.orgIDs))], role, expiry())
			}
		}
	case 7: // revoke
		if id, ok := r.pick(ids); ok {
			s := r.m.systems[id]
			if e := r.emails[r.rng.IntN(len(r.emails))]; s.emails[e].role != 0 {
				r.apply(acl.Event{Kind: acl.KindGrantDelete, System: id, Grantee: acl.EmailPrincipal(e)})
				delete(s.emails, e)
			} else if o := r.orgIDs[r.rng.IntN(len(r.orgIDs))]; s.orgs[o].role != 0 {
				r.apply(acl.Event{Kind: acl.KindGrantDelete, System: id, Grantee: acl.OrgPrincipal(o)})
				delete(s.orgs, o)
			}
		}
	case 8: // membership
		o := r.orgIDs[r.rng.IntN(len(r.orgIDs))]
		e := r.emails[r.rng.IntN(len(r.emails))]
		if r.rng.IntN(3) == 0 {
			r.apply(acl.Event{Kind: acl.KindMemberDelete, Org: o, Email: e})
			delete(r.m.orgs[o].members, e)
		} else {
			role := []string{acl.OrgAdmin, "tech", "sales", "ghost", "gone"}[r.rng.IntN(5)]
			r.apply(acl.Event{Kind: acl.KindMemberPut, Org: o, Email: e, OrgRole: role})
			r.m.orgs[o].members[e] = role
		}
	case 9: // member role edit or deletion
		o := r.orgIDs[r.rng.IntN(len(r.orgIDs))]
		name := []string{"tech", "sales", "ghost"}[r.rng.IntN(3)]
		if r.rng.IntN(4) == 0 {
			r.apply(acl.Event{Kind: acl.KindRoleDelete, Org: o, Name: name})
			delete(r.m.orgs[o].roles, name)
		} else {
			p := acl.Perm(r.rng.Uint32()) & (acl.PermView | acl.PermData | acl.PermShare | acl.PermFirmware)
			r.apply(acl.Event{Kind: acl.KindRolePut, Org: o, Name: name, Perms: p})
			r.m.orgs[o].roles[name] = p
		}
	case 10:
		if id, ok := r.pick(ids); ok {
			r.nextGW++
			serial := fmt.Sprintf("%02X:%02X:%04X", r.rng.IntN(3), r.rng.IntN(256), uint32(r.nextGW))
			r.apply(acl.Event{Kind: acl.KindGatewayPut, System: id, Gateway: r.nextGW, Serial: serial, Hash: [32]byte{1}})
			r.m.systems[id].serials = append(r.m.systems[id].serials, serial)
		}
	case 11: // a verification
		for a, acct := range r.m.accounts {
			if !acct.verified && r.rng.IntN(2) == 0 {
				r.apply(acl.Event{Kind: acl.KindAccountVerify, Account: a, Verified: true})
				acct.verified = true
				break
			}
		}
	case 12: // live state
		if id, ok := r.pick(ids); ok && r.m.systems[id].monitored {
			ts := now.Add(-time.Duration(r.rng.IntN(30)) * time.Minute)
			r.report(id, ts, 1+r.rng.IntN(3), int64(r.rng.IntN(5000)), uint64(r.rng.IntN(1000)))
			if ts.After(r.m.systems[id].lastSeen) {
				r.m.systems[id].lastSeen = ts
			}
		}
	case 13:
		r.advance(time.Duration(r.rng.IntN(20)) * time.Minute)
	}
}

// query returns a random search text: pieces of names, e-mails, GUIDs and
// serials the model holds, in random case, or noise.
func (r *isoRun) query() string {
	ids := r.liveSystems()
	id, ok := r.pick(ids)
	if !ok {
		return ""
	}
	s := r.m.systems[id]
	cut := func(str string, prefix bool) string {
		rs := []rune(str)
		if len(rs) == 0 {
			return ""
		}
		i := 0
		if !prefix {
			i = r.rng.IntN(len(rs))
		}
		j := i + 1 + r.rng.IntN(min(6, len(rs)-i))
		out := string(rs[i:j])
		if r.rng.IntN(2) == 0 {
			out = strings.ToUpper(out)
		}
		return out
	}
	switch r.rng.IntN(7) {
	case 0:
		return ""
	case 1, 2:
		return cut(s.name, false)
	case 3:
		return cut(r.emails[r.rng.IntN(len(r.emails))], true)
	case 4:
		return cut(s.guid, true)
	case 5:
		if len(s.serials) > 0 {
			return cut(s.serials[0], true)
		}
		return "x"
	}
	return string([]rune(r.words[r.rng.IntN(len(r.words))])[:1])
}

// Random accounts run random searches, lists and detail calls over a
// random ACL that keeps changing; no answer ever contains a system the
// brute-force rules deny, and none omits one they allow.
func TestIsolationAgainstBruteForce(t *testing.T) {
	h := newHarness(t, harnessOpts{tweak: func(o *Options) { o.DeltaLimit = 16 }})
	r := &isoRun{harness: h, m: &model{accounts: map[acl.AccountID]*mAccount{}, orgs: map[acl.OrgID]*mOrg{},
		systems: map[acl.SystemID]*mSystem{}, support: h.support}, rng: rand.New(rand.NewPCG(11, 5)),
		words: []string{"Müller", "Ñandú", "solar", "Acme", "farm", "Sonne", "ΣΟΛΆΡ", "park", "Haus", "øst", "Ærø", "i̇stanbul", "ǅemal"}}
	r.m.accounts[h.support] = &mAccount{email: "support@fleetscope.test", verified: true}
	for i := range 16 {
		r.emails = append(r.emails, fmt.Sprintf("%s%d@x%d.test", []string{"ana", "bob", "eve", "öz"}[i%4], i, i%3))
	}
	// Twelve accounts (a few unverified); the other e-mails stay invitations.
	for i, e := range r.emails[:12] {
		id := h.nextAcct
		h.nextAcct++
		h.apply(acl.Event{Kind: acl.KindAccountRegister, Account: id, Email: e})
		r.m.accounts[id] = &mAccount{email: e}
		if i%4 != 3 {
			h.apply(acl.Event{Kind: acl.KindAccountVerify, Account: id, Verified: true})
			r.m.accounts[id].verified = true
		}
	}
	for o := acl.OrgID(1); o <= 4; o++ {
		h.apply(acl.Event{Kind: acl.KindOrgPut, Org: o, Name: fmt.Sprintf("Org %d", o)})
		r.m.orgs[o] = &mOrg{members: map[string]string{}, roles: map[string]acl.Perm{}}
		r.orgIDs = append(r.orgIDs, o)
	}
	for range 40 {
		r.newSystem()
	}
	var accounts []acl.AccountID
	for a := range r.m.accounts {
		accounts = append(accounts, a)
	}
	slices.Sort(accounts)
	sorts := []string{"name", "-name", "power", "-power", "last_seen", "-last_seen", "energy_today", "-energy_today"}
	statuses := []string{"", "", "online", "offline", "never", "unmonitored", "online,never"}
	checks := 0
	for round := range 60 {
		for range 1 + r.rng.IntN(8) {
			r.mutate()
		}
		// Status comes from the live view; search needs no refresh. Some
		// rounds answer with the changes folded into the catalogue, others
		// with them pending (matched against the request's snapshot).
		h.svc.RefreshLive()
		switch r.rng.IntN(3) {
		case 0:
			h.svc.holdFold.Store(false)
			if err := h.svc.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
		case 1:
			h.svc.holdFold.Store(true)
		default:
			h.svc.holdFold.Store(false)
		}
		now := h.clock.now()
		for range 12 {
			a := accounts[r.rng.IntN(len(accounts))]
			q, status := r.query(), statuses[r.rng.IntN(len(statuses))]
			params := url.Values{"q": {q}, "sort": {sorts[r.rng.IntN(len(sorts))]}, "limit": {fmt.Sprint(1 + r.rng.IntN(9))}}
			if status != "" {
				params.Set("status", status)
			}
			var want []uint32
			for id := range r.m.systems {
				if r.m.perms(a, id, now).Has(acl.PermView) && r.m.matches(a, id, q, now) &&
					(status == "" || strings.Contains(status, r.m.status(id, now))) {
					want = append(want, uint32(id))
				}
			}
			sortU32(want)
			items := h.all(a, params)
			var got []uint32
			for _, it := range items {
				got = append(got, it.ID)
				if st := r.m.status(acl.SystemID(it.ID), now); it.Status != st {
					t.Fatalf("round %d: system %d shown %s, model says %s", round, it.ID, it.Status, st)
				}
			}
			sortU32(got)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d: account %d %v: got %v, want %v", round, a, params, got, want)
			}
			checks++
		}
		// Detail, telemetry and panels of random systems, deleted and
		// unknown ones included: 404 unless the rules allow.
		for range 8 {
			a := accounts[r.rng.IntN(len(accounts))]
			id := acl.SystemID(1 + r.rng.IntN(int(h.nextSys)))
			p := r.m.perms(a, id, now)
			path := fmt.Sprintf("/v1/systems/%d", id)
			if st, body := h.get(a, path, nil); (st == 200) != p.Has(acl.PermView) || (st != 200 && st != 404) {
				t.Fatalf("round %d: account %d GET %s: %d %s, perms %s", round, a, path, st, body, p)
			}
			for _, sub := range []string{"/telemetry", "/panels"} {
				// No store here: 503 once authorized, 404 before.
				want := 404
				if p.Has(acl.PermView | acl.PermData) {
					want = 503
				}
				if st, body := h.get(a, path+sub, nil); st != want {
					t.Fatalf("round %d: account %d GET %s: %d %s, perms %s", round, a, path+sub, st, body, p)
				}
			}
		}
		// The summary counts exactly the viewable systems by status.
		a := accounts[r.rng.IntN(len(accounts))]
		var sum struct {
			Systems int            `json:"systems"`
			Status  map[string]int `json:"status"`
		}
		h.getJSON(a, "/v1/fleet/summary", nil, &sum)
		want := map[string]int{"online": 0, "offline": 0, "never": 0, "unmonitored": 0}
		n := 0
		for id := range r.m.systems {
			if r.m.perms(a, id, now).Has(acl.PermView) {
				n++
				want[r.m.status(id, now)]++
			}
		}
		if sum.Systems != n || fmt.Sprint(sum.Status) != fmt.Sprint(want) {
			t.Fatalf("round %d: account %d summary %+v, want %d %v", round, a, sum, n, want)
		}
	}
	t.Logf("%d searches checked over %d systems", checks, len(r.m.systems))
}
