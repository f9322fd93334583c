package ingest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/fleetscope/fleetscope/ingest/wal"
	"github.com/fleetscope/fleetscope/live"
)

// The flusher moves the WAL into ClickHouse. One reader goroutine follows
// the log in LSN order: it applies each record to the live state, appends
// its readings to the current batch, and cuts the batch when it holds
// BatchRows readings or its first reading has waited FlushInterval. A cut
// batch is a span of WAL records; it is written to the journal (fsync) and
// handed to a sender, which inserts it with the deduplication token
// "<wal id>:<first>-<last>" and retries with backoff until ClickHouse takes
// it. When every batch up to an LSN is stored, that LSN is committed:
// journalled, and the WAL truncated below it.
//
// After a crash the reader starts after the committed LSN and cuts the
// journalled spans exactly as before, so a resent batch carries the same
// rows and token and ClickHouse drops it if the first attempt had landed.
// Memory is bounded: Senders+1 batches exist, and the reader waits for a
// free one — the WAL on disk is the queue (handlers answer 429 past
// MaxBacklog).
type flusher struct {
	s       *Service
	tail    *wal.Tailer
	journal *journal
	jmu     sync.Mutex // guards journal

	sendQ chan *batch
	free  chan *batch

	// commit tracking, guarded by cmu: spans cut and not yet committed, in
	// LSN order, and which of them are stored.
	cmu       sync.Mutex
	cut       []span
	stored    map[span]bool
	committed atomic.Uint64

	stopRead  chan struct{} // closed by stop: drain what is durable, then end
	abortSend context.Context
	abort     context.CancelFunc
	readDone  chan struct{}
	sendWG    sync.WaitGroup
	readErr   atomic.Pointer[error]

	panels map[string]string // interned panel labels (reader goroutine only)
}

// maxInterned bounds the panel-label intern table: labels are few in
// practice (A1…Z99), but gateways are not trusted.
const maxInterned = 1 << 16

func startFlusher(s *Service) (*flusher, error) {
	j, err := openJournal(s.opts.Dir)
	if err != nil {
		return nil, err
	}
	f := &flusher{
		s:        s,
		journal:  j,
		sendQ:    make(chan *batch),
		free:     make(chan *batch, s.opts.Senders+1),
		stored:   map[span]bool{},
		stopRead: make(chan struct{}),
		readDone: make(chan struct{}),
		panels:   map[string]string{},
	}
	f.abortSend, f.abort = context.WithCancel(context.Background())
	for range s.opts.Senders + 1 {
		f.free <- newBatch()
	}
	first := s.wal.Stats().FirstLSN
	committed, redo := j.resume(first)
	if committed > j.committed {
		s.log.Warn("ingest: the flush journal names batches the WAL has truncated; they were stored, flushing resumes after them",
			"journal_committed", j.committed, "committed", committed, "wal_first", first)
	}
	f.committed.Store(committed)
	f.tail = s.wal.Tail(max(committed+1, first))
	for range s.opts.Senders {
		f.sendWG.Add(1)
		go f.sender()
	}
	go f.read(redo)
	return f, nil
}

// stop drains: the reader cuts what is durable and ends, the senders insert
// until ctx is done. What is not inserted then stays in the WAL.
func (f *flusher) stop(ctx context.Context) error {
	close(f.stopRead)
	select {
	case <-f.readDone:
	case <-ctx.Done():
	}
	done := make(chan struct{})
	go func() { f.sendWG.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		f.abort()
		<-done
		err = fmt.Errorf("ingest: shutdown before every batch was stored (they stay in the WAL): %w", ctx.Err())
	}
	f.abort()
	<-f.readDone
	f.tail.Close()
	f.jmu.Lock()
	defer f.jmu.Unlock()
	return errors.Join(err, f.journal.close())
}

// batch is one insert: a span of WAL records as columns, plus the live
// state, seq windows and rollup marks of what it touched.
type batch struct {
	span  span
	first time.Time // when its first record was read (deadline)
	cols  readingCols

	systems  map[uint32]struct{}
	gateways map[uint32]struct{}
	dirty    map[dirtyMark]struct{}

	live   []live.Row
	seqs   []checkpoint
	cutAt  time.Time
	liveUp []live.Update // scratch for one record
}

type dirtyMark struct {
	minute int64 // Unix seconds of the minute bucket
	system uint32
}

type readingCols struct {
	system, gateway []uint32
	panel           []string
	ts              []int64
	vin, iin        []uint16
	pin, vout       []uint16
	temp            []int16
	rssi            []uint8
	wh              []uint32
}

func newBatch() *batch {
	return &batch{systems: map[uint32]struct{}{}, gateways: map[uint32]struct{}{}, dirty: map[dirtyMark]struct{}{}}
}

func (b *batch) rows() int { return len(b.cols.system) }

func (b *batch) reset() {
	c := &b.cols
	c.system, c.gateway, c.panel, c.ts = c.system[:0], c.gateway[:0], c.panel[:0], c.ts[:0]
	c.vin, c.iin, c.pin, c.vout, c.temp, c.rssi, c.wh = c.vin[:0], c.iin[:0], c.pin[:0], c.vout[:0], c.temp[:0], c.rssi[:0], c.wh[:0]
	clear(b.systems)
	clear(b.gateways)
	clear(b.dirty)
	b.live, b.seqs = b.live[:0], b.seqs[:0]
	b.span = span{}
}

func (f *flusher) intern(p []byte) string {
	if s, ok := f.panels[string(p)]; ok {
		return s
	}
	s := string(p)
	if len(f.panels) < maxInterned {
		f.panels[s] = s
	}
	return s
}

// read is the reader goroutine. redo are the journalled spans to cut again
// exactly.
func (f *flusher) read(redo []span) {
	defer close(f.readDone)
	defer close(f.sendQ)
	var rec Record
	b := f.takeBatch()
	if b == nil {
		return
	}
	// base ends waiting when stop is called; a batch's deadline context is
	// made once per batch, not per record.
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	go func() {
		select {
		case <-f.stopRead:
			cancelBase()
		case <-base.Done():
		}
	}()
	var deadline batchDeadline
	defer deadline.drop()
	draining := false
	var readFault *faultState // reading the WAL fails, retried
	for {
		ctx, cancel := base, context.CancelFunc(func() {})
		switch {
		case draining:
			// What is durable is read; then the wait ends at once.
			ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
		case b.rows() > 0 && len(redo) == 0:
			ctx = deadline.get(base, b.first.Add(f.s.opts.FlushInterval))
		}
		lsn, payload, err := f.tail.Next(ctx)
		cancel()
		if err == nil && readFault != nil {
			f.recovered(stageWALRead, readFault)
			readFault = nil
		}
		if err != nil {
			switch {
			case errors.Is(err, wal.ErrClosed):
				return // stopping: the WAL closed under a reader that did not drain in time
			case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
				if draining && b.rows() == 0 && len(redo) == 0 {
					return
				}
				if b.rows() > 0 && len(redo) == 0 {
					deadline.drop()
					if b = f.cutAndSend(b); b == nil {
						return
					}
				}
				if !draining {
					select {
					case <-f.stopRead:
						draining = true
					default:
					}
				}
				continue
			case errors.Is(err, wal.ErrCorrupt):
				// Bit rot since the WAL was opened: reading again cannot
				// help. Restart with --wal-skip-corrupt to go on past it.
				f.readErr.Store(&err)
				f.s.log.Error("ingest: flusher cannot read a corrupt WAL record; nothing reaches ClickHouse until a restart", "err", err)
				f.s.m.flushErrors.WithLabelValues("wal").Inc()
				return
			default:
				// A transient fault (no file descriptors left, an I/O
				// error): the reader keeps its place and tries again.
				f.s.m.flushErrors.WithLabelValues("wal").Inc()
				if readFault == nil {
					readFault = &faultState{backoff: faultBackoff}
					f.faulted(stageWALRead, err)
				}
				if !readFault.wait(f.abortSend, f.stopRead) {
					return
				}
				continue
			}
		}
		if err := rec.Decode(payload); err != nil {
			// A record that passed its CRC but does not decode was written
			// by a newer or broken build; skipping it loses its readings, so
			// say so loudly.
			f.s.log.Error("ingest: undecodable WAL record skipped", "lsn", lsn, "err", err)
			f.s.m.flushErrors.WithLabelValues("decode").Inc()
			continue
		}
		f.add(b, lsn, &rec)
		cut := false
		if len(redo) > 0 {
			if cut = lsn >= redo[0].last; cut {
				redo = redo[1:]
			}
		} else {
			cut = b.rows() >= f.s.opts.BatchRows
		}
		if cut {
			deadline.drop()
			if b = f.cutAndSend(b); b == nil {
				return
			}
		}
	}
}

// batchDeadline is the context that ends when the current batch must be
// cut; it is made once per batch, not per record.
type batchDeadline struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func (d *batchDeadline) get(base context.Context, at time.Time) context.Context {
	if d.ctx == nil {
		d.ctx, d.cancel = context.WithDeadline(base, at)
	}
	return d.ctx
}

func (d *batchDeadline) drop() {
	if d.cancel != nil {
		d.cancel()
	}
	d.ctx, d.cancel = nil, nil
}

// add appends one record's readings to the batch and applies it to the
// live state.
func (f *flusher) add(b *batch, lsn uint64, rec *Record) {
	if b.span.first == 0 {
		b.span.first = lsn
		b.first = time.Now()
	}
	b.span.last = lsn
	b.systems[rec.SystemID] = struct{}{}
	b.gateways[rec.GatewayID] = struct{}{}
	c := &b.cols
	b.liveUp = b.liveUp[:0]
	for i := range rec.Readings {
		r := &rec.Readings[i]
		panel := f.intern(r.Panel)
		c.system = append(c.system, rec.SystemID)
		c.gateway = append(c.gateway, rec.GatewayID)
		c.panel = append(c.panel, panel)
		c.ts = append(c.ts, r.TS)
		c.vin = append(c.vin, r.Vin)
		c.iin = append(c.iin, r.Iin)
		c.pin = append(c.pin, r.Pin)
		c.vout = append(c.vout, r.Vout)
		c.temp = append(c.temp, r.Temp)
		c.rssi = append(c.rssi, r.RSSI)
		c.wh = append(c.wh, r.Wh)
		b.liveUp = append(b.liveUp, live.Update{Panel: panel, TS: r.TS, PinDW: int64(r.Pin), WhMWh: uint64(r.Wh)})
	}
	if n := f.s.live.Apply(rec.SystemID, lsn, b.liveUp); n > 0 {
		f.s.m.liveRepeats.Add(float64(n))
	}
}

// cutAndSend finishes a batch — its live rows, seq windows and rollup marks
// — journals its span and hands it to a sender. It returns the next empty
// batch, or nil when stopping without a free batch.
func (f *flusher) cutAndSend(b *batch) *batch {
	b.cutAt = f.s.opts.Now()
	late := b.cutAt.Add(-f.s.opts.Lateness / 2).UnixMilli()
	for i, ts := range b.cols.ts {
		if ts < late {
			b.dirty[dirtyMark{minute: ts / 60_000 * 60, system: b.cols.system[i]}] = struct{}{}
		}
	}
	for sys := range b.systems {
		b.live = append(b.live, live.Row{})
		if !f.s.live.Row(sys, &b.live[len(b.live)-1]) {
			b.live = b.live[:len(b.live)-1]
		}
	}
	gws := make([]uint32, 0, len(b.gateways))
	for gw := range b.gateways {
		gws = append(gws, gw)
	}
	b.seqs = append(b.seqs, f.s.dedup.takeDirty(gws)...)
	// Without the intent a crash could resend these rows under another cut:
	// until it is durable the batch waits (and the WAL, the queue, grows).
	var fault *faultState
	for {
		f.jmu.Lock()
		err := f.journal.intend(b.span)
		f.jmu.Unlock()
		if err == nil {
			break
		}
		f.s.m.flushErrors.WithLabelValues("journal").Inc()
		if fault == nil {
			fault = &faultState{backoff: faultBackoff}
			f.faulted(stageJournal, err)
		}
		if !fault.wait(f.abortSend, nil) {
			return nil
		}
	}
	if fault != nil {
		f.recovered(stageJournal, fault)
	}
	f.cmu.Lock()
	f.cut = append(f.cut, b.span)
	f.cmu.Unlock()
	f.s.m.batchRows.Observe(float64(b.rows()))
	f.sendQ <- b
	return f.takeBatch()
}

func (f *flusher) takeBatch() *batch {
	select {
	case b := <-f.free:
		b.reset()
		return b
	case <-f.abortSend.Done():
		return nil
	}
}

// sender inserts batches until the queue closes.
func (f *flusher) sender() {
	defer f.sendWG.Done()
	for b := range f.sendQ {
		if f.insertWithRetry(b) {
			f.markStored(b.span)
		}
		f.free <- b
	}
}

// insertWithRetry inserts b until it succeeds or the flusher aborts
// (shutdown deadline). Backoff doubles from 100 ms to 5 s, with jitter so
// that nodes recovering together do not retry in step.
func (f *flusher) insertWithRetry(b *batch) (stored bool) {
	var fault *faultState
	defer func() {
		switch {
		case fault == nil:
		case stored:
			f.recovered(stageInsert, fault)
		default:
			f.s.m.stalled.WithLabelValues(stageInsert).Dec() // abandoned at shutdown: it stays in the WAL
		}
	}()
	for attempt := 0; ; attempt++ {
		start := time.Now()
		err := f.insert(f.abortSend, b)
		if err == nil {
			f.s.m.flushSeconds.Observe(time.Since(start).Seconds())
			f.s.m.flushedRows.Add(float64(b.rows()))
			return true
		}
		if f.abortSend.Err() != nil {
			return false
		}
		f.s.m.flushErrors.WithLabelValues("insert").Inc()
		f.s.m.flushRetries.Inc()
		if fault == nil {
			fault = &faultState{backoff: faultBackoff}
			f.s.m.stalled.WithLabelValues(stageInsert).Inc()
		}
		if attempt == 0 || attempt%20 == 0 {
			f.s.log.Warn("ingest: insert failed, retrying", "span", fmt.Sprintf("%d-%d", b.span.first, b.span.last), "rows", b.rows(), "attempt", attempt+1, "err", err)
		}
		if !fault.wait(f.abortSend, nil) {
			return false
		}
	}
}

// Stages of the flush path that a fault can stall, retried until it clears
// (fleetscope_ingest_stalled).
const (
	stageWALRead = "wal_read" // the flusher reading the WAL
	stageJournal = "journal"  // writing the flush journal
	stageInsert  = "insert"   // inserting into ClickHouse
)

// faultBackoff is the first wait after a failure; it doubles to
// maxFaultBackoff, with jitter so that nodes recovering together do not
// retry in step.
const (
	faultBackoff    = 100 * time.Millisecond
	maxFaultBackoff = 5 * time.Second
)

// faultState is one stage's ongoing fault.
type faultState struct {
	since   time.Time
	backoff time.Duration
}

// wait sleeps the backoff (and doubles it); false if abort or stop came
// first.
func (fs *faultState) wait(abort context.Context, stop <-chan struct{}) bool {
	if fs.since.IsZero() {
		fs.since = time.Now()
	}
	t := time.NewTimer(fs.backoff/2 + rand.N(fs.backoff/2+1))
	defer t.Stop()
	fs.backoff = min(2*fs.backoff, maxFaultBackoff)
	select {
	case <-t.C:
		return true
	case <-abort.Done():
		return false
	case <-stop:
		return false
	}
}

// faulted records that a stage (wal_read or journal, one goroutine each)
// stalled: /readyz says so and the gauge counts it.
func (f *flusher) faulted(stage string, err error) {
	f.s.m.stalled.WithLabelValues(stage).Inc()
	f.readErr.Store(&err)
	f.s.log.Error("ingest: flushing stalls; retrying until the fault clears (the WAL keeps what ingest acknowledges)", "stage", stage, "err", err)
}

// recovered records that a stalled stage works again.
func (f *flusher) recovered(stage string, fs *faultState) {
	f.s.m.stalled.WithLabelValues(stage).Dec()
	if stage != stageInsert {
		f.readErr.Store(nil)
	}
	f.s.log.Info("ingest: flushing resumes", "stage", stage, "stalled_for", time.Since(fs.since).String())
}

// readingColumns are the readings table's columns as sent: the panel label
// as String (the engine converts to LowCardinality; clickhouse-go's
// LowCardinality encoder boxes every value), named so that no DESCRIBE
// TABLE round trip precedes each insert.
var readingColumns = []clickhouse.ColumnNameAndType{
	{Name: "system_id", Type: "UInt32"}, {Name: "gateway_id", Type: "UInt32"}, {Name: "panel", Type: "String"},
	{Name: "ts", Type: "DateTime64(3, 'UTC')"}, {Name: "vin", Type: "UInt16"}, {Name: "iin", Type: "UInt16"},
	{Name: "pin", Type: "UInt16"}, {Name: "vout", Type: "UInt16"}, {Name: "temp", Type: "Int16"},
	{Name: "rssi", Type: "UInt8"}, {Name: "wh", Type: "UInt32"},
}

const insertReadings = "INSERT INTO readings (system_id, gateway_id, panel, ts, vin, iin, pin, vout, temp, rssi, wh)"

// The other tables a batch writes, with their column types named for the
// same reason.
var (
	liveColumns = []clickhouse.ColumnNameAndType{
		{Name: "system_id", Type: "UInt32"}, {Name: "last_ts", Type: "DateTime64(3, 'UTC')"}, {Name: "day", Type: "Date"},
		{Name: "energy_today", Type: "UInt64"}, {Name: "panels", Type: "Array(String)"}, {Name: "panel_pin", Type: "Array(UInt16)"},
		{Name: "panel_ts", Type: "Array(DateTime64(3, 'UTC'))"}, {Name: "lsn", Type: "UInt64"}, {Name: "updated_at", Type: "DateTime64(3, 'UTC')"},
	}
	dedupColumns = []clickhouse.ColumnNameAndType{
		{Name: "gateway_id", Type: "UInt32"}, {Name: "max_seq", Type: "UInt64"}, {Name: "seqs", Type: "String"}, {Name: "updated_at", Type: "DateTime64(3, 'UTC')"},
	}
	dirtyColumns = []clickhouse.ColumnNameAndType{
		{Name: "ts", Type: "DateTime('UTC')"}, {Name: "system_id", Type: "UInt32"}, {Name: "marked_at", Type: "DateTime64(3, 'UTC')"},
	}
)

// insert writes the batch's rows to every table it touches, each insert
// carrying the batch's deduplication token.
func (f *flusher) insert(ctx context.Context, b *batch) error {
	token := f.s.logID + ":" + strconv.FormatUint(b.span.first, 10) + "-" + strconv.FormatUint(b.span.last, 10)
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_deduplication_token": token}))
	st := f.s.opts.Store
	if b.rows() > 0 {
		rctx := clickhouse.Context(ctx, clickhouse.WithColumnNamesAndTypes(readingColumns))
		bt, err := st.PrepareBatch(rctx, insertReadings)
		if err != nil {
			return err
		}
		c := &b.cols
		for i, col := range []any{c.system, c.gateway, c.panel, c.ts, c.vin, c.iin, c.pin, c.vout, c.temp, c.rssi, c.wh} {
			if err := bt.Column(i).Append(col); err != nil {
				bt.Abort()
				return fmt.Errorf("readings column %d: %w", i, err)
			}
		}
		if err := bt.Send(); err != nil {
			return fmt.Errorf("insert readings: %w", err)
		}
	}
	if len(b.live) > 0 {
		bt, err := st.PrepareBatch(clickhouse.Context(ctx, clickhouse.WithColumnNamesAndTypes(liveColumns)),
			"INSERT INTO system_live (system_id, last_ts, day, energy_today, panels, panel_pin, panel_ts, lsn, updated_at)")
		if err != nil {
			return err
		}
		for i := range b.live {
			r := &b.live[i]
			ts := make([]time.Time, len(r.PanelTS))
			for k, v := range r.PanelTS {
				ts[k] = time.UnixMilli(v)
			}
			if err := bt.Append(r.System, time.UnixMilli(r.LastTS), time.Unix(int64(r.Day)*86400, 0).UTC(), r.Energy, r.Panels, r.Pins, ts, r.LSN, b.cutAt); err != nil {
				bt.Abort()
				return err
			}
		}
		if err := bt.Send(); err != nil {
			return fmt.Errorf("insert system_live: %w", err)
		}
	}
	if len(b.seqs) > 0 {
		bt, err := st.PrepareBatch(clickhouse.Context(ctx, clickhouse.WithColumnNamesAndTypes(dedupColumns)),
			"INSERT INTO ingest_dedup (gateway_id, max_seq, seqs, updated_at)")
		if err != nil {
			return err
		}
		for _, cp := range b.seqs {
			if err := bt.Append(cp.gateway, cp.max, string(cp.seqs), b.cutAt); err != nil {
				bt.Abort()
				return err
			}
		}
		if err := bt.Send(); err != nil {
			return fmt.Errorf("insert ingest_dedup: %w", err)
		}
	}
	if len(b.dirty) > 0 {
		bt, err := st.PrepareBatch(clickhouse.Context(ctx, clickhouse.WithColumnNamesAndTypes(dirtyColumns)),
			"INSERT INTO rollup_dirty (ts, system_id, marked_at)")
		if err != nil {
			return err
		}
		for m := range b.dirty {
			if err := bt.Append(time.Unix(m.minute, 0).UTC(), m.system, b.cutAt); err != nil {
				bt.Abort()
				return err
			}
		}
		if err := bt.Send(); err != nil {
			return fmt.Errorf("insert rollup_dirty: %w", err)
		}
	}
	return nil
}

// markStored records a stored span and commits every span up to the first
// one still in flight.
func (f *flusher) markStored(s span) {
	f.cmu.Lock()
	f.stored[s] = true
	var upTo uint64
	for len(f.cut) > 0 && f.stored[f.cut[0]] {
		delete(f.stored, f.cut[0])
		upTo = f.cut[0].last
		f.cut = f.cut[1:]
	}
	f.cmu.Unlock()
	if upTo == 0 {
		return
	}
	f.jmu.Lock()
	err := f.journal.commit(upTo)
	synced := f.journal.synced
	f.jmu.Unlock()
	f.committed.Store(upTo)
	if err != nil {
		// The segments stay until a commit entry is durable: deleting them
		// first could misalign the batches cut after a crash (see resume).
		f.s.log.Warn("ingest: journal commit entry not written; the WAL keeps the stored records until one is", "err", err)
		return
	}
	n, err := f.s.wal.TruncateBefore(upTo + 1)
	if err != nil {
		f.s.log.Warn("ingest: WAL truncation failed", "err", err)
	}
	if h := f.s.opts.hooks; n > 0 && h != nil && h.truncated != nil {
		h.truncated(synced)
	}
}
