package query

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/internal/storetest"
	"github.com/fleetscope/fleetscope/live"
	"github.com/fleetscope/fleetscope/store"
)

// testClock is a settable clock shared by the acl index, the query service
// and the test.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// t0 is the tests' start time: a summer Saturday noon in UTC.
var t0 = time.Date(2026, 6, 20, 12, 0, 0, 0, time.UTC)

// harness is a query service over a real acl index, ingest live state and
// (with the engine) a store, behind package api's real routes on a
// loopback port; each caller authenticates with a token of its own.
type harness struct {
	t     *testing.T
	clock *testClock
	x     *acl.Index
	live  *live.State
	store *store.Store
	svc   *Service
	cur   atomic.Pointer[Service] // what acl changes and requests reach
	opts  Options
	base  string

	support  acl.AccountID
	nextAcct acl.AccountID
	nextOrg  acl.OrgID
	nextSys  acl.SystemID
	lsn      uint64

	mu     sync.Mutex
	tokens map[acl.AccountID]string
}

type harnessOpts struct {
	store bool // open a store on the embedded engine (skips without it)
	tweak func(*Options)
}

func newHarness(t *testing.T, ho harnessOpts) *harness {
	t.Helper()
	h := &harness{t: t, clock: &testClock{t: t0}, nextAcct: 1, nextOrg: 1, nextSys: 1}
	h.x = acl.New(acl.Options{Node: 1, Now: h.clock.now, OnChange: func(c acl.Change) {
		if s := h.cur.Load(); s != nil {
			s.OnACLChange(c)
		}
	}})
	h.live = live.New(func(id uint32) *time.Location { return h.x.Snapshot().SystemZone(acl.SystemID(id)) })
	if ho.store {
		h.store = storetest.Open(t)
	}
	h.support = h.nextAcct
	h.nextAcct++
	h.apply(
		acl.Event{Kind: acl.KindAccountRegister, Account: h.support, Email: "support@fleetscope.test"},
		acl.Event{Kind: acl.KindAccountVerify, Account: h.support, Verified: true},
		acl.Event{Kind: acl.KindAccountSupport, Account: h.support, Support: true},
	)
	h.opts = Options{Store: h.store, ACL: h.x, Live: h.live,
		Logger: storetest.Logger(), Now: h.clock.now, LiveRefresh: time.Hour}
	if ho.tweak != nil {
		ho.tweak(&h.opts)
	}
	h.start()
	h.serve()
	return h
}

// start builds a query service from the acl index as it is now and makes
// it the one changes and requests reach. Called again, it replaces the
// service: a test that needs a quiet start (no base rebuild in flight from
// the set-up's changes, an empty delta) gets one.
func (h *harness) start() {
	h.t.Helper()
	if h.svc != nil {
		h.svc.Close()
	}
	opts := h.opts
	if opts.Registerer == nil || h.svc != nil {
		opts.Registerer = prometheus.NewRegistry() // a replacement must not register twice
	}
	s, err := New(opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.cur.Store(s)
	h.svc = s
	h.t.Cleanup(s.Close)
}

// ServeHTTP builds the handler the harness serves: package api's routes
// over the service current() returns. It is set by api_hook_test.go
// (package query_test), because api imports query and an internal test
// cannot import api; reg receives the HTTP layer's metrics.
var ServeHTTP func(current func() *Service, x *acl.Index, reg prometheus.Registerer) fasthttp.RequestHandler

// serve starts the HTTP server: the real routes of package api, the caller
// authenticated by a token the harness issues it.
func (h *harness) serve() {
	if ServeHTTP == nil {
		h.t.Fatal("query tests need api_hook_test.go, which builds the HTTP layer")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	reg := h.opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	srv := &fasthttp.Server{Handler: ServeHTTP(h.cur.Load, h.x, reg)}
	go srv.Serve(ln)
	h.t.Cleanup(func() { srv.Shutdown() })
	h.base = "http://" + ln.Addr().String()
}

// token returns a bearer token of caller, issuing one the first time.
func (h *harness) token(caller acl.AccountID) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if tok, ok := h.tokens[caller]; ok {
		return tok
	}
	tok, id, hash := acl.NewToken()
	if _, err := h.x.Apply(h.x.Stamp([]acl.Event{{Kind: acl.KindTokenPut, Account: caller, Token: id, Hash: hash}})...); err != nil {
		h.t.Fatalf("token for %d: %v", caller, err)
	}
	if h.tokens == nil {
		h.tokens = map[acl.AccountID]string{}
	}
	h.tokens[caller] = tok
	return tok
}

// get sends GET path?params as caller and returns the status and body.
func (h *harness) get(caller acl.AccountID, path string, params url.Values) (int, []byte) {
	h.t.Helper()
	u := h.base + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.token(caller))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		h.t.Fatalf("GET %s: content type %q", u, ct)
	}
	return resp.StatusCode, body
}

// getJSON sends GET and decodes a 200 answer into v.
func (h *harness) getJSON(caller acl.AccountID, path string, params url.Values, v any) {
	h.t.Helper()
	status, body := h.get(caller, path, params)
	if status != 200 {
		h.t.Fatalf("GET %s %v as %d: %d %s", path, params, caller, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		h.t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// wantError checks an error answer's status and code.
func (h *harness) wantError(caller acl.AccountID, path string, params url.Values, status int, code string) {
	h.t.Helper()
	got, body := h.get(caller, path, params)
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || got != status || e.Error.Code != code || e.Error.Message == "" {
		h.t.Fatalf("GET %s %v: %d %s, want %d %s", path, params, got, body, status, code)
	}
}

type locItem struct {
	ID         uint32  `json:"id"`
	GUID       string  `json:"guid"`
	Name       string  `json:"name"`
	Address    string  `json:"address"`
	Timezone   string  `json:"timezone"`
	Monitored  bool    `json:"monitored"`
	OwnerEmail *string `json:"owner_email"`
	Installer  *struct {
		ID   uint32 `json:"id"`
		Name string `json:"name"`
	} `json:"installer"`
	Status        string  `json:"status"`
	PowerW        float64 `json:"power_w"`
	EnergyTodayWh float64 `json:"energy_today_wh"`
	Panels        int     `json:"panels"`
	LastSeen      *string `json:"last_seen"`
}

type locPage struct {
	Items      []locItem `json:"items"`
	Total      int       `json:"total"`
	NextCursor *string   `json:"next_cursor"`
}

func (h *harness) locations(caller acl.AccountID, params url.Values) locPage {
	h.t.Helper()
	var p locPage
	h.getJSON(caller, "/v1/locations", params, &p)
	return p
}

// all pages through a query and returns every item in order, checking
// that each page reports the same total.
func (h *harness) all(caller acl.AccountID, params url.Values) []locItem {
	h.t.Helper()
	p := url.Values{}
	for k, v := range params {
		p[k] = v
	}
	var out []locItem
	for i := 0; ; i++ {
		page := h.locations(caller, p)
		out = append(out, page.Items...)
		if page.NextCursor == nil {
			if page.Total != len(out) {
				h.t.Fatalf("query %v: total %d, paged %d", params, page.Total, len(out))
			}
			return out
		}
		if i > 10_000 {
			h.t.Fatal("endless pagination")
		}
		p.Set("cursor", *page.NextCursor)
	}
}

// search returns the ids a query finds, sorted ascending.
func (h *harness) search(caller acl.AccountID, q string) []uint32 {
	h.t.Helper()
	items := h.all(caller, url.Values{"q": {q}, "limit": {"500"}})
	ids := make([]uint32, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	sortU32(ids)
	return ids
}

func sortU32(s []uint32) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// apply stamps and applies Platform events.
func (h *harness) apply(evs ...acl.Event) {
	h.t.Helper()
	if _, err := h.x.Apply(h.x.Stamp(evs)...); err != nil {
		h.t.Fatalf("apply: %v", err)
	}
}

func (h *harness) do(actor acl.AccountID, op acl.Op) error {
	h.t.Helper()
	_, err := h.x.Do(actor, op, nil)
	return err
}

func (h *harness) must(actor acl.AccountID, op acl.Op) {
	h.t.Helper()
	if err := h.do(actor, op); err != nil {
		h.t.Fatalf("%T %+v by %d: %v", op, op, actor, err)
	}
}

// account registers and verifies an account.
func (h *harness) account(email string) acl.AccountID {
	h.t.Helper()
	id := h.nextAcct
	h.nextAcct++
	h.must(acl.Platform, acl.RegisterAccount{Account: id, Email: email})
	// The e-mail proves itself with a code; the acl tests cover that.
	h.apply(acl.Event{Kind: acl.KindAccountVerify, Account: id, Verified: true})
	return id
}

// gateway adds a gateway to a system.
func (h *harness) gateway(actor acl.AccountID, sys acl.SystemID, serial string) {
	h.t.Helper()
	h.must(actor, acl.AddGateway{System: sys, Serial: serial, KeyHash: [32]byte{1}})
}

func (h *harness) org(admin acl.AccountID, name string) acl.OrgID {
	h.t.Helper()
	id := h.nextOrg
	h.nextOrg++
	h.must(admin, acl.CreateOrg{Org: id, Name: name})
	return id
}

// site is a system to commission.
type site struct {
	name, guid, tz, owner string
	unmonitored           bool
}

func (h *harness) commission(actor acl.AccountID, org acl.OrgID, s site) acl.SystemID {
	h.t.Helper()
	id := h.nextSys
	h.nextSys++
	if s.guid == "" {
		s.guid = fmt.Sprintf("GUID-%06d", id)
	}
	if s.tz == "" {
		s.tz = "UTC"
	}
	if s.owner == "" {
		s.owner = fmt.Sprintf("owner%d@home.test", id)
	}
	h.must(actor, acl.Commission{System: id, GUID: s.guid, Name: s.name, Address: fmt.Sprintf("%d Solar Way", id),
		Timezone: s.tz, Monitored: !s.unmonitored, Org: org, OwnerEmail: s.owner})
	return id
}

func (h *harness) grant(actor acl.AccountID, sys acl.SystemID, to acl.Principal, r acl.Role, expires time.Time) {
	h.t.Helper()
	h.must(actor, acl.GrantRole{System: sys, To: to, Role: r, ExpiresAt: expires})
}

// report feeds live state: every panel of the system reports pinW watts
// and whMWh at ts.
func (h *harness) report(sys acl.SystemID, ts time.Time, panels int, pinDW int64, whMWh uint64) {
	ups := make([]live.Update, panels)
	for i := range ups {
		ups[i] = live.Update{Panel: fmt.Sprintf("A%d", i+1), TS: ts.UnixMilli(), PinDW: pinDW, WhMWh: whMWh}
	}
	h.lsn++
	h.live.Apply(uint32(sys), h.lsn, ups)
}

// advance moves the clock and expires grants, as RunExpiry would.
func (h *harness) advance(d time.Duration) {
	h.clock.set(h.clock.now().Add(d))
	h.x.Expire(h.clock.now())
}

// refresh makes the catalogue and the live view current.
func (h *harness) refresh() {
	h.t.Helper()
	if err := h.svc.Sync(h.t.Context()); err != nil {
		h.t.Fatal(err)
	}
	h.svc.RefreshLive()
}

func u32s(ids ...acl.SystemID) []uint32 {
	out := make([]uint32, len(ids))
	for i, id := range ids {
		out[i] = uint32(id)
	}
	sortU32(out)
	return out
}
