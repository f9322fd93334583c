package api_test

import (
	"strings"
	"testing"

	"github.com/fleetscope/fleetscope/api/web"
)

// The dashboard is served for GETs outside the API; the API's paths stay
// JSON, whatever their spelling.
func TestDashboardBesideTheAPI(t *testing.T) {
	a := startAPI(t)
	f := func(method, uri string, status int, ctype string) {
		t.Helper()
		resp := a.send(reqSpec{method: method, uri: uri})
		if resp.StatusCode() != status || !strings.HasPrefix(string(resp.Header.ContentType()), ctype) {
			t.Fatalf("%s %s: %d %s, want %d %s", method, uri, resp.StatusCode(), resp.Header.ContentType(), status, ctype)
		}
	}
	f("GET", "/", 200, "text/html")
	f("HEAD", "/", 200, "text/html")
	f("GET", "/assets/"+web.Version()+"/js/app.js", 200, "text/javascript")
	f("GET", "/nope", 404, "application/json")
	f("POST", "/", 404, "application/json")
	f("GET", "/v1/nope", 404, "application/json")
	f("GET", "/v1/..%2F..", 404, "application/json")
	f("GET", "/healthz", 200, "application/json")
	resp := a.send(reqSpec{method: "GET", uri: "/"})
	if got := string(resp.Header.Peek("Content-Security-Policy")); got != web.ContentSecurityPolicy {
		t.Fatalf("CSP %q", got)
	}
}
