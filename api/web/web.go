// Package web serves fleetscope's web dashboard (DESIGN §8): static assets
// checked into assets/ — plain ES modules, CSS and a vendored uPlot, no
// JavaScript toolchain — embedded in the binary with go:embed.
//
// Handler answers GET and HEAD of
//   - "/" and "/index.html": the page, never cached (Cache-Control: no-cache),
//     its asset links rewritten to the versioned prefix;
//   - "/assets/<version>/<path>": an asset, cacheable for a year and
//     immutable — <version> is a hash of every asset, so a new build is new
//     URLs and nothing stale is ever served from a cache;
//   - "/assets/<path>" and an old version's prefix: the current asset, not
//     cached (a page of the previous build still loads);
//
// and a JSON 404 for anything else. Assets are compressed once, at the
// first request, with brotli and gzip; an answer is the smallest encoding
// the client accepts. Every answer carries SecurityHeaders.
//
// The dashboard calls the API of the same origin with the session cookie;
// see assets/js/api.js.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/api/reply"
)

//go:embed assets
var embedded embed.FS

// ContentSecurityPolicy is the dashboard's policy: scripts, styles,
// fetches and frames from its own origin only, no inline script or style
// element, no eval, no framing by other sites. uPlot sets element styles
// through the CSSOM, which style-src 'self' allows.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

// Header is one response header.
type Header struct{ Key, Value string }

// SecurityHeaders are the headers of every dashboard answer. The API
// server may set the same on its own answers (SetSecurityHeaders): a JSON
// answer opened in a browser then cannot run script or be framed either.
var SecurityHeaders = []Header{
	{"Content-Security-Policy", ContentSecurityPolicy},
	{"X-Content-Type-Options", "nosniff"},
	{"Referrer-Policy", "no-referrer"},
	{"X-Frame-Options", "DENY"},
	{"Cross-Origin-Opener-Policy", "same-origin"},
	{"Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"},
}

// SetSecurityHeaders sets SecurityHeaders on h.
func SetSecurityHeaders(h *fasthttp.ResponseHeader) {
	for _, sh := range securityHeaderBytes {
		h.SetCanonical(sh[0], sh[1])
	}
}

// securityHeaderBytes are SecurityHeaders as fasthttp stores them: Set
// copies and normalizes each key on every answer (1.3 % of the server's
// CPU under bench ingest), SetCanonical takes them as they are.
var securityHeaderBytes = func() (out [][2][]byte) {
	for _, sh := range SecurityHeaders {
		var h fasthttp.ResponseHeader
		h.Set(sh.Key, sh.Value)
		for k, v := range h.All() {
			if string(k) != "Content-Type" && string(k) != "Server" && string(k) != "Date" {
				out = append(out, [2][]byte{append([]byte(nil), k...), append([]byte(nil), v...)})
			}
		}
	}
	return out
}()

// Cache-Control values.
const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

// asset is one file, with its encodings.
type asset struct {
	name  string // path under assets/
	ctype string
	raw   []byte
	gz    []byte // nil: not worth compressing
	br    []byte
	etag  string // of the raw bytes; encodings add a suffix
}

// site is the loaded asset set.
type site struct {
	version string // hash of every asset: the URL prefix /assets/<version>/
	index   *asset
	files   map[string]*asset
}

var (
	loadOnce sync.Once
	loaded   *site
)

// Version is the asset set's hash, the versioned prefix's second segment.
func Version() string { return load().version }

// Handler answers the dashboard's paths (see the package documentation).
// The api package serves it for GET and HEAD of every path that is not an
// API route.
func Handler() fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) { load().serve(ctx) }
}

// load reads and compresses the embedded assets, once. A failure is a
// broken build (the files are compiled in), so it panics.
func load() *site {
	loadOnce.Do(func() {
		s, err := newSite(embedded)
		if err != nil {
			panic("web: embedded dashboard assets: " + err.Error())
		}
		loaded = s
	})
	return loaded
}

func newSite(fsys fs.FS) (*site, error) {
	var names []string
	err := fs.WalkDir(fsys, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			names = append(names, strings.TrimPrefix(p, "assets/"))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	h := sha256.New()
	s := &site{files: make(map[string]*asset, len(names))}
	for _, n := range names {
		b, err := fs.ReadFile(fsys, "assets/"+n)
		if err != nil {
			return nil, err
		}
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write(b)
		h.Write([]byte{0})
		s.files[n] = &asset{name: n, raw: b}
	}
	s.version = hex.EncodeToString(h.Sum(nil))[:16]
	idx, ok := s.files["index.html"]
	if !ok {
		return nil, errNoIndex
	}
	delete(s.files, "index.html")
	// The page names its assets under /assets/; the versioned prefix makes
	// each build's URLs its own. Modules import each other by relative
	// paths, so they follow.
	idx.raw = bytes.ReplaceAll(idx.raw, []byte(`="/assets/`), []byte(`="/assets/`+s.version+`/`))
	s.index = idx
	for _, a := range append([]*asset{idx}, s.assetList()...) {
		a.prepare()
	}
	return s, nil
}

type webError string

func (e webError) Error() string { return string(e) }

const errNoIndex = webError("no index.html")

func (s *site) assetList() []*asset {
	out := make([]*asset, 0, len(s.files))
	for _, a := range s.files {
		out = append(out, a)
	}
	return out
}

// prepare sets the type and ETag and compresses text assets at the
// strongest levels (once per process, a fraction of a second for the whole
// set).
func (a *asset) prepare() {
	a.ctype = contentType(a.name)
	sum := sha256.Sum256(a.raw)
	a.etag = `"` + hex.EncodeToString(sum[:8]) + `"`
	if !compressible(a.ctype) || len(a.raw) < 256 {
		return
	}
	if gz := fasthttp.AppendGzipBytesLevel(nil, a.raw, fasthttp.CompressBestCompression); len(gz) < len(a.raw) {
		a.gz = gz
	}
	if br := fasthttp.AppendBrotliBytesLevel(nil, a.raw, fasthttp.CompressBrotliBestCompression); len(br) < len(a.raw) {
		a.br = br
	}
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".json":
		return "application/json"
	case "", ".txt":
		return "text/plain; charset=utf-8" // LICENSE, VERSIONS
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.HasPrefix(ctype, "image/svg") || strings.HasPrefix(ctype, "application/json")
}

func (s *site) serve(ctx *fasthttp.RequestCtx) {
	SetSecurityHeaders(&ctx.Response.Header)
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		reply.Error(ctx, fasthttp.StatusMethodNotAllowed, "method_not_allowed", "the dashboard's pages answer GET and HEAD")
		return
	}
	p := string(ctx.Path())
	switch {
	case p == "/" || p == "/index.html":
		s.write(ctx, s.index, cacheRevalidate)
		return
	case strings.HasPrefix(p, "/assets/"):
		rest := strings.TrimPrefix(p, "/assets/")
		cache := cacheRevalidate
		if v, after, ok := strings.Cut(rest, "/"); ok && isVersion(v) {
			if v == s.version {
				cache = cacheImmutable
			}
			rest = after
		}
		if a, ok := s.files[rest]; ok {
			s.write(ctx, a, cache)
			return
		}
	}
	reply.Error(ctx, fasthttp.StatusNotFound, "not_found", "no such page")
}

// isVersion says whether a path segment has the form of a version hash.
func isVersion(v string) bool {
	if len(v) != 16 {
		return false
	}
	for _, c := range []byte(v) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// write answers an asset in the best encoding the client accepts, or 304
// when the client's copy is current.
func (s *site) write(ctx *fasthttp.RequestCtx, a *asset, cache string) {
	h := &ctx.Response.Header
	h.Set("Cache-Control", cache)
	h.Set("Vary", "Accept-Encoding")
	h.SetContentType(a.ctype)
	body, enc, etag := a.raw, "", a.etag
	switch {
	case a.br != nil && ctx.Request.Header.HasAcceptEncoding("br"):
		body, enc, etag = a.br, "br", a.etag[:len(a.etag)-1]+`-br"`
	case a.gz != nil && ctx.Request.Header.HasAcceptEncoding("gzip"):
		body, enc, etag = a.gz, "gzip", a.etag[:len(a.etag)-1]+`-gz"`
	}
	h.Set("ETag", etag)
	if inm := ctx.Request.Header.Peek("If-None-Match"); len(inm) > 0 && etagMatch(string(inm), etag) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	if enc != "" {
		h.Set("Content-Encoding", enc)
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	if ctx.IsHead() {
		h.SetContentLength(len(body))
		ctx.Response.SkipBody = true
		return
	}
	ctx.SetBody(body)
}

// etagMatch reads an If-None-Match list.
func etagMatch(list, etag string) bool {
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(t), "W/"))
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// Size is what a browser downloads for a first visit to the dashboard with
// the given encoding ("br", "gzip" or ""), without the API's answers: the
// page and every asset it loads at once (the stylesheet, the icon, the
// modules of sign-in and All Locations). The chart library and other pages'
// modules load later, when used.
func Size(encoding string) int {
	s := load()
	n := s.index.size(encoding)
	for _, name := range s.firstLoad() {
		n += s.files[name].size(encoding)
	}
	return n
}

// firstLoad lists the assets the page references directly.
func (s *site) firstLoad() []string {
	var out []string
	for _, part := range bytes.Split(s.index.raw, []byte(`"/assets/`+s.version+`/`))[1:] {
		name, _, _ := bytes.Cut(part, []byte(`"`))
		if _, ok := s.files[string(name)]; ok {
			out = append(out, string(name))
		}
	}
	return out
}

func (a *asset) size(encoding string) int {
	switch {
	case encoding == "br" && a.br != nil:
		return len(a.br)
	case encoding == "gzip" && a.gz != nil:
		return len(a.gz)
	}
	return len(a.raw)
}

// Files lists the embedded assets' paths (under assets/), for tests.
func Files() []string {
	s := load()
	out := []string{"index.html"}
	for n := range s.files {
		out = append(out, n)
	}
	sort.Strings(out[1:])
	return out
}

// Raw answers an embedded asset's bytes as served (index.html with its
// versioned links), for tests.
func Raw(name string) ([]byte, bool) {
	s := load()
	if name == "index.html" {
		return s.index.raw, true
	}
	a, ok := s.files[name]
	if !ok {
		return nil, false
	}
	return a.raw, true
}
