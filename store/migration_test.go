package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/fleetscope/fleetscope/internal/storetest"
	"github.com/fleetscope/fleetscope/store"
)

// openAt opens a fresh database migrated up to version v only.
func openAt(t *testing.T, v int) *store.Store {
	t.Helper()
	db := fmt.Sprintf("t_migration_%d_%d", v, time.Now().UnixNano()%1e9)
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{Engine: storetest.Engine(t), Database: db, Logger: storetest.Logger(), SkipMigrations: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+db+"`")
		s.Close()
	})
	if err := s.MigrateTo(ctx, v); err != nil {
		t.Fatal(err)
	}
	return s
}

func tableInfo(t *testing.T, s *store.Store, name string) (engine, create string) {
	t.Helper()
	if err := s.QueryRow(context.Background(), "SELECT engine, create_table_query FROM system.tables WHERE database = currentDatabase() AND name = {n:String}",
		clickhouse.Named("n", name)).Scan(&engine, &create); err != nil {
		t.Fatalf("table %s: %v", name, err)
	}
	return engine, create
}

// Migration 6 rebuilds readings as a ReplacingMergeTree: the rows stored
// before it stay (two months, so two partitions), readings stored twice
// before it count once after it, the table keeps its settings, and a
// migration interrupted at any statement finishes when run again.
func TestReadingsRebuildKeepsRowsAndCollapsesDuplicates(t *testing.T) {
	const insert = `INSERT INTO readings (system_id, gateway_id, panel, ts, vin, iin, pin, vout, temp, rssi, wh)
SELECT 1 + number % 3, 1, concat('A', toString(number % 5)), toDateTime64('2026-05-31 23:00:00', 3, 'UTC') + INTERVAL intDiv(number, 15) MINUTE,
	3800, 9000, 2000, 3700, 300, 180, 1000 + number FROM numbers(1500)`
	ctx := context.Background()
	// From every state an interruption can leave: the statements of the
	// rebuild that ran before it.
	ddl := func(s *store.Store) []string {
		var out []string
		for _, q := range store.MigrationDDL(s.Database(), "") {
			if strings.Contains(q, "readings_v6") {
				out = append(out, q)
			}
		}
		return out
	}
	for done := 0; done <= 3; done++ {
		t.Run(fmt.Sprintf("%d statements done before", done), func(t *testing.T) {
			s := openAt(t, 5)
			for range 2 { // every reading twice
				if err := s.Exec(ctx, insert); err != nil {
					t.Fatal(err)
				}
			}
			stmts := ddl(s)
			if len(stmts) != 4 {
				t.Fatalf("rebuild statements: %q", stmts)
			}
			for _, q := range stmts[:done] {
				if err := s.Exec(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			engine, create := tableInfo(t, s, "readings")
			if engine != "ReplacingMergeTree" || !strings.Contains(create, "merge_selector_base = 10") || !strings.Contains(create, "non_replicated_deduplication_window = 1000") {
				t.Fatalf("readings after migration 6: %s", create)
			}
			var rows, final, distinct, wh uint64
			if err := s.QueryRow(ctx, "SELECT count(), (SELECT count() FROM readings FINAL), uniqExact(system_id, panel, ts), (SELECT sum(wh) FROM readings FINAL) FROM readings").
				Scan(&rows, &final, &distinct, &wh); err != nil {
				t.Fatal(err)
			}
			// 1500 readings; attaching twice (interrupted after the
			// attach) leaves more rows, never other readings.
			if final != 1500 || distinct != 1500 || rows < 1500 || wh != 1500*1000+1499*1500/2 {
				t.Fatalf("%d rows, %d with FINAL, %d distinct, wh %d; want 1500 readings once", rows, final, distinct, wh)
			}
			var tmp uint64
			if err := s.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name LIKE 'readings_v%'").Scan(&tmp); err != nil || tmp != 0 {
				t.Fatalf("temporary table left: %d (%v)", tmp, err)
			}
		})
	}
}

// Nodes starting together migrate the same database at once: neither undoes
// the other's rebuild.
func TestReadingsRebuildByTwoNodesAtOnce(t *testing.T) {
	s := openAt(t, 5)
	ctx := context.Background()
	if err := s.Exec(ctx, `INSERT INTO readings (system_id, gateway_id, panel, ts, vin, iin, pin, vout, temp, rssi, wh)
SELECT 1, 1, concat('A', toString(number % 30)), toDateTime64('2026-06-01 00:00:00', 3, 'UTC') + INTERVAL intDiv(number, 30) MINUTE,
	3800, 9000, 2000, 3700, 300, 180, 1000 FROM numbers(3000)`); err != nil {
		t.Fatal(err)
	}
	other, err := store.Open(ctx, store.Config{Engine: storetest.Engine(t), Database: s.Database(), Logger: storetest.Logger(), SkipMigrations: true})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	errs := make(chan error, 2)
	for _, st := range []*store.Store{s, other} {
		go func() { errs <- st.Migrate(ctx) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	engine, _ := tableInfo(t, s, "readings")
	var final uint64
	if err := s.QueryRow(ctx, "SELECT count() FROM readings FINAL").Scan(&final); err != nil {
		t.Fatal(err)
	}
	if engine != "ReplacingMergeTree" || final != 3000 {
		t.Fatalf("after two nodes migrated: %s, %d readings (want ReplacingMergeTree, 3000)", engine, final)
	}
}

// Raw readings and the rollups finer than an hour expire after the raw
// retention, a month's partition at a time; hourly and daily rollups stay.
func TestRawRetention(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	for _, name := range []string{"readings", "panel_rollup_1m", "system_rollup_15m"} {
		if _, create := tableInfo(t, s, name); !strings.Contains(create, "TTL ") || !strings.Contains(create, "toIntervalSecond(34560000)") ||
			!strings.Contains(create, "ttl_only_drop_parts = 1") {
			t.Fatalf("%s without the default 400-day TTL: %s", name, create)
		}
	}
	for _, name := range []string{"panel_rollup_1h", "system_rollup_1d", "system_energy_cum"} {
		if _, create := tableInfo(t, s, name); strings.Contains(create, "TTL ") {
			t.Fatalf("%s expires: %s", name, create)
		}
	}
	// Three months ago, and now.
	old, recent := time.Now().UTC().AddDate(0, -3, 0), time.Now().UTC().Add(-time.Hour)
	for _, at := range []time.Time{old, recent} {
		ts := clickhouse.Named("ts", fmt.Sprint(at.Unix()))
		for _, q := range []string{
			"INSERT INTO readings (system_id, gateway_id, panel, ts, vin, iin, pin, vout, temp, rssi, wh) VALUES (1, 1, 'A1', toDateTime64({ts:Int64}, 3, 'UTC'), 1, 1, 1, 1, 1, 1, 1)",
			"INSERT INTO system_rollup_1m (system_id, ts, samples, panels, wh, pin_sum, pin_max, temp_max, computed_at) VALUES (1, toDateTime({ts:Int64}, 'UTC'), 1, 1, 1, 1, 1, 1, now64(3))",
			"INSERT INTO system_rollup_1h (system_id, ts, samples, panels, wh, pin_sum, pin_max, temp_max, computed_at) VALUES (1, toDateTime({ts:Int64}, 'UTC'), 1, 1, 1, 1, 1, 1, now64(3))",
		} {
			if err := s.Exec(ctx, q, ts); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A 30-day retention: the readings of three months ago go.
	if err := s.SetRawRetention(ctx, 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRawRetention(ctx, 30*24*time.Hour); err != nil { // unchanged: nothing to do
		t.Fatal(err)
	}
	// Expiry runs in merges (the TTL bounds are recalculated in the
	// background first): merge until the rows are gone, a while at most.
	count := func(table string, want uint64) uint64 {
		var n uint64
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if err := s.Exec(ctx, "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
				t.Fatal(err)
			}
			if err := s.QueryRow(ctx, "SELECT count() FROM "+table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == want || time.Now().After(deadline) {
				return n
			}
		}
	}
	for table, want := range map[string]uint64{"readings": 1, "system_rollup_1m": 1, "system_rollup_1h": 2} {
		if got := count(table, want); got != want {
			t.Errorf("%s holds %d rows after expiry, want %d", table, got, want)
		}
	}
	if err := s.SetRawRetention(ctx, time.Minute); err == nil {
		t.Fatal("a retention under an hour was taken")
	}
}
