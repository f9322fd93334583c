package api

import (
	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/mail"
)

// JSON shapes of organizations.
type (
	orgJSON struct {
		ID      acl.OrgID    `json:"id"`
		Name    string       `json:"name"`
		Members []memberJSON `json:"members"`
		Roles   []roleJSON   `json:"roles"`
	}
	memberJSON struct {
		Org     acl.OrgID `json:"org"`
		Email   string    `json:"email"`
		Role    string    `json:"role"`
		Pending bool      `json:"pending"`
	}
	roleJSON struct {
		Org         acl.OrgID `json:"org"`
		Name        string    `json:"name"`
		Permissions []string  `json:"permissions"`
	}
)

func orgOf(s *acl.Snapshot, o acl.Org) orgJSON {
	out := orgJSON{ID: o.ID, Name: o.Name, Members: []memberJSON{}, Roles: []roleJSON{}}
	for _, m := range s.Members(o.ID) {
		out.Members = append(out.Members, memberJSON{Org: o.ID, Email: m.Email, Role: m.Role, Pending: m.Pending})
	}
	for _, r := range s.MemberRoles(o.ID) {
		out.Roles = append(out.Roles, roleJSON{Org: o.ID, Name: r.Name, Permissions: r.Perms.Names()})
	}
	return out
}

// createOrg: POST /v1/orgs {"name"}; the caller becomes its org_admin.
func (s *Server) createOrg(c *call) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	n, err := s.ids.take(c.ctx, s.ids.org)
	if err != nil {
		return err
	}
	id := acl.OrgID(n)
	ch, err := s.opts.Log.Do(c.caller, acl.CreateOrg{Org: id, Name: req.Name})
	if err != nil {
		return err
	}
	o, _ := ch.Snapshot.Org(id)
	return c.json(fasthttp.StatusCreated, orgOf(ch.Snapshot, o))
}

// getOrg shows an organization to its members and support.
func (s *Server) getOrg(c *call) error {
	id, err := c.orgParam()
	if err != nil {
		return err
	}
	snap := c.snapshot()
	o, found := snap.Org(id)
	_, member := snap.OrgRole(c.caller, id)
	// A pending member — invited, its e-mail not verified — sees nothing of
	// the org, not even who else is in it.
	if !found || !snap.Acts(c.caller) || !member && !snap.IsOrgAdmin(c.caller, id) {
		return errNotFound
	}
	return c.json(fasthttp.StatusOK, orgOf(snap, o))
}

// putMember: POST /v1/orgs/{org}/members {"email", "role"}.
func (s *Server) putMember(c *call) error {
	org, err := c.orgParam()
	if err != nil {
		return err
	}
	var req struct {
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	ch, err := s.opts.Log.Do(c.caller, acl.PutMember{Org: org, Email: req.Email, Role: req.Role})
	if err != nil {
		return err
	}
	email := acl.NormalizeEmail(req.Email)
	s.inviteToOrg(ch.Snapshot, c.caller, org, email, req.Role)
	for _, m := range ch.Snapshot.Members(org) {
		if m.Email == email {
			return c.json(fasthttp.StatusOK, memberJSON{Org: org, Email: m.Email, Role: m.Role, Pending: m.Pending})
		}
	}
	return c.json(fasthttp.StatusOK, memberJSON{Org: org, Email: email, Role: req.Role})
}

// removeMember: DELETE /v1/orgs/{org}/members/{email}; answers the removed
// membership.
func (s *Server) removeMember(c *call) error {
	org, err := c.orgParam()
	if err != nil {
		return err
	}
	email := acl.NormalizeEmail(c.param("email"))
	var removed memberJSON
	for _, m := range c.snapshot().Members(org) {
		if m.Email == email {
			removed = memberJSON{Org: org, Email: m.Email, Role: m.Role, Pending: m.Pending}
		}
	}
	if _, err := s.opts.Log.Do(c.caller, acl.RemoveMember{Org: org, Email: email}); err != nil {
		return err
	}
	return c.json(fasthttp.StatusOK, removed)
}

// putRole: PUT /v1/orgs/{org}/roles/{name} {"permissions"} creates or
// replaces a member role (customer type).
func (s *Server) putRole(c *call) error {
	org, err := c.orgParam()
	if err != nil {
		return err
	}
	var req struct {
		Permissions []string `json:"permissions"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	perms, err := acl.ParsePerms(req.Permissions)
	if err != nil {
		return err
	}
	name := c.param("name")
	if _, err := s.opts.Log.Do(c.caller, acl.PutMemberRole{Org: org, Name: name, Perms: perms}); err != nil {
		return err
	}
	return c.json(fasthttp.StatusOK, roleJSON{Org: org, Name: name, Permissions: perms.Names()})
}

// deleteRole: DELETE /v1/orgs/{org}/roles/{name}; answers the deleted role.
func (s *Server) deleteRole(c *call) error {
	org, err := c.orgParam()
	if err != nil {
		return err
	}
	name := c.param("name")
	var gone roleJSON
	for _, r := range c.snapshot().MemberRoles(org) {
		if r.Name == name {
			gone = roleJSON{Org: org, Name: r.Name, Permissions: r.Perms.Names()}
		}
	}
	if _, err := s.opts.Log.Do(c.caller, acl.DeleteMemberRole{Org: org, Name: name}); err != nil {
		return err
	}
	return c.json(fasthttp.StatusOK, gone)
}

// inviteToOrg mails the new member who invited it, to which organization,
// as what, and how to register with the address (DESIGN §5).
func (s *Server) inviteToOrg(snap *acl.Snapshot, inviter acl.AccountID, org acl.OrgID, email, role string) {
	o, _ := snap.Org(org)
	who, _ := snap.Account(inviter)
	inv := mail.OrgInvitation{To: email, InviterName: who.Name, InviterEmail: who.Email, OrgName: o.Name, Role: role}
	for _, r := range snap.MemberRoles(org) {
		if r.Name == role {
			inv.Permissions = r.Perms.Names()
		}
	}
	s.send(mail.OrgInvitationMail(s.opts.BaseURL, inv))
}
