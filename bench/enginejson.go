package bench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/fleetscope/fleetscope/ingest"
	"github.com/fleetscope/fleetscope/store"
)

// EngineJSONResult is the engine ingesting the readings itself, the way a
// team without fleetscope would: gateways' JSON rows sent as
// `INSERT … FORMAT JSONEachRow` in 1 M-row inserts into a Null table whose
// materialized view converts them into the readings table (the very table
// the migrations create), the merges that follow included. It is DESIGN
// §7's ingest-cost baseline.
type EngineJSONResult struct {
	Rows, Inserts int
	Bytes         int64         // JSON sent, all inserts
	Insert        time.Duration // wall time of the inserts
	InsertCPU     time.Duration // process CPU during the inserts
	// MergeCPU is the process CPU from the end of the last insert until
	// the engine ran no merge of the readings table and its part count had
	// not changed for settleQuiet; Settle is how long that took.
	MergeCPU time.Duration
	Settle   time.Duration
	// Parts are the readings table's active parts once settled.
	Parts uint64
}

// CPUPerRow is the engine's CPU per row, inserts and the merges that
// followed.
func (r EngineJSONResult) CPUPerRow() time.Duration {
	return perReading(r.InsertCPU+r.MergeCPU, uint64(r.Rows))
}

// InsertCPUPerRow is the engine's CPU per row during the inserts alone.
func (r EngineJSONResult) InsertCPUPerRow() time.Duration {
	return perReading(r.InsertCPU, uint64(r.Rows))
}

// Rate is rows per second of the inserts (merges not waited for).
func (r EngineJSONResult) Rate() float64 { return float64(r.Rows) / r.Insert.Seconds() }

// engineJSONRows is the rows of one JSONEachRow insert (the issue's "1 M-row
// inserts"); the JSON of one is about 190 MB.
const engineJSONRows = 1_000_000

// settleQuiet is how long the readings table must show no merge and an
// unchanged part count before merges count as settled.
const settleQuiet = 3 * time.Second

// jsonNullTable is what a gateway posts per reading, plus the gateway's
// system and id (which fleetscope takes from the gateway key).
const jsonNullTable = `CREATE TABLE bench_json_in (
	system_id UInt32, gateway_id UInt32, panel String, ts Int64,
	vin Float64, iin Float64, pin Float64, vout Float64, temp Float64, rssi Float64, wh Float64
) ENGINE = Null`

// jsonView converts posted readings into the readings table's storage
// scales (ingest.Scale*), as ingest.Reading.Scaled does.
var jsonView = fmt.Sprintf(`CREATE MATERIALIZED VIEW bench_json_mv TO readings AS SELECT
	system_id, gateway_id, panel, fromUnixTimestamp64Milli(ts, 'UTC') AS ts,
	toUInt16(round(vin * %d)) AS vin, toUInt16(round(iin * %d)) AS iin, toUInt16(round(pin * %d)) AS pin,
	toUInt16(round(vout * %d)) AS vout, toInt16(round(temp * %d)) AS temp, toUInt8(round(rssi)) AS rssi,
	toUInt32(round(wh * %d)) AS wh
FROM bench_json_in`, ingest.ScaleVolts, ingest.ScaleAmps, ingest.ScaleWatts, ingest.ScaleVolts, ingest.ScaleCelsius, ingest.ScaleWh)

// EngineJSON measures the embedded engine ingesting inserts × 1 M readings
// of gateways × panels as JSONEachRow (see EngineJSONResult), in a fresh
// temporary data directory with fleetscope's schema. The rows are what the
// load generator posts — the same simulated values, rounded to 2 decimals,
// timestamps in Unix ms — in arrival order: interval after interval, the
// gateways of each in a random order.
func EngineJSON(ctx context.Context, inserts, gateways, panels int) (EngineJSONResult, error) {
	res := EngineJSONResult{Inserts: inserts, Rows: inserts * engineJSONRows}
	dir, err := os.MkdirTemp("", "fleetscope-bench-enginejson-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	s, err := store.Open(ctx, store.Config{DataDir: dir, Logger: quietLogger()})
	if err != nil {
		return res, err
	}
	defer s.Close()
	eng := s.Embedded()
	if eng == nil {
		return res, fmt.Errorf("bench: the JSON baseline needs the embedded engine")
	}
	for _, q := range []string{jsonNullTable, jsonView} {
		if err := s.Exec(ctx, q); err != nil {
			return res, fmt.Errorf("bench: JSON baseline schema: %w", err)
		}
	}
	body := newJSONRows(gateways, panels, time.Now().Add(-time.Hour).Truncate(time.Second), time.Second)
	db := "`" + s.Database() + "`"
	insert := "INSERT INTO " + db + ".bench_json_in FORMAT JSONEachRow"
	// The body of each insert after the first is the same rows later by
	// the span of one insert (distinct rows, as a live fleet sends); the
	// patching is this process's work, not the engine's, so its thread's
	// CPU is taken off.
	var patchCPU time.Duration
	start, cpu0 := time.Now(), processCPU()
	for i := range inserts {
		if i > 0 {
			patchCPU += body.shift(body.span)
		}
		res.Bytes += int64(len(body.buf))
		if _, err := eng.Exec(ctx, insert, body.buf, nil); err != nil {
			return res, fmt.Errorf("bench: JSON baseline insert: %w", err)
		}
	}
	res.Insert = time.Since(start)
	cpu1 := processCPU()
	res.InsertCPU = cpu1 - cpu0 - patchCPU
	body = nil
	runtime.GC() // the body's 190 MB are not the engine's

	settled := time.Now()
	var lastParts uint64
	quietSince := time.Time{}
	cpuSettled := processCPU()
	for {
		var merges, parts uint64
		if err := s.QueryRow(ctx, "SELECT (SELECT count() FROM system.merges WHERE database = currentDatabase() AND table = 'readings'), "+
			"(SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = 'readings' AND active)").Scan(&merges, &parts); err != nil {
			return res, err
		}
		now := time.Now()
		switch {
		case merges > 0 || parts != lastParts || quietSince.IsZero():
			quietSince, lastParts = now, parts
			cpuSettled = processCPU()
			settled = now
		case now.Sub(quietSince) >= settleQuiet:
			res.MergeCPU = cpuSettled - cpu1
			res.Settle = settled.Sub(start) - res.Insert
			res.Parts = parts
			var n uint64
			if err := s.QueryRow(ctx, "SELECT count() FROM readings").Scan(&n); err != nil {
				return res, err
			}
			if n != uint64(res.Rows) {
				return res, fmt.Errorf("bench: JSON baseline stored %d rows, want %d", n, res.Rows)
			}
			return res, nil
		}
		if now.Sub(start) > 10*time.Minute {
			return res, fmt.Errorf("bench: JSON baseline: merges did not settle within 10 minutes")
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// jsonRows is one insert's JSONEachRow body with the position and value of
// every timestamp, so that later inserts shift them in place.
type jsonRows struct {
	buf  []byte
	tsAt []int32
	ts   []int64
	span int64 // ms from the first interval to the one after the last
}

func newJSONRows(gateways, panels int, start time.Time, step time.Duration) *jsonRows {
	rng := rand.New(rand.NewPCG(1, 0x150))
	labels := PanelLabels(panels)
	j := &jsonRows{buf: make([]byte, 0, engineJSONRows*200), tsAt: make([]int32, 0, engineJSONRows), ts: make([]int64, 0, engineJSONRows)}
	readings := make([]ingest.Reading, panels)
	var line []byte
	rows := 0
	t := start
	for ; rows < engineJSONRows; t = t.Add(step) {
		for _, g := range rng.Perm(gateways) {
			sys := strconv.Itoa(g + 1)
			n := min(panels, engineJSONRows-rows)
			for p := range n {
				r := Simulate(rng, t, step, 400)
				readings[p] = ingest.Reading{Panel: []byte(labels[p]), TS: t.UnixMilli(),
					Vin: round2(r.Vin), Iin: round2(r.Iin), Pin: round2(r.Pin), Vout: round2(r.Vout),
					Temp: round2(r.Temp), RSSI: r.RSSI, Wh: round2(r.Wh)}
			}
			// The gateway's NDJSON body without its seq line, each
			// reading prefixed with the gateway's system and id.
			line = ingest.AppendNDJSON(line[:0], 0, readings[:n])
			line = line[bytes.IndexByte(line, '\n')+1:]
			for len(line) > 0 {
				i := bytes.IndexByte(line, '\n')
				j.buf = append(j.buf, `{"system_id":`+sys+`,"gateway_id":`+sys+`,`...)
				at := len(j.buf) + bytes.Index(line, []byte(`"ts":`)) - 1 + len(`"ts":`)
				j.tsAt = append(j.tsAt, int32(at))
				j.ts = append(j.ts, t.UnixMilli())
				j.buf = append(j.buf, line[1:i+1]...)
				line = line[i+1:]
			}
			if rows += n; rows == engineJSONRows {
				break
			}
		}
	}
	j.span = t.Sub(start).Milliseconds()
	return j
}

// shift moves every timestamp d ms later in place and returns the CPU this
// thread spent on it.
func (j *jsonRows) shift(d int64) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0 := threadCPU()
	var num [20]byte
	for i, at := range j.tsAt {
		j.ts[i] += d
		digits := strconv.AppendInt(num[:0], j.ts[i], 10)
		if len(digits) != 13 {
			panic("bench: timestamps must stay 13 digits")
		}
		copy(j.buf[at:at+13], digits)
	}
	return threadCPU() - c0
}
