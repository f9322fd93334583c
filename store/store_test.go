package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"

	"github.com/fleetscope/fleetscope/internal/storetest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestMillionRowBatchReadsBackExactly(t *testing.T) {
	s := storetest.Open(t)
	ctx := ctxT(t)
	if err := s.Exec(ctx, `CREATE TABLE big (id UInt64, system_id UInt32, panel LowCardinality(String), v Float64, s String) ENGINE = MergeTree ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	const n = 1_000_000
	ids := make([]uint64, n)
	sys := make([]uint32, n)
	panels := make([]string, n)
	vals := make([]float64, n)
	strs := make([]string, n)
	var wantSys uint64
	var wantV float64
	var wantLen uint64
	for i := range n {
		ids[i] = uint64(i)
		sys[i] = uint32(i % 7919)
		panels[i] = fmt.Sprintf("P%d", i%32)
		vals[i] = float64(i%1000) / 8 // exactly representable: the sum is exact
		strs[i] = fmt.Sprintf("row-%d", i)
		wantSys += uint64(sys[i])
		wantV += vals[i]
		wantLen += uint64(len(strs[i]))
	}
	b, err := s.PrepareBatch(ctx, "INSERT INTO big")
	if err != nil {
		t.Fatal(err)
	}
	for i, col := range []any{ids, sys, panels, vals, strs} {
		if err := b.Column(i).Append(col); err != nil {
			t.Fatalf("column %d: %v", i, err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	var (
		count, sumID, sumSys, sumLen uint64
		sumV                         float64
		distinctPanels               uint64
	)
	if err := s.QueryRow(ctx, "SELECT count(), sum(id), sum(system_id), sum(v), sum(length(s)), uniqExact(panel) FROM big").
		Scan(&count, &sumID, &sumSys, &sumV, &sumLen, &distinctPanels); err != nil {
		t.Fatal(err)
	}
	if count != n || sumID != n*(n-1)/2 || sumSys != wantSys || sumV != wantV || sumLen != wantLen || distinctPanels != 32 {
		t.Fatalf("read back count=%d sum(id)=%d sum(system_id)=%d (want %d) sum(v)=%v (want %v) sum(len)=%d (want %d) panels=%d",
			count, sumID, sumSys, wantSys, sumV, wantV, sumLen, wantLen, distinctPanels)
	}
	// And row by row through Query/Scan: the first and last rows.
	rows, err := s.Query(ctx, "SELECT id, panel, s FROM big WHERE id IN (0, 999999) ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id uint64
		var p, str string
		if err := rows.Scan(&id, &p, &str); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d/%s/%s", id, p, str))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[0/P0/row-0 999999/P31/row-999999]" {
		t.Fatalf("rows = %v", got)
	}
}

func TestAppendAndAppendStruct(t *testing.T) {
	s := storetest.Open(t)
	ctx := ctxT(t)
	if err := s.Exec(ctx, `CREATE TABLE r (system_id UInt32, panel String, ts DateTime64(3, 'UTC'), pin Float32) ENGINE = MergeTree ORDER BY (system_id, panel, ts)`); err != nil {
		t.Fatal(err)
	}
	type row struct {
		SystemID uint32    `ch:"system_id"`
		Panel    string    `ch:"panel"`
		TS       time.Time `ch:"ts"`
		Pin      float32   `ch:"pin"`
	}
	ts := time.UnixMilli(1763798400123).UTC()
	b, err := s.PrepareBatch(ctx, "INSERT INTO r")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint32(7), "A1", ts, float32(347.5)); err != nil {
		t.Fatal(err)
	}
	if err := b.AppendStruct(&row{SystemID: 7, Panel: "A2", TS: ts.Add(time.Second), Pin: 12.25}); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	var got []row
	rows, err := s.Query(ctx, "SELECT system_id, panel, ts, pin FROM r ORDER BY panel")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r row
		if err := rows.ScanStruct(&r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	rows.Close()
	if len(got) != 2 || got[0].Panel != "A1" || !got[0].TS.Equal(ts) || got[0].Pin != 347.5 ||
		got[1].Panel != "A2" || !got[1].TS.Equal(ts.Add(time.Second)) || got[1].Pin != 12.25 {
		t.Fatalf("rows = %+v", got)
	}
}

func TestNamedAndArrayParameters(t *testing.T) {
	s := storetest.Open(t)
	ctx := ctxT(t)
	var (
		sum   uint64
		name  string
		elems []uint32
		has   uint8
	)
	err := s.QueryRow(ctx, "SELECT {a:UInt64} + {b:UInt64}, {name:String}, {ids:Array(UInt32)}, has({ids:Array(UInt32)}, 3)",
		clickhouse.Named("a", "40"), clickhouse.Named("b", "2"),
		clickhouse.Named("name", "O'Brien; DROP TABLE x --"),
		clickhouse.Named("ids", []uint32{1, 2, 3}),
	).Scan(&sum, &name, &elems, &has)
	if err != nil {
		t.Fatal(err)
	}
	if sum != 42 || name != "O'Brien; DROP TABLE x --" || fmt.Sprint(elems) != "[1 2 3]" || has != 1 {
		t.Fatalf("got %d %q %v %d", sum, name, elems, has)
	}
}

func TestBadStatementIsException(t *testing.T) {
	s := storetest.Open(t)
	ctx := ctxT(t)
	cases := []struct {
		name string
		run  func() error
		code int32
	}{
		{"syntax error in Exec", func() error { return s.Exec(ctx, "SELEC 1") }, 62},
		{"unknown table in Query", func() error {
			rows, err := s.Query(ctx, "SELECT * FROM no_such_table")
			if err == nil {
				rows.Close()
			}
			return err
		}, 60},
		{"unknown identifier in QueryRow", func() error { var x int; return s.QueryRow(ctx, "SELECT nosuch").Scan(&x) }, 47},
		{"insert into unknown table", func() error {
			_, err := s.PrepareBatch(ctx, "INSERT INTO missing_table")
			return err
		}, 60},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.run()
			var ex *clickhouse.Exception
			if !errors.As(err, &ex) {
				t.Fatalf("error %v (%T) is not a *clickhouse.Exception", err, err)
			}
			if ex.Code != c.code {
				t.Fatalf("code = %d, want %d (%v)", ex.Code, c.code, ex)
			}
		})
	}
}

func TestPerQuerySettings(t *testing.T) {
	s := storetest.Open(t)
	ctx := ctxT(t)
	read := func(ctx context.Context) string {
		var v string
		if err := s.QueryRow(ctx, "SELECT toString(getSetting('max_block_size'))").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	def := read(ctx)
	withSetting := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_block_size": 1234}))
	if got := read(withSetting); got != "1234" {
		t.Fatalf("with setting: %s", got)
	}
	// The next statement without the setting sees the default again, on
	// whichever session it lands.
	for range 10 {
		if got := read(ctx); got != def {
			t.Fatalf("setting leaked: %s, default %s", got, def)
		}
	}
	bad := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"no_such_setting": 1}))
	var ex *clickhouse.Exception
	if err := s.Exec(bad, "SELECT 1"); !errors.As(err, &ex) || ex.Code != 115 {
		t.Fatalf("unknown setting: %v", err)
	}
	if got := read(ctx); got != def {
		t.Fatalf("after failed SET: %s", got)
	}
}

func TestExternalTable(t *testing.T) {
	s := storetest.Open(t)
	ctx := ctxT(t)
	tbl, err := ext.NewTable("ids", ext.Column("id", "UInt32"), ext.Column("label", "String"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := tbl.Append(uint32(i), fmt.Sprintf("l%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	var sum uint64
	var n uint64
	qctx := clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl))
	if err := s.QueryRow(qctx, "SELECT sum(id), countIf(startsWith(label, 'l')) FROM ids").Scan(&sum, &n); err != nil {
		t.Fatal(err)
	}
	if sum != 4950 || n != 100 {
		t.Fatalf("sum=%d n=%d", sum, n)
	}
	// The temporary table is gone afterwards.
	if err := s.Exec(ctx, "SELECT * FROM ids"); err == nil {
		t.Fatal("external table outlived its statement")
	}
}

func TestCancelledContextStopsLongQuery(t *testing.T) {
	s := storetest.Open(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	start := time.Now()
	time.AfterFunc(300*time.Millisecond, cancel)
	var n uint64
	err := s.QueryRow(ctx, "SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) % 7 = 1").Scan(&n)
	if err == nil {
		t.Fatal("long query finished despite cancellation")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// The engine really stopped: the query no longer runs.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var running uint64
		if err := s.QueryRow(ctxT(t), "SELECT count() FROM system.processes WHERE query LIKE '%sipHash64(number) % 7%' AND query NOT LIKE '%system.processes%'").Scan(&running); err != nil {
			t.Fatal(err)
		}
		if running == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("query still running %v after cancel", time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConcurrentInsertsAndSelects(t *testing.T) {
	s := storetest.Open(t)
	ctx := ctxT(t)
	if err := s.Exec(ctx, `CREATE TABLE c (worker UInt8, i UInt32, v UInt64) ENGINE = MergeTree ORDER BY (worker, i)`); err != nil {
		t.Fatal(err)
	}
	const workers, rounds, per = 8, 20, 500
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			var total uint64
			for r := range rounds {
				b, err := s.PrepareBatch(ctx, "INSERT INTO c")
				if err != nil {
					errs <- err
					return
				}
				for i := range per {
					v := rng.Uint64N(1000)
					total += v
					if err := b.Append(uint8(w), uint32(r*per+i), v); err != nil {
						errs <- err
						return
					}
				}
				if err := b.Send(); err != nil {
					errs <- err
					return
				}
				// Read-your-writes: this worker's rows are all there.
				var n, sum uint64
				if err := s.QueryRow(ctx, "SELECT count(), sum(v) FROM c WHERE worker = {w:UInt8}", clickhouse.Named("w", fmt.Sprint(w))).Scan(&n, &sum); err != nil {
					errs <- err
					return
				}
				if n != uint64((r+1)*per) || sum != total {
					errs <- fmt.Errorf("worker %d round %d: count %d sum %d, want %d %d", w, r, n, sum, (r+1)*per, total)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var n uint64
	if err := s.QueryRow(ctx, "SELECT count() FROM c").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != workers*rounds*per {
		t.Fatalf("count %d", n)
	}
}

func TestServerVersionAndPing(t *testing.T) {
	s := storetest.Open(t)
	if err := s.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	v, err := s.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.Version.Major < 25 {
		t.Fatalf("engine version %v", v.Version)
	}
}

func TestColumnTypesSurviveBridge(t *testing.T) {
	s := storetest.Open(t)
	ctx := ctxT(t)
	rows, err := s.Query(ctx, "SELECT toUInt32(1) AS a, 'x' AS b, [1,2]::Array(UInt16) AS c, toDateTime64('2025-11-22 08:00:00.123', 3, 'UTC') AS d, NULL::Nullable(Float64) AS e")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var got []string
	for _, ct := range types {
		got = append(got, ct.DatabaseTypeName())
	}
	if fmt.Sprint(got) != "[UInt32 String Array(UInt16) DateTime64(3, 'UTC') Nullable(Float64)]" {
		t.Fatalf("types %v", got)
	}
}
