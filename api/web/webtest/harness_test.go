package webtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fleetscope/fleetscope/bench"
	"github.com/fleetscope/fleetscope/internal/browser"
	"github.com/fleetscope/fleetscope/internal/storetest"
	"github.com/fleetscope/fleetscope/store/engine"
)

// demoPassword is every demo account's password (cmd/fleetscope/demo.go).
const demoPassword = "fleetscope-demo"

// env is a running `fleetscope serve --demo` and a Chromium to drive it.
type env struct {
	t       *testing.T
	base    string
	support string            // the support account's token
	tokens  map[string]string // demo account e-mail → token, as printed
	b       *browser.Browser
	shots   string
	log     *lockedBuffer
}

// required says whether a missing engine or browser fails the test.
func required() bool { return os.Getenv("FLEETSCOPE_REQUIRE_ENGINE") == "1" }

func start(t *testing.T) *env {
	t.Helper()
	chromium, err := browser.Path()
	if err != nil {
		if required() {
			t.Fatalf("FLEETSCOPE_REQUIRE_ENGINE=1 and %v", err)
		}
		t.Skipf("%v; the browser tests need it", err)
	}
	if _, err := os.Stat(engine.LibraryPath()); err != nil {
		storetest.Engine(t) // skips, or fails under FLEETSCOPE_REQUIRE_ENGINE=1
	}
	e := &env{t: t, shots: screenshotDir(t), log: &lockedBuffer{}}

	bin := filepath.Join(t.TempDir(), "fleetscope")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/fleetscope/fleetscope/cmd/fleetscope").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	var sb [16]byte
	rand.Read(sb[:])
	e.support = "webtest-support-" + hex.EncodeToString(sb[:])
	cmd := exec.Command(bin, "serve", "--demo", "--addr", addr, "--data", t.TempDir())
	cmd.Env = append(os.Environ(), "FLEETSCOPE_SUPPORT_TOKEN="+e.support, "FLEETSCOPE_LOG_LEVEL=warn")
	cmd.Stdout, cmd.Stderr = e.log, e.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("fleetscope's output:\n%s", e.log.String())
		}
	})
	e.base = "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := (&bench.API{Base: e.base}).WaitReady(ctx); err != nil {
		t.Fatalf("%v\n%s", err, e.log.String())
	}
	// The demo fleet is made after the listener is up; its tokens are
	// printed when it is complete.
	for !strings.Contains(e.log.String(), "\nTry:\n") {
		if ctx.Err() != nil {
			t.Fatalf("no demo fleet within 5 minutes:\n%s", e.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.tokens = map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^  (\S+@\S+)\s.*\n\s+export TOKEN=(\S+)`).FindAllStringSubmatch(e.log.String(), -1) {
		e.tokens[m[1]] = m[2]
	}
	if len(e.tokens) < 9 {
		t.Fatalf("demo printed %d account tokens:\n%s", len(e.tokens), e.log.String())
	}

	e.b, err = browser.Start(context.Background(), chromium, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.b.Close)
	return e
}

// screenshotDir is FLEETSCOPE_SCREENSHOTS, or screenshots/ at the
// repository's root.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("FLEETSCOPE_SCREENSHOTS")
	if dir == "" {
		root, err := filepath.Abs(".")
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(root)
			if parent == root {
				t.Fatal("no go.mod above the test's directory")
			}
			root = parent
		}
		dir = filepath.Join(root, "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// api is a client of the server as the account with token.
func (e *env) api(token string) *bench.API { return &bench.API{Base: e.base, Token: token} }

// call makes an API request and answers its status and body.
func (e *env) call(token, method, path string, body any) (int, []byte) {
	e.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, e.base+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp.StatusCode, out.Bytes()
}

// page is one browser tab of the test, signed in as someone or not.
type page struct {
	e   *env
	tab *browser.Tab
	who string
}

func (e *env) newPage(who string) *page {
	e.t.Helper()
	tab, err := e.b.NewTab()
	if err != nil {
		e.t.Fatal(err)
	}
	p := &page{e: e, tab: tab, who: who}
	e.t.Cleanup(func() {
		p.checkConsole(e.t)
		tab.Close()
	})
	return p
}

// ctx bounds one step.
func (p *page) ctx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(p.tab.Ctx, d)
}

func (p *page) do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := p.ctx(30 * time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v\nconsole: %s", p.who, err, strings.Join(p.tab.Console.Entries(), "\n"))
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, p *page, expr string) T {
	t.Helper()
	ctx, cancel := p.ctx(30 * time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: evaluate %s: %v", p.who, expr, err)
	}
	return v
}

// wait polls a JavaScript condition until it holds.
func (p *page) wait(t *testing.T, what, expr string, within time.Duration) {
	t.Helper()
	ctx, cancel := p.ctx(within + 5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		body, _ := chromedp.Run(p.tab.Ctx, chromedp.Evaluate[string](`document.querySelector('#main') ? document.querySelector('#main').innerText.slice(0, 3000) : ''`))
		p.shot(t, "failed-"+sanitize(t.Name()))
		t.Fatalf("%s: %s: not within %s (%v)\npage text:\n%s\nconsole:\n%s", p.who, what, within, err, body, strings.Join(p.tab.Console.Entries(), "\n"))
	}
}

// goTo opens a dashboard route (a hash path such as "/locations").
func (p *page) goTo(t *testing.T, route string) {
	t.Helper()
	p.do(t, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = %q`, "#"+route)))
}

// shot saves a full-page screenshot as NAME.png.
func (p *page) shot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := p.ctx(30 * time.Second)
	defer cancel()
	// From the top (the sticky header stays there), once the chart and
	// transitions have settled.
	_ = chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`), chromedp.Sleep(150*time.Millisecond))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(p.e.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
	}
	// Every page shot is also checked for the accessibility basics that
	// can be read off the DOM: each field has a label, each button a name.
	unnamed, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[
		...[...document.querySelectorAll('input, select, textarea')].filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
			.map(e => 'field ' + (e.id || e.name || e.outerHTML.slice(0, 60))),
		...[...document.querySelectorAll('button, a[href]')].filter(e => !e.textContent.trim() && !e.getAttribute('aria-label') && !e.querySelector('img[alt]:not([alt=""])'))
			.map(e => 'control ' + e.outerHTML.slice(0, 80)),
	]`))
	if err != nil {
		t.Errorf("%s: accessibility check: %v", name, err)
	} else if len(unnamed) > 0 {
		t.Errorf("%s: without an accessible name: %s", name, strings.Join(unnamed, "; "))
	}
}

// checkConsole fails t with the page's console errors, and forgets them.
func (p *page) checkConsole(t *testing.T) {
	t.Helper()
	if errs := p.tab.Console.Errors(); len(errs) > 0 {
		t.Errorf("%s: the browser console has errors:\n%s", p.who, strings.Join(errs, "\n"))
	}
}

var nonWord = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func sanitize(s string) string { return strings.Trim(nonWord.ReplaceAllString(s, "-"), "-") }

// signIn signs in through the sign-in page and waits for All Locations.
func (p *page) signIn(t *testing.T, email string) {
	t.Helper()
	p.do(t, chromedp.Navigate(p.e.base+"/#/signin"))
	p.wait(t, "the sign-in form", `!!document.querySelector('#main form input[type=email]')`, 20*time.Second)
	p.do(t,
		chromedp.SetValue(chromedp.CSS(`#main input[type=email]`), email),
		chromedp.SetValue(chromedp.CSS(`#main input[type=password]`), demoPassword),
		chromedp.Click(chromedp.CSS(`#main button[type=submit]`)))
	p.wait(t, "All Locations after sign-in", `!!document.querySelector('#locations-table[data-ready="1"]')`, 30*time.Second)
	p.who = email
}

// retype empties an input, as a user selecting its text and deleting it
// would (an input event), and types text into it key by key.
func (p *page) retype(t *testing.T, sel, text string) {
	t.Helper()
	p.do(t, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const el = document.querySelector(%s); el.focus(); el.value = ''; el.dispatchEvent(new InputEvent('input', {bubbles: true})); })()`, js(sel))),
		chromedp.SendKeys(chromedp.CSS(sel), text))
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
