package mail

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// ErrRateLimited is a message not sent because its recipient has had its
// share of mail; the error is a *RateLimitError saying when to try again.
var ErrRateLimited = errors.New("mail: too many mails to this address")

// RateLimitError is the error Limited returns for a message over the limit.
type RateLimitError struct {
	// RetryAfter is when the recipient's window ends.
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v; retry after %v", ErrRateLimited, e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, ErrRateLimited) hold.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// LimitOptions configure Limit. The zero value is valid.
type LimitOptions struct {
	// Max is the number of mails one address receives per Window.
	// Default 10: a registration, a few resends and invitations fit, a
	// flood does not.
	Max int
	// Window is the period Max counts over. Default 1 h.
	Window time.Duration
	// MaxAddresses bounds the addresses tracked at once, so that memory
	// stays bounded. When it is reached and none of them has an expired
	// window, mail to a new address is refused until one expires: that
	// many recipients within one window is a flood. Default 100 000 (a few
	// MB).
	MaxAddresses int
	// Metrics count the refused mails. Default: unregistered.
	Metrics *Metrics
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Limited is a Mailer that passes at most Max messages per Window to each
// address to the mailer it wraps. The count is per process: with several
// nodes an address receives at most nodes×Max per window, which still
// bounds a flood.
type Limited struct {
	next Mailer
	opts LimitOptions

	mu    sync.Mutex
	addrs map[string]*window
	// freeAt is when the oldest tracked window ends: before it, a sweep of
	// a full map frees nothing, so none runs.
	freeAt time.Time
}

type window struct {
	start time.Time
	n     int
}

// Limit wraps next with a per-recipient limit.
func Limit(next Mailer, opts LimitOptions) *Limited {
	if opts.Max <= 0 {
		opts.Max = 10
	}
	if opts.Window <= 0 {
		opts.Window = time.Hour
	}
	if opts.MaxAddresses <= 0 {
		opts.MaxAddresses = 100_000
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Limited{next: next, opts: opts, addrs: make(map[string]*window)}
}

// Send implements Mailer. A message over the limit is not passed on and
// returns a *RateLimitError; one that is passed on counts even if the
// wrapped mailer fails, so that failures cannot be used to retry
// without limit.
func (l *Limited) Send(ctx context.Context, m Message) error {
	if err := l.take(strings.ToLower(m.To)); err != nil {
		l.opts.Metrics.limited.Inc()
		return err
	}
	return l.next.Send(ctx, m)
}

func (l *Limited) take(addr string) error {
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.addrs[addr]
	if w != nil && now.Sub(w.start) >= l.opts.Window {
		w.start, w.n = now, 0
	}
	if w == nil {
		if len(l.addrs) >= l.opts.MaxAddresses && !now.Before(l.freeAt) {
			l.sweep(now)
		}
		if len(l.addrs) >= l.opts.MaxAddresses {
			return &RateLimitError{RetryAfter: l.freeAt.Sub(now)}
		}
		w = &window{start: now}
		l.addrs[addr] = w
	}
	if w.n >= l.opts.Max {
		return &RateLimitError{RetryAfter: l.opts.Window - now.Sub(w.start)}
	}
	w.n++
	return nil
}

// sweep forgets the addresses whose window has ended and notes when the
// oldest remaining one ends. It runs only when the map is full and that
// moment has passed, so a flood of new addresses costs one sweep per
// window end, not one per message.
func (l *Limited) sweep(now time.Time) {
	oldest := now
	for a, w := range l.addrs {
		if now.Sub(w.start) >= l.opts.Window {
			delete(l.addrs, a)
		} else if w.start.Before(oldest) {
			oldest = w.start
		}
	}
	l.freeAt = oldest.Add(l.opts.Window)
}
