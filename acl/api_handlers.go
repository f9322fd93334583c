package acl

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/internal/apijson"
)

// JSON shapes of the answers.
type (
	orgJSON struct {
		ID      OrgID        `json:"id"`
		Name    string       `json:"name"`
		Members []memberJSON `json:"members"`
		Roles   []roleJSON   `json:"roles"`
	}
	memberJSON struct {
		Org     OrgID  `json:"org"`
		Email   string `json:"email"`
		Role    string `json:"role"`
		Pending bool   `json:"pending"`
	}
	roleJSON struct {
		Org         OrgID    `json:"org"`
		Name        string   `json:"name"`
		Permissions []string `json:"permissions"`
	}
	systemJSON struct {
		ID         SystemID  `json:"id"`
		GUID       string    `json:"guid"`
		Name       string    `json:"name"`
		Address    string    `json:"address"`
		Timezone   string    `json:"timezone"`
		Monitored  bool      `json:"monitored"`
		Org        OrgID     `json:"org"`
		OwnerEmail string    `json:"owner_email"`
		CreatedAt  time.Time `json:"created_at"`
	}
	grantJSON struct {
		System    SystemID   `json:"system"`
		Email     string     `json:"email,omitempty"`
		Org       OrgID      `json:"org,omitempty"`
		Role      string     `json:"role"`
		ExpiresAt *time.Time `json:"expires_at,omitempty"`
		Pending   bool       `json:"pending"`
		Revoked   bool       `json:"revoked,omitempty"`
	}
	gatewayJSON struct {
		ID     GatewayID `json:"id"`
		System SystemID  `json:"system"`
		Serial string    `json:"serial"`
	}
)

func systemOf(s System) systemJSON {
	return systemJSON{ID: s.ID, GUID: s.GUID, Name: s.Name, Address: s.Address, Timezone: s.Timezone,
		Monitored: s.Monitored, Org: s.Org, OwnerEmail: s.Owner, CreatedAt: s.Created}
}

func grantOf(sys SystemID, g Grant) grantJSON {
	out := grantJSON{System: sys, Email: g.Principal.Email, Org: g.Principal.Org, Role: g.Role.String(), Pending: g.Pending}
	if !g.ExpiresAt.IsZero() {
		t := g.ExpiresAt
		out.ExpiresAt = &t
	}
	return out
}

func (a *API) orgJSON(s *Snapshot, o Org) orgJSON {
	out := orgJSON{ID: o.ID, Name: o.Name, Members: []memberJSON{}, Roles: []roleJSON{}}
	for _, m := range s.Members(o.ID) {
		out.Members = append(out.Members, memberJSON{Org: o.ID, Email: m.Email, Role: m.Role, Pending: m.Pending})
	}
	for _, r := range s.MemberRoles(o.ID) {
		out.Roles = append(out.Roles, roleJSON{Org: o.ID, Name: r.Name, Permissions: r.Perms.Names()})
	}
	return out
}

func (a *API) createOrg(ctx *fasthttp.RequestCtx, caller AccountID) {
	var req struct {
		Name string `json:"name"`
	}
	if !apijson.Decode(ctx, &req) {
		return
	}
	id := a.nextOrg()
	ch, err := a.log.Do(caller, CreateOrg{Org: id, Name: req.Name})
	if err != nil {
		fail(ctx, err)
		return
	}
	o, _ := ch.Snapshot.Org(id)
	apijson.Write(ctx, fasthttp.StatusCreated, a.orgJSON(ch.Snapshot, o))
}

// getOrg shows an organization to its members and support.
func (a *API) getOrg(ctx *fasthttp.RequestCtx, caller AccountID) {
	id, ok := orgParam(ctx)
	if !ok {
		return
	}
	s := a.x.Snapshot()
	o, found := s.Org(id)
	_, member := s.OrgRole(caller, id)
	if !found || !member && !s.IsOrgAdmin(caller, id) {
		apijson.Error(ctx, fasthttp.StatusNotFound, "not_found", "no such organization")
		return
	}
	apijson.Write(ctx, fasthttp.StatusOK, a.orgJSON(s, o))
}

func (a *API) putMember(ctx *fasthttp.RequestCtx, caller AccountID) {
	org, ok := orgParam(ctx)
	if !ok {
		return
	}
	var req struct {
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	if !apijson.Decode(ctx, &req) {
		return
	}
	ch, err := a.log.Do(caller, PutMember{Org: org, Email: req.Email, Role: req.Role})
	if err != nil {
		fail(ctx, err)
		return
	}
	email := NormalizeEmail(req.Email)
	for _, m := range ch.Snapshot.Members(org) {
		if m.Email == email {
			apijson.Write(ctx, fasthttp.StatusOK, memberJSON{Org: org, Email: m.Email, Role: m.Role, Pending: m.Pending})
			return
		}
	}
	apijson.Write(ctx, fasthttp.StatusOK, memberJSON{Org: org, Email: email, Role: req.Role})
}

func (a *API) removeMember(ctx *fasthttp.RequestCtx, caller AccountID) {
	org, ok := orgParam(ctx)
	if !ok {
		return
	}
	email := NormalizeEmail(param(ctx, "email"))
	var removed memberJSON
	for _, m := range a.x.Snapshot().Members(org) {
		if m.Email == email {
			removed = memberJSON{Org: org, Email: m.Email, Role: m.Role, Pending: m.Pending}
		}
	}
	if _, err := a.log.Do(caller, RemoveMember{Org: org, Email: email}); err != nil {
		fail(ctx, err)
		return
	}
	apijson.Write(ctx, fasthttp.StatusOK, removed)
}

func (a *API) putRole(ctx *fasthttp.RequestCtx, caller AccountID) {
	org, ok := orgParam(ctx)
	if !ok {
		return
	}
	var req struct {
		Permissions []string `json:"permissions"`
	}
	if !apijson.Decode(ctx, &req) {
		return
	}
	perms, err := ParsePerms(req.Permissions)
	if err != nil {
		fail(ctx, err)
		return
	}
	name := param(ctx, "name")
	if _, err := a.log.Do(caller, PutMemberRole{Org: org, Name: name, Perms: perms}); err != nil {
		fail(ctx, err)
		return
	}
	apijson.Write(ctx, fasthttp.StatusOK, roleJSON{Org: org, Name: name, Permissions: perms.Names()})
}

func (a *API) deleteRole(ctx *fasthttp.RequestCtx, caller AccountID) {
	org, ok := orgParam(ctx)
	if !ok {
		return
	}
	name := param(ctx, "name")
	var gone roleJSON
	for _, r := range a.x.Snapshot().MemberRoles(org) {
		if r.Name == name {
			gone = roleJSON{Org: org, Name: r.Name, Permissions: r.Perms.Names()}
		}
	}
	if _, err := a.log.Do(caller, DeleteMemberRole{Org: org, Name: name}); err != nil {
		fail(ctx, err)
		return
	}
	apijson.Write(ctx, fasthttp.StatusOK, gone)
}

// commission creates a system under an org (the caller needs create_plant
// there): the org gets the installer grant, owner_email the ownership —
// an invitation until that e-mail is verified.
func (a *API) commission(ctx *fasthttp.RequestCtx, caller AccountID) {
	var req struct {
		GUID       string `json:"guid"`
		Name       string `json:"name"`
		Address    string `json:"address"`
		Timezone   string `json:"timezone"`
		Org        OrgID  `json:"org"`
		OwnerEmail string `json:"owner_email"`
		// Monitored defaults to true; false for fire-safety-only installs.
		Monitored *bool `json:"monitored"`
	}
	if !apijson.Decode(ctx, &req) {
		return
	}
	if req.Timezone == "" {
		req.Timezone = "UTC"
	}
	if _, err := time.LoadLocation(req.Timezone); err != nil {
		apijson.Error(ctx, fasthttp.StatusBadRequest, "invalid", "timezone: not an IANA time zone name: "+req.Timezone)
		return
	}
	monitored := req.Monitored == nil || *req.Monitored
	id := a.nextSystem()
	ch, err := a.log.Do(caller, Commission{System: id, GUID: req.GUID, Name: req.Name, Address: req.Address,
		Timezone: req.Timezone, Monitored: monitored, Org: req.Org, OwnerEmail: req.OwnerEmail})
	if err != nil {
		fail(ctx, err)
		return
	}
	sys, _ := ch.Snapshot.System(id)
	apijson.Write(ctx, fasthttp.StatusCreated, systemOf(sys))
}

func (a *API) deleteSystem(ctx *fasthttp.RequestCtx, caller AccountID) {
	s := a.x.Snapshot()
	id, ok := a.systemParam(ctx, s, caller)
	if !ok {
		return
	}
	sys, _ := s.System(id)
	if _, err := a.log.Do(caller, DeleteSystem{System: id}); err != nil {
		fail(ctx, err)
		return
	}
	apijson.Write(ctx, fasthttp.StatusOK, systemOf(sys))
}

// transfer hands ownership to another e-mail (owner only); the previous
// owner keeps admin.
func (a *API) transfer(ctx *fasthttp.RequestCtx, caller AccountID) {
	s := a.x.Snapshot()
	id, ok := a.systemParam(ctx, s, caller)
	if !ok {
		return
	}
	var req struct {
		Email string `json:"email"`
	}
	if !apijson.Decode(ctx, &req) {
		return
	}
	ch, err := a.log.Do(caller, TransferOwnership{System: id, To: req.Email})
	if err != nil {
		fail(ctx, err)
		return
	}
	sys, _ := ch.Snapshot.System(id)
	apijson.Write(ctx, fasthttp.StatusOK, systemOf(sys))
}

// listGrants shows who holds what on a system to those who may share it.
func (a *API) listGrants(ctx *fasthttp.RequestCtx, caller AccountID) {
	s := a.x.Snapshot()
	id, ok := a.systemParam(ctx, s, caller)
	if !ok {
		return
	}
	if !s.Can(caller, PermShare, id) && !s.Can(caller, PermManageUsers, id) {
		apijson.Error(ctx, fasthttp.StatusForbidden, "forbidden", "listing grants needs share or manage_users")
		return
	}
	grants := s.Grants(id)
	out := make([]grantJSON, 0, len(grants))
	for _, g := range grants {
		out = append(out, grantOf(id, g))
	}
	apijson.WriteList(ctx, out, len(out), "")
}

func (a *API) grant(ctx *fasthttp.RequestCtx, caller AccountID) {
	s := a.x.Snapshot()
	id, ok := a.systemParam(ctx, s, caller)
	if !ok {
		return
	}
	var req struct {
		Email     string `json:"email"`
		Org       OrgID  `json:"org"`
		Role      string `json:"role"`
		ExpiresAt string `json:"expires_at"`
	}
	if !apijson.Decode(ctx, &req) {
		return
	}
	var to Principal
	switch {
	case req.Email != "" && req.Org == 0:
		to = EmailPrincipal(req.Email)
	case req.Org != 0 && req.Email == "":
		to = OrgPrincipal(req.Org)
	default:
		apijson.Error(ctx, fasthttp.StatusBadRequest, "invalid", `give exactly one of "email" and "org"`)
		return
	}
	role, err := ParseRole(req.Role)
	if err != nil {
		fail(ctx, err)
		return
	}
	var expires time.Time
	if req.ExpiresAt != "" {
		if expires, err = parseTime(req.ExpiresAt); err != nil {
			apijson.Error(ctx, fasthttp.StatusBadRequest, "invalid", "expires_at: "+err.Error())
			return
		}
	}
	ch, err := a.log.Do(caller, GrantRole{System: id, To: to, Role: role, ExpiresAt: expires})
	if err != nil {
		fail(ctx, err)
		return
	}
	for _, g := range ch.Snapshot.Grants(id) {
		if g.Principal == to {
			apijson.Write(ctx, fasthttp.StatusCreated, grantOf(id, g))
			return
		}
	}
	apijson.Write(ctx, fasthttp.StatusCreated, grantJSON{System: id, Email: to.Email, Org: to.Org, Role: role.String()})
}

func (a *API) revoke(ctx *fasthttp.RequestCtx, caller AccountID) {
	s := a.x.Snapshot()
	id, ok := a.systemParam(ctx, s, caller)
	if !ok {
		return
	}
	from, err := ParsePrincipal(param(ctx, "grantee"))
	if err != nil {
		fail(ctx, err)
		return
	}
	out := grantJSON{System: id, Email: from.Email, Org: from.Org, Revoked: true}
	for _, g := range s.Grants(id) {
		if g.Principal == from {
			out = grantOf(id, g)
			out.Revoked = true
		}
	}
	if _, err := a.log.Do(caller, RevokeGrant{System: id, From: from}); err != nil {
		fail(ctx, err)
		return
	}
	apijson.Write(ctx, fasthttp.StatusOK, out)
}

// parseTime accepts Unix milliseconds or RFC 3339, as every time in the API.
func parseTime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want Unix milliseconds or RFC 3339: %q", s)
	}
	return t.UTC(), nil
}

func (a *API) listGateways(ctx *fasthttp.RequestCtx, caller AccountID) {
	s := a.x.Snapshot()
	id, ok := a.systemParam(ctx, s, caller)
	if !ok {
		return
	}
	gws := s.Gateways(id)
	out := make([]gatewayJSON, 0, len(gws))
	for _, g := range gws {
		out = append(out, gatewayJSON{ID: g.ID, System: g.System, Serial: g.Serial})
	}
	apijson.WriteList(ctx, out, len(out), "")
}

// audit lists the access changes of a system, newest first, to its owner,
// admins and support.
func (a *API) audit(ctx *fasthttp.RequestCtx, caller AccountID) {
	s := a.x.Snapshot()
	id, ok := a.systemParam(ctx, s, caller)
	if !ok {
		return
	}
	if !s.Can(caller, PermAdmin, id) {
		apijson.Error(ctx, fasthttp.StatusForbidden, "forbidden", "the audit trail is for the owner, admins and support")
		return
	}
	limit := 100
	if v, err := strconv.Atoi(string(ctx.QueryArgs().Peek("limit"))); err == nil && v > 0 && v <= 1000 {
		limit = v
	}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := a.opts.Store.Query(c, "SELECT event FROM acl_events WHERE system_id = {s:UInt32} ORDER BY hlc DESC, node DESC LIMIT {n:UInt32}",
		clickhouse.Named("s", strconv.FormatUint(uint64(id), 10)), clickhouse.Named("n", strconv.Itoa(limit)))
	if err != nil {
		fail(ctx, err)
		return
	}
	defer rows.Close()
	type entry struct {
		At     time.Time `json:"at"`
		Actor  string    `json:"actor"`
		Kind   string    `json:"kind"`
		Detail string    `json:"detail"`
	}
	var out []entry
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			fail(ctx, err)
			return
		}
		var ev Event
		if ev.UnmarshalBinary([]byte(raw)) != nil {
			continue
		}
		actor := "platform"
		if acc, ok := s.Account(ev.Actor); ok {
			actor = acc.Email
		}
		out = append(out, entry{At: ev.Stamp.Time(), Actor: actor, Kind: ev.Kind.String(), Detail: describe(ev)})
	}
	if err := rows.Err(); err != nil {
		fail(ctx, err)
		return
	}
	apijson.WriteList(ctx, out, len(out), "")
}

// describe says what an event did, for the audit trail.
func describe(ev Event) string {
	switch ev.Kind {
	case KindSystemPut:
		return fmt.Sprintf("system %q (%s) under org %d", ev.Name, ev.GUID, ev.Org)
	case KindSystemDelete:
		return "system deleted"
	case KindOwnerSet:
		return "owner " + ev.Email
	case KindGrantPut:
		d := ev.Role.String() + " to " + ev.Grantee.String()
		if ev.Expires != 0 {
			d += " until " + ev.ExpiresAt().Format(time.RFC3339)
		}
		return d
	case KindGrantDelete:
		return "revoked " + ev.Grantee.String()
	}
	return strings.ReplaceAll(ev.Kind.String(), "_", " ")
}
