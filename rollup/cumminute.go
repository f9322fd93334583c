package rollup

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// The minute cumulative table (store's system_energy_cum_1m) holds, for
// every minute m after its origin and up to its watermark, each system's
// energy over [origin, m) — a row for every system that had energy by then,
// whether or not it reported in minute m. Ordered by time, a fleet's rows
// at one minute are one range of the table, so the energy of any whole
// minutes [a, b) of every system is its row at b less its row at a: two
// rows per system, where the minute, quarter-hour and hour rollups read
// one per system and bucket from tables ordered by system (query's
// planFleetTiles).
//
// The origin is where the minute rollup stood when the table started —
// on an existing installation, the migration's time, not the first
// reading: counts are differences, so they need no history before it.
const (
	// CumMinuteName is the watermark (in rollup_watermarks) of
	// system_energy_cum_1m: it has its rows for every minute up to and
	// including it.
	CumMinuteName = "cum_1m"
	// CumMinuteOriginName is its origin: every count starts at zero there,
	// and the table has no row at or before it.
	CumMinuteOriginName = "cum_1m_origin"
)

// cumMinuteWindow bounds the minutes one statement writes: a row per
// system and minute, 12 M for 200 k systems at the default hour.
const cumMinuteWindow = time.Hour

// cumMinuteChunk bounds the systems one recomputation statement covers.
const cumMinuteChunk = 5000

// advanceCumMinute writes the minute cumulative rows of the minutes the
// minute rollup has closed since the last pass. Without a watermark yet
// the table starts at minuteFrom, where the minute rollup started this
// pass.
func (r *Worker) advanceCumMinute(ctx context.Context, wm map[string]time.Time, minuteFrom time.Time) error {
	closed := wm[Levels[0].Name]
	if closed.IsZero() {
		return nil
	}
	at := wm[CumMinuteName]
	if at.IsZero() {
		if minuteFrom.IsZero() || minuteFrom.After(closed) {
			minuteFrom = closed
		}
		at = minuteFrom.UTC().Truncate(time.Minute)
		if err := r.setWatermarkName(ctx, CumMinuteOriginName, at); err != nil {
			return err
		}
		if err := r.setWatermarkName(ctx, CumMinuteName, at); err != nil {
			return err
		}
	}
	for at.Before(closed) {
		to := earliest(closed, at.Add(cumMinuteWindow))
		if err := r.writeCumMinutes(ctx, at, to, nil); err != nil {
			return err
		}
		if err := r.setWatermarkName(ctx, CumMinuteName, to); err != nil {
			return err
		}
		at = to
	}
	wm[CumMinuteName] = at
	return nil
}

// writeCumMinutes writes the rows of the minutes (from, to] — of every
// system, or of systems only — from the rows at from and the minute
// rollup of [from, to), in one statement in the engine: per system its
// minutes' energies are laid out in an array by minute
// (groupArrayInsertAt), summed into running totals (arrayCumSum) and
// written back as a row per minute.
func (r *Worker) writeCumMinutes(ctx context.Context, from, to time.Time, systems []uint32) error {
	minutes := int(to.Sub(from) / time.Minute)
	if minutes <= 0 {
		return nil
	}
	args := []any{clickhouse.Named("from", strconv.FormatInt(from.Unix(), 10)), clickhouse.Named("to", strconv.FormatInt(to.Unix(), 10))}
	only := ""
	if systems != nil {
		only = " AND system_id IN {ps:Array(UInt32)}"
		args = append(args, clickhouse.Named("ps", systems))
	}
	// The array's size is a parameter of the aggregate function, which
	// the engine takes only as a literal: an integer this function
	// computed, never a caller's text.
	n := strconv.Itoa(minutes)
	sql := `INSERT INTO system_energy_cum_1m (ts, system_id, wh, computed_at)
SELECT toDateTime({from:Int64} + 60 * k, 'UTC'), system_id, base + running[k], now64(3)
FROM (
	SELECT system_id, sumIf(wh, minute = 0) AS base,
		arrayCumSum(groupArrayInsertAtIf(toUInt64(0), ` + n + `)(wh, toUInt32(minute - 1), minute > 0)) AS running
	FROM (
		SELECT system_id, wh, toUInt32(0) AS minute FROM system_energy_cum_1m FINAL
		WHERE ts = toDateTime({from:Int64}, 'UTC')` + only + `
		UNION ALL
		SELECT system_id, wh, toUInt32(intDiv(toInt64(toUnixTimestamp(ts)) - {from:Int64}, 60) + 1) FROM system_rollup_1m FINAL
		WHERE ts >= toDateTime({from:Int64}, 'UTC') AND ts < toDateTime({to:Int64}, 'UTC')` + only + `
	)
	GROUP BY system_id
)
ARRAY JOIN range(1, ` + n + ` + 1) AS k`
	if err := r.opts.Store.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("rollup: cumulative energy by minute %s–%s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	return nil
}

// recomputeCumMinute rewrites the minute cumulative rows of systems after
// late readings changed their minute rollups: since[i] is the earliest
// changed minute of systems[i]; every row after it up to the watermark
// upTo is written again. Systems go in chunks from the earliest minute any
// of the chunk's changed: a system's rows between that minute and its own
// come out as they were.
func (r *Worker) recomputeCumMinute(ctx context.Context, systems []uint32, since []time.Time, upTo time.Time) error {
	order := make([]int, len(systems))
	for i := range order {
		order[i] = i
	}
	// By earliest minute, so that a chunk's systems start close together.
	slices.SortFunc(order, func(a, b int) int { return since[a].Compare(since[b]) })
	for len(order) > 0 {
		n := min(len(order), cumMinuteChunk)
		chunk := make([]uint32, n)
		from := since[order[0]]
		for i, j := range order[:n] {
			chunk[i] = systems[j]
		}
		for at := from; at.Before(upTo); {
			to := earliest(upTo, at.Add(cumMinuteWindow))
			if err := r.writeCumMinutes(ctx, at, to, chunk); err != nil {
				return err
			}
			at = to
		}
		order = order[n:]
	}
	return nil
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
