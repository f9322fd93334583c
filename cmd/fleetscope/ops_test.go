package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v4"

	"github.com/fleetscope/fleetscope/bench"
)

// The operations kit (DESIGN §9), checked against real processes and real
// tools: promtool and prometheus from Debian's prometheus package (make
// test installs it), systemd-analyze where the machine has it.

const repoRoot = "../.."

// requireTool returns the path of an external tool the test needs: a
// missing one fails the test under FLEETSCOPE_REQUIRE_ENGINE=1 (make test,
// CI), and skips it otherwise, saying what installs it.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found: install Debian's %s package (make test does)", name, pkg)
	if os.Getenv("FLEETSCOPE_REQUIRE_ENGINE") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// readmeBlock returns the first fenced block of lang after the README's
// heading line.
func readmeBlock(t *testing.T, heading, lang string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no heading %q", heading)
	}
	s = s[i:]
	open := "\n```" + lang + "\n"
	j := strings.Index(s, open)
	if j < 0 {
		t.Fatalf("README has no ```%s block under %q", lang, heading)
	}
	s = s[j+len(open):]
	k := strings.Index(s, "\n```")
	if k < 0 {
		t.Fatalf("unterminated block under %q", heading)
	}
	return s[:k+1]
}

// The alert rules pass promtool's checks and their unit tests.
func TestAlertRules(t *testing.T) {
	promtool := requireTool(t, "promtool", "prometheus")
	dir := filepath.Join(repoRoot, "deploy", "prometheus")
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// The systemd units verify, and their hardening scores as exposure below 3
// (systemd-analyze security; 10 is none).
func TestSystemdUnits(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: the systemd units are not verified on this machine")
	}
	bin := fleetscopeBinary(t)
	dir := t.TempDir()
	var units []string
	for _, name := range []string{"fleetscope.service", "fleetscope-engine.service"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "ExecStart=/usr/local/bin/fleetscope ") {
			t.Fatalf("%s: ExecStart is not /usr/local/bin/fleetscope", name)
		}
		// verify checks that the binary exists: point it at this build.
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/fleetscope", bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, p)
	}
	out, err := exec.Command(analyze, append([]string{"verify", "--man=no"}, units...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	re := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)
	for _, u := range units {
		out, _ := exec.Command(analyze, "security", "--offline=true", u).CombinedOutput()
		m := re.FindSubmatch(out)
		if m == nil {
			t.Fatalf("systemd-analyze security %s: no exposure level\n%s", filepath.Base(u), out)
		}
		if v, _ := strconv.ParseFloat(string(m[1]), 64); v >= 3 {
			t.Errorf("%s: exposure %s, want under 3\n%s", filepath.Base(u), m[1], out)
		}
		t.Logf("%s: exposure %s", filepath.Base(u), m[1])
	}
}

// opsKit is a running `fleetscope serve --demo --ops-addr`.
type opsKit struct {
	srv          *child
	public, ops  string // base URLs
	supportToken string
}

// TestOpsKit runs one fleetscope with the demo fleet and --ops-addr, and
// checks against it: the listeners, the demo's and the README's ways to
// post a first reading, the metrics (promlint, the dashboard's and the
// alerts' names), and a real Prometheus scraping it.
func TestOpsKit(t *testing.T) {
	k := &opsKit{public: "http://" + freeAddr(t), supportToken: "opskit-support-token-5b1e9c2d7a4f3086"}
	opsAddr := freeAddr(t)
	k.ops = "http://" + opsAddr
	k.srv = startChild(t, []string{"FLEETSCOPE_SUPPORT_TOKEN=" + k.supportToken, "FLEETSCOPE_LOG_LEVEL=warn"},
		"serve", "--demo", "--addr", strings.TrimPrefix(k.public, "http://"), "--ops-addr", opsAddr, "--data", t.TempDir())
	waitReady(t, &bench.API{Base: k.ops}, 3*time.Minute)

	t.Run("Listeners", k.listeners)
	t.Run("DemoCurl", k.demoCurl)
	t.Run("QuickStart", k.quickStart)
	t.Run("Metrics", k.metrics)
	t.Run("DashboardAndAlertMetrics", k.dashboardAndAlertMetrics)
	t.Run("Prometheus", func(t *testing.T) { k.prometheus(t, opsAddr) })
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// With --ops-addr, /metrics, /readyz and pprof are there and not on the
// public listener; /readyz says short states only.
func (k *opsKit) listeners(t *testing.T) {
	for _, c := range []struct {
		base, path string
		status     int
	}{
		{k.public, "/metrics", 404}, {k.public, "/readyz", 404}, {k.public, "/debug/pprof/", 404}, {k.public, "/healthz", 200},
		{k.public, "/v1/openapi.json", 200},
		{k.ops, "/metrics", 200}, {k.ops, "/readyz", 200}, {k.ops, "/healthz", 200}, {k.ops, "/debug/pprof/", 200},
		{k.ops, "/v1/accounts/me", 404},
	} {
		st, body := get(t, c.base+c.path)
		if c.base == k.public && c.path == "/debug/pprof/" && !strings.Contains(body, "goroutine") {
			continue // the dashboard's pages may answer it: no profile is what matters
		}
		if st != c.status {
			t.Errorf("%s%s: %d %.200s; want %d", c.base, c.path, st, body, c.status)
		}
	}
	_, body := get(t, k.ops+"/readyz")
	var r struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || !r.Ready || r.Checks["engine"] != "up" || r.Checks["wal"] != "ok" ||
		r.Checks["backlog"] != "ok" || r.Checks["query"] != "ok" || r.Checks["shutdown"] != "no" {
		t.Fatalf("/readyz: %s", body)
	}
	for _, v := range r.Checks {
		if len(v) > 10 {
			t.Fatalf("/readyz says more than a state: %s", body)
		}
	}
}

// The demo prints a gateway key and a curl line that posts a current
// reading: pasted into a shell, it is accepted.
func (k *opsKit) demoCurl(t *testing.T) {
	var line string
	for deadline := time.Now().Add(2 * time.Minute); line == "" && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		sc := bufio.NewScanner(strings.NewReader(k.srv.output()))
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, "curl ") && strings.Contains(l, "/v1/ingest") {
				line = l
			}
		}
	}
	if line == "" {
		t.Fatalf("the demo printed no curl line for ingest:\n%s", k.srv.output())
	}
	out, err := exec.Command("bash", "-c", line).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"accepted":1,"rejected":0`) {
		t.Fatalf("the demo's curl line: %v\n%s\n%s", err, line, out)
	}
}

// The README's gateway quick-start, run as a script with its variables
// set: the reading it posts shows in the system.
func (k *opsKit) quickStart(t *testing.T) {
	script := readmeBlock(t, "## Gateway quick-start", "sh")
	// The line that sets the variables is the reader's; the test sets them.
	re := regexp.MustCompile(`(?m)^export FLEETSCOPE=.*$`)
	if !re.MatchString(script) {
		t.Fatalf("the quick-start sets no FLEETSCOPE and TOKEN:\n%s", script)
	}
	script = re.ReplaceAllString(script, ": exported by the test")
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Env = append(os.Environ(), "FLEETSCOPE="+k.public, "TOKEN="+k.supportToken)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `{"accepted":1,"rejected":0,"errors":[],"duplicate":false}`) {
		t.Fatalf("quick-start: %v\n%s\n--- script:\n%s", err, out, script)
	}
	var sys struct {
		Panels   int     `json:"panels"`
		PowerW   float64 `json:"power_w"`
		LastSeen *string `json:"last_seen"`
		Gateways []struct {
			Serial string `json:"serial"`
		} `json:"gateways"`
	}
	api := &bench.API{Base: k.public, Token: k.supportToken}
	if err := api.Call(context.Background(), "GET", "/v1/systems/QS-0001", nil, &sys); err != nil {
		t.Fatal(err)
	}
	if sys.Panels != 1 || sys.PowerW != 347.6 || sys.LastSeen == nil || len(sys.Gateways) != 1 {
		t.Fatalf("after the quick-start: %+v\n%s", sys, out)
	}
}

// scrape reads the ops listener's /metrics as metric families.
func (k *opsKit) scrape(t *testing.T) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	st, text := get(t, k.ops+"/metrics")
	if st != 200 {
		t.Fatalf("/metrics: %d", st)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return text, fams
}

// promlint finds nothing on a live /metrics; build info, readiness and the
// renamed metrics are there, the old names are not.
func (k *opsKit) metrics(t *testing.T) {
	text, _ := k.scrape(t)
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, want := range []string{`fleetscope_build_info{chdb="`, `goversion="go`, `revision="`, `version="`,
		`fleetscope_ready 1`, `fleetscope_store_up 1`, `fleetscope_ingest_requests_total{code="429"} 0`,
		`fleetscope_ingest_throttled_total{reason="backlog"} 0`, `fleetscope_ingest_flush_errors_total{stage="insert"} 0`,
		`fleetscope_query_matched_locations_bucket{`, `fleetscope_rollup_recomputed_buckets_total `, `fleetscope_acl_tail_lag_seconds `,
		`fleetscope_http_request_duration_seconds_count{endpoint="fleet_energy"}`} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, old := range []string{"fleetscope_query_result_total", "fleetscope_rollup_dirty_minutes_total", `fleetscope_ingest_requests_total{status=`} {
		if strings.Contains(text, old) {
			t.Errorf("/metrics still has %s", old)
		}
	}
}

var (
	metricRe  = regexp.MustCompile(`\b((?:fleetscope|process|go)_[a-zA-Z0-9_]+)(\{[^}]*\})?`)
	matcherRe = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*"([^"]*)"`)
)

// promqlOf returns the PromQL expressions of the Grafana dashboard and the
// alert rules.
func promqlOf(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "grafana", "fleetscope.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("fleetscope.json: %v", err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out["grafana"] = append(out["grafana"], tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		out["grafana"] = append(out["grafana"], v.Definition)
	}
	b, err = os.ReadFile(filepath.Join(repoRoot, "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out["alerts"] = append(out["alerts"], r.Expr)
		}
	}
	if len(out["grafana"]) < 20 || len(out["alerts"]) < 7 {
		t.Fatalf("too few expressions: %d in the dashboard, %d in the alerts", len(out["grafana"]), len(out["alerts"]))
	}
	return out
}

// missingMetrics returns what the expressions name that the families lack:
// a metric (a histogram's _bucket, _count and _sum count as it), or a
// series with the label values an equality matcher names.
func missingMetrics(exprs map[string][]string, fams map[string]*dto.MetricFamily) []string {
	var missing []string
	for file, list := range exprs {
		for _, expr := range list {
			for _, m := range metricRe.FindAllStringSubmatch(expr, -1) {
				name, sel := m[1], m[2]
				fam := fams[name]
				if fam == nil {
					for _, suf := range []string{"_bucket", "_count", "_sum"} {
						if f := fams[strings.TrimSuffix(name, suf)]; f != nil && strings.HasSuffix(name, suf) &&
							(f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY) {
							fam = f
						}
					}
				}
				if fam == nil {
					missing = append(missing, fmt.Sprintf("%s: %s (in %s)", file, name, expr))
					continue
				}
				want := map[string]string{}
				for _, mm := range matcherRe.FindAllStringSubmatch(sel, -1) {
					if mm[2] == "=" {
						want[mm[1]] = mm[3]
					}
				}
				if len(want) > 0 && !hasSeries(fam, want) {
					missing = append(missing, fmt.Sprintf("%s: %s%s: no such series", file, name, sel))
				}
			}
		}
	}
	return missing
}

func hasSeries(fam *dto.MetricFamily, want map[string]string) bool {
	for _, m := range fam.GetMetric() {
		n := 0
		for _, lp := range m.GetLabel() {
			if v, ok := want[lp.GetName()]; ok && v == lp.GetValue() {
				n++
			}
		}
		if n == len(want) {
			return true
		}
	}
	return false
}

// Every metric the Grafana dashboard and the alert rules name is on a live
// /metrics, with the label values their selectors name.
func (k *opsKit) dashboardAndAlertMetrics(t *testing.T) {
	exprs := promqlOf(t)
	var missing []string
	// The rollup worker sets its lag after its first pass (seconds after
	// start): wait for it rather than for a fixed time.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		_, fams := k.scrape(t)
		if missing = missingMetrics(exprs, fams); len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, m := range missing {
		t.Errorf("not on /metrics: %s", m)
	}
	n := 0
	for _, l := range exprs {
		n += len(l)
	}
	t.Logf("%d expressions checked", n)
}

// A real Prometheus, configured with the README's scrape config (and the
// alert rules), scrapes the running fleetscope and answers a query on
// fleetscope_ingest_readings_total.
func (k *opsKit) prometheus(t *testing.T, opsAddr string) {
	bin := requireTool(t, "prometheus", "prometheus")
	cfg := readmeBlock(t, "### Prometheus", "yaml")
	if !strings.Contains(cfg, "127.0.0.1:9180") || !strings.Contains(cfg, "/etc/prometheus/fleetscope-alerts.yml") {
		t.Fatalf("the README's scrape config changed shape:\n%s", cfg)
	}
	rules, err := filepath.Abs(filepath.Join(repoRoot, "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg = strings.NewReplacer("127.0.0.1:9180", opsAddr, "/etc/prometheus/fleetscope-alerts.yml", rules).Replace(cfg)
	cfg = "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n" + cfg
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	log := &lockedWriter{w: new(bytes.Buffer)}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	t.Cleanup(stop)

	query := func(q string) (float64, bool) {
		resp, err := http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return 0, false
		}
		defer resp.Body.Close()
		var r struct {
			Status string `json:"status"`
			Data   struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&r) != nil || r.Status != "success" || len(r.Data.Result) == 0 {
			return 0, false
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	var accepted, up float64
	var ok bool
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if accepted, ok = query(`sum(fleetscope_ingest_readings_total{job="fleetscope",outcome="accepted"})`); ok && accepted >= 2 {
			up, _ = query(`up{job="fleetscope"}`)
			break
		}
	}
	if !ok || accepted < 2 || up != 1 {
		stop()
		t.Fatalf("Prometheus: accepted readings %v (%v), up %v\n%s", accepted, ok, up, log.w)
	}
	resp, err := http.Get("http://" + addr + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	var rr struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name   string `json:"name"`
					Health string `json:"health"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&rr)
	resp.Body.Close()
	n := 0
	for _, g := range rr.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health == "err" {
				t.Errorf("rule %s: %s", r.Name, r.Health)
			}
		}
	}
	if n < 9 {
		t.Errorf("Prometheus loaded %d alert rules, want 9", n)
	}
	t.Logf("Prometheus scraped %v accepted readings; %d rules loaded", accepted, n)
	stop()
}
