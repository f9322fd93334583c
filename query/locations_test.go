package query

import (
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetscope/fleetscope/acl"
)

// fleet is a small installer fleet: an org with an admin, six systems of
// its own with Unicode names, owners and a pending invitation, and one
// system of another org.
type fleet struct {
	*harness
	alice              acl.AccountID // org_admin of Sunshine
	bob                acl.AccountID // org_admin of the other org
	sunshine, otherOrg acl.OrgID
	sys                []acl.SystemID // 0..5 Sunshine's, 6 the other org's
}

func newFleet(t *testing.T, ho harnessOpts) *fleet {
	h := newHarness(t, ho)
	f := &fleet{harness: h}
	f.alice = h.account("alice@sunshine.test")
	f.sunshine = h.org(f.alice, "Sunshine Installers")
	bob := h.account("bob@other.test")
	f.bob = bob
	f.otherOrg = h.org(bob, "Other Co")
	sites := []site{
		{name: "Müller Residence", guid: "04C05B000001", owner: "hans@mueller.de", tz: "Europe/Berlin"},
		{name: "Ñandú Solar", guid: "04C05B000002", owner: "ana@nandu.ar", tz: "America/Argentina/Buenos_Aires"},
		{name: "Sunny Acres Farm", guid: "04C05B000003", owner: "monitoring@oursolarcompany.com"},
		{name: "acme warehouse", guid: "04C05B000004", owner: "ops@acme.com"},
		{name: "Solar Acme", guid: "04C05B000005", owner: "ops@acme.com"},
		{name: "Σολάρ Σπίτι", guid: "04C05B000006", owner: "eleni@example.gr", unmonitored: true},
	}
	for _, s := range sites {
		f.sys = append(f.sys, h.commission(f.alice, f.sunshine, s))
	}
	f.sys = append(f.sys, h.commission(bob, f.otherOrg, site{name: "Müller Barn", guid: "04C05B000007", owner: "fritz@mueller.de"}))
	h.gateway(f.alice, f.sys[0], "CC:A0:00:11:22:33")
	h.gateway(f.alice, f.sys[2], "sn-7788-alpha")
	h.gateway(f.alice, f.sys[2], "SN-7788-BETA")
	h.gateway(bob, f.sys[6], "CC:A0:99:99:99:99")
	// An invitation: the e-mail has no account yet.
	h.grant(f.alice, f.sys[4], acl.EmailPrincipal("pending.person@invite.test"), acl.RoleViewer, time.Time{})
	h.refresh()
	return f
}

func TestSearchByNameEmailGUIDAndSerial(t *testing.T) {
	f := newFleet(t, harnessOpts{})
	s := f.sys
	cases := []struct {
		name string
		q    string
		want []uint32
	}{
		{"name substring", "üller", u32s(s[0])},
		{"name, upper case", "MÜLLER RES", u32s(s[0])},
		{"name, one accented letter: folded, so it is any n", "ñ", u32s(s[0], s[1], s[2])},
		{"accent-insensitive: muller finds Müller", "muller", u32s(s[0])},
		{"and nandu Ñandú", "nandu", u32s(s[1])},
		{"and an accent typed finds the plain e-mail", "ánä@", u32s(s[1])},
		{"name, Greek in another case", "ΣΟΛΆΡ", u32s(s[5])},
		{"name, two letters", "ac", u32s(s[2], s[3], s[4])},
		{"name, surrounding space ignored", "  acme  ", u32s(s[3], s[4])},
		{"name words apart do not match", "solar farm", nil},
		{"owner e-mail prefix", "hans@", u32s(s[0])},
		{"e-mail prefix shared by two systems", "ops@ac", u32s(s[3], s[4])},
		{"e-mail matches only as a prefix", "acme.com", nil},
		{"pending invitation's e-mail", "pending.per", u32s(s[4])},
		{"GUID prefix", "04c05b", u32s(s[:6]...)},
		{"whole GUID", "04C05B000003", u32s(s[2])},
		{"not the other org's system", "04C05B000007", nil},
		{"gateway serial prefix", "cc:a0", u32s(s[0])},
		{"serial prefix, any case", "SN-7788-", u32s(s[2])},
		{"whole serial", "sn-7788-beta", u32s(s[2])},
		{"serial matches only as a prefix", "7788", nil},
		{"no match", "zzz", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := f.search(f.alice, c.q)
			if !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
				t.Fatalf("q=%q: %v, want %v", c.q, got, c.want)
			}
		})
	}
	// Support sees every system.
	if got := f.search(f.support, "müller"); !slices.Equal(got, u32s(s[0], s[6])) {
		t.Fatalf("support: %v", got)
	}
	// The owner sees its own system only.
	hans := f.account("hans@mueller.de")
	if got := f.search(hans, ""); !slices.Equal(got, u32s(s[0])) {
		t.Fatalf("owner: %v", got)
	}
}

func TestLocationRowCarriesMetadataAndLiveState(t *testing.T) {
	f := newFleet(t, harnessOpts{})
	f.report(f.sys[0], t0.Add(-time.Minute), 3, 1234, 5800)
	f.refresh()
	p := f.locations(f.alice, url.Values{"q": {"müller"}})
	if len(p.Items) != 1 || p.Total != 1 || p.NextCursor != nil {
		t.Fatalf("page %+v", p)
	}
	it := p.Items[0]
	if it.ID != uint32(f.sys[0]) || it.GUID != "04C05B000001" || it.Name != "Müller Residence" || it.Timezone != "Europe/Berlin" ||
		!it.Monitored || it.OwnerEmail == nil || *it.OwnerEmail != "hans@mueller.de" ||
		it.Installer == nil || it.Installer.ID != uint32(f.sunshine) || it.Installer.Name != "Sunshine Installers" {
		t.Fatalf("row %+v", it)
	}
	if it.Status != "online" || it.PowerW != 370.2 || it.EnergyTodayWh != 17.4 || it.Panels != 3 || it.LastSeen == nil ||
		*it.LastSeen != "2026-06-20T11:59:00.000Z" {
		t.Fatalf("live %+v (last seen %v)", it, *it.LastSeen)
	}
}

// liveFleet gives Sunshine's systems known live state: power, energy and
// last seen all differ, with ties to check the id tie-break.
func liveFleet(t *testing.T) *fleet {
	f := newFleet(t, harnessOpts{})
	// system index → (minutes ago, deciwatts per panel, mWh per panel); two
	// panels each. s[5] is unmonitored and never reports.
	live := map[int][3]int64{
		0: {1, 1000, 500},
		1: {5, 3000, 100},
		2: {30, 2000, 900}, // offline: power counts as 0
		3: {2, 3000, 100},  // ties s[1] on power and energy
	}
	for i, v := range live {
		f.report(f.sys[i], t0.Add(-time.Duration(v[0])*time.Minute), 2, v[1], uint64(v[2]))
	}
	f.refresh()
	return f
}

func TestEverySort(t *testing.T) {
	f := liveFleet(t)
	s := f.sys
	// Expected orders of Sunshine's six systems (s[4] never reported).
	cases := []struct {
		sort string
		want []acl.SystemID
	}{
		{"name", []acl.SystemID{s[3], s[0], s[1], s[4], s[2], s[5]}}, // acme, müller, ñandú (folded: nandu), solar, sunny, σολάρ
		{"-name", []acl.SystemID{s[5], s[2], s[4], s[1], s[0], s[3]}},
		{"-power", []acl.SystemID{s[3], s[1], s[0], s[5], s[4], s[2]}}, // 600 W, 600 W (ties: id descending), 200 W, then 0 W by id descending
		{"power", []acl.SystemID{s[2], s[4], s[5], s[0], s[1], s[3]}},
		{"last_seen", []acl.SystemID{s[4], s[5], s[2], s[1], s[3], s[0]}}, // never first
		{"-last_seen", []acl.SystemID{s[0], s[3], s[1], s[2], s[5], s[4]}},
		{"energy_today", []acl.SystemID{s[4], s[5], s[1], s[3], s[0], s[2]}},
		{"-energy_today", []acl.SystemID{s[2], s[0], s[3], s[1], s[5], s[4]}},
	}
	for _, c := range cases {
		t.Run(c.sort, func(t *testing.T) {
			for _, limit := range []string{"1", "2", "50"} {
				items := f.all(f.alice, url.Values{"sort": {c.sort}, "limit": {limit}})
				var got []acl.SystemID
				for _, it := range items {
					got = append(got, acl.SystemID(it.ID))
				}
				if !slices.Equal(got, c.want) {
					t.Fatalf("sort=%s limit=%s: %v, want %v", c.sort, limit, got, c.want)
				}
			}
		})
	}
}

func TestStatusFilter(t *testing.T) {
	f := liveFleet(t)
	s := f.sys
	cases := map[string][]uint32{
		"online":         u32s(s[0], s[1], s[3]),
		"offline":        u32s(s[2]),
		"never":          u32s(s[4]),
		"unmonitored":    u32s(s[5]),
		"online,offline": u32s(s[0], s[1], s[2], s[3]),
	}
	for status, want := range cases {
		items := f.all(f.alice, url.Values{"status": {status}})
		var got []uint32
		for _, it := range items {
			got = append(got, it.ID)
			if status != "online,offline" && it.Status != status {
				t.Fatalf("status=%s: item %d is %s", status, it.ID, it.Status)
			}
		}
		sortU32(got)
		if !slices.Equal(got, want) {
			t.Fatalf("status=%s: %v, want %v", status, got, want)
		}
	}
	// Combined with a search.
	items := f.all(f.alice, url.Values{"status": {"online"}, "q": {"acme"}})
	if len(items) != 1 || items[0].ID != uint32(s[3]) {
		t.Fatalf("online acme: %+v", items)
	}
	// A system going quiet turns offline with the next live view.
	f.clock.set(t0.Add(20 * time.Minute))
	f.refresh()
	if items := f.all(f.alice, url.Values{"status": {"online"}}); len(items) != 0 {
		t.Fatalf("online after 20 min of silence: %+v", items)
	}
}

func TestFleetSummary(t *testing.T) {
	f := liveFleet(t)
	var sum struct {
		Systems int            `json:"systems"`
		Status  map[string]int `json:"status"`
		PowerW  float64        `json:"power_w"`
		Energy  float64        `json:"energy_today_wh"`
		Panels  int            `json:"panels"`
	}
	f.getJSON(f.alice, "/v1/fleet/summary", nil, &sum)
	want := map[string]int{"online": 3, "offline": 1, "never": 1, "unmonitored": 1}
	// Online power: 2 panels × (100 + 300 + 300) W; energy: 2 × (0.5 + 0.1 + 0.9 + 0.1) Wh.
	if sum.Systems != 6 || fmt.Sprint(sum.Status) != fmt.Sprint(want) || sum.PowerW != 1400 || sum.Energy != 3.2 || sum.Panels != 8 {
		t.Fatalf("summary %+v", sum)
	}
	// A grant of her own on the other org's system: her bitmap is now a
	// union, summarized as Sunshine's set plus the system it adds.
	f.report(f.sys[6], t0.Add(-time.Minute), 3, 500, 2000)
	f.grant(f.bob, f.sys[6], acl.EmailPrincipal("alice@sunshine.test"), acl.RoleViewer, time.Time{})
	f.refresh()
	f.getJSON(f.alice, "/v1/fleet/summary", nil, &sum)
	want["online"]++
	if sum.Systems != 7 || fmt.Sprint(sum.Status) != fmt.Sprint(want) || sum.PowerW != 1550 || sum.Energy != 9.2 || sum.Panels != 11 {
		t.Fatalf("summary with a grant of her own %+v", sum)
	}
	// Someone who sees nothing gets zeros, not an error.
	nobody := f.account("nobody@example.com")
	f.getJSON(nobody, "/v1/fleet/summary", nil, &sum)
	if sum.Systems != 0 || sum.PowerW != 0 || sum.Status["never"] != 0 {
		t.Fatalf("empty summary %+v", sum)
	}
}

// Pages continue strictly after the previous page's last item. While
// systems are created, renamed and deleted between pages, every system that
// exists throughout with the same name is listed exactly once and no system
// twice. For live sorts the same holds for systems whose sort key stays put
// (see the package doc for keys that move).
func TestPaginationNeitherSkipsNorRepeatsWhileDataChanges(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	admin := h.account("admin@big.test")
	org := h.org(admin, "Big Installer")
	var stable []acl.SystemID
	for i := range 40 {
		id := h.commission(admin, org, site{name: fmt.Sprintf("Site %02d", i)})
		stable = append(stable, id)
		h.report(id, t0.Add(-time.Duration(i)*time.Second), 1, int64(i%7)*100, 1)
	}
	h.refresh()
	rename := func(id acl.SystemID, name string) {
		sys, _ := h.x.Snapshot().System(id)
		h.apply(acl.Event{Kind: acl.KindSystemPut, System: id, GUID: sys.GUID, Name: name, Address: sys.Address,
			Timezone: sys.Timezone, Monitored: sys.Monitored, Org: sys.Org})
	}
	for _, sort := range []string{"name", "-name", "-power", "power", "last_seen", "-last_seen"} {
		t.Run(sort, func(t *testing.T) {
			seen := map[uint32]int{}
			params := url.Values{"sort": {sort}, "limit": {"4"}}
			var changing []acl.SystemID
			for round := 0; ; round++ {
				p := h.locations(admin, params)
				for _, it := range p.Items {
					seen[it.ID]++
				}
				// Change the data between pages: new systems sorting
				// everywhere, renames and deletions of those.
				a := h.commission(admin, org, site{name: fmt.Sprintf("Site %02d b", 39-round)})
				b := h.commission(admin, org, site{name: fmt.Sprintf("Site %02d a", round)})
				changing = append(changing, a, b)
				rename(changing[round], fmt.Sprintf("Site %02d c", (round*7)%40))
				if round > 2 {
					h.must(h.support, acl.DeleteSystem{System: changing[round-2]})
				}
				if sort == "-power" || sort == "power" {
					// Live state moves on; the power (the key) stays.
					for i, id := range stable {
						h.report(id, t0.Add(time.Duration(round)*time.Second), 1, int64(i%7)*100, 1)
					}
				}
				if p.NextCursor == nil {
					break
				}
				if round%3 == 0 {
					h.refresh()
				}
				params.Set("cursor", *p.NextCursor)
			}
			for id, n := range seen {
				if n > 1 {
					t.Fatalf("system %d listed %d times", id, n)
				}
			}
			for _, id := range stable {
				if seen[uint32(id)] != 1 {
					t.Fatalf("stable system %d listed %d times", id, seen[uint32(id)])
				}
			}
		})
	}
}

func TestRevokedGrantGoneFromTheVeryNextSearch(t *testing.T) {
	f := newFleet(t, harnessOpts{})
	guest := f.account("guest@example.com")
	f.grant(f.alice, f.sys[2], acl.EmailPrincipal("guest@example.com"), acl.RoleViewer, time.Time{})
	if got := f.search(guest, "sunny"); !slices.Equal(got, u32s(f.sys[2])) {
		t.Fatalf("after grant: %v", got)
	}
	// The grantee's e-mail is searchable at once too (pending, then folded).
	if got := f.search(f.alice, "guest@"); !slices.Equal(got, u32s(f.sys[2])) {
		t.Fatalf("grantee's e-mail: %v", got)
	}
	f.must(f.alice, acl.RevokeGrant{System: f.sys[2], From: acl.EmailPrincipal("guest@example.com")})
	// No refresh: the very next request reads the new bitmap.
	if got := f.search(guest, "sunny"); len(got) != 0 {
		t.Fatalf("after revoke: %v", got)
	}
	if got := f.search(guest, ""); len(got) != 0 {
		t.Fatalf("after revoke, list: %v", got)
	}
	f.wantError(guest, fmt.Sprintf("/v1/systems/%d", f.sys[2]), nil, 404, "not_found")
	if got := f.search(f.alice, "guest@"); len(got) != 0 {
		t.Fatalf("revoked grantee's e-mail still matches: %v", got)
	}
}

func TestExpiredTemporaryGrantGone(t *testing.T) {
	f := newFleet(t, harnessOpts{})
	tech := f.account("tech@contractor.test")
	f.grant(f.alice, f.sys[0], acl.EmailPrincipal("tech@contractor.test"), acl.RoleData, t0.Add(time.Hour))
	if got := f.search(tech, ""); !slices.Equal(got, u32s(f.sys[0])) {
		t.Fatalf("before expiry: %v", got)
	}
	f.advance(59 * time.Minute)
	if got := f.search(tech, "müller"); !slices.Equal(got, u32s(f.sys[0])) {
		t.Fatalf("a minute before expiry: %v", got)
	}
	f.advance(time.Minute)
	if got := f.search(tech, "müller"); len(got) != 0 {
		t.Fatalf("after expiry: %v", got)
	}
	f.wantError(tech, fmt.Sprintf("/v1/systems/%d", f.sys[0]), nil, 404, "not_found")
}

func TestTeamMemberViewFollowsMembership(t *testing.T) {
	f := newFleet(t, harnessOpts{})
	f.must(f.alice, acl.PutMemberRole{Org: f.sunshine, Name: "sales", Perms: acl.PermView})
	f.must(f.alice, acl.PutMemberRole{Org: f.sunshine, Name: "none", Perms: 0})
	carol := f.account("carol@sunshine.test")
	if got := f.search(carol, ""); len(got) != 0 {
		t.Fatalf("before joining: %v", got)
	}
	f.must(f.alice, acl.PutMember{Org: f.sunshine, Email: "carol@sunshine.test", Role: "sales"})
	if got := f.search(carol, ""); !slices.Equal(got, u32s(f.sys[:6]...)) {
		t.Fatalf("member: %v", got)
	}
	// A member role without view sees nothing; editing the role back gives it all.
	f.must(f.alice, acl.PutMember{Org: f.sunshine, Email: "carol@sunshine.test", Role: "none"})
	if got := f.search(carol, "a"); len(got) != 0 {
		t.Fatalf("role without view: %v", got)
	}
	f.must(f.alice, acl.PutMemberRole{Org: f.sunshine, Name: "none", Perms: acl.PermView | acl.PermData})
	if got := f.search(carol, "acme"); !slices.Equal(got, u32s(f.sys[3], f.sys[4])) {
		t.Fatalf("role edited: %v", got)
	}
	// The org's new system reaches the member at once.
	n := f.commission(f.alice, f.sunshine, site{name: "Brand New Plant"})
	if got := f.search(carol, "brand new"); !slices.Equal(got, u32s(n)) {
		t.Fatalf("new system: %v", got)
	}
	f.must(f.alice, acl.RemoveMember{Org: f.sunshine, Email: "carol@sunshine.test"})
	if got := f.search(carol, ""); len(got) != 0 {
		t.Fatalf("after leaving: %v", got)
	}
}

func TestSystemDetail(t *testing.T) {
	f := newFleet(t, harnessOpts{})
	f.report(f.sys[1], t0.Add(-2*time.Minute), 2, 4000, 1500)
	// No refresh: the detail reads live state now.
	var d struct {
		locItem
		Gateways    []struct{ Serial string } `json:"gateways"`
		Permissions []string                  `json:"permissions"`
	}
	for _, ref := range []string{fmt.Sprint(f.sys[1]), "04C05B000002"} {
		f.getJSON(f.alice, "/v1/systems/"+url.PathEscape(ref), nil, &d)
		if d.ID != uint32(f.sys[1]) || d.Name != "Ñandú Solar" || d.Status != "online" || d.PowerW != 800 || d.EnergyTodayWh != 3 ||
			!slices.Contains(d.Permissions, "firmware") || slices.Contains(d.Permissions, "owner") {
			t.Fatalf("detail by %s: %+v", ref, d)
		}
	}
	// Not viewable, unknown, garbage: 404 alike.
	for _, ref := range []string{fmt.Sprint(f.sys[6]), "04C05B000007", "999999", "nope", "-1"} {
		f.wantError(f.alice, "/v1/systems/"+ref, nil, 404, "not_found")
	}
	f.getJSON(f.support, fmt.Sprintf("/v1/systems/%d", f.sys[6]), nil, &d)
}

func TestBadRequests(t *testing.T) {
	f := newFleet(t, harnessOpts{})
	bad := []url.Values{
		{"sort": {"price"}},
		{"limit": {"0"}},
		{"limit": {"100000"}},
		{"limit": {"ten"}},
		{"status": {"sleeping"}},
		{"cursor": {"!!!"}},
		{"cursor": {"AQAAAAAAAA"}},
		{"q": {string([]byte{0xff, 0xfe})}},
	}
	for _, p := range bad {
		f.wantError(f.alice, "/v1/locations", p, 400, "bad_request")
	}
	// A cursor of one query does not continue another.
	p := f.locations(f.alice, url.Values{"limit": {"1"}, "sort": {"name"}})
	for _, other := range []url.Values{
		{"sort": {"-name"}}, {"q": {"a"}}, {"status": {"online"}},
	} {
		other.Set("cursor", *p.NextCursor)
		f.wantError(f.alice, "/v1/locations", other, 400, "bad_request")
	}
	for _, p := range []url.Values{{"from": {"yesterday"}}, {"to": {"1"}, "from": {"2"}}, {"step": {"5m"}}} {
		f.wantError(f.support, fmt.Sprintf("/v1/systems/%d/telemetry", f.sys[0]), p, 400, "bad_request")
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFleet(t, harnessOpts{tweak: func(o *Options) { o.Registerer = reg }})
	f.search(f.alice, "acme")
	f.wantError(f.alice, "/v1/systems/999", nil, 404, "not_found")
	var sum map[string]any
	f.getJSON(f.alice, "/v1/fleet/summary", nil, &sum)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.Counter != nil:
				got[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				got[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				got[key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	for key, min := range map[string]float64{
		// The HTTP layer (package api) counts every endpoint alike.
		"fleetscope_http_requests_total,code=200,endpoint=locations,method=GET": 1,
		"fleetscope_http_requests_total,code=404,endpoint=system,method=GET":    1,
		"fleetscope_http_request_duration_seconds,endpoint=locations":           1,
		"fleetscope_http_request_duration_seconds,endpoint=fleet_summary":       1,
		"fleetscope_http_response_items,endpoint=locations":                     1,
		"fleetscope_query_matched_locations,kind=search":                        1,
		"fleetscope_query_index_systems":                                        7,
		"fleetscope_query_index_bytes,part=grams":                               1,
		"fleetscope_query_index_bytes,part=keys":                                1,
		"fleetscope_query_index_build_seconds":                                  1,
		"fleetscope_query_live_view_build_seconds":                              1,
	} {
		if got[key] < min {
			t.Errorf("%s = %v, want ≥ %v", key, got[key], min)
		}
	}
}

// A viewer cannot spell out who else has access (DESIGN §5): other
// grantees' e-mails match only for callers who hold share or manage_users
// on the system; the owner's, which every row shows, matches for all.
func TestGranteeEmailsMatchOnlyForSharers(t *testing.T) {
	f := newFleet(t, harnessOpts{})
	guest := f.account("guest@viewer.test")
	f.grant(f.alice, f.sys[4], acl.EmailPrincipal("guest@viewer.test"), acl.RoleViewer, time.Time{})
	f.refresh()
	want := func(caller acl.AccountID, q string, ids ...acl.SystemID) {
		t.Helper()
		if got := f.search(caller, q); !slices.Equal(got, u32s(ids...)) && !(len(got) == 0 && len(ids) == 0) {
			t.Fatalf("q=%q as %d: %v, want %v", q, caller, got, u32s(ids...))
		}
	}
	want(guest, "pending.per")             // an invitation's e-mail: not for a viewer
	want(guest, "guest@view")              // nor its own grant's, seen as a grantee's
	want(guest, "ops@acme", f.sys[4])      // the owner's e-mail is on the row anyway
	want(f.alice, "pending.per", f.sys[4]) // the installer may share: it matches
	want(f.alice, "guest@", f.sys[4])      // and sees the viewer's
	want(guest, "solar acme", f.sys[4])    // names match as ever
	f.grant(f.alice, f.sys[4], acl.EmailPrincipal("guest@viewer.test"), acl.RoleUser, time.Time{})
	f.refresh()
	want(guest, "pending.per", f.sys[4]) // a user holds share and manage_users
}

// Search folds case and accents both ways (DESIGN §5), through the API.
func TestAccentInsensitiveSearch(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	boss := h.account("boss@solar.test")
	org := h.org(boss, "Solar")
	mk := func(name, owner string) acl.SystemID { return h.commission(boss, org, site{name: name, owner: owner}) }
	jurgen := mk("Jürgen Sonnenschein", "jürgen@hof.de")
	strasse := mk("Hauptstraße 5", "o1@x.test")
	sao := mk("São Paulo Solar", "o2@x.test")
	muller := mk("Müller Residence", "o3@x.test")
	plain := mk("Strasse Farm", "o4@x.test")
	h.refresh()
	want := func(q string, ids ...acl.SystemID) {
		t.Helper()
		if got := h.search(boss, q); !slices.Equal(got, u32s(ids...)) {
			t.Fatalf("q=%q: %v, want %v", q, got, u32s(ids...))
		}
	}
	want("muller", muller)
	want("MÜLLER", muller)
	want("jurgen", jurgen)
	want("strasse", strasse, plain)
	want("straße", strasse, plain)
	want("sao", sao)
	want("são p", sao)
	want("jürgen@", jurgen) // an e-mail prefix with an accent
	want("jurgen@hof", jurgen)
}

// getCSV sends GET path?params as caller asking for CSV and parses it.
func (h *harness) getCSV(caller acl.AccountID, path string, params url.Values, accept bool) [][]string {
	h.t.Helper()
	req, err := http.NewRequest("GET", h.base+path+"?"+params.Encode(), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.token(caller))
	if accept {
		req.Header.Set("Accept", "text/csv")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		b, _ := io.ReadAll(resp.Body)
		h.t.Fatalf("GET %s as CSV: %d %s %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		h.t.Fatalf("GET %s: not RFC 4180 CSV: %v", path, err)
	}
	return rows
}

// CSV answers hold every page of the list, the same rows as the JSON, and
// no cell a spreadsheet would run as a formula.
func TestCSVHoldsEveryPage(t *testing.T) {
	f := newFleet(t, harnessOpts{})
	f.commission(f.alice, f.sunshine, site{name: "=HYPERLINK(\"http://evil\",\"x\")", guid: "EVIL-1"})
	for i := range 12 {
		f.commission(f.alice, f.sunshine, site{name: fmt.Sprintf("Extra %02d", i)})
	}
	f.refresh()
	items := f.all(f.alice, url.Values{"sort": {"name"}, "limit": {"5"}})
	rows := f.getCSV(f.alice, "/v1/locations", url.Values{"sort": {"name"}, "format": {"csv"}}, false)
	if len(rows) != len(items)+1 || rows[0][0] != "id" || rows[0][2] != "name" {
		t.Fatalf("%d CSV rows (header %v), %d items", len(rows), rows[0], len(items))
	}
	for i, it := range items {
		name := it.Name
		if strings.HasPrefix(name, "=") {
			name = "'" + name
		}
		if rows[i+1][0] != fmt.Sprint(it.ID) || rows[i+1][1] != it.GUID || rows[i+1][2] != name || rows[i+1][9] != it.Status {
			t.Fatalf("row %d %v, item %+v", i+1, rows[i+1], it)
		}
	}
	// Accept: text/csv asks too; the filters apply.
	if rows := f.getCSV(f.alice, "/v1/locations", url.Values{"q": {"extra"}}, true); len(rows) != 13 {
		t.Fatalf("q=extra: %d CSV rows, want 12 and the header", len(rows))
	}
}
