package query

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleetscope/fleetscope/rollup"
)

// History plans. The rollup worker (package rollup) computes closed buckets
// of each level — 1 min from raw readings, 15 min from 1 min, 1 h from 15
// min, 1 day from 1 h — and records per level a watermark: every bucket
// before it is computed. A range is answered by tiles: the coarsest level
// allowed covers the whole buckets inside [from, to) up to its watermark,
// and the edges — an unaligned start, the stretch after the watermark — are
// planned again one level finer, down to raw readings for what no rollup
// covers yet (at most the rollup's lateness, ~2 min, plus a partial minute).
// All tiles go into one statement as a UNION ALL and are added up per
// bucket, so an answer is exact and current whatever the rollup's lag, and
// costs about one row per bucket.
//
// Rollup rows are ReplacingMergeTree rows (a late reading recomputes its
// bucket as a new row version), read with FINAL. The partition key (month
// of ts) is part of each row's identity, so versions of one row never
// straddle partitions and FINAL may skip merging across them
// (do_not_merge_across_partitions_select_final).

// levelRaw is the raw readings table in a tile.
const levelRaw = -1

// tile is part of a range served by one level (or raw readings).
type tile struct {
	level    int
	from, to time.Time
}

// planTiles covers [from, to) with tiles of levels up to top (an index of
// rollup.Levels), coarsest first where whole buckets fit under the level's
// watermark, finer at the edges. Without raw, what no rollup covers yet is
// left out; the tiles then cover [from, until). With raw, a stretch of at
// most rawBelow is read raw at once rather than split over finer rollups:
// for one system a few thousand readings cost less than another subquery.
func planTiles(from, to time.Time, top int, wm [4]time.Time, raw bool, rawBelow time.Duration) []tile {
	var out []tile
	var plan func(lo, hi time.Time, c int)
	plan = func(lo, hi time.Time, c int) {
		if !lo.Before(hi) {
			return
		}
		if raw && hi.Sub(lo) <= rawBelow {
			c = -1
		}
		if c < 0 {
			if raw {
				out = append(out, tile{level: levelRaw, from: lo, to: hi})
			}
			return
		}
		step := rollup.Levels[c].Step
		a := ceilTime(lo, step)
		end := hi
		if wm[c].Before(end) {
			end = wm[c]
		}
		b := end.Truncate(step)
		if !a.Before(b) {
			plan(lo, hi, c-1)
			return
		}
		plan(lo, a, c-1)
		out = append(out, tile{level: c, from: a, to: b})
		plan(b, hi, c-1)
	}
	plan(from, to, top)
	slices.SortFunc(out, func(a, b tile) int { return a.from.Compare(b.from) })
	return out
}

func ceilTime(t time.Time, d time.Duration) time.Time {
	f := t.Truncate(d)
	if f.Before(t) {
		return f.Add(d)
	}
	return f
}

// tileGroup is the tiles of one level, queried by one subquery whose
// condition ORs their ranges: fewer subqueries, each with a fixed cost of a
// few milliseconds in the engine, while the primary key still prunes every
// range.
type tileGroup struct {
	level int
	cond  string // (ts >= … AND ts < …) OR …
}

// groupTiles groups tiles by level, coarsest first, appending the range
// parameters to args.
func groupTiles(tiles []tile, args []any) ([]tileGroup, []any) {
	var groups []tileGroup
	for level := len(rollup.Levels) - 1; level >= levelRaw; level-- {
		var conds []string
		for _, t := range tiles {
			if t.level != level {
				continue
			}
			f, tt := fmt.Sprintf("f%d", len(args)), fmt.Sprintf("t%d", len(args))
			if level == levelRaw {
				args = append(args, msArg(f, t.from), msArg(tt, t.to))
				conds = append(conds, "(ts >= fromUnixTimestamp64Milli({"+f+":Int64}, 'UTC') AND ts < fromUnixTimestamp64Milli({"+tt+":Int64}, 'UTC'))")
			} else {
				args = append(args, secArg(f, t.from), secArg(tt, t.to))
				conds = append(conds, "(ts >= toDateTime({"+f+":Int64}, 'UTC') AND ts < toDateTime({"+tt+":Int64}, 'UTC'))")
			}
		}
		if len(conds) > 0 {
			groups = append(groups, tileGroup{level: level, cond: "(" + strings.Join(conds, " OR ") + ")"})
		}
	}
	return groups, args
}

// rawStretch is the longest stretch of one system's history read raw
// rather than from finer rollups: an hour is 1,800 readings of a 30-panel
// system, less work than a subquery.
const rawStretch = time.Hour

// tilesEnd is where contiguous tiles starting at from end.
func tilesEnd(tiles []tile, from time.Time) time.Time {
	end := from
	for _, t := range tiles {
		if t.from.After(end) {
			break
		}
		if t.to.After(end) {
			end = t.to
		}
	}
	return end
}

// wmCache keeps the rollup watermarks. A stale watermark is older than the
// true one, which only moves work to finer levels, never makes an answer
// wrong; so requests use the cached ones and a stale cache is refreshed in
// the background, off the request path. Only the first request waits.
type wmCache struct {
	mu         sync.Mutex
	at         time.Time
	wm         [4]time.Time
	cum        time.Time // system_energy_cum is complete up to this day
	minute     timeSpan  // system_energy_cum_1m: its origin and watermark
	refreshing bool
}

// wmTTL is how old cached watermarks may get before a refresh starts: the
// rollup worker moves them every 10 s.
const wmTTL = 2 * time.Second

func (s *Service) watermarks(ctx context.Context) ([4]time.Time, error) {
	s.wm.mu.Lock()
	wm, at := s.wm.wm, s.wm.at
	stale := time.Since(at) >= wmTTL
	if !at.IsZero() {
		if stale && !s.wm.refreshing {
			s.wm.refreshing = true
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), s.opts.HistoryTimeout)
				defer cancel()
				s.loadWatermarks(ctx) // on failure the next request retries
			}()
		}
		s.wm.mu.Unlock()
		return wm, nil
	}
	s.wm.mu.Unlock()
	return s.loadWatermarks(ctx)
}

func (s *Service) loadWatermarks(ctx context.Context) ([4]time.Time, error) {
	defer func() {
		s.wm.mu.Lock()
		s.wm.refreshing = false
		s.wm.mu.Unlock()
	}()
	rows, err := s.opts.Store.Query(ctx, "SELECT level, watermark FROM rollup_watermarks FINAL")
	if err != nil {
		return [4]time.Time{}, fmt.Errorf("query: rollup watermarks: %w", err)
	}
	defer rows.Close()
	var wm [4]time.Time
	var cum time.Time
	var minute timeSpan
	for rows.Next() {
		var level string
		var at time.Time
		if err := rows.Scan(&level, &at); err != nil {
			return wm, fmt.Errorf("query: rollup watermarks: %w", err)
		}
		for i, l := range rollup.Levels {
			if l.Name == level && i < len(wm) {
				wm[i] = at.UTC()
			}
		}
		switch level {
		case rollup.CumName:
			cum = at.UTC()
		case rollup.CumMinuteName:
			minute.to = at.UTC()
		case rollup.CumMinuteOriginName:
			minute.from = at.UTC()
		}
	}
	if err := rows.Err(); err != nil {
		return wm, fmt.Errorf("query: rollup watermarks: %w", err)
	}
	s.wm.mu.Lock()
	prev := s.wm.minute.to
	s.wm.wm, s.wm.cum, s.wm.minute, s.wm.at = wm, cum, minute, time.Now()
	s.wm.mu.Unlock()
	if s.tiles != nil {
		s.tiles.advanced(prev, minute.to)
	}
	return wm, nil
}

// cumWatermark is the cached watermark of system_energy_cum, as of the last
// watermarks call.
func (s *Service) cumWatermark() time.Time {
	s.wm.mu.Lock()
	defer s.wm.mu.Unlock()
	return s.wm.cum
}

// cumMinute is the cached span of system_energy_cum_1m, as of the last
// watermarks call: empty until the rollup worker has started it. Where
// the table's rows age out (Options.MinuteRetention), the span starts no
// earlier than what is surely still there.
func (s *Service) cumMinute() timeSpan {
	s.wm.mu.Lock()
	sp := s.wm.minute
	s.wm.mu.Unlock()
	if r := s.opts.MinuteRetention; r > 0 {
		// A day's margin: the rows of a minute older than the retention
		// go with their whole part, some time after.
		sp.from = maxTime(sp.from, s.opts.Now().UTC().Add(-r+24*time.Hour).Truncate(time.Minute))
	}
	if sp.from.IsZero() || sp.to.IsZero() {
		return timeSpan{}
	}
	return sp
}

// levelCum in a tile is system_energy_cum: whole UTC days [from, to) as two
// rows per system (see planFleetTiles).
const levelCum = 100

// levelCumMinute in a tile is system_energy_cum_1m: any minutes [from, to)
// it covers as two rows per system — one when from is its origin, before
// which every system's count is zero.
const levelCumMinute = 101

// timeSpan is a stretch of time [from, to).
type timeSpan struct{ from, to time.Time }

// planFleetTiles covers [from, to) for fleet-wide sums. Whole days that
// system_energy_cum has (up to cumWM) are one levelCum tile; otherwise the
// minutes system_energy_cum_1m covers (minute, its origin to its
// watermark) are one levelCumMinute tile. Each is the rows at its two ends
// per system — both tables are ordered by time, so a fleet's rows at one
// instant are one contiguous range — where a rollup reads a row per system
// and bucket, spread over a table ordered by system. What neither covers (a
// range older than the minute table, or past its watermark) is tiled by the
// rollups (planDayTiles).
func planFleetTiles(from, to time.Time, wm [4]time.Time, cumWM time.Time, minute timeSpan) []tile {
	wholeDays := from.Equal(from.Truncate(24*time.Hour)) && to.Equal(to.Truncate(24*time.Hour)) &&
		!to.After(cumWM) && to.Sub(from) >= 48*time.Hour
	a, b := maxTime(from, minute.from), minTime(to, minute.to)
	if wholeDays || !a.Before(b) {
		return planDayTiles(from, to, wm, cumWM)
	}
	out := planDayTiles(from, a, wm, cumWM)
	out = append(out, tile{level: levelCumMinute, from: a, to: b})
	return append(out, planDayTiles(b, to, wm, cumWM)...)
}

// planDayTiles covers [from, to) with one levelCum tile for the whole days
// system_energy_cum has, when there are at least two, and the rest by
// rollup tiles (planTiles, no raw readings).
func planDayTiles(from, to time.Time, wm [4]time.Time, cumWM time.Time) []tile {
	if !from.Before(to) {
		return nil
	}
	a, b := ceilTime(from, 24*time.Hour), to.Truncate(24*time.Hour)
	if cumWM.Before(b) {
		b = cumWM
	}
	top := len(rollup.Levels) - 1
	if b.Sub(a) < 48*time.Hour {
		return planTiles(from, to, top, wm, false, 0)
	}
	out := planTiles(from, a, top, wm, false, 0)
	out = append(out, tile{level: levelCum, from: a, to: b})
	return append(out, planTiles(b, to, top, wm, false, 0)...)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
