package main

import (
	"strings"

	"github.com/valyala/fasthttp"
)

// router dispatches on method and path. Patterns are literal segments and
// {name} placeholders (one segment each); handlers read placeholders with
// pathParam.
type router struct {
	routes []route
}

type route struct {
	method   string
	segments []string
	h        fasthttp.RequestHandler
}

func newRouter() *router { return &router{} }

func (r *router) handle(method, pattern string, h fasthttp.RequestHandler) {
	r.routes = append(r.routes, route{method: method, segments: strings.Split(strings.Trim(pattern, "/"), "/"), h: h})
}

func (r *router) serve(ctx *fasthttp.RequestCtx) {
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
		writeError(ctx, fasthttp.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this path")
		return
	}
	writeError(ctx, fasthttp.StatusNotFound, "not_found", "no such endpoint")
}

// pathParam returns the value of placeholder name in the matched route.
func pathParam(ctx *fasthttp.RequestCtx, name string) string {
	v, _ := ctx.UserValue(name).(string)
	return v
}

func writeError(ctx *fasthttp.RequestCtx, status int, code, msg string) {
	writeJSON(ctx, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
