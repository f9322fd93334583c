package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Schema decisions (DESIGN §3), with the reasons:
//
// Readings are stored as scaled integers — centivolts, milliamps, deciwatts,
// deci-°C, milliwatt-hours — with T64+ZSTD codecs, not as floats: measured
// on this machine, floats under ZSTD(1) took 14.2 bytes per reading on disk
// and scaled integers under T64+ZSTD 7.9, inside the 8-byte target. The
// resolution (0.01 V, 1 mA, 0.1 W, 0.1 °C, 1 mWh) is finer than a panel
// optimizer's sensors. Timestamps are DoubleDelta-coded: within one panel,
// ordered by time, the step is nearly constant.
//
// Rollups are not materialized views: on this machine a bare insert ran at
// ~5.3 M rows/s, with a 15-minute rollup MV 1.8 M/s and with rollup plus
// latest-state MVs 1.0 M/s. Ingest inserts raw readings only, and the rollup
// worker (package rollup) computes closed buckets from the finer level in
// the background — 1 min from raw, 15 min from 1 min, 1 h from 15 min, 1 day
// from 1 h — and recomputes a bucket when late data marks it dirty. Rollup
// rows are therefore ReplacingMergeTree rows keyed by their bucket and
// versioned by computed_at: a recomputation replaces, never adds, so a
// repeated or concurrent computation is harmless. Readers use FINAL.
//
// A reading is identified by (system_id, panel, ts), the readings table's
// sorting key (DESIGN §3): from migration 6 on it is a ReplacingMergeTree,
// so the same reading stored twice — a gateway resending it under a new
// seq, a retry that reached another node, anything the insert
// deduplication tokens cannot see — becomes one row when the engine merges
// the parts it is in (and at once when both copies are in one insert: the
// engine applies the merge to each inserted block). Until then the readers
// collapse it: the rollup worker reads raw readings with FINAL, the history
// queries group one system's readings by (panel, ts). What it costs was
// measured (issue 14): nothing at insert; in the 1-minute rollup of 6 M
// readings in 6 unmerged parts, 1.14 s of an engine thread instead of 0.56 s
// (grouping by (system_id, panel, ts) first: 1.72 s); for one system's raw
// tail, grouping adds about a millisecond wherever the rows are, FINAL
// nothing when they are in one part and most when they are in many — a
// 1-hour tail in 30 parts took 16.7 ms plain, 18.4 grouped, 36.2 with
// FINAL (BenchmarkReadingOnce) — hence FINAL for the rollups, grouping for
// history. Of two copies that differ, the last inserted is kept once
// merged; until then a raw answer may show either.
//
// Raw readings and the rollups finer than an hour expire after the raw
// retention (serve's --raw-retention, a table TTL; migration 9 and
// SetRawRetention); hourly and daily rollups and cumulative energy are kept
// forever.
//
// Tables that every node needs whole (the ACL log, the catalogue, the
// migration record) are, on a cluster, replicated to every shard under one
// ZooKeeper path; tables keyed by system_id are sharded by it.

// engineKind is a MergeTree family member; on a cluster it becomes its
// Replicated form.
type engineKind string

const (
	mergeTree       engineKind = "MergeTree"
	replacingMerge  engineKind = "ReplacingMergeTree"
	aggregatingTree engineKind = "AggregatingMergeTree"
)

// table is one table's definition, rendered for a single server or a
// cluster.
type table struct {
	name    string
	columns string
	engine  engineKind
	// version is the ReplacingMergeTree version column.
	version     string
	partitionBy string
	orderBy     string
	ttl         string
	// settings are MergeTree settings of the table as created (a table
	// made anew by a later step carries those earlier steps set).
	settings string
	// dedup keeps insert deduplication tokens of recent inserts on a
	// single server (Replicated tables do it through ZooKeeper anyway).
	dedup bool
	// sharded tables are split across shards by system_id on a cluster;
	// the others are replicated whole to every shard.
	sharded bool
}

// ddl renders the CREATE statements: one table on a single server; on a
// cluster a Replicated local table plus, for sharded tables, a Distributed
// table under the plain name.
func (t table) ddl(db, cluster string) []string {
	local := t.name
	if cluster != "" && t.sharded {
		local = t.name + "_local"
	}
	var engine string
	args := ""
	if t.version != "" {
		args = t.version
	}
	if cluster == "" {
		engine = string(t.engine) + "(" + args + ")"
	} else {
		path := "/clickhouse/tables/{shard}/{database}/" + local
		if !t.sharded {
			path = "/clickhouse/tables/global/{database}/" + local
		}
		rargs := "'" + path + "', '{replica}'"
		if args != "" {
			rargs += ", " + args
		}
		engine = "Replicated" + string(t.engine) + "(" + rargs + ")"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s.%s%s\n(\n%s\n)\nENGINE = %s", quoteIdent(db), quoteIdent(local), onCluster(cluster), strings.Trim(t.columns, "\n"), engine)
	if t.partitionBy != "" {
		fmt.Fprintf(&b, "\nPARTITION BY %s", t.partitionBy)
	}
	fmt.Fprintf(&b, "\nORDER BY %s", t.orderBy)
	if t.ttl != "" {
		fmt.Fprintf(&b, "\nTTL %s", t.ttl)
	}
	var settings []string
	if t.dedup && cluster == "" {
		settings = append(settings, dedupWindow)
	}
	if t.settings != "" {
		settings = append(settings, t.settings)
	}
	if len(settings) > 0 {
		fmt.Fprintf(&b, "\nSETTINGS %s", strings.Join(settings, ", "))
	}
	out := []string{b.String()}
	if cluster != "" && t.sharded {
		out = append(out, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s AS %s.%s\nENGINE = Distributed(%s, %s, %s, system_id)",
			quoteIdent(db), quoteIdent(t.name), onCluster(cluster), quoteIdent(db), quoteIdent(local),
			quoteString(cluster), quoteString(db), quoteString(local)))
	}
	return out
}

func onCluster(cluster string) string {
	if cluster == "" {
		return ""
	}
	return " ON CLUSTER " + quoteIdent(cluster)
}

// migration is one versioned schema step. Steps are append-only: a released
// step is never edited, a change is a new step.
type migration struct {
	version int
	name    string
	// drops are tables removed before tables are created (their name and
	// sharding is what counts): a table whose definition changes is dropped
	// and created anew, on a cluster a sharded one with its per-shard table.
	drops  []table
	tables []table
	// settings are MergeTree settings a step changes on existing tables
	// (on a cluster, on each shard's local table).
	settings []tableSetting
	// after are statements run once the tables exist — data a step must
	// change along with them. They name tables unqualified (the connection's
	// database) and are not DDL, so MigrationDDL leaves them out.
	after []string
	// rebuilds are tables whose engine or sorting changes while their
	// data stays (see rebuild).
	rebuilds []table
	// ttls set a table's TTL expression.
	ttls []tableTTL
}

// tableTTL is a table's TTL expression.
type tableTTL struct {
	table table
	ttl   string
}

// modifyTTL renders the ALTER that sets a table's TTL. The tables that get
// one drop whole parts (ttl_only_drop_parts) and recalculate only their
// parts' TTL bounds when it changes (materialize_ttl_recalculate_only): a
// mutation that reads the ts column in the background, not a rewrite.
func modifyTTL(db, cluster string, t table, ttl string) string {
	return fmt.Sprintf("ALTER TABLE %s.%s%s MODIFY TTL %s", quoteIdent(db), quoteIdent(t.localName(cluster)), onCluster(cluster), ttl)
}

// tableSetting is one MergeTree setting of a table, e.g. "merge_selector_base = 10".
type tableSetting struct {
	table   table
	setting string
}

// A rebuild makes a table anew with the same name and rows, in four
// statements: the new definition is created under a temporary name
// (<name>_v<version>), the two are renamed into place (the old one to
// <name>_v<version>_old), the old table's parts are attached to the new one
// (ATTACH PARTITION ALL FROM: hard links, neither a copy nor disk space),
// and the old table is dropped. Each statement's effect is visible in the
// engine, so a migration interrupted half-way resumes where it stopped
// (rebuildState); nodes migrating at once take turns (rebuild's lock).
// Attaching twice — a node interrupted after the attach and run again —
// doubles rows, so only ReplacingMergeTree tables, which collapse them, may
// be rebuilt. An insert running while the parts are attached can
// land in the old table after its parts were taken; serve applies
// migrations before it ingests, so a fleet upgrading loses nothing if its
// nodes stop ingesting until one of them has started on the new version.
type rebuildState int

const (
	rebuildFresh   rebuildState = iota // the old table under its name, no temporary table
	rebuildCreated                     // the new table under its temporary name
	rebuildHalf                        // the old table renamed away, the new one not yet in place
	rebuildSwapped                     // the new table in place, the old one under its old-table name
	rebuildDone                        // the new table in place, no other
)

// rebuildNames are the temporary names of a table rebuilt by migration
// version: the new table before it is renamed into place, and the old one
// after.
func rebuildNames(t table, version int) (tmp, old table) {
	tmp, old = t, t
	tmp.name = fmt.Sprintf("%s_v%d", t.name, version)
	old.name = fmt.Sprintf("%s_v%d_old", t.name, version)
	return tmp, old
}

// localName is the name of the table that holds the rows: on a cluster,
// a sharded table's per-shard table.
func (t table) localName(cluster string) string {
	if cluster != "" && t.sharded {
		return t.name + "_local"
	}
	return t.name
}

// rebuildDDL renders the statements of a rebuild from a state.
func rebuildDDL(db, cluster string, t table, version int, st rebuildState) []string {
	tmp, old := rebuildNames(t, version)
	q := func(t table) string { return quoteIdent(db) + "." + quoteIdent(t.localName(cluster)) }
	sync := ""
	if cluster != "" {
		sync = " SYNC"
	}
	var out []string
	switch st {
	case rebuildFresh:
		out = append(out, tmp.ddl(db, cluster)[0]) // the local table only: no Distributed one for it
		fallthrough
	case rebuildCreated:
		out = append(out, fmt.Sprintf("RENAME TABLE %s TO %s, %s TO %s%s", q(t), q(old), q(tmp), q(t), onCluster(cluster)))
	case rebuildHalf:
		out = append(out, fmt.Sprintf("RENAME TABLE %s TO %s%s", q(tmp), q(t), onCluster(cluster)))
	}
	if st != rebuildDone {
		out = append(out,
			fmt.Sprintf("ALTER TABLE %s%s ATTACH PARTITION ALL FROM %s", q(t), onCluster(cluster), q(old)),
			fmt.Sprintf("DROP TABLE IF EXISTS %s%s%s", q(old), onCluster(cluster), sync))
	}
	return out
}

// rebuildState finds how far a rebuild of t got, from which of the tables
// exist and the engine of the one under t's name.
func (s *Store) rebuildState(ctx context.Context, t table, version int) (rebuildState, error) {
	tmp, old := rebuildNames(t, version)
	rows, err := s.Query(ctx, "SELECT name, engine FROM system.tables WHERE database = {db:String} AND name IN ({a:String}, {b:String}, {c:String})",
		clickhouse.Named("db", s.database), clickhouse.Named("a", t.localName(s.cluster)), clickhouse.Named("b", tmp.localName(s.cluster)),
		clickhouse.Named("c", old.localName(s.cluster)))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	engines := map[string]string{}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			return 0, err
		}
		engines[name] = engine
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	want := string(t.engine)
	if s.cluster != "" {
		want = "Replicated" + want
	}
	cur, hasTmp, hasOld := engines[t.localName(s.cluster)], engines[tmp.localName(s.cluster)] != "", engines[old.localName(s.cluster)] != ""
	switch {
	case cur == "" && hasOld:
		return rebuildHalf, nil
	case cur == want && hasOld:
		return rebuildSwapped, nil
	case cur == want:
		return rebuildDone, nil
	case hasTmp:
		return rebuildCreated, nil
	}
	return rebuildFresh, nil
}

// rebuild runs the rest of a rebuild from where it got, holding the
// rebuild's lock: nodes starting together must not interleave its
// statements (a RENAME of several tables is not atomic, and two nodes
// renaming at once can leave the table under another name). The lock is a
// table, <name>_v<version>_lock: CREATE TABLE succeeds for one node only.
// The others wait for the rebuild to be done; a lock older than
// rebuildLockStale is left by a node that died holding it, and is taken
// over.
func (s *Store) rebuild(ctx context.Context, t table, version int) error {
	lock := quoteIdent(s.database) + "." + quoteIdent(fmt.Sprintf("%s_v%d_lock", t.name, version))
	for {
		st, err := s.rebuildState(ctx, t, version)
		if err != nil {
			return err
		}
		if st == rebuildDone {
			return s.Exec(ctx, "DROP TABLE IF EXISTS "+lock+onCluster(s.cluster))
		}
		err = s.Exec(ctx, "CREATE TABLE "+lock+onCluster(s.cluster)+" (node String) ENGINE = Log")
		if err == nil {
			err = s.rebuildLocked(ctx, t, version)
			if derr := s.Exec(ctx, "DROP TABLE IF EXISTS "+lock+onCluster(s.cluster)); err == nil {
				err = derr
			}
			return err
		}
		if !tableExists(err) {
			return err
		}
		var age uint64
		if err := s.QueryRow(ctx, "SELECT toUInt64(now() - metadata_modification_time) FROM system.tables WHERE database = {db:String} AND name = {n:String}",
			clickhouse.Named("db", s.database), clickhouse.Named("n", fmt.Sprintf("%s_v%d_lock", t.name, version))).Scan(&age); err == nil && age > uint64(rebuildLockStale/time.Second) {
			s.log.Warn("schema migration: taking over a rebuild whose lock is stale", "table", t.name, "lock_age_s", age)
			if err := s.Exec(ctx, "DROP TABLE IF EXISTS "+lock+onCluster(s.cluster)); err != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// rebuildLockStale is the age past which a rebuild's lock is taken to be
// a dead node's: the statements are metadata changes and hard links, which
// take seconds even for a table of thousands of parts.
const rebuildLockStale = 2 * time.Minute

// rebuildLocked runs the rebuild's statements from its state, under its
// lock, and checks that it is done.
func (s *Store) rebuildLocked(ctx context.Context, t table, version int) error {
	st, err := s.rebuildState(ctx, t, version)
	if err != nil {
		return err
	}
	for _, q := range rebuildDDL(s.database, s.cluster, t, version, st) {
		if err := s.Exec(ctx, q); err != nil {
			return err
		}
	}
	if st, err = s.rebuildState(ctx, t, version); err == nil && st != rebuildDone {
		err = fmt.Errorf("store: rebuild of %s not done after its statements (state %d)", t.name, st)
	}
	return err
}

// tableExists reports an error that says a table already exists.
func tableExists(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && ex.Code == 57 {
		return true
	}
	return strings.Contains(err.Error(), "TABLE_ALREADY_EXISTS")
}

// ddl renders the step's statements for a database and cluster, in order,
// as they run on a database the previous steps made.
func (m migration) ddl(db, cluster string) []string {
	out := m.baseDDL(db, cluster)
	for _, t := range m.rebuilds {
		out = append(out, rebuildDDL(db, cluster, t, m.version, rebuildFresh)...)
	}
	return out
}

// baseDDL renders the step's statements but its rebuilds, in order.
func (m migration) baseDDL(db, cluster string) []string {
	var out []string
	for _, t := range m.drops {
		// On a cluster SYNC frees the table's replication path for the
		// table created in its place. A single server needs no wait, and
		// there DROP … SYNC hung the embedded engine (26.5) in tests.
		sync := ""
		if cluster != "" {
			sync = " SYNC"
		}
		out = append(out, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s%s", quoteIdent(db), quoteIdent(t.name), onCluster(cluster), sync))
		if cluster != "" && t.sharded {
			out = append(out, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s%s", quoteIdent(db), quoteIdent(t.name+"_local"), onCluster(cluster), sync))
		}
	}
	for _, t := range m.tables {
		out = append(out, t.ddl(db, cluster)...)
	}
	for _, ts := range m.settings {
		out = append(out, fmt.Sprintf("ALTER TABLE %s.%s%s MODIFY SETTING %s", quoteIdent(db), quoteIdent(ts.table.localName(cluster)), onCluster(cluster), ts.setting))
	}
	for _, t := range m.ttls {
		out = append(out, modifyTTL(db, cluster, t.table, t.ttl))
	}
	return out
}

// dedupWindow lets non-replicated MergeTree tables drop a retried insert
// that carries the same insert_deduplication_token: the last 1000 inserted
// blocks are remembered, far more than a flusher retries.
const dedupWindow = "non_replicated_deduplication_window = 1000"

// rollupLevels are the rollup resolutions, finest first.
var rollupLevels = []struct{ suffix, bucket string }{
	{"1m", "1 minute"}, {"15m", "15 minute"}, {"1h", "1 hour"}, {"1d", "1 day"},
}

func rollupTables() []table {
	var out []table
	for _, l := range rollupLevels {
		out = append(out, table{
			name: "panel_rollup_" + l.suffix,
			columns: `
	system_id   UInt32 CODEC(Delta, ZSTD(1)),
	panel       LowCardinality(String),
	ts          DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
	samples     UInt32 CODEC(T64, ZSTD(1)),
	wh          UInt64 CODEC(T64, ZSTD(1)),
	pin_sum     UInt64 CODEC(T64, ZSTD(1)),
	pin_max     UInt16 CODEC(T64, ZSTD(1)),
	vin_sum     UInt64 CODEC(T64, ZSTD(1)),
	iin_sum     UInt64 CODEC(T64, ZSTD(1)),
	vout_sum    UInt64 CODEC(T64, ZSTD(1)),
	temp_sum    Int64 CODEC(T64, ZSTD(1)),
	temp_max    Int16 CODEC(T64, ZSTD(1)),
	computed_at DateTime64(3, 'UTC') CODEC(ZSTD(1))`,
			engine: replacingMerge, version: "computed_at",
			partitionBy: "toYYYYMM(ts)", orderBy: "(system_id, panel, ts)", sharded: true,
		}, table{
			name: "system_rollup_" + l.suffix,
			columns: `
	system_id   UInt32 CODEC(Delta, ZSTD(1)),
	ts          DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
	samples     UInt32 CODEC(T64, ZSTD(1)),
	panels      UInt16 CODEC(T64, ZSTD(1)),
	wh          UInt64 CODEC(T64, ZSTD(1)),
	pin_sum     UInt64 CODEC(T64, ZSTD(1)),
	pin_max     UInt16 CODEC(T64, ZSTD(1)),
	temp_max    Int16 CODEC(T64, ZSTD(1)),
	computed_at DateTime64(3, 'UTC') CODEC(ZSTD(1))`,
			engine: replacingMerge, version: "computed_at",
			partitionBy: "toYYYYMM(ts)", orderBy: "(system_id, ts)", sharded: true,
		})
	}
	return out
}

// migrations is the schema's history. Never edit a released step.
var migrations = []migration{
	{version: 1, name: "initial schema", tables: append([]table{
		readingsTable,
		{
			// Latest state per system as of a WAL position (lsn), written
			// by ingest with each flush that touched the system; start-up
			// rebuilds live state from it and replays the WAL after lsn.
			name: "system_live",
			columns: `
	system_id    UInt32,
	last_ts      DateTime64(3, 'UTC'),
	day          Date,
	energy_today UInt64,
	panels       Array(LowCardinality(String)),
	panel_pin    Array(UInt16),
	panel_ts     Array(DateTime64(3, 'UTC')),
	lsn          UInt64,
	updated_at   DateTime64(3, 'UTC')`,
			engine: replacingMerge, version: "updated_at", orderBy: "system_id",
			dedup: true, sharded: true,
		},
		{
			// Minutes of a system that received readings after the rollup
			// worker may have computed them. The worker recomputes them and
			// writes the row again with done = 1 and the same version; a
			// newer mark (later marked_at) brings it back.
			name: "rollup_dirty",
			columns: `
	ts        DateTime('UTC'),
	system_id UInt32,
	marked_at DateTime64(3, 'UTC'),
	done      UInt8 DEFAULT 0`,
			engine: replacingMerge, version: "marked_at", orderBy: "(ts, system_id)",
			ttl: "toDateTime(marked_at) + INTERVAL 7 DAY", dedup: true,
		},
		{
			// How far each rollup level has been computed.
			name: "rollup_watermarks",
			columns: `
	level      LowCardinality(String),
	watermark  DateTime('UTC'),
	updated_at DateTime64(3, 'UTC')`,
			engine: replacingMerge, version: "updated_at", orderBy: "level",
		},
		{
			// Each gateway's window of recent request seqs (ingest's
			// idempotency), written with the flush that made them
			// durable, so a repeated request is a duplicate also after the
			// WAL that saw it has been truncated.
			name: "ingest_dedup",
			columns: `
	gateway_id UInt32,
	max_seq    UInt64,
	seqs       String,
	updated_at DateTime64(3, 'UTC')`,
			engine: replacingMerge, version: "updated_at", orderBy: "gateway_id", dedup: true,
		},
		{
			name: "systems",
			columns: `
	id         UInt32,
	guid       String,
	name       String,
	address    String,
	timezone   LowCardinality(String),
	monitored  Bool,
	org_id     UInt32,
	created_at DateTime64(3, 'UTC'),
	deleted    Bool,
	version    UInt64`,
			engine: replacingMerge, version: "version", orderBy: "id",
		},
		{
			name: "gateways",
			columns: `
	id         UInt32,
	system_id  UInt32,
	serial     String,
	key_hash   FixedString(32),
	created_at DateTime64(3, 'UTC'),
	deleted    Bool,
	version    UInt64`,
			engine: replacingMerge, version: "version", orderBy: "id",
		},
		{
			name: "panels",
			columns: `
	system_id  UInt32,
	panel      String,
	gateway_id UInt32,
	first_seen DateTime64(3, 'UTC')`,
			engine: replacingMerge, orderBy: "(system_id, panel)", sharded: true,
		},
		{
			// The ACL event log: every access change, in hybrid-logical-
			// clock order. Start-up folds it (from the latest snapshot on,
			// see migration 2);
			// nodes tail it by insertion time (ins), which the minmax index
			// keeps cheap; system_id serves a system's audit trail.
			name: "acl_events",
			columns: `
	hlc       UInt64,
	node      UInt16,
	kind      LowCardinality(String),
	actor     UInt32,
	system_id UInt32,
	event     String CODEC(ZSTD(3)),
	at        DateTime64(3, 'UTC'),
	ins       DateTime64(3, 'UTC') DEFAULT now64(3),
	INDEX ins_minmax ins TYPE minmax GRANULARITY 1,
	INDEX system_bloom system_id TYPE bloom_filter GRANULARITY 4`,
			engine: mergeTree, orderBy: "(hlc, node)", dedup: true,
		},
		{
			// Mail fleetscope sends (verification codes, invitations). The
			// default mailer only writes here and to the log; support reads
			// it with GET /v1/outbox.
			name: "outbox",
			columns: `
	id         UUID,
	to         String,
	subject    String,
	body       String,
	created_at DateTime64(3, 'UTC')`,
			engine: mergeTree, orderBy: "created_at", ttl: "toDateTime(created_at) + INTERVAL 30 DAY",
		},
		{
			// Periodic snapshots of the folded ACL state (roaring bitmaps in
			// portable format inside), so start-up replays only the log's
			// tail.
			name: "acl_snapshots",
			columns: `
	hlc        UInt64,
	node       UInt32,
	events     UInt64,
	state      String CODEC(ZSTD(3)),
	created_at DateTime64(3, 'UTC')`,
			engine: mergeTree, orderBy: "(hlc, node)",
		},
	}, rollupTables()...)},
	{
		version: 2, name: "acl snapshots in chunks",
		// Nothing wrote the version 1 table, so dropping it loses nothing.
		drops: []table{{name: "acl_snapshots"}},
		tables: []table{{
			// Snapshots of the folded ACL state (acl.Log.Snapshot), so
			// start-up folds only the log's tail: the state's registers as
			// events, zstd-compressed in chunks of a few MiB (the data is
			// compressed already, hence no codec). A snapshot is the rows of
			// one (hlc, node); chunk 0 is its header, written last, so a
			// snapshot without one is incomplete. covers: every event
			// inserted into acl_events before it is in the snapshot; it and
			// events (the count) are set on the header row. Old snapshots
			// are deleted by the nodes that write new ones.
			name: "acl_snapshots",
			columns: `
	hlc        UInt64,
	node       UInt16,
	chunk      UInt32,
	covers     DateTime64(3, 'UTC'),
	events     UInt64,
	data       String CODEC(NONE),
	created_at DateTime64(3, 'UTC')`,
			engine: mergeTree, orderBy: "(hlc, node, chunk)", dedup: true,
		}},
	},
	{
		version: 3, name: "cumulative energy per system and day",
		tables: []table{{
			// Each system's energy (mWh) over every whole UTC day before ts,
			// one row per system and day, written by the rollup worker from
			// the day rollup (ingest.Rollup). Energy over whole days [a, b)
			// is then the row at b minus the row at a: two rows per system
			// where the day rollup needs one per day (query.FleetEnergy).
			// Ordered by day, so the rows of one day are one range. Rows are
			// recomputed (replaced by computed_at) when late readings change
			// an earlier day. Migration 4 replaces this table (energyCum).
			name: "system_energy_cum",
			columns: `
	ts          DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
	system_id   UInt32 CODEC(Delta, ZSTD(1)),
	wh          UInt64 CODEC(T64, ZSTD(1)),
	computed_at DateTime64(3, 'UTC') CODEC(ZSTD(1))`,
			engine: replacingMerge, version: "computed_at",
			partitionBy: "toYYYYMM(ts)", orderBy: "(ts, system_id)", sharded: true,
		}},
	},
	{
		version: 4, name: "cumulative energy carries the energy 7 and 30 days before",
		// The table is derived from the day rollup, so it is dropped and
		// its watermark reset: the rollup worker writes every row again,
		// with the new columns, and until it has, fleet energy reads the
		// day rollup (query.planFleetTiles stops at the watermark).
		drops:  []table{energyCum},
		tables: []table{energyCum},
		after: []string{
			"INSERT INTO rollup_watermarks (level, watermark, updated_at) VALUES ('cum', toDateTime(0, 'UTC'), now64(3))",
		},
	},
	{
		version: 5, name: "readings merge fewer times",
		// The engine merges a month's parts (the partition) into ever larger
		// ones; merge_selector_base is how many parts of a size wait to be
		// merged together, so each reading is rewritten about log_base(parts)
		// times. At saturation merges were the largest engine cost (a sixth
		// of the server's CPU). Inserting 30 blocks of 1 M rows in arrival
		// order (bench.ArrivalColumns), one every 2 s, into a copy of the
		// table and waiting until no merge ran took 32.9 s of process CPU
		// with the default 5 and 21.2 s with 10 (20: 21.2 s), leaving 11
		// parts instead of 3 in the partition; a history query reads each
		// part's index, which at these counts is noise.
		settings: []tableSetting{{readingsTable, "merge_selector_base = 10"}},
	},
	{
		version: 6, name: "a reading is identified by (system_id, panel, ts)",
		// The same reading posted twice — resent by a gateway under a new
		// seq, or retried through another node — is a second row of the
		// same sorting key; ReplacingMergeTree keeps one of them (the last
		// inserted) when it merges their parts, and readers that must not
		// count it twice before then collapse it themselves (package
		// rollup reads with FINAL, query groups by panel and ts). The rows
		// already stored are kept (rebuild: hard links, not copies), so
		// readings doubled before this step count once from now on too.
		rebuilds: []table{readingsV6},
	},
	{
		version: 7, name: "id blocks claimed by nodes",
		// Two nodes creating accounts, orgs, systems or gateways at once
		// must never hand out the same id (DESIGN §3). A node claims a
		// block of ids by inserting a row whose insert deduplication token
		// names the block: of two claims of one block the engine keeps the
		// first insert and drops the other (on a cluster ClickHouse Keeper
		// decides, the table being replicated), and a node owns the block
		// whose row carries its claim. See acl.Log.ClaimIDBlock.
		tables: []table{{
			name: "id_blocks",
			columns: `
	what  LowCardinality(String),
	block UInt32,
	node  UInt16,
	claim String,
	at    DateTime64(3, 'UTC')`,
			engine: mergeTree, orderBy: "(what, block)", dedup: true,
		}},
	},
	{
		version: 8, name: "cumulative energy per system and minute",
		// Each system's energy (mWh) from the table's origin to ts, a row
		// per system and minute, written by the rollup worker from the
		// minute rollup (rollup.CumMinuteName): the energy of any whole
		// minutes [a, b) of a fleet is then its rows at b less those at a,
		// two rows per system in one range of the table (ordered by time)
		// — where the minute, quarter-hour and hour rollups, ordered by
		// system, read a row per system and bucket from every part of
		// theirs (query.FleetEnergy). Partitioned by day so that a
		// retention drops whole days.
		tables: []table{energyCumMinute},
	},
	{
		version: 9, name: "raw readings and rollups finer than an hour expire",
		// --raw-retention (default DefaultRawRetention) is applied at
		// start-up by SetRawRetention; this step sets the default and makes
		// expiry drop whole parts (a month's partition holds parts of that
		// month only, so a month goes at once, once its last day is older
		// than the retention) whose TTL bounds are recalculated, not
		// rewritten, when the TTL changes.
		settings: func() []tableSetting {
			var out []tableSetting
			for _, t := range expiringTables() {
				out = append(out, tableSetting{t, "ttl_only_drop_parts = 1, materialize_ttl_recalculate_only = 1"})
			}
			return out
		}(),
		ttls: func() []tableTTL {
			var out []tableTTL
			for _, t := range expiringTables() {
				out = append(out, tableTTL{t, rawTTL(t, DefaultRawRetention)})
			}
			return out
		}(),
	},
}

// energyCumMinute is the minute cumulative energy table (migration 8).
var energyCumMinute = table{
	name: "system_energy_cum_1m",
	columns: `
	ts          DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
	system_id   UInt32 CODEC(Delta, ZSTD(1)),
	wh          UInt64 CODEC(T64, ZSTD(1)),
	computed_at DateTime64(3, 'UTC') CODEC(ZSTD(1))`,
	engine: replacingMerge, version: "computed_at",
	partitionBy: "toYYYYMMDD(ts)", orderBy: "(ts, system_id)", sharded: true,
}

// readingsV6 is the readings table from migration 6 on: a
// ReplacingMergeTree, so that a reading stored twice collapses to one row,
// with migration 5's setting.
var readingsV6 = func() table {
	t := readingsTable
	t.engine = replacingMerge
	t.settings = "merge_selector_base = 10"
	return t
}()

// DefaultRawRetention is how long raw readings (and the rollups finer than
// an hour) are kept unless --raw-retention says otherwise: 400 days, a
// year of history at full resolution plus a month to compare a month with
// the same month a year before. Hourly and daily rollups are kept forever.
const DefaultRawRetention = 400 * 24 * time.Hour

// expiringTables are the tables whose rows expire after the raw retention:
// raw readings, the 1-minute and 15-minute rollups and the minute
// cumulative energy. Past the retention, history is hourly (the 1 h and 1 d
// rollups and the daily cumulative energy are kept forever): 15-minute rows
// would cost a panel 35 k rows a year, for dashboards that show a year-old
// day by the hour.
func expiringTables() []table {
	out := []table{readingsV6, energyCumMinute}
	for _, t := range rollupTables() {
		if strings.HasSuffix(t.name, "_1m") || strings.HasSuffix(t.name, "_15m") {
			out = append(out, t)
		}
	}
	return out
}

// rawTTL is the TTL expression of an expiring table.
func rawTTL(t table, d time.Duration) string {
	ts := "ts"
	if t.name == "readings" {
		ts = "toDateTime(ts)"
	}
	return fmt.Sprintf("%s + toIntervalSecond(%d)", ts, int64(d/time.Second))
}

// SetRawRetention makes raw readings, and rollups finer than an hour,
// expire d after their timestamp (serve's --raw-retention), changing the
// tables' TTL only where it differs. Expired rows go a part at a time, in
// background merges.
func (s *Store) SetRawRetention(ctx context.Context, d time.Duration) error {
	if d < time.Hour {
		return fmt.Errorf("store: raw retention %s: at least an hour", d)
	}
	for _, t := range expiringTables() {
		var create string
		if err := s.QueryRow(ctx, "SELECT create_table_query FROM system.tables WHERE database = {db:String} AND name = {t:String}",
			clickhouse.Named("db", s.database), clickhouse.Named("t", t.localName(s.cluster))).Scan(&create); err != nil {
			return fmt.Errorf("store: raw retention of %s: %w", t.name, err)
		}
		ttl := rawTTL(t, d)
		if strings.Contains(create, "TTL "+ttl+" ") || strings.HasSuffix(create, "TTL "+ttl) {
			continue
		}
		if err := s.Exec(ctx, modifyTTL(s.database, s.cluster, t, ttl)); err != nil {
			return fmt.Errorf("store: raw retention of %s: %w", t.name, err)
		}
		s.log.Info("raw retention set", "table", t.name, "retention", d.String())
	}
	return nil
}

// readingsTable holds every reading: one row per panel per timestamp,
// values in the storage scales of ingest.ScaledReading.
var readingsTable = table{
	name: "readings",
	columns: `
	system_id  UInt32 CODEC(Delta, ZSTD(1)),
	gateway_id UInt32 CODEC(T64, ZSTD(1)),
	panel      LowCardinality(String) CODEC(ZSTD(1)),
	ts         DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
	vin        UInt16 CODEC(T64, ZSTD(1)),
	iin        UInt16 CODEC(T64, ZSTD(1)),
	pin        UInt16 CODEC(T64, ZSTD(1)),
	vout       UInt16 CODEC(T64, ZSTD(1)),
	temp       Int16 CODEC(T64, ZSTD(1)),
	rssi       UInt8 CODEC(T64, ZSTD(1)),
	wh         UInt32 CODEC(T64, ZSTD(1))`,
	engine: mergeTree, partitionBy: "toYYYYMM(ts)", orderBy: "(system_id, panel, ts)",
	dedup: true, sharded: true,
}

// energyCum holds each system's energy (mWh) over every whole UTC day
// before ts, one row per system and day, written by the rollup worker from
// the day rollup (ingest.Rollup). Energy over whole days [a, b) is the row
// at b minus the row at a; for the two spans dashboards ask most — the last
// 7 and 30 days — the row at b carries the row at b−7 d and b−30 d as well,
// so those are one row per system, with neither a join nor a GROUP BY
// (query.FleetEnergy): measured on `fleetscope bench query`'s 200 k-system
// caller, 42 ms against 73–95 ms for two rows per system summed by system.
// Ordered by day, so the rows of one day are one range. Rows are recomputed
// (replaced by computed_at) when late readings change an earlier day.
//
// LZ4 rather than ZSTD: the table is read whole-day at a time on the
// request path, where LZ4's decoding is the cheaper; Delta and T64 keep it
// at 4.8 bytes per row (ZSTD 3.9, LZ4 alone 9.0).
var energyCum = table{
	name: "system_energy_cum",
	columns: `
	ts            DateTime('UTC') CODEC(Delta, LZ4),
	system_id     UInt32 CODEC(Delta, LZ4),
	wh            UInt64 CODEC(T64, LZ4),
	wh_7d_before  UInt64 CODEC(T64, LZ4),
	wh_30d_before UInt64 CODEC(T64, LZ4),
	computed_at   DateTime64(3, 'UTC') CODEC(Delta, LZ4)`,
	engine: replacingMerge, version: "computed_at",
	partitionBy: "toYYYYMM(ts)", orderBy: "(ts, system_id)", sharded: true,
}

// migrationsTable records applied steps.
var migrationsTable = table{
	name: "schema_migrations",
	columns: `
	version    UInt32,
	name       String,
	applied_at DateTime64(3, 'UTC')`,
	engine: replacingMerge, orderBy: "version",
}

// SchemaVersion is the newest migration this build knows.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// MigrationDDL renders every statement of every migration for a database
// and cluster, in order: what Migrate would run on an empty database.
func MigrationDDL(db, cluster string) []string {
	out := migrationsTable.ddl(db, cluster)
	for _, m := range migrations {
		out = append(out, m.ddl(db, cluster)...)
	}
	return out
}

// Migrate applies the missing migrations in order and records each. It is
// idempotent: every statement is IF NOT EXISTS, and a recorded step is not
// run again.
func (s *Store) Migrate(ctx context.Context) error { return s.migrateTo(ctx, SchemaVersion()) }

// migrateTo applies the missing migrations up to version upTo.
func (s *Store) migrateTo(ctx context.Context, upTo int) error {
	for _, q := range migrationsTable.ddl(s.database, s.cluster) {
		if err := s.Exec(ctx, q); err != nil {
			return fmt.Errorf("store: migrations table: %w", err)
		}
	}
	applied, err := s.AppliedMigrations(ctx)
	if err != nil {
		return err
	}
	for _, m := range migrations {
		if applied[m.version] || m.version > upTo {
			continue
		}
		start := time.Now()
		for _, q := range m.baseDDL(s.database, s.cluster) {
			if err := s.Exec(ctx, q); err != nil {
				return fmt.Errorf("store: migration %d (%s): %w", m.version, m.name, err)
			}
		}
		for _, t := range m.rebuilds {
			if err := s.rebuild(ctx, t, m.version); err != nil {
				return fmt.Errorf("store: migration %d (%s): %w", m.version, m.name, err)
			}
		}
		for _, q := range m.after {
			if err := s.Exec(ctx, q); err != nil {
				return fmt.Errorf("store: migration %d (%s): %w", m.version, m.name, err)
			}
		}
		if err := s.Exec(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ({v:UInt32}, {n:String}, now64(3))",
			clickhouse.Named("v", fmt.Sprint(m.version)), clickhouse.Named("n", m.name)); err != nil {
			return fmt.Errorf("store: record migration %d: %w", m.version, err)
		}
		s.log.Info("schema migration applied", "version", m.version, "name", m.name, "duration_s", time.Since(start).Seconds())
	}
	return nil
}

// AppliedMigrations returns the versions recorded as applied.
func (s *Store) AppliedMigrations(ctx context.Context) (map[int]bool, error) {
	rows, err := s.Query(ctx, "SELECT DISTINCT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("store: read migrations: %w", err)
	}
	defer rows.Close()
	out := map[int]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out[int(v)] = true
	}
	return out, rows.Err()
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func quoteIdent(v string) string {
	return "`" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "`", "\\`") + "`"
}

func quoteString(v string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), `'`, `\'`) + "'"
}
