package ingest

import (
	"bytes"
	"errors"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/api/reply"
	"github.com/fleetscope/fleetscope/ingest/wal"
)

// requestState is the reusable memory of one request: decoder, decoded
// batch, decompression, WAL payload and answer buffers. Pooled; nothing in
// it outlives the request.
type requestState struct {
	dec    *Decoder
	batch  Batch
	plain  []byte
	record []byte
	answer []byte
	// Panel admission (admitPanels): the labels, which were admitted, and
	// the problems list being rebuilt.
	labels   [][]byte
	admitted []bool
	problems []Problem
}

func newRequestState(opts Options) *requestState {
	return &requestState{dec: NewDecoder(DecoderOptions{
		MaxReadings: opts.MaxReadings,
		Limits:      Limits{MaxAge: opts.Retention},
		Now:         opts.Now,
	})}
}

// Handle serves POST /v1/ingest (DESIGN §5): the body's accepted readings
// are durable in the WAL before the 200.
func (s *Service) Handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	status := s.handle(ctx)
	if status == fasthttp.StatusOK {
		s.m.requestsOK.Inc() // the common case, without a label lookup
	} else {
		s.m.requests.WithLabelValues(strconv.Itoa(status)).Inc()
	}
	s.m.ack.Observe(time.Since(start).Seconds())
}

func (s *Service) handle(ctx *fasthttp.RequestCtx) int {
	if !ctx.IsPost() {
		return reply.Error(ctx, fasthttp.StatusMethodNotAllowed, "method_not_allowed", "use POST")
	}
	// Close takes the write lock after setting closing: a request holding
	// the read lock finishes before the WAL closes.
	s.gate.RLock()
	defer s.gate.RUnlock()
	if s.closing.Load() {
		s.m.unavailable.WithLabelValues("shutting_down").Inc()
		ctx.Response.Header.Set("Retry-After", "5")
		return reply.Error(ctx, fasthttp.StatusServiceUnavailable, "shutting_down", "this node is shutting down; retry")
	}
	key, ok := reply.Bearer(ctx)
	if !ok {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="fleetscope ingest"`)
		return reply.Error(ctx, fasthttp.StatusUnauthorized, "unauthorized", "missing gateway key: send Authorization: Bearer <key>")
	}
	gw, ok := s.opts.Gateways.Gateway(key)
	if !ok {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="fleetscope ingest"`)
		return reply.Error(ctx, fasthttp.StatusUnauthorized, "unauthorized", "unknown or revoked gateway key")
	}
	if !gw.Monitored {
		return reply.Error(ctx, fasthttp.StatusForbidden, "unmonitored", "this system is not monitored (fire-safety only): it posts no data")
	}
	body := ctx.PostBody()
	s.m.bytesIn.Add(float64(len(body)))
	if len(body) > s.opts.MaxBodySize {
		return reply.Error(ctx, fasthttp.StatusRequestEntityTooLarge, "too_large", "body over "+strconv.Itoa(s.opts.MaxBodySize)+" bytes")
	}
	st := s.decoders.Get().(*requestState)
	defer s.putState(st)

	decodeStart := time.Now()
	plain, err := Decompress(string(ctx.Request.Header.ContentEncoding()), body, s.opts.MaxBodySize, st.plain[:0])
	if err != nil {
		return decodeError(ctx, err)
	}
	if len(plain) > 0 && cap(plain) <= 1<<20 && &plain[0] != &body[0] {
		st.plain = plain[:0]
	}
	switch ct := mediaType(ctx.Request.Header.ContentType()); {
	case bytes.EqualFold(ct, []byte("application/x-ndjson")), bytes.EqualFold(ct, []byte("application/ndjson")):
		err = st.dec.DecodeNDJSON(plain, &st.batch)
	case len(ct) == 0, bytes.EqualFold(ct, []byte("application/json")):
		err = st.dec.DecodeJSON(plain, &st.batch)
	default:
		return reply.Error(ctx, fasthttp.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json or application/x-ndjson")
	}
	s.m.decode.Observe(time.Since(decodeStart).Seconds())
	if err != nil {
		return decodeError(ctx, err)
	}
	b := &st.batch
	for _, p := range b.Problems {
		s.m.rejected.WithLabelValues(p.Reason.String()).Inc()
	}
	if len(b.Problems) > 0 {
		s.m.readingsRejected.Add(float64(len(b.Problems)))
	}

	hash := xxhash.Sum64(plain)
	switch s.dedup.reserve(gw.ID, b.Seq, hash) {
	case seqDuplicate:
		s.m.readings.WithLabelValues("duplicate").Add(float64(len(b.Readings)))
		return s.answer(ctx, st, 0, true)
	case seqReused:
		s.m.readings.WithLabelValues("seq_reused").Add(float64(len(b.Readings)))
		return reply.Error(ctx, fasthttp.StatusConflict, "seq_reused",
			"seq "+strconv.FormatUint(b.Seq, 10)+" was used before for another body: nothing was stored; send new readings under a new seq")
	case seqInFlight:
		s.m.throttled.WithLabelValues("inflight").Inc()
		ctx.Response.Header.Set("Retry-After", "1")
		return reply.Error(ctx, fasthttp.StatusTooManyRequests, "in_progress", "a request with this seq is in progress; retry")
	}
	if n := s.admitPanels(gw.System, st); n > 0 {
		s.m.rejected.WithLabelValues(ReasonTooManyPanels.String()).Add(float64(n))
		s.m.readingsRejected.Add(float64(n))
	}
	if len(b.Readings) == 0 {
		// Nothing to store: the seq stays unused, and a retry gets the same
		// answer.
		s.dedup.release(gw.ID, b.Seq)
		return s.answer(ctx, st, 0, false)
	}
	if backlogBytes(s.wal.Stats()) > s.opts.MaxBacklog {
		s.dedup.release(gw.ID, b.Seq)
		s.m.throttled.WithLabelValues("backlog").Inc()
		ctx.Response.Header.Set("Retry-After", "10")
		return reply.Error(ctx, fasthttp.StatusTooManyRequests, "overloaded", "ClickHouse is behind; retry later")
	}
	st.record = AppendRecord(st.record[:0], RecordHeader{GatewayID: gw.ID, SystemID: gw.System, Seq: b.Seq, ReceivedAt: s.opts.Now().UnixMilli(), BodyHash: hash}, b.Readings)
	if _, err := s.wal.Append(st.record); err != nil {
		s.dedup.release(gw.ID, b.Seq)
		if errors.Is(err, wal.ErrOverloaded) {
			s.m.throttled.WithLabelValues("wal").Inc()
			ctx.Response.Header.Set("Retry-After", "1")
			return reply.Error(ctx, fasthttp.StatusTooManyRequests, "overloaded", "the write-ahead log is saturated; retry")
		}
		// The WAL is broken (a full disk, no file descriptors left) and
		// repairs itself; nothing of this request was acknowledged.
		s.m.unavailable.WithLabelValues("wal").Inc()
		if last := s.faultLogged.Load(); time.Since(time.Unix(0, last)) > 10*time.Second && s.faultLogged.CompareAndSwap(last, time.Now().UnixNano()) {
			s.log.Error("ingest: WAL append failed; answering 503 until the log has repaired itself (logged once per 10 s)", "err", err)
		}
		ctx.Response.Header.Set("Retry-After", "2")
		return reply.Error(ctx, fasthttp.StatusServiceUnavailable, "unavailable", "cannot make readings durable now; retry")
	}
	s.dedup.commit(gw.ID, b.Seq, hash)
	s.m.readingsAccepted.Add(float64(len(b.Readings)))
	if cap(st.record) > 1<<20 {
		st.record = nil // a huge request must not pin its buffer in the pool
	}
	return s.answer(ctx, st, len(b.Readings), false)
}

// admitPanels checks the batch's panel labels against the system's
// MaxPanels (live.State.Admit) and moves the readings of refused labels to
// the batch's problems (too_many_panels), keeping them in index order. It
// returns how many it refused.
func (s *Service) admitPanels(system uint32, st *requestState) int {
	b := &st.batch
	n := len(b.Readings)
	st.labels = st.labels[:0]
	for i := range b.Readings {
		st.labels = append(st.labels, b.Readings[i].Panel)
	}
	if cap(st.admitted) < n {
		st.admitted = make([]bool, n)
	}
	st.admitted = st.admitted[:n]
	refused := s.live.Admit(system, st.labels, st.admitted)
	clear(st.labels) // they alias the request body
	if refused == 0 {
		return 0
	}
	total := n + len(b.Problems)
	merged, kept := st.problems[:0], b.Readings[:0]
	pi, ri := 0, 0
	for idx := range total {
		if pi < len(b.Problems) && b.Problems[pi].Index == idx {
			merged = append(merged, b.Problems[pi])
			pi++
			continue
		}
		if st.admitted[ri] {
			kept = append(kept, b.Readings[ri]) // ri ≥ len(kept): in place
		} else {
			merged = append(merged, Problem{Index: idx, Reason: ReasonTooManyPanels, Field: FieldPanel})
		}
		ri++
	}
	clear(b.Readings[len(kept):])
	b.Readings, b.Problems, st.problems = kept, merged, b.Problems[:0]
	return refused
}

// putState returns a request's state to the pool without anything that
// points into the request: the decoded batch's labels alias fasthttp's body,
// which the Decoder's contract forbids keeping past the handler.
func (s *Service) putState(st *requestState) {
	st.batch.Reset()
	st.dec.Release()
	s.decoders.Put(st)
}

// backlogBytes estimates the WAL bytes not yet stored in ClickHouse: the
// uncommitted share of the bytes on disk (whole segments are kept until
// every record in them is committed, so Bytes alone overstates it).
func backlogBytes(st wal.Stats) int64 {
	if st.Records == 0 {
		return 0
	}
	return int64(float64(st.Bytes) * float64(st.Backlog) / float64(st.Records))
}

// answer writes the 200 body: {"accepted", "rejected", "errors", "duplicate"}.
func (s *Service) answer(ctx *fasthttp.RequestCtx, st *requestState, accepted int, duplicate bool) int {
	b := &st.batch
	a := st.answer[:0]
	a = append(a, `{"accepted":`...)
	a = strconv.AppendInt(a, int64(accepted), 10)
	a = append(a, `,"rejected":`...)
	a = strconv.AppendInt(a, int64(len(b.Problems)), 10)
	a = append(a, `,"errors":[`...)
	for i, p := range b.Problems {
		if i > 0 {
			a = append(a, ',')
		}
		a = append(a, `{"index":`...)
		a = strconv.AppendInt(a, int64(p.Index), 10)
		a = append(a, `,"error":`...)
		a = append(a, '"')
		a = p.AppendText(a) // field and reason names and fixed messages: nothing to escape
		a = append(a, '"')
		a = append(a, '}')
	}
	a = append(a, `],"duplicate":`...)
	a = strconv.AppendBool(a, duplicate)
	a = append(a, "}\n"...)
	st.answer = a
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	ctx.SetBody(a)
	return fasthttp.StatusOK
}

func decodeError(ctx *fasthttp.RequestCtx, err error) int {
	switch {
	case errors.Is(err, ErrUnsupportedEncoding):
		return reply.Error(ctx, fasthttp.StatusUnsupportedMediaType, "unsupported_encoding", err.Error())
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrTooManyReadings):
		return reply.Error(ctx, fasthttp.StatusRequestEntityTooLarge, "too_large", err.Error())
	}
	return reply.Error(ctx, fasthttp.StatusBadRequest, "malformed", err.Error())
}

// mediaType is the Content-Type without parameters (compare it with
// bytes.EqualFold: media types are case-insensitive).
func mediaType(ct []byte) []byte {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return bytes.TrimSpace(ct)
}
