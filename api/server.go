package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/api/reply"
	"github.com/fleetscope/fleetscope/api/web"
	"github.com/fleetscope/fleetscope/ingest"
	"github.com/fleetscope/fleetscope/mail"
	"github.com/fleetscope/fleetscope/password"
	"github.com/fleetscope/fleetscope/query"
	"github.com/fleetscope/fleetscope/ratelimit"
)

// Options configure the HTTP layer. ACL is required; a nil Log, Query or
// Ingest leaves its endpoints answering 503 (tests that exercise one part
// leave the others out).
type Options struct {
	// ACL is the access-control index every caller is authenticated and
	// authorized against.
	ACL *acl.Index
	// Log stores access-control changes before they apply (acl.Log.Do).
	Log *acl.Log
	// Query answers the dashboards' reads.
	Query *query.Service
	// Ingest serves POST /v1/ingest (ingest.Service.Handle): the hot path
	// keeps its own handler, with this package's writer.
	Ingest fasthttp.RequestHandler
	// Metrics serves GET /metrics; nil leaves it off this listener.
	Metrics fasthttp.RequestHandler
	// OpsSeparate moves GET /metrics and GET /readyz from Handler to
	// OpsHandler (serve --ops-addr), which also serves Go's profiles under
	// /debug/pprof/; Handler keeps /healthz. False: both stay on Handler,
	// and profiles are served nowhere.
	OpsSeparate bool
	// Ready reports whether this node can take traffic, and why not, for
	// GET /readyz. Nil: always ready.
	Ready func(ctx context.Context) (ready bool, checks map[string]string)
	// Mailer delivers the mail fleetscope sends (codes, invitations). Nil:
	// Outbox alone.
	Mailer mail.Mailer
	// Outbox is where support reads recent mail (GET /v1/outbox); nil
	// answers 503 there.
	Outbox *mail.Outbox
	// BaseURL is the dashboard's public address, for links in mail.
	BaseURL string
	// SessionTTL is how long a session lives after its last use. Default
	// 30 days (DESIGN §5).
	SessionTTL time.Duration
	// KeyGrace is how long a gateway's previous ingest key keeps working
	// after a rotation. Default 24 h: time to reconfigure the gateway.
	KeyGrace time.Duration
	// Limits are the abuse limits.
	Limits Limits
	// Hasher hashes and checks passwords. Nil: one with package password's
	// defaults.
	Hasher *password.Hasher
	// TrustedProxies are the addresses of reverse proxies whose
	// X-Forwarded-For and X-Forwarded-Proto are believed.
	TrustedProxies []netip.Prefix
	// CORSOrigins may call the API from a browser page of another origin.
	CORSOrigins []string
	// IngestMaxBody is the largest body POST /v1/ingest takes (ingest's
	// own limit); every other endpoint takes 64 KiB.
	IngestMaxBody int
	// CodeTTL is how long a verification code is valid. Default 24 h.
	CodeTTL time.Duration

	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.CodeTTL <= 0 {
		o.CodeTTL = 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Mailer == nil && o.Outbox != nil {
		o.Mailer = o.Outbox
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = acl.DefaultTokenTTL
	}
	if o.KeyGrace <= 0 {
		o.KeyGrace = 24 * time.Hour
	}
	o.Limits.setDefaults()
}

// Server is fleetscope's HTTP API: every endpoint, its authentication and
// the mapping of errors to answers.
type Server struct {
	opts   Options
	x      *acl.Index
	m      *metrics
	router router
	ops    router // OpsHandler's routes (Options.OpsSeparate)
	routes []Route
	start  time.Time
	// debug: the access log is on (the logger takes debug records).
	debug bool

	reqPrefix string        // this process's request-id prefix
	reqSeq    atomic.Uint64 // request-id counter

	ids *idAllocator

	lim         limiters
	rateMetrics *ratelimit.Metrics
	hasher      *password.Hasher
	touching    sync.Map // session ids whose expiry is being moved
}

// New builds the server and its routes.
func New(opts Options) *Server {
	opts.setDefaults()
	var p [4]byte
	rand.Read(p[:])
	s := &Server{opts: opts, x: opts.ACL, m: newMetrics(opts.Registerer), start: opts.Now(), reqPrefix: hex.EncodeToString(p[:])}
	s.ids = newIDAllocator(opts.Log, opts.ACL)
	s.rateMetrics = ratelimit.NewMetrics(opts.Registerer)
	s.lim = newLimiters(opts.Limits, s.rateMetrics, opts.Now)
	s.hasher = opts.Hasher
	if s.hasher == nil {
		s.hasher = password.New(password.Options{Registerer: opts.Registerer})
	}
	s.debug = opts.Logger.Enabled(context.Background(), slog.LevelDebug)
	eps := s.endpoints()
	s.m.preinit(eps)
	for _, e := range eps {
		s.add(e.method, e.pattern, e.name, s.wrap(e))
	}
	if opts.Ingest != nil {
		s.add("POST", "/v1/ingest", "ingest", opts.Ingest)
	}
	if opts.Metrics != nil {
		s.add("GET", "/metrics", "metrics", opts.Metrics)
	}
	s.router.pages = web.Handler()
	return s
}

// Route is one route of the server, for tests and the OpenAPI document's
// check: Ops routes are OpsHandler's when Options.OpsSeparate is set.
type Route struct {
	Method, Pattern string
	// Name is the route's endpoint label in metrics and logs.
	Name string
	Ops  bool
}

// opsRoutes are the routes OpsHandler takes over with Options.OpsSeparate.
var opsRoutes = map[string]bool{"/readyz": true, "/metrics": true}

// add routes method and pattern to h, on the router that serves it.
func (s *Server) add(method, pattern, name string, h fasthttp.RequestHandler) {
	ops := opsRoutes[pattern]
	s.routes = append(s.routes, Route{Method: method, Pattern: pattern, Name: name, Ops: ops})
	r := &s.router
	if ops && s.opts.OpsSeparate {
		r = &s.ops
		// The public listener says where it went — and no fallback (the
		// dashboard's pages) answers a load balancer's /readyz with 200.
		s.router.handle(method, pattern, func(ctx *fasthttp.RequestCtx) {
			reply.Error(ctx, fasthttp.StatusNotFound, "not_found", "served on the operations listener (--ops-addr)")
		})
		s.router.name(method, pattern, name)
	}
	r.handle(method, pattern, h)
	r.name(method, pattern, name)
	if pattern == "/healthz" && s.opts.OpsSeparate {
		s.ops.handle(method, pattern, h)
		s.ops.name(method, pattern, name)
	}
}

// Routes lists every route the server answers (on Handler or OpsHandler),
// in the order of endpoints: GET /v1/openapi.json describes each.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// endpoint is one route of the API.
type endpoint struct {
	method, pattern string
	// name labels the endpoint in metrics and logs.
	name string
	// open endpoints take no token (health, registration, login).
	open bool
	h    func(c *call) error
}

// endpoints lists every route but ingest and metrics (see New): this is the
// one place a newcomer finds them all.
func (s *Server) endpoints() []endpoint {
	return []endpoint{
		{"GET", "/healthz", "healthz", true, s.healthz},
		{"GET", "/readyz", "readyz", true, s.readyz},
		{"GET", "/v1/openapi.json", "openapi", true, s.openapi},

		{"POST", "/v1/accounts", "register", true, s.register},
		{"POST", "/v1/accounts/verify", "verify", false, s.verify},
		{"POST", "/v1/accounts/verify/resend", "verify_resend", false, s.resendCode},
		{"GET", "/v1/accounts/me", "me", false, s.me},
		{"POST", "/v1/accounts/password", "password_change", false, s.changePassword},
		{"POST", "/v1/accounts/password-reset", "password_reset", true, s.requestReset},
		{"POST", "/v1/accounts/password-reset/confirm", "password_reset_confirm", true, s.confirmReset},
		{"POST", "/v1/sessions", "login", true, s.login},
		{"GET", "/v1/sessions", "sessions", false, s.listSessions},
		{"DELETE", "/v1/sessions/current", "logout", false, s.logout},
		{"DELETE", "/v1/sessions/{id}", "session_delete", false, s.revokeSession},
		{"GET", "/v1/outbox", "outbox", false, s.outbox},

		{"POST", "/v1/orgs", "org_create", false, s.createOrg},
		{"GET", "/v1/orgs/{org}", "org", false, s.getOrg},
		{"POST", "/v1/orgs/{org}/members", "member_put", false, s.putMember},
		{"DELETE", "/v1/orgs/{org}/members/{email}", "member_delete", false, s.removeMember},
		{"PUT", "/v1/orgs/{org}/roles/{name}", "role_put", false, s.putRole},
		{"DELETE", "/v1/orgs/{org}/roles/{name}", "role_delete", false, s.deleteRole},

		{"POST", "/v1/systems", "commission", false, s.commission},
		{"GET", "/v1/systems/{id}", "system", false, s.system},
		{"PATCH", "/v1/systems/{id}", "system_edit", false, s.editSystem},
		{"DELETE", "/v1/systems/{id}", "system_delete", false, s.deleteSystem},
		{"POST", "/v1/systems/{id}/owner", "transfer", false, s.transfer},
		{"GET", "/v1/systems/{id}/grants", "grants", false, s.listGrants},
		{"POST", "/v1/systems/{id}/grants", "grant", false, s.grant},
		{"DELETE", "/v1/systems/{id}/grants/{grantee}", "revoke", false, s.revoke},
		{"GET", "/v1/systems/{id}/gateways", "gateways", false, s.listGateways},
		{"POST", "/v1/systems/{id}/gateways", "gateway_add", false, s.addGateway},
		{"DELETE", "/v1/systems/{id}/gateways/{serial}", "gateway_delete", false, s.removeGateway},
		{"POST", "/v1/systems/{id}/gateways/{serial}/key", "gateway_key", false, s.rotateGatewayKey},
		{"GET", "/v1/systems/{id}/audit", "audit", false, s.audit},
		{"GET", "/v1/systems/{id}/telemetry", "telemetry", false, s.telemetry},
		{"GET", "/v1/systems/{id}/panels", "panels", false, s.panels},

		{"GET", "/v1/locations", "locations", false, s.locations},
		{"GET", "/v1/fleet/summary", "fleet_summary", false, s.fleetSummary},
		{"GET", "/v1/fleet/energy", "fleet_energy", false, s.fleetEnergy},
	}
}

// Handler returns the server's request handler: a request id, panic
// recovery, CORS and, at debug level, the access log around the router.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handler(&s.router, nil) }

// OpsHandler returns the handler of the operations listener (serve
// --ops-addr): /metrics, /readyz and /healthz, and Go's profiles under
// /debug/pprof/. Keep it off the public network. Without
// Options.OpsSeparate it serves /debug/pprof/ alone.
func (s *Server) OpsHandler() fasthttp.RequestHandler {
	return s.handler(&s.ops, pprofhandler.PprofHandler)
}

func (s *Server) handler(r *router, pprof fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		id := s.requestID(ctx)
		ctx.Response.Header.Set("X-Request-Id", id)
		// Every answer, API or dashboard, carries the dashboard's security
		// headers: a JSON answer opened in a browser is never sniffed into
		// something that runs, framed, or allowed to load script.
		web.SetSecurityHeaders(&ctx.Response.Header)
		if s.debug {
			defer s.accessLog(ctx, r, id, time.Now()) // after recoverPanic: it logs the 500
		}
		defer s.recoverPanic(ctx, id)
		if pprof != nil && bytes.HasPrefix(ctx.Path(), []byte("/debug/pprof/")) {
			pprof(ctx)
			return
		}
		if len(s.opts.CORSOrigins) > 0 && s.cors(ctx, r) {
			return
		}
		r.serve(ctx)
	}
}

// accessLog writes a request's debug line: what was asked (the path
// without its query string, which may carry a secret), which endpoint
// answered, how, in how long, to whom.
func (s *Server) accessLog(ctx *fasthttp.RequestCtx, r *router, id string, start time.Time) {
	size := ctx.Response.Header.ContentLength() // a streamed body's is unknown (-1) until sent
	if !ctx.Response.IsBodyStream() {
		size = len(ctx.Response.Body())
	}
	attrs := []slog.Attr{
		slog.String("method", string(ctx.Method())), slog.String("path", string(ctx.Path())),
		slog.String("endpoint", r.endpointName(ctx)), slog.Int("code", ctx.Response.StatusCode()),
		slog.Float64("duration_s", time.Since(start).Seconds()), slog.Int("bytes", size),
		slog.String("request_id", id), slog.String("client_ip", s.clientIP(ctx)),
	}
	if code, ok := ctx.UserValue(errCodeKey).(string); ok {
		attrs = append(attrs, slog.String("error", code))
	}
	s.opts.Logger.LogAttrs(context.Background(), slog.LevelDebug, "request", attrs...)
}

// errCodeKey is the user value under which fail leaves an error answer's
// code for the access log.
const errCodeKey = "fleetscope.error"

// requestID returns the id of a request: the client's X-Request-Id when it
// is a sane token (a proxy in front may have set one), otherwise this
// process's prefix and a counter.
func (s *Server) requestID(ctx *fasthttp.RequestCtx) string {
	if v := ctx.Request.Header.Peek("X-Request-Id"); len(v) > 0 && len(v) <= 64 && saneID(v) {
		return string(v)
	}
	return s.reqPrefix + "-" + strconv.FormatUint(s.reqSeq.Add(1), 36)
}

func saneID(b []byte) bool {
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// recoverPanic turns a handler's panic into a 500: fasthttp would take the
// whole process down, and one bad request must not stop ingest.
func (s *Server) recoverPanic(ctx *fasthttp.RequestCtx, id string) {
	v := recover()
	if v == nil {
		return
	}
	s.m.panics.Inc()
	s.opts.Logger.Error("api: handler panicked", "request_id", id, "method", string(ctx.Method()), "path", string(ctx.Path()),
		"panic", v, "stack", string(debug.Stack()))
	ctx.Response.Reset()
	ctx.Response.Header.Set("X-Request-Id", id)
	reply.Error(ctx, fasthttp.StatusInternalServerError, "internal", "internal error (request "+id+")")
}

// wrap adapts an endpoint to the router: authentication, the call, the
// error table, metrics.
func (s *Server) wrap(e endpoint) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		start := time.Now()
		c := &call{ctx: ctx, s: s}
		var err error
		if !e.open {
			var who authenticated
			if who, err = s.authenticate(ctx); err == nil {
				c.caller, c.tokenID = who.acct, who.tokenID
				if who.cookie && !ctx.IsGet() && !ctx.IsHead() {
					err = s.sameOrigin(ctx)
				}
			}
		}
		if err == nil {
			err = e.h(c)
		}
		if err != nil {
			s.fail(ctx, e.name, err)
		}
		s.m.observe(e.name, string(ctx.Method()), ctx.Response.StatusCode(), time.Since(start))
	}
}

// fail answers err by the error table, logging what is not the caller's
// mistake with the request id the answer names.
func (s *Server) fail(ctx *fasthttp.RequestCtx, endpoint string, err error) {
	c := classify(err)
	id := string(ctx.Response.Header.Peek("X-Request-Id"))
	switch {
	case c.status == fasthttp.StatusUnauthorized:
		s.m.authFailures.Inc()
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="fleetscope"`)
	case c.status == fasthttp.StatusServiceUnavailable:
		s.opts.Logger.Warn("api: engine unavailable", "endpoint", endpoint, "request_id", id, "err", err)
	case c.status >= 500:
		s.opts.Logger.Error("api: request failed", "endpoint", endpoint, "request_id", id, "err", err)
	}
	if c.retry > 0 {
		ctx.Response.Header.Set("Retry-After", retryHeader(c.retry))
	}
	if s.debug {
		ctx.SetUserValue(errCodeKey, c.code)
	}
	reply.Error(ctx, c.status, c.code, c.message(err, id))
}

// healthz says the process is up.
func (s *Server) healthz(c *call) error {
	return c.json(fasthttp.StatusOK, map[string]any{"status": "ok", "uptime_s": int(s.opts.Now().Sub(s.start).Seconds())})
}

// readyz says whether this node can take traffic (Options.Ready).
func (s *Server) readyz(c *call) error {
	ready, checks := true, map[string]string{}
	if s.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
		defer cancel()
		ready, checks = s.opts.Ready(ctx)
	}
	status := fasthttp.StatusOK
	if !ready {
		status = fasthttp.StatusServiceUnavailable
	}
	return c.json(status, map[string]any{"ready": ready, "checks": checks})
}

// errNoService answers endpoints of a part this server was built without.
var errNoService = errors.New("api: endpoint not configured on this node")

// Gateways authenticates ingest keys against the access-control state, for
// ingest.Options.Gateways.
func Gateways(x *acl.Index) ingest.GatewayAuth { return gatewayKeys{x} }

type gatewayKeys struct{ x *acl.Index }

func (g gatewayKeys) Gateway(key []byte) (ingest.Gateway, bool) {
	gw, monitored, ok := g.x.Snapshot().AuthenticateGateway(key)
	return ingest.Gateway{ID: uint32(gw.ID), System: uint32(gw.System), Monitored: monitored}, ok
}
