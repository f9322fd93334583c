package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// Errors for a whole request. The handler maps them with errors.Is; decode
// errors wrap them with detail for the response message.
var (
	// ErrMalformed: the body is not a valid ingest document (not JSON, no
	// readings array, seq missing, negative or not an integer, a corrupt
	// compressed stream…). HTTP 400: retrying the same body cannot succeed.
	ErrMalformed = errors.New("ingest: malformed body")
	// ErrTooManyReadings: more readings than the configured maximum. HTTP 413.
	ErrTooManyReadings = errors.New("ingest: too many readings")
	// ErrTooLarge: the body, once decompressed, is over the size limit. HTTP 413.
	ErrTooLarge = errors.New("ingest: body too large")
	// ErrUnsupportedEncoding: a Content-Encoding other than identity, gzip
	// or zstd. HTTP 415.
	ErrUnsupportedEncoding = errors.New("ingest: unsupported content encoding")
)

// DefaultMaxReadings is DecoderOptions.MaxReadings when unset: 10,000
// readings is ~330 30-panel intervals, more than a gateway buffers between
// two uploads, and bounds one request to ~1.3 MB of JSON.
const DefaultMaxReadings = 10_000

// retainBytes bounds the buffers a Decoder keeps between calls: after a body
// bigger than this, the next call starts from fresh buffers, so one huge
// request does not pin its memory in a pooled decoder for ever. 1 MiB is
// ~250 typical 30-reading requests.
const retainBytes = 1 << 20

// DecoderOptions configure a Decoder. The zero value is valid.
type DecoderOptions struct {
	// MaxReadings is the largest number of readings accepted in one
	// request; more is ErrTooManyReadings. ≤ 0 means DefaultMaxReadings.
	MaxReadings int
	// Limits bound the readings' timestamps.
	Limits Limits
	// Now is the server clock used for the timestamp checks; nil means
	// time.Now. Tests set it.
	Now func() time.Time
}

func (o *DecoderOptions) setDefaults() {
	if o.MaxReadings <= 0 {
		o.MaxReadings = DefaultMaxReadings
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Batch is one decoded ingest request.
type Batch struct {
	// Seq is the gateway's request sequence number.
	Seq uint64
	// Readings are the accepted readings, in request order. Their Panel
	// slices alias the Decoder's buffers: see Decoder for how long they
	// stay valid.
	Readings []Reading
	// Problems lists the rejected readings in ascending Index order, one
	// entry per rejected reading.
	Problems []Problem
}

// retainReadings bounds the capacity a Batch keeps across Resets: 4096
// readings (~400 KiB) is over 100 typical requests; a pooled Batch that once
// held DefaultMaxReadings does not pin ~1 MiB for ever.
const retainReadings = 4096

// Reset empties b, keeping its capacity unless a big request grew it.
func (b *Batch) Reset() {
	b.Seq = 0
	if cap(b.Readings) > retainReadings {
		b.Readings, b.Problems = nil, nil
		return
	}
	clear(b.Readings) // drop references to old buffers
	b.Readings = b.Readings[:0]
	b.Problems = b.Problems[:0]
}

// Total returns the number of readings in the request: accepted + rejected.
func (b *Batch) Total() int { return len(b.Readings) + len(b.Problems) }

// Problem is one rejected reading.
type Problem struct {
	// Index is the reading's position in the request, from 0: in the
	// readings array for JSON, among the reading lines (header and blank
	// lines not counted) for NDJSON.
	Index  int
	Reason Reason
	// Field is the field the reason is about, FieldNone for the whole reading.
	Field Field
}

// AppendText appends a one-line description of p for API responses, e.g.
// "pin: missing_field: required field missing (…)".
func (p Problem) AppendText(dst []byte) []byte {
	if p.Field != FieldNone {
		dst = append(dst, p.Field.String()...)
		dst = append(dst, ": "...)
	}
	dst = append(dst, p.Reason.String()...)
	dst = append(dst, ": "...)
	return append(dst, p.Reason.Message()...)
}

// String returns p's description (see AppendText).
func (p Problem) String() string { return string(p.AppendText(nil)) }

// Decoder decodes ingest request bodies into Batches, validating every
// reading. It keeps its buffers between calls so that, once warm,
// decoding a body allocates nothing.
//
// Reuse contract: the Panel slices of a decoded Batch point into the body or
// into the Decoder's buffers. They are valid only until the next Decode call
// on the same Decoder and must not be retained after the request's handler
// returns (the body belongs to fasthttp); copy a label to keep it. A Decoder
// is not safe for concurrent use: give each goroutine its own, or pool them
// (sync.Pool) together with their Batches.
//
// Memory: a Decoder keeps buffers the size of the largest body it decoded,
// but after a body over 1 MiB it drops them at the next call.
//
// The zero Decoder is ready to use with default options.
type Decoder struct {
	opts  DecoderOptions
	ready bool

	sc    scanner
	big   bool   // the previous body was over retainBytes
	arena []byte // unescaped panel labels of this body
	key   []byte // the current key or ts string, unescaped
	nowMS int64
}

// Release drops the Decoder's reference to the last body it decoded, so a
// pooled Decoder does not keep a request's memory (fasthttp's body) alive
// after the handler returns. Call it with the Batch's Reset before putting
// both back in a pool.
func (d *Decoder) Release() { d.sc.reset(nil) }

// NewDecoder returns a Decoder with the given options.
func NewDecoder(opts DecoderOptions) *Decoder {
	d := &Decoder{opts: opts}
	d.init()
	return d
}

func (d *Decoder) init() {
	if !d.ready {
		d.opts.setDefaults()
		d.ready = true
	}
}

// begin prepares d for a body of n bytes and reads the clock. Labels
// unescaped into the arena stay valid for the whole body: it is only
// appended to (a reallocation leaves earlier labels in the old array).
func (d *Decoder) begin(n int) {
	d.init()
	if d.big {
		d.arena, d.key = nil, nil
	}
	d.arena = d.arena[:0]
	d.big = n > retainBytes
	d.nowMS = d.opts.Now().UnixMilli()
}

// DecodeJSON decodes a JSON body,
//
//	{"seq": 1842, "readings": [{"panel": "A1", "ts": 1763798400000, "pin": 347.6, …}, …]}
//
// into dst (reset first). ts is integer Unix milliseconds or an RFC 3339
// string. Top-level keys other than seq and readings are ignored; a repeated
// seq or readings key is malformed. A reading that fails to decode or
// validate is recorded in dst.Problems and the others go on. See scanner for
// the JSON accepted.
//
// Errors wrap ErrMalformed or ErrTooManyReadings; on error dst holds no
// readings.
func (d *Decoder) DecodeJSON(body []byte, dst *Batch) error {
	dst.Reset()
	d.begin(len(body))
	d.sc.reset(body)
	if err := d.document(dst, false); err != nil {
		dst.Reset()
		return err
	}
	return nil
}

// DecodeNDJSON decodes an NDJSON body (application/x-ndjson): a first line
// {"seq": n}, then one reading object per line. Blank lines are ignored, a
// trailing newline is optional, and "\r\n" line ends are accepted. A line
// that is not JSON makes the whole body malformed (never a partial write);
// a line that is JSON but not a valid reading is rejected alone. A header
// line carrying "readings" is malformed, so a JSON body sent with the NDJSON
// content type is refused rather than read as zero readings.
//
// Errors wrap ErrMalformed or ErrTooManyReadings; on error dst holds no
// readings.
func (d *Decoder) DecodeNDJSON(body []byte, dst *Batch) error {
	dst.Reset()
	d.begin(len(body))
	header := true
	index := 0
	for lineNo := 1; len(body) > 0; lineNo++ {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		if blank(line) {
			continue
		}
		d.sc.reset(line)
		if header {
			header = false
			if err := d.document(dst, true); err != nil {
				dst.Reset()
				return fmt.Errorf("line %d: %w", lineNo, err)
			}
			continue
		}
		if index >= d.opts.MaxReadings {
			dst.Reset()
			return fmt.Errorf("%w: more than %d readings per request", ErrTooManyReadings, d.opts.MaxReadings)
		}
		if !d.reading(index, 0, dst) || !d.sc.end() {
			dst.Reset()
			return fmt.Errorf("%w: line %d: %v", ErrMalformed, lineNo, d.sc.err)
		}
		index++
	}
	if header {
		return fmt.Errorf("%w: no header line {\"seq\": n}", ErrMalformed)
	}
	return nil
}

// valueKind is what a top-level member held.
type valueKind uint8

const (
	kindMissing valueKind = iota
	kindNumber
	kindArray
	kindOther
)

// document reads the top-level object: of a JSON body, or the header line
// of an NDJSON body (which must not carry readings). The checks after the
// scan come in a fixed order, so a body with several faults always gets the
// same answer.
func (d *Decoder) document(dst *Batch, header bool) error {
	sc := &d.sc
	if sc.peek() != '{' {
		if sc.skip(0) && sc.end() {
			return fmt.Errorf("%w: body is not a JSON object", ErrMalformed)
		}
		return fmt.Errorf("%w: %v", ErrMalformed, sc.err)
	}
	sc.pos++
	var (
		seq            []byte
		seqK, readingK valueKind
		dup            string
		tooMany        bool
	)
	for more := !sc.consume('}'); more; more = sc.next('}') {
		key, ok := sc.key(&d.key)
		if !ok {
			break
		}
		switch string(key) {
		case "seq":
			if seqK != kindMissing && dup == "" {
				dup = "seq"
			}
			seqK, ok = kindOther, true
			switch {
			case sc.literal("null"):
			case isNumberStart(sc.peek()):
				seqK = kindNumber
				seq, ok = sc.number()
			default:
				ok = sc.skip(1)
			}
		case "readings":
			if readingK != kindMissing && dup == "" {
				dup = "readings"
			}
			if sc.peek() == '[' && !header && dup == "" {
				readingK = kindArray
				tooMany, ok = d.readings(dst)
			} else {
				readingK = kindOther
				ok = sc.skip(1)
			}
		default:
			ok = sc.skip(1)
		}
		if !ok {
			break
		}
	}
	if sc.err != nil || !sc.end() {
		return fmt.Errorf("%w: %v", ErrMalformed, sc.err)
	}
	switch {
	case dup != "":
		return fmt.Errorf("%w: key %q repeated", ErrMalformed, dup)
	case header && readingK != kindMissing:
		return fmt.Errorf("%w: NDJSON header line must not carry readings", ErrMalformed)
	case seqK == kindMissing:
		return fmt.Errorf("%w: seq missing", ErrMalformed)
	}
	n, ok := parseUint(seq)
	if seqK != kindNumber || !ok {
		return fmt.Errorf("%w: seq must be an integer from 0 to 2^64-1", ErrMalformed)
	}
	dst.Seq = n
	switch {
	case header:
		return nil
	case readingK == kindMissing:
		return fmt.Errorf("%w: readings missing", ErrMalformed)
	case readingK != kindArray:
		return fmt.Errorf("%w: readings is not an array", ErrMalformed)
	case tooMany:
		return fmt.Errorf("%w: %d readings, at most %d per request", ErrTooManyReadings, dst.Total(), d.opts.MaxReadings)
	}
	return nil
}

// readings reads the readings array. Past MaxReadings it only checks the
// rest of the array and reports tooMany (the count it returns in dst.Total
// is then the limit, not the array's length).
func (d *Decoder) readings(dst *Batch) (tooMany, ok bool) {
	sc := &d.sc
	sc.pos++ // '['
	index := 0
	for more := !sc.consume(']'); more; more = sc.next(']') {
		if index >= d.opts.MaxReadings {
			tooMany = true
			if !sc.skip(2) {
				return false, false
			}
			continue
		}
		if !d.reading(index, 2, dst) {
			return false, false
		}
		index++
	}
	return tooMany, sc.err == nil
}

func blank(line []byte) bool {
	for _, c := range line {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// required is the set of fields a reading must carry (see validate.go).
const required = 1<<FieldPanel | 1<<FieldTS | 1<<FieldPin | 1<<FieldWh

// reading decodes and validates the reading value next in the scan, element
// index of the request nested at depth, and appends it to dst.Readings or
// dst.Problems. It returns false on a syntax error.
func (d *Decoder) reading(index, depth int, dst *Batch) bool {
	n := len(dst.Readings)
	if n < cap(dst.Readings) {
		dst.Readings = dst.Readings[:n+1]
	} else {
		dst.Readings = append(dst.Readings, Reading{})
	}
	r := &dst.Readings[n]
	*r = Reading{}
	reason, field, ok := d.fillReading(r, depth)
	if !ok {
		return false
	}
	if reason == ReasonNone {
		reason, field = d.opts.Limits.Validate(r, d.nowMS)
	}
	if reason != ReasonNone {
		*r = Reading{}
		dst.Readings = dst.Readings[:n]
		dst.Problems = append(dst.Problems, Problem{Index: index, Reason: reason, Field: field})
	}
	return true
}

// fillReading sets r from the JSON value next in the scan. It returns the
// first problem in document order, then the first missing required field;
// ok is false on a syntax error.
func (d *Decoder) fillReading(r *Reading, depth int) (reason Reason, field Field, ok bool) {
	sc := &d.sc
	if sc.peek() != '{' {
		return ReasonMalformedReading, FieldNone, sc.skip(depth)
	}
	sc.pos++
	var seen, present uint16
	for more := !sc.consume('}'); more; more = sc.next('}') {
		key, ok := sc.key(&d.key)
		if !ok {
			return reason, field, false
		}
		f := fieldOf(key)
		if reason != ReasonNone || f == FieldNone {
			// Unknown keys are ignored; after a problem the rest is only
			// checked for syntax.
			if !sc.skip(depth + 1) {
				return reason, field, false
			}
			continue
		}
		if seen&(1<<f) != 0 {
			reason, field = ReasonDuplicateField, f
			if !sc.skip(depth + 1) {
				return reason, field, false
			}
			continue
		}
		seen |= 1 << f
		if sc.literal("null") {
			continue // null is absent
		}
		present |= 1 << f
		var rs Reason
		if rs, ok = d.setField(r, f, depth+1); !ok {
			return reason, field, false
		}
		if rs != ReasonNone {
			reason, field = rs, f
		}
	}
	if sc.err != nil {
		return reason, field, false
	}
	if reason != ReasonNone {
		return reason, field, true
	}
	if missing := required &^ present; missing != 0 {
		for f := FieldPanel; f < numFields; f++ {
			if missing&(1<<f) != 0 {
				return ReasonMissingField, f, true
			}
		}
	}
	return ReasonNone, FieldNone, true
}

// fieldOf returns the field a key names. It compares by length and bytes:
// a string switch compiles to a binary search of runtime comparisons, and
// this runs nine times per reading.
func fieldOf(k []byte) Field {
	switch len(k) {
	case 2:
		switch {
		case k[0] == 't' && k[1] == 's':
			return FieldTS
		case k[0] == 'w' && k[1] == 'h':
			return FieldWh
		}
	case 3:
		if k[1] != 'i' || k[2] != 'n' {
			return FieldNone
		}
		switch k[0] {
		case 'v':
			return FieldVin
		case 'i':
			return FieldIin
		case 'p':
			return FieldPin
		}
	case 4:
		switch string(k) {
		case "vout":
			return FieldVout
		case "temp":
			return FieldTemp
		case "rssi":
			return FieldRSSI
		}
	case 5:
		if string(k) == "panel" {
			return FieldPanel
		}
	}
	return FieldNone
}

// setField sets field f of r from the non-null value next in the scan; a
// value of the wrong type is skipped and reported.
func (d *Decoder) setField(r *Reading, f Field, depth int) (Reason, bool) {
	sc := &d.sc
	c := sc.peek()
	switch {
	case f == FieldPanel && c == '"':
		raw, escaped, ok := sc.str()
		if escaped {
			off := len(d.arena)
			d.arena = unescape(d.arena, raw)
			raw = d.arena[off:len(d.arena):len(d.arena)]
		}
		r.Panel = raw
		return ReasonNone, ok
	case f == FieldTS && c == '"':
		raw, escaped, ok := sc.str()
		if escaped {
			d.key = unescape(d.key[:0], raw)
			raw = d.key
		}
		var valid bool
		if r.TS, valid = parseRFC3339(raw); !valid {
			return ReasonTSInvalid, ok
		}
		return ReasonNone, ok
	case f == FieldTS && isNumberStart(c):
		ts, valid, ok := sc.int()
		if !valid {
			return ReasonTSInvalid, ok
		}
		r.TS = ts
		return ReasonNone, ok
	case f != FieldPanel && isNumberStart(c):
		x, reason, ok := sc.float()
		r.setNumber(f, x)
		return reason, ok
	}
	return ReasonTypeInvalid, sc.skip(depth)
}
