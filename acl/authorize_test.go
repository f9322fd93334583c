package acl

import (
	"testing"
	"time"
)

// authFixture adds to fixture an account for every role on f.sys, a "share"
// member role (view and share, without manage_users) held by sharer, an
// unverified grantee and a stranger.
type authFixture struct {
	*fixture
	partner, inst, family, monitor, friend, sharer, unverified, stranger AccountID
}

func newAuthFixture(t *testing.T) *authFixture {
	f := &authFixture{fixture: newFixture(t)}
	give := func(email string, r Role) AccountID {
		a := f.account(email)
		f.grant(f.home, f.sys, EmailPrincipal(email), r)
		return a
	}
	f.partner = give("partner@example.test", RoleAdmin)
	f.inst = give("inst@example.test", RoleInstaller)
	f.family = give("family@example.test", RoleUser)
	f.monitor = give("monitor@example.test", RoleData)
	f.friend = give("friend@example.test", RoleViewer)
	f.must(f.boss, PutMemberRole{Org: f.org, Name: "share", Perms: PermView | PermShare})
	f.sharer = f.account("sharer@sunny.test")
	f.must(f.boss, PutMember{Org: f.org, Email: "sharer@sunny.test", Role: "share"})
	f.unverified = f.register("unverified@example.test")
	f.grant(f.home, f.sys, EmailPrincipal("unverified@example.test"), RoleViewer)
	f.stranger = f.account("stranger@example.test")
	return f
}

// try runs op through Authorize and then Do, which must agree.
func (f *authFixture) try(actor AccountID, op Op) error {
	f.t.Helper()
	authErr := f.snap().Authorize(actor, op)
	err := f.do(actor, op)
	if (authErr == nil) != (err == nil) {
		f.t.Fatalf("Authorize says %v, Do says %v", authErr, err)
	}
	return err
}

func email(s string) Principal { return EmailPrincipal(s) }

// TestWhoMayDoWhat checks every row of DESIGN §4 "who may do what", the
// owner and org rules around it, and that a system the caller cannot view
// answers ErrNotFound (404), never ErrForbidden.
func TestWhoMayDoWhat(t *testing.T) {
	type F = authFixture
	tests := []struct {
		name string
		run  func(f *F) error
		want error
	}{
		// appear in All Locations, see metadata and live state: view
		{"viewer may view the system", func(f *F) error { return f.snap().Require(f.friend, PermView, f.sys) }, nil},
		{"stranger cannot view the system and gets not found, not forbidden", func(f *F) error { return f.snap().Require(f.stranger, PermView, f.sys) }, ErrNotFound},
		{"unverified grantee cannot view the system", func(f *F) error { return f.snap().Require(f.unverified, PermView, f.sys) }, ErrNotFound},
		{"support may view any system", func(f *F) error { return f.snap().Require(f.support, PermView, f.sys) }, nil},

		// read panel telemetry and history: data
		{"data role may read telemetry", func(f *F) error { return f.snap().Require(f.monitor, PermData, f.sys) }, nil},
		{"viewer may not read telemetry", func(f *F) error { return f.snap().Require(f.friend, PermData, f.sys) }, ErrForbidden},
		{"sales member (customer type without data) may not read telemetry", func(f *F) error { return f.snap().Require(f.sales, PermData, f.sys) }, ErrForbidden},

		// grant / revoke viewer or data: share or manage_users
		{"share without manage_users may grant viewer", func(f *F) error {
			return f.try(f.sharer, GrantRole{System: f.sys, To: email("new@example.test"), Role: RoleViewer})
		}, nil},
		{"share without data may not grant data: no escalation (DESIGN §4)", func(f *F) error {
			return f.try(f.sharer, GrantRole{System: f.sys, To: email("new@example.test"), Role: RoleData})
		}, ErrForbidden},
		{"share without manage_users may revoke a viewer", func(f *F) error {
			return f.try(f.sharer, RevokeGrant{System: f.sys, From: email("friend@example.test")})
		}, nil},
		{"user (manage_users) may grant data", func(f *F) error {
			return f.try(f.family, GrantRole{System: f.sys, To: email("new@example.test"), Role: RoleData})
		}, nil},
		{"data role may not grant viewer", func(f *F) error {
			return f.try(f.monitor, GrantRole{System: f.sys, To: email("new@example.test"), Role: RoleViewer})
		}, ErrForbidden},
		{"viewer may not grant viewer", func(f *F) error {
			return f.try(f.friend, GrantRole{System: f.sys, To: email("new@example.test"), Role: RoleViewer})
		}, ErrForbidden},
		{"data role may not revoke a viewer", func(f *F) error {
			return f.try(f.monitor, RevokeGrant{System: f.sys, From: email("friend@example.test")})
		}, ErrForbidden},
		{"stranger granting on a system it cannot view gets not found", func(f *F) error {
			return f.try(f.stranger, GrantRole{System: f.sys, To: email("stranger@example.test"), Role: RoleViewer})
		}, ErrNotFound},

		// grant / revoke user or installer: manage_users
		{"user may grant user", func(f *F) error {
			return f.try(f.family, GrantRole{System: f.sys, To: email("new@example.test"), Role: RoleUser})
		}, nil},
		{"user may not grant installer: it carries add_gateway, delete_device and firmware, which a user lacks", func(f *F) error {
			return f.try(f.family, GrantRole{System: f.sys, To: email("new@example.test"), Role: RoleInstaller})
		}, ErrForbidden},
		{"installer may grant installer", func(f *F) error {
			return f.try(f.inst, GrantRole{System: f.sys, To: email("new@example.test"), Role: RoleInstaller})
		}, nil},
		{"nobody grants itself a role, not even one it may grant others", func(f *F) error {
			return f.try(f.inst, GrantRole{System: f.sys, To: email("inst@example.test"), Role: RoleViewer})
		}, ErrForbidden},
		{"an admin may not grant itself either", func(f *F) error {
			return f.try(f.partner, GrantRole{System: f.sys, To: email("partner@example.test"), Role: RoleInstaller})
		}, ErrForbidden},
		{"installer may revoke a user", func(f *F) error {
			return f.try(f.inst, RevokeGrant{System: f.sys, From: email("family@example.test")})
		}, nil},
		{"share without manage_users may not grant user", func(f *F) error {
			return f.try(f.sharer, GrantRole{System: f.sys, To: email("new@example.test"), Role: RoleUser})
		}, ErrForbidden},
		{"share without manage_users may not revoke a user", func(f *F) error {
			return f.try(f.sharer, RevokeGrant{System: f.sys, From: email("family@example.test")})
		}, ErrForbidden},
		{"share without manage_users may not upgrade a viewer to user", func(f *F) error {
			return f.try(f.sharer, GrantRole{System: f.sys, To: email("friend@example.test"), Role: RoleUser})
		}, ErrForbidden},
		{"org_admin of the installer org may grant installer to another org", func(f *F) error {
			nb := f.account("boss@newco.test")
			newco := f.harness.org(nb, "NewCo")
			return f.try(f.boss, GrantRole{System: f.sys, To: OrgPrincipal(newco), Role: RoleInstaller})
		}, nil},

		// grant / revoke admin, transfer ownership: owner or admin (transfer: owner)
		{"installer may not grant admin", func(f *F) error {
			return f.try(f.inst, GrantRole{System: f.sys, To: email("new@example.test"), Role: RoleAdmin})
		}, ErrForbidden},
		{"admin may grant admin", func(f *F) error {
			return f.try(f.partner, GrantRole{System: f.sys, To: email("new@example.test"), Role: RoleAdmin})
		}, nil},
		{"owner may revoke an admin", func(f *F) error {
			return f.try(f.home, RevokeGrant{System: f.sys, From: email("partner@example.test")})
		}, nil},
		{"user may not revoke an admin", func(f *F) error {
			return f.try(f.family, RevokeGrant{System: f.sys, From: email("partner@example.test")})
		}, ErrForbidden},
		{"user may not demote an admin by granting again", func(f *F) error {
			return f.try(f.family, GrantRole{System: f.sys, To: email("partner@example.test"), Role: RoleViewer})
		}, ErrForbidden},
		{"owner may transfer ownership", func(f *F) error {
			return f.try(f.home, TransferOwnership{System: f.sys, To: "buyer@example.test"})
		}, nil},
		{"admin may not transfer ownership", func(f *F) error {
			return f.try(f.partner, TransferOwnership{System: f.sys, To: "partner@example.test"})
		}, ErrForbidden},
		{"support may transfer ownership", func(f *F) error {
			return f.try(f.support, TransferOwnership{System: f.sys, To: "buyer@example.test"})
		}, nil},
		{"owner grant cannot be revoked, not even by the owner", func(f *F) error {
			return f.try(f.home, RevokeGrant{System: f.sys, From: email("home@example.test")})
		}, ErrOwnerGrant},
		{"owner grant cannot be revoked by an admin", func(f *F) error {
			return f.try(f.partner, RevokeGrant{System: f.sys, From: email("HOME@example.test")})
		}, ErrOwnerGrant},
		{"owner grant cannot be revoked by support", func(f *F) error {
			return f.try(f.support, RevokeGrant{System: f.sys, From: email("home@example.test")})
		}, ErrOwnerGrant},
		{"owner grant cannot be replaced by an ordinary grant", func(f *F) error {
			return f.try(f.partner, GrantRole{System: f.sys, To: email("home@example.test"), Role: RoleViewer})
		}, ErrOwnerGrant},
		{"ownership is not a grantable role", func(f *F) error {
			return f.try(f.home, GrantRole{System: f.sys, To: email("new@example.test"), Role: RoleOwner})
		}, ErrInvalid},
		{"owner may delete the system", func(f *F) error { return f.try(f.home, DeleteSystem{System: f.sys}) }, nil},
		{"admin may not delete the system", func(f *F) error { return f.try(f.partner, DeleteSystem{System: f.sys}) }, ErrForbidden},

		// add / remove a gateway: add_gateway; delete a device; firmware
		{"installer may add a gateway", func(f *F) error { return f.snap().Require(f.inst, PermAddGateway, f.sys) }, nil},
		{"technician whose customer type has add_gateway may add a gateway", func(f *F) error { return f.snap().Require(f.tech, PermAddGateway, f.sys) }, nil},
		{"user may not add a gateway", func(f *F) error { return f.snap().Require(f.family, PermAddGateway, f.sys) }, ErrForbidden},
		{"gateway added by installer (add_gateway)", func(f *F) error {
			return f.try(f.inst, AddGateway{System: f.sys, Serial: "GW-1", KeyHash: secret("k")})
		}, nil},
		{"gateway added by a technician whose customer type has add_gateway", func(f *F) error {
			return f.try(f.tech, AddGateway{System: f.sys, Serial: "GW-1", KeyHash: secret("k")})
		}, nil},
		{"admin may add a gateway", func(f *F) error {
			return f.try(f.partner, AddGateway{System: f.sys, Serial: "GW-1", KeyHash: secret("k")})
		}, nil},
		{"support may add a gateway", func(f *F) error {
			return f.try(f.support, AddGateway{System: f.sys, Serial: "GW-1", KeyHash: secret("k")})
		}, nil},
		{"user without add_gateway cannot add a gateway", func(f *F) error {
			return f.try(f.family, AddGateway{System: f.sys, Serial: "GW-1", KeyHash: secret("k")})
		}, ErrForbidden},
		{"member whose customer type lacks add_gateway cannot add a gateway", func(f *F) error {
			return f.try(f.sales, AddGateway{System: f.sys, Serial: "GW-1", KeyHash: secret("k")})
		}, ErrForbidden},
		{"stranger adding a gateway to a system it cannot view gets not found", func(f *F) error {
			return f.try(f.stranger, AddGateway{System: f.sys, Serial: "GW-1", KeyHash: secret("k")})
		}, ErrNotFound},
		{"adding a gateway to a deleted system is not found", func(f *F) error {
			f.must(f.home, DeleteSystem{System: f.sys})
			return f.try(f.support, AddGateway{System: f.sys, Serial: "GW-1", KeyHash: secret("k")})
		}, ErrNotFound},
		{"serial unique within a system", func(f *F) error {
			f.addGateway(f.inst, f.sys, "aa:bb:cc:dd:ee:ff")
			return f.try(f.tech, AddGateway{System: f.sys, Serial: "AA:BB:CC:DD:EE:FF", KeyHash: secret("k")})
		}, ErrExists},
		{"a gateway id in use is refused", func(f *F) error {
			id := f.addGateway(f.inst, f.sys, "GW-1")
			return f.try(f.inst, AddGateway{Gateway: id, System: f.sys, Serial: "GW-2", KeyHash: secret("k")})
		}, ErrExists},
		{"a gateway without a key hash is invalid", func(f *F) error {
			return f.try(f.inst, AddGateway{System: f.sys, Serial: "GW-1"})
		}, ErrInvalid},
		{"a malformed serial is invalid", func(f *F) error {
			return f.try(f.inst, AddGateway{System: f.sys, Serial: "GW/1", KeyHash: secret("k")})
		}, ErrInvalid},
		{"installer may remove a gateway", func(f *F) error {
			f.addGateway(f.tech, f.sys, "GW-1")
			return f.try(f.inst, RemoveGateway{System: f.sys, Serial: "gw-1"})
		}, nil},
		{"user without add_gateway cannot remove a gateway", func(f *F) error {
			f.addGateway(f.tech, f.sys, "GW-1")
			return f.try(f.family, RemoveGateway{System: f.sys, Serial: "GW-1"})
		}, ErrForbidden},
		{"stranger removing a gateway of a system it cannot view gets not found", func(f *F) error {
			f.addGateway(f.tech, f.sys, "GW-1")
			return f.try(f.stranger, RemoveGateway{System: f.sys, Serial: "GW-1"})
		}, ErrNotFound},
		{"removing a serial the system does not have is not found", func(f *F) error {
			return f.try(f.inst, RemoveGateway{System: f.sys, Serial: "GW-404"})
		}, ErrNotFound},
		{"installer may delete a device", func(f *F) error { return f.snap().Require(f.inst, PermDeleteDevice, f.sys) }, nil},
		{"user may not delete a device", func(f *F) error { return f.snap().Require(f.family, PermDeleteDevice, f.sys) }, ErrForbidden},
		{"admin may run firmware actions", func(f *F) error { return f.snap().Require(f.partner, PermFirmware, f.sys) }, nil},
		{"data role may not run firmware actions", func(f *F) error { return f.snap().Require(f.monitor, PermFirmware, f.sys) }, ErrForbidden},
		{"stranger asking for firmware on a system it cannot view gets not found", func(f *F) error { return f.snap().Require(f.stranger, PermFirmware, f.sys) }, ErrNotFound},

		// create a system: create_plant in the org
		{"member whose customer type has create_plant may commission under its org", func(f *F) error {
			return f.try(f.tech, Commission{System: 50, GUID: "NEW-1", Org: f.org, OwnerEmail: "x@example.test"})
		}, nil},
		{"member without create_plant may not commission", func(f *F) error {
			return f.try(f.sales, Commission{System: 50, GUID: "NEW-1", Org: f.org, OwnerEmail: "x@example.test"})
		}, ErrForbidden},
		{"org_admin may commission", func(f *F) error {
			return f.try(f.boss, Commission{System: 50, GUID: "NEW-1", Org: f.org, OwnerEmail: "x@example.test"})
		}, nil},
		{"owner of a system may not commission under the installer's org", func(f *F) error {
			return f.try(f.home, Commission{System: 50, GUID: "NEW-1", Org: f.org, OwnerEmail: "x@example.test"})
		}, ErrForbidden},
		{"commissioning a GUID in use is refused", func(f *F) error {
			sys, _ := f.snap().System(f.sys)
			return f.try(f.boss, Commission{System: 50, GUID: sys.GUID, Org: f.org, OwnerEmail: "x@example.test"})
		}, ErrExists},
		{"commissioning a system id in use is refused", func(f *F) error {
			return f.try(f.boss, Commission{System: f.sys, GUID: "NEW-1", Org: f.org, OwnerEmail: "x@example.test"})
		}, ErrExists},
		{"commissioning under a missing org is not found", func(f *F) error {
			return f.try(f.boss, Commission{System: 50, GUID: "NEW-1", Org: 77, OwnerEmail: "x@example.test"})
		}, ErrNotFound},

		// org member management: org_admin
		{"org_admin may add a member", func(f *F) error {
			return f.try(f.boss, PutMember{Org: f.org, Email: "new@sunny.test", Role: "tech"})
		}, nil},
		{"member may not add a member", func(f *F) error {
			return f.try(f.tech, PutMember{Org: f.org, Email: "new@sunny.test", Role: "tech"})
		}, ErrForbidden},
		{"member may not make itself org_admin", func(f *F) error {
			return f.try(f.tech, PutMember{Org: f.org, Email: "tech@sunny.test", Role: OrgAdmin})
		}, ErrForbidden},
		{"support may manage any org", func(f *F) error {
			return f.try(f.support, PutMember{Org: f.org, Email: "new@sunny.test", Role: OrgAdmin})
		}, nil},
		{"org_admin may remove a member", func(f *F) error {
			return f.try(f.boss, RemoveMember{Org: f.org, Email: "sales@sunny.test"})
		}, nil},
		{"member may leave its org", func(f *F) error {
			return f.try(f.tech, RemoveMember{Org: f.org, Email: "Tech@Sunny.test"})
		}, nil},
		{"member may not remove another member", func(f *F) error {
			return f.try(f.tech, RemoveMember{Org: f.org, Email: "sales@sunny.test"})
		}, ErrForbidden},
		{"last org_admin cannot leave", func(f *F) error {
			return f.try(f.boss, RemoveMember{Org: f.org, Email: "boss@sunny.test"})
		}, ErrLastOrgAdmin},
		{"last org_admin cannot be demoted", func(f *F) error {
			return f.try(f.boss, PutMember{Org: f.org, Email: "boss@sunny.test", Role: "tech"})
		}, ErrLastOrgAdmin},
		{"an org_admin may step down once another verified org_admin exists", func(f *F) error {
			f.must(f.boss, PutMember{Org: f.org, Email: "tech@sunny.test", Role: OrgAdmin})
			return f.try(f.boss, PutMember{Org: f.org, Email: "boss@sunny.test", Role: "tech"})
		}, nil},
		{"a pending org_admin does not count as the other org_admin", func(f *F) error {
			f.must(f.boss, PutMember{Org: f.org, Email: "nobody@sunny.test", Role: OrgAdmin})
			return f.try(f.boss, RemoveMember{Org: f.org, Email: "boss@sunny.test"})
		}, ErrLastOrgAdmin},
		{"membership with a member role that does not exist is refused", func(f *F) error {
			return f.try(f.boss, PutMember{Org: f.org, Email: "new@sunny.test", Role: "ghost"})
		}, ErrNotFound},
		{"removing someone who is no member is not found", func(f *F) error {
			return f.try(f.boss, RemoveMember{Org: f.org, Email: "nobody@sunny.test"})
		}, ErrNotFound},
		{"org_admin may create a member role", func(f *F) error {
			return f.try(f.boss, PutMemberRole{Org: f.org, Name: "viewer-only", Perms: PermView})
		}, nil},
		{"member may not edit member roles", func(f *F) error {
			return f.try(f.tech, PutMemberRole{Org: f.org, Name: "tech", Perms: MemberPerms})
		}, ErrForbidden},
		{"member role with owner-level permissions is refused", func(f *F) error {
			return f.try(f.boss, PutMemberRole{Org: f.org, Name: "super", Perms: PermView | PermAdmin})
		}, ErrInvalid},
		{"member role named org_admin is refused", func(f *F) error {
			return f.try(f.boss, PutMemberRole{Org: f.org, Name: OrgAdmin, Perms: PermView})
		}, ErrInvalid},
		{"member role in use cannot be deleted", func(f *F) error {
			return f.try(f.boss, DeleteMemberRole{Org: f.org, Name: "tech"})
		}, ErrRoleInUse},
		{"member role nobody holds can be deleted", func(f *F) error {
			f.must(f.boss, PutMemberRole{Org: f.org, Name: "temp", Perms: PermView})
			return f.try(f.boss, DeleteMemberRole{Org: f.org, Name: "temp"})
		}, nil},
		{"member role held only by removed members can be deleted", func(f *F) error {
			f.must(f.boss, RemoveMember{Org: f.org, Email: "sales@sunny.test"})
			return f.try(f.boss, DeleteMemberRole{Org: f.org, Name: "sales"})
		}, nil},

		// accounts and organizations
		{"an unverified account may not act", func(f *F) error {
			return f.try(f.unverified, CreateOrg{Org: 40, Name: "Squat"})
		}, ErrUnverified},
		{"any verified account may create an org and becomes its org_admin", func(f *F) error {
			if err := f.try(f.stranger, CreateOrg{Org: 40, Name: "Own Co"}); err != nil {
				return err
			}
			if !f.snap().IsOrgAdmin(f.stranger, 40) {
				f.t.Fatal("creator is not org_admin")
			}
			return nil
		}, nil},
		{"creating an org with an id in use is refused", func(f *F) error {
			return f.try(f.stranger, CreateOrg{Org: f.org, Name: "Clash"})
		}, ErrExists},
		{"registering an e-mail a verified account holds is refused", func(f *F) error {
			return f.try(Platform, RegisterAccount{Account: 90, Email: "HOME@example.test"})
		}, ErrExists},
		{"registering an e-mail only an unverified account holds is allowed", func(f *F) error {
			return f.try(Platform, RegisterAccount{Account: 90, Email: "unverified@example.test"})
		}, nil},
		{"an account does not verify itself without the mailed code", func(f *F) error {
			return f.try(f.unverified, VerifyAccount{Account: f.unverified})
		}, ErrInvalid},
		{"nobody else but support verifies an account", func(f *F) error {
			return f.try(f.stranger, VerifyAccount{Account: f.unverified})
		}, ErrForbidden},
		{"only support makes support accounts", func(f *F) error {
			return f.try(f.boss, SetSupport{Account: f.boss, Support: true})
		}, ErrForbidden},
		{"support makes support accounts", func(f *F) error {
			return f.try(f.support, SetSupport{Account: f.boss, Support: true})
		}, nil},

		// credentials: the account itself, or fleetscope (Platform)
		{"an account may issue itself a token", func(f *F) error {
			return f.try(f.home, IssueToken{Account: f.home, ID: "t1", Hash: secret("s")})
		}, nil},
		{"an unverified account may issue itself a token (to log in and verify)", func(f *F) error {
			return f.try(f.unverified, IssueToken{Account: f.unverified, ID: "t1", Hash: secret("s")})
		}, nil},
		{"Platform issues the token at registration", func(f *F) error {
			return f.try(Platform, IssueToken{Account: f.unverified, ID: "t1", Hash: secret("s")})
		}, nil},
		{"an account may not issue a token for another", func(f *F) error {
			return f.try(f.stranger, IssueToken{Account: f.home, ID: "t1", Hash: secret("s")})
		}, ErrForbidden},
		{"support may not issue a token for another", func(f *F) error {
			return f.try(f.support, IssueToken{Account: f.home, ID: "t1", Hash: secret("s")})
		}, ErrForbidden},
		{"a token of an account that does not exist is not found", func(f *F) error {
			return f.try(Platform, IssueToken{Account: 99, ID: "t1", Hash: secret("s")})
		}, ErrNotFound},
		{"a token id in use is refused", func(f *F) error {
			f.must(f.home, IssueToken{Account: f.home, ID: "t1", Hash: secret("s")})
			return f.try(f.friend, IssueToken{Account: f.friend, ID: "t1", Hash: secret("s2")})
		}, ErrExists},
		{"a token id with the _ separator is invalid", func(f *F) error {
			return f.try(f.home, IssueToken{Account: f.home, ID: "a_b", Hash: secret("s")})
		}, ErrInvalid},
		{"a token without a secret hash is invalid", func(f *F) error {
			return f.try(f.home, IssueToken{Account: f.home, ID: "t1"})
		}, ErrInvalid},
		{"an account may revoke its own token", func(f *F) error {
			f.must(f.home, IssueToken{Account: f.home, ID: "t1", Hash: secret("s")})
			return f.try(f.home, RevokeToken{ID: "t1"})
		}, nil},
		{"another account's token is not found to a stranger", func(f *F) error {
			f.must(f.home, IssueToken{Account: f.home, ID: "t1", Hash: secret("s")})
			return f.try(f.stranger, RevokeToken{ID: "t1"})
		}, ErrNotFound},
		{"support may revoke any token", func(f *F) error {
			f.must(f.home, IssueToken{Account: f.home, ID: "t1", Hash: secret("s")})
			return f.try(f.support, RevokeToken{ID: "t1"})
		}, nil},
		{"revoking a revoked token is not found", func(f *F) error {
			f.must(f.home, IssueToken{Account: f.home, ID: "t1", Hash: secret("s")})
			f.must(f.home, RevokeToken{ID: "t1"})
			return f.try(f.home, RevokeToken{ID: "t1"})
		}, ErrNotFound},
		{"an account may set its own password", func(f *F) error {
			return f.try(f.unverified, SetPassword{Account: f.unverified, Hash: []byte("pbkdf2")})
		}, nil},
		{"nobody else sets an account's password, not even support", func(f *F) error {
			return f.try(f.support, SetPassword{Account: f.home, Hash: []byte("pbkdf2")})
		}, ErrForbidden},
		{"a password hash over the limit is invalid", func(f *F) error {
			return f.try(f.home, SetPassword{Account: f.home, Hash: make([]byte, MaxPasswordHash+1)})
		}, ErrInvalid},
		{"an account may ask for a new verification code", func(f *F) error {
			return f.try(f.unverified, SetVerificationCode{Account: f.unverified, Hash: secret("1"), ExpiresAt: t0.Add(time.Hour)})
		}, nil},
		{"another account may not set a verification code", func(f *F) error {
			return f.try(f.stranger, SetVerificationCode{Account: f.unverified, Hash: secret("1"), ExpiresAt: t0.Add(time.Hour)})
		}, ErrForbidden},
		{"a verification code expiring in the past is invalid", func(f *F) error {
			return f.try(Platform, SetVerificationCode{Account: f.unverified, Hash: secret("1"), ExpiresAt: t0})
		}, ErrInvalid},
		{"an account verifies itself with its code", func(f *F) error {
			f.must(Platform, SetVerificationCode{Account: f.unverified, Hash: secret("123456"), ExpiresAt: t0.Add(time.Hour)})
			return f.try(f.unverified, VerifyAccount{Account: f.unverified, Code: secret("123456")})
		}, nil},
		{"a wrong verification code is refused", func(f *F) error {
			f.must(Platform, SetVerificationCode{Account: f.unverified, Hash: secret("123456"), ExpiresAt: t0.Add(time.Hour)})
			return f.try(f.unverified, VerifyAccount{Account: f.unverified, Code: secret("654321")})
		}, ErrInvalid},
		{"a verification code when none is pending is refused", func(f *F) error {
			return f.try(f.unverified, VerifyAccount{Account: f.unverified, Code: secret("123456")})
		}, ErrInvalid},
		{"registering with a token id in use is refused", func(f *F) error {
			f.must(f.home, IssueToken{Account: f.home, ID: "t1", Hash: secret("s")})
			return f.try(Platform, RegisterAccount{Account: 90, Email: "new@example.test", TokenID: "t1", TokenHash: secret("s")})
		}, ErrExists},
		{"registering with a verification code already expired is invalid", func(f *F) error {
			return f.try(Platform, RegisterAccount{Account: 90, Email: "new@example.test", CodeHash: secret("1"), CodeExpires: t0.Add(-time.Second)})
		}, ErrInvalid},

		// grants in general
		{"a grantee may give up its own grant", func(f *F) error {
			return f.try(f.friend, RevokeGrant{System: f.sys, From: email("friend@example.test")})
		}, nil},
		{"revoking a grant nobody holds is not found", func(f *F) error {
			return f.try(f.home, RevokeGrant{System: f.sys, From: email("nobody@example.test")})
		}, ErrNotFound},
		{"an expired temporary grant gives no rights", func(f *F) error {
			f.must(f.home, GrantRole{System: f.sys, To: email("temp@example.test"), Role: RoleUser, ExpiresAt: t0.Add(time.Minute)})
			temp := f.account("temp@example.test")
			f.advance(time.Minute)
			return f.try(temp, GrantRole{System: f.sys, To: email("new@example.test"), Role: RoleViewer})
		}, ErrNotFound},
		{"a grant expiring in the past is refused", func(f *F) error {
			return f.try(f.home, GrantRole{System: f.sys, To: email("new@example.test"), Role: RoleViewer, ExpiresAt: t0.Add(-time.Second)})
		}, ErrInvalid},
		{"a grant to an org that does not exist is not found", func(f *F) error {
			return f.try(f.home, GrantRole{System: f.sys, To: OrgPrincipal(77), Role: RoleViewer})
		}, ErrNotFound},
		{"a grant to a malformed e-mail is invalid", func(f *F) error {
			return f.try(f.home, GrantRole{System: f.sys, To: email("not-an-email"), Role: RoleViewer})
		}, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newAuthFixture(t)
			f.wantErr(tc.run(f), tc.want)
		})
	}
}

// TestDoPersists checks the contract of Do with persistence: the events go
// to persist stamped, in order, before they apply, and a persistence failure
// applies nothing.
func TestDoPersists(t *testing.T) {
	f := newFixture(t)
	var got []Event
	op := TransferOwnership{System: f.sys, To: "buyer@example.test"}
	if _, err := f.x.Do(f.home, op, func(evs []Event) error {
		if !f.snap().Perms(f.home, f.sys).Has(PermOwner) {
			t.Error("events applied before persist returned")
		}
		got = append(got, evs...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Kind != KindOwnerSet || got[1].Kind != KindGrantPut || got[1].Role != RoleAdmin {
		t.Fatalf("transfer events: %+v", got)
	}
	for i, ev := range got {
		if ev.Actor != f.home || ev.Stamp.IsZero() || (i > 0 && !ev.Stamp.After(got[i-1].Stamp)) {
			t.Fatalf("event %d: actor %d stamp %+v", i, ev.Actor, ev.Stamp)
		}
	}

	failing := func([]Event) error { return errTest }
	before := f.snap()
	if _, err := f.x.Do(f.boss, PutMember{Org: f.org, Email: "x@sunny.test", Role: "tech"}, failing); err == nil {
		t.Fatal("Do succeeded although persist failed")
	}
	if f.snap() != before {
		t.Fatal("a failed persist published a snapshot")
	}
}

var errTest = errorString("persistence down")

type errorString string

func (e errorString) Error() string { return string(e) }
