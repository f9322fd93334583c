package api

import (
	"bytes"
	"fmt"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/api/reply"
)

// Sessions. A session is an account token (acl: fst_<id>_<secret>, only the
// secret's hash stored): a client sends it as `Authorization: Bearer`, the
// dashboard as the HttpOnly cookie CookieName, which a login sets when asked
// to ({"cookie": true}) instead of answering the token, so that no script
// ever holds it. A session expires SessionTTL after its last use: using a
// session moves its expiry (an acl event, so every node agrees) when less
// than SessionTTL − a day of it is left — at most about once a day, which
// is also how precisely the session list tells when it was last used.
// Revocations are acl events too: a token revoked on one node stops working
// on every node within the event log's 2 s.

// CookieName is the session cookie of the web dashboard.
const CookieName = "fleetscope_session"

// authenticated is who a request comes from and by which credential.
type authenticated struct {
	acct    acl.AccountID
	tokenID string
	cookie  bool // by the session cookie: state changes must come from our origin
}

// authenticate resolves the request's credential — a bearer token, else the
// session cookie — to an account, and keeps its session alive.
func (s *Server) authenticate(ctx *fasthttp.RequestCtx) (authenticated, error) {
	tok, ok := reply.Bearer(ctx)
	byCookie := false
	if !ok {
		if v := ctx.Request.Header.Cookie(CookieName); len(v) > 0 {
			tok, ok, byCookie = v, true, true
		}
	}
	if !ok {
		return authenticated{}, errUnauthorized
	}
	snap := s.x.Snapshot()
	acct, ok := snap.Authenticate(tok)
	if !ok {
		return authenticated{}, errUnauthorized
	}
	id, _ := acl.TokenParts(string(tok))
	s.touch(snap, id)
	return authenticated{acct: acct, tokenID: id, cookie: byCookie}, nil
}

// touch moves a session's expiry when it is due (see above), off the
// request's path: the request does not wait for the event log.
func (s *Server) touch(snap *acl.Snapshot, id string) {
	sess, ok := snap.SessionOf(id)
	if !ok || s.opts.Log == nil || sess.Expires.Sub(s.opts.Now()) > s.opts.SessionTTL-24*time.Hour {
		return
	}
	if _, busy := s.touching.LoadOrStore(id, struct{}{}); busy {
		return
	}
	go func() {
		defer s.touching.Delete(id)
		if _, err := s.opts.Log.Do(acl.Platform, acl.TouchToken{ID: id, ExpiresAt: s.opts.Now().Add(s.opts.SessionTTL)}); err != nil {
			s.opts.Logger.Warn("api: session expiry not moved; the next request retries", "err", err)
		}
	}()
}

// sameOrigin checks that a state-changing request authenticated by the
// session cookie comes from the dashboard's own origin: a page of another
// site cannot make the browser send the cookie with SameSite=Strict, and
// this check holds even for browsers that ignore SameSite. An Origin of an
// allowed CORS origin passes too.
func (s *Server) sameOrigin(ctx *fasthttp.RequestCtx) error {
	origin := ctx.Request.Header.Peek("Origin")
	if len(origin) == 0 {
		// Browsers send Origin with every cross-origin request and with
		// same-origin POST, PUT and DELETE; its absence means a client
		// that is no browser — or Sec-Fetch-Site says where it came from.
		if site := ctx.Request.Header.Peek("Sec-Fetch-Site"); len(site) == 0 || string(site) == "same-origin" || string(site) == "none" {
			return nil
		}
		return fmt.Errorf("%w: a cross-site request may not change anything", errForbidden)
	}
	if bytes.Equal(origin, s.ownOrigin(ctx)) || s.corsAllowed(origin) {
		return nil
	}
	return fmt.Errorf("%w: origin %q may not change anything here", errForbidden, origin)
}

// ownOrigin is scheme://host of the request as the browser addressed it.
func (s *Server) ownOrigin(ctx *fasthttp.RequestCtx) []byte {
	scheme := "http://"
	if s.secure(ctx) {
		scheme = "https://"
	}
	return append([]byte(scheme), ctx.Host()...)
}

// secure reports whether the browser reached us over TLS: directly, or
// through a trusted proxy that says so.
func (s *Server) secure(ctx *fasthttp.RequestCtx) bool {
	if ctx.IsTLS() {
		return true
	}
	return string(ctx.Request.Header.Peek("X-Forwarded-Proto")) == "https" && s.trusted(remoteAddr(ctx))
}

// setSessionCookie hands the browser its session: HttpOnly (no script
// reads it), SameSite=Strict (no other site's page sends it), Secure over
// TLS, for as long as the session lives.
func (s *Server) setSessionCookie(ctx *fasthttp.RequestCtx, token string, maxAge time.Duration) {
	var c fasthttp.Cookie
	c.SetKey(CookieName)
	c.SetValue(token)
	c.SetPath("/")
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	c.SetSecure(s.secure(ctx))
	c.SetMaxAge(int(maxAge / time.Second))
	if maxAge <= 0 {
		c.SetExpire(fasthttp.CookieExpireDelete)
		c.SetMaxAge(-1)
	}
	ctx.Response.Header.SetCookie(&c)
}

type sessionJSON struct {
	ID        string    `json:"id"`
	Created   time.Time `json:"created"`
	LastUsed  time.Time `json:"last_used"`
	Expires   time.Time `json:"expires"`
	UserAgent string    `json:"user_agent"`
	Current   bool      `json:"current"`
}

// listSessions: GET /v1/sessions, the caller's sessions — never a secret.
func (s *Server) listSessions(c *call) error {
	var out []sessionJSON
	for _, sess := range c.snapshot().Sessions(c.caller) {
		out = append(out, sessionJSON{ID: sess.ID, Created: sess.Created, LastUsed: sess.Touched, Expires: sess.Expires,
			UserAgent: sess.Agent, Current: sess.ID == c.tokenID})
	}
	return list(c, out, len(out), "")
}

// logout: DELETE /v1/sessions/current revokes the session the request
// came with (and clears the dashboard's cookie).
func (s *Server) logout(c *call) error {
	if _, err := s.opts.Log.Do(c.caller, acl.RevokeToken{ID: c.tokenID}); err != nil {
		return err
	}
	s.setSessionCookie(c.ctx, "", 0)
	return c.json(fasthttp.StatusOK, map[string]any{"revoked": c.tokenID})
}

// revokeSession: DELETE /v1/sessions/{id} revokes one of the caller's
// sessions (support: anyone's); another's is not found.
func (s *Server) revokeSession(c *call) error {
	id := c.param("id")
	if id == "current" {
		return s.logout(c)
	}
	if _, err := s.opts.Log.Do(c.caller, acl.RevokeToken{ID: id}); err != nil {
		return err
	}
	if id == c.tokenID {
		s.setSessionCookie(c.ctx, "", 0)
	}
	return c.json(fasthttp.StatusOK, map[string]any{"revoked": id})
}

// issueSession makes a session for acct and answers it: the token in the
// body, or — for the dashboard — in the session cookie only.
func (s *Server) issueSession(c *call, acc acl.Account, cookie bool, status int) error {
	token, id, hash := acl.NewToken()
	op := acl.IssueToken{Account: acc.ID, ID: id, Hash: hash, ExpiresAt: s.opts.Now().Add(s.opts.SessionTTL),
		Agent: string(c.ctx.UserAgent())}
	if _, err := s.opts.Log.Do(acc.ID, op); err != nil {
		return err
	}
	if cookie {
		s.setSessionCookie(c.ctx, token, s.opts.SessionTTL)
		return c.json(status, map[string]any{"account": s.accountOf(c.snapshot(), acc)})
	}
	return c.json(status, map[string]any{"account": s.accountOf(c.snapshot(), acc), "token": token})
}

// remoteAddr is the peer's address.
func remoteAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	a, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return a.Unmap()
}

// corsAllowed reports whether origin is one of Options.CORSOrigins.
func (s *Server) corsAllowed(origin []byte) bool {
	for _, o := range s.opts.CORSOrigins {
		if o == string(origin) {
			return true
		}
	}
	return false
}
