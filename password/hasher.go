package password

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// ErrBusy is returned when more callers wait for a derivation than
// Options.MaxWaiting allows: logins arrive faster than the cores hash them,
// and queueing more would only answer them after their clients gave up.
// The HTTP layer answers 503 with Retry-After.
var ErrBusy = errors.New("password: too many hashes waiting")

// Options configure a Hasher. The zero value is valid.
type Options struct {
	// MaxConcurrent is how many derivations run at once; 0 or less means
	// the default, GOMAXPROCS. A derivation (p=1) runs on one core, so
	// GOMAXPROCS of them keep every core busy when logins pile up; more
	// would not finish any sooner, only hold more 19 MiB buffers at once.
	MaxConcurrent int
	// MaxWaiting is how many callers may wait for a slot before Hash and
	// Verify return ErrBusy; 0 or less means the default, 32 ×
	// MaxConcurrent: at the tens of milliseconds a derivation takes, the
	// last in line waits about a second, within any client's patience,
	// while a flood beyond it is refused at once instead of queueing for
	// minutes (the rate limits of package ratelimit stop most floods
	// before they get here).
	MaxWaiting int
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
}

func (o *Options) setDefaults() {
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = runtime.GOMAXPROCS(0)
	}
	if o.MaxWaiting <= 0 {
		o.MaxWaiting = 32 * o.MaxConcurrent
	}
}

// Hasher runs Hash and Verify with a bound on how many derivations run at
// once and how many callers wait for one. Its methods are safe for
// concurrent use. A process has one Hasher (its metrics have fixed names).
type Hasher struct {
	sem        chan struct{}
	waiting    atomic.Int64
	maxWaiting int64
	m          hasherMetrics
}

type hasherMetrics struct {
	hashes   prometheus.Counter
	verified map[string]prometheus.Counter // by result
	refused  map[string]prometheus.Counter // by reason
	wait     prometheus.Histogram
	duration prometheus.Histogram
	running  prometheus.Gauge
}

// Verification results, the values of the result label.
const (
	resultOK        = "ok"        // right password, current parameters
	resultRehash    = "rehash"    // right password, hash to replace
	resultMismatch  = "mismatch"  // wrong password
	resultMalformed = "malformed" // stored hash unusable; dummy spent
	resultDummy     = "dummy"     // VerifyDummy: no account
	resultTooLong   = "too_long"  // password over MaxLength, not hashed
)

// New returns a Hasher. It computes the dummy hash VerifyDummy checks
// against (one derivation) so that the first unknown e-mail does not pay
// for it.
func New(opts Options) *Hasher {
	opts.setDefaults()
	f := promauto.With(opts.Registerer)
	const ns, sub = "fleetscope", "password"
	verified := f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "verifications_total",
		Help: "Password verifications by result: ok, rehash (right password, legacy or weaker hash replaced by the caller), mismatch, malformed (stored hash unusable), dummy (no account), too_long (refused unhashed)."},
		[]string{"result"})
	refused := f.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "refused_total",
		Help: "Hashes and verifications not run, by reason: busy (too many waiting), canceled (the caller's context ended while waiting)."},
		[]string{"reason"})
	h := &Hasher{
		sem:        make(chan struct{}, opts.MaxConcurrent),
		maxWaiting: int64(opts.MaxWaiting),
		m: hasherMetrics{
			hashes: f.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "hashes_total",
				Help: "Passwords hashed (registrations, changes, resets and rehashes at login)."}),
			verified: map[string]prometheus.Counter{},
			refused:  map[string]prometheus.Counter{},
			wait: f.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "wait_seconds",
				Help:    "Time a hash or verification waited for one of the derivations allowed at once.",
				Buckets: prometheus.ExponentialBuckets(1e-4, 4, 9)}),
			duration: f.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "derivation_seconds",
				Help:    "Time of one key derivation (argon2id or legacy PBKDF2), waiting excluded.",
				Buckets: prometheus.ExponentialBuckets(1e-3, 2, 12)}),
			running: f.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "derivations_running",
				Help: "Key derivations running now; each argon2id one holds 19 MiB."}),
		},
	}
	// Every label value exists from the start, so dashboards see 0.
	for _, r := range []string{resultOK, resultRehash, resultMismatch, resultMalformed, resultDummy, resultTooLong} {
		h.m.verified[r] = verified.WithLabelValues(r)
	}
	for _, r := range []string{"busy", "canceled"} {
		h.m.refused[r] = refused.WithLabelValues(r)
	}
	dummy()
	return h
}

// acquire waits for a derivation slot, with ctx, and returns the function
// that gives it back.
func (h *Hasher) acquire(ctx context.Context) (release func(), err error) {
	start := time.Now()
	select {
	case h.sem <- struct{}{}:
	default:
		if h.waiting.Add(1) > h.maxWaiting {
			h.waiting.Add(-1)
			h.m.refused["busy"].Inc()
			return nil, ErrBusy
		}
		select {
		case h.sem <- struct{}{}:
			h.waiting.Add(-1)
		case <-ctx.Done():
			h.waiting.Add(-1)
			h.m.refused["canceled"].Inc()
			return nil, fmt.Errorf("password: waiting to hash: %w", context.Cause(ctx))
		}
	}
	h.m.wait.Observe(time.Since(start).Seconds())
	h.m.running.Inc()
	derive := time.Now()
	return func() {
		h.m.duration.Observe(time.Since(derive).Seconds())
		h.m.running.Dec()
		<-h.sem
	}, nil
}

// Hash is the package's Hash within the Hasher's bounds. The error is
// ErrTooLong, ErrBusy or the context's, wrapped.
func (h *Hasher) Hash(ctx context.Context, pw string) ([]byte, error) {
	if len(pw) > MaxLength {
		return nil, ErrTooLong
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	h.m.hashes.Inc()
	return Hash(pw)
}

// Verify is the package's Verify within the Hasher's bounds, with one
// difference: a stored hash that is empty, malformed or out of bounds
// (including an account that never set a password) spends a dummy
// verification before answering false, so it takes as long as a wrong
// password. A password over MaxLength answers false at once, whatever the
// account. The error is ErrBusy or the context's, wrapped; then ok is
// false and the caller answers 503 (busy) or nothing (gone).
func (h *Hasher) Verify(ctx context.Context, encoded []byte, pw string) (ok, needsRehash bool, err error) {
	if len(pw) > MaxLength {
		h.m.verified[resultTooLong].Inc()
		return false, false, nil
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	parsed, perr := parse(encoded)
	if perr != nil {
		VerifyDummy(pw)
		h.m.verified[resultMalformed].Inc()
		return false, false, nil
	}
	ok, needsRehash = parsed.check(pw)
	switch {
	case needsRehash:
		h.m.verified[resultRehash].Inc()
	case ok:
		h.m.verified[resultOK].Inc()
	default:
		h.m.verified[resultMismatch].Inc()
	}
	return ok, needsRehash, nil
}

// VerifyDummy is the package's VerifyDummy within the Hasher's bounds: a
// login for an unknown e-mail calls it and answers as for a wrong password.
// The error is ErrBusy or the context's, wrapped, as Verify's would be.
func (h *Hasher) VerifyDummy(ctx context.Context, pw string) error {
	if len(pw) > MaxLength {
		h.m.verified[resultTooLong].Inc()
		return nil
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	VerifyDummy(pw)
	h.m.verified[resultDummy].Inc()
	return nil
}
