package acl

import (
	"fmt"
	"time"
)

// Op is a change a user asks for — the operations behind the HTTP API. An
// op is authorized against a snapshot and expands into the events that carry
// it out (one op may need several events: CreateOrg makes the org and its
// first org_admin). The op types are:
//
//	RegisterAccount, VerifyAccount, SetSupport
//	IssueToken, RevokeToken, SetPassword, SetVerificationCode (cred.go)
//	CreateOrg, PutMember, RemoveMember, PutMemberRole, DeleteMemberRole
//	Commission, DeleteSystem, GrantRole, RevokeGrant, TransferOwnership
//	AddGateway, RemoveGateway (gateway.go)
//
// Authorization follows DESIGN §4 ("who may do what"); each op's comment
// says what it needs. A support account passes every permission check, but
// not the consistency rules (the owner's grant, a member role in use, taken
// ids). An account that cannot act (unverified, unknown) gets ErrUnverified
// or ErrForbidden — except in the ops by which it proves itself (VerifyAccount,
// IssueToken, SetPassword, SetVerificationCode), which it may do to itself
// unverified; a system the actor cannot view is ErrNotFound.
type Op interface {
	plan(s *Snapshot, a actor) ([]Event, error)
}

// Authorize reports whether actor may do op now: nil, or the error Do would
// return (ErrForbidden, ErrNotFound, ErrInvalid, ...).
func (s *Snapshot) Authorize(actor AccountID, op Op) error {
	_, err := s.plan(actor, op)
	return err
}

func (s *Snapshot) plan(id AccountID, op Op) ([]Event, error) {
	a := actor{id: id}
	a.acct, a.email = s.acting(id)
	evs, err := op.plan(s, a)
	for i := range evs {
		evs[i].Actor = id
	}
	return evs, err
}

// actor is who asks for an op; acct is nil if the account cannot act.
type actor struct {
	id    AccountID
	acct  *acctRec
	email *emailRec
}

func (a actor) support() bool { return a.acct != nil && a.acct.support }

// mustAct fails unless the actor may act at all.
func (s *Snapshot) mustAct(a actor) error {
	if a.acct != nil {
		return nil
	}
	if r := s.accounts.get(uint32(a.id)); r != nil && r.pid != 0 && !r.verified {
		return ErrUnverified
	}
	return fmt.Errorf("%w: account %d cannot act", ErrForbidden, a.id)
}

// needOnSystem checks the actor holds p on an existing system, distinguishing
// "cannot see it" (ErrNotFound) from "sees it but may not" (ErrForbidden).
func (s *Snapshot) needOnSystem(a actor, p Perm, sys SystemID) (*sysRec, error) {
	if err := s.mustAct(a); err != nil {
		return nil, err
	}
	r := s.systems.get(uint32(sys))
	if !r.live() {
		return nil, fmt.Errorf("%w: system %d", ErrNotFound, sys)
	}
	return r, s.Require(a.id, p, sys)
}

// needOrgAdmin checks the actor manages an existing org.
func (s *Snapshot) needOrgAdmin(a actor, org OrgID) (*orgRec, error) {
	if err := s.mustAct(a); err != nil {
		return nil, err
	}
	o := s.orgs.get(uint32(org))
	if o == nil || o.nameStamp.IsZero() {
		return nil, fmt.Errorf("%w: org %d", ErrNotFound, org)
	}
	if !s.IsOrgAdmin(a.id, org) {
		return nil, fmt.Errorf("%w: managing org %d needs %s", ErrForbidden, org, OrgAdmin)
	}
	return o, nil
}

// RegisterAccount creates an unverified account (POST /v1/accounts). Anyone
// may; the actor is ignored. The e-mail must not belong to a verified
// account; an unverified registration of the same e-mail does not block it
// (see the package doc: the verified account wins the e-mail).
//
// The account's name and first credentials come with it, so that one Do
// stores all or nothing: each is optional, and secrets arrive hashed by the
// caller (see IssueToken, SetPassword, SetVerificationCode).
type RegisterAccount struct {
	Account AccountID // allocated by the caller, unused
	Email   string
	Name    string // display name; "" = none

	PasswordHash []byte    // nil: no password
	TokenID      string    // "": no token
	TokenHash    [32]byte  // SHA-256 of the token's secret
	TokenExpires time.Time // zero: DefaultTokenTTL from now (see IssueToken)
	TokenAgent   string
	CodeHash     [32]byte  // SHA-256 of the verification code; zero: no code
	CodeExpires  time.Time // after the snapshot's time, if CodeHash is set
}

func (op RegisterAccount) plan(s *Snapshot, _ actor) ([]Event, error) {
	email := NormalizeEmail(op.Email)
	if err := checkAccount(op.Account); err != nil {
		return nil, err
	}
	if err := checkEmail(email); err != nil {
		return nil, err
	}
	if reservedEmail(email) {
		return nil, fmt.Errorf("%w: addresses of %s are the platform's and cannot be registered", ErrInvalid, ReservedDomain)
	}
	if a := s.accounts.get(uint32(op.Account)); a != nil && a.pid != 0 {
		return nil, fmt.Errorf("%w: account %d", ErrExists, op.Account)
	}
	if acc, ok := s.AccountByEmail(email); ok && acc.Verified {
		return nil, fmt.Errorf("%w: e-mail %s", ErrExists, email)
	}
	evs := []Event{{Kind: KindAccountRegister, Account: op.Account, Email: email}}
	if op.Name != "" {
		if err := checkText("account name", op.Name, maxName); err != nil {
			return nil, err
		}
		evs = append(evs, Event{Kind: KindAccountName, Account: op.Account, Name: op.Name})
	}
	if op.PasswordHash != nil {
		if err := checkPasswordHash(len(op.PasswordHash)); err != nil {
			return nil, err
		}
		evs = append(evs, Event{Kind: KindPasswordSet, Account: op.Account, PasswordHash: string(op.PasswordHash)})
	}
	if op.TokenID != "" {
		if err := s.newToken(op.TokenID, op.TokenHash); err != nil {
			return nil, err
		}
		meta, err := s.tokenMeta(op.TokenID, op.TokenExpires, op.TokenAgent)
		if err != nil {
			return nil, err
		}
		evs = append(evs, Event{Kind: KindTokenPut, Account: op.Account, Token: op.TokenID, Hash: op.TokenHash}, meta)
	}
	if op.CodeHash != ([32]byte{}) {
		ev, err := s.codeEvent(op.Account, op.CodeHash, op.CodeExpires)
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// VerifyAccount marks an account's e-mail verified (POST
// /v1/accounts/verify) and clears its pending verification code, which is
// thus used once. The account itself or support may.
//
// Code is the SHA-256 of the code the user sent: it must match the pending
// code (compared in constant time) before it expires, or the op fails with
// ErrInvalid. Zero skips the check — for support verifying by hand, or a
// caller that checked the code itself.
type VerifyAccount struct {
	Account AccountID
	Code    [32]byte
}

func (op VerifyAccount) plan(s *Snapshot, a actor) ([]Event, error) {
	r := s.accounts.get(uint32(op.Account))
	if r == nil || r.pid == 0 {
		return nil, fmt.Errorf("%w: account %d", ErrNotFound, op.Account)
	}
	if a.id != op.Account && !a.support() {
		return nil, fmt.Errorf("%w: only the account itself or support verifies it", ErrForbidden)
	}
	// The account itself proves its e-mail with the code mailed to it:
	// without one, anyone could register a homeowner's address and verify
	// it. Support verifies after checking who asks, outside this system.
	if op.Code == ([32]byte{}) && !a.support() {
		return nil, fmt.Errorf("%w: verification needs the code sent to the e-mail", ErrInvalid)
	}
	if op.Code != ([32]byte{}) {
		if err := s.checkCodeHash(op.Account, op.Code); err != nil {
			return nil, err
		}
	}
	evs := []Event{{Kind: KindAccountVerify, Account: op.Account, Verified: true}}
	if _, _, pending := s.VerificationCode(op.Account); pending {
		evs = append(evs, Event{Kind: KindCodeSet, Account: op.Account})
	}
	return evs, nil
}

// SetSupport makes an account a platform support account or not. Only
// support may; the first support account comes from configuration, applied
// as Platform events.
type SetSupport struct {
	Account AccountID
	Support bool
}

func (op SetSupport) plan(s *Snapshot, a actor) ([]Event, error) {
	if err := s.mustAct(a); err != nil {
		return nil, err
	}
	if !a.support() {
		return nil, fmt.Errorf("%w: only support manages support accounts", ErrForbidden)
	}
	if r := s.accounts.get(uint32(op.Account)); r == nil || r.pid == 0 {
		return nil, fmt.Errorf("%w: account %d", ErrNotFound, op.Account)
	}
	return []Event{{Kind: KindAccountSupport, Account: op.Account, Support: op.Support}}, nil
}

// CreateOrg creates an organization whose first org_admin is the actor (POST
// /v1/orgs). Any acting account may.
type CreateOrg struct {
	Org  OrgID // allocated by the caller, unused
	Name string
}

func (op CreateOrg) plan(s *Snapshot, a actor) ([]Event, error) {
	if err := s.mustAct(a); err != nil {
		return nil, err
	}
	if err := checkOrg(op.Org); err != nil {
		return nil, err
	}
	if err := checkName("org name", op.Name); err != nil {
		return nil, err
	}
	if o := s.orgs.get(uint32(op.Org)); o != nil && !o.nameStamp.IsZero() {
		return nil, fmt.Errorf("%w: org %d", ErrExists, op.Org)
	}
	return []Event{
		{Kind: KindOrgPut, Org: op.Org, Name: op.Name},
		{Kind: KindMemberPut, Org: op.Org, Email: a.email.email, OrgRole: OrgAdmin},
	}, nil
}

// PutMember adds a member or changes a member's org role (POST
// /v1/orgs/{org}/members). Needs org_admin. Role is OrgAdmin or an existing
// member role. Like a grant, it applies once the e-mail is verified.
type PutMember struct {
	Org   OrgID
	Email string
	Role  string
}

func (op PutMember) plan(s *Snapshot, a actor) ([]Event, error) {
	o, err := s.needOrgAdmin(a, op.Org)
	if err != nil {
		return nil, err
	}
	email := NormalizeEmail(op.Email)
	if err := checkEmail(email); err != nil {
		return nil, err
	}
	if err := checkOrgRole(op.Role); err != nil {
		return nil, err
	}
	if op.Role != OrgAdmin {
		if i, ok := o.role(op.Role); !ok || o.roles[i].deleted {
			return nil, fmt.Errorf("%w: member role %q in org %d", ErrNotFound, op.Role, op.Org)
		}
		if err := s.keepsAdmin(o, op.Org, email); err != nil {
			return nil, err
		}
	}
	return []Event{{Kind: KindMemberPut, Org: op.Org, Email: email, OrgRole: op.Role}}, nil
}

// keepsAdmin fails if the org's only acting org_admins are email (so that
// changing email's membership would leave nobody to manage the org). It is
// only called when email's membership is about to stop being org_admin.
func (s *Snapshot) keepsAdmin(o *orgRec, org OrgID, email string) error {
	pid := s.emailIx.get(email, s.emailKey)
	m, ok := s.memberReg(o, pid)
	if !ok || m.role != OrgAdmin {
		return nil
	}
	for _, m := range o.members {
		if !m.deleted && m.role == OrgAdmin && m.pid != pid && !s.pending(m.pid) {
			return nil
		}
	}
	return fmt.Errorf("%w %d", ErrLastOrgAdmin, org)
}

// RemoveMember ends a membership (DELETE /v1/orgs/{org}/members/{email}).
// Needs org_admin — or the member itself, leaving.
type RemoveMember struct {
	Org   OrgID
	Email string
}

func (op RemoveMember) plan(s *Snapshot, a actor) ([]Event, error) {
	if err := s.mustAct(a); err != nil {
		return nil, err
	}
	email := NormalizeEmail(op.Email)
	o := s.orgs.get(uint32(op.Org))
	if o == nil || o.nameStamp.IsZero() {
		return nil, fmt.Errorf("%w: org %d", ErrNotFound, op.Org)
	}
	if a.email.email != email && !s.IsOrgAdmin(a.id, op.Org) {
		return nil, fmt.Errorf("%w: managing org %d needs %s", ErrForbidden, op.Org, OrgAdmin)
	}
	pid := s.emailIx.get(email, s.emailKey)
	if _, ok := s.memberReg(o, pid); !ok {
		return nil, fmt.Errorf("%w: %s is no member of org %d", ErrNotFound, email, op.Org)
	}
	if err := s.keepsAdmin(o, op.Org, email); err != nil {
		return nil, err
	}
	return []Event{{Kind: KindMemberDelete, Org: op.Org, Email: email}}, nil
}

// PutMemberRole creates or replaces a member role (PUT
// /v1/orgs/{org}/roles/{name}); a replacement applies to every member
// holding it at once. Needs org_admin. Perms must be within MemberPerms.
type PutMemberRole struct {
	Org   OrgID
	Name  string
	Perms Perm
}

func (op PutMemberRole) plan(s *Snapshot, a actor) ([]Event, error) {
	if _, err := s.needOrgAdmin(a, op.Org); err != nil {
		return nil, err
	}
	if err := checkRoleName(op.Name); err != nil {
		return nil, err
	}
	if !MemberPerms.Has(op.Perms) {
		return nil, fmt.Errorf("%w: a member role holds only %s", ErrInvalid, MemberPerms)
	}
	return []Event{{Kind: KindRolePut, Org: op.Org, Name: op.Name, Perms: op.Perms}}, nil
}

// DeleteMemberRole deletes a member role (DELETE /v1/orgs/{org}/roles/{name}).
// Needs org_admin, and no member may hold the role: deleting it would
// silently strip those members of everything, so the org_admin moves them
// to another role first (ErrRoleInUse).
type DeleteMemberRole struct {
	Org  OrgID
	Name string
}

func (op DeleteMemberRole) plan(s *Snapshot, a actor) ([]Event, error) {
	o, err := s.needOrgAdmin(a, op.Org)
	if err != nil {
		return nil, err
	}
	if i, ok := o.role(op.Name); !ok || o.roles[i].deleted {
		return nil, fmt.Errorf("%w: member role %q in org %d", ErrNotFound, op.Name, op.Org)
	}
	n := 0
	for _, m := range o.members {
		if !m.deleted && m.role == op.Name {
			n++
		}
	}
	if n > 0 {
		return nil, fmt.Errorf("%w: %d members hold %q", ErrRoleInUse, n, op.Name)
	}
	return []Event{{Kind: KindRoleDelete, Org: op.Org, Name: op.Name}}, nil
}

// Commission creates a system under an org (POST /v1/systems): the org gets
// the installer grant and OwnerEmail ownership — an invitation until that
// e-mail is verified. Needs create_plant in the org.
type Commission struct {
	System     SystemID // allocated by the caller, unused
	GUID       string
	Name       string
	Address    string
	Timezone   string
	Monitored  bool
	Org        OrgID
	OwnerEmail string
	// CapacityW is the nameplate DC capacity in W; 0 = unknown.
	CapacityW uint32
}

func (op Commission) plan(s *Snapshot, a actor) ([]Event, error) {
	if err := s.mustAct(a); err != nil {
		return nil, err
	}
	if o, ok := s.Org(op.Org); !ok {
		return nil, fmt.Errorf("%w: org %d", ErrNotFound, op.Org)
	} else if !s.CanInOrg(a.id, PermCreatePlant, o.ID) {
		return nil, fmt.Errorf("%w: commissioning under org %d needs %s", ErrForbidden, op.Org, PermCreatePlant)
	}
	owner := NormalizeEmail(op.OwnerEmail)
	if err := checkEmail(owner); err != nil {
		return nil, fmt.Errorf("owner: %w", err)
	}
	if err := checkSystemText(op.GUID, op.Name, op.Address, op.Timezone); err != nil {
		return nil, err
	}
	if err := checkGUID(op.GUID); err != nil {
		return nil, err
	}
	tz := op.Timezone
	if tz == "" {
		tz = "UTC"
	}
	if _, ok := LoadZone(tz); !ok {
		return nil, fmt.Errorf("%w: timezone %q is not an IANA time zone name (e.g. Europe/Berlin, UTC)", ErrInvalid, tz)
	}
	if err := checkSystem(op.System); err != nil {
		return nil, err
	}
	if r := s.systems.get(uint32(op.System)); r != nil && (r.deleted || r.metaHLC != 0) {
		return nil, fmt.Errorf("%w: system %d", ErrExists, op.System)
	}
	if _, ok := s.SystemByGUID(op.GUID); ok {
		return nil, fmt.Errorf("%w: GUID %q", ErrExists, op.GUID)
	}
	if op.CapacityW > MaxCapacity {
		return nil, fmt.Errorf("%w: capacity %d W over %d W", ErrInvalid, op.CapacityW, MaxCapacity)
	}
	evs := []Event{
		{Kind: KindSystemPut, System: op.System, GUID: op.GUID, Name: op.Name, Address: op.Address,
			Timezone: tz, Monitored: op.Monitored, Org: op.Org},
		{Kind: KindGrantPut, System: op.System, Grantee: OrgPrincipal(op.Org), Role: RoleInstaller},
		{Kind: KindOwnerSet, System: op.System, Email: owner},
	}
	if op.CapacityW > 0 {
		evs = append(evs, Event{Kind: KindSystemCapacity, System: op.System, Capacity: op.CapacityW})
	}
	return evs, nil
}

// EditSystem changes a system's record (PATCH /v1/systems/{id}): its name,
// address, time zone or capacity; nil leaves a field as it is. The GUID,
// the commissioning org and the monitored flag stay. Needs add_gateway —
// the installer's and owner's configuration of the plant — on the system.
type EditSystem struct {
	System    SystemID
	Name      *string
	Address   *string
	Timezone  *string
	CapacityW *uint32
}

func (op EditSystem) plan(s *Snapshot, a actor) ([]Event, error) {
	r, err := s.needOnSystem(a, PermAddGateway, op.System)
	if err != nil {
		return nil, err
	}
	guid, name, address, tz := r.fields()
	changed := false
	for _, f := range []struct {
		to   *string
		dest *string
	}{{op.Name, &name}, {op.Address, &address}, {op.Timezone, &tz}} {
		if f.to != nil && *f.to != *f.dest {
			*f.dest, changed = *f.to, true
		}
	}
	var evs []Event
	if changed {
		if err := checkSystemText(guid, name, address, tz); err != nil {
			return nil, err
		}
		if _, ok := LoadZone(tz); !ok {
			return nil, fmt.Errorf("%w: timezone %q is not an IANA time zone name (e.g. Europe/Berlin, UTC)", ErrInvalid, tz)
		}
		evs = append(evs, Event{Kind: KindSystemPut, System: op.System, GUID: guid, Name: name, Address: address,
			Timezone: tz, Monitored: r.monitored, Org: r.org})
	}
	if op.CapacityW != nil {
		if *op.CapacityW > MaxCapacity {
			return nil, fmt.Errorf("%w: capacity %d W over %d W", ErrInvalid, *op.CapacityW, MaxCapacity)
		}
		evs = append(evs, Event{Kind: KindSystemCapacity, System: op.System, Capacity: *op.CapacityW})
	}
	return evs, nil
}

// DeleteSystem deletes a system for good, taking it out of every bitmap.
// Needs the owner (PermOwner): it ends everyone's access, which is more than
// an admin can do.
type DeleteSystem struct {
	System SystemID
}

func (op DeleteSystem) plan(s *Snapshot, a actor) ([]Event, error) {
	if _, err := s.needOnSystem(a, PermOwner, op.System); err != nil {
		return nil, err
	}
	return []Event{{Kind: KindSystemDelete, System: op.System}}, nil
}

// grantNeeds is the permission to grant or revoke role r (DESIGN §4): viewer
// or data needs share or manage_users, user or installer manage_users, admin
// the owner-level PermAdmin.
func grantNeeds(r Role) []Perm {
	switch r {
	case RoleViewer, RoleData:
		return []Perm{PermShare, PermManageUsers}
	case RoleUser, RoleInstaller:
		return []Perm{PermManageUsers}
	default:
		return []Perm{PermAdmin}
	}
}

func (s *Snapshot) mayGrant(a actor, r Role, sys SystemID) error {
	have := s.Perms(a.id, sys)
	for _, p := range grantNeeds(r) {
		if have.Has(p) {
			return nil
		}
	}
	return fmt.Errorf("%w: granting or revoking %s needs %s", ErrForbidden, r, joinPerms(grantNeeds(r)))
}

// noEscalation enforces DESIGN §4's no-escalation rule on a grant: nobody
// but an owner, an admin or support grants a role whose permissions exceed
// what it holds itself on the system (a team member whose customer type
// caps it at view and manage_users cannot hand anyone installer), and
// nobody but support grants anything to itself — its own e-mail, or an
// organization it is a member of when it is not an owner or admin of the
// system — so that access taken is never access kept after the membership
// that allowed it goes.
func (s *Snapshot) noEscalation(a actor, r Role, sys SystemID, to Principal) error {
	if a.support() {
		return nil
	}
	have := s.Perms(a.id, sys)
	if !have.Has(PermAdmin) {
		if beyond := r.Perms() &^ have; beyond != 0 {
			return fmt.Errorf("%w: %s carries %s, which you do not hold on system %d", ErrForbidden, r, beyond, sys)
		}
	}
	switch {
	case !to.IsOrg() && a.email != nil && a.email.email == to.Email:
		return fmt.Errorf("%w: you cannot grant a role to yourself", ErrForbidden)
	case to.IsOrg() && !have.Has(PermAdmin):
		if _, member := s.OrgRole(a.id, to.Org); member {
			return fmt.Errorf("%w: you cannot grant a role to an organization you belong to", ErrForbidden)
		}
	}
	return nil
}

func joinPerms(ps []Perm) string {
	s := ps[0].String()
	for _, p := range ps[1:] {
		s += " or " + p.String()
	}
	return s
}

// GrantRole gives a principal a role on a system, replacing the role and
// expiry of any grant it holds there (POST /v1/systems/{id}/grants). Needs
// the right to grant the new role and, when replacing, to revoke the old one
// — a user cannot demote an admin by re-granting them viewer. Role is viewer
// to admin; ownership moves only by TransferOwnership, and the owner's own
// grant cannot be replaced. ExpiresAt, if set, must be after the snapshot's
// time.
type GrantRole struct {
	System    SystemID
	To        Principal
	Role      Role
	ExpiresAt time.Time
}

func (op GrantRole) plan(s *Snapshot, a actor) ([]Event, error) {
	r, err := s.needOnSystem(a, PermView, op.System)
	if err != nil {
		return nil, err
	}
	to := op.To
	to.Email = NormalizeEmail(to.Email)
	if err := to.check(); err != nil {
		return nil, err
	}
	if op.Role < RoleViewer || op.Role > RoleAdmin {
		return nil, fmt.Errorf("%w: grant role %q (viewer to admin; ownership moves by transfer)", ErrInvalid, op.Role)
	}
	var expires int64
	if !op.ExpiresAt.IsZero() {
		expires = op.ExpiresAt.UnixMilli()
		if expires <= s.asOf {
			return nil, fmt.Errorf("%w: expires_at %s is not in the future", ErrInvalid, op.ExpiresAt.UTC().Format(time.RFC3339))
		}
		if op.ExpiresAt.UTC().Year() > 9999 {
			return nil, fmt.Errorf("%w: expires_at beyond the year 9999", ErrInvalid)
		}
	}
	if to.IsOrg() {
		if _, ok := s.Org(to.Org); !ok {
			return nil, fmt.Errorf("%w: org %d", ErrNotFound, to.Org)
		}
	}
	k, known := s.key(to)
	if known && !k.org && k.id == r.owner {
		return nil, fmt.Errorf("%w: %s owns system %d", ErrOwnerGrant, to, op.System)
	}
	if err := s.mayGrant(a, op.Role, op.System); err != nil {
		return nil, err
	}
	if err := s.noEscalation(a, op.Role, op.System, to); err != nil {
		return nil, err
	}
	if g, ok := s.grantOf(r, k); ok && known {
		if err := s.mayGrant(a, g.role, op.System); err != nil {
			return nil, fmt.Errorf("replacing %s: %w", g.role, err)
		}
	}
	return []Event{{Kind: KindGrantPut, System: op.System, Grantee: to, Role: op.Role, Expires: expires}}, nil
}

// key finds the principal's key without creating a party; known is false for
// an e-mail never seen (which holds nothing).
func (s *Snapshot) key(p Principal) (k pkey, known bool) {
	if p.IsOrg() {
		return pkey{id: uint32(p.Org), org: true}, true
	}
	pid := s.emailIx.get(p.Email, s.emailKey)
	return pkey{id: pid}, pid != 0
}

// RevokeGrant removes a principal's grant (DELETE
// /v1/systems/{id}/grants/{grantee}). Needs the right to grant that role —
// or the grantee itself, giving up its own access. The owner's grant cannot
// be revoked (ErrOwnerGrant): ownership moves only by transfer.
type RevokeGrant struct {
	System SystemID
	From   Principal
}

func (op RevokeGrant) plan(s *Snapshot, a actor) ([]Event, error) {
	r, err := s.needOnSystem(a, PermView, op.System)
	if err != nil {
		return nil, err
	}
	from := op.From
	from.Email = NormalizeEmail(from.Email)
	if err := from.check(); err != nil {
		return nil, err
	}
	k, known := s.key(from)
	if known && !k.org && k.id == r.owner {
		return nil, fmt.Errorf("%w: %s owns system %d", ErrOwnerGrant, from, op.System)
	}
	g, ok := s.grantOf(r, k)
	if !known || !ok {
		return nil, fmt.Errorf("%w: %s holds no grant on system %d", ErrNotFound, from, op.System)
	}
	self := !k.org && a.email != nil && a.email.email == from.Email
	if !self {
		if err := s.mayGrant(a, g.role, op.System); err != nil {
			return nil, err
		}
	}
	return []Event{{Kind: KindGrantDelete, System: op.System, Grantee: from}}, nil
}

// TransferOwnership makes an e-mail the owner of a system. Only the owner
// (or support) may. The previous owner keeps admin — the "additional owner"
// of DESIGN §4 — which the new owner can revoke; the new owner's previous
// grant, if any, is dropped (the owner is listed once, as owner).
type TransferOwnership struct {
	System SystemID
	To     string
}

func (op TransferOwnership) plan(s *Snapshot, a actor) ([]Event, error) {
	r, err := s.needOnSystem(a, PermOwner, op.System)
	if err != nil {
		return nil, err
	}
	to := NormalizeEmail(op.To)
	if err := checkEmail(to); err != nil {
		return nil, err
	}
	k, known := s.key(EmailPrincipal(to))
	if known && k.id == r.owner {
		return nil, fmt.Errorf("%w: %s already owns system %d", ErrInvalid, to, op.System)
	}
	evs := []Event{{Kind: KindOwnerSet, System: op.System, Email: to}}
	if r.owner != 0 {
		evs = append(evs, Event{Kind: KindGrantPut, System: op.System,
			Grantee: Principal{Email: s.email(r.owner)}, Role: RoleAdmin})
	}
	if i, ok := r.findGrant(k); known && ok && r.grants[i].role != RoleNone {
		evs = append(evs, Event{Kind: KindGrantDelete, System: op.System, Grantee: EmailPrincipal(to)})
	}
	return evs, nil
}
