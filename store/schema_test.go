package store_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetscope/fleetscope/internal/storetest"
	"github.com/fleetscope/fleetscope/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

// schemaState is what the database looks like: every table's CREATE text and
// the recorded migrations.
func schemaState(t *testing.T, s *store.Store) string {
	t.Helper()
	ctx := context.Background()
	rows, err := s.Query(ctx, "SELECT name, create_table_query FROM system.tables WHERE database = currentDatabase() ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var name, q string
		if err := rows.Scan(&name, &q); err != nil {
			t.Fatal(err)
		}
		b.WriteString(name + ": " + q + "\n")
	}
	var n uint64
	if err := s.QueryRow(ctx, "SELECT count() FROM schema_migrations FINAL").Scan(&n); err != nil {
		t.Fatal(err)
	}
	b.WriteString("migrations recorded: " + strings.Repeat("I", int(n)))
	return b.String()
}

func TestMigrationsAppliedTwiceChangeNothing(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	before := schemaState(t, s)
	applied, err := s.AppliedMigrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != store.SchemaVersion() {
		t.Fatalf("applied %v, want all %d", applied, store.SchemaVersion())
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// A second process opening the same database migrates nothing either.
	s2 := storetest.OpenDatabase(t, s.Database())
	if after := schemaState(t, s2); after != before {
		t.Fatalf("schema changed on second migration:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	for _, want := range []string{"readings", "panel_rollup_15m", "system_rollup_1d", "system_live", "acl_events", "ingest_dedup", "systems", "gateways", "panels"} {
		if !strings.Contains(before, "\n"+want+": ") && !strings.HasPrefix(before, want+": ") {
			t.Errorf("table %s missing", want)
		}
	}
	// Migration 5's setting is in effect on the table the engine holds.
	var create string
	if err := s.QueryRow(ctx, "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = 'readings'").Scan(&create); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(create, "merge_selector_base = 10") || !strings.Contains(create, "non_replicated_deduplication_window = 1000") {
		t.Errorf("readings lacks its settings: %s", create)
	}
}

// The DDL a cluster gets: ON CLUSTER everywhere, Replicated engines, and
// Distributed tables sharded by system_id over the per-shard tables.
func TestClusterDDL(t *testing.T) {
	got := strings.Join(store.MigrationDDL("fleetscope", "solar"), ";\n\n") + ";\n"
	golden := filepath.Join("testdata", "cluster_ddl.sql")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./store -run TestClusterDDL -update)", err)
	}
	if got != string(want) {
		t.Fatalf("cluster DDL differs from %s (rerun with -update and review the diff):\n%s", golden, got)
	}
	// Properties the golden file must keep, stated so a reviewer need not
	// read it all.
	for _, stmt := range store.MigrationDDL("fleetscope", "solar") {
		if !strings.Contains(stmt, " ON CLUSTER `solar`") {
			t.Errorf("statement without ON CLUSTER: %s", stmt)
		}
		if strings.Contains(stmt, "ENGINE = ") && !strings.Contains(stmt, "ENGINE = Replicated") && !strings.Contains(stmt, "ENGINE = Distributed") {
			t.Errorf("non-replicated engine on a cluster: %s", stmt)
		}
	}
	for _, want := range []string{
		"CREATE TABLE IF NOT EXISTS `fleetscope`.`readings_local` ON CLUSTER `solar`",
		"ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/readings_local', '{replica}')",
		"CREATE TABLE IF NOT EXISTS `fleetscope`.`readings` ON CLUSTER `solar` AS `fleetscope`.`readings_local`\nENGINE = Distributed('solar', 'fleetscope', 'readings_local', system_id)",
		"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/panel_rollup_15m_local', '{replica}', computed_at)",
		"ENGINE = ReplicatedMergeTree('/clickhouse/tables/global/{database}/acl_events', '{replica}')",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("cluster DDL lacks %q", want)
		}
	}
	if strings.Contains(got, "non_replicated_deduplication_window") {
		t.Error("replicated tables carry the non-replicated deduplication setting")
	}
}

func TestSingleServerDDLDeduplicatesRetriedInserts(t *testing.T) {
	for _, stmt := range store.MigrationDDL("fleetscope", "") {
		if strings.HasPrefix(stmt, "CREATE TABLE") && strings.Contains(stmt, "`readings`") && !strings.Contains(stmt, "non_replicated_deduplication_window") {
			t.Fatalf("readings without a deduplication window: %s", stmt)
		}
	}
}
