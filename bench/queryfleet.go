package bench

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/live"
	"github.com/fleetscope/fleetscope/query"
)

// FleetSpec sizes a synthetic catalogue for the query benchmarks.
type FleetSpec struct {
	// Systems in the catalogue (DESIGN §7: 2 M).
	Systems int
	// Accounts (homeowners, their family, installer staff; DESIGN: 1 M).
	Accounts int
	// BigOrg is the size of the largest installer org (DESIGN: 200 k). The
	// other installer orgs' sizes follow a Zipf law, from thousands of
	// systems for the next largest down to one.
	BigOrg int
	Seed   uint64
}

// Fleet is a generated catalogue: its acl index, live state, and the
// callers the benchmarks ask as.
type Fleet struct {
	Spec FleetSpec
	ACL  *acl.Index
	Live *SyntheticLive
	// Big is an org_admin of the largest installer org; Medium of an org of
	// about a hundredth of its size; Small a homeowner with one to three
	// systems. BigUnion is a technician of the largest org who also holds a
	// grant of their own, so that their bitmap is a union composed per
	// request (no cache can key on it).
	Big, Medium, Small, BigUnion acl.AccountID
	// Now is the clock of the live state.
	Now time.Time
	// Queries are search texts drawn from what Big sees: name pieces,
	// e-mail, GUID and serial prefixes, and one- and two-letter queries.
	Queries []string
	// SmallQueries are the same for Small.
	SmallQueries []string
	// Docs are each system's folded search strings, for the scan baseline.
	Docs []BaselineDoc
	// OrgSize and OrgAdmin give each installer org's system count and an
	// org_admin account of it (org ids index them).
	OrgSize  []int
	OrgAdmin []acl.AccountID
}

// AdminOfSize returns the admin of the org whose size is closest to n.
func (f *Fleet) AdminOfSize(n int) (acl.AccountID, int) {
	best := 1
	for o := 1; o < len(f.OrgSize); o++ {
		if f.OrgAdmin[o] != 0 && abs(f.OrgSize[o]-n) < abs(f.OrgSize[best]-n) {
			best = o
		}
	}
	return f.OrgAdmin[best], f.OrgSize[best]
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// BaselineDoc is a system's search strings, folded, as a scan sees them.
type BaselineDoc struct {
	Name string
	Keys []string
}

var (
	firstNames = []string{"anna", "ben", "carla", "david", "elena", "felix", "greta", "hans", "ines", "jonas", "karin", "lukas",
		"maria", "noah", "olga", "paul", "rosa", "sven", "tanja", "uwe", "vera", "will", "yusuf", "zoe", "josé", "zoë", "søren",
		"łukasz", "çağla", "jürgen", "françois", "chloé", "mehmet", "aiko", "li", "pablo", "nina", "omar", "sara", "tom"}
	surnames = []string{"Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
		"Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann", "García",
		"Martínez", "López", "Sánchez", "Pérez", "Gómez", "Núñez", "Ñandú", "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi",
		"Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor", "Thomas", "Moore",
		"Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen",
		"Dubois", "Lefèvre", "Moreau", "Laurent", "Øvergård", "Ødegaard", "Håkansson", "Lindqvist", "Nowak", "Kowalski",
		"Wiśniewski", "Dvořák", "Novák", "Svoboda", "Çelik", "Öztürk", "Yılmaz", "Kaya", "Nguyen", "Tran", "Kim", "Park",
		"Tanaka", "Suzuki", "Sato", "Papadopoulos", "Οικονόμου", "Иванов", "Ó Briain", "MacLeod", "O'Neill", "Van der Berg",
		"De Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "Bos", "Vos", "Peters", "Hendriks", "Dekker"}
	towns = []string{"München", "Zürich", "Köln", "Düsseldorf", "Göteborg", "Málaga", "Kraków", "Łódź", "Århus", "Besançon",
		"Córdoba", "São Paulo", "Hamburg", "Berlin", "Madrid", "Sevilla", "Valencia", "Lyon", "Nantes", "Porto", "Lisboa",
		"Milano", "Torino", "Napoli", "Austin", "Denver", "Phoenix", "Fresno", "Sacramento", "Tucson", "Perth", "Adelaide",
		"Brisbane", "Darwin", "Cairns", "Freiburg", "Ulm", "Würzburg", "Nürnberg", "Regensburg", "Graz", "Linz", "Bern", "Basel"}
	siteKinds = []string{"Residence", "Home", "House", "Farm", "Barn", "Warehouse", "School", "Office", "Solar Park", "Carport",
		"Winery", "Dairy", "Garage", "Workshop", "Depot", "Clinic", "Gym", "Church", "Hotel", "Store", "Cottage", "Villa"}
	companies = []string{"Acme", "Sunrise", "Bavaria", "Nordwind", "Helios", "Apollo", "Greenfield", "Riverside", "Lakeside",
		"Hillcrest", "Oakwood", "Maple", "Cedar", "Alpine", "Coastal", "Prairie", "Summit", "Evergreen", "Horizon", "Meridian"}
	mailDomains = []string{"gmail.com", "web.de", "gmx.de", "outlook.com", "yahoo.com", "icloud.com", "t-online.de",
		"orange.fr", "libero.it", "hotmail.com", "proton.me", "bigpond.com"}
	zones = []string{"Europe/Berlin", "Europe/Berlin", "Europe/Berlin", "Europe/Madrid", "Europe/Rome", "Europe/Paris",
		"America/New_York", "America/Denver", "America/Los_Angeles", "Australia/Sydney", "Australia/Perth", "UTC"}
)

// syllables compose the long tail of surnames and street names: real
// catalogues have tens of thousands of distinct surnames, a few of them
// (the head list) very common.
var syllables = []string{"ber", "bran", "dor", "eck", "fel", "gard", "hau", "hol", "kow", "lin", "mar", "nor", "ost",
	"pel", "quist", "ros", "sen", "stät", "tal", "ter", "ul", "van", "wal", "zyk", "ch", "ski", "son", "man", "dal", "rup",
	"gö", "ñe", "llo", "ri", "ka", "mo", "tu", "sa", "vi", "le"}

var streetKinds = []string{"Street", "Road", "Avenue", "Lane", "Way", "Straße", "Weg", "Calle", "Rue", "Drive"}

// surname draws from the head list (Zipf: "Müller" far more often than
// "Bos") or, four times in ten, composes a rarer one.
func surname(r *rand.Rand, head *rand.Zipf) string {
	if r.IntN(10) < 6 {
		return surnames[head.Uint64()]
	}
	n := 2 + r.IntN(2)
	var b strings.Builder
	for i := range n {
		syl := syllables[r.IntN(len(syllables))]
		if i == 0 {
			rs := []rune(syl)
			syl = strings.ToUpper(string(rs[:1])) + string(rs[1:])
		}
		b.WriteString(syl)
	}
	return b.String()
}

// siteName is a realistic location name: a family's home, a farm, a
// company's building, a town's school, an address.
func siteName(r *rand.Rand, head *rand.Zipf) string {
	switch r.IntN(10) {
	case 0, 1, 2, 3, 4:
		return surname(r, head) + " " + siteKinds[r.IntN(6)]
	case 5, 6:
		fn := []rune(firstNames[r.IntN(len(firstNames))])
		return strings.ToUpper(string(fn[:1])) + string(fn[1:]) + " " + surname(r, head)
	case 7:
		return companies[r.IntN(len(companies))] + " " + siteKinds[r.IntN(len(siteKinds))] + " " + towns[r.IntN(len(towns))]
	case 8:
		return towns[r.IntN(len(towns))] + " " + siteKinds[6+r.IntN(len(siteKinds)-6)]
	}
	return fmt.Sprintf("%d %s %s", 1+r.IntN(300), surname(r, head), streetKinds[r.IntN(len(streetKinds))])
}

func mailOf(a int) string {
	return fmt.Sprintf("%s.%s%d@%s", firstNames[a%len(firstNames)], mailSurnames[(a/7)%len(mailSurnames)], a,
		mailDomains[(a/13)%len(mailDomains)])
}

// mailSurnames are the surnames as e-mails spell them: mostly ASCII.
var mailSurnames = func() []string {
	ascii := strings.NewReplacer("ü", "ue", "ä", "ae", "ö", "oe", "ß", "ss", "é", "e", "è", "e", "á", "a", "í", "i", "ó", "o",
		"ú", "u", "ñ", "n", "Ñ", "N", "ø", "o", "Ø", "O", "å", "a", "ł", "l", "ś", "s", "ř", "r", "ç", "c", "Ç", "C", "ı", "i",
		"Ö", "O", "Ó", "O", " ", "", "'", "")
	out := make([]string, len(surnames))
	for i, s := range surnames {
		out[i] = strings.ToLower(ascii.Replace(s))
	}
	return out
}()

// GenerateFleet builds the catalogue: an acl index fed by Replay (as
// start-up does) and live state for every system.
func GenerateFleet(spec FleetSpec) *Fleet {
	r := rand.New(rand.NewPCG(spec.Seed, 0xf1ee7))
	now := time.Date(2026, 6, 20, 12, 7, 0, 0, time.UTC)
	f := &Fleet{Spec: spec, Now: now, Docs: make([]BaselineDoc, spec.Systems)}
	f.ACL = acl.New(acl.Options{Now: func() time.Time { return now }})
	clock := f.ACL.Clock()

	// The events are replayed batch by batch as they are made: held all
	// at once, a 10 M-system catalogue's ~60 M events took more memory than
	// the index they build.
	if _, err := f.ACL.Replay(func(yield func([]acl.Event, error) bool) {
		const batchSize = 1 << 16
		buf := make([]acl.Event, 0, batchSize)
		stopped := false
		add := func(ev acl.Event) {
			if stopped {
				return
			}
			ev.Stamp = clock.Now()
			buf = append(buf, ev)
			if len(buf) == batchSize {
				stopped = !yield(buf, nil)
				buf = make([]acl.Event, 0, batchSize)
			}
		}
		f.generateEvents(r, add)
		if len(buf) > 0 && !stopped {
			yield(buf, nil)
		}
	}); err != nil {
		panic("bench: generated acl events do not replay: " + err.Error())
	}
	f.Live = newSyntheticLive(r, spec.Systems, now)
	f.Queries = f.queries(r, f.Big, 200)
	f.SmallQueries = f.queries(r, f.Small, 50)
	return f
}

// generateEvents makes the catalogue's acl events — accounts, orgs, their
// members, systems with their grants, owners and gateways — and fills in
// f's callers, org sizes and baseline docs.
func (f *Fleet) generateEvents(r *rand.Rand, add func(acl.Event)) {
	spec := f.Spec
	// Accounts 1..Accounts; the last 1,000 are staff of the big org.
	staff := 1000
	customers := spec.Accounts - staff
	for a := 1; a <= spec.Accounts; a++ {
		add(acl.Event{Kind: acl.KindAccountRegister, Account: acl.AccountID(a), Email: mailOf(a)})
		add(acl.Event{Kind: acl.KindAccountVerify, Account: acl.AccountID(a), Verified: true})
	}
	// Orgs: 1 is the big one; the others' sizes follow a Zipf law.
	orgs := max(3, spec.Systems/200)
	zipf := rand.NewZipf(r, 1.1, 2, uint64(orgs-2))
	headNames := rand.NewZipf(r, 1.05, 5, uint64(len(surnames)-1))
	for o := 1; o <= orgs; o++ {
		add(acl.Event{Kind: acl.KindOrgPut, Org: acl.OrgID(o), Name: companies[o%len(companies)] + fmt.Sprintf(" Solar %d", o)})
		add(acl.Event{Kind: acl.KindRolePut, Org: acl.OrgID(o), Name: "tech", Perms: acl.PermView | acl.PermData | acl.PermFirmware})
	}
	f.Big = acl.AccountID(customers + 1)
	for m := range staff {
		role := "tech"
		if m < 5 {
			role = acl.OrgAdmin
		}
		add(acl.Event{Kind: acl.KindMemberPut, Org: 1, Email: mailOf(customers + 1 + m), OrgRole: role})
	}
	// The medium org is org 2 (the head of the Zipf law); its admin is
	// customer 1. Every other org gets an admin among the customers.
	f.Medium = 1
	f.OrgSize, f.OrgAdmin = make([]int, orgs+1), make([]acl.AccountID, orgs+1)
	f.OrgAdmin[1], f.OrgAdmin[2] = f.Big, f.Medium
	add(acl.Event{Kind: acl.KindMemberPut, Org: 2, Email: mailOf(1), OrgRole: acl.OrgAdmin})
	for o := 3; o <= orgs; o++ {
		a := 2 + r.IntN(customers-3)
		f.OrgAdmin[o] = acl.AccountID(a)
		add(acl.Event{Kind: acl.KindMemberPut, Org: acl.OrgID(o), Email: mailOf(a), OrgRole: acl.OrgAdmin})
	}
	// Systems, in commission order: each installer's ids are spread over
	// the whole range, as they are when installers commission over years.
	bigShare := float64(spec.BigOrg) / float64(spec.Systems)
	f.Small = acl.AccountID(customers)
	smallSystems := 1 + r.IntN(3)
	var gw acl.GatewayID
	for s := range spec.Systems {
		sys := acl.SystemID(s)
		org := acl.OrgID(2 + zipf.Uint64())
		if r.Float64() < bigShare {
			org = 1
		}
		f.OrgSize[org]++
		owner := mailOf(2 + r.IntN(customers-2))
		switch {
		case s%(spec.Systems/smallSystems+1) == 7:
			owner = mailOf(int(f.Small))
		case r.IntN(33) == 0:
			owner = fmt.Sprintf("%s.%d@invite.example", firstNames[r.IntN(len(firstNames))], s) // an invitation
		}
		name := siteName(r, headNames)
		guid := fmt.Sprintf("04C05B%08X", uint32(s)*2654435761)
		tz := zones[r.IntN(len(zones))]
		add(acl.Event{Kind: acl.KindSystemPut, System: sys, GUID: guid, Name: name,
			Address:  fmt.Sprintf("%d %s Street, %s", 1+r.IntN(200), surnames[r.IntN(len(surnames))], towns[r.IntN(len(towns))]),
			Timezone: tz, Monitored: r.IntN(20) > 0, Org: org})
		add(acl.Event{Kind: acl.KindGrantPut, System: sys, Grantee: acl.OrgPrincipal(org), Role: acl.RoleInstaller})
		add(acl.Event{Kind: acl.KindOwnerSet, System: sys, Email: owner})
		keys := []string{strings.ToLower(guid), owner}
		for g := range 1 + r.IntN(2) {
			gw++
			serial := fmt.Sprintf("CC:A0:%02X:%02X:%02X:%02X", byte(gw>>24), byte(gw>>16), byte(gw>>8), byte(gw)+byte(g))
			add(acl.Event{Kind: acl.KindGatewayPut, System: sys, Gateway: gw, Serial: serial, Hash: [32]byte{1}})
			keys = append(keys, strings.ToLower(serial))
		}
		// A tenth have a family member or a monitoring company as user.
		if r.IntN(10) == 0 {
			e := mailOf(2 + r.IntN(customers-2))
			add(acl.Event{Kind: acl.KindGrantPut, System: sys, Grantee: acl.EmailPrincipal(e), Role: acl.Role(1 + r.IntN(int(acl.RoleUser)))})
			keys = append(keys, e)
		}
		f.Docs[s] = BaselineDoc{Name: foldLower(name), Keys: keys}
	}
	f.BigUnion = acl.AccountID(customers + 1 + 5)
	add(acl.Event{Kind: acl.KindGrantPut, System: acl.SystemID(spec.Systems - 1), Grantee: acl.EmailPrincipal(mailOf(int(f.BigUnion))), Role: acl.RoleViewer})
}

func foldLower(s string) string { return query.Fold(s) }

// queries draws search texts from the systems caller sees, in the mix a
// dashboard's search box gets: name pieces of 2 to 8 letters, e-mail,
// GUID and serial prefixes, single letters.
func (f *Fleet) queries(r *rand.Rand, caller acl.AccountID, n int) []string {
	ids := f.ACL.Snapshot().Systems(caller, acl.PermView).ToArray()
	if len(ids) == 0 {
		return []string{"a"}
	}
	out := make([]string, 0, n)
	for len(out) < n {
		d := f.Docs[ids[r.IntN(len(ids))]]
		rs := []rune(d.Name)
		switch r.IntN(10) {
		case 0, 1, 2, 3: // a name piece
			l := min(len(rs), 2+r.IntN(7))
			i := r.IntN(len(rs) - l + 1)
			out = append(out, string(rs[i:i+l]))
		case 4: // a single letter
			out = append(out, string(rs[r.IntN(len(rs))]))
		case 5, 6: // an e-mail prefix
			k := []rune(d.Keys[1])
			out = append(out, string(k[:min(len(k), 3+r.IntN(8))]))
		case 7: // a GUID prefix
			out = append(out, d.Keys[0][:6+r.IntN(7)])
		default: // a serial prefix
			out = append(out, d.Keys[2][:5+r.IntN(10)])
		}
	}
	return out
}

// SyntheticLive is live state for the catalogue in flat arrays: an
// live.Reader without the per-panel maps of ingest.Live, which the
// query side never reads. 70 % of the monitored systems are online, 20 %
// offline, 10 % never reported.
type SyntheticLive struct {
	lastSeen []int64
	power    []int64
	energy   []uint64
	day      []int32
	panels   []int32
	max      atomic.Uint32
}

func newSyntheticLive(r *rand.Rand, n int, now time.Time) *SyntheticLive {
	l := &SyntheticLive{lastSeen: make([]int64, n), power: make([]int64, n), energy: make([]uint64, n),
		day: make([]int32, n), panels: make([]int32, n)}
	for i := range n {
		switch x := r.IntN(10); {
		case x == 0:
			continue
		case x <= 2:
			l.lastSeen[i] = now.Add(-time.Duration(1+r.IntN(72)) * time.Hour).UnixMilli()
		default:
			l.lastSeen[i] = now.Add(-time.Duration(r.IntN(300)) * time.Second).UnixMilli()
		}
		p := 8 + r.IntN(40)
		l.panels[i] = int32(p)
		l.power[i] = int64(p) * int64(r.IntN(3800))
		l.energy[i] = uint64(p) * uint64(r.IntN(2_000_000))
		l.day[i] = int32(now.Unix() / 86400)
	}
	l.max.Store(uint32(n - 1))
	return l
}

// Live implements live.Reader.
func (l *SyntheticLive) Live(id uint32) (live.System, bool) {
	if int(id) >= len(l.lastSeen) || l.lastSeen[id] == 0 {
		return live.System{}, false
	}
	return live.System{LastSeen: l.lastSeen[id], PowerDW: l.power[id], EnergyTodayMWh: l.energy[id],
		Day: l.day[id], Panels: l.panels[id]}, true
}

// MaxSystem implements live.Reader.
func (l *SyntheticLive) MaxSystem() uint32 { return l.max.Load() }

// percentile returns the p-th percentile (0–100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

// GrantToggle returns a change of the largest org's grants that alternates
// between granting it viewer on a system it does not hold and revoking
// that grant: each call gives the org (and Big) a bitmap no cache has seen.
func (f *Fleet) GrantToggle() (func(i int) error, error) {
	org := 1
	for o := range f.OrgSize {
		if f.OrgSize[o] > f.OrgSize[org] {
			org = o
		}
	}
	snap := f.ACL.Snapshot()
	held := snap.Systems(f.Big, acl.PermView)
	var spare acl.SystemID
	found := false
	it := snap.AllSystems().Iterator()
	for it.HasNext() {
		// System ids start at 0 here: found, not spare != 0, says whether
		// one was found.
		if id := it.Next(); !held.Contains(id) {
			spare, found = acl.SystemID(id), true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("bench: no system outside the largest org")
	}
	to := acl.OrgPrincipal(acl.OrgID(org))
	return func(i int) error {
		ev := acl.Event{Kind: acl.KindGrantPut, System: spare, Grantee: to, Role: acl.RoleViewer}
		if i%2 == 1 {
			ev = acl.Event{Kind: acl.KindGrantDelete, System: spare, Grantee: to}
		}
		_, err := f.ACL.Apply(f.ACL.Stamp([]acl.Event{ev})...)
		return err
	}, nil
}
