package query

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/RoaringBitmap/roaring/v2"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/store"
)

// Energy tiles. A fleet energy range that the cumulative tables cover is
// each system's row at the range's end less its row at the start (see
// planFleetTiles); in the engine that is two rows per system filtered by
// the caller's bitmap and summed by system, ~70 ms for a 200 k-system
// caller on 2 cores, most of it the bitmap filter and the GROUP BY. A tile
// here is one of those instants whole: every system's cumulative energy at
// one timestamp of one table, as an array indexed by system id, read once
// (~35 ms for 370 k rows) and then shared by every request that ends or
// starts there — another page, another sort, another user of the same
// fleet, the dashboard's next refresh. An answer from tiles is a pass over
// the caller's bitmap, a few milliseconds.
//
// Freshness: rows at an instant change only when the rollup worker writes
// them again (late readings, a rewind), on any node. Each request takes the
// names of the table's active parts that hold its instants (system.parts,
// metadata only, ~2 ms): an insert adds a part and a merge replaces parts,
// so a tile whose parts are not those it was read from is read again. An
// answer from tiles is therefore the same as the engine's at that moment.

// The cumulative tables tiles are read from.
const (
	cumTable       = "system_energy_cum"
	cumMinuteTable = "system_energy_cum_1m"
)

// energyTileKey names a tile: a cumulative table and an instant.
type energyTileKey struct {
	table string // cumTable or cumMinuteTable
	ts    int64  // Unix seconds
}

// tileRead is a tile an answer adds (sign +1) or subtracts (-1).
type tileRead struct {
	key  energyTileKey
	sign int64
}

// energyReads lists the tiles that answer a range tiled as tiles, or false
// when a tile is not a cumulative one (edges from the rollups, which only
// the engine sums). No tiles (nothing rolled up yet) is no reads: every
// system at zero.
func energyReads(tiles []tile, minute timeSpan) ([]tileRead, bool) {
	var out []tileRead
	for _, t := range tiles {
		var table string
		switch t.level {
		case levelCum:
			table = cumTable
		case levelCumMinute:
			table = cumMinuteTable
		default:
			return nil, false
		}
		// From the minute table's origin every count is zero: no row there.
		if t.level != levelCumMinute || !t.from.Equal(minute.from) {
			out = append(out, tileRead{key: energyTileKey{table, t.from.Unix()}, sign: -1})
		}
		out = append(out, tileRead{key: energyTileKey{table, t.to.Unix()}, sign: +1})
	}
	return out, true
}

// energyTiles keeps tiles in memory up to a byte budget, the least
// recently used going first.
//
// Besides the reads a large caller's request makes, tiles are read in the
// background (one at a time, off the request path) when they are likely
// to pay: once the smaller callers whose requests the engine answered
// asked for a tile with systems adding up to a quarter of its rows — what
// they would have saved had it been in memory — and, when the minute
// cumulative table moves on, the tile of its newest minute if the previous
// newest was in use: it is the end of every range "to now".
type energyTiles struct {
	store   *store.Store
	limit   int64
	m       *metrics
	seed    maphash.Seed
	now     func() time.Time
	ids     func() int         // every system id is below it: a tile's length, allocated once
	timeout time.Duration      // bounds one tile's read
	queue   chan energyTileKey // tiles to read in the background

	mu     sync.Mutex
	tiles  map[energyTileKey]*energyTile
	bytes  int64
	tick   uint64
	rows   map[string]int           // rows of the last tile read per table: what reading one costs
	demand map[energyTileKey]uint64 // systems of the engine-answered requests that asked for a tile
}

// maxDemandKeys bounds energyTiles.demand: past it the counts start again.
const maxDemandKeys = 4096

// energyTile is one tile: ready once done is closed, then wh (or err) is
// fixed. Its other fields are guarded by energyTiles.mu.
type energyTile struct {
	parts   uint64 // fingerprint of the parts it was read from
	done    chan struct{}
	wh      []uint64 // mWh by system id; ids past its end have no row (0)
	err     error
	used    uint64    // energyTiles.tick when last used
	usedAt  time.Time // and when
	counted bool      // read, and its bytes in energyTiles.bytes
}

func (e *energyTile) size() int64 { return int64(cap(e.wh)) * 8 }

func newEnergyTiles(st *store.Store, limit int64, m *metrics, now func() time.Time, ids func() int, timeout time.Duration) *energyTiles {
	return &energyTiles{store: st, limit: limit, m: m, seed: maphash.MakeSeed(), now: now, ids: ids, timeout: timeout,
		queue: make(chan energyTileKey, 16),
		tiles: map[energyTileKey]*energyTile{}, rows: map[string]int{}, demand: map[energyTileKey]uint64{}}
}

// run reads the queued tiles until ctx ends.
func (c *energyTiles) run(ctx context.Context, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case k := <-c.queue:
			rctx, cancel := context.WithTimeout(historySettings(ctx), c.timeout)
			if _, _, err := c.get(rctx, []tileRead{{key: k, sign: 1}}, true); err != nil && ctx.Err() == nil {
				log.Warn("energy tile not read in the background", "table", k.table, "ts", time.Unix(k.ts, 0).UTC(), "err", err)
			}
			cancel()
		}
	}
}

// enqueue asks for a background read of k, unless the queue is full (the
// tile is then read when asked again).
func (c *energyTiles) enqueue(k energyTileKey) {
	select {
	case c.queue <- k:
	default:
	}
}

// ask records that a caller of n systems asked for the tiles of reads and
// was answered by the engine; a tile asked for by systems adding up to a
// quarter of its rows is queued for reading.
func (c *energyTiles) ask(reads []tileRead, n uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.demand) >= maxDemandKeys {
		clear(c.demand)
	}
	for _, r := range reads {
		if c.tiles[r.key] != nil {
			continue
		}
		rows, known := c.rows[r.key.table]
		d := c.demand[r.key] + n
		if known && 4*d >= uint64(rows) {
			delete(c.demand, r.key)
			c.enqueue(r.key)
			continue
		}
		c.demand[r.key] = d
	}
}

// advanced tells the tiles that the minute cumulative table's watermark
// moved from prev to next: the tile at next is queued when the one at
// prev was used in the last two minutes.
func (c *energyTiles) advanced(prev, next time.Time) {
	if prev.IsZero() || !next.After(prev) {
		return
	}
	c.mu.Lock()
	e := c.tiles[energyTileKey{cumMinuteTable, prev.Unix()}]
	recent := e != nil && c.now().Sub(e.usedAt) < 2*time.Minute
	c.mu.Unlock()
	if recent {
		c.enqueue(energyTileKey{cumMinuteTable, next.Unix()})
	}
}

// worthReading says whether reading the tiles of reads costs about what
// the engine would spend on a caller of n systems. A tile row read whole
// costs about a quarter of a caller's row filtered and summed in the
// engine (35 ms for 370 k rows against 70 ms for 200 k systems, two rows
// each), so tiles are read when they hold at most 8 rows per system of the
// caller and tile: at worst twice the engine's time once, then a few
// milliseconds for every request that follows. Smaller callers use the
// tiles that others' requests have read.
func (c *energyTiles) worthReading(ctx context.Context, reads []tileRead, n uint64) (bool, error) {
	var rows uint64
	for _, r := range reads {
		c.mu.Lock()
		k, known := c.rows[r.key.table]
		c.mu.Unlock()
		if !known {
			// No tile of the table read yet: count the rows at the instant.
			var cnt uint64
			if err := c.store.QueryRow(ctx, "SELECT count() FROM "+r.key.table+" WHERE ts = toDateTime({ts:Int64}, 'UTC')",
				clickhouse.Named("ts", strconv.FormatInt(r.key.ts, 10))).Scan(&cnt); err != nil {
				return false, err
			}
			k = int(cnt)
			c.mu.Lock()
			c.rows[r.key.table] = k
			c.mu.Unlock()
		}
		rows += uint64(k)
	}
	return rows <= 8*n*uint64(len(reads)), nil
}

// cached says whether every tile of reads is in memory (perhaps stale):
// only then is fingerprinting them worth it for a caller that would not
// read them.
func (c *energyTiles) cached(reads []tileRead) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range reads {
		if c.tiles[r.key] == nil {
			return false
		}
	}
	return true
}

// get returns the tiles of reads, current as of the parts that hold them
// now, reading those missing or stale when read is set; otherwise false
// when any is.
func (c *energyTiles) get(ctx context.Context, reads []tileRead, read bool) ([][]uint64, bool, error) {
	prints, err := c.fingerprints(ctx, reads)
	if err != nil {
		return nil, false, err
	}
	c.mu.Lock()
	c.tick++
	entries := make([]*energyTile, len(reads))
	var mine []int // entries this call reads
	for i, r := range reads {
		e := c.tiles[r.key]
		if e == nil || e.parts != prints[r.key] {
			if !read {
				if e != nil {
					c.enqueue(r.key) // in use lately: worth reading again
				}
				c.mu.Unlock()
				c.m.energyTileLookups.WithLabelValues("miss").Add(float64(len(reads)))
				return nil, false, nil
			}
			if e != nil {
				c.drop(r.key, e)
			}
			e = &energyTile{parts: prints[r.key], done: make(chan struct{})}
			c.tiles[r.key] = e
			mine = append(mine, i)
		}
		e.used, e.usedAt = c.tick, c.now()
		entries[i] = e
	}
	c.mu.Unlock()
	c.m.energyTileLookups.WithLabelValues("miss").Add(float64(len(mine)))
	c.m.energyTileLookups.WithLabelValues("hit").Add(float64(len(reads) - len(mine)))

	// Read the missing tiles side by side: each is one engine statement
	// plus decoding here, so two use both cores.
	for _, i := range mine {
		go c.fill(ctx, reads[i].key, entries[i])
	}
	out := make([][]uint64, len(reads))
	for i, e := range entries {
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		if e.err != nil {
			return nil, false, e.err
		}
		out[i] = e.wh
	}
	return out, true, nil
}

// fill reads tile e of k, counts its bytes and makes room for it, or
// forgets it when the read failed (the next request reads it again).
// Other requests may wait for it, so the read outlives the cancellation of
// the request that started it, within the history timeout.
func (c *energyTiles) fill(ctx context.Context, k energyTileKey, e *energyTile) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	wh, err := c.read(ctx, k)
	c.mu.Lock()
	e.wh, e.err = wh, err
	if c.tiles[k] == e {
		if err != nil {
			delete(c.tiles, k)
		} else {
			e.counted = true
			c.bytes += e.size()
			c.evict(e.used)
		}
	}
	c.mu.Unlock()
	close(e.done)
}

// drop forgets a tile. c.mu is held.
func (c *energyTiles) drop(k energyTileKey, e *energyTile) {
	delete(c.tiles, k)
	if e.counted {
		c.bytes -= e.size()
		e.counted = false
	}
}

// evict drops the least recently used tiles until the budget holds,
// sparing those used at tick (the request at hand). c.mu is held.
func (c *energyTiles) evict(tick uint64) {
	for c.bytes > c.limit {
		var oldest energyTileKey
		var victim *energyTile
		for k, e := range c.tiles {
			if !e.counted {
				continue // being read
			}
			if e.used < tick && (victim == nil || e.used < victim.used) {
				oldest, victim = k, e
			}
		}
		if victim == nil {
			break
		}
		c.drop(oldest, victim)
	}
	c.m.energyTileBytes.Set(float64(c.bytes))
}

// fingerprints hashes, per tile, the names of the active parts whose time
// span holds its instant: one metadata query per table.
func (c *energyTiles) fingerprints(ctx context.Context, reads []tileRead) (map[energyTileKey]uint64, error) {
	out := make(map[energyTileKey]uint64, len(reads))
	byTable := map[string][]int64{}
	for _, r := range reads {
		byTable[r.key.table] = append(byTable[r.key.table], r.key.ts)
	}
	for table, times := range byTable {
		at := make([]time.Time, len(times))
		for i, ts := range times {
			at[i] = time.Unix(ts, 0)
		}
		parts, err := c.store.ActiveParts(ctx, table, at)
		if err != nil {
			return nil, err
		}
		for _, ts := range times {
			var names []string
			for _, p := range parts {
				if p.MinTime.Unix() <= ts && ts <= p.MaxTime.Unix() {
					names = append(names, p.Name)
				}
			}
			slices.Sort(names)
			var h maphash.Hash
			h.SetSeed(c.seed)
			for _, n := range names {
				h.WriteString(n)
				h.WriteByte(0)
			}
			out[energyTileKey{table, ts}] = h.Sum64()
		}
	}
	return out, nil
}

// read reads one tile from the engine.
func (c *energyTiles) read(ctx context.Context, k energyTileKey) ([]uint64, error) {
	start := time.Now()
	wh, n, err := c.scan(ctx, k)
	if err != nil {
		c.m.energyTileReads.WithLabelValues("error").Inc()
		return nil, fmt.Errorf("energy tile %s at %d: %w", k.table, k.ts, err)
	}
	if cap(wh) > len(wh)+len(wh)/8 {
		wh = slices.Clone(wh) // growing left up to half of it unused
	}
	c.mu.Lock()
	c.rows[k.table] = n
	c.mu.Unlock()
	c.m.energyTileReads.WithLabelValues("ok").Inc()
	c.m.energyTileRead.Observe(time.Since(start).Seconds())
	return wh, nil
}

// scan runs a tile's statement: the tile and its rows.
func (c *energyTiles) scan(ctx context.Context, k energyTileKey) ([]uint64, int, error) {
	rows, err := c.store.Query(ctx, "SELECT system_id, wh FROM "+k.table+" FINAL WHERE ts = toDateTime({ts:Int64}, 'UTC')",
		clickhouse.Named("ts", strconv.FormatInt(k.ts, 10)))
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	// Allocated once at its full length: growing a 10 M-system tile by
	// doubling left ~80 MB of garbage per read, which on a heap near its
	// memory limit cost seconds of collection.
	wh := make([]uint64, 0, c.ids())
	n := 0
	var id uint32
	var v uint64
	dest := []any{&id, &v} // one destination list for every row, not one each
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, 0, err
		}
		if int(id) >= len(wh) {
			wh = slices.Grow(wh, int(id)+1-len(wh))[:int(id)+1]
		}
		wh[id] = v
		n++
	}
	return wh, n, rows.Err()
}

// energyOf is each system's energy over the reads' range from its tiles:
// the sum of its signed rows, never below zero (as the engine's
// greatest(sum(wh), 0)).
func energyOf(id uint32, reads []tileRead, cols [][]uint64) uint64 {
	var e int64
	for i, r := range reads {
		if col := cols[i]; int(id) < len(col) {
			e += r.sign * int64(col[id])
		}
	}
	return uint64(max(e, 0))
}

// energyOrder is a fleet energy sort as a total order of (id, energy)
// pairs: by energy then id, both in the sort's direction, or by id.
type energyOrder struct {
	byEnergy, desc bool
}

func (o energyOrder) cmp(a, b SystemEnergy) int {
	c := 0
	if o.byEnergy {
		c = compareUint(a.EnergyMWh, b.EnergyMWh)
	}
	if c == 0 {
		c = compareUint(uint64(a.ID), uint64(b.ID))
	}
	if o.desc {
		return -c
	}
	return c
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// pageFromTiles is the page of a fleet energy request answered from tiles:
// the first limit+1 systems of bm after the cursor in the sort's order —
// the same rows, in the same order, as the engine's statement (every
// system, zeros included, ordered by energy then id) — kept in a bounded
// heap rather than sorting every system.
func pageFromTiles(bm *roaring.Bitmap, reads []tileRead, cols [][]uint64, p fleetParams) []SystemEnergy {
	o := energyOrder{byEnergy: p.sort.key == sortFleetEnergy, desc: p.sort.desc}
	var after *SystemEnergy
	if p.cur != nil {
		after = &SystemEnergy{ID: acl.SystemID(p.cur.id), EnergyMWh: p.cur.key}
	}
	h := pageHeap{o: o, max: p.limit + 1}
	it := bm.ManyIterator()
	buf := make([]uint32, 4096)
	for n := it.NextMany(buf); n > 0; n = it.NextMany(buf) {
		for _, id := range buf[:n] {
			se := SystemEnergy{ID: acl.SystemID(id), EnergyMWh: energyOf(id, reads, cols)}
			if after != nil && o.cmp(se, *after) <= 0 {
				continue
			}
			h.offer(se)
		}
	}
	slices.SortFunc(h.items, o.cmp)
	return h.items
}

// pageHeap keeps the max first items of an order: a binary heap whose root
// is the last of them, replaced when a smaller one comes.
type pageHeap struct {
	o     energyOrder
	max   int
	items []SystemEnergy
}

func (h *pageHeap) offer(x SystemEnergy) {
	if len(h.items) < h.max {
		h.items = append(h.items, x)
		for i := len(h.items) - 1; i > 0; {
			parent := (i - 1) / 2
			if h.o.cmp(h.items[i], h.items[parent]) <= 0 {
				break
			}
			h.items[i], h.items[parent] = h.items[parent], h.items[i]
			i = parent
		}
		return
	}
	if h.max == 0 || h.o.cmp(x, h.items[0]) >= 0 {
		return
	}
	h.items[0] = x
	for i := 0; ; {
		l, r, top := 2*i+1, 2*i+2, i
		if l < len(h.items) && h.o.cmp(h.items[l], h.items[top]) > 0 {
			top = l
		}
		if r < len(h.items) && h.o.cmp(h.items[r], h.items[top]) > 0 {
			top = r
		}
		if top == i {
			return
		}
		h.items[i], h.items[top] = h.items[top], h.items[i]
		i = top
	}
}
