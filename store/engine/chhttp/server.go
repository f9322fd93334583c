// Package chhttp serves an embedded engine (package engine) over
// ClickHouse's HTTP interface on fasthttp: what `fleetscope engine` runs so
// that several fleetscope processes, and operators' tools, share one
// engine. It is apart from package engine so that the engine — which every
// fleetscope process links through package store — carries no HTTP server.
package chhttp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/fleetscope/fleetscope/store/engine"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// ErrPasswordRequired reports a ClickHouse HTTP interface that would listen
// beyond loopback without a password: anyone who reaches the port could
// then run any statement.
var ErrPasswordRequired = errors.New("engine: a password is required to serve beyond loopback")

// CheckExposure returns ErrPasswordRequired when addr (a listener's bound
// address) is not a loopback address and password is empty. A wildcard
// address (0.0.0.0, ::) is not loopback.
func CheckExposure(addr net.Addr, password string) error {
	if password != "" {
		return nil
	}
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w (listening on %s)", ErrPasswordRequired, addr)
}

// defaultUser is the only user of the HTTP interface, as in a fresh ClickHouse.
const defaultUser = "default"

// Options configure the ClickHouse HTTP interface that Engine.HTTPHandler
// serves. The zero value is valid: no password, no /metrics.
type Options struct {
	// Password of user default. Given, every statement needs it (HTTP basic
	// auth, X-ClickHouse-User/X-ClickHouse-Key headers, or user/password URL
	// parameters). Empty, requests need no credentials, a non-empty password
	// is refused, and so is every request from a web page (see HTTPHandler);
	// serve only on loopback then (CheckExposure).
	Password string
	// Metrics, if set, is served at /metrics, without authentication like
	// ClickHouse's Prometheus endpoint.
	Metrics prometheus.Gatherer
	// Context bounds every statement: when it ends (at shutdown) running
	// statements are cancelled. Nil means context.Background().
	Context context.Context
	// Registerer receives the interface's metrics; nil registers nothing.
	// HTTPHandler registers them, so call it once per Registerer.
	Registerer prometheus.Registerer
}

// Reasons a request is refused before it reaches the engine, the values of
// the reason label of fleetscope_engine_http_refused_total.
const (
	refusedAuth     = "auth"
	refusedWebPage  = "web_page"
	refusedReadOnly = "readonly"
	refusedMethod   = "method"
)

type httpHandler struct {
	e        *engine.Engine
	ctx      context.Context
	hasPass  bool
	passHash [sha256.Size]byte
	metrics  fasthttp.RequestHandler
	refused  *prometheus.CounterVec
}

// HTTPHandler serves the ClickHouse HTTP interface on a fasthttp server, for
// `fleetscope engine`. As ClickHouse's does:
//   - `/` runs the statement of the query parameter and/or the body (see
//     decodeRequest); GET and HEAD are read-only (readonly=2, plus the text
//     checks of checkReadOnly) and refused with READONLY (403) otherwise;
//     POST runs anything;
//   - the answer is in TabSeparated unless the statement's FORMAT or the
//     default_format parameter says otherwise;
//   - `/ping`, and GET `/` without a query, answer "Ok.";
//   - credentials are checked against opts.Password in constant time:
//     none given answers REQUIRED_PASSWORD (401), wrong ones
//     AUTHENTICATION_FAILED (403).
//
// A request from a web page — an Origin header, or a Sec-Fetch-Site other
// than "none" (which browsers send on every request, also on the GETs of
// <img> or <script> tags and after DNS rebinding) — is refused with
// ACCESS_DENIED (403) unless it carries the password: no page the operator
// visits may run statements on the engine.
//
// A statement runs under a context that ends with the request: when the
// client disconnects mid-statement it is cancelled (KILL QUERY), and no
// goroutine outlives the request.
func Handler(e *engine.Engine, opts Options) fasthttp.RequestHandler {
	h := &httpHandler{e: e, ctx: opts.Context, hasPass: opts.Password != ""}
	if h.ctx == nil {
		h.ctx = context.Background()
	}
	h.passHash = sha256.Sum256([]byte(opts.Password))
	if opts.Metrics != nil {
		h.metrics = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(opts.Metrics, promhttp.HandlerOpts{}))
	}
	h.refused = promauto.With(opts.Registerer).NewCounterVec(prometheus.CounterOpts{
		Namespace: "fleetscope", Subsystem: "engine", Name: "http_refused_total",
		Help: "Requests the engine's HTTP interface refused before running them, by reason (auth, web_page, readonly, method).",
	}, []string{"reason"})
	for _, r := range []string{refusedAuth, refusedWebPage, refusedReadOnly, refusedMethod} {
		h.refused.WithLabelValues(r)
	}
	return h.serve
}

func (h *httpHandler) serve(ctx *fasthttp.RequestCtx) {
	// The answers are data, never pages or scripts for a browser to run.
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	readOnly := ctx.IsGet() || ctx.IsHead()
	switch path := string(ctx.Path()); {
	case path == "/ping":
		ctx.SetContentType("text/plain; charset=UTF-8")
		ctx.SetBodyString("Ok.\n")
		return
	case path == "/metrics" && h.metrics != nil:
		h.metrics(ctx)
		return
	case path != "/":
		ctx.SetStatusCode(http.StatusNotFound)
		ctx.SetContentType("text/plain; charset=UTF-8")
		ctx.SetBodyString("There is no handle " + path + "\n\nUse / or /ping for health checks.\n\n" +
			"Send queries with POST or GET /?query=...\n")
		return
	case !readOnly && !ctx.IsPost():
		h.refused.WithLabelValues(refusedMethod).Inc()
		ctx.Response.Header.Set("Allow", "GET, HEAD, POST")
		writeFastError(ctx, &engine.Error{Code: 36, Name: "BAD_ARGUMENTS", Message: "Code: 36. DB::Exception: HTTP method " +
			string(ctx.Method()) + " is not allowed; use GET (read-only) or POST. (BAD_ARGUMENTS)"}, http.StatusMethodNotAllowed)
		return
	case readOnly && !ctx.QueryArgs().Has("query") && len(ctx.Request.Body()) == 0:
		ctx.SetContentType("text/plain; charset=UTF-8")
		ctx.SetBodyString("Ok.\n")
		return
	}
	authed, aerr := h.authenticate(ctx)
	if aerr != nil {
		h.refused.WithLabelValues(refusedAuth).Inc()
		writeFastError(ctx, aerr, 0)
		return
	}
	if !authed && fromWebPage(ctx) {
		h.refused.WithLabelValues(refusedWebPage).Inc()
		writeFastError(ctx, &engine.Error{Code: 497, Name: "ACCESS_DENIED", Message: "Code: 497. DB::Exception: default: " +
			"requests from a web page (Origin or Sec-Fetch-Site header) are refused unless the engine has a password " +
			"(fleetscope engine --password) and the request carries it. (ACCESS_DENIED)"}, 0)
		return
	}
	params := url.Values{}
	for k, v := range ctx.QueryArgs().All() {
		params.Add(string(k), string(v))
	}
	req, err := engine.DecodeRequest(params, string(ctx.Request.Header.ContentType()), bytes.NewReader(ctx.PostBody()))
	if err != nil {
		writeFastError(ctx, engine.AsError(err), 0)
		return
	}
	if readOnly {
		if rerr := req.MakeReadOnly(); rerr != nil {
			h.refused.WithLabelValues(refusedReadOnly).Inc()
			writeFastError(ctx, rerr, 0)
			return
		}
	}
	sctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	stop := watchDisconnect(ctx.Conn(), cancel)
	body, free, err := h.e.Serve(sctx, req)
	stop()
	if err != nil {
		writeFastError(ctx, engine.AsError(err), 0)
		return
	}
	defer free()
	ctx.SetContentType("application/octet-stream")
	ctx.SetBody(body)
}

// authenticate checks the request's credentials. It reports whether the
// request carried the configured password; with no password configured a
// request without credentials passes unauthenticated.
func (h *httpHandler) authenticate(ctx *fasthttp.RequestCtx) (bool, *engine.Error) {
	user, pass, methods := "", "", 0
	if v := ctx.Request.Header.Peek("Authorization"); len(v) > 0 {
		methods++
		var ok bool
		if user, pass, ok = parseBasicAuth(v); !ok {
			return false, authFailed("only HTTP basic authentication is supported")
		}
	}
	if u, k := ctx.Request.Header.Peek("X-ClickHouse-User"), ctx.Request.Header.Peek("X-ClickHouse-Key"); len(u) > 0 || len(k) > 0 {
		methods++
		user, pass = string(u), string(k)
	}
	if args := ctx.QueryArgs(); args.Has("user") || args.Has("password") {
		methods++
		user, pass = string(args.Peek("user")), string(args.Peek("password"))
	}
	if methods > 1 {
		return false, authFailed("use one of basic authentication, X-ClickHouse-User/X-ClickHouse-Key headers or user/password parameters, not several")
	}
	if user != "" && user != defaultUser {
		return false, authFailed("there is no user " + strconv.Quote(user) + "; the engine's user is default")
	}
	if !h.hasPass {
		if pass != "" {
			return false, authFailed("password is incorrect (the engine has no password)")
		}
		return false, nil
	}
	if pass == "" {
		return false, &engine.Error{Code: 194, Name: "REQUIRED_PASSWORD", Message: "Code: 194. DB::Exception: default: " +
			"Authentication failed: password required (basic auth, X-ClickHouse-Key or the password parameter). (REQUIRED_PASSWORD)"}
	}
	// Hashes have equal lengths, so the comparison time does not tell the
	// password's length either.
	got := sha256.Sum256([]byte(pass))
	if subtle.ConstantTimeCompare(got[:], h.passHash[:]) != 1 {
		return false, authFailed("password is incorrect")
	}
	return true, nil
}

func authFailed(why string) *engine.Error {
	return &engine.Error{Code: 516, Name: "AUTHENTICATION_FAILED", Message: "Code: 516. DB::Exception: default: Authentication failed: " +
		why + ". (AUTHENTICATION_FAILED)"}
}

// parseBasicAuth decodes an `Authorization: Basic …` header value.
func parseBasicAuth(v []byte) (user, pass string, ok bool) {
	const prefix = "basic "
	if len(v) < len(prefix) || !bytes.EqualFold(v[:len(prefix)], []byte(prefix)) {
		return "", "", false
	}
	dec, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(v[len(prefix):])))
	if err != nil {
		return "", "", false
	}
	u, p, ok := bytes.Cut(dec, []byte{':'})
	if !ok {
		return "", "", false
	}
	return string(u), string(p), true
}

// fromWebPage reports a request a browser sent on behalf of a page. Tools
// (curl, clickhouse-go, clickhouse-client) send neither header; a browser
// sends Sec-Fetch-Site "none" only when the user typed the address.
func fromWebPage(ctx *fasthttp.RequestCtx) bool {
	if len(ctx.Request.Header.Peek("Origin")) > 0 {
		return true
	}
	site := ctx.Request.Header.Peek("Sec-Fetch-Site")
	return len(site) > 0 && string(site) != "none"
}

// writeFastError answers e the way ClickHouse does: its text, and its code
// in X-ClickHouse-Exception-Code. status 0 means errorStatus(e).
func writeFastError(ctx *fasthttp.RequestCtx, e *engine.Error, status int) {
	if status == 0 {
		status = e.HTTPStatus()
	}
	ctx.SetStatusCode(status)
	ctx.Response.Header.Set("X-ClickHouse-Exception-Code", strconv.Itoa(e.Code))
	ctx.SetContentType("text/plain; charset=UTF-8")
	ctx.SetBodyString(e.Message + "\n")
}
