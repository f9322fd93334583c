// Package browser drives a headless Chromium (Debian's chromium package)
// through chromedp, for the dashboard's browser tests and `fleetscope bench
// dashboard`: it finds the binary, starts it with the flags a test machine
// needs, opens isolated tabs and collects what the page logs.
package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// ErrNoChromium: no Chromium binary was found.
var ErrNoChromium = errors.New("browser: chromium not found (apt-get install -y chromium, or set FLEETSCOPE_CHROMIUM)")

// Path finds Chromium: FLEETSCOPE_CHROMIUM, else Debian's /usr/bin/chromium,
// else chromium, chromium-browser or google-chrome on PATH.
func Path() (string, error) {
	if p := os.Getenv("FLEETSCOPE_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("browser: FLEETSCOPE_CHROMIUM=%s: %w", p, err)
		}
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium", nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoChromium
}

// Browser is a running headless Chromium.
type Browser struct {
	ctx    context.Context // the browser's first tab; tabs derive from it
	cancel func()
	// Width and Height are the viewport of new tabs.
	Width, Height int
}

// Start launches Chromium with a fresh profile in userDataDir: headless, no
// sandbox (tests run as root in containers), no GPU, no /dev/shm (small in
// containers), and nothing that reaches the network on its own.
func Start(ctx context.Context, execPath, userDataDir string) (*Browser, error) {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(execPath),
		chromedp.UserDataDir(userDataDir),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-breakpad", true),
		// A headless tab counts as hidden: without these, its timers and
		// frames are throttled, and the benchmark measures the throttle.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1440, 1000),
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil {
		bcancel()
		acancel()
		return nil, fmt.Errorf("browser: start %s: %w", execPath, err)
	}
	return &Browser{ctx: bctx, cancel: func() { bcancel(); acancel() }, Width: 1440, Height: 1000}, nil
}

// Close ends Chromium.
func (b *Browser) Close() { b.cancel() }

// Tab is one page in its own browser context: its own cookies and storage,
// as a separate person's browser would have.
type Tab struct {
	Ctx     context.Context
	cancel  func()
	Console *Console
}

// NewTab opens an isolated tab that records its console and refuses
// dialogs.
func (b *Browser) NewTab() (*Tab, error) {
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(b.Width), int64(b.Height))); err != nil {
		cancel()
		return nil, err
	}
	c := &Console{}
	messages := chromedp.Console(ctx)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			c.message(m)
		}
	}()
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			c.add(true, fmt.Sprintf("dialog %s: %s", ev.Type, ev.Message))
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return &Tab{Ctx: ctx, cancel: cancel, Console: c}, nil
}

// BrowserContextID is the tab's browser context (for download settings).
func (t *Tab) BrowserContextID() cdp.BrowserContextID {
	return chromedp.FromContext(t.Ctx).BrowserContextID
}

// Close closes the tab and its browser context.
func (t *Tab) Close() { t.cancel() }

// Console collects what a page reports: console calls, uncaught
// exceptions, browser log entries (CSP violations, failed loads) and
// dialogs (an alert() would be script run from data).
type Console struct {
	mu      sync.Mutex
	errors  []string
	entries []string
}

// Errors are the messages that make a page fail a test: console.error,
// uncaught exceptions, dialogs, and browser log errors other than HTTP
// answers of 4xx (an API's 401, 404 or 409, which the page handles and
// says so; 5xx answers count).
func (c *Console) Errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errors...)
}

// Entries are every message seen, for a failure report.
func (c *Console) Entries() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.entries...)
}

func (c *Console) add(isErr bool, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = append(c.entries, msg)
	if isErr {
		c.errors = append(c.errors, msg)
	}
}

func (c *Console) message(m chromedp.ConsoleMessage) {
	msg := fmt.Sprintf("%s %s: %s (%s:%d)", m.Source, m.Type, m.Text, m.URL, m.Line+1)
	isErr := m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException
	if isErr && m.Source == "network" && clientError(m.Text) {
		isErr = false
	}
	c.add(isErr, msg)
}

// clientError says whether a network log line is an HTTP 4xx answer.
func clientError(text string) bool { return strings.Contains(text, "status of 4") }
