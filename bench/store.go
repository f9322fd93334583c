package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/fleetscope/fleetscope/store"
)

// StoreInsertResult compares inserting the same rows into the readings
// schema through fleetscope's path (clickhouse-go → bridge → engine) and by
// the engine alone (the same rows as Native bytes, inserted directly).
type StoreInsertResult struct {
	BatchRows int
	Rounds    int
	// Bridge and Engine are the total times of all rounds of each path;
	// BridgeCPU and EngineCPU the CPU this process used meanwhile (the
	// engine's merges of earlier rounds included: they are a cost of
	// inserting).
	Bridge, Engine       time.Duration
	BridgeCPU, EngineCPU time.Duration
}

// EngineCPUPerRow is the engine's CPU per row inserted.
func (r StoreInsertResult) EngineCPUPerRow() time.Duration {
	return perReading(r.EngineCPU, uint64(r.BatchRows*r.Rounds))
}

// BridgeCPUPerRow is the CPU per row inserted through clickhouse-go.
func (r StoreInsertResult) BridgeCPUPerRow() time.Duration {
	return perReading(r.BridgeCPU, uint64(r.BatchRows*r.Rounds))
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

// StoreInsert inserts cols as one batch, rounds times by each path,
// alternating rounds so that noise on the shared machine falls on both
// alike. It needs the embedded engine (the baseline runs on it) and creates
// scratch tables that it drops again.
func StoreInsert(ctx context.Context, s *store.Store, cols *Columns, rounds int) (StoreInsertResult, error) {
	batchRows := cols.Len()
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
	if err := sendColumns(ctx, s, "bench_src", cols); err != nil {
		return res, err
	}
	// Each round's readings are the batch a millisecond later than the
	// round before: readings is a ReplacingMergeTree keyed by (system,
	// panel, ts), whose merges would otherwise fold the rounds into one,
	// and identical blocks would be dropped as duplicates (deduplication is
	// off for both paths too).
	noDedup := map[string]string{"deduplicate_insert": "disable"}
	goCtx := withSettings(ctx, noDedup)
	defer func() {
		for i := range cols.TS {
			cols.TS[i] -= int64(rounds)
		}
	}()
	for round := 1; round <= rounds; round++ {
		for i := range cols.TS {
			cols.TS[i]++
		}
		native, err := eng.Exec(ctx, "SELECT * REPLACE (ts + toIntervalMillisecond("+strconv.Itoa(round)+") AS ts) FROM "+db+".bench_src FORMAT Native",
			nil, map[string]string{"max_threads": "1"})
		if err != nil {
			return res, err
		}
		start, cpu := time.Now(), processCPU()
		if err := sendColumns(goCtx, s, "bench_go", cols); err != nil {
			return res, err
		}
		res.Bridge += time.Since(start)
		res.BridgeCPU += processCPU() - cpu
		start, cpu = time.Now(), processCPU()
		if _, err := eng.Exec(ctx, "INSERT INTO "+db+".bench_engine FORMAT Native", native, noDedup); err != nil {
			return res, err
		}
		res.Engine += time.Since(start)
		res.EngineCPU += processCPU() - cpu
	}
	// Counted with FINAL, so that a round a merge would fold into another
	// fails the check whether or not the merge ran yet.
	var a, b uint64
	if err := s.QueryRow(ctx, "SELECT (SELECT count() FROM bench_go FINAL), (SELECT count() FROM bench_engine FINAL)").Scan(&a, &b); err != nil {
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

// StorageResult is the readings table's footprint on disk.
type StorageResult struct {
	Rows    uint64
	Bytes   uint64            // compressed, all columns
	Columns map[string]uint64 // compressed bytes per column
}

// BytesPerReading is the compressed size of one reading on disk.
func (r StorageResult) BytesPerReading() float64 { return float64(r.Bytes) / float64(r.Rows) }

func (r StorageResult) Print(w io.Writer) {
	fmt.Fprintf(w, "storage: %d readings, %.2f bytes per reading on disk (target ≤ 8)\n", r.Rows, r.BytesPerReading())
	for _, c := range []string{"system_id", "gateway_id", "panel", "ts", "vin", "iin", "pin", "vout", "temp", "rssi", "wh"} {
		fmt.Fprintf(w, "  %-10s %6.2f bytes/reading\n", c, float64(r.Columns[c])/float64(r.Rows))
	}
}

// Storage fills a table of the readings schema with a realistic fleet —
// systems of 30 panels reporting every minute for days, values on the
// diurnal curve with noise — merges it into one part and reports the
// compressed bytes per reading, per column.
func Storage(ctx context.Context, s *store.Store, systems, days int) (StorageResult, error) {
	res := StorageResult{Columns: map[string]uint64{}}
	if err := s.Exec(ctx, "CREATE OR REPLACE TABLE bench_storage AS readings"); err != nil {
		return res, err
	}
	defer s.Exec(context.Background(), "DROP TABLE IF EXISTS bench_storage")
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for d := range days {
		// One day of one-minute readings for every system, in time order
		// as gateways deliver it.
		cols := &Columns{}
		rng := rand.New(rand.NewPCG(uint64(d), 7))
		labels := PanelLabels(30)
		for m := 0; m < 24*60; m++ {
			ts := start.Add(time.Duration(d*24*60+m) * time.Minute)
			for sys := 1; sys <= systems; sys++ {
				for p := 0; p < 30; p++ {
					r := Simulate(rng, ts, time.Minute, 380+float64(p%4)*10)
					cols.add(uint32(sys), uint32(sys), labels[p], ts, uint16(r.Vin*100), uint16(r.Iin*1000), uint16(r.Pin*10),
						uint16(r.Vout*100), int16(r.Temp*10), uint8(r.RSSI), uint32(r.Wh*1000))
				}
			}
		}
		if err := sendColumns(ctx, s, "bench_storage", cols); err != nil {
			return res, err
		}
	}
	if err := s.Exec(ctx, "OPTIMIZE TABLE bench_storage FINAL"); err != nil {
		return res, err
	}
	rows, err := s.Query(ctx, "SELECT name, data_compressed_bytes FROM system.columns WHERE database = currentDatabase() AND table = 'bench_storage'")
	if err != nil {
		return res, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var b uint64
		if err := rows.Scan(&name, &b); err != nil {
			return res, err
		}
		res.Columns[name] = b
		res.Bytes += b
	}
	if err := rows.Err(); err != nil {
		return res, err
	}
	err = s.QueryRow(ctx, "SELECT count() FROM bench_storage").Scan(&res.Rows)
	return res, err
}
