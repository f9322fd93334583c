package acl

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Gateways (DESIGN §3): a gateway belongs to one system, is known to people
// by its serial and authenticates to ingest with a key of which the state
// holds only the SHA-256. Gateways change nobody's access, so they stay out
// of the bitmap index; a change to one is reported in Change.Systems (the
// search index matches serials).
//
// The register of a gateway is keyed by its id and is last-writer-wins like
// the others: a GatewayPut or GatewayDelete changes it only if its stamp is
// greater. A gateway counts while its register is a put and its system
// exists, so a system deletion — absorbing — takes its gateways with it, and
// a put arriving after the deletion stays invisible.

// GatewayID identifies a gateway. Ids are allocated by the caller (or by
// AddGateway) and never reused; 0 is not a gateway.
type GatewayID uint32

// Gateway is a gateway's record. The system's record says whether it is
// monitored (ingest refuses readings of unmonitored systems).
type Gateway struct {
	ID     GatewayID
	System SystemID
	Serial string // normalized (see NormalizeSerial), unique among the system's gateways
}

// NormalizeSerial returns the canonical form of a gateway serial: trimmed and
// upper-case, so that "aa:bb:cc:dd:ee:ff" and "AA:BB:CC:DD:EE:FF" are the
// same gateway. Serials are compared, stored and looked up in this form.
func NormalizeSerial(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// checkSerial accepts a normalized serial of 1 to 128 bytes of upper-case
// letters, digits and - : . _ — what MACs and serial labels use, and safe
// unescaped in the path of DELETE /v1/systems/{id}/gateways/{serial}.
func checkSerial(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty gateway serial", ErrInvalid)
	}
	if len(s) > maxShort {
		return fmt.Errorf("%w: gateway serial longer than %d bytes", ErrInvalid, maxShort)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == ':' || c == '.' || c == '_') {
			return fmt.Errorf("%w: gateway serial %q: only A-Z, 0-9 and - : . _ (upper-case)", ErrInvalid, s)
		}
	}
	return nil
}

func checkGateway(id GatewayID) error {
	if id == 0 {
		return fmt.Errorf("%w: gateway id 0", ErrInvalid)
	}
	return nil
}

// gwRec is the register of one gateway, replaced (never changed) by every
// event that wins it. A tombstone (deleted) keeps the stamp and the system
// only: the serial and the key hash go.
type gwRec struct {
	hlc     uint64
	serial  string
	hash    [32]byte
	sys     SystemID
	node    uint16
	deleted bool
	// A rotation (GatewayRekey) keeps the previous key hash, accepted until
	// prevUntil (Unix ms); rekey says the register is one, for Export.
	rekey     bool
	prevHash  [32]byte
	prevUntil int64
}

func (g *gwRec) stamp() Stamp { return Stamp{g.hlc, g.node} }

// gateway folds a GatewayPut, GatewayRekey or GatewayDelete into the state:
// one register, whose latest event wins.
func (w *writer) gateway(ev Event) {
	id := uint32(ev.Gateway)
	w.st.gwMax = max(w.st.gwMax, id)
	old := w.st.gateways.get(id)
	if old != nil && !ev.Stamp.After(old.stamp()) {
		return
	}
	g := &gwRec{hlc: ev.Stamp.HLC, node: ev.Stamp.Node, sys: ev.System, deleted: true}
	if ev.Kind == KindGatewayPut || ev.Kind == KindGatewayRekey {
		if s := w.st.systems.get(uint32(ev.System)); s == nil || !s.deleted {
			g.serial, g.hash, g.deleted = ev.Serial, ev.Hash, false
			if ev.Kind == KindGatewayRekey {
				g.rekey, g.prevHash, g.prevUntil = true, ev.PrevHash, ev.Expires
			}
		} // else: the system is gone for good, and its gateways with it
	}
	if old != nil && !old.deleted {
		w.gwList(old.sys, ev.Gateway, false)
		w.ch.system(old.sys)
	}
	w.st.gateways.set(id, g, w.gen())
	if !g.deleted {
		w.gwList(g.sys, ev.Gateway, true)
	}
	w.ch.system(ev.System)
}

// gwList adds a gateway to or removes it from its system's list, which holds
// the system's gateways whose register is a put, by serial and then id. The
// gateway's register must already say so when it is added. Lists are
// replaced, never changed: they are short.
func (w *writer) gwList(sys SystemID, id GatewayID, on bool) {
	var cur []GatewayID
	if p := w.st.gwLists.get(uint32(sys)); p != nil {
		cur = *p
	}
	var next []GatewayID
	if on {
		serial := w.st.gateways.get(uint32(id)).serial
		i, _ := slices.BinarySearchFunc(cur, id, func(e, id GatewayID) int {
			if c := strings.Compare(w.st.gateways.get(uint32(e)).serial, serial); c != 0 {
				return c
			}
			return cmp.Compare(e, id)
		})
		next = slices.Insert(slices.Clone(cur), i, id)
	} else {
		i := slices.Index(cur, id)
		if i < 0 {
			return
		}
		next = slices.Delete(slices.Clone(cur), i, i+1)
	}
	if len(next) == 0 {
		w.st.gwLists.set(uint32(sys), nil, w.gen())
		return
	}
	w.st.gwLists.set(uint32(sys), &next, w.gen())
}

// dropGateways turns the gateways of a system being deleted into tombstones,
// keeping their stamps: that answers every later event exactly as the put
// naming a deleted system would, and frees their serials and key hashes.
func (w *writer) dropGateways(sys SystemID) {
	p := w.st.gwLists.get(uint32(sys))
	if p == nil {
		return
	}
	for _, id := range *p {
		g := w.st.gateways.get(uint32(id))
		w.st.gateways.set(uint32(id), &gwRec{hlc: g.hlc, node: g.node, sys: sys, deleted: true}, w.gen())
	}
	w.st.gwLists.set(uint32(sys), nil, w.gen())
}

// gateway returns the register of a gateway that counts: a put, on an
// existing system.
func (s *Snapshot) gateway(id GatewayID) *gwRec {
	g := s.gateways.get(uint32(id))
	if g == nil || g.deleted || !s.systems.get(uint32(g.sys)).live() {
		return nil
	}
	return g
}

// Gateways returns the gateways of an existing system, by serial (and by id
// for the rare serial two gateways share: added concurrently on two nodes).
func (s *Snapshot) Gateways(sys SystemID) []Gateway {
	p := s.gwLists.get(uint32(sys))
	if p == nil || !s.systems.get(uint32(sys)).live() {
		return nil
	}
	out := make([]Gateway, len(*p))
	for i, id := range *p {
		out[i] = Gateway{ID: id, System: sys, Serial: s.gateways.get(uint32(id)).serial}
	}
	return out
}

// Gateway returns a gateway of an existing system.
func (s *Snapshot) Gateway(id GatewayID) (Gateway, bool) {
	g := s.gateway(id)
	if g == nil {
		return Gateway{}, false
	}
	return Gateway{ID: id, System: g.sys, Serial: g.serial}, true
}

// GatewayBySerial finds a gateway of an existing system by serial
// (normalized before lookup). If two gateways share the serial it returns
// the smaller id, the same on every node.
func (s *Snapshot) GatewayBySerial(sys SystemID, serial string) (Gateway, bool) {
	serial = NormalizeSerial(serial)
	p := s.gwLists.get(uint32(sys))
	if p == nil || !s.systems.get(uint32(sys)).live() {
		return Gateway{}, false
	}
	i, _ := slices.BinarySearchFunc(*p, serial, func(id GatewayID, serial string) int {
		return strings.Compare(s.gateways.get(uint32(id)).serial, serial)
	})
	if i == len(*p) || s.gateways.get(uint32((*p)[i])).serial != serial {
		return Gateway{}, false
	}
	return Gateway{ID: (*p)[i], System: sys, Serial: serial}, true
}

// GatewayKeyHash returns the SHA-256 of a gateway's ingest key, for
// authenticating POST /v1/ingest: the caller hashes the key presented and
// compares with crypto/subtle. A gateway that was removed, or whose system
// was deleted, has none.
func (s *Snapshot) GatewayKeyHash(id GatewayID) ([32]byte, bool) {
	g := s.gateway(id)
	if g == nil {
		return [32]byte{}, false
	}
	return g.hash, true
}

// AddGateway adds a gateway to a system (POST /v1/systems/{id}/gateways).
// Needs add_gateway on the system. The caller generates the ingest key,
// shows it once and passes only its SHA-256. The serial must not be taken by
// another gateway of the system.
//
// Gateway is the new gateway's id. The caller may allocate it (it must be
// new: an id ever used is ErrExists); 0 lets the op take the next id after
// the largest this node has seen. Two nodes allocating concurrently can pick
// the same id; the register is last-writer-wins, so the later gateway keeps
// the id and the other disappears (its key stops working and it is no
// longer listed) — a deployment of several nodes should allocate ids
// disjointly. The id taken is in the GatewayPut event handed to persist,
// and Snapshot.GatewayBySerial finds the gateway once Do returns.
type AddGateway struct {
	Gateway GatewayID // 0: allocated by the op
	System  SystemID
	Serial  string
	KeyHash [32]byte
}

func (op AddGateway) plan(s *Snapshot, a actor) ([]Event, error) {
	if _, err := s.needOnSystem(a, PermAddGateway, op.System); err != nil {
		return nil, err
	}
	serial := NormalizeSerial(op.Serial)
	if err := checkSerial(serial); err != nil {
		return nil, err
	}
	if op.KeyHash == ([32]byte{}) {
		return nil, fmt.Errorf("%w: gateway without an ingest key hash", ErrInvalid)
	}
	id := op.Gateway
	switch {
	case id == 0 && s.gwMax == math.MaxUint32:
		return nil, fmt.Errorf("%w: gateway ids exhausted", ErrInvalid)
	case id == 0:
		id = GatewayID(s.gwMax + 1)
	case s.gateways.get(uint32(id)) != nil:
		return nil, fmt.Errorf("%w: gateway %d", ErrExists, id)
	}
	if _, ok := s.GatewayBySerial(op.System, serial); ok {
		return nil, fmt.Errorf("%w: gateway serial %q on system %d", ErrExists, serial, op.System)
	}
	return []Event{{Kind: KindGatewayPut, System: op.System, Gateway: id, Serial: serial, Hash: op.KeyHash}}, nil
}

// RemoveGateway removes a system's gateway by serial (DELETE
// /v1/systems/{id}/gateways/{serial}); its key stops working. Needs
// add_gateway on the system (DESIGN §4: "add / remove a gateway"). If two
// gateways share the serial (added concurrently on two nodes), both go.
type RemoveGateway struct {
	System SystemID
	Serial string
}

func (op RemoveGateway) plan(s *Snapshot, a actor) ([]Event, error) {
	if _, err := s.needOnSystem(a, PermAddGateway, op.System); err != nil {
		return nil, err
	}
	serial := NormalizeSerial(op.Serial)
	var evs []Event
	for _, g := range s.Gateways(op.System) {
		if g.Serial == serial {
			evs = append(evs, Event{Kind: KindGatewayDelete, System: op.System, Gateway: g.ID})
		}
	}
	if len(evs) == 0 {
		return nil, fmt.Errorf("%w: gateway %q on system %d", ErrNotFound, serial, op.System)
	}
	return evs, nil
}

// RotateGatewayKey gives a system's gateway (by serial) a new ingest key
// (POST /v1/systems/{id}/gateways/{serial}/key): the gateway keeps its id —
// and so its seq window — and the previous key keeps working until Grace,
// so that the gateway can be reconfigured without losing a reading. A key
// older than the previous one stops at once. Needs add_gateway on the
// system. The caller generates the key and passes its SHA-256.
type RotateGatewayKey struct {
	System  SystemID
	Serial  string
	KeyHash [32]byte
	Grace   time.Time // when the previous key stops; after the snapshot's time
}

func (op RotateGatewayKey) plan(s *Snapshot, a actor) ([]Event, error) {
	if _, err := s.needOnSystem(a, PermAddGateway, op.System); err != nil {
		return nil, err
	}
	g, ok := s.GatewayBySerial(op.System, op.Serial)
	if !ok {
		return nil, fmt.Errorf("%w: gateway %q on system %d", ErrNotFound, NormalizeSerial(op.Serial), op.System)
	}
	if op.KeyHash == ([32]byte{}) {
		return nil, fmt.Errorf("%w: gateway without an ingest key hash", ErrInvalid)
	}
	if op.Grace.UnixMilli() <= s.asOf {
		return nil, fmt.Errorf("%w: grace ending at %s, not in the future", ErrInvalid, op.Grace.UTC().Format(time.RFC3339))
	}
	rec := s.gateway(g.ID)
	return []Event{{Kind: KindGatewayRekey, System: op.System, Gateway: g.ID, Serial: g.Serial, Hash: op.KeyHash,
		PrevHash: rec.hash, Expires: op.Grace.UnixMilli()}}, nil
}
