package query_test

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/api"
	"github.com/fleetscope/fleetscope/internal/storetest"
	"github.com/fleetscope/fleetscope/query"
)

// The query tests go through the HTTP layer that serves them in
// production; this file, an external test package, may import it.
func init() {
	query.ServeHTTP = func(current func() *query.Service, x *acl.Index, reg prometheus.Registerer) fasthttp.RequestHandler {
		var mu sync.Mutex
		servers := map[*query.Service]fasthttp.RequestHandler{}
		return func(ctx *fasthttp.RequestCtx) {
			svc := current()
			mu.Lock()
			h, ok := servers[svc]
			if !ok {
				// A restarted service gets a server of its own; only the
				// first registers its metrics with reg.
				r := reg
				if len(servers) > 0 {
					r = prometheus.NewRegistry()
				}
				h = api.New(api.Options{ACL: x, Query: svc, Registerer: r, Logger: storetest.Logger()}).Handler()
				servers[svc] = h
			}
			mu.Unlock()
			h(ctx)
		}
	}
}
