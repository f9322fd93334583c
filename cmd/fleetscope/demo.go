package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/bench"
	"github.com/fleetscope/fleetscope/ingest"
)

// The demo fleet exercises every access rule (DESIGN §4, the seeds): two
// installer organizations, one with team members under two customer types
// and a company-wide shared login; homeowners; a friend with temporary
// viewer access; a family member with data access; a partner as admin; an
// invitation to an owner who has not registered; a fire-safety-only
// system. It is made once, through the HTTP API as a client would, and a
// gateway simulator then posts telemetry for it every 10 s.
const demoPassword = "fleetscope-demo"

type demoAccount struct{ email, name, note string }

var demoAccounts = []demoAccount{
	{"boss@sunny.test", "Sam Sunny", "org_admin of Sunny Installs (installer, 14 systems)"},
	{"tech@sunny.test", "Tia Tech", "Sunny Installs member, customer type \"technician\" (view, data, add_gateway, firmware)"},
	{"sales@sunny.test", "Sol Sales", "Sunny Installs member, customer type \"sales\" (view only: sees locations, 404 on telemetry)"},
	{"monitoring@sunny.test", "Sunny monitoring (shared login)", "company-wide shared account, org_admin"},
	{"lead@bright.test", "Bea Bright", "org_admin of Bright Roofs (installer, 4 systems)"},
	{"homeowner@home.test", "Hana Home", "owns DEMO-0001 and DEMO-0002"},
	{"friend@mail.test", "Fritz Friend", "viewer on DEMO-0001 for 7 days (temporary)"},
	{"family@mail.test", "Fay Family", "data access on DEMO-0002"},
	{"partner@invest.test", "Pat Partner", "admin (partner / additional owner) on DEMO-0003"},
}

// startDemo creates the demo fleet if missing, prints tokens for its
// accounts, and starts the gateway simulator.
func (s *server) startDemo(ctx context.Context, base string) error {
	support := os.Getenv("FLEETSCOPE_SUPPORT_TOKEN")
	if support == "" {
		// The demo's own support token, kept in the data directory so that
		// every start reuses it rather than adding one.
		var err error
		if support, err = demoSupportToken(s.cfg.data); err != nil {
			return err
		}
		if _, err := s.api.EnsureSupport(ctx, support); err != nil {
			return err
		}
	}
	api := &bench.API{Base: base, Token: support}
	_, exists := s.acl.Snapshot().SystemByGUID("DEMO-0001")
	if !exists {
		if err := createDemo(ctx, api); err != nil {
			return fmt.Errorf("create demo fleet: %w", err)
		}
	}
	// The sessions printed are kept in the data directory and reused while
	// they last, so restarts do not pile up sessions.
	tokensPath := filepath.Join(s.cfg.data, "demo-tokens.json")
	tokens := map[string]string{}
	if b, err := os.ReadFile(tokensPath); err == nil {
		json.Unmarshal(b, &tokens)
	}
	for _, a := range demoAccounts {
		if _, ok := s.acl.Snapshot().Authenticate([]byte(tokens[a.email])); ok {
			continue
		}
		var out struct {
			Token string `json:"token"`
		}
		if err := api.Call(ctx, "POST", "/v1/sessions", map[string]any{"email": a.email, "password": demoPassword}, &out); err != nil {
			return err
		}
		tokens[a.email] = out.Token
	}
	if b, err := json.Marshal(tokens); err == nil {
		os.WriteFile(tokensPath, b, 0o600)
	}
	gws, err := demoGateways(ctx, api, tokens["boss@sunny.test"], tokens["lead@bright.test"])
	if err != nil {
		return err
	}
	if !exists {
		// The last day through the API, before the simulator posts (live
		// state counts a panel's readings in time order); the weeks before
		// in the background: the dashboard is usable at once, and its
		// charts fill as the rollups catch up.
		until, err := postRecentDemo(ctx, base, gws, time.Now())
		if err != nil {
			return err
		}
		go func() {
			if err := s.backfillDemo(ctx, until); err != nil && ctx.Err() == nil {
				s.log.Error("demo history", "err", err)
			}
		}()
	}
	// One more gateway on DEMO-0001, which the simulator leaves alone: its
	// key is printed for trying ingest by hand.
	var spare struct {
		Key string `json:"key"`
	}
	boss := &bench.API{Base: base, Token: tokens["boss@sunny.test"]}
	_ = boss.Call(ctx, "DELETE", "/v1/systems/DEMO-0001/gateways/CCA-DE:MO:00", nil, nil)
	if err := boss.Call(ctx, "POST", "/v1/systems/DEMO-0001/gateways", map[string]any{"serial": "CCA-DE:MO:00"}, &spare); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nDashboard: %s/\n  sign in as boss@sunny.test, password %s (an installer's view of 14 systems)\n", base, demoPassword)
	fmt.Fprintf(&b, "  or as homeowner@home.test, same password (a homeowner's 2 systems)\n")
	fmt.Fprintf(&b, "\nDemo fleet at %s — every account's password is %q.\n\n", base, demoPassword)
	fmt.Fprintf(&b, "  %-24s %s\n      %s\n", "support", "platform support (every system, the outbox)", "export TOKEN="+support)
	for _, a := range demoAccounts {
		fmt.Fprintf(&b, "  %-24s %s\n      export TOKEN=%s\n", a.email, a.note, tokens[a.email])
	}
	fmt.Fprintf(&b, "\n  pending invitation: newowner@home.test owns DEMO-0005 once registered and verified\n")
	fmt.Fprintf(&b, "  fire-safety only: DEMO-0014 is listed but posts no data (its gateway gets 403)\n")
	fmt.Fprintf(&b, "\nTry:\n  curl -s -H \"Authorization: Bearer $TOKEN\" '%s/v1/locations?q=müller&sort=-power'\n", base)
	fmt.Fprintf(&b, "  curl -s -H \"Authorization: Bearer $TOKEN\" %s/v1/fleet/summary\n", base)
	fmt.Fprintf(&b, "\nA gateway of DEMO-0001 (key %s) posts a reading stamped now (panel Z1 shows in /v1/systems/DEMO-0001):\n", spare.Key)
	fmt.Fprintf(&b, "  curl -s -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d \"{\\\"seq\\\": $(date +%%s), \\\"readings\\\": [{\\\"panel\\\": \\\"Z1\\\", \\\"ts\\\": $(date +%%s000), \\\"pin\\\": 310.5, \\\"wh\\\": 0.86}]}\" %s/v1/ingest\n\n", spare.Key, base)
	fmt.Fprint(os.Stderr, b.String())
	go simulate(ctx, base+"/v1/ingest", gws, s.log.Warn)
	return nil
}

// demoSites: name, address, time zone, installer ("sunny"/"bright"),
// owner, monitored.
var demoSites = []struct {
	name, address, tz, org, owner string
	monitored                     bool
}{
	{"Müller Residence", "Sonnenweg 3, Freiburg", "Europe/Berlin", "sunny", "homeowner@home.test", true},
	{"Home Garage Roof", "12 Elm Street, Portland", "America/Los_Angeles", "sunny", "homeowner@home.test", true},
	{"Ñandú Solar Farm", "Ruta 40 km 12, Mendoza", "America/Argentina/Mendoza", "sunny", "owner3@home.test", true},
	{"Harbor Office", "1 Pier Road, Sydney", "Australia/Sydney", "sunny", "owner4@home.test", true},
	{"Lakeside Cabin", "Lakeview 7, Bergen", "Europe/Oslo", "sunny", "newowner@home.test", true},
	{"Sunset Villa", "88 Ocean Dr, Miami", "America/New_York", "sunny", "owner6@home.test", true},
	{"Greenhouse North", "Farm Lane 2, Utrecht", "Europe/Amsterdam", "sunny", "owner7@home.test", true},
	{"School Gym", "5 College Ave, Austin", "America/Chicago", "sunny", "owner8@home.test", true},
	{"Brewery Roof", "Hopfenstr. 9, Munich", "Europe/Berlin", "sunny", "owner9@home.test", true},
	{"Clinic Carport", "3 Health Way, Denver", "America/Denver", "sunny", "owner10@home.test", true},
	{"Orchard Barn", "Apple Rd, Nelson", "Pacific/Auckland", "sunny", "owner11@home.test", true},
	{"Library Annex", "10 Book St, Dublin", "Europe/Dublin", "sunny", "owner12@home.test", true},
	{"Corner Bakery", "Rue du Pain 4, Lyon", "Europe/Paris", "sunny", "owner13@home.test", true},
	{"Warehouse fire safety", "Depot 1, Rotterdam", "Europe/Amsterdam", "sunny", "owner14@home.test", false},
	{"Bright Tower", "200 Main St, Toronto", "America/Toronto", "bright", "owner15@home.test", true},
	{"Vineyard Shed", "Wine Rd 5, Stellenbosch", "Africa/Johannesburg", "bright", "owner16@home.test", true},
	{"Mountain Hut", "Alp 1, Zermatt", "Europe/Zurich", "bright", "owner17@home.test", true},
	{"Desert Station", "Hwy 95, Tonopah", "America/Los_Angeles", "bright", "owner18@home.test", true},
}

func createDemo(ctx context.Context, support *bench.API) error {
	as := func(token string) *bench.API { return &bench.API{Base: support.Base, Token: token} }
	tokens := map[string]string{}
	for _, a := range demoAccounts {
		var reg struct {
			Account struct {
				ID uint32 `json:"id"`
			} `json:"account"`
			Token string `json:"token"`
		}
		if err := support.Call(ctx, "POST", "/v1/accounts", map[string]any{"email": a.email, "name": a.name, "password": demoPassword}, &reg); err != nil {
			return err
		}
		// Demo addresses receive no mail: support vouches for them, as it
		// may for any account.
		if err := support.Call(ctx, "POST", "/v1/accounts/verify", map[string]any{"account": reg.Account.ID}, nil); err != nil {
			return err
		}
		tokens[a.email] = reg.Token
	}
	boss, lead := as(tokens["boss@sunny.test"]), as(tokens["lead@bright.test"])
	var sunny, bright struct {
		ID uint32 `json:"id"`
	}
	if err := boss.Call(ctx, "POST", "/v1/orgs", map[string]any{"name": "Sunny Installs"}, &sunny); err != nil {
		return err
	}
	if err := lead.Call(ctx, "POST", "/v1/orgs", map[string]any{"name": "Bright Roofs"}, &bright); err != nil {
		return err
	}
	steps := []struct {
		api          *bench.API
		method, path string
		body         map[string]any
	}{
		{boss, "PUT", fmt.Sprintf("/v1/orgs/%d/roles/technician", sunny.ID), map[string]any{"permissions": []string{"view", "data", "add_gateway", "firmware"}}},
		{boss, "PUT", fmt.Sprintf("/v1/orgs/%d/roles/sales", sunny.ID), map[string]any{"permissions": []string{"view"}}},
		{boss, "POST", fmt.Sprintf("/v1/orgs/%d/members", sunny.ID), map[string]any{"email": "tech@sunny.test", "role": "technician"}},
		{boss, "POST", fmt.Sprintf("/v1/orgs/%d/members", sunny.ID), map[string]any{"email": "sales@sunny.test", "role": "sales"}},
		{boss, "POST", fmt.Sprintf("/v1/orgs/%d/members", sunny.ID), map[string]any{"email": "monitoring@sunny.test", "role": "org_admin"}},
	}
	for _, st := range steps {
		if err := st.api.Call(ctx, st.method, st.path, st.body, nil); err != nil {
			return err
		}
	}
	for i, site := range demoSites {
		api, org := boss, sunny.ID
		if site.org == "bright" {
			api, org = lead, bright.ID
		}
		if err := api.Call(ctx, "POST", "/v1/systems", map[string]any{
			"guid": fmt.Sprintf("DEMO-%04d", i+1), "name": site.name, "address": site.address, "timezone": site.tz,
			"org": org, "owner_email": site.owner, "monitored": site.monitored,
			"capacity_w": demoPanels(i) * demoNameplateW,
		}, nil); err != nil {
			return err
		}
	}
	home := as(tokens["homeowner@home.test"])
	grants := []struct {
		api   *bench.API
		guid  string
		grant map[string]any
	}{
		{home, "DEMO-0001", map[string]any{"email": "friend@mail.test", "role": "viewer", "expires_at": time.Now().Add(7 * 24 * time.Hour).UTC().Format(time.RFC3339)}},
		{home, "DEMO-0002", map[string]any{"email": "family@mail.test", "role": "data"}},
		{support, "DEMO-0003", map[string]any{"email": "partner@invest.test", "role": "admin"}},
		{home, "DEMO-0001", map[string]any{"email": "monitoring@sunny.test", "role": "user"}},
	}
	for _, g := range grants {
		if err := g.api.Call(ctx, "POST", "/v1/systems/"+g.guid+"/grants", g.grant, nil); err != nil {
			return err
		}
	}
	return nil
}

// demoGateways gives every monitored demo system a gateway with a fresh
// key (the keys of an earlier start are not kept anywhere): it removes the
// demo gateway and adds it again.
func demoGateways(ctx context.Context, support *bench.API, bossToken, leadToken string) ([]demoGateway, error) {
	var gws []demoGateway
	for i, site := range demoSites {
		guid := fmt.Sprintf("DEMO-%04d", i+1)
		api := &bench.API{Base: support.Base, Token: bossToken}
		if site.org == "bright" {
			api.Token = leadToken
		}
		serial := fmt.Sprintf("CCA-DE:MO:%02X", i+1)
		_ = api.Call(ctx, "DELETE", "/v1/systems/"+guid+"/gateways/"+serial, nil, nil)
		var out struct {
			Key string `json:"key"`
		}
		if err := api.Call(ctx, "POST", "/v1/systems/"+guid+"/gateways", map[string]any{"serial": serial}, &out); err != nil {
			return nil, err
		}
		if site.monitored {
			gws = append(gws, demoGateway{Gateway: bench.Gateway{Key: out.Key, Panels: demoPanels(i)}, loc: acl.Zone(site.tz), peakW: demoPeakW(i)})
		}
	}
	return gws, nil
}

// demoGateway is a demo site's gateway as the simulator drives it: the
// sun follows the site's local day.
type demoGateway struct {
	bench.Gateway
	loc   *time.Location
	peakW float64
}

// simulate posts one interval of readings per gateway every 10 s, at the
// current time, until ctx ends.
func simulate(ctx context.Context, url string, gws []demoGateway, warn func(string, ...any)) {
	const every = 10 * time.Second
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	seq := uint64(time.Now().Unix()) // a fresh seq range after every restart
	for t := time.NewTicker(every); ; {
		now := time.Now().Truncate(time.Second)
		seq++
		for _, gw := range gws {
			labels := bench.PanelLabels(gw.Panels)
			readings := make([]ingest.Reading, gw.Panels)
			for p := range readings {
				r := bench.Simulate(rng, now.In(gw.loc), every, gw.peakW*(0.92+float64(p%5)/50))
				readings[p] = ingest.Reading{Panel: []byte(labels[p]), TS: now.UnixMilli(), Vin: r.Vin, Iin: r.Iin,
					Pin: r.Pin, Vout: r.Vout, Temp: r.Temp, RSSI: r.RSSI, Wh: r.Wh}
			}
			api := &bench.API{Base: strings.TrimSuffix(url, "/v1/ingest"), Token: gw.Key}
			body := ingest.AppendJSON(nil, seq, readings)
			if err := api.Post(ctx, "/v1/ingest", body); err != nil && ctx.Err() == nil {
				warn("demo simulator: post failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// demoSupportToken returns the demo's support token, made on first use and
// kept in DATA/demo-support-token (readable by the owner only).
func demoSupportToken(dir string) (string, error) {
	path := filepath.Join(dir, "demo-support-token")
	if b, err := os.ReadFile(path); err == nil {
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
	}
	var b [16]byte
	crand.Read(b[:])
	tok := "demo-support-" + hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("demo support token: %w", err)
	}
	return tok, nil
}
