package api_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/api"
)

// CORS: an allowed origin's preflight is answered with what it may send,
// its requests carry Access-Control-Allow-Origin, and no other origin gets
// a CORS header; credentials are never allowed cross-origin.
func TestCORS(t *testing.T) {
	const portal, evil = "https://portal.example.test", "https://evil.example.test"
	a := startAPIWith(t, func(o *apiOptions) { o.tweak = func(opts *api.Options) { opts.CORSOrigins = []string{portal} } })
	b := startAPI(t) // no --cors-origins
	do := func(s *apiServer, method, origin string, preflight bool) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, s.base+"/v1/accounts/me", nil)
		req.Header.Set("Origin", origin)
		if preflight {
			req.Header.Set("Access-Control-Request-Method", "GET")
			req.Header.Set("Access-Control-Request-Headers", "authorization")
		} else {
			req.Header.Set("Authorization", "Bearer "+supportToken)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	f := func(s *apiServer, method, origin string, preflight bool, status int, allowed bool) {
		t.Helper()
		r := do(s, method, origin, preflight)
		h := r.Header
		if r.StatusCode != status || (h.Get("Access-Control-Allow-Origin") != "") != allowed {
			t.Fatalf("%s from %s (preflight %v): %d, headers %v; want %d, allowed %v", method, origin, preflight, r.StatusCode, h, status, allowed)
		}
		if h.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("credentials allowed cross-origin: %v", h)
		}
		if !allowed {
			for k := range h {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Fatalf("%s from %s: CORS header %s", method, origin, k)
				}
			}
			return
		}
		if h.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
			t.Fatalf("%s from %s: %v", method, origin, h)
		}
		if preflight {
			if !strings.Contains(h.Get("Access-Control-Allow-Methods"), "GET") || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
				h.Get("Access-Control-Max-Age") == "" {
				t.Fatalf("preflight: %v", h)
			}
		} else if !strings.Contains(h.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
			t.Fatalf("exposed headers: %v", h)
		}
	}
	f(a, "OPTIONS", portal, true, 204, true)
	f(a, "GET", portal, false, 200, true)
	f(a, "OPTIONS", evil, true, 204, false) // the router's OPTIONS: no grant
	f(a, "GET", evil, false, 200, false)    // answered; the browser keeps it from the page
	f(b, "OPTIONS", portal, true, 204, false)
	f(b, "GET", portal, false, 200, false)
}

// syncBuffer is a bytes.Buffer for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// At debug level every request is one JSON line: method, the path without
// its query string, endpoint, code, duration in seconds, bytes, request id,
// client address, and the error code of an error answer; no credential.
func TestAccessLog(t *testing.T) {
	var logs syncBuffer
	a := startAPIWith(t, func(o *apiOptions) {
		o.tweak = func(opts *api.Options) {
			opts.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	})
	req, _ := http.NewRequest("GET", a.base+"/v1/accounts/me?secret=hunter2", nil)
	req.Header.Set("Authorization", "Bearer "+supportToken)
	req.Header.Set("X-Request-Id", "trace-me-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	a.want(a.call(supportToken, "GET", "/v1/orgs/424242", nil), 404)
	type line struct {
		Msg, Method, Path, Endpoint, RequestID, ClientIP, Error string
		Code, Bytes                                             int
		Duration                                                *float64 `json:"duration_s"`
	}
	var got []line
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var v line
		dec := json.NewDecoder(strings.NewReader(l))
		if err := dec.Decode(&struct {
			Msg       *string   `json:"msg"`
			Method    *string   `json:"method"`
			Path      *string   `json:"path"`
			Endpoint  *string   `json:"endpoint"`
			RequestID *string   `json:"request_id"`
			ClientIP  *string   `json:"client_ip"`
			Error     *string   `json:"error"`
			Code      *int      `json:"code"`
			Bytes     *int      `json:"bytes"`
			Duration  **float64 `json:"duration_s"`
		}{&v.Msg, &v.Method, &v.Path, &v.Endpoint, &v.RequestID, &v.ClientIP, &v.Error, &v.Code, &v.Bytes, &v.Duration}); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		if v.Msg == "request" {
			got = append(got, v)
		}
	}
	if strings.Contains(logs.String(), "hunter2") || strings.Contains(logs.String(), supportToken) {
		t.Fatalf("a secret reached the log:\n%s", logs.String())
	}
	var me, missing *line
	for i := range got {
		switch got[i].Path {
		case "/v1/accounts/me":
			me = &got[i]
		case "/v1/orgs/424242":
			missing = &got[i]
		}
	}
	if me == nil || me.Method != "GET" || me.Endpoint != "me" || me.Code != 200 || me.Bytes <= 0 || me.RequestID != "trace-me-1" ||
		me.ClientIP != "127.0.0.1" || me.Duration == nil || *me.Duration <= 0 || *me.Duration > 10 || me.Error != "" {
		t.Fatalf("access log of GET /v1/accounts/me: %+v\n%s", me, logs.String())
	}
	if missing == nil || missing.Code != 404 || missing.Error != "not_found" || missing.Endpoint != "org" || missing.RequestID == "" {
		t.Fatalf("access log of a 404: %+v\n%s", missing, logs.String())
	}
}

// With OpsSeparate, /metrics and /readyz move to OpsHandler (with
// /healthz and Go's profiles); the public handler answers 404 for them.
func TestOpsHandler(t *testing.T) {
	metrics := func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("# metrics\n") }
	a := startAPIWith(t, func(o *apiOptions) {
		o.tweak = func(opts *api.Options) { opts.OpsSeparate, opts.Metrics = true, metrics }
	})
	ops := a.api.OpsHandler()
	get := func(h fasthttp.RequestHandler, path string) (int, string) {
		var ctx fasthttp.RequestCtx
		var req fasthttp.Request
		req.SetRequestURI("http://fleetscope.test" + path)
		ctx.Init(&req, nil, nil)
		h(&ctx)
		return ctx.Response.StatusCode(), string(ctx.Response.Body())
	}
	for _, c := range []struct {
		path        string
		public, opt int
	}{
		{"/metrics", 404, 200}, {"/readyz", 404, 200}, {"/healthz", 200, 200}, {"/debug/pprof/", 404, 200},
		{"/debug/pprof/cmdline", 404, 200}, {"/v1/accounts/me", 401, 404},
	} {
		// Public paths outside /v1/ may fall back to the dashboard's pages:
		// what matters is that no profile is served there.
		if st, body := get(a.handler, c.path); st != c.public && !(strings.HasPrefix(c.path, "/debug/") && !strings.Contains(body, "goroutine")) {
			t.Errorf("public %s: %d %.100s; want %d", c.path, st, body, c.public)
		}
		if st, body := get(ops, c.path); st != c.opt {
			t.Errorf("ops %s: %d %.100s; want %d", c.path, st, body, c.opt)
		}
	}
	for _, r := range a.api.Routes() {
		if r.Ops != (r.Pattern == "/metrics" || r.Pattern == "/readyz") {
			t.Errorf("route %+v", r)
		}
	}
}

// At info level no secret reaches the log: passwords, tokens, gateway
// keys, verification and reset codes (mail bodies are logged at debug
// only).
func TestNoSecretsInLogs(t *testing.T) {
	var logs syncBuffer
	a := startAPIWith(t, func(o *apiOptions) {
		o.logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	const pw = "correct horse battery"
	reg := a.want(a.call("", "POST", "/v1/accounts", map[string]any{"email": "sec@example.test", "name": "S", "password": pw}), 201)
	token := reg.str("token")
	code := a.code("sec@example.test")
	a.want(a.call(token, "POST", "/v1/accounts/verify", map[string]any{"code": code}), 200)
	a.want(a.call("", "POST", "/v1/accounts/password-reset", map[string]any{"email": "sec@example.test"}), 202)
	r := a.want(a.call(supportToken, "GET", "/v1/outbox?to=sec@example.test", nil), 200)
	items, _ := r.body["items"].([]any)
	reset := resetCodeRe.FindString(items[0].(map[string]any)["body"].(string))
	a.want(a.call("", "POST", "/v1/accounts/password-reset/confirm", map[string]any{"code": reset, "password": pw + "!"}), 200)
	login := a.want(a.call("", "POST", "/v1/sessions", map[string]any{"email": "sec@example.test", "password": pw + "!"}), 201).str("token")
	org := a.want(a.call(login, "POST", "/v1/orgs", map[string]any{"name": "Sec"}), 201).str("id")
	sys := a.want(a.call(login, "POST", "/v1/systems", map[string]any{"guid": "SEC-1", "name": "n", "timezone": "UTC",
		"org": json.Number(org), "owner_email": "sec@example.test"}), 201).str("id")
	key := a.want(a.call(login, "POST", "/v1/systems/"+sys+"/gateways", map[string]any{"serial": "SEC-GW"}), 201).str("key")
	out := logs.String()
	if !strings.Contains(out, "mail: written to the outbox") {
		t.Fatalf("nothing logged at info, the test sees nothing:\n%s", out)
	}
	for name, secret := range map[string]string{"password": pw, "token": token, "login token": login, "verification code": code,
		"reset code": reset, "gateway key": key, "support token": supportToken} {
		if secret == "" {
			t.Fatalf("no %s to look for", name)
		}
		if strings.Contains(out, secret) {
			t.Errorf("the %s is in the log at info:\n%s", name, out)
		}
	}
}
