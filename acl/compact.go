package acl

import "iter"

// Export returns the events that rebuild s exactly: for every register of
// the state (see the package doc), the event that holds it, with its stamp —
// the latest put or tombstone, the earliest registration, one deletion of a
// deleted system or revoked token (the greatest stamp among them). Replayed
// into an empty index they give a state that answers every lookup as s does
// and that takes any further events as s would: every register holds the
// same value and stamp, so the same later events win and lose. Tombstones are
// part of it for that reason: a revoked grant, a deleted member, member role,
// system or gateway, a revoked token, a cleared code or password, an
// unverified account — without them an older put arriving later would win.
//
// The export is a function of the events the state folded, not of their
// order: every node that applied the same set exports the same set. It is not
// the history: superseded events are gone, and every event names Platform as
// its actor (the event log keeps who made each change). Expired grants are
// exported as they are, with their expiry.
//
// The events come in register order — accounts, credentials, orgs, systems
// by id with their owner and grants, gateways, tokens — one register each,
// so the export has as many events as the state has registers. s is
// immutable, so Export needs no lock and may run while the index changes.
func (s *Snapshot) Export() iter.Seq[Event] {
	return func(yield func(Event) bool) { s.export(yield) }
}

func (st *state) export(yield func(Event) bool) {
	email := func(pid uint32) string { return st.emails.get(pid).email }
	ok := true
	emit := func(ev Event) bool {
		ok = ok && yield(ev)
		return ok
	}
	st.accounts.each(func(id uint32, a *acctRec) bool {
		acct := AccountID(id)
		if a.pid != 0 {
			emit(Event{Kind: KindAccountRegister, Stamp: a.reg(), Account: acct, Email: email(a.pid)})
		}
		if a.verHLC != 0 {
			emit(Event{Kind: KindAccountVerify, Stamp: a.verifiedStamp(), Account: acct, Verified: a.verified})
		}
		if a.supHLC != 0 {
			emit(Event{Kind: KindAccountSupport, Stamp: a.supportStamp(), Account: acct, Support: a.support})
		}
		return ok
	})
	st.creds.each(func(id uint32, c *credRec) bool {
		acct := AccountID(id)
		if c.nameHLC != 0 {
			emit(Event{Kind: KindAccountName, Stamp: c.nameStamp(), Account: acct, Name: c.name})
		}
		if c.pwHLC != 0 {
			emit(Event{Kind: KindPasswordSet, Stamp: c.pwStamp(), Account: acct, PasswordHash: c.password})
		}
		if c.codeHLC != 0 {
			emit(Event{Kind: KindCodeSet, Stamp: c.codeStamp(), Account: acct, Hash: c.code, Expires: c.codeExp})
		}
		return ok
	})
	st.orgs.each(func(id uint32, o *orgRec) bool {
		org := OrgID(id)
		if !o.nameStamp.IsZero() {
			emit(Event{Kind: KindOrgPut, Stamp: o.nameStamp, Org: org, Name: o.name})
		}
		for _, r := range o.roles {
			if r.deleted {
				emit(Event{Kind: KindRoleDelete, Stamp: r.stamp, Org: org, Name: r.name})
			} else {
				emit(Event{Kind: KindRolePut, Stamp: r.stamp, Org: org, Name: r.name, Perms: r.perms})
			}
		}
		for _, m := range o.members {
			if m.deleted {
				emit(Event{Kind: KindMemberDelete, Stamp: m.stamp, Org: org, Email: email(m.pid)})
			} else {
				emit(Event{Kind: KindMemberPut, Stamp: m.stamp, Org: org, Email: email(m.pid), OrgRole: m.role})
			}
		}
		return ok
	})
	st.systems.each(func(id uint32, r *sysRec) bool {
		sys := SystemID(id)
		if r.deleted {
			// Its other registers went with it (see writer.systemDelete).
			return emit(Event{Kind: KindSystemDelete, Stamp: r.metaStamp(), System: sys})
		}
		if r.metaHLC != 0 {
			guid, name, address, tz := r.fields()
			put := Event{Kind: KindSystemPut, Stamp: r.metaStamp(), System: sys, GUID: guid, Name: name,
				Address: address, Timezone: tz, Monitored: r.monitored, Org: r.org}
			if created := (Stamp{r.createdHLC, r.createdNode}); r.createdHLC != 0 && r.metaStamp().After(created) {
				// An edited system: a put at its commissioning stamp first,
				// which the latest then overwrites, so that a replay knows
				// when it was commissioned.
				first := put
				first.Stamp = created
				emit(first)
			}
			emit(put)
		}
		if r.ownerHLC != 0 {
			emit(Event{Kind: KindOwnerSet, Stamp: r.ownerStamp(), System: sys, Email: email(r.owner)})
		}

		for _, g := range r.grants {
			p := OrgPrincipal(OrgID(g.who))
			if !g.org {
				p = Principal{Email: email(g.who)}
			}
			if g.role == RoleNone {
				emit(Event{Kind: KindGrantDelete, Stamp: g.stamp(), System: sys, Grantee: p})
			} else {
				emit(Event{Kind: KindGrantPut, Stamp: g.stamp(), System: sys, Grantee: p, Role: g.role, Expires: r.expires(g.key())})
			}
		}
		return ok
	})
	st.gateways.each(func(id uint32, g *gwRec) bool {
		// A put naming a deleted system is a tombstone with the put's stamp
		// (see writer.gateway): a deletion with that stamp rebuilds it.
		if g.deleted {
			return emit(Event{Kind: KindGatewayDelete, Stamp: g.stamp(), System: g.sys, Gateway: GatewayID(id)})
		}
		if g.rekey {
			return emit(Event{Kind: KindGatewayRekey, Stamp: g.stamp(), System: g.sys, Gateway: GatewayID(id), Serial: g.serial,
				Hash: g.hash, PrevHash: g.prevHash, Expires: g.prevUntil})
		}
		return emit(Event{Kind: KindGatewayPut, Stamp: g.stamp(), System: g.sys, Gateway: GatewayID(id), Serial: g.serial, Hash: g.hash})
	})
	st.caps.each(func(id uint32, c *capRec) bool {
		return emit(Event{Kind: KindSystemCapacity, Stamp: c.stamp(), System: SystemID(id), Capacity: c.w})
	})
	st.tokens.each(func(_ uint32, t *tokenRec) bool {
		if t.revoked {
			return emit(Event{Kind: KindTokenDelete, Stamp: t.stamp(), Token: t.id})
		}
		if t.hlc != 0 {
			emit(Event{Kind: KindTokenPut, Stamp: t.stamp(), Account: t.acct, Token: t.id, Hash: t.hash})
		}
		if t.metaHLC != 0 {
			emit(Event{Kind: KindTokenMeta, Stamp: t.metaStamp(), Token: t.id, Expires: t.expires, Name: t.agent})
		}
		return ok
	})
}
