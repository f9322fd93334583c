package api

import (
	"github.com/valyala/fasthttp"
)

// CORS (DESIGN §5): pages of the origins in Options.CORSOrigins may call
// the API from a browser; other origins get no CORS headers, so browsers
// keep their pages from reading any answer. Credentials are not allowed
// cross-origin (no Access-Control-Allow-Credentials): such a page sends
// Authorization: Bearer <token>, never the dashboard's session cookie,
// which is SameSite=Strict and HttpOnly for the dashboard's own pages.

// corsAllowHeaders are the request headers a cross-origin page may send.
const corsAllowHeaders = "Authorization, Content-Type, Content-Encoding, X-Request-Id"

// corsExposeHeaders are the answer headers such a page may read.
const corsExposeHeaders = "X-Request-Id, Retry-After"

// corsMaxAge is how long a browser may cache a preflight's answer, in
// seconds: 10 minutes, the longest Chromium honours.
const corsMaxAge = "600"

// cors adds CORS headers for an allowed Origin, and answers a preflight
// (OPTIONS with Access-Control-Request-Method) itself, reporting true; a
// request it did not answer goes on to the router. Every answer to a
// request varies by Origin.
func (s *Server) cors(ctx *fasthttp.RequestCtx, r *router) bool {
	ctx.Response.Header.Add("Vary", "Origin")
	origin := ctx.Request.Header.Peek("Origin")
	if len(origin) == 0 {
		return false
	}
	if !s.corsAllowed(origin) {
		return false
	}
	h := &ctx.Response.Header
	h.SetBytesV("Access-Control-Allow-Origin", origin)
	preflight := ctx.IsOptions() && len(ctx.Request.Header.Peek("Access-Control-Request-Method")) > 0
	if !preflight {
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		return false
	}
	res, _ := r.match(ctx.Path())
	if res == nil {
		return false // the router's 404, without the preflight's grants
	}
	h.Set("Access-Control-Allow-Methods", res.allow)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	return true
}
