package acl

import (
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"
)

// harness drives an Index through the public API with a fake clock.
type harness struct {
	t   *testing.T
	now time.Time
	x   *Index

	nextAcct AccountID
	nextOrg  OrgID
	nextSys  SystemID
	support  AccountID
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, now: t0, nextAcct: 1, nextOrg: 1}
	h.x = New(Options{Node: 1, Now: func() time.Time { return h.now }})
	// The first support account comes from configuration: Platform events.
	h.support = h.nextAcct
	h.nextAcct++
	h.apply(
		Event{Kind: KindAccountRegister, Account: h.support, Email: "support@fleetscope.test"},
		Event{Kind: KindAccountVerify, Account: h.support, Verified: true},
		Event{Kind: KindAccountSupport, Account: h.support, Support: true},
	)
	return h
}

func (h *harness) snap() *Snapshot { return h.x.Snapshot() }

// apply stamps and applies Platform events.
func (h *harness) apply(evs ...Event) {
	h.t.Helper()
	if _, err := h.x.Apply(h.x.Stamp(evs)...); err != nil {
		h.t.Fatalf("apply: %v", err)
	}
}

func (h *harness) do(actor AccountID, op Op) error {
	h.t.Helper()
	_, err := h.x.Do(actor, op, nil)
	return err
}

func (h *harness) must(actor AccountID, op Op) {
	h.t.Helper()
	if err := h.do(actor, op); err != nil {
		h.t.Fatalf("%T %+v by %d: %v", op, op, actor, err)
	}
}

func (h *harness) wantErr(err, want error) {
	h.t.Helper()
	switch {
	case want == nil && err != nil:
		h.t.Fatalf("got %v, want success", err)
	case want != nil && !errors.Is(err, want):
		h.t.Fatalf("got %v, want %v", err, want)
	}
}

// register registers an account without verifying it.
func (h *harness) register(email string) AccountID {
	h.t.Helper()
	id := h.nextAcct
	h.nextAcct++
	h.must(Platform, RegisterAccount{Account: id, Email: email})
	return id
}

// verify marks the account's e-mail verified, as the code check (or
// support) would.
func (h *harness) verify(id AccountID) {
	h.t.Helper()
	h.apply(Event{Kind: KindAccountVerify, Account: id, Verified: true})
}

// account registers and verifies an account.
func (h *harness) account(email string) AccountID {
	h.t.Helper()
	id := h.register(email)
	h.verify(id)
	return id
}

func (h *harness) org(admin AccountID, name string) OrgID {
	h.t.Helper()
	id := h.nextOrg
	h.nextOrg++
	h.must(admin, CreateOrg{Org: id, Name: name})
	return id
}

func (h *harness) commission(actor AccountID, org OrgID, owner string) SystemID {
	h.t.Helper()
	id := h.nextSys
	h.nextSys++
	h.must(actor, Commission{System: id, GUID: "GUID-" + string(rune('A'+id%26)) + itoa(int(id)),
		Name: "Site " + itoa(int(id)), Address: "1 Solar Way", Timezone: "Europe/Berlin",
		Monitored: true, Org: org, OwnerEmail: owner})
	return id
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func (h *harness) grant(actor AccountID, sys SystemID, to Principal, r Role) {
	h.t.Helper()
	h.must(actor, GrantRole{System: sys, To: to, Role: r})
}

// advance moves the fake clock and applies expiry, as RunExpiry would.
func (h *harness) advance(d time.Duration) {
	h.now = h.now.Add(d)
	h.x.Expire(h.now)
}

// perms returns what acct holds on sys, after checking that the three ways
// of asking — Perms, Can and the bitmaps of Systems — agree.
func (h *harness) perms(acct AccountID, sys SystemID) Perm {
	h.t.Helper()
	s := h.snap()
	p := s.Perms(acct, sys)
	for b := Perm(1); b != 0 && b <= AllPerms; b <<= 1 {
		want := p.Has(b) && SystemPerms.Has(b)
		if got := s.Can(acct, b, sys); got != want {
			h.t.Fatalf("Can(%d, %s, %d) = %v, Perms says %s", acct, b, sys, got, p)
		}
		if got := s.Systems(acct, b).Contains(uint32(sys)); got != want {
			h.t.Fatalf("Systems(%d, %s) contains %d = %v, Perms says %s", acct, b, sys, got, p)
		}
	}
	return p
}

func (h *harness) wantPerms(acct AccountID, sys SystemID, want Perm) {
	h.t.Helper()
	if got := h.perms(acct, sys); got != want {
		h.t.Fatalf("account %d on system %d holds [%s], want [%s]", acct, sys, got, want)
	}
}

func (h *harness) wantSystems(acct AccountID, p Perm, want ...SystemID) {
	h.t.Helper()
	got := h.snap().Systems(acct, p).ToArray()
	w := make([]uint32, len(want))
	for i, s := range want {
		w[i] = uint32(s)
	}
	slices.Sort(w)
	if !slices.Equal(got, w) && !(len(got) == 0 && len(w) == 0) {
		h.t.Fatalf("Systems(%d, %s) = %v, want %v", acct, p, got, w)
	}
}

// secret returns the SHA-256 of s: the hash the HTTP layer hands over for a
// gateway key, a token secret or a verification code.
func secret(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// addGateway adds a gateway whose key is "key-"+serial (normalized) and returns the id
// the op allocated.
func (h *harness) addGateway(actor AccountID, sys SystemID, serial string) GatewayID {
	h.t.Helper()
	var id GatewayID
	if _, err := h.x.Do(actor, AddGateway{System: sys, Serial: serial, KeyHash: secret("key-" + NormalizeSerial(serial))}, func(evs []Event) error {
		id = evs[0].Gateway
		return nil
	}); err != nil {
		h.t.Fatalf("add gateway %q to system %d by %d: %v", serial, sys, actor, err)
	}
	if g, ok := h.snap().GatewayBySerial(sys, serial); !ok || g.ID != id {
		h.t.Fatalf("GatewayBySerial(%d, %q) = %+v %v after adding gateway %d", sys, serial, g, ok, id)
	}
	return id
}

// wantGateways checks a system's gateway list and every lookup of each
// gateway in it.
func (h *harness) wantGateways(sys SystemID, want ...Gateway) {
	h.t.Helper()
	s := h.snap()
	if got := s.Gateways(sys); !slices.Equal(got, want) {
		h.t.Fatalf("Gateways(%d) = %+v, want %+v", sys, got, want)
	}
	for _, g := range want {
		if got, ok := s.Gateway(g.ID); !ok || got != g {
			h.t.Fatalf("Gateway(%d) = %+v %v, want %+v", g.ID, got, ok, g)
		}
		if hash, ok := s.GatewayKeyHash(g.ID); !ok || hash != secret("key-"+g.Serial) {
			h.t.Fatalf("GatewayKeyHash(%d) = %x %v", g.ID, hash, ok)
		}
	}
}

// wantNoGateway checks that no lookup finds gateway id.
func (h *harness) wantNoGateway(id GatewayID) {
	h.t.Helper()
	s := h.snap()
	if g, ok := s.Gateway(id); ok {
		h.t.Fatalf("Gateway(%d) = %+v, want none", id, g)
	}
	if _, ok := s.GatewayKeyHash(id); ok {
		h.t.Fatalf("GatewayKeyHash(%d) found a key", id)
	}
}
