package bench

import (
	"context"

	"errors"
	"fmt"
	"github.com/ClickHouse/clickhouse-go/v2"
	"io"
	"time"

	"github.com/fleetscope/fleetscope/store"
)

// StoreInsertResult compares inserting the same rows into the readings
// schema through fleetscope's path (clickhouse-go → bridge → engine) and by
// the engine alone (the same rows as Native bytes, inserted directly).
type StoreInsertResult struct {
	BatchRows int
	Rounds    int
	// Bridge and Engine are the total times of all rounds of each path.
	Bridge, Engine time.Duration
}

// BridgeRate is rows per second through clickhouse-go.
func (r StoreInsertResult) BridgeRate() float64 {
	return float64(r.BatchRows*r.Rounds) / r.Bridge.Seconds()
}

// EngineRate is rows per second into the engine alone.
func (r StoreInsertResult) EngineRate() float64 {
	return float64(r.BatchRows*r.Rounds) / r.Engine.Seconds()
}

// Ratio is BridgeRate / EngineRate; the foundation's goal is ≥ 0.7 for
// 100 k-row batches.
func (r StoreInsertResult) Ratio() float64 { return r.BridgeRate() / r.EngineRate() }

func (r StoreInsertResult) Print(w io.Writer) {
	fmt.Fprintf(w, "store insert, %d-row batches × %d rounds into the readings schema\n", r.BatchRows, r.Rounds)
	fmt.Fprintf(w, "  engine alone (baseline)        %12.0f rows/s\n", r.EngineRate())
	fmt.Fprintf(w, "  clickhouse-go → bridge → engine %11.0f rows/s   ratio %.2f× (goal ≥ 0.70×)\n", r.BridgeRate(), r.Ratio())
}

// StoreInsert measures both paths in the same run, alternating rounds so
// that noise on the shared machine falls on both alike. It needs the
// embedded engine (the baseline runs on it) and creates scratch tables
// that it drops again.
func StoreInsert(ctx context.Context, s *store.Store, batchRows, rounds int) (StoreInsertResult, error) {
	eng := s.Embedded()
	if eng == nil {
		return StoreInsertResult{}, errors.New("bench store: the baseline needs the embedded engine (run without --clickhouse)")
	}
	res := StoreInsertResult{BatchRows: batchRows, Rounds: rounds}
	db := "`" + s.Database() + "`"
	for _, t := range []string{"bench_go", "bench_engine"} {
		if err := s.Exec(ctx, "CREATE OR REPLACE TABLE "+t+" AS readings"); err != nil {
			return res, err
		}
		defer s.Exec(context.Background(), "DROP TABLE IF EXISTS "+t)
	}
	// Insertion order is kept by a Memory table read with one thread, so
	// the baseline gets the very rows in the very order the Go path sends.
	if err := s.Exec(ctx, "CREATE OR REPLACE TABLE bench_src AS readings ENGINE = Memory"); err != nil {
		return res, err
	}
	defer s.Exec(context.Background(), "DROP TABLE IF EXISTS bench_src")
	cols := FleetColumns(1, batchRows, 30, time.Date(2026, 6, 21, 6, 0, 0, 0, time.UTC), time.Minute)
	if err := sendColumns(ctx, s, "bench_src", cols); err != nil {
		return res, err
	}
	// Repeated identical blocks would be dropped as duplicates, so both
	// paths insert with deduplication off.
	noDedup := map[string]string{"deduplicate_insert": "disable"}
	native, err := eng.Exec(ctx, "SELECT * FROM "+db+".bench_src FORMAT Native", nil, map[string]string{"max_threads": "1"})
	if err != nil {
		return res, err
	}
	goCtx := withSettings(ctx, noDedup)
	for range rounds {
		start := time.Now()
		if err := sendColumns(goCtx, s, "bench_go", cols); err != nil {
			return res, err
		}
		res.Bridge += time.Since(start)
		start = time.Now()
		if _, err := eng.Exec(ctx, "INSERT INTO "+db+".bench_engine FORMAT Native", native, noDedup); err != nil {
			return res, err
		}
		res.Engine += time.Since(start)
	}
	var a, b uint64
	if err := s.QueryRow(ctx, "SELECT (SELECT count() FROM bench_go), (SELECT count() FROM bench_engine)").Scan(&a, &b); err != nil {
		return res, err
	}
	if want := uint64(batchRows * rounds); a != want || b != want {
		return res, fmt.Errorf("bench store: inserted %d and %d rows, want %d each", a, b, want)
	}
	return res, nil
}

// readingColumns are the readings columns as the Go side encodes them. The
// panel label travels as a plain String and the engine converts it to the
// table's LowCardinality(String): clickhouse-go's LowCardinality encoder
// boxes every value and was the largest Go-side cost of a flush. Naming the
// types also spares a DESCRIBE TABLE round trip per batch.
var readingColumns = []clickhouse.ColumnNameAndType{
	{Name: "system_id", Type: "UInt32"}, {Name: "gateway_id", Type: "UInt32"}, {Name: "panel", Type: "String"},
	{Name: "ts", Type: "DateTime64(3, 'UTC')"}, {Name: "vin", Type: "UInt16"}, {Name: "iin", Type: "UInt16"},
	{Name: "pin", Type: "UInt16"}, {Name: "vout", Type: "UInt16"}, {Name: "temp", Type: "Int16"},
	{Name: "rssi", Type: "UInt8"}, {Name: "wh", Type: "UInt32"},
}

// sendColumns inserts cols with column-wise appends, the way ingest
// flushes.
func sendColumns(ctx context.Context, s *store.Store, table string, c *Columns) error {
	ctx = clickhouse.Context(ctx, clickhouse.WithColumnNamesAndTypes(readingColumns))
	b, err := s.PrepareBatch(ctx, "INSERT INTO "+table+" (system_id, gateway_id, panel, ts, vin, iin, pin, vout, temp, rssi, wh)")
	if err != nil {
		return err
	}
	for i, col := range []any{c.SystemID, c.GatewayID, c.Panel, c.TS, c.Vin, c.Iin, c.Pin, c.Vout, c.Temp, c.RSSI, c.Wh} {
		if err := b.Column(i).Append(col); err != nil {
			b.Abort()
			return fmt.Errorf("column %d: %w", i, err)
		}
	}
	return b.Send()
}
