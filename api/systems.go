package api

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/mail"
)

// JSON shapes of systems, grants and gateways.
type (
	systemJSON struct {
		ID         acl.SystemID `json:"id"`
		GUID       string       `json:"guid"`
		Name       string       `json:"name"`
		Address    string       `json:"address"`
		Timezone   string       `json:"timezone"`
		Monitored  bool         `json:"monitored"`
		CapacityW  *uint32      `json:"capacity_w"`
		Org        acl.OrgID    `json:"org"`
		OwnerEmail string       `json:"owner_email"`
		CreatedAt  time.Time    `json:"created_at"`
	}
	grantJSON struct {
		System    acl.SystemID `json:"system"`
		Email     string       `json:"email,omitempty"`
		Org       acl.OrgID    `json:"org,omitempty"`
		Role      string       `json:"role"`
		ExpiresAt *time.Time   `json:"expires_at,omitempty"`
		Pending   bool         `json:"pending"`
		Revoked   bool         `json:"revoked,omitempty"`
	}
	gatewayJSON struct {
		ID     acl.GatewayID `json:"id"`
		System acl.SystemID  `json:"system"`
		Serial string        `json:"serial"`
	}
)

func systemOf(s acl.System) systemJSON {
	out := systemJSON{ID: s.ID, GUID: s.GUID, Name: s.Name, Address: s.Address, Timezone: s.Timezone,
		Monitored: s.Monitored, Org: s.Org, OwnerEmail: s.Owner, CreatedAt: s.Created}
	if s.CapacityW > 0 {
		w := s.CapacityW
		out.CapacityW = &w
	}
	return out
}

func grantOf(sys acl.SystemID, g acl.Grant) grantJSON {
	out := grantJSON{System: sys, Email: g.Principal.Email, Org: g.Principal.Org, Role: g.Role.String(), Pending: g.Pending}
	if !g.ExpiresAt.IsZero() {
		t := g.ExpiresAt
		out.ExpiresAt = &t
	}
	return out
}

func gatewayOf(g acl.Gateway) gatewayJSON {
	return gatewayJSON{ID: g.ID, System: g.System, Serial: g.Serial}
}

// commission creates a system under an org (the caller needs create_plant
// there): the org gets the installer grant, owner_email the ownership —
// an invitation until that e-mail is verified.
func (s *Server) commission(c *call) error {
	var req struct {
		GUID       string    `json:"guid"`
		Name       string    `json:"name"`
		Address    string    `json:"address"`
		Timezone   string    `json:"timezone"`
		Org        acl.OrgID `json:"org"`
		OwnerEmail string    `json:"owner_email"`
		// Monitored defaults to true; false for fire-safety-only installs.
		Monitored *bool `json:"monitored"`
		// CapacityW is the nameplate DC capacity (for specific yield).
		CapacityW uint32 `json:"capacity_w"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	monitored := req.Monitored == nil || *req.Monitored
	n, err := s.ids.take(c.ctx, s.ids.system)
	if err != nil {
		return err
	}
	id := acl.SystemID(n)
	ch, err := s.opts.Log.Do(c.caller, acl.Commission{System: id, GUID: req.GUID, Name: req.Name, Address: req.Address,
		Timezone: req.Timezone, Monitored: monitored, Org: req.Org, OwnerEmail: req.OwnerEmail, CapacityW: req.CapacityW})
	if err != nil {
		return err
	}
	sys, _ := ch.Snapshot.System(id)
	// The owner is welcomed (the Tigo article): who installed what, and
	// how to register with the address to see it.
	installer, _ := ch.Snapshot.Org(req.Org)
	s.send(mail.WelcomeMail(s.opts.BaseURL, mail.Welcome{To: sys.Owner, InstallerOrg: installer.Name,
		SystemName: sys.Name, SystemGUID: sys.GUID, Address: sys.Address}))
	return c.json(fasthttp.StatusCreated, systemOf(sys))
}

// editSystem: PATCH /v1/systems/{id} {"name"?, "address"?, "timezone"?,
// "capacity_w"?} changes a system's record (add_gateway: the installer's or
// owner's); answers the system.
func (s *Server) editSystem(c *call) error {
	id, err := c.systemParam(c.snapshot())
	if err != nil {
		return err
	}
	var req struct {
		Name      *string `json:"name"`
		Address   *string `json:"address"`
		Timezone  *string `json:"timezone"`
		CapacityW *uint32 `json:"capacity_w"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	ch, err := s.opts.Log.Do(c.caller, acl.EditSystem{System: id, Name: req.Name, Address: req.Address, Timezone: req.Timezone, CapacityW: req.CapacityW})
	if err != nil {
		return err
	}
	sys, _ := ch.Snapshot.System(id)
	return c.json(fasthttp.StatusOK, systemOf(sys))
}

// deleteSystem: DELETE /v1/systems/{id} (owner); answers what was deleted.
func (s *Server) deleteSystem(c *call) error {
	snap := c.snapshot()
	id, err := c.systemParam(snap)
	if err != nil {
		return err
	}
	sys, _ := snap.System(id)
	if _, err := s.opts.Log.Do(c.caller, acl.DeleteSystem{System: id}); err != nil {
		return err
	}
	return c.json(fasthttp.StatusOK, systemOf(sys))
}

// transfer hands ownership to another e-mail (owner only); the previous
// owner keeps admin.
func (s *Server) transfer(c *call) error {
	id, err := c.systemParam(c.snapshot())
	if err != nil {
		return err
	}
	var req struct {
		Email string `json:"email"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	ch, err := s.opts.Log.Do(c.caller, acl.TransferOwnership{System: id, To: req.Email})
	if err != nil {
		return err
	}
	sys, _ := ch.Snapshot.System(id)
	who, _ := ch.Snapshot.Account(c.caller)
	s.send(mail.SystemInvitationMail(s.opts.BaseURL, mail.SystemInvitation{To: sys.Owner, InviterName: who.Name,
		InviterEmail: who.Email, SystemName: sys.Name, SystemGUID: sys.GUID, Role: acl.RoleOwner.String()}))
	return c.json(fasthttp.StatusOK, systemOf(sys))
}

// listGrants shows who holds what on a system to those who may share it.
func (s *Server) listGrants(c *call) error {
	snap := c.snapshot()
	id, err := c.systemParam(snap)
	if err != nil {
		return err
	}
	if !snap.Can(c.caller, acl.PermShare, id) && !snap.Can(c.caller, acl.PermManageUsers, id) {
		return fmt.Errorf("%w: listing grants needs share or manage_users", acl.ErrForbidden)
	}
	grants := snap.Grants(id)
	out := make([]grantJSON, 0, len(grants))
	for _, g := range grants {
		out = append(out, grantOf(id, g))
	}
	return list(c, out, len(out), "")
}

// grant: POST /v1/systems/{id}/grants {"email"|"org", "role", "expires_at"?}.
func (s *Server) grant(c *call) error {
	id, err := c.systemParam(c.snapshot())
	if err != nil {
		return err
	}
	var req struct {
		Email     string    `json:"email"`
		Org       acl.OrgID `json:"org"`
		Role      string    `json:"role"`
		ExpiresAt string    `json:"expires_at"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	var to acl.Principal
	switch {
	case req.Email != "" && req.Org == 0:
		to = acl.EmailPrincipal(req.Email)
	case req.Org != 0 && req.Email == "":
		to = acl.OrgPrincipal(req.Org)
	default:
		return fmt.Errorf(`%w: give exactly one of "email" and "org"`, acl.ErrInvalid)
	}
	role, err := acl.ParseRole(req.Role)
	if err != nil {
		return err
	}
	var expires time.Time
	if req.ExpiresAt != "" {
		if expires, err = parseTime(req.ExpiresAt); err != nil {
			return fmt.Errorf("%w: expires_at: %v", acl.ErrInvalid, err)
		}
	}
	ch, err := s.opts.Log.Do(c.caller, acl.GrantRole{System: id, To: to, Role: role, ExpiresAt: expires})
	if err != nil {
		return err
	}
	if !to.IsOrg() {
		sys, _ := ch.Snapshot.System(id)
		who, _ := ch.Snapshot.Account(c.caller)
		s.send(mail.SystemInvitationMail(s.opts.BaseURL, mail.SystemInvitation{To: to.Email, InviterName: who.Name,
			InviterEmail: who.Email, SystemName: sys.Name, SystemGUID: sys.GUID, Role: role.String(), Expires: expires}))
	}
	for _, g := range ch.Snapshot.Grants(id) {
		if g.Principal == to {
			return c.json(fasthttp.StatusCreated, grantOf(id, g))
		}
	}
	return c.json(fasthttp.StatusCreated, grantJSON{System: id, Email: to.Email, Org: to.Org, Role: role.String()})
}

// revoke: DELETE /v1/systems/{id}/grants/{grantee}; answers the revoked
// grant.
func (s *Server) revoke(c *call) error {
	snap := c.snapshot()
	id, err := c.systemParam(snap)
	if err != nil {
		return err
	}
	from, err := acl.ParsePrincipal(c.param("grantee"))
	if err != nil {
		return err
	}
	out := grantJSON{System: id, Email: from.Email, Org: from.Org, Revoked: true}
	for _, g := range snap.Grants(id) {
		if g.Principal == from {
			out = grantOf(id, g)
			out.Revoked = true
		}
	}
	if _, err := s.opts.Log.Do(c.caller, acl.RevokeGrant{System: id, From: from}); err != nil {
		return err
	}
	return c.json(fasthttp.StatusOK, out)
}

// listGateways: GET /v1/systems/{id}/gateways.
func (s *Server) listGateways(c *call) error {
	snap := c.snapshot()
	id, err := c.systemParam(snap)
	if err != nil {
		return err
	}
	gws := snap.Gateways(id)
	out := make([]gatewayJSON, 0, len(gws))
	for _, g := range gws {
		out = append(out, gatewayOf(g))
	}
	return list(c, out, len(out), "")
}

// addGateway registers a gateway and answers its ingest key — the only
// time the key is shown (POST /v1/systems/{id}/gateways {"serial"}).
func (s *Server) addGateway(c *call) error {
	id, err := c.systemParam(c.snapshot())
	if err != nil {
		return err
	}
	var req struct {
		Serial string `json:"serial"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	n, err := s.ids.take(c.ctx, s.ids.gateway)
	if err != nil {
		return err
	}
	gw := acl.GatewayID(n)
	key, hash := acl.NewGatewayKey(gw)
	ch, err := s.opts.Log.Do(c.caller, acl.AddGateway{Gateway: gw, System: id, Serial: req.Serial, KeyHash: hash})
	if err != nil {
		return err
	}
	g, _ := ch.Snapshot.Gateway(gw)
	return c.json(fasthttp.StatusCreated, map[string]any{"gateway": gatewayOf(g), "key": key})
}

// removeGateway: DELETE /v1/systems/{id}/gateways/{serial}.
func (s *Server) removeGateway(c *call) error {
	snap := c.snapshot()
	id, err := c.systemParam(snap)
	if err != nil {
		return err
	}
	g, found := snap.GatewayBySerial(id, c.param("serial"))
	if !found {
		return errNotFound
	}
	if _, err := s.opts.Log.Do(c.caller, acl.RemoveGateway{System: id, Serial: g.Serial}); err != nil {
		return err
	}
	return c.json(fasthttp.StatusOK, gatewayOf(g))
}

// audit lists the access changes of a system, newest first, to its owner,
// admins and support.
func (s *Server) audit(c *call) error {
	snap := c.snapshot()
	id, err := c.systemParam(snap)
	if err != nil {
		return err
	}
	if !snap.Can(c.caller, acl.PermAdmin, id) {
		return fmt.Errorf("%w: the audit trail is for the owner, admins and support", acl.ErrForbidden)
	}
	limit, err := parseLimit(c.arg("limit"))
	switch {
	case err != nil:
		return err
	case limit == 0:
		limit = 100
	case limit > 1000:
		limit = 1000
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	evs, err := s.opts.Log.SystemEvents(ctx, id, limit)
	if err != nil {
		return err
	}
	type entry struct {
		At     time.Time `json:"at"`
		Actor  string    `json:"actor"`
		Kind   string    `json:"kind"`
		Detail string    `json:"detail"`
	}
	out := make([]entry, 0, len(evs))
	for _, ev := range evs {
		actor := "platform"
		if acc, ok := snap.Account(ev.Actor); ok {
			actor = acc.Email
		}
		out = append(out, entry{At: ev.Stamp.Time(), Actor: actor, Kind: ev.Kind.String(), Detail: describe(ev)})
	}
	return list(c, out, len(out), "")
}

// describe says what an event did, for the audit trail.
func describe(ev acl.Event) string {
	switch ev.Kind {
	case acl.KindSystemPut:
		return fmt.Sprintf("system %q (%s) under org %d", ev.Name, ev.GUID, ev.Org)
	case acl.KindSystemDelete:
		return "system deleted"
	case acl.KindOwnerSet:
		return "owner " + ev.Email
	case acl.KindGrantPut:
		d := ev.Role.String() + " to " + ev.Grantee.String()
		if ev.Expires != 0 {
			d += " until " + ev.ExpiresAt().Format(time.RFC3339)
		}
		return d
	case acl.KindGrantDelete:
		return "revoked " + ev.Grantee.String()
	}
	return strings.ReplaceAll(ev.Kind.String(), "_", " ")
}

// rotateGatewayKey gives a gateway a new ingest key (POST
// /v1/systems/{id}/gateways/{serial}/key); the previous key keeps working
// for Options.KeyGrace, then answers 401. The gateway keeps its id and seq
// window. The key is shown only here.
func (s *Server) rotateGatewayKey(c *call) error {
	snap := c.snapshot()
	id, err := c.systemParam(snap)
	if err != nil {
		return err
	}
	g, found := snap.GatewayBySerial(id, c.param("serial"))
	if !found {
		return errNotFound
	}
	key, hash := acl.NewGatewayKey(g.ID)
	grace := s.opts.Now().Add(s.opts.KeyGrace)
	ch, err := s.opts.Log.Do(c.caller, acl.RotateGatewayKey{System: id, Serial: g.Serial, KeyHash: hash, Grace: grace})
	if err != nil {
		return err
	}
	g, _ = ch.Snapshot.Gateway(g.ID)
	return c.json(fasthttp.StatusCreated, map[string]any{"gateway": gatewayOf(g), "key": key, "previous_key_valid_until": grace.UTC()})
}
