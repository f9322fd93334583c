package query

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/live"
	"github.com/fleetscope/fleetscope/store"
)

// Options configure a Service. ACL is required; the zero value of every
// other field is valid (setDefaults explains each default).
type Options struct {
	// Store serves history (telemetry, panels, fleet energy). Nil: those
	// endpoints answer 503.
	Store *store.Store
	// ACL is the access-control index: every answer is restricted to the
	// caller's bitmaps of its current snapshot.
	ACL *acl.Index
	// Live is the ingest path's live state. Nil: every system is "never".
	Live live.Reader

	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock (tests set it). Nil: time.Now.
	Now func() time.Time

	// OnlineWindow: a system whose newest reading is at most this old is
	// online.
	OnlineWindow time.Duration
	// LiveRefresh is how often live state is copied into a new live view
	// (status, power, energy today, and the live sort orders).
	LiveRefresh time.Duration
	// DeltaLimit: when more systems than this changed since the base index
	// was built, it is rebuilt in the background.
	DeltaLimit int
	// RebuildInterval rebuilds the base index even without changes, so that
	// a change notification lost during start-up wiring heals.
	RebuildInterval time.Duration
	// MaxLimit bounds a page (limit=).
	MaxLimit int
	// HistoryTimeout bounds one history query in ClickHouse.
	HistoryTimeout time.Duration
	// MaxPoints bounds the points of one telemetry answer.
	MaxPoints int
	// MaxRawRange bounds the range of a raw (step=raw) telemetry query.
	MaxRawRange time.Duration
	// ArrayParamMax: fleet energy passes a caller's bitmap of at most this
	// many systems as an Array(UInt32) parameter, larger ones as a
	// serialized groupBitmap (see pushdown.go for the measurements behind
	// the default, 32).
	ArrayParamMax int
	// MinuteRetention is how long the minute tables keep their rows (the
	// raw retention; 0: for ever): fleet energy reads the minute
	// cumulative table only for minutes surely still in it.
	MinuteRetention time.Duration
	// EnergyTiles is the memory fleet energy may keep energy tiles in
	// (every system's cumulative energy at an instant; see energytiles.go):
	// 0 means DefaultEnergyTiles, a negative value keeps none, so that the
	// engine sums every request.
	EnergyTiles int64
}

// DefaultEnergyTiles is the default Options.EnergyTiles: 256 MiB, sixteen
// tiles of 2 M systems (8 bytes a system) — the two ends of several
// ranges in use at once.
const DefaultEnergyTiles = 256 << 20

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OnlineWindow <= 0 {
		// 15 min: gateways post every 1–5 min; three missed posts in a row
		// is an outage worth showing, one is not.
		o.OnlineWindow = 15 * time.Minute
	}
	if o.LiveRefresh <= 0 {
		// 1 s: a copy of 2 M systems' live state takes ~60–80 ms here, so
		// the list is at most a second behind ingest for ~7 % of one core.
		o.LiveRefresh = time.Second
	}
	if o.DeltaLimit <= 0 {
		// 4,096 changed systems are matched one by one in ≤ ~0.3 ms per
		// request; the base rebuild they then trigger costs ~12 s of
		// background CPU at 2 M systems, so it should not run more often.
		o.DeltaLimit = 4096
	}
	if o.RebuildInterval <= 0 {
		// 30 min: ~1 % of a core at 2 M systems for a safety net.
		o.RebuildInterval = 30 * time.Minute
	}
	if o.MaxLimit <= 0 {
		// 500 rows: ~150 KB of JSON, well under a millisecond to render.
		o.MaxLimit = 500
	}
	if o.HistoryTimeout <= 0 {
		o.HistoryTimeout = 10 * time.Second
	}
	if o.MaxPoints <= 0 {
		// 20,000 points: two weeks at 1 min, far more than a chart draws.
		o.MaxPoints = 20_000
	}
	if o.MaxRawRange <= 0 {
		// 48 h: 86 k readings of a 30-panel system, grouped by timestamp.
		o.MaxRawRange = 48 * time.Hour
	}
	if o.ArrayParamMax <= 0 {
		o.ArrayParamMax = defaultArrayParamMax
	}
	if o.EnergyTiles == 0 {
		o.EnergyTiles = DefaultEnergyTiles
	}
}

// Service answers the dashboard queries. Create it with New, wire
// OnACLChange to acl.Options.OnChange, mount the Handle* methods, and Close
// it at shutdown.
type Service struct {
	opts Options
	log  *slog.Logger
	m    *metrics

	cat  atomic.Pointer[catalogue]
	pend atomic.Pointer[pending]
	pmu  sync.Mutex // serializes writers of pend
	live atomic.Pointer[liveView]

	wake    chan struct{}
	rebuilt chan *baseIndex

	liveGen  atomic.Uint64
	liveUsed [numLiveKeys]atomic.Int64 // Unix ms of the last request sorting by each live key
	liveMu   sync.Mutex                // serializes live view builds

	hotMu sync.Mutex
	hot   map[weak.Pointer[roaring.Bitmap]]int64 // caller bitmaps summarized lately (Unix ms)
	last  map[acl.AccountID]summarized           // each large caller's bitmap summarized last (summarizeBase)

	wm    wmCache
	tiles *energyTiles // nil: every fleet energy request is summed in the engine

	// holdFold keeps changes pending (tests: it makes requests match them
	// against their own snapshot).
	holdFold atomic.Bool

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// New builds the catalogue from the acl index's current snapshot and the
// first live view, and starts the background work: folding acl changes into
// the catalogue, rebuilding its base when the changes grow, and refreshing
// live state.
//
// Wiring: the acl index's OnChange must reach OnACLChange from before New
// takes its snapshot on, or changes in between are missed until the next
// periodic rebuild (Options.RebuildInterval). With a forwarder like
//
//	var q atomic.Pointer[query.Service]
//	x := acl.New(acl.Options{OnChange: func(c acl.Change) {
//		if s := q.Load(); s != nil { s.OnACLChange(c) }
//	}})
//	// replay the acl log, then
//	svc, err := query.New(query.Options{ACL: x, ...}); q.Store(svc)
//	// then start x.RunExpiry, the acl tail and the HTTP server
//
// nothing changes the index between New's snapshot and q.Store.
func New(opts Options) (*Service, error) {
	if opts.ACL == nil {
		return nil, errors.New("query: Options.ACL is required")
	}
	opts.setDefaults()
	s := &Service{opts: opts, log: opts.Logger, m: newMetrics(opts.Registerer),
		wake: make(chan struct{}, 1), rebuilt: make(chan *baseIndex, 1)}
	s.pend.Store(noPending)
	if opts.Store != nil && opts.EnergyTiles > 0 {
		s.tiles = newEnergyTiles(opts.Store, opts.EnergyTiles, s.m, opts.Now, func() int { return int(s.cat.Load().n) }, opts.HistoryTimeout)
	}
	snap := opts.ACL.Snapshot()
	b := buildBase(snap)
	s.cat.Store(newCatalogue(b))
	s.m.observeBase(b)
	s.m.observeCatalogue(s.cat.Load())
	s.log.Info("query catalogue built", "systems", b.text.ids.GetCardinality(), "duration_s", b.built.Seconds())
	s.RefreshLive()
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.wg.Add(2)
	go s.foldLoop(ctx)
	go s.liveLoop(ctx)
	if s.tiles != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.tiles.run(ctx, s.log)
		}()
	}
	return s, nil
}

// Close stops the background work.
func (s *Service) Close() {
	s.stop()
	s.wg.Wait()
}

// OnACLChange takes an acl change notification (acl.Options.OnChange). It
// runs under the acl writer lock, so it only records the changed systems
// and wakes the goroutine that re-reads them. Visibility never waits for
// it: requests take the caller's bitmap from their own acl snapshot, and
// match the systems still pending against that snapshot too.
func (s *Service) OnACLChange(c acl.Change) {
	if c.Systems == nil || c.Systems.IsEmpty() {
		return // org, membership and account changes alter bitmaps, not the catalogue
	}
	s.pmu.Lock()
	p := s.pend.Load()
	np := &pending{ids: roaring.Or(p.ids, c.Systems), taken: p.taken}
	if p.taken {
		np.fresh = roaring.Or(p.fresh, c.Systems)
	}
	s.pend.Store(np)
	s.pmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// foldLoop folds pending changes into the catalogue and installs rebuilt
// bases; it is the catalogue's only writer.
func (s *Service) foldLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.RebuildInterval)
	defer t.Stop()
	rebuilding := false
	var rebuildWG sync.WaitGroup
	defer rebuildWG.Wait()
	startRebuild := func() {
		if rebuilding {
			return
		}
		rebuilding = true
		rebuildWG.Add(1)
		go func() {
			defer rebuildWG.Done()
			b := buildBase(s.opts.ACL.Snapshot())
			select {
			case s.rebuilt <- b:
			case <-ctx.Done():
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			s.fold()
			if len(s.cat.Load().delta) > s.opts.DeltaLimit {
				startRebuild()
			}
		case b := <-s.rebuilt:
			rebuilding = false
			cat := s.cat.Load().rebased(b)
			s.cat.Store(cat)
			s.m.observeBase(b)
			s.m.observeCatalogue(cat)
			s.log.Debug("query base index rebuilt", "systems", b.text.ids.GetCardinality(), "duration_s", b.built.Seconds())
		case <-t.C:
			startRebuild()
		}
	}
}

// fold re-reads the pending systems from the current acl snapshot into the
// catalogue's delta.
func (s *Service) fold() {
	if s.holdFold.Load() {
		return
	}
	s.pmu.Lock()
	p := s.pend.Load()
	if p.ids.IsEmpty() {
		s.pmu.Unlock()
		return
	}
	s.pend.Store(&pending{ids: p.ids, fresh: roaring.New(), taken: true})
	s.pmu.Unlock()
	// The snapshot is at least as new as every change in p: OnChange runs
	// after the index published it.
	snap := s.opts.ACL.Snapshot()
	cat := s.cat.Load().withChanges(snap, p.ids)
	// Publish the catalogue before dropping the pending ids: a request
	// reads pending first, so it sees each change in one or the other.
	s.cat.Store(cat)
	s.pmu.Lock()
	cur := s.pend.Load()
	s.pend.Store(&pending{ids: cur.fresh})
	s.pmu.Unlock()
	s.m.observeCatalogue(cat)
}

// Sync waits until every change reported so far is in the catalogue
// (tests and benchmarks; requests never need it).
func (s *Service) Sync(ctx context.Context) error {
	for {
		if s.pend.Load().ids.IsEmpty() {
			return nil
		}
		select {
		case s.wake <- struct{}{}:
		default:
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// RefreshLive copies live state into a new live view now (the background
// loop does it every Options.LiveRefresh).
func (s *Service) RefreshLive() {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	start := time.Now()
	lv := buildLiveView(s.opts.Live, s.cat.Load(), s.opts.Now(), s.opts.OnlineWindow, s.liveGen.Add(1))
	// Build what requests used lately now, not in the first request: the
	// live sort orders, the summaries of large caller bitmaps.
	recent := start.Add(-time.Minute).UnixMilli()
	for k := range numLiveKeys {
		if s.liveUsed[k].Load() >= recent {
			lv.ordering(k)
		}
	}
	v := view{cat: s.cat.Load(), pend: noPending, live: lv}
	for _, bm := range s.hotBitmaps() {
		e := lv.sumEntry(bm, nil)
		e.mu.Lock()
		e.unmon, e.corr = v.cat.unmon, v.catalogueCorrection(bm)
		e.mu.Unlock()
	}
	s.live.Store(lv)
	s.m.liveBuild.Observe(time.Since(start).Seconds())
}

func (s *Service) liveLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.LiveRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.RefreshLive()
		}
	}
}
