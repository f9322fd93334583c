package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/api"
	"github.com/fleetscope/fleetscope/ingest"
	"github.com/fleetscope/fleetscope/internal/storetest"
	"github.com/fleetscope/fleetscope/mail"
	"github.com/fleetscope/fleetscope/query"
	"github.com/fleetscope/fleetscope/store"
)

const supportToken = "test-support-token-5c8e2f1a9b7d3064"

// codeRe finds a one-time code in a mail's text; resetCodeRe a reset
// code, which names its account first.
var (
	codeRe      = regexp.MustCompile(`\b[A-HJ-NP-Z2-9]{10}\b`)
	resetCodeRe = regexp.MustCompile(`\b[0-9A-Z]+-[A-HJ-NP-Z2-9]{10}\b`)
)

// apiServer runs the acl API over real HTTP on the embedded engine.
type apiServer struct {
	t     testing.TB
	base  string
	x     *acl.Index
	log   *acl.Log
	store *store.Store
	api   *api.Server
	// handler is the server's handler, for requests made in process.
	handler fasthttp.RequestHandler
}

func startAPI(t testing.TB) *apiServer { return startServer(t, apiOptions{}) }

// startStack is startAPI with the query service and ingest behind it: every
// endpoint answers.
func startStack(t *testing.T) *apiServer { return startServer(t, apiOptions{stack: true}) }

// startStackTB is startStack for a fuzz target.
func startStackTB(tb testing.TB) *apiServer { return startServer(tb, apiOptions{stack: true}) }

// apiOptions choose what a test server has behind it.
type apiOptions struct {
	stack  bool                    // the query service and ingest
	ingest fasthttp.RequestHandler // POST /v1/ingest, without stack
	store  *store.Store            // nil: a fresh database on the embedded engine
	node   uint16                  // the acl node id; 0: 1
	clock  *testClock              // nil: the real clock
	limits api.Limits
	mailer func(outbox *mail.Outbox) mail.Mailer // nil: the outbox
	tweak  func(*api.Options)
	logger *slog.Logger // the API's and the outbox's; nil: storetest.Logger()
}

// testClock is a settable clock the acl index, its expiry and the API
// share.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func startAPIWith(t *testing.T, tweak func(*apiOptions)) *apiServer {
	var o apiOptions
	tweak(&o)
	return startServer(t, o)
}

func startServer(t testing.TB, o apiOptions) *apiServer {
	t.Helper()
	s := o.store
	if s == nil {
		s = storetest.Open(t)
	}
	var changes atomic.Pointer[query.Service]
	node := o.node
	if node == 0 {
		node = 1
	}
	now := time.Now
	if o.clock != nil {
		now = o.clock.now
	}
	x := acl.New(acl.Options{Node: node, Now: now, OnChange: func(c acl.Change) {
		if q := changes.Load(); q != nil {
			q.OnACLChange(c)
		}
	}})
	l, err := acl.OpenLog(context.Background(), x, acl.LogOptions{Store: s, Logger: storetest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	logger := o.logger
	if logger == nil {
		logger = storetest.Logger()
	}
	outbox := mail.NewOutbox(s, mail.OutboxOptions{Logger: logger})
	opts := api.Options{ACL: x, Log: l, Outbox: outbox, Logger: logger, Now: now, Limits: o.limits, Registerer: prometheus.NewRegistry()}
	if o.mailer != nil {
		opts.Mailer = o.mailer(outbox)
	}
	opts.Ingest = o.ingest
	if o.stack {
		ing, err := ingest.Open(context.Background(), ingest.Options{Dir: t.TempDir(), Store: s, Gateways: api.Gateways(x), Logger: storetest.Logger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ing.Close(context.Background()) })
		q, err := query.New(query.Options{Store: s, ACL: x, Live: ing.Live(), Logger: storetest.Logger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(q.Close)
		changes.Store(q)
		opts.Query, opts.Ingest = q, ing.Handle
	}
	if o.tweak != nil {
		o.tweak(&opts)
	}
	srv := api.New(opts)
	if _, err := srv.EnsureSupport(context.Background(), supportToken); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Every answer is checked against the OpenAPI document.
	h := newOpenAPIChecker(t).wrap(srv.Handler())
	hs := &fasthttp.Server{Handler: h, HeaderReceived: srv.HeaderReceived, ErrorHandler: srv.ErrorHandler,
		Logger: log.New(io.Discard, "", 0)}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Shutdown() })
	return &apiServer{t: t, base: "http://" + ln.Addr().String(), x: x, log: l, store: s, api: srv, handler: h}
}

type reply struct {
	status int
	body   map[string]any
	raw    string
	header http.Header
}

func (r reply) str(path ...string) string {
	var v any = r.body
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return fmt.Sprint(int64(x))
	case bool:
		return fmt.Sprint(x)
	}
	return ""
}

func (a *apiServer) call(token, method, path string, body any) reply {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, raw: string(raw), header: resp.Header}
	json.Unmarshal(raw, &r.body)
	return r
}

func (a *apiServer) want(r reply, status int) reply {
	a.t.Helper()
	if r.status != status {
		a.t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

// account registers and verifies an account with the code from the
// outbox, and returns its token.
func (a *apiServer) account(email string) string {
	a.t.Helper()
	r := a.want(a.call("", "POST", "/v1/accounts", map[string]any{"email": email, "name": "N", "password": "correct horse"}), 201)
	token := r.str("token")
	if r.str("account", "verified") != "false" {
		a.t.Fatalf("new account verified: %s", r.raw)
	}
	a.want(a.call(token, "POST", "/v1/accounts/verify", map[string]any{"code": a.code(email)}), 200)
	return token
}

// code reads the newest verification code mailed to email, as support.
func (a *apiServer) code(email string) string {
	a.t.Helper()
	r := a.want(a.call(supportToken, "GET", "/v1/outbox?to="+email, nil), 200)
	items, _ := r.body["items"].([]any)
	if len(items) == 0 {
		a.t.Fatalf("no mail to %s", email)
	}
	body := items[0].(map[string]any)["body"].(string)
	code := codeRe.FindString(body)
	if code == "" {
		a.t.Fatalf("no code in the mail to %s: %q", email, body)
	}
	return code
}

func TestRegistrationVerificationAndLogin(t *testing.T) {
	a := startAPI(t)
	r := a.want(a.call("", "POST", "/v1/accounts", map[string]any{"email": "Ana@Example.test", "name": "Ana", "password": "correct horse"}), 201)
	token := r.str("token")
	if r.str("account", "email") != "ana@example.test" || r.str("account", "verified") != "false" || !strings.HasPrefix(token, "fst_") {
		t.Fatalf("registration: %s", r.raw)
	}
	// Unverified: may verify, may not act.
	a.want(a.call(token, "POST", "/v1/orgs", map[string]any{"name": "Ana's"}), 403)
	a.want(a.call(token, "POST", "/v1/accounts/verify", map[string]any{"code": "WRONGCODE1"}), 400)
	a.want(a.call(token, "POST", "/v1/accounts/verify", map[string]any{}), 400)
	if got := a.want(a.call(token, "POST", "/v1/accounts/verify", map[string]any{"code": a.code("ana@example.test")}), 200); got.str("verified") != "true" {
		t.Fatalf("verify: %s", got.raw)
	}
	// The code is used up.
	a.want(a.call(token, "POST", "/v1/accounts/verify", map[string]any{"code": a.code("ana@example.test")}), 400)
	// A verified e-mail cannot be registered again.
	a.want(a.call("", "POST", "/v1/accounts", map[string]any{"email": "ana@example.test"}), 409)
	// Login.
	a.want(a.call("", "POST", "/v1/sessions", map[string]any{"email": "ana@example.test", "password": "wrong horse"}), 401)
	a.want(a.call("", "POST", "/v1/sessions", map[string]any{"email": "nobody@example.test", "password": "correct horse"}), 401)
	l := a.want(a.call("", "POST", "/v1/sessions", map[string]any{"email": "ana@example.test", "password": "correct horse"}), 201)
	if me := a.want(a.call(l.str("token"), "GET", "/v1/accounts/me", nil), 200); me.str("email") != "ana@example.test" {
		t.Fatalf("me: %s", me.raw)
	}
	// No token, a bad token: 401.
	a.want(a.call("", "GET", "/v1/accounts/me", nil), 401)
	a.want(a.call("fst_abc_def", "GET", "/v1/accounts/me", nil), 401)
	a.want(a.call(token+"x", "GET", "/v1/accounts/me", nil), 401)
	// The outbox is support's.
	a.want(a.call(token, "GET", "/v1/outbox", nil), 403)
}

func TestOrgSystemGrantsAndGateways(t *testing.T) {
	a := startAPI(t)
	boss := a.account("boss@solar.test")
	tech := a.account("tech@solar.test")
	owner := a.account("owner@home.test")
	stranger := a.account("stranger@else.test")

	org := a.want(a.call(boss, "POST", "/v1/orgs", map[string]any{"name": "Sunny Installs"}), 201).str("id")
	a.want(a.call(boss, "PUT", "/v1/orgs/"+org+"/roles/tech", map[string]any{"permissions": []string{"view", "add_gateway"}}), 200)
	a.want(a.call(boss, "POST", "/v1/orgs/"+org+"/members", map[string]any{"email": "tech@solar.test", "role": "tech"}), 200)
	a.want(a.call(tech, "POST", "/v1/orgs/"+org+"/members", map[string]any{"email": "x@solar.test", "role": "tech"}), 403)
	a.want(a.call(boss, "PUT", "/v1/orgs/"+org+"/roles/bad", map[string]any{"permissions": []string{"fly"}}), 400)

	// The tech lacks create_plant: only the boss commissions.
	sysReq := map[string]any{"guid": "G-1", "name": "Müller Residence", "address": "1 Sun St", "timezone": "Europe/Berlin", "org": json.Number(org), "owner_email": "owner@home.test"}
	a.want(a.call(tech, "POST", "/v1/systems", sysReq), 403)
	sys := a.want(a.call(boss, "POST", "/v1/systems", sysReq), 201)
	id := sys.str("id")
	if sys.str("owner_email") != "owner@home.test" || sys.str("monitored") != "true" {
		t.Fatalf("system: %s", sys.raw)
	}
	a.want(a.call(boss, "POST", "/v1/systems", sysReq), 409) // GUID taken
	badTZ := map[string]any{"guid": "G-2", "name": "x", "timezone": "Mars/Olympus", "org": json.Number(org), "owner_email": "o@x.test"}
	a.want(a.call(boss, "POST", "/v1/systems", badTZ), 400)

	// Gateways: the tech's member role has add_gateway.
	gw := a.want(a.call(tech, "POST", "/v1/systems/"+id+"/gateways", map[string]any{"serial": "cca-00:11:22"}), 201)
	key := gw.str("key")
	if !strings.HasPrefix(key, "fsk_") || gw.str("gateway", "serial") != "CCA-00:11:22" {
		t.Fatalf("gateway: %s", gw.raw)
	}
	g, monitored, ok := a.x.Snapshot().AuthenticateGateway([]byte(key))
	if !ok || !monitored || fmt.Sprint(g.System) != id {
		t.Fatalf("key does not authenticate: %+v %v %v", g, monitored, ok)
	}
	if _, _, ok := a.x.Snapshot().AuthenticateGateway([]byte(key + "x")); ok {
		t.Fatal("altered key authenticates")
	}
	a.want(a.call(tech, "POST", "/v1/systems/"+id+"/gateways", map[string]any{"serial": "CCA-00:11:22"}), 409)
	a.want(a.call(owner, "GET", "/v1/systems/G-1/gateways", nil), 200)
	a.want(a.call(tech, "DELETE", "/v1/systems/"+id+"/gateways/CCA-00:11:22", nil), 200)
	if _, _, ok := a.x.Snapshot().AuthenticateGateway([]byte(key)); ok {
		t.Fatal("removed gateway's key still authenticates")
	}

	// Grants: the owner shares; a friend gets temporary viewer access.
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	gr := a.want(a.call(owner, "POST", "/v1/systems/"+id+"/grants", map[string]any{"email": "Friend@Mail.test", "role": "viewer", "expires_at": until}), 201)
	if gr.str("email") != "friend@mail.test" || gr.str("pending") != "true" || gr.str("expires_at") == "" {
		t.Fatalf("grant: %s", gr.raw)
	}
	a.want(a.call(owner, "POST", "/v1/systems/"+id+"/grants", map[string]any{"email": "a@b.test", "org": 1, "role": "viewer"}), 400)
	a.want(a.call(owner, "POST", "/v1/systems/"+id+"/grants", map[string]any{"email": "a@b.test", "role": "emperor"}), 400)
	list := a.want(a.call(owner, "GET", "/v1/systems/"+id+"/grants", nil), 200)
	if list.str("total") != "3" { // owner, org installer, friend
		t.Fatalf("grants: %s", list.raw)
	}
	a.want(a.call(owner, "DELETE", "/v1/systems/"+id+"/grants/friend@mail.test", nil), 200)
	// The owner's grant is revoked only by transfer.
	a.want(a.call(boss, "DELETE", "/v1/systems/"+id+"/grants/owner@home.test", nil), 409)

	// Invisible systems are 404 whatever the question, by id or GUID.
	for _, p := range []string{"/v1/systems/" + id + "/grants", "/v1/systems/G-1/gateways", "/v1/systems/999/grants", "/v1/systems/" + id + "/audit"} {
		a.want(a.call(stranger, "GET", p, nil), 404)
	}
	a.want(a.call(stranger, "POST", "/v1/systems/"+id+"/grants", map[string]any{"email": "s@x.test", "role": "viewer"}), 404)

	// The audit trail, for the owner (admin rights), not for the tech.
	audit := a.want(a.call(owner, "GET", "/v1/systems/"+id+"/audit", nil), 200)
	if n, _ := audit.body["total"].(float64); n < 5 {
		t.Fatalf("audit: %s", audit.raw)
	}
	if !strings.Contains(audit.raw, "revoked friend@mail.test") || !strings.Contains(audit.raw, "tech@solar.test") {
		t.Fatalf("audit lacks the revocation or who added the gateway: %s", audit.raw)
	}
	a.want(a.call(tech, "GET", "/v1/systems/"+id+"/audit", nil), 403)

	// Transfer: the old owner keeps admin.
	a.want(a.call(tech, "POST", "/v1/systems/"+id+"/owner", map[string]any{"email": "stranger@else.test"}), 403)
	if tr := a.want(a.call(owner, "POST", "/v1/systems/"+id+"/owner", map[string]any{"email": "stranger@else.test"}), 200); tr.str("owner_email") != "stranger@else.test" {
		t.Fatalf("transfer: %s", tr.raw)
	}
	a.want(a.call(stranger, "GET", "/v1/systems/"+id+"/audit", nil), 200)
	a.want(a.call(owner, "GET", "/v1/systems/"+id+"/audit", nil), 200)

	// Members and roles come back in the org, and leave it.
	o := a.want(a.call(boss, "GET", "/v1/orgs/"+org, nil), 200)
	if !strings.Contains(o.raw, `"tech@solar.test"`) || !strings.Contains(o.raw, `"add_gateway"`) {
		t.Fatalf("org: %s", o.raw)
	}
	a.want(a.call(stranger, "GET", "/v1/orgs/"+org, nil), 404)
	a.want(a.call(boss, "DELETE", "/v1/orgs/"+org+"/roles/tech", nil), 409) // in use
	a.want(a.call(boss, "DELETE", "/v1/orgs/"+org+"/members/tech@solar.test", nil), 200)
	a.want(a.call(boss, "DELETE", "/v1/orgs/"+org+"/roles/tech", nil), 200)
}

func TestSupportTokenIsIdempotent(t *testing.T) {
	a := startAPI(t)
	id1, err := a.api.EnsureSupport(context.Background(), supportToken)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := a.api.EnsureSupport(context.Background(), supportToken)
	if err != nil || id1 != id2 {
		t.Fatalf("support account %d then %d (%v)", id1, id2, err)
	}
	if me := a.want(a.call(supportToken, "GET", "/v1/accounts/me", nil), 200); me.str("support") != "true" {
		t.Fatalf("support account: %s", me.raw)
	}
}
