package acl

import (
	"slices"
	"testing"
	"time"
)

// fixture is a small fleet: an installer org ("Sunny") with an org_admin, a
// technician and a salesperson (member roles "tech" and "sales"), and one
// system it commissioned for a verified homeowner.
type fixture struct {
	*harness
	boss, tech, sales, home AccountID
	org                     OrgID
	sys                     SystemID
}

const (
	techPerms  = PermView | PermData | PermAddGateway | PermDeleteDevice | PermFirmware | PermCreatePlant
	salesPerms = PermView
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	h := newHarness(t)
	f := &fixture{harness: h}
	f.boss = h.account("boss@sunny.test")
	f.org = h.org(f.boss, "Sunny Installs")
	h.must(f.boss, PutMemberRole{Org: f.org, Name: "tech", Perms: techPerms})
	h.must(f.boss, PutMemberRole{Org: f.org, Name: "sales", Perms: salesPerms})
	f.tech = h.account("tech@sunny.test")
	f.sales = h.account("sales@sunny.test")
	h.must(f.boss, PutMember{Org: f.org, Email: "tech@sunny.test", Role: "tech"})
	h.must(f.boss, PutMember{Org: f.org, Email: "sales@sunny.test", Role: "sales"})
	f.home = h.account("home@example.test")
	f.sys = h.commission(f.tech, f.org, "home@example.test")
	return f
}

const installerPerms = PermView | PermData | PermShare | PermManageUsers | PermAddGateway | PermDeleteDevice | PermFirmware

// TestAccessRules checks each rule of DESIGN §4 on the effective permissions
// (and, through harness.perms, that Perms, Can and the bitmaps agree).
func TestAccessRules(t *testing.T) {
	tests := []struct {
		name string
		run  func(f *fixture)
	}{
		{"owner holds every system permission including the owner-only ones", func(f *fixture) {
			f.wantPerms(f.home, f.sys, SystemPerms)
		}},
		{"admin (partner, additional owner) holds what the owner holds except transfer", func(f *fixture) {
			p := f.account("partner@example.test")
			f.grant(f.home, f.sys, EmailPrincipal("partner@example.test"), RoleAdmin)
			f.wantPerms(p, f.sys, SystemPerms&^PermOwner)
		}},
		{"each role holds exactly the permissions of the DESIGN table", func(f *fixture) {
			for _, c := range []struct {
				role Role
				want Perm
			}{
				{RoleInstaller, installerPerms},
				{RoleUser, PermView | PermData | PermShare | PermManageUsers},
				{RoleData, PermView | PermData},
				{RoleViewer, PermView},
			} {
				email := c.role.String() + "@example.test"
				a := f.account(email)
				f.grant(f.home, f.sys, EmailPrincipal(email), c.role)
				f.wantPerms(a, f.sys, c.want)
			}
		}},
		{"viewer (basic system view) sees the location but not its data", func(f *fixture) {
			friend := f.account("friend@example.test")
			f.grant(f.home, f.sys, EmailPrincipal("friend@example.test"), RoleViewer)
			f.wantSystems(friend, PermView, f.sys)
			f.wantSystems(friend, PermData)
		}},
		{"a stranger holds nothing", func(f *fixture) {
			f.wantPerms(f.account("stranger@example.test"), f.sys, 0)
		}},
		{"grant to an org reaches its members", func(f *fixture) {
			f.wantSystems(f.tech, PermView, f.sys)
			f.wantSystems(f.sales, PermView, f.sys)
		}},
		{"org_admin holds the org's grant in full", func(f *fixture) {
			f.wantPerms(f.boss, f.sys, installerPerms)
		}},
		{"member holds the org grant's permissions intersected with the member role's", func(f *fixture) {
			// tech: view,data,add_gateway,delete_device,firmware,create_plant ∩ installer.
			f.wantPerms(f.tech, f.sys, installerPerms&techPerms)
			// On a data grant the same member keeps only view and data.
			s2 := f.commission(f.boss, f.org, "home@example.test")
			f.must(f.home, GrantRole{System: s2, To: OrgPrincipal(f.org), Role: RoleData})
			f.wantPerms(f.tech, s2, PermView|PermData)
		}},
		{"team member whose customer type lacks data sees the location but not its data", func(f *fixture) {
			f.wantPerms(f.sales, f.sys, PermView)
			f.wantSystems(f.sales, PermData)
		}},
		{"member role edit applies to every member at once", func(f *fixture) {
			var techs []AccountID
			for i := range 5 {
				email := "tech" + itoa(i) + "@sunny.test"
				techs = append(techs, f.account(email))
				f.must(f.boss, PutMember{Org: f.org, Email: email, Role: "tech"})
			}
			f.must(f.boss, PutMemberRole{Org: f.org, Name: "tech", Perms: PermView})
			for _, a := range techs {
				f.wantPerms(a, f.sys, PermView)
			}
			f.wantPerms(f.tech, f.sys, PermView)
			f.wantPerms(f.sales, f.sys, PermView) // other roles untouched
		}},
		{"changing a member's role changes what it holds", func(f *fixture) {
			f.must(f.boss, PutMember{Org: f.org, Email: "sales@sunny.test", Role: "tech"})
			f.wantPerms(f.sales, f.sys, installerPerms&techPerms)
		}},
		{"member whose role is deleted elsewhere keeps membership but no permissions, until the role exists again", func(f *fixture) {
			// Deletion of a role in use is refused by Do, but a deletion
			// racing a membership change on another node still lands.
			f.apply(Event{Kind: KindRoleDelete, Org: f.org, Name: "sales"})
			f.wantPerms(f.sales, f.sys, 0)
			if r, ok := f.snap().OrgRole(f.sales, f.org); !ok || r != "sales" {
				t.Fatalf("membership after role deletion: %q %v", r, ok)
			}
			f.must(f.boss, PutMemberRole{Org: f.org, Name: "sales", Perms: PermView | PermData})
			f.wantPerms(f.sales, f.sys, PermView|PermData)
		}},
		{"member removed from the org loses org access but keeps its own grants", func(f *fixture) {
			s2 := f.commission(f.boss, f.org, "home@example.test")
			f.grant(f.home, s2, EmailPrincipal("sales@sunny.test"), RoleData)
			f.must(f.boss, RemoveMember{Org: f.org, Email: "sales@sunny.test"})
			f.wantSystems(f.sales, PermView, s2)
			f.wantPerms(f.sales, f.sys, 0)
		}},
		{"own grant and org grant combine", func(f *fixture) {
			f.grant(f.home, f.sys, EmailPrincipal("sales@sunny.test"), RoleData)
			f.wantPerms(f.sales, f.sys, PermView|PermData)
		}},
		{"member of two orgs holds the union", func(f *fixture) {
			other := f.harness.org(f.home, "Home Energy Co")
			f.must(f.home, PutMemberRole{Org: other, Name: "share", Perms: PermView | PermShare})
			f.must(f.home, PutMember{Org: other, Email: "sales@sunny.test", Role: "share"})
			f.grant(f.home, f.sys, OrgPrincipal(other), RoleUser)
			f.wantPerms(f.sales, f.sys, PermView|PermShare)
		}},
		{"grant to an org reaches a member invited before registering, once verified", func(f *fixture) {
			f.must(f.boss, PutMember{Org: f.org, Email: "new@sunny.test", Role: "tech"})
			n := f.register("new@sunny.test")
			f.wantPerms(n, f.sys, 0)
			f.verify(n)
			f.wantPerms(n, f.sys, installerPerms&techPerms)
		}},
		{"invitation does not apply before the e-mail is verified", func(f *fixture) {
			f.grant(f.home, f.sys, EmailPrincipal("guest@example.test"), RoleUser)
			g := f.register("guest@example.test")
			f.wantPerms(g, f.sys, 0)
			if gr := f.snap().Grants(f.sys); !slices.ContainsFunc(gr, func(g Grant) bool { return g.Principal.Email == "guest@example.test" && g.Pending }) {
				t.Fatalf("grant to an unverified e-mail is not listed as pending: %+v", gr)
			}
		}},
		{"invitation applies the moment the e-mail is verified", func(f *fixture) {
			f.grant(f.home, f.sys, EmailPrincipal("guest@example.test"), RoleUser)
			g := f.register("guest@example.test")
			f.verify(g)
			f.wantPerms(g, f.sys, PermView|PermData|PermShare|PermManageUsers)
		}},
		{"owner invitation: commissioning for an unregistered homeowner makes them owner once verified", func(f *fixture) {
			s2 := f.commission(f.tech, f.org, "later@example.test")
			if o, _ := f.snap().Owner(s2); o != "later@example.test" {
				t.Fatalf("owner = %q", o)
			}
			l := f.register("later@example.test")
			f.wantPerms(l, s2, 0)
			f.verify(l)
			f.wantPerms(l, s2, SystemPerms)
		}},
		{"registering someone else's e-mail first takes nothing from them", func(f *fixture) {
			f.grant(f.home, f.sys, EmailPrincipal("victim@example.test"), RoleUser)
			squatter := f.register("victim@example.test") // never verifies
			victim := f.register("Victim@Example.test")   // allowed: the e-mail is not verified
			f.verify(victim)
			f.wantPerms(victim, f.sys, PermView|PermData|PermShare|PermManageUsers)
			f.wantPerms(squatter, f.sys, 0)
			if a, _ := f.snap().AccountByEmail("victim@example.test"); a.ID != victim || !a.Active {
				t.Fatalf("AccountByEmail = %+v, want the verified account %d", a, victim)
			}
			if a, _ := f.snap().Account(squatter); a.Active {
				t.Fatal("the squatting account is active")
			}
		}},
		{"e-mail matching is case-insensitive", func(f *fixture) {
			a := f.account("Mixed.Case@Example.TEST ")
			f.grant(f.home, f.sys, EmailPrincipal("mixed.case@example.test"), RoleViewer)
			f.wantPerms(a, f.sys, PermView)
			f.grant(f.home, f.sys, Principal{Email: "MIXED.case@example.test"}, RoleData)
			f.wantPerms(a, f.sys, PermView|PermData)
		}},
		{"granting again replaces role and expiry", func(f *fixture) {
			a := f.account("fam@example.test")
			f.must(f.home, GrantRole{System: f.sys, To: EmailPrincipal("fam@example.test"), Role: RoleUser, ExpiresAt: t0.Add(time.Hour)})
			f.grant(f.home, f.sys, EmailPrincipal("fam@example.test"), RoleViewer)
			f.wantPerms(a, f.sys, PermView)
			f.advance(2 * time.Hour)
			f.wantPerms(a, f.sys, PermView) // the permanent re-grant replaced the expiry
			if n := len(f.snap().Grants(f.sys)); n != 3 {
				t.Fatalf("%d grants listed, want owner, org and one for fam", n)
			}
		}},
		{"temporary grant counts until it expires", func(f *fixture) {
			a := f.account("visitor@example.test")
			f.must(f.home, GrantRole{System: f.sys, To: EmailPrincipal("visitor@example.test"), Role: RoleData, ExpiresAt: t0.Add(time.Hour)})
			f.advance(time.Hour - time.Millisecond)
			f.wantPerms(a, f.sys, PermView|PermData)
		}},
		{"expired temporary grant is gone", func(f *fixture) {
			a := f.account("visitor@example.test")
			f.must(f.home, GrantRole{System: f.sys, To: EmailPrincipal("visitor@example.test"), Role: RoleData, ExpiresAt: t0.Add(time.Hour)})
			f.advance(time.Hour)
			f.wantPerms(a, f.sys, 0)
			if slices.ContainsFunc(f.snap().Grants(f.sys), func(g Grant) bool { return g.Principal.Email == "visitor@example.test" }) {
				t.Fatal("expired grant still listed")
			}
		}},
		{"expired temporary grant to an org is gone for every member", func(f *fixture) {
			s2 := f.commission(f.boss, f.org, "home@example.test")
			f.must(f.home, RevokeGrant{System: s2, From: OrgPrincipal(f.org)})
			f.must(f.home, GrantRole{System: s2, To: OrgPrincipal(f.org), Role: RoleViewer, ExpiresAt: t0.Add(time.Minute)})
			f.wantSystems(f.sales, PermView, f.sys, s2)
			f.advance(time.Minute)
			f.wantSystems(f.sales, PermView, f.sys)
			f.wantSystems(f.boss, PermView, f.sys)
		}},
		{"granting again after expiry restores access", func(f *fixture) {
			a := f.account("visitor@example.test")
			f.must(f.home, GrantRole{System: f.sys, To: EmailPrincipal("visitor@example.test"), Role: RoleData, ExpiresAt: t0.Add(time.Hour)})
			f.advance(2 * time.Hour)
			f.grant(f.home, f.sys, EmailPrincipal("visitor@example.test"), RoleViewer)
			f.wantPerms(a, f.sys, PermView)
		}},
		{"revoked grant is gone", func(f *fixture) {
			a := f.account("fam@example.test")
			f.grant(f.home, f.sys, EmailPrincipal("fam@example.test"), RoleUser)
			f.must(f.home, RevokeGrant{System: f.sys, From: EmailPrincipal("fam@example.test")})
			f.wantPerms(a, f.sys, 0)
		}},
		{"revoking the org's grant removes it from every member", func(f *fixture) {
			f.must(f.home, RevokeGrant{System: f.sys, From: OrgPrincipal(f.org)})
			for _, a := range []AccountID{f.boss, f.tech, f.sales} {
				f.wantPerms(a, f.sys, 0)
			}
		}},
		{"replacing the installer org moves access to the new org's members", func(f *fixture) {
			nb := f.account("boss@newco.test")
			newco := f.harness.org(nb, "NewCo")
			f.grant(f.home, f.sys, OrgPrincipal(newco), RoleInstaller)
			f.must(f.home, RevokeGrant{System: f.sys, From: OrgPrincipal(f.org)})
			f.wantPerms(nb, f.sys, installerPerms)
			f.wantPerms(f.boss, f.sys, 0)
			if got := f.snap().Installers(f.sys); !slices.Equal(got, []OrgID{newco}) {
				t.Fatalf("Installers = %v", got)
			}
		}},
		{"transfer makes the new owner owner and keeps the old owner as admin", func(f *fixture) {
			buyer := f.account("buyer@example.test")
			f.must(f.home, TransferOwnership{System: f.sys, To: "buyer@example.test"})
			f.wantPerms(buyer, f.sys, SystemPerms)
			f.wantPerms(f.home, f.sys, SystemPerms&^PermOwner)
			f.must(buyer, RevokeGrant{System: f.sys, From: EmailPrincipal("home@example.test")})
			f.wantPerms(f.home, f.sys, 0)
		}},
		{"deleted system disappears from every bitmap", func(f *fixture) {
			f.must(f.home, DeleteSystem{System: f.sys})
			for _, a := range []AccountID{f.home, f.boss, f.tech, f.sales, f.support} {
				f.wantPerms(a, f.sys, 0)
			}
			if _, ok := f.snap().System(f.sys); ok {
				t.Fatal("deleted system still has a record")
			}
		}},
		{"system deletion is final even against a later edit", func(f *fixture) {
			f.must(f.home, DeleteSystem{System: f.sys})
			f.apply(Event{Kind: KindSystemPut, System: f.sys, GUID: "X", Name: "revived"})
			f.apply(Event{Kind: KindGrantPut, System: f.sys, Grantee: EmailPrincipal("home@example.test"), Role: RoleUser})
			f.wantPerms(f.home, f.sys, 0)
		}},
		{"unverified account holds nothing, even as owner", func(f *fixture) {
			u := f.register("unverified@example.test")
			s2 := f.commission(f.tech, f.org, "unverified@example.test")
			f.wantPerms(u, s2, 0)
			f.wantSystems(u, PermView)
		}},
		{"support may view and act on any system", func(f *fixture) {
			f.wantPerms(f.support, f.sys, SystemPerms)
			s2 := f.commission(f.boss, f.org, "home@example.test")
			f.wantSystems(f.support, PermView, f.sys, s2)
			f.wantSystems(f.support, PermOwner, f.sys, s2)
		}},
		{"create_plant is an org permission, never a system one", func(f *fixture) {
			f.wantSystems(f.tech, PermCreatePlant)
			s := f.snap()
			if !s.CanInOrg(f.tech, PermCreatePlant, f.org) || s.CanInOrg(f.sales, PermCreatePlant, f.org) || !s.CanInOrg(f.boss, PermCreatePlant, f.org) {
				t.Fatal("CanInOrg(create_plant) does not follow the member roles")
			}
		}},
		{"several permissions at once are held only if all are", func(f *fixture) {
			if got := f.snap().Systems(f.tech, PermView|PermData).ToArray(); !slices.Equal(got, []uint32{uint32(f.sys)}) {
				t.Fatalf("view+data: %v", got)
			}
			if f.snap().Can(f.sales, PermView|PermData, f.sys) || f.snap().Systems(f.sales, PermView|PermData).Contains(uint32(f.sys)) {
				t.Fatal("sales holds view+data")
			}
		}},
		{"system and grants arriving before the system record count once it exists", func(f *fixture) {
			a := f.account("early@example.test")
			f.apply(Event{Kind: KindGrantPut, System: 99, Grantee: EmailPrincipal("early@example.test"), Role: RoleData})
			f.wantPerms(a, 99, 0)
			f.apply(Event{Kind: KindSystemPut, System: 99, GUID: "G99"})
			f.wantPerms(a, 99, PermView|PermData)
		}},
		{"later stamp wins regardless of the order events arrive in", func(f *fixture) {
			a := f.account("lww@example.test")
			clock := f.x.Clock()
			older, newer := clock.Now(), clock.Now()
			f.x.Apply(Event{Kind: KindGrantPut, Stamp: newer, System: f.sys, Grantee: EmailPrincipal("lww@example.test"), Role: RoleViewer})
			f.x.Apply(Event{Kind: KindGrantPut, Stamp: older, System: f.sys, Grantee: EmailPrincipal("lww@example.test"), Role: RoleAdmin})
			f.wantPerms(a, f.sys, PermView)
			// A revoke is a tombstone: an older grant arriving after it stays revoked.
			revoke := clock.Now()
			f.x.Apply(Event{Kind: KindGrantDelete, Stamp: revoke, System: f.sys, Grantee: EmailPrincipal("lww@example.test")})
			f.x.Apply(Event{Kind: KindGrantPut, Stamp: Stamp{HLC: revoke.HLC - 1, Node: 9}, System: f.sys, Grantee: EmailPrincipal("lww@example.test"), Role: RoleUser})
			f.wantPerms(a, f.sys, 0)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(newFixture(t)) })
	}
}

// TestGatewayRules checks the gateways of DESIGN §3 and §4 ("add / remove a
// gateway: add_gateway") on the state the lookups show.
func TestGatewayRules(t *testing.T) {
	tests := []struct {
		name string
		run  func(f *fixture)
	}{
		{"gateway added by installer (add_gateway)", func(f *fixture) {
			id := f.addGateway(f.tech, f.sys, "aa:bb:cc:dd:ee:01")
			f.wantGateways(f.sys, Gateway{ID: id, System: f.sys, Serial: "AA:BB:CC:DD:EE:01"})
		}},
		{"a system's gateways are listed by serial", func(f *fixture) {
			b := f.addGateway(f.tech, f.sys, "GW-B")
			a := f.addGateway(f.tech, f.sys, "GW-A")
			c := f.addGateway(f.home, f.sys, "GW-C")
			f.wantGateways(f.sys, Gateway{a, f.sys, "GW-A"}, Gateway{b, f.sys, "GW-B"}, Gateway{c, f.sys, "GW-C"})
		}},
		{"serial unique within a system", func(f *fixture) {
			f.addGateway(f.tech, f.sys, "GW-1")
			f.wantErr(f.do(f.tech, AddGateway{System: f.sys, Serial: " gw-1 ", KeyHash: secret("other")}), ErrExists)
			s2 := f.commission(f.tech, f.org, "home@example.test")
			id := f.addGateway(f.tech, s2, "GW-1") // the same serial on another system is another gateway
			f.wantGateways(s2, Gateway{id, s2, "GW-1"})
		}},
		{"the op allocates gateway ids after the largest any event named", func(f *fixture) {
			f.apply(Event{Kind: KindGatewayDelete, System: 77, Gateway: 40})
			if id := f.addGateway(f.tech, f.sys, "GW-1"); id != 41 {
				f.t.Fatalf("allocated gateway id %d, want 41", id)
			}
			f.must(f.tech, AddGateway{Gateway: 7, System: f.sys, Serial: "GW-2", KeyHash: secret("key-GW-2")})
			f.wantGateways(f.sys, Gateway{41, f.sys, "GW-1"}, Gateway{7, f.sys, "GW-2"})
		}},
		{"removed gateway is gone and its serial free again", func(f *fixture) {
			old := f.addGateway(f.tech, f.sys, "GW-1")
			keep := f.addGateway(f.tech, f.sys, "GW-2")
			f.must(f.tech, RemoveGateway{System: f.sys, Serial: "gw-1"})
			f.wantNoGateway(old)
			f.wantGateways(f.sys, Gateway{keep, f.sys, "GW-2"})
			id := f.addGateway(f.tech, f.sys, "GW-1")
			if id == old {
				f.t.Fatal("a removed gateway's id was reused")
			}
			f.wantGateways(f.sys, Gateway{id, f.sys, "GW-1"}, Gateway{keep, f.sys, "GW-2"})
		}},
		{"deleting a system drops its gateways", func(f *fixture) {
			a := f.addGateway(f.tech, f.sys, "GW-1")
			b := f.addGateway(f.tech, f.sys, "GW-2")
			f.must(f.home, DeleteSystem{System: f.sys})
			f.wantNoGateway(a)
			f.wantNoGateway(b)
			f.wantGateways(f.sys)
			if _, ok := f.snap().GatewayBySerial(f.sys, "GW-1"); ok {
				f.t.Fatal("GatewayBySerial finds a gateway of a deleted system")
			}
			// Deletion is final: a later put for the deleted system stays invisible.
			f.apply(Event{Kind: KindGatewayPut, System: f.sys, Gateway: a, Serial: "GW-1", Hash: secret("key-GW-1")})
			f.wantNoGateway(a)
		}},
		{"gateways arriving before their system count once it exists", func(f *fixture) {
			f.apply(Event{Kind: KindGatewayPut, System: 99, Gateway: 5, Serial: "EARLY", Hash: secret("key-EARLY")})
			f.wantNoGateway(5)
			f.wantGateways(99)
			f.apply(Event{Kind: KindSystemPut, System: 99, GUID: "G99"})
			f.wantGateways(99, Gateway{5, 99, "EARLY"})
		}},
		{"later stamp wins for a gateway, and a removal is a tombstone", func(f *fixture) {
			clock := f.x.Clock()
			older, newer := clock.Now(), clock.Now()
			f.x.Apply(Event{Kind: KindGatewayPut, Stamp: newer, System: f.sys, Gateway: 3, Serial: "NEW", Hash: secret("key-NEW")})
			f.x.Apply(Event{Kind: KindGatewayPut, Stamp: older, System: f.sys, Gateway: 3, Serial: "OLD", Hash: secret("key-OLD")})
			f.wantGateways(f.sys, Gateway{3, f.sys, "NEW"})
			del := clock.Now()
			f.x.Apply(Event{Kind: KindGatewayDelete, Stamp: del, System: f.sys, Gateway: 3})
			f.x.Apply(Event{Kind: KindGatewayPut, Stamp: Stamp{HLC: del.HLC - 1, Node: 9}, System: f.sys, Gateway: 3, Serial: "NEW", Hash: secret("key-NEW")})
			f.wantNoGateway(3)
			f.wantGateways(f.sys)
		}},
		{"a gateway id put again on another system moves there", func(f *fixture) {
			s2 := f.commission(f.tech, f.org, "home@example.test")
			id := f.addGateway(f.tech, f.sys, "GW-1")
			f.apply(Event{Kind: KindGatewayPut, System: s2, Gateway: id, Serial: "GW-9", Hash: secret("key-GW-9")})
			f.wantGateways(f.sys)
			f.wantGateways(s2, Gateway{id, s2, "GW-9"})
		}},
		{"a serial added concurrently on two nodes is listed twice and removed at once", func(f *fixture) {
			f.apply(Event{Kind: KindGatewayPut, System: f.sys, Gateway: 8, Serial: "DUP", Hash: secret("key-DUP")},
				Event{Kind: KindGatewayPut, System: f.sys, Gateway: 6, Serial: "DUP", Hash: secret("key-DUP")})
			f.wantGateways(f.sys, Gateway{6, f.sys, "DUP"}, Gateway{8, f.sys, "DUP"})
			if g, _ := f.snap().GatewayBySerial(f.sys, "dup"); g.ID != 6 {
				f.t.Fatalf("GatewayBySerial of a shared serial = %d, want the smaller id 6", g.ID)
			}
			f.must(f.tech, RemoveGateway{System: f.sys, Serial: "DUP"})
			f.wantGateways(f.sys)
		}},
		{"gateway changes are reported in Change.Systems", func(f *fixture) {
			ch, err := f.x.Do(f.tech, AddGateway{System: f.sys, Serial: "GW-1", KeyHash: secret("k")}, nil)
			if err != nil || ch.Systems == nil || !ch.Systems.Contains(uint32(f.sys)) {
				f.t.Fatalf("add: %+v %v", ch, err)
			}
			ch, err = f.x.Do(f.tech, RemoveGateway{System: f.sys, Serial: "GW-1"}, nil)
			if err != nil || ch.Systems == nil || !ch.Systems.Contains(uint32(f.sys)) {
				f.t.Fatalf("remove: %+v %v", ch, err)
			}
		}},
		{"the monitored flag of a gateway is its system's", func(f *fixture) {
			f.must(f.tech, Commission{System: 60, GUID: "FIRE-1", Org: f.org, OwnerEmail: "home@example.test"})
			id := f.addGateway(f.tech, 60, "GW-F")
			g, _ := f.snap().Gateway(id)
			if sys, ok := f.snap().System(g.System); !ok || sys.Monitored {
				f.t.Fatalf("system of the gateway: %+v %v, want unmonitored", sys, ok)
			}
		}},
		{"gateways change nobody's permissions", func(f *fixture) {
			before := f.perms(f.sales, f.sys)
			f.addGateway(f.tech, f.sys, "GW-1")
			f.wantPerms(f.sales, f.sys, before)
			f.wantSystems(f.sales, PermView, f.sys)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(newFixture(t)) })
	}
}

// TestCredentialRules checks account tokens, passwords, verification codes
// and names: what the lookups show after each op and event.
func TestCredentialRules(t *testing.T) {
	wantToken := func(f *fixture, id string, acct AccountID, hash [32]byte) {
		f.t.Helper()
		a, h, ok := f.snap().Token(id)
		if ok != (acct != 0) || a != acct || h != hash {
			f.t.Fatalf("Token(%q) = %d %x %v, want %d %x", id, a, h, ok, acct, hash)
		}
	}
	wantCode := func(f *fixture, acct AccountID, hash [32]byte, expires time.Time) {
		f.t.Helper()
		h, exp, ok := f.snap().VerificationCode(acct)
		want := hash != [32]byte{}
		if ok != want || h != hash || want && exp != expires.UnixMilli() {
			f.t.Fatalf("VerificationCode(%d) = %x %d %v, want %x %d", acct, h, exp, ok, hash, expires.UnixMilli())
		}
	}
	tests := []struct {
		name string
		run  func(f *fixture)
	}{
		{"token lookup after issue, gone after revoke", func(f *fixture) {
			f.must(f.home, IssueToken{Account: f.home, ID: "tok1", Hash: secret("s1")})
			wantToken(f, "tok1", f.home, secret("s1"))
			f.must(f.home, RevokeToken{ID: "tok1"})
			wantToken(f, "tok1", 0, [32]byte{})
		}},
		{"revoked token stays revoked, whatever arrives later", func(f *fixture) {
			f.must(f.home, IssueToken{Account: f.home, ID: "tok1", Hash: secret("s1")})
			f.must(f.home, RevokeToken{ID: "tok1"})
			f.apply(Event{Kind: KindTokenPut, Account: f.home, Token: "tok1", Hash: secret("s2")})
			wantToken(f, "tok1", 0, [32]byte{})
			f.wantErr(f.do(f.home, IssueToken{Account: f.home, ID: "tok1", Hash: secret("s3")}), ErrExists)
		}},
		{"revocation arriving before its token wins", func(f *fixture) {
			clock := f.x.Clock()
			put, del := clock.Now(), clock.Now()
			f.x.Apply(Event{Kind: KindTokenDelete, Stamp: del, Token: "tok1"})
			f.x.Apply(Event{Kind: KindTokenPut, Stamp: put, Account: f.home, Token: "tok1", Hash: secret("s1")})
			wantToken(f, "tok1", 0, [32]byte{})
		}},
		{"a token of an account not registered yet does not authenticate", func(f *fixture) {
			f.apply(Event{Kind: KindTokenPut, Account: 90, Token: "early", Hash: secret("s")})
			wantToken(f, "early", 0, [32]byte{})
			f.apply(Event{Kind: KindAccountRegister, Account: 90, Email: "late@example.test"})
			wantToken(f, "early", 90, secret("s"))
		}},
		{"an account holds several tokens, revoked one by one", func(f *fixture) {
			f.must(f.home, IssueToken{Account: f.home, ID: "phone", Hash: secret("p")})
			f.must(f.home, IssueToken{Account: f.home, ID: "laptop", Hash: secret("l")})
			f.must(f.home, RevokeToken{ID: "phone"})
			wantToken(f, "phone", 0, [32]byte{})
			wantToken(f, "laptop", f.home, secret("l"))
		}},
		{"registration stores name, password, token and code in one change", func(f *fixture) {
			var evs []Event
			_, err := f.x.Do(Platform, RegisterAccount{Account: 90, Email: "New@Example.test", Name: "Ana Sol",
				PasswordHash: []byte("pbkdf2$x"), TokenID: "reg", TokenHash: secret("s"),
				CodeHash: secret("123456"), CodeExpires: t0.Add(15 * time.Minute)}, func(e []Event) error {
				evs = append(evs, e...)
				return nil
			})
			if err != nil || len(evs) != 6 { // register, name, password, token and its expiry, code
				f.t.Fatalf("register: %d events, %v", len(evs), err)
			}
			acc, _ := f.snap().Account(90)
			if acc.Name != "Ana Sol" || acc.Email != "new@example.test" || acc.Verified {
				f.t.Fatalf("account %+v", acc)
			}
			if pw, ok := f.snap().PasswordHash(90); !ok || string(pw) != "pbkdf2$x" {
				f.t.Fatalf("PasswordHash = %q %v", pw, ok)
			}
			wantToken(f, "reg", 90, secret("s"))
			wantCode(f, 90, secret("123456"), t0.Add(15*time.Minute))
		}},
		{"registration without the optional parts stores only the account", func(f *fixture) {
			a := f.register("plain@example.test")
			if _, ok := f.snap().PasswordHash(a); ok {
				f.t.Fatal("password without one given")
			}
			wantCode(f, a, [32]byte{}, time.Time{})
			if acc, _ := f.snap().Account(a); acc.Name != "" {
				f.t.Fatalf("name %q", acc.Name)
			}
		}},
		{"verification with the code verifies the account and uses the code up", func(f *fixture) {
			f.must(Platform, RegisterAccount{Account: 90, Email: "new@example.test", CodeHash: secret("111111"), CodeExpires: t0.Add(time.Hour)})
			f.must(90, VerifyAccount{Account: 90, Code: secret("111111")})
			if acc, _ := f.snap().Account(90); !acc.Verified || !acc.Active {
				f.t.Fatalf("account after verification: %+v", acc)
			}
			wantCode(f, 90, [32]byte{}, time.Time{})
			f.wantErr(f.do(90, VerifyAccount{Account: 90, Code: secret("111111")}), ErrInvalid)
		}},
		{"verification code replaced by a newer one", func(f *fixture) {
			f.must(Platform, RegisterAccount{Account: 90, Email: "new@example.test", CodeHash: secret("111111"), CodeExpires: t0.Add(time.Hour)})
			f.must(90, SetVerificationCode{Account: 90, Hash: secret("222222"), ExpiresAt: t0.Add(2 * time.Hour)})
			wantCode(f, 90, secret("222222"), t0.Add(2*time.Hour))
			f.wantErr(f.do(90, VerifyAccount{Account: 90, Code: secret("111111")}), ErrInvalid)
			f.must(90, VerifyAccount{Account: 90, Code: secret("222222")})
		}},
		{"an older code arriving late does not replace a newer one", func(f *fixture) {
			f.register("new@example.test")
			clock := f.x.Clock()
			older, newer := clock.Now(), clock.Now()
			exp := t0.Add(time.Hour)
			f.x.Apply(Event{Kind: KindCodeSet, Stamp: newer, Account: 2, Hash: secret("new"), Expires: exp.UnixMilli()})
			f.x.Apply(Event{Kind: KindCodeSet, Stamp: older, Account: 2, Hash: secret("old"), Expires: exp.UnixMilli()})
			wantCode(f, 2, secret("new"), exp)
		}},
		{"an expired verification code is refused", func(f *fixture) {
			f.must(Platform, RegisterAccount{Account: 90, Email: "new@example.test", CodeHash: secret("111111"), CodeExpires: t0.Add(time.Minute)})
			f.advance(time.Minute)
			f.wantErr(f.do(90, VerifyAccount{Account: 90, Code: secret("111111")}), ErrInvalid)
			if acc, _ := f.snap().Account(90); acc.Verified {
				f.t.Fatal("verified with an expired code")
			}
		}},
		{"support verifying by hand clears the pending code", func(f *fixture) {
			f.must(Platform, RegisterAccount{Account: 90, Email: "new@example.test", CodeHash: secret("111111"), CodeExpires: t0.Add(time.Hour)})
			f.must(f.support, VerifyAccount{Account: 90})
			wantCode(f, 90, [32]byte{}, time.Time{})
		}},
		{"password replaced, then cleared", func(f *fixture) {
			f.must(f.home, SetPassword{Account: f.home, Hash: []byte("v1")})
			f.must(f.home, SetPassword{Account: f.home, Hash: []byte("v2")})
			if pw, ok := f.snap().PasswordHash(f.home); !ok || string(pw) != "v2" {
				f.t.Fatalf("PasswordHash = %q %v", pw, ok)
			}
			pw, _ := f.snap().PasswordHash(f.home)
			pw[0] = 'X' // the caller's copy
			if again, _ := f.snap().PasswordHash(f.home); string(again) != "v2" {
				f.t.Fatal("PasswordHash returned the state's bytes")
			}
			f.must(f.home, SetPassword{Account: f.home})
			if _, ok := f.snap().PasswordHash(f.home); ok {
				f.t.Fatal("cleared password still set")
			}
		}},
		{"account name: a later event wins, an older one loses", func(f *fixture) {
			clock := f.x.Clock()
			older, newer := clock.Now(), clock.Now()
			f.x.Apply(Event{Kind: KindAccountName, Stamp: newer, Account: f.home, Name: "Homeowner"})
			f.x.Apply(Event{Kind: KindAccountName, Stamp: older, Account: f.home, Name: "Stale"})
			if acc, _ := f.snap().Account(f.home); acc.Name != "Homeowner" {
				f.t.Fatalf("name %q", acc.Name)
			}
		}},
		{"credentials change no bitmap and report no change", func(f *fixture) {
			for _, op := range []Op{
				IssueToken{Account: f.sales, ID: "t", Hash: secret("s")},
				SetPassword{Account: f.sales, Hash: []byte("pw")},
				SetVerificationCode{Account: f.sales, Hash: secret("c"), ExpiresAt: t0.Add(time.Hour)},
				RevokeToken{ID: "t"},
			} {
				ch, err := f.x.Do(f.sales, op, nil)
				if err != nil || !ch.Empty() {
					f.t.Fatalf("%T: change %+v, %v", op, ch, err)
				}
			}
			f.wantPerms(f.sales, f.sys, PermView)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(newFixture(t)) })
	}
}
