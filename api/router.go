package api

import (
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/api/reply"
)

// router dispatches by path pattern and method. A pattern is literal
// segments and {name} placeholders, one segment each. Literal paths are one
// map lookup (the ingest hot path goes through here); patterns with
// placeholders are tried in the order added, and the first whose segments
// match wins.
type router struct {
	static  map[string]*resource
	dynamic []*resource
	// pages answers GET and HEAD of paths outside /v1/ that no route
	// matches: the web dashboard (package web).
	pages fasthttp.RequestHandler
}

// resource is one path pattern and the handler of each of its methods.
type resource struct {
	pattern  string
	segments []string
	methods  map[string]fasthttp.RequestHandler
	allow    string            // "GET, POST, OPTIONS": the Allow header of 405 and OPTIONS answers
	names    map[string]string // the endpoint name of each method, for the access log
}

// param is a placeholder's value in the matched path.
type param struct{ name, value string }

// paramsKey is the user value under which the router leaves a request's
// placeholders ([]param).
const paramsKey = "fleetscope.params"

func (r *router) handle(method, pattern string, h fasthttp.RequestHandler) {
	if r.static == nil {
		r.static = map[string]*resource{}
	}
	res := r.find(pattern)
	if res == nil {
		res = &resource{pattern: pattern, segments: strings.Split(strings.Trim(pattern, "/"), "/"), methods: map[string]fasthttp.RequestHandler{}}
		if strings.Contains(pattern, "{") {
			r.dynamic = append(r.dynamic, res)
		} else {
			r.static[pattern] = res
		}
	}
	if _, dup := res.methods[method]; dup {
		panic("api: route " + method + " " + pattern + " added twice")
	}
	res.methods[method] = h
	res.allow = allowHeader(res.methods)
}

func (r *router) find(pattern string) *resource {
	if res, ok := r.static[pattern]; ok {
		return res
	}
	for _, res := range r.dynamic {
		if res.pattern == pattern {
			return res
		}
	}
	return nil
}

// allowHeader lists a resource's methods in a fixed order.
func allowHeader(m map[string]fasthttp.RequestHandler) string {
	var out []string
	for _, method := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
		if _, ok := m[method]; ok {
			out = append(out, method)
		}
	}
	return strings.Join(append(out, "OPTIONS"), ", ")
}

// name records the endpoint name of a route added with handle.
func (r *router) name(method, pattern, name string) {
	res := r.find(pattern)
	if res.names == nil {
		res.names = map[string]string{}
	}
	res.names[method] = name
}

// endpointName is the name of the route a request went to: "" when no
// route matched its path, "options" for an OPTIONS answered by the router.
func (r *router) endpointName(ctx *fasthttp.RequestCtx) string {
	res, _ := r.match(ctx.Path())
	if res == nil {
		return ""
	}
	method := string(ctx.Method())
	if n, ok := res.names[method]; ok {
		return n
	}
	if method == "HEAD" {
		return res.names["GET"]
	}
	return strings.ToLower(method)
}

// match finds the resource of a path and its placeholders' values.
func (r *router) match(path []byte) (*resource, []param) {
	if res, ok := r.static[string(path)]; ok {
		return res, nil
	}
	segs := strings.Split(strings.Trim(string(path), "/"), "/")
	for _, res := range r.dynamic {
		if len(res.segments) != len(segs) {
			continue
		}
		var ps []param
		ok := true
		for i, seg := range res.segments {
			if strings.HasPrefix(seg, "{") {
				if segs[i] == "" {
					ok = false
					break
				}
				ps = append(ps, param{name: seg[1 : len(seg)-1], value: segs[i]})
				continue
			}
			if seg != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			return res, ps
		}
	}
	return nil, nil
}

// serve dispatches a request: the dashboard's pages for GET and HEAD of a
// path outside the API, 404 for an unknown path, 405 with Allow for a
// known path and another method, and OPTIONS answered from the resource's
// methods (cors, when configured, answers preflights before this).
func (r *router) serve(ctx *fasthttp.RequestCtx) {
	res, ps := r.match(ctx.Path())
	if res == nil && r.pages != nil && (ctx.IsGet() || ctx.IsHead()) && !apiPath(ctx) {
		r.pages(ctx)
		return
	}
	if res == nil {
		reply.Error(ctx, fasthttp.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	method := string(ctx.Method())
	h, ok := res.methods[method]
	if !ok && method == "HEAD" {
		h, ok = res.methods["GET"]
	}
	switch {
	case ok:
		if ps != nil {
			ctx.SetUserValue(paramsKey, ps)
		}
		h(ctx)
	case method == "OPTIONS":
		ctx.Response.Header.Set("Allow", res.allow)
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	default:
		ctx.Response.Header.Set("Allow", res.allow)
		reply.Error(ctx, fasthttp.StatusMethodNotAllowed, "method_not_allowed", "method "+method+" not allowed on this path; allowed: "+res.allow)
	}
}

// apiPath says whether a request is for the API: its path, as sent or as
// normalized ("/v1/..%2F.." is "/"), is under /v1/. Such a request is
// answered by the API (JSON), never by the dashboard.
func apiPath(ctx *fasthttp.RequestCtx) bool {
	return strings.HasPrefix(string(ctx.Path()), "/v1/") || strings.HasPrefix(string(ctx.Request.URI().PathOriginal()), "/v1/")
}

// pathParam returns placeholder name's value in the matched path, "" if the
// route has none.
func pathParam(ctx *fasthttp.RequestCtx, name string) string {
	ps, _ := ctx.UserValue(paramsKey).([]param)
	for _, p := range ps {
		if p.name == name {
			return p.value
		}
	}
	return ""
}
