package web_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/api/web"
)

// get answers one request made in process.
func get(t *testing.T, method, uri string, headers ...string) *fasthttp.Response {
	t.Helper()
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI("http://fleetscope.test" + uri)
	req.Header.Del("Accept-Encoding")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	web.Handler()(&ctx)
	var resp fasthttp.Response
	ctx.Response.CopyTo(&resp)
	return &resp
}

func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	f := func(method, uri string, status int) {
		t.Helper()
		resp := get(t, method, uri)
		if resp.StatusCode() != status {
			t.Fatalf("%s %s: %d, want %d", method, uri, resp.StatusCode(), status)
		}
		for _, h := range web.SecurityHeaders {
			if got := string(resp.Header.Peek(h.Key)); got != h.Value {
				t.Fatalf("%s %s: %s = %q, want %q", method, uri, h.Key, got, h.Value)
			}
		}
	}
	f("GET", "/", 200)
	f("GET", "/index.html", 200)
	f("HEAD", "/", 200)
	f("GET", "/assets/"+web.Version()+"/app.css", 200)
	f("GET", "/nope", 404)
	f("POST", "/", 405)
	csp := web.ContentSecurityPolicy
	for _, want := range []string{"default-src 'self'", "script-src 'self';", "style-src 'self';", "frame-ancestors 'none'", "base-uri 'none'", "connect-src 'self'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("CSP allows something unsafe: %q", csp)
	}
}

func TestPageAndAssetCaching(t *testing.T) {
	v := web.Version()
	page := get(t, "GET", "/")
	if ct := string(page.Header.ContentType()); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("page Content-Type %q", ct)
	}
	if cc := string(page.Header.Peek("Cache-Control")); cc != "no-cache" {
		t.Fatalf("page Cache-Control %q", cc)
	}
	if !bytes.Contains(page.Body(), []byte(`src="/assets/`+v+`/js/app.js"`)) {
		t.Fatalf("page does not load the versioned app module:\n%s", page.Body())
	}
	f := func(uri string, status int, cache, ctype string) {
		t.Helper()
		resp := get(t, "GET", uri)
		if resp.StatusCode() != status {
			t.Fatalf("GET %s: %d, want %d", uri, resp.StatusCode(), status)
		}
		if status != 200 {
			if !json.Valid(resp.Body()) {
				t.Fatalf("GET %s: %d is not JSON: %q", uri, status, resp.Body())
			}
			return
		}
		if got := string(resp.Header.Peek("Cache-Control")); got != cache {
			t.Fatalf("GET %s: Cache-Control %q, want %q", uri, got, cache)
		}
		if got := string(resp.Header.ContentType()); got != ctype {
			t.Fatalf("GET %s: Content-Type %q, want %q", uri, got, ctype)
		}
	}
	js := "text/javascript; charset=utf-8"
	f("/assets/"+v+"/js/app.js", 200, "public, max-age=31536000, immutable", js)
	f("/assets/"+v+"/vendor/uplot/uPlot.iife.min.js", 200, "public, max-age=31536000, immutable", js)
	f("/assets/"+v+"/app.css", 200, "public, max-age=31536000, immutable", "text/css; charset=utf-8")
	f("/assets/"+v+"/favicon.svg", 200, "public, max-age=31536000, immutable", "image/svg+xml")
	f("/assets/0123456789abcdef/js/app.js", 200, "no-cache", js) // a page of an older build
	f("/assets/js/app.js", 200, "no-cache", js)
	f("/assets/"+v+"/js/nope.js", 404, "", "")
	f("/assets/"+v+"/../web.go", 404, "", "")
	f("/web.go", 404, "", "")
}

func TestCompressionAndRevalidation(t *testing.T) {
	uri := "/assets/" + web.Version() + "/js/pages/locations.js"
	raw := get(t, "GET", uri).Body()
	f := func(accept, encoding string, decode func(io.Reader) (io.Reader, error)) {
		t.Helper()
		resp := get(t, "GET", uri, "Accept-Encoding", accept)
		if got := string(resp.Header.Peek("Content-Encoding")); got != encoding {
			t.Fatalf("Accept-Encoding %q: Content-Encoding %q, want %q", accept, got, encoding)
		}
		if v := string(resp.Header.Peek("Vary")); v != "Accept-Encoding" {
			t.Fatalf("Vary %q", v)
		}
		body := resp.Body()
		if decode != nil {
			if len(body) >= len(raw) {
				t.Fatalf("%s: %d bytes, raw %d", encoding, len(body), len(raw))
			}
			r, err := decode(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if body, err = io.ReadAll(r); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(body, raw) {
			t.Fatalf("%s: decoded body differs from the asset", encoding)
		}
		etag := string(resp.Header.Peek("ETag"))
		again := get(t, "GET", uri, "Accept-Encoding", accept, "If-None-Match", etag)
		if again.StatusCode() != 304 || len(again.Body()) != 0 {
			t.Fatalf("If-None-Match %s: %d with %d bytes", etag, again.StatusCode(), len(again.Body()))
		}
	}
	f("", "", nil)
	f("gzip, deflate", "gzip", func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) })
	f("gzip, deflate, br, zstd", "br", func(r io.Reader) (io.Reader, error) { return brotli.NewReader(r), nil })
}

// DESIGN §7: the first page is at most 300 KB transferred, compressed. The
// browser test measures the same in Chromium, API answers included.
func TestFirstPageBudget(t *testing.T) {
	br, gz, raw := web.Size("br"), web.Size("gzip"), web.Size("")
	t.Logf("first page (page, stylesheet, icon, modules of sign-in and All Locations): %d B raw, %d B gzip, %d B brotli", raw, gz, br)
	if gz > 300_000 || br > 300_000 {
		t.Fatalf("first page %d B gzip, %d B brotli: over 300 KB", gz, br)
	}
}

// The dashboard builds the DOM from text only, and runs under the strict
// CSP: no HTML from strings, no eval, no inline script, handler or style.
func TestNoMarkupFromStrings(t *testing.T) {
	banned := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\(\s*['"](style|on\w+)|\.cssText|javascript:`)
	for _, name := range web.Files() {
		if strings.HasPrefix(name, "vendor/") {
			continue
		}
		b, _ := web.Raw(name)
		switch {
		case strings.HasSuffix(name, ".js"):
			if m := banned.Find(b); m != nil {
				t.Errorf("%s uses %q", name, m)
			}
		case strings.HasSuffix(name, ".html"):
			for _, tag := range regexp.MustCompile(`<script[^>]*>[^<]*`).FindAll(b, -1) {
				if !bytes.Contains(tag, []byte(" src=")) || !bytes.HasSuffix(tag, []byte(">")) {
					t.Errorf("%s has an inline script: %q", name, tag)
				}
			}
			for _, re := range []*regexp.Regexp{
				regexp.MustCompile(`\son[a-z]+\s*=`),
				regexp.MustCompile(`\sstyle\s*=`),
				regexp.MustCompile(`<style`),
			} {
				if m := re.Find(b); m != nil {
					t.Errorf("%s has %q", name, m)
				}
			}
		}
	}
}

// The vendored uPlot is the pinned release: its files' sums are those
// recorded in VERSIONS.
func TestVendoredUPlot(t *testing.T) {
	versions, err := os.ReadFile(filepath.Join("assets", "vendor", "uplot", "VERSIONS"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"uPlot.iife.min.js", "uPlot.min.css", "LICENSE"} {
		b, ok := web.Raw("vendor/uplot/" + name)
		if !ok {
			t.Fatalf("vendor/uplot/%s is not embedded", name)
		}
		sum := sha256.Sum256(b)
		if want := hex.EncodeToString(sum[:]) + "  " + name; !strings.Contains(string(versions), want) {
			t.Errorf("VERSIONS has no line %q: the file changed without its record", want)
		}
	}
	if js, _ := web.Raw("vendor/uplot/uPlot.iife.min.js"); !bytes.Contains(js, []byte("(v1.6.32)")) {
		t.Errorf("uPlot.iife.min.js is not v1.6.32")
	}
}
