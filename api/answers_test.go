package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fleetscope/fleetscope/internal/storetest"
	"github.com/fleetscope/fleetscope/store"
	"github.com/fleetscope/fleetscope/store/engine/chhttp"
	"github.com/valyala/fasthttp"
)

// hostile are strings a message may echo back: control characters, a
// terminal bell in a time zone, invalid UTF-8, a tag character above
// U+FFFF, quotes, backslashes, markup, line separators.
var hostile = []string{"", "Bad\u0007Zone", "\x00\x1f", "\xff\xfe\xfd", "\U000E0001", `"}},"x":{"`, `\u0000\`, "\\",
	"<img src=x onerror=alert(1)>", "\u2028\u2029", "Ñandú 🌞", "a@b.test", "UTC", "1", "-1", "99999999999999999999",
	"2026-13-45T25:61:00Z", "viewer", "org_admin", strings.Repeat("x", 300), "%", "../..", "null", "{}", "[]"}

// reqSpec is one request of the probe.
type reqSpec struct {
	method, uri string
	token       string
	headers     map[string]string
	body        []byte
}

// probe is the requests that carry s into every endpoint: in the path, the
// query string, each field of each body, a raw body, and the credentials.
func (a *apiServer) probe(s, sys, org, gwKey string) []reqSpec {
	p, q := url.PathEscape(s), url.QueryEscape(s)
	js := func(fields map[string]any) []byte { b, _ := json.Marshal(fields); return b }
	tok := supportToken
	out := []reqSpec{
		{"GET", "/v1/" + p, tok, nil, nil},
		{"GET", "/v1/accounts/me", s, nil, nil},
		{"GET", "/v1/outbox?to=" + q, tok, nil, nil},
		{"POST", "/v1/accounts", "", nil, js(map[string]any{"email": s, "name": s, "password": s})},
		{"POST", "/v1/accounts", "", nil, js(map[string]any{"email": "probe@probe.test", "name": s, "password": s})},
		{"POST", "/v1/sessions", "", nil, js(map[string]any{"email": s, "password": s})},
		{"POST", "/v1/accounts/verify", tok, nil, js(map[string]any{"code": s})},
		{"POST", "/v1/orgs", tok, nil, js(map[string]any{"name": s})},
		{"GET", "/v1/orgs/" + p, tok, nil, nil},
		{"POST", "/v1/orgs/" + org + "/members", tok, nil, js(map[string]any{"email": s, "role": s})},
		{"POST", "/v1/orgs/" + org + "/members", tok, nil, js(map[string]any{"email": "m@probe.test", "role": s})},
		{"DELETE", "/v1/orgs/" + org + "/members/" + p, tok, nil, nil},
		{"PUT", "/v1/orgs/" + org + "/roles/" + p, tok, nil, js(map[string]any{"permissions": []string{s}})},
		{"DELETE", "/v1/orgs/" + org + "/roles/" + p, tok, nil, nil},
		{"POST", "/v1/systems", tok, nil, js(map[string]any{"guid": s, "name": s, "address": s, "timezone": "UTC", "org": json.Number(org), "owner_email": s})},
		{"POST", "/v1/systems", tok, nil, js(map[string]any{"guid": "PROBE-1", "name": "n", "timezone": s, "org": json.Number(org), "owner_email": "o@probe.test"})},
		{"GET", "/v1/systems/" + p, tok, nil, nil},
		{"DELETE", "/v1/systems/" + p, "", nil, nil},
		{"POST", "/v1/systems/" + sys + "/owner", tok, nil, js(map[string]any{"email": s})},
		{"GET", "/v1/systems/" + p + "/grants", tok, nil, nil},
		{"POST", "/v1/systems/" + sys + "/grants", tok, nil, js(map[string]any{"email": s, "role": s})},
		{"POST", "/v1/systems/" + sys + "/grants", tok, nil, js(map[string]any{"email": "g@probe.test", "role": "viewer", "expires_at": s})},
		{"DELETE", "/v1/systems/" + sys + "/grants/" + p, tok, nil, nil},
		{"GET", "/v1/systems/" + p + "/gateways", tok, nil, nil},
		{"POST", "/v1/systems/" + sys + "/gateways", tok, nil, js(map[string]any{"serial": s})},
		{"DELETE", "/v1/systems/" + sys + "/gateways/" + p, tok, nil, nil},
		{"GET", "/v1/systems/" + sys + "/audit?limit=" + q, tok, nil, nil},
		{"GET", "/v1/systems/" + sys + "/telemetry?from=" + q, tok, nil, nil},
		{"GET", "/v1/systems/" + sys + "/telemetry?step=" + q + "&panel=" + q, tok, nil, nil},
		{"GET", "/v1/systems/" + sys + "/panels?date=" + q, tok, nil, nil},
		{"GET", "/v1/locations?q=" + q, tok, nil, nil},
		{"GET", "/v1/locations?sort=" + q, tok, nil, nil},
		{"GET", "/v1/locations?status=" + q + "&limit=" + q, tok, nil, nil},
		{"GET", "/v1/locations?cursor=" + q, tok, nil, nil},
		{"GET", "/v1/fleet/summary", s, nil, nil},
		{"GET", "/v1/fleet/energy?from=" + q, tok, nil, nil},
		{"GET", "/v1/fleet/energy?sort=" + q + "&cursor=" + q, tok, nil, nil},
		{"POST", "/v1/ingest", s, nil, []byte(`{"seq":1,"readings":[]}`)},
		{"POST", "/v1/ingest", gwKey, map[string]string{"Content-Type": s}, []byte(`{"seq":1,"readings":[]}`)},
		{"POST", "/v1/ingest", gwKey, map[string]string{"Content-Encoding": s}, []byte(`{"seq":1,"readings":[]}`)},
		{"POST", "/v1/ingest", gwKey, nil, js(map[string]any{"seq": 7, "readings": []any{map[string]any{"panel": s, "ts": s, "pin": 1, "wh": 1}}})},
	}
	// Every endpoint that reads a body also gets s as the body itself.
	for _, r := range out {
		if r.body != nil {
			out = append(out, reqSpec{r.method, r.uri, r.token, nil, []byte(s)})
		}
	}
	return out
}

// send makes one request in process and returns the answer.
func (a *apiServer) send(r reqSpec) *fasthttp.Response {
	var req fasthttp.Request
	req.Header.SetMethod(r.method)
	req.SetRequestURI("http://fleetscope.test" + r.uri)
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	if r.body != nil {
		req.SetBody(r.body)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	a.handler(&ctx)
	var resp fasthttp.Response
	ctx.Response.CopyTo(&resp)
	return &resp
}

// checkAnswer: an answer is JSON, an error answer has the documented shape,
// and nothing a caller sends makes a 500 (a bug) or leaks engine text.
func checkAnswer(t testing.TB, r reqSpec, resp *fasthttp.Response) {
	t.Helper()
	body := resp.Body()
	status := resp.StatusCode()
	if v := resp.Header.Peek("X-OpenAPI-Violation"); v != nil {
		t.Fatalf("%s", v)
	}
	if status == fasthttp.StatusNoContent {
		return
	}
	if ct := string(resp.Header.ContentType()); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: %d with Content-Type %q: %q", r.method, r.uri, status, ct, body)
	}
	if !json.Valid(body) || !utf8.Valid(body) {
		t.Fatalf("%s %s: %d answers invalid JSON: %q", r.method, r.uri, status, body)
	}
	if status >= 500 || bytes.Contains(body, []byte("DB::Exception")) || bytes.Contains(body, []byte("SELECT ")) {
		t.Fatalf("%s %s (body %q): %d %s", r.method, r.uri, r.body, status, body)
	}
	if status >= 400 {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("%s %s: %d is not an error answer: %s", r.method, r.uri, status, body)
		}
	}
}

// world makes what the probe aims at: an org, a system of it with a
// gateway, as support.
func (a *apiServer) world() (sys, org, gwKey string) {
	a.t.Helper()
	org = a.want(a.call(supportToken, "POST", "/v1/orgs", map[string]any{"name": "Probe Org"}), 201).str("id")
	sys = a.want(a.call(supportToken, "POST", "/v1/systems", map[string]any{"guid": "PROBE-0", "name": "Probe", "timezone": "UTC",
		"org": json.Number(org), "owner_email": "owner@probe.test"}), 201).str("id")
	gwKey = a.want(a.call(supportToken, "POST", "/v1/systems/"+sys+"/gateways", map[string]any{"serial": "PROBE-GW"}), 201).str("key")
	return sys, org, gwKey
}

// Every answer of every endpoint is valid JSON — errors of the documented
// shape — whatever hostile text the request carries into its messages.
func TestEveryAnswerIsJSON(t *testing.T) {
	a := startStack(t)
	sys, org, gwKey := a.world()
	n := 0
	for _, s := range hostile {
		for _, r := range a.probe(s, sys, org, gwKey) {
			checkAnswer(t, r, a.send(r))
			n++
		}
	}
	t.Logf("%d requests, every answer JSON", n)
}

func FuzzEveryAnswerIsJSON(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	a := startStackTB(f)
	sys, org, gwKey := a.world()
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range a.probe(s, sys, org, gwKey) {
			checkAnswer(t, r, a.send(r))
		}
	})
}

// A handler that panics — a bug — answers 500 with the request id, and the
// server keeps serving.
func TestPanicAnswers500(t *testing.T) {
	a := startAPIWith(t, func(o *apiOptions) {
		o.ingest = func(*fasthttp.RequestCtx) { panic("boom: SELECT secret FROM internals") }
	})
	resp := a.send(reqSpec{method: "POST", uri: "/v1/ingest", body: []byte("{}")})
	body := string(resp.Body())
	id := string(resp.Header.Peek("X-Request-Id"))
	if resp.StatusCode() != 500 || !json.Valid(resp.Body()) || strings.Contains(body, "secret") || id == "" || !strings.Contains(body, id) {
		t.Fatalf("panic: %d %s (request id %q)", resp.StatusCode(), body, id)
	}
	if me := a.send(reqSpec{method: "GET", uri: "/v1/accounts/me", token: supportToken}); me.StatusCode() != 200 {
		t.Fatalf("after the panic: %d %s", me.StatusCode(), me.Body())
	}
}

// A statement the engine refuses is a bug: 500, without the engine's text
// or the SQL. An engine that cannot be reached is 503 with Retry-After:
// retrying helps.
func TestEngineFailuresAnswer500Or503(t *testing.T) {
	eng := storetest.Engine(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &fasthttp.Server{Handler: chhttp.Handler(eng, chhttp.Options{})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Shutdown() })
	db := fmt.Sprintf("t_engine_failures_%d", time.Now().UnixNano()%1e6)
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{ClickHouse: "http://" + ln.Addr().String(), Database: db, Logger: storetest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a := startServer(t, apiOptions{stack: true, store: s})
	sys, _, _ := a.world()
	telemetry := reqSpec{method: "GET", uri: "/v1/systems/" + sys + "/telemetry?step=1h", token: supportToken}
	if r := a.send(telemetry); r.StatusCode() != 200 {
		t.Fatalf("telemetry: %d %s", r.StatusCode(), r.Body())
	}

	// A bug: a table the statements name is gone.
	if err := s.Exec(ctx, "RENAME TABLE readings TO readings_gone"); err != nil {
		t.Fatal(err)
	}
	r := a.send(telemetry)
	body := string(r.Body())
	if r.StatusCode() != 500 || r.Header.Peek("Retry-After") != nil || !json.Valid(r.Body()) ||
		strings.Contains(body, "readings") || strings.Contains(body, "Code:") || strings.Contains(body, "SELECT") {
		t.Fatalf("a refused statement: %d (Retry-After %q) %s", r.StatusCode(), r.Header.Peek("Retry-After"), body)
	}
	if err := s.Exec(ctx, "RENAME TABLE readings_gone TO readings"); err != nil {
		t.Fatal(err)
	}

	// The engine goes away.
	hs.Shutdown()
	ln.Close()
	r = a.send(telemetry)
	if r.StatusCode() != 503 || string(r.Header.Peek("Retry-After")) == "" || !json.Valid(r.Body()) || strings.Contains(string(r.Body()), "refused") {
		t.Fatalf("an unreachable engine: %d (Retry-After %q) %s", r.StatusCode(), r.Header.Peek("Retry-After"), r.Body())
	}
}

// FuzzRequestBodies sends arbitrary bytes as the body of every endpoint
// that decodes one — accounts, sessions, passwords, orgs, members, roles,
// systems, grants, gateways — and requires a JSON answer that is no 500.
func FuzzRequestBodies(f *testing.F) {
	for _, s := range []string{`{}`, `{"email":"a@b.test","password":"0123456789"}`, `{"name":"\u0000"}`, `[]`, `{"permissions":["view"]}`,
		`{"email":"x@y.test","role":"viewer","expires_at":"9999-12-31T23:59:59Z"}`, `{"guid":"G","timezone":"UTC","org":1,"owner_email":"o@x.test"}`,
		`{"a":1}{"b":2}`, "\xff\xfe", `{"code":"ABCDEFGHJK"}`} {
		f.Add([]byte(s))
	}
	a := startStackTB(f)
	sys, org, _ := a.world()
	paths := []struct{ method, uri, token string }{
		{"POST", "/v1/accounts", ""}, {"POST", "/v1/sessions", ""}, {"POST", "/v1/accounts/verify", supportToken},
		{"POST", "/v1/accounts/password", supportToken}, {"POST", "/v1/accounts/password-reset", ""},
		{"POST", "/v1/accounts/password-reset/confirm", ""}, {"POST", "/v1/orgs", supportToken},
		{"POST", "/v1/orgs/" + org + "/members", supportToken}, {"PUT", "/v1/orgs/" + org + "/roles/fuzz", supportToken},
		{"POST", "/v1/systems", supportToken}, {"POST", "/v1/systems/" + sys + "/grants", supportToken},
		{"POST", "/v1/systems/" + sys + "/gateways", supportToken}, {"POST", "/v1/systems/" + sys + "/owner", supportToken},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, p := range paths {
			r := reqSpec{method: p.method, uri: p.uri, token: p.token, body: body}
			checkAnswer(t, r, a.send(r))
		}
	})
}
