package api

import (
	"bytes"
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/api/reply"
)

// Answering before the body is read (DESIGN §5): fasthttp reads a
// request's whole body before its handler runs, so the decisions that must
// come first are made in HeaderReceived, from the request line and
// headers, and answered in ErrorHandler. Wire both into the fasthttp.Server
// that serves Handler.

// earlyPaths are the endpoints that take no credential; every other /v1
// path needs one.
var earlyPaths = map[string]bool{
	"/v1/accounts": true, "/v1/sessions": true, "/v1/accounts/password-reset": true,
	"/v1/accounts/password-reset/confirm": true, "/v1/openapi.json": true,
}

// HeaderReceived sets a request's body limit from its headers, before the
// body is read: the ingest limit (Options.IngestMaxBody) for POST /v1/ingest
// from a gateway whose key authenticates, 64 KiB (maxBody) for every other
// endpoint, and nothing for a request to an endpoint that needs a
// credential and carries none that authenticates — fasthttp then answers
// through ErrorHandler (401, or 413) without reading its body.
func (s *Server) HeaderReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	path := h.RequestURI()
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	const refuse = 1 // the smallest limit fasthttp takes: a body of two bytes or more is refused
	switch {
	case string(path) == "/v1/ingest":
		if !s.gatewayKeyOK(h) {
			return fasthttp.RequestConfig{MaxRequestBodySize: refuse}
		}
		return fasthttp.RequestConfig{MaxRequestBodySize: max(s.opts.IngestMaxBody, maxBody)}
	case !bytes.HasPrefix(path, []byte("/v1/")) || earlyPaths[string(path)]:
		return fasthttp.RequestConfig{MaxRequestBodySize: maxBody}
	case !s.credentialOK(h):
		return fasthttp.RequestConfig{MaxRequestBodySize: refuse}
	}
	return fasthttp.RequestConfig{MaxRequestBodySize: maxBody}
}

func (s *Server) gatewayKeyOK(h *fasthttp.RequestHeader) bool {
	tok, ok := bearerOf(h)
	if !ok {
		return false
	}
	_, _, ok = s.x.Snapshot().AuthenticateGateway(tok)
	return ok
}

func (s *Server) credentialOK(h *fasthttp.RequestHeader) bool {
	tok, ok := bearerOf(h)
	if !ok {
		if tok = h.Cookie(CookieName); len(tok) == 0 {
			return false
		}
	}
	_, ok = s.x.Snapshot().Authenticate(tok)
	return ok
}

// bearerOf is the bearer credential of a bare header (see reply.Bearer).
func bearerOf(h *fasthttp.RequestHeader) ([]byte, bool) {
	return reply.BearerOf(h.Peek(fasthttp.HeaderAuthorization))
}

// ErrorHandler answers what fasthttp refuses before a handler runs — a
// body over its limit (a request without a credential first: 401), a
// malformed request, a read timeout — as JSON, like every other answer.
func (s *Server) ErrorHandler(ctx *fasthttp.RequestCtx, err error) {
	s.m.early.WithLabelValues(earlyReason(err)).Inc()
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		path := ctx.Request.Header.RequestURI()
		if i := bytes.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		switch {
		case string(path) == "/v1/ingest" && !s.gatewayKeyOK(&ctx.Request.Header):
			ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="fleetscope ingest"`)
			reply.Error(ctx, fasthttp.StatusUnauthorized, "unauthorized", "missing or invalid gateway key: send Authorization: Bearer <key>")
		case bytes.HasPrefix(path, []byte("/v1/")) && !earlyPaths[string(path)] && string(path) != "/v1/ingest" && !s.credentialOK(&ctx.Request.Header):
			ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="fleetscope"`)
			reply.Error(ctx, fasthttp.StatusUnauthorized, "unauthorized", errUnauthorized.Error())
		default:
			reply.Error(ctx, fasthttp.StatusRequestEntityTooLarge, "too_large", "request body over the limit of this endpoint")
		}
	default:
		var te interface{ Timeout() bool }
		if errors.As(err, &te) && te.Timeout() {
			reply.Error(ctx, fasthttp.StatusRequestTimeout, "timeout", "the request was not received in time")
			return
		}
		reply.Error(ctx, fasthttp.StatusBadRequest, "bad_request", "malformed HTTP request")
	}
}

func earlyReason(err error) string {
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return "body_limit"
	default:
		var te interface{ Timeout() bool }
		if errors.As(err, &te) && te.Timeout() {
			return "timeout"
		}
	}
	return "malformed"
}
