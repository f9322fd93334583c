package acl

import (
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/internal/apijson"
	"github.com/fleetscope/fleetscope/store"
)

// API serves the account, organization, system, grant and gateway
// endpoints of DESIGN §5. Every handler but registration and login gets the
// authenticated caller from the router (see Authenticate); each change goes
// through Log.Do, which authorizes it by the rules, stores it and applies
// it, so the next request on this node sees it.
type API struct {
	opts APIOptions
	x    *Index
	log  *Log
	m    apiMetrics

	allocMu sync.Mutex
	alloc   idAlloc
}

// APIOptions configure the API.
type APIOptions struct {
	Store  *store.Store
	Mailer Mailer
	// CodeTTL is how long a verification code is valid. Default 24 h.
	CodeTTL    time.Duration
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
}

type apiMetrics struct {
	requests *prometheus.CounterVec
	authFail prometheus.Counter
}

// NewAPI returns the API over an index and its log.
func NewAPI(x *Index, log *Log, opts APIOptions) *API {
	if opts.CodeTTL <= 0 {
		opts.CodeTTL = 24 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Mailer == nil {
		opts.Mailer = &OutboxMailer{Store: opts.Store, Logger: opts.Logger}
	}
	f := promauto.With(opts.Registerer)
	a := &API{opts: opts, x: x, log: log, m: apiMetrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "acl", Name: "requests_total",
			Help: "Account, organization, system and grant requests answered, by endpoint and status.",
		}, []string{"endpoint", "status"}),
		authFail: f.NewCounter(prometheus.CounterOpts{
			Namespace: "fleetscope", Subsystem: "acl", Name: "auth_failures_total",
			Help: "Requests refused because their bearer token is missing, malformed, unknown or revoked.",
		}),
	}}
	a.alloc.init(x.Snapshot())
	return a
}

// Handler is an endpoint's handler; caller is the authenticated account
// (Platform for open endpoints).
type Handler func(ctx *fasthttp.RequestCtx, caller AccountID)

// Route is one endpoint.
type Route struct {
	Method, Pattern string
	Handler         Handler
	// Open endpoints take no token (registration, login).
	Open bool
}

// Routes lists the API's endpoints for the router.
func (a *API) Routes() []Route {
	r := func(method, pattern string, h Handler) Route {
		return Route{Method: method, Pattern: pattern, Handler: a.counted(pattern, h)}
	}
	open := func(method, pattern string, h Handler) Route {
		rt := r(method, pattern, h)
		rt.Open = true
		return rt
	}
	return []Route{
		open("POST", "/v1/accounts", a.register),
		open("POST", "/v1/sessions", a.login),
		r("POST", "/v1/accounts/verify", a.verify),
		r("GET", "/v1/accounts/me", a.me),
		r("GET", "/v1/outbox", a.outbox),
		r("POST", "/v1/orgs", a.createOrg),
		r("GET", "/v1/orgs/{org}", a.getOrg),
		r("POST", "/v1/orgs/{org}/members", a.putMember),
		r("DELETE", "/v1/orgs/{org}/members/{email}", a.removeMember),
		r("PUT", "/v1/orgs/{org}/roles/{name}", a.putRole),
		r("DELETE", "/v1/orgs/{org}/roles/{name}", a.deleteRole),
		r("POST", "/v1/systems", a.commission),
		r("DELETE", "/v1/systems/{id}", a.deleteSystem),
		r("POST", "/v1/systems/{id}/owner", a.transfer),
		r("GET", "/v1/systems/{id}/grants", a.listGrants),
		r("POST", "/v1/systems/{id}/grants", a.grant),
		r("DELETE", "/v1/systems/{id}/grants/{grantee}", a.revoke),
		r("GET", "/v1/systems/{id}/gateways", a.listGateways),
		r("POST", "/v1/systems/{id}/gateways", a.addGateway),
		r("DELETE", "/v1/systems/{id}/gateways/{serial}", a.removeGateway),
		r("GET", "/v1/systems/{id}/audit", a.audit),
	}
}

func (a *API) counted(endpoint string, h Handler) Handler {
	return func(ctx *fasthttp.RequestCtx, caller AccountID) {
		h(ctx, caller)
		a.m.requests.WithLabelValues(endpoint, strconv.Itoa(ctx.Response.StatusCode())).Inc()
	}
}

// fail answers an error from this package with the status its sentinel
// documents.
func fail(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, ErrInvalid):
		apijson.Error(ctx, fasthttp.StatusBadRequest, "invalid", err.Error())
	case errors.Is(err, ErrNotFound):
		apijson.Error(ctx, fasthttp.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, ErrForbidden):
		apijson.Error(ctx, fasthttp.StatusForbidden, "forbidden", err.Error())
	case errors.Is(err, ErrUnverified):
		apijson.Error(ctx, fasthttp.StatusForbidden, "unverified", err.Error())
	case errors.Is(err, ErrExists):
		apijson.Error(ctx, fasthttp.StatusConflict, "exists", err.Error())
	case errors.Is(err, ErrOwnerGrant), errors.Is(err, ErrRoleInUse), errors.Is(err, ErrLastOrgAdmin):
		apijson.Error(ctx, fasthttp.StatusConflict, "conflict", err.Error())
	default:
		// Storage failed: the change was not made; the client may retry.
		apijson.Error(ctx, fasthttp.StatusServiceUnavailable, "unavailable", "the change could not be stored; retry")
	}
}

// param is a path parameter of the matched route.
func param(ctx *fasthttp.RequestCtx, name string) string {
	v, _ := ctx.UserValue(name).(string)
	return v
}

// systemParam resolves {id}, a numeric id or a GUID, to a system the caller
// may view; anything else is not found (ids cannot be probed).
func (a *API) systemParam(ctx *fasthttp.RequestCtx, s *Snapshot, caller AccountID) (SystemID, bool) {
	raw := param(ctx, "id")
	var id SystemID
	if n, err := strconv.ParseUint(raw, 10, 32); err == nil {
		id = SystemID(n)
	} else if g, ok := s.SystemByGUID(raw); ok {
		id = g
	} else {
		apijson.Error(ctx, fasthttp.StatusNotFound, "not_found", "no such system")
		return 0, false
	}
	if err := s.Require(caller, PermView, id); err != nil {
		apijson.Error(ctx, fasthttp.StatusNotFound, "not_found", "no such system")
		return 0, false
	}
	return id, true
}

func orgParam(ctx *fasthttp.RequestCtx) (OrgID, bool) {
	n, err := strconv.ParseUint(param(ctx, "org"), 10, 32)
	if err != nil || n == 0 {
		apijson.Error(ctx, fasthttp.StatusNotFound, "not_found", "no such organization")
		return 0, false
	}
	return OrgID(n), true
}

// idAlloc hands out the dense ids of new accounts, orgs and systems: one
// past the highest this node knows, including deleted systems (a system id
// is never reused). Ids made concurrently on two nodes can collide; the
// loser's change then fails or merges by the usual rules — run
// account/org/system creation through one node when that matters.
type idAlloc struct {
	account AccountID
	org     OrgID
	system  SystemID
	gateway GatewayID
}

func (al *idAlloc) init(s *Snapshot) {
	s.systems.each(func(k uint32, _ *sysRec) bool { al.system = max(al.system, SystemID(k)); return true })
	s.accounts.each(func(k uint32, _ *acctRec) bool { al.account = max(al.account, AccountID(k)); return true })
	s.orgs.each(func(k uint32, _ *orgRec) bool { al.org = max(al.org, OrgID(k)); return true })
	al.gateway = GatewayID(s.gwMax)
}

// allocate runs take on the allocator, brought up to date with what the
// current snapshot knows, under its lock.
func (a *API) allocate(take func(al *idAlloc)) {
	a.allocMu.Lock()
	defer a.allocMu.Unlock()
	a.alloc.observe(a.x.Snapshot())
	take(&a.alloc)
}

func (a *API) nextAccount() (id AccountID) {
	a.allocate(func(al *idAlloc) { al.account++; id = al.account })
	return id
}

func (a *API) nextOrg() (id OrgID) {
	a.allocate(func(al *idAlloc) { al.org++; id = al.org })
	return id
}

func (a *API) nextSystem() (id SystemID) {
	a.allocate(func(al *idAlloc) { al.system++; id = al.system })
	return id
}

func (a *API) nextGateway() (id GatewayID) {
	a.allocate(func(al *idAlloc) { al.gateway++; id = al.gateway })
	return id
}

// observe moves past ids other nodes created (cheap: the live set's
// maximum and point lookups above what is known).
func (al *idAlloc) observe(s *Snapshot) {
	if !s.live.IsEmpty() {
		al.system = max(al.system, SystemID(s.live.Maximum()))
	}
	for s.accounts.get(uint32(al.account)+1) != nil {
		al.account++
	}
	for s.orgs.get(uint32(al.org)+1) != nil {
		al.org++
	}
	al.gateway = max(al.gateway, GatewayID(s.gwMax))
}

func named(k, v string) any { return clickhouse.Named(k, v) }
