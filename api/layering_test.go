package api_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The domain packages know nothing of HTTP (DESIGN §1): neither they nor
// anything they import serves it.
func TestDomainPackagesKnowNoHTTP(t *testing.T) {
	for _, pkg := range []string{"acl", "query", "live", "rollup", "store", "mail", "password", "ratelimit"} {
		out, err := exec.Command("go", "list", "-deps", "github.com/fleetscope/fleetscope/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/valyala/fasthttp") || strings.HasPrefix(dep, "github.com/fleetscope/fleetscope/api") {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}
