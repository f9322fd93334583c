package acl

import (
	"context"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
)

// Options configures an Index. The zero value is valid.
type Options struct {
	// Node is this node's id in event stamps; nodes sharing an event log must
	// have distinct ids. Default 0.
	Node uint16

	// Now is the wall clock, for stamps and expiry. Default time.Now; tests
	// pass a fake clock.
	Now func() time.Time

	// OnChange, if set, is called after every Apply, Do and Expire that
	// changed something, with the change (Change.Snapshot is the new state).
	// It runs under the writer lock, in order: it must be quick and must not
	// call Apply, Do, Replay or Expire. Replay does not call it.
	OnChange func(Change)
}

// Index is the access-control state of one node with its bitmap index. Any
// number of goroutines may read it (Snapshot); one at a time writes it
// (Apply, Do, Expire serialize on a mutex).
type Index struct {
	opts  Options
	clock *HLC
	cur   atomic.Pointer[Snapshot]

	mu  sync.Mutex // serializes writers
	w   writer
	seq uint64
}

// New returns an empty index whose time (see Snapshot.AsOf) starts at
// opts.Now().
func New(opts Options) *Index {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	x := &Index{opts: opts, clock: NewHLC(opts.Node, opts.Now)}
	x.w.st.live = roaring.New()
	x.w.st.asOf = opts.Now().UnixMilli()
	x.w.b = batch{gen: 1, recs: map[any]struct{}{}, owned: map[*roaring.Bitmap]struct{}{}}
	x.publish()
	return x
}

// Clock returns the node's hybrid logical clock.
func (x *Index) Clock() *HLC { return x.clock }

// Snapshot returns the current state. It never blocks; the snapshot never
// changes, and includes every change whose Apply returned before the call.
func (x *Index) Snapshot() *Snapshot { return x.cur.Load() }

// Change says what one Apply, Do or Expire changed: enough for a dependent
// index (the query package's search index) to refresh just those entries.
type Change struct {
	Snapshot *Snapshot // the state including the change

	// Systems whose record, owner, grants or gateways changed — created,
	// edited, deleted, granted, revoked, expired, a gateway added or
	// removed. Their owner, installers, e-mails (Snapshot.Emails) and
	// gateway serials (Snapshot.Gateways) may differ. Nil if none. The
	// bitmap is the caller's.
	Systems *roaring.Bitmap
	// Orgs whose name, members or member roles changed, ascending. Their
	// members' bitmaps may differ.
	Orgs []OrgID
	// Accounts whose registration, verification, support flag or name
	// changed, or that gained or lost their e-mail, ascending. Their bitmaps
	// may differ. (Bitmaps also change through grants to an account's e-mail
	// or orgs, which Systems reports by system.) Tokens, passwords and
	// verification codes change no bitmap and are not reported.
	Accounts []AccountID
}

// Empty reports whether nothing changed.
func (c Change) Empty() bool {
	return (c.Systems == nil || c.Systems.IsEmpty()) && len(c.Orgs) == 0 && len(c.Accounts) == 0
}

// Apply folds events into the state and publishes the result as one new
// snapshot, visible to every read that starts after Apply returns. Events may
// come in any order and more than once: the result depends only on the set
// of events applied (see the package doc). Apply does not authorize: events
// reaching it were authorized where they were made (see Plan and Do).
//
// All events are validated first; if one is invalid, none is applied.
// Each call copies what it changes once, so several events in one call cost
// less than one call each; for the whole log at start-up use Replay.
func (x *Index) Apply(evs ...Event) (Change, error) {
	for i, ev := range evs {
		if err := ev.Validate(); err != nil {
			return Change{}, fmt.Errorf("event %d: %w", i, err)
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.applyLocked(evs), nil
}

func (x *Index) applyLocked(evs []Event) Change {
	for _, ev := range evs {
		x.clock.Observe(ev.Stamp)
		x.w.apply(ev)
	}
	return x.publish()
}

// Replay applies the event log at start-up: batches of events, in any order,
// as one change. Unlike calls to Apply per batch, records are changed in
// place instead of copied once per batch, so replay is faster and leaves no
// garbage behind; readers see the state before Replay until it publishes
// once at the end. Replay neither reports changes nor calls OnChange:
// dependent indexes build themselves from the snapshot it returns.
//
// If batches yields an error or an invalid event, Replay stops there,
// publishes what it applied and returns the error.
func (x *Index) Replay(batches iter.Seq2[[]Event, error]) (*Snapshot, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.w.ch.off = true
	defer func() { x.w.ch = changes{} }()
	// Nothing published yet but empty tables: no reader can hold a record,
	// so records change in place all through.
	st := &x.w.st
	x.w.b.all = st.systems.root == nil && st.accounts.root == nil && st.emails.root == nil && st.orgs.root == nil &&
		st.creds.root == nil
	var err error
	for evs, berr := range batches {
		if err = berr; err != nil {
			break
		}
		for i, ev := range evs {
			if err = ev.Validate(); err != nil {
				err = fmt.Errorf("replay: event %d of batch: %w", i, err)
				break
			}
		}
		if err != nil {
			break
		}
		for _, ev := range evs {
			x.clock.Observe(ev.Stamp)
			x.w.apply(ev)
		}
	}
	if x.w.b.all {
		x.w.compact()
	}
	return x.publish().Snapshot, err
}

// Expire moves the state's time to now (never backwards): grants whose
// expiry is at or before now stop counting. Expiry is a function of time,
// not an event, so nodes agree without exchanging anything; RunExpiry calls
// this on a ticker.
func (x *Index) Expire(now time.Time) Change {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.w.expire(now.UnixMilli())
	return x.publish()
}

// DefaultExpiryInterval is how often RunExpiry expires grants: a grant stops
// counting at most this long after its expiry, well inside DESIGN's 1 s.
const DefaultExpiryInterval = 250 * time.Millisecond

// RunExpiry calls Expire with the index's clock every interval until ctx is
// done. interval ≤ 0 means DefaultExpiryInterval.
func (x *Index) RunExpiry(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultExpiryInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			x.Expire(x.opts.Now())
		}
	}
}

// publish makes the working state the current snapshot and starts a new
// generation, which freezes everything written so far.
func (x *Index) publish() Change {
	w := &x.w
	for bm := range w.b.owned {
		bm.RunOptimize()
	}
	if w.liveOwned {
		w.st.live.RunOptimize()
	}
	x.seq++
	snap := &Snapshot{state: w.st, seq: x.seq}
	x.cur.Store(snap)
	w.b.gen++
	w.b.all = false
	// A map keeps its size after clear: drop one a big batch blew up.
	if len(w.b.recs) > 4096 {
		w.b.recs = map[any]struct{}{}
	}
	clear(w.b.recs)
	if len(w.b.owned) > 4096 {
		w.b.owned = map[*roaring.Bitmap]struct{}{}
	}
	clear(w.b.owned)
	w.liveOwned = false

	ch := Change{Snapshot: snap, Systems: w.ch.systems, Orgs: sortedKeys(w.ch.orgs), Accounts: sortedKeys(w.ch.accounts)}
	w.ch = changes{}
	if x.opts.OnChange != nil && !ch.Empty() {
		x.opts.OnChange(ch)
	}
	return ch
}

// Plan authorizes op for actor against the current state and returns the
// events that carry it out, stamped by this node's clock. It changes nothing:
// the caller persists the events and then applies them. Between Plan and
// Apply other changes may land; they are ordered by stamp like any
// concurrent change. Do runs the three steps without that gap.
func (x *Index) Plan(actor AccountID, op Op) ([]Event, error) {
	evs, err := x.Snapshot().plan(actor, op)
	if err != nil {
		return nil, err
	}
	x.stamp(evs)
	return evs, nil
}

// Do authorizes op for actor, persists the events that carry it out, and
// applies them, holding the writer lock throughout, so that on this node the
// check and the change are atomic. persist (which may be nil) receives the
// stamped events and must not retain the slice; if it fails nothing is
// applied and its error is returned.
func (x *Index) Do(actor AccountID, op Op, persist func([]Event) error) (Change, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	evs, err := x.cur.Load().plan(actor, op)
	if err != nil {
		return Change{}, err
	}
	x.stamp(evs)
	if persist != nil {
		if err := persist(evs); err != nil {
			return Change{}, fmt.Errorf("persist acl events: %w", err)
		}
	}
	return x.applyLocked(evs), nil
}

// Stamp gives each event a fresh stamp from the node's clock and returns the
// slice. It is for events fleetscope makes itself (Platform as actor:
// configuration, the first support account, demo data), which are applied
// without authorization.
func (x *Index) Stamp(evs []Event) []Event {
	x.stamp(evs)
	return evs
}

func (x *Index) stamp(evs []Event) {
	for i := range evs {
		evs[i].Stamp = x.clock.Now()
	}
}
