package ratelimit

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Limiter. The zero value is valid: a limiter named
// "default" allowing 10 hits per key per 15 minutes, the login limit of
// DESIGN §5.
type Options struct {
	// Name labels the limiter's metrics (limiter="login_email"); unique per
	// Metrics. Empty: "default".
	Name string
	// Limit is the hits a key may make per Window; 0 or less means the
	// default, 10: DESIGN §5's failed logins per e-mail, enough for a user
	// who mistypes a few times, few enough that guessing a 10-character
	// password this way takes longer than anyone has.
	Limit int
	// Window is how long a key's hits count, and how long a key stays
	// locked after its Limit-th hit; 0 or less means the default, 15
	// minutes (DESIGN §5's login window).
	Window time.Duration
	// MaxKeys bounds the keys tracked at once; 0 or less means the default,
	// 100 000: more e-mails than fail a login within 15 minutes on a
	// million-account platform and more client addresses than register in
	// an hour, at ~8 MiB. The package doc explains what happens beyond it.
	MaxKeys int
	// Metrics receives the limiter's series; nil: unregistered ones.
	Metrics *Metrics
	// Now is the clock (tests set it). Nil: time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.Name == "" {
		o.Name = "default"
	}
	if o.Limit <= 0 {
		o.Limit = 10
	}
	if o.Window <= 0 {
		o.Window = 15 * time.Minute
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = 100_000
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Limiter counts hits per key within a window and refuses them beyond a
// limit; the package doc gives the rules. Its methods are safe for
// concurrent use.
type Limiter struct {
	limit  uint32
	window int64 // ns
	now    func() time.Time
	base   time.Time // times are ns since base
	seed   maphash.Seed
	shards []shard
	mask   uint64

	allowed, limited prometheus.Counter
	keys             prometheus.Gauge
	evicted          [3]prometheus.Counter // by evictReason
}

type evictReason int

const (
	reasonExpired evictReason = iota
	reasonBelow
	reasonLocked
)

// maxShards bounds the shards: 16 mutexes leave little contention on any
// machine fleetscope runs on, and a shard of at least minShardKeys keeps
// the eviction order meaningful (with tiny shards "least recently hit in
// this shard" would be close to random).
const (
	maxShards    = 16
	minShardKeys = 256
)

// New returns a Limiter.
func New(opts Options) *Limiter {
	opts.setDefaults()
	opts.Metrics.claim(opts.Name)
	n := maxShards
	for n > 1 && opts.MaxKeys/n < minShardKeys {
		n /= 2
	}
	l := &Limiter{
		limit:   uint32(min(opts.Limit, 1<<31)),
		window:  int64(opts.Window),
		now:     opts.Now,
		base:    opts.Now(),
		seed:    maphash.MakeSeed(),
		shards:  make([]shard, n),
		mask:    uint64(n - 1),
		allowed: opts.Metrics.allowed.WithLabelValues(opts.Name),
		limited: opts.Metrics.limited.WithLabelValues(opts.Name),
		keys:    opts.Metrics.keys.WithLabelValues(opts.Name),
	}
	l.keys.Set(0)
	for r, label := range []string{evictExpired, evictBelow, evictLocked} {
		l.evicted[r] = opts.Metrics.evictions.WithLabelValues(opts.Name, label)
	}
	for i := range l.shards {
		s := &l.shards[i]
		s.max = max(opts.MaxKeys/n, 1)
		s.idx = make(map[uint64]int32)
		s.free = none
		s.open = list{none, none}
		s.locked = list{none, none}
	}
	return l
}

// shard holds a part of the keys: a map from key hash to entry index, the
// entries, and two lists through them — open (below the limit, least
// recently hit first) and locked (at the limit, in the order the locks
// began, which is the order they end).
type shard struct {
	mu     sync.Mutex
	idx    map[uint64]int32
	ents   []entry
	free   int32 // first free entry, linked through next
	open   list
	locked list
	max    int
	_      [64]byte // keeps neighbouring shards' mutexes off one cache line
}

type entry struct {
	key        uint64 // maphash of the key
	reset      int64  // ns since base: the window's or the lock's end
	n          uint32 // hits counted in the window
	prev, next int32
}

const none = -1

type list struct{ head, tail int32 }

func (s *shard) push(l *list, i int32) {
	e := &s.ents[i]
	e.prev, e.next = l.tail, none
	if l.tail != none {
		s.ents[l.tail].next = i
	} else {
		l.head = i
	}
	l.tail = i
}

func (s *shard) unlink(l *list, i int32) {
	e := &s.ents[i]
	if e.prev != none {
		s.ents[e.prev].next = e.next
	} else {
		l.head = e.next
	}
	if e.next != none {
		s.ents[e.next].prev = e.prev
	} else {
		l.tail = e.prev
	}
}

func (l *Limiter) listOf(s *shard, e *entry) *list {
	if e.n >= l.limit {
		return &s.locked
	}
	return &s.open
}

func (l *Limiter) clock() int64 { return int64(l.now().Sub(l.base)) }

func (l *Limiter) shardOf(key string) (*shard, uint64) {
	h := maphash.String(l.seed, key)
	return &l.shards[h&l.mask], h
}

// Allow counts a hit for key if the key is within its limit, and reports
// whether it did. When it refuses, retryAfter is how long until the key's
// lock or window ends (the caller rounds it up to whole seconds for
// Retry-After). Refused hits are not counted.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	s, h := l.shardOf(key)
	now := l.clock()
	s.mu.Lock()
	i, found := s.idx[h]
	if !found {
		i = l.insert(s, h, now)
	}
	e := &s.ents[i]
	l.expire(s, i, e, now)
	if e.n >= l.limit {
		retryAfter = time.Duration(e.reset - now)
		s.mu.Unlock()
		l.limited.Inc()
		return false, retryAfter
	}
	s.unlink(&s.open, i)
	e.n++
	if e.n == l.limit {
		// The lock lasts a full window from the hit that reached the
		// limit, and so the locked list stays in the order locks end.
		e.reset = now + l.window
		s.push(&s.locked, i)
	} else {
		s.push(&s.open, i)
	}
	s.mu.Unlock()
	l.allowed.Inc()
	return true, 0
}

// Peek reports what Allow would answer for key, without counting a hit.
func (l *Limiter) Peek(key string) (ok bool, retryAfter time.Duration) {
	s, h := l.shardOf(key)
	now := l.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := s.idx[h]
	if !found {
		return true, 0
	}
	if e := &s.ents[i]; e.n >= l.limit && now < e.reset {
		return false, time.Duration(e.reset - now)
	}
	return true, 0
}

// Refund takes back one hit Allow counted for key, as if it had not been
// made: a login that succeeds after Allow reserved its attempt. A key that
// the refund brings below its limit is no longer locked. Refunding a key
// with no hits in its current window does nothing.
func (l *Limiter) Refund(key string) {
	s, h := l.shardOf(key)
	now := l.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := s.idx[h]
	if !found {
		return
	}
	e := &s.ents[i]
	l.expire(s, i, e, now)
	if e.n == 0 {
		return
	}
	s.unlink(l.listOf(s, e), i)
	e.n--
	s.push(&s.open, i)
}

// Reset forgets key: its next hit opens a new window.
func (l *Limiter) Reset(key string) {
	s, h := l.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := s.idx[h]
	if !found {
		return
	}
	s.unlink(l.listOf(s, &s.ents[i]), i)
	delete(s.idx, h)
	s.ents[i] = entry{next: s.free}
	s.free = i
	l.keys.Dec()
}

// Len returns the number of keys tracked, at most MaxKeys; keys whose
// window ended count until their entry is reused.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.idx)
		s.mu.Unlock()
	}
	return n
}

// expire starts a new window for entry i if its window or lock has ended.
func (l *Limiter) expire(s *shard, i int32, e *entry, now int64) {
	if now < e.reset {
		return
	}
	if e.n >= l.limit {
		s.unlink(&s.locked, i)
		s.push(&s.open, i)
	}
	e.n = 0
	e.reset = now + l.window
}

// insert adds key hash h with no hits, in a free entry, a new one or, in
// a full shard, the one the package doc's eviction order picks.
func (l *Limiter) insert(s *shard, h uint64, now int64) int32 {
	var i int32
	switch {
	case s.free != none:
		i = s.free
		s.free = s.ents[i].next
		l.keys.Inc()
	case len(s.idx) < s.max:
		i = int32(len(s.ents))
		s.ents = append(s.ents, entry{})
		l.keys.Inc()
	default:
		i = l.evict(s, now)
	}
	s.idx[h] = i
	s.ents[i] = entry{key: h, reset: now + l.window}
	s.push(&s.open, i)
	return i
}

// evict removes the entry the eviction order picks and returns its index.
func (l *Limiter) evict(s *shard, now int64) int32 {
	var i int32
	var from *list
	var reason evictReason
	switch {
	case s.locked.head != none && s.ents[s.locked.head].reset <= now:
		i, from, reason = s.locked.head, &s.locked, reasonExpired
	case s.open.head != none:
		i, from, reason = s.open.head, &s.open, reasonBelow
		if s.ents[i].reset <= now {
			reason = reasonExpired
		}
	default:
		i, from, reason = s.locked.head, &s.locked, reasonLocked
	}
	s.unlink(from, i)
	delete(s.idx, s.ents[i].key)
	l.evicted[reason].Inc()
	return i
}
