package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"net/http"

	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/api"
)

// The OpenAPI document (GET /v1/openapi.json) is checked three ways: it
// loads and validates as OpenAPI 3.1 (kin-openapi), it lists exactly the
// routes of api.Server, and every answer the API tests get — through
// startServer, over HTTP or in process — validates against it
// (openapiChecker, below).

var openapiDoc = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPIDocument)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	return doc, nil
})

func TestOpenAPIDocumentValidates(t *testing.T) {
	doc, err := openapiDoc()
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %q, want 3.1", doc.OpenAPI)
	}
	for _, name := range []string{"bearerToken", "sessionCookie", "gatewayKey"} {
		if doc.Components.SecuritySchemes[name] == nil {
			t.Errorf("no security scheme %s", name)
		}
	}
}

// Every route of the server is in the document, and the document has no
// other.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	doc, err := openapiDoc()
	if err != nil {
		t.Fatal(err)
	}
	nop := func(*fasthttp.RequestCtx) {}
	srv := api.New(api.Options{ACL: acl.New(acl.Options{}), Ingest: nop, Metrics: nop})
	var routes, documented []string
	for _, r := range srv.Routes() {
		routes = append(routes, r.Method+" "+r.Pattern)
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(routes)
	slices.Sort(documented)
	for _, r := range routes {
		if _, found := slices.BinarySearch(documented, r); !found {
			t.Errorf("route %s is not in the OpenAPI document", r)
		}
	}
	for _, d := range documented {
		if _, found := slices.BinarySearch(routes, d); !found {
			t.Errorf("the OpenAPI document has %s, which no route serves", d)
		}
	}
	if len(routes) < 35 {
		t.Fatalf("only %d routes: %v", len(routes), routes)
	}
}

// GET /v1/openapi.json serves the document, without a credential.
func TestOpenAPIServed(t *testing.T) {
	a := startAPI(t)
	r := a.want(a.call("", "GET", "/v1/openapi.json", nil), 200)
	if r.str("openapi") != "3.1.0" || !bytes.Equal([]byte(r.raw), api.OpenAPIDocument) {
		t.Fatalf("openapi.json: %.200s", r.raw)
	}
}

// openapiChecker validates every answer of a test server against the
// document: its status is documented for the operation (or covered by
// default), its headers and JSON body match the response's schema; the
// request of a 2xx answer must match the operation's parameters and body
// too (what the server accepted, the document must allow), outside fuzz
// targets. An answer to a
// path or method the document does not have (404, 405) must be an Error.
// A violation is reported by the test's cleanup, and marked on the answer
// (header X-OpenAPI-Violation) for checks inside fuzz targets.
type openapiChecker struct {
	router routers.Router
	errSch *openapi3.Schema
	// requests: check the requests of 2xx answers too. Fuzz targets do
	// not: the server is more lenient than the document (it ignores what
	// it does not need), and a fuzzer finds every such corner.
	requests bool

	mu         sync.Mutex
	violations []string
	checked    int
}

func newOpenAPIChecker(t testing.TB) *openapiChecker {
	t.Helper()
	doc, err := openapiDoc()
	if err != nil {
		t.Fatal(err)
	}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	_, fuzz := t.(*testing.F)
	c := &openapiChecker{router: r, errSch: doc.Components.Schemas["Error"].Value, requests: !fuzz}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if fuzz {
			return // the fuzz function's own t reports them (checkAnswer)
		}
		t.Logf("%d answers checked against the OpenAPI document, %d violations", c.checked, len(c.violations))
		for _, v := range c.violations {
			t.Errorf("OpenAPI: %s", v)
		}
	})
	return c
}

// wrap returns h, checking each of its answers.
func (c *openapiChecker) wrap(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		h(ctx)
		if err := c.check(ctx); err != nil {
			msg := fmt.Sprintf("%s %s → %d %.300s: %v", ctx.Method(), ctx.URI().RequestURI(), ctx.Response.StatusCode(), ctx.Response.Body(), err)
			c.mu.Lock()
			c.violations = append(c.violations, msg)
			c.mu.Unlock()
			ctx.Response.Header.Set("X-OpenAPI-Violation", strings.ReplaceAll(msg, "\n", " "))
		}
	}
}

func (c *openapiChecker) check(ctx *fasthttp.RequestCtx) error {
	if ctx.IsHead() || ctx.IsOptions() || ctx.Response.IsBodyStream() {
		return nil
	}
	c.mu.Lock()
	c.checked++
	c.mu.Unlock()
	req, err := http.NewRequest(string(ctx.Method()), "http://fleetscope.test"+string(ctx.URI().RequestURI()), bytes.NewReader(ctx.PostBody()))
	if err != nil {
		return nil // a request line Go cannot even parse: nothing to look up
	}
	for k, v := range ctx.Request.Header.All() {
		req.Header.Add(string(k), string(v))
	}
	if req.Header.Get("Content-Type") == "" && len(ctx.PostBody()) > 0 {
		req.Header.Set("Content-Type", "application/json") // what the API reads any body as
	}
	status := ctx.Response.StatusCode()
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		if !strings.HasPrefix(req.URL.Path, "/v1/") && !strings.HasPrefix(string(ctx.Response.Header.ContentType()), "application/json") {
			return nil // the dashboard's pages, outside the API
		}
		// Not a documented operation: the router's own 404 or 405.
		if status != fasthttp.StatusNotFound && status != fasthttp.StatusMethodNotAllowed {
			return fmt.Errorf("no documented operation for a %d answer (%v)", status, err)
		}
		return c.errorBody(ctx.Response.Body())
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	// Ingest answers 200 to readings the schema refuses: each is rejected
	// alone, in the answer's errors (DESIGN §5).
	if c.requests && status >= 200 && status < 300 && route.Operation.OperationID != "ingest" {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			return fmt.Errorf("the request of a %d answer does not match the document: %w", status, err)
		}
	}
	header := http.Header{}
	for k, v := range ctx.Response.Header.All() {
		header.Add(string(k), string(v))
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: opts}
	out.SetBodyBytes(slices.Clone(ctx.Response.Body()))
	return openapi3filter.ValidateResponse(context.Background(), out)
}

func (c *openapiChecker) errorBody(body []byte) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return c.errSch.VisitJSON(v, openapi3.EnableJSONSchema2020())
}
