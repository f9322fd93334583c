package api

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/ratelimit"
)

// Limits are the abuse limits of DESIGN §5. The zero value is valid: each
// field's default is set in setDefaults, and ≤ 0 never means unlimited.
type Limits struct {
	// LoginFailures failed logins per e-mail within LoginWindow lock that
	// e-mail's logins — the right password included — until the window
	// has passed. Default 10 per 15 min: enough for a user who mistypes,
	// too few to guess a 10-character password in any lifetime.
	LoginFailures int
	LoginWindow   time.Duration
	// LoginFailuresPerIP is the same per client address, against one
	// address trying many e-mails. Default 100 per LoginWindow (an office
	// behind one NAT has many users).
	LoginFailuresPerIP int
	// RegistrationsPerIP per hour. Default 10: a household registers a
	// few accounts, a script hundreds.
	RegistrationsPerIP int
	// ResetsPerIP and ResetsPerEmail are password-reset requests per hour.
	// Defaults 10 and 3: each mails a code, and mail must not be a weapon.
	ResetsPerIP    int
	ResetsPerEmail int
	// CodeTries wrong tries burn a verification or reset code. Default 5:
	// a 50-bit code is not guessed in 5 tries (or 5 per node).
	CodeTries int
}

func (l *Limits) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.LoginFailures, 10)
	def(&l.LoginFailuresPerIP, 100)
	def(&l.RegistrationsPerIP, 10)
	def(&l.ResetsPerIP, 10)
	def(&l.ResetsPerEmail, 3)
	def(&l.CodeTries, 5)
	if l.LoginWindow <= 0 {
		l.LoginWindow = 15 * time.Minute
	}
}

// limiters are the keyed limiters of Limits, each with its own metrics
// (fleetscope_ratelimit_*{limiter}).
type limiters struct {
	loginEmail, loginIP, register, resetIP, resetEmail, codeTries *ratelimit.Limiter
}

func newLimiters(l Limits, m *ratelimit.Metrics, now func() time.Time) limiters {
	mk := func(name string, limit int, window time.Duration) *ratelimit.Limiter {
		return ratelimit.New(ratelimit.Options{Name: name, Limit: limit, Window: window, Metrics: m, Now: now})
	}
	return limiters{
		loginEmail: mk("login_email", l.LoginFailures, l.LoginWindow),
		loginIP:    mk("login_ip", l.LoginFailuresPerIP, l.LoginWindow),
		register:   mk("register_ip", l.RegistrationsPerIP, time.Hour),
		resetIP:    mk("reset_ip", l.ResetsPerIP, time.Hour),
		resetEmail: mk("reset_email", l.ResetsPerEmail, time.Hour),
		// A code lives 24 h at most; its tries count as long.
		codeTries: mk("code_tries", l.CodeTries, 24*time.Hour),
	}
}

// errRateLimited: too many requests of a kind from a client or for an
// e-mail; the answer says when to retry. 429.
var errRateLimited = errors.New("too many requests")

// limited returns errRateLimited with its Retry-After and a reason.
func limited(after time.Duration, format string, args ...any) error {
	return &retryAfter{err: fmt.Errorf("%w: %s", errRateLimited, fmt.Sprintf(format, args...)), after: after}
}

// allow counts a hit of key on l, or answers 429.
func allow(l *ratelimit.Limiter, key, what string) error {
	if ok, after := l.Allow(key); !ok {
		return limited(after, "%s; retry in %s", what, after.Round(time.Second))
	}
	return nil
}

// clientIP is the address a request comes from: the peer, or — when the
// peer is a trusted proxy (Options.TrustedProxies) — the nearest address
// in X-Forwarded-For that is not one.
func (s *Server) clientIP(ctx *fasthttp.RequestCtx) string {
	peer, _ := netip.AddrFromSlice(ctx.RemoteIP())
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer.String()
	}
	hops := strings.Split(string(ctx.Request.Header.Peek("X-Forwarded-For")), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if a = a.Unmap(); !s.trusted(a) {
			return a.String()
		}
	}
	return peer.String()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParseCIDRs reads a comma-separated list of addresses and prefixes
// (10.0.0.0/8, 127.0.0.1), for --trusted-proxies.
func ParseCIDRs(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// LimitConnections wraps the listener so that one client address holds at
// most perIP connections at once (DESIGN §5): a client over the cap has its
// connection closed at once. The refusals are counted in
// fleetscope_ratelimit_*{limiter="connections"}. Call it once.
func (s *Server) LimitConnections(ln net.Listener, perIP int) net.Listener {
	c := ratelimit.NewConnLimiter(ratelimit.ConnOptions{Name: "connections", PerAddr: perIP, Metrics: s.rateMetrics})
	return ratelimit.LimitListener(ln, c)
}
