package api

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fleetscope/fleetscope/acl"
)

// idKind is one kind of id this node hands out: accounts, orgs, systems,
// gateways. Ids are dense (they index bitmaps and arrays) and never handed
// out by two nodes (DESIGN §3): a node takes them from blocks it claimed
// in ClickHouse (acl.Log.ClaimIDBlock), one block at a time.
type idKind struct {
	what string
	max  func(acl.MaxIDs) uint32 // the greatest id of the kind the state holds

	mu         sync.Mutex
	next, end  uint32 // the ids [next, end) of the current block are free
	blockAfter uint32 // the next claim starts at this block
}

// idAllocator hands out the ids of new accounts, orgs, systems and
// gateways.
type idAllocator struct {
	log                           *acl.Log
	x                             *acl.Index
	account, org, system, gateway *idKind
}

func newIDAllocator(log *acl.Log, x *acl.Index) *idAllocator {
	return &idAllocator{log: log, x: x,
		account: &idKind{what: "account", max: func(m acl.MaxIDs) uint32 { return uint32(m.Account) }},
		org:     &idKind{what: "org", max: func(m acl.MaxIDs) uint32 { return uint32(m.Org) }},
		system:  &idKind{what: "system", max: func(m acl.MaxIDs) uint32 { return uint32(m.System) }},
		gateway: &idKind{what: "gateway", max: func(m acl.MaxIDs) uint32 { return uint32(m.Gateway) }},
	}
}

// take returns a fresh id of kind k, claiming a new block when the current
// one is used up. The first claim starts past every id the state holds and
// every block claimed so far, so ids made before blocks existed, or by a
// node that restarted, are never handed out again.
func (al *idAllocator) take(ctx context.Context, k *idKind) (uint32, error) {
	if al.log == nil {
		return 0, errNoService
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.next >= k.end {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		from := k.blockAfter
		if from == 0 {
			last, ok, err := al.log.LastIDBlock(ctx, k.what)
			if err != nil {
				return 0, err
			}
			if ok {
				from = last + 1
			}
		}
		from = max(from, k.max(al.x.Snapshot().MaxIDs())/acl.IDBlockSize+1)
		block, err := al.log.ClaimIDBlock(ctx, k.what, from)
		if err != nil {
			return 0, err
		}
		if uint64(block+1)*acl.IDBlockSize > uint64(acl.MaxSystemID) {
			return 0, fmt.Errorf("%w: %s ids exhausted", acl.ErrInvalid, k.what)
		}
		k.next, k.end, k.blockAfter = block*acl.IDBlockSize, (block+1)*acl.IDBlockSize, block+1
	}
	id := k.next
	k.next++
	return id, nil
}
