// Package route dispatches fasthttp requests by method and path pattern.
// Patterns are literal segments and {name} placeholders (one segment each);
// handlers read a placeholder with Param.
package route

import (
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/internal/apijson"
)

// Router is a list of routes, tried in order.
type Router struct {
	routes []route
}

type route struct {
	method   string
	segments []string
	h        fasthttp.RequestHandler
}

// Handle adds a route.
func (r *Router) Handle(method, pattern string, h fasthttp.RequestHandler) {
	r.routes = append(r.routes, route{method: method, segments: strings.Split(strings.Trim(pattern, "/"), "/"), h: h})
}

// Serve dispatches a request: 404 for an unknown path, 405 for a known path
// with another method.
func (r *Router) Serve(ctx *fasthttp.RequestCtx) {
	path := strings.Split(strings.Trim(string(ctx.Path()), "/"), "/")
	methodMismatch := false
	for _, rt := range r.routes {
		if len(rt.segments) != len(path) {
			continue
		}
		ok := true
		for i, seg := range rt.segments {
			if strings.HasPrefix(seg, "{") {
				if path[i] == "" {
					ok = false
					break
				}
				continue
			}
			if seg != path[i] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if rt.method != string(ctx.Method()) {
			methodMismatch = true
			continue
		}
		for i, seg := range rt.segments {
			if strings.HasPrefix(seg, "{") {
				ctx.SetUserValue(strings.Trim(seg, "{}"), path[i])
			}
		}
		rt.h(ctx)
		return
	}
	if methodMismatch {
		apijson.Error(ctx, fasthttp.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this path")
		return
	}
	apijson.Error(ctx, fasthttp.StatusNotFound, "not_found", "no such endpoint")
}

// Param returns the value of placeholder name in the matched route.
func Param(ctx *fasthttp.RequestCtx, name string) string {
	v, _ := ctx.UserValue(name).(string)
	return v
}
