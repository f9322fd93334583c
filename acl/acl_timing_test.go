package acl

import (
	"flag"
	"fmt"
	"iter"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

var flagHeap = flag.String("acl.heap", "", "measure the heap of an index of `systems,accounts,grants` (e.g. 2000000,1000000,10000000); off by default")

// fleetSpec sizes a synthetic fleet: systems each commissioned by an
// installer org for an owner (3% of them invitations), plus grants to random
// accounts (viewer, data or user) up to grants in total, owner and installer
// grants included. One big org holds a tenth of the systems; its members are
// bigOrgMembers staff accounts of their own, a tenth of which also hold a
// grant of their own (a technician who commissioned with a personal
// e-mail), so that their bitmaps are unions.
type fleetSpec struct {
	systems, accounts, grants int
	bigOrgMembers             int
}

const bigOrg OrgID = 1

// genFleet streams the fleet's events to emit in batches (emit must not
// retain the slice).
func genFleet(spec fleetSpec, clock *HLC, emit func([]Event)) {
	r := rand.New(rand.NewPCG(42, 0))
	const batchSize = 1 << 16
	buf := make([]Event, 0, batchSize)
	add := func(ev Event) {
		ev.Stamp = clock.Now()
		buf = append(buf, ev)
		if len(buf) == batchSize {
			emit(buf)
			buf = buf[:0]
		}
	}
	email := func(a int) string { return fmt.Sprintf("u%d@fleet.test", a) }
	customers := spec.accounts - spec.bigOrgMembers // accounts 1..customers; staff after
	customer := func() string { return email(1 + r.IntN(customers)) }
	for a := 1; a <= spec.accounts; a++ {
		add(Event{Kind: KindAccountRegister, Account: AccountID(a), Email: email(a)})
		add(Event{Kind: KindAccountVerify, Account: AccountID(a), Verified: true})
	}
	orgs := max(2, spec.systems/1000)
	for o := 1; o <= orgs; o++ {
		add(Event{Kind: KindOrgPut, Org: OrgID(o), Name: fmt.Sprintf("Installer %d", o)})
		add(Event{Kind: KindRolePut, Org: OrgID(o), Name: "tech", Perms: PermView | PermData | PermAddGateway | PermFirmware})
		add(Event{Kind: KindRolePut, Org: OrgID(o), Name: "sales", Perms: PermView})
		if OrgID(o) == bigOrg {
			for m := range spec.bigOrgMembers {
				role := []string{OrgAdmin, "tech", "sales"}[min(m, 1+r.IntN(2))]
				add(Event{Kind: KindMemberPut, Org: bigOrg, Email: email(customers + 1 + m), OrgRole: role})
			}
			continue
		}
		for m := range 3 {
			add(Event{Kind: KindMemberPut, Org: OrgID(o), Email: customer(), OrgRole: []string{OrgAdmin, "tech", "sales"}[m]})
		}
	}
	for s := range spec.systems {
		sys := SystemID(s)
		org := OrgID(2 + r.IntN(orgs-1))
		if r.IntN(10) == 0 {
			org = bigOrg
		}
		owner := customer()
		if r.IntN(33) == 0 {
			owner = fmt.Sprintf("invited%d@home.test", s)
		}
		add(Event{Kind: KindSystemPut, System: sys, GUID: fmt.Sprintf("04C05B%08X", s), Name: fmt.Sprintf("Site %d", s),
			Address: fmt.Sprintf("%d Solar Way", s), Timezone: "Europe/Berlin", Monitored: true, Org: org})
		add(Event{Kind: KindGrantPut, System: sys, Grantee: OrgPrincipal(org), Role: RoleInstaller})
		add(Event{Kind: KindOwnerSet, System: sys, Email: owner})
	}
	for m := 0; m < spec.bigOrgMembers; m += 10 {
		add(Event{Kind: KindGrantPut, System: SystemID(r.IntN(spec.systems)), Grantee: EmailPrincipal(email(customers + 1 + m)), Role: RoleViewer})
	}
	for range max(0, spec.grants-2*spec.systems-spec.bigOrgMembers/10) {
		add(Event{Kind: KindGrantPut, System: SystemID(r.IntN(spec.systems)),
			Grantee: EmailPrincipal(customer()), Role: Role(1 + r.IntN(int(RoleUser)))})
	}
	if len(buf) > 0 {
		emit(buf)
	}
}

func buildFleet(tb testing.TB, spec fleetSpec) *Index {
	x := New(Options{Now: func() time.Time { return t0 }})
	if _, err := x.Replay(fleetBatches(spec, x.Clock())); err != nil {
		tb.Fatal(err)
	}
	return x
}

func fleetBatches(spec fleetSpec, clock *HLC) iter.Seq2[[]Event, error] {
	return func(yield func([]Event, error) bool) {
		genFleet(spec, clock, func(evs []Event) { yield(evs, nil) })
	}
}

// bigOrgMembers returns the accounts that are members of bigOrg.
func bigOrgAccounts(s *Snapshot) []AccountID {
	var out []AccountID
	for _, m := range s.Members(bigOrg) {
		if a, ok := s.AccountByEmail(m.Email); ok {
			out = append(out, a.ID)
		}
	}
	return out
}

// BenchmarkGrantToOrg: a grant (or revoke) to an org of 1,000 members
// (DESIGN §7 target: ≤ 10 ms until every member's bitmap holds it).
// apply-only is the propagation: one Apply, after which every member's
// Systems includes the system (the org's set is shared, not copied into
// members). apply+read-all-members adds each member's Systems(view) read and
// check — a shared pointer for most, a union for the tenth with grants of
// their own.
func BenchmarkGrantToOrg(b *testing.B) {
	x := buildFleet(b, fleetSpec{systems: 200_000, accounts: 20_000, grants: 600_000, bigOrgMembers: 1000})
	members := bigOrgAccounts(x.Snapshot())
	if len(members) < 900 {
		b.Fatalf("%d members", len(members))
	}
	// Systems the big org does not hold yet, to grant and revoke in turn.
	var pool []SystemID
	for s := SystemID(0); len(pool) < 1000; s++ {
		if !x.Snapshot().Can(members[0], PermView, s) {
			pool = append(pool, s)
		}
	}
	held := map[SystemID]bool{}
	for _, check := range []bool{true, false} {
		name := "apply+read-all-members"
		if !check {
			name = "apply-only"
		}
		b.Run(fmt.Sprintf("members=%d/%s", len(members), name), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				sys := pool[i%len(pool)]
				i++
				ev := Event{Kind: KindGrantPut, System: sys, Grantee: OrgPrincipal(bigOrg), Role: RoleInstaller}
				if held[sys] {
					ev = Event{Kind: KindGrantDelete, System: sys, Grantee: OrgPrincipal(bigOrg)}
				}
				held[sys] = !held[sys]
				ev.Stamp = x.Clock().Now()
				if _, err := x.Apply(ev); err != nil {
					b.Fatal(err)
				}
				if check {
					s := x.Snapshot()
					for _, m := range members {
						if s.Systems(m, PermView).Contains(uint32(sys)) != held[sys] {
							b.Fatalf("member %d: grant not in its bitmap", m)
						}
					}
				}
			}
		})
	}
}

// BenchmarkCan: permission checks against a fleet, for an account holding
// the system directly, through an org, and not at all.
func BenchmarkCan(b *testing.B) {
	x := buildFleet(b, fleetSpec{systems: 100_000, accounts: 50_000, grants: 500_000, bigOrgMembers: 200})
	s := x.Snapshot()
	r := rand.New(rand.NewPCG(1, 1))
	type q struct {
		a   AccountID
		sys SystemID
	}
	var direct, viaOrg, none []q
	members := bigOrgAccounts(s)
	for len(direct) < 1024 || len(viaOrg) < 1024 || len(none) < 1024 {
		a := AccountID(1 + r.IntN(50_000))
		sys := SystemID(r.IntN(100_000))
		if len(members) > 0 && r.IntN(2) == 0 {
			a = members[r.IntN(len(members))]
		}
		_, e := s.acting(a)
		switch {
		case e.set.role(uint32(sys)) != RoleNone:
			direct = append(direct, q{a, sys})
		case s.Can(a, PermView, sys):
			viaOrg = append(viaOrg, q{a, sys})
		default:
			none = append(none, q{a, sys})
		}
		if e.set.len() > 0 && len(direct) < 1024 { // also draw from what the account holds
			e.set.each(func(id uint32, _ Role) {
				if len(direct) < 1024 {
					direct = append(direct, q{a, SystemID(id)})
				}
			})
		}
	}
	for _, c := range []struct {
		name string
		qs   []q
	}{{"holder=direct", direct}, {"holder=org-member", viaOrg}, {"holder=none", none}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			i := 0
			for b.Loop() {
				q := c.qs[i&1023]
				i++
				if s.Can(q.a, PermData, q.sys) {
					n++
				}
			}
			sinkInt = n
		})
	}
}

var (
	sinkInt    int
	sinkUint64 uint64
)

// BenchmarkSystems: reading an account's bitmap, for an org member (the
// org's set, shared), an org member with a grant of its own (a union), and a
// homeowner (its own small set).
func BenchmarkSystems(b *testing.B) {
	x := buildFleet(b, fleetSpec{systems: 200_000, accounts: 20_000, grants: 600_000, bigOrgMembers: 1000})
	s := x.Snapshot()
	var pure, mixed, home AccountID
	for _, m := range bigOrgAccounts(s) {
		_, e := s.acting(m)
		if role, _ := s.OrgRole(m, bigOrg); role != "tech" {
			continue
		}
		if e.set.len() == 0 && pure == 0 {
			pure = m
		}
		if e.set.len() > 0 && mixed == 0 {
			mixed = m
		}
	}
	for a := AccountID(1); home == 0; a++ {
		if _, e := s.acting(a); len(e.orgs()) == 0 && e.set.len() > 0 {
			home = a
		}
	}
	for _, c := range []struct {
		name string
		a    AccountID
	}{{"org-member", pure}, {"org-member-with-own-grant", mixed}, {"homeowner", home}} {
		b.Run(fmt.Sprintf("%s/systems=%d", c.name, s.Systems(c.a, PermView).GetCardinality()), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkUint64 = s.Systems(c.a, PermView).GetCardinality()
			}
		})
	}
}

// BenchmarkBuildIndex: building an index from a fleet's event log — by
// Replay, as start-up does, and by Apply per batch of 65,536 events for
// comparison.
func BenchmarkBuildIndex(b *testing.B) {
	for _, spec := range []fleetSpec{
		{systems: 10_000, accounts: 5_000, grants: 50_000, bigOrgMembers: 100},
		{systems: 50_000, accounts: 25_000, grants: 250_000, bigOrgMembers: 500},
	} {
		var batches [][]Event
		n := 0
		genFleet(spec, NewHLC(0, func() time.Time { return t0 }), func(evs []Event) {
			batches = append(batches, append([]Event(nil), evs...))
			n += len(evs)
		})
		for _, mode := range []string{"replay", "apply"} {
			b.Run(fmt.Sprintf("systems=%d/accounts=%d/grants=%d/%s", spec.systems, spec.accounts, spec.grants, mode), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					x := New(Options{Now: func() time.Time { return t0 }})
					if mode == "replay" {
						if _, err := x.Replay(func(yield func([]Event, error) bool) {
							for _, evs := range batches {
								if !yield(evs, nil) {
									return
								}
							}
						}); err != nil {
							b.Fatal(err)
						}
						continue
					}
					for _, evs := range batches {
						if _, err := x.Apply(evs...); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkApplyGrant: one grant to a person, applied alone, as a request
// makes it.
func BenchmarkApplyGrant(b *testing.B) {
	x := buildFleet(b, fleetSpec{systems: 100_000, accounts: 50_000, grants: 300_000, bigOrgMembers: 100})
	r := rand.New(rand.NewPCG(2, 2))
	customers := 50_000 - 100
	b.ReportAllocs()
	for b.Loop() {
		ev := Event{Kind: KindGrantPut, Stamp: x.Clock().Now(), System: SystemID(r.IntN(100_000)),
			Grantee: EmailPrincipal(fmt.Sprintf("u%d@fleet.test", 1+r.IntN(customers))), Role: RoleViewer}
		if _, err := x.Apply(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticate: the lookups behind every request — an account
// token's hash (each API call) and a gateway's key hash with its system's
// monitored flag (each ingest batch) — in an index of 100 000 systems with a
// gateway each and 50 000 accounts with two tokens each.
func BenchmarkAuthenticate(b *testing.B) {
	const systems, accounts = 100_000, 50_000
	x := New(Options{Now: func() time.Time { return t0 }})
	batches := func(yield func([]Event, error) bool) {
		var evs []Event
		add := func(ev Event) {
			ev.Stamp = x.Clock().Now()
			evs = append(evs, ev)
		}
		for a := 1; a <= accounts; a++ {
			add(Event{Kind: KindAccountRegister, Account: AccountID(a), Email: fmt.Sprintf("u%d@fleet.test", a)})
			for i := range 2 {
				add(Event{Kind: KindTokenPut, Account: AccountID(a), Token: fmt.Sprintf("tok%d-%d", a, i), Hash: secret(fmt.Sprint(a))})
			}
		}
		for s := range systems {
			add(Event{Kind: KindSystemPut, System: SystemID(s), GUID: fmt.Sprintf("G%d", s), Monitored: true})
			add(Event{Kind: KindGatewayPut, System: SystemID(s), Gateway: GatewayID(s + 1), Serial: fmt.Sprintf("GW-%06X", s), Hash: secret(fmt.Sprint(s))})
		}
		yield(evs, nil)
	}
	if _, err := x.Replay(batches); err != nil {
		b.Fatal(err)
	}
	s := x.Snapshot()
	r := rand.New(rand.NewPCG(3, 3))
	tokens := make([]string, 1024)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("tok%d-%d", 1+r.IntN(accounts), r.IntN(2))
	}
	b.Run("token", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		i := 0
		for b.Loop() {
			if _, _, ok := s.Token(tokens[i&1023]); ok {
				n++
			}
			i++
		}
		sinkInt = n
	})
	b.Run("gateway", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			id := GatewayID(1 + r.IntN(systems))
			g, ok := s.Gateway(id)
			if _, hok := s.GatewayKeyHash(id); ok && hok {
				if sys, _ := s.System(g.System); sys.Monitored {
					n++
				}
			}
		}
		sinkInt = n
	})
}

func BenchmarkEventDecode(b *testing.B) {
	data, _ := sampleEvents[14].MarshalBinary()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var ev Event
	for b.Loop() {
		if err := ev.UnmarshalBinary(data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIndexHeap measures the heap an index of a given size holds, when
// asked: go test ./acl/ -run TestIndexHeap -acl.heap=2000000,1000000,10000000
// (DESIGN §7 target for that size: ≤ 1 GiB resident).
func TestIndexHeap(t *testing.T) {
	if *flagHeap == "" {
		t.Skip("set -acl.heap=systems,accounts,grants to measure")
	}
	var spec fleetSpec
	if _, err := fmt.Sscanf(*flagHeap, "%d,%d,%d", &spec.systems, &spec.accounts, &spec.grants); err != nil {
		t.Fatalf("-acl.heap: %v", err)
	}
	spec.bigOrgMembers = 1000
	before := heapStats()
	start := time.Now()
	x := buildFleet(t, spec)
	took := time.Since(start)
	after := heapStats()
	debug.FreeOSMemory()
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
	t.Logf("systems=%d accounts=%d grants=%d: built in %v; heap live %.1f MiB (%.0f B/grant), heap in use %.1f MiB, process RSS %s",
		spec.systems, spec.accounts, spec.grants, took.Round(time.Millisecond),
		mib(after.HeapAlloc-before.HeapAlloc), float64(after.HeapAlloc-before.HeapAlloc)/float64(spec.grants),
		mib(after.HeapInuse-before.HeapInuse), rss())
	runtime.KeepAlive(x)
	keepIndex = x
}

// rss reads the process's resident set from /proc (Linux), for the record.
func rss() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func heapStats() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

var keepIndex *Index
