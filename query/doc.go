// Package query answers the dashboards (DESIGN §5 Queries): All Locations
// search and listing, the fleet summary, a system's detail, its history
// (telemetry, the per-panel energy of a day) and fleet energy. Every answer
// is restricted to the caller's bitmap, read from the acl snapshot of the
// request, before anything else is computed; a system outside it answers
// 404, never 403.
//
// # Wiring
//
// New(Options{Store, ACL, Live, ...}) builds the catalogue from the acl
// index's snapshot and starts the background work; acl.Options.OnChange must
// call Service.OnACLChange (see New for the start-up order). Package api
// serves the methods over HTTP (locations, summary, system detail,
// telemetry, panels, fleet energy); this package knows nothing of HTTP.
// A system reference is the numeric id or the GUID (a numeric GUID loses to
// an id the caller may see). Data without view — a member role can be so —
// is no access at all. Errors wrap ErrBadRequest, ErrNotFound or
// ErrUnavailable; anything else is a bug.
//
// # Catalogue and search index
//
// The catalogue holds, per system, its searchable strings — the name, the
// GUID, the gateways' serials and the e-mails of its owner, grantees and
// pending invitations (those of grantees other than the owner marked
// private: they match only for callers who may share the system) — folded
// (Fold: case and accents, so "muller" finds "Müller", "strasse" finds
// "Straße", "sao" finds "São"), with its monitored flag and time zone; the
// name order is the folded names'. Display fields are read from the
// request's acl snapshot.
//
// The base index (textindex.go) is immutable: names interned and sorted,
// bitmaps of every 1-, 2- and 3-rune gram of the names, the names' words
// with a bitmap of systems each (and the words' own trigrams), and the
// sorted distinct keys with precomputed bitmaps for every prefix range
// holding more than 2,048 postings. A query of up to three runes is one
// gram bitmap. A longer one without a space lies inside one word of every
// name holding it, so it is the union of the bitmaps of the words holding
// it (found through the words' trigrams and checked, a few hundred at
// most) — exact, with no name to verify. A longer one with a space
// intersects its trigrams, smallest first, with the caller's bitmap and
// then verifies each distinct candidate name once, in name order. A key
// prefix is one range of the sorted keys, walked (≤ 2,048 lookups) or one
// precomputed bitmap. Dense index bitmaps are united word-wise first and
// intersected with the caller's bitmap once, sparse ones intersected alone,
// so each match is extracted once and the cost follows what the caller
// holds and matches. For a large caller whose answer comes from large
// parts, the whole answer is computed in words, a bit per system, and
// stays words (members.go): no id is extracted unless a page scans them,
// because extracting a sparse result mispredicts a branch per word. Every
// index bitmap also knows the stretch of the name order its names occupy,
// so a name-order page walks only the stretch its answer can lie in.
//
// Changes do not touch the base. OnACLChange, under the acl writer lock,
// only records the changed systems as pending; a goroutine re-reads them
// into the delta (their docs as of a newer snapshot), and when the delta
// passes Options.DeltaLimit the base is rebuilt in the background from a
// snapshot and the delta trimmed to what came after it. A request reads, in
// this order, pending, catalogue and acl snapshot, and matches the systems
// the base cannot answer for — in the delta, pending, or newer than the base
// — one by one, pending ones against its own snapshot. So a search is exact
// for the acl state the request sees: a grant or revocation shows in the
// very next request, visibility and searchable strings alike.
//
// # Order and cursors
//
// Sorts: name, power, last_seen, energy_today, each descending with '-';
// ties by system id in the sort's direction, so every order is total. The
// name order is a counting sort of the interned names, part of the base; a
// live key's order is a radix sort of the live view, built when first asked
// for (and then with every live view while in use). A page is picked from
// the caller's matching set by walking the order (sets spread over it;
// over a bit set of it when the walk is long, or when the set is words and
// a sample of the stretch to walk finds it there) or by scanning the set for
// the k best keys (small or bunched sets, on two cores when large); see
// order.go. Cursors are opaque: the sort, a hash of the query's q and
// status, and the sort key and id of the page's last item; the next page
// starts strictly after that item. With names, a system that exists
// throughout a traversal and keeps its name is listed exactly once,
// whatever else is created, renamed or deleted between pages. Live keys
// change by themselves: a system whose key does not change is listed
// exactly once; one whose key crosses the cursor between pages can be
// listed twice or not at all — "stable" means no skip or repeat caused by
// pagination itself, not a frozen snapshot of the fleet.
//
// # Live state and status
//
// Every Options.LiveRefresh (1 s) the live state (package live) of every system is
// copied into a live view: packed arrays of power, energy and panels, last
// seen, and a status bitmap per state. Sorts, status filters, summaries and
// the rows of a page read one view, so a page is consistent with itself;
// GET /v1/systems/{id} reads live state directly. Status: unmonitored if
// the system record says monitored=false (whatever its live state);
// never without live state; online if its newest reading is at most
// Options.OnlineWindow (15 min) old; offline otherwise. Power now is shown,
// summed and sorted only for online systems (0 otherwise: unknown); energy
// today is the energy of the current local day in the system's time zone.
//
// The fleet summary counts states by intersection cardinalities of the
// caller's bitmap and sums the live arrays over its ids (memory-bound:
// ~1 ms for 200 k systems spread over 2 M); the live part is kept per
// caller bitmap and live view and precomputed by the live refresh for the
// large bitmaps asked for lately, so an org's members share it. A caller
// whose bitmap is a union (an org's set plus grants of their own) is
// summarized as its largest part, cached, plus the few systems the others
// add, summed per request. The unmonitored systems are taken out per
// request.
//
// # History
//
// The rollup worker (package rollup) keeps 1 min, 15 min, 1 h and 1 day
// rollups and a watermark per level. A range is served by tiles: the
// coarsest level allowed covers the whole buckets under its watermark, the
// edges and the stretch past the watermark are planned again one level
// finer, down to raw readings (history.go, planTiles); for one system a
// stretch under an hour is read raw at once. Answers are exact and current
// whatever the rollup's lag. Telemetry: step raw, 1m, 15m, 1h or 1d (local
// days), picked by range when absent; optional panel. Panels: each panel's
// energy over a local day. Fleet energy: every system the caller holds view
// and data on, with 0 for systems without readings, summed, sorted and paged
// in ClickHouse with the caller's bitmap pushed down as a parameter — a
// serialized groupBitmap, or an array for up to 32 ids (pushdown.go,
// measured) — from rollups only: the newest minutes not rolled up yet are
// left out for a fleet (they would need a scan of the readings table) and
// the answer says up to when it counts ("until").
//
// The cumulative table (system_energy_cum, kept by package rollup) holds
// each system's energy up to the end of every day, and the energy of the
// 7 and 30 days before it, so whole days of a fleet are one or two rows per
// system however the readings are laid out; `fleetscope bench query` and
// the README's benchmark section have the figures. Where a range is all
// cumulative rows, every system's row at each end can instead come from
// energy tiles kept in memory (energytiles.go): read once per instant,
// checked against ClickHouse's parts on every request, then summed over the
// caller's bitmap here in milliseconds.
//
// # Metrics
//
// fleetscope_query_stage_duration_seconds{stage}, _matched_locations{kind},
// _fleet_energy_duration_seconds{pushdown}, _energy_tile_lookups_total{result},
// _energy_tile_reads_total{result}, _energy_tile_read_duration_seconds,
// _energy_tiles_bytes, _index_systems,
// _index_bytes{part}, _index_build_seconds, _index_delta_systems,
// _live_view_build_seconds; requests are counted by package api.
package query
