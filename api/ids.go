package api

import "github.com/fleetscope/fleetscope/acl"

// idAlloc hands out the dense ids of new accounts, orgs, systems and
// gateways: one past the highest this node knows, including deleted
// systems (a system id is never reused). Ids made concurrently on two nodes
// can collide; the loser's change then fails or merges by the usual rules —
// run account/org/system creation through one node when that matters.
type idAlloc struct {
	account acl.AccountID
	org     acl.OrgID
	system  acl.SystemID
	gateway acl.GatewayID
}

func (al *idAlloc) init(s *acl.Snapshot) { al.observe(s) }

// observe moves past ids this node has not handed out itself (other nodes',
// or those in the log at start-up).
func (al *idAlloc) observe(s *acl.Snapshot) {
	m := s.MaxIDs()
	al.account = max(al.account, m.Account)
	al.org = max(al.org, m.Org)
	al.system = max(al.system, m.System)
	al.gateway = max(al.gateway, m.Gateway)
}

// allocate runs take on the allocator, brought up to date with what the
// current snapshot knows, under its lock.
func (s *Server) allocate(take func(al *idAlloc)) {
	s.allocMu.Lock()
	defer s.allocMu.Unlock()
	s.alloc.observe(s.x.Snapshot())
	take(&s.alloc)
}

func (s *Server) nextAccount() (id acl.AccountID) {
	s.allocate(func(al *idAlloc) { al.account++; id = al.account })
	return id
}

func (s *Server) nextOrg() (id acl.OrgID) {
	s.allocate(func(al *idAlloc) { al.org++; id = al.org })
	return id
}

func (s *Server) nextSystem() (id acl.SystemID) {
	s.allocate(func(al *idAlloc) { al.system++; id = al.system })
	return id
}

func (s *Server) nextGateway() (id acl.GatewayID) {
	s.allocate(func(al *idAlloc) { al.gateway++; id = al.gateway })
	return id
}
