package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/valyala/fastjson"
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
// reading. It keeps its parser and buffers between calls so that, once warm,
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

	p     fastjson.Parser
	big   bool   // the previous body was over retainBytes
	num   []byte // raw text of the number being parsed
	arena []byte // NDJSON: panel labels of accepted readings
	offs  []int  // NDJSON: offset in arena of each accepted reading's label
	nowMS int64
}

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

// begin prepares d for a body of n bytes and reads the clock.
func (d *Decoder) begin(n int) {
	d.init()
	if d.big {
		d.p = fastjson.Parser{}
		d.arena, d.offs = nil, nil
	}
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
// validate is recorded in dst.Problems and the others go on.
//
// Errors wrap ErrMalformed or ErrTooManyReadings; on error dst holds no
// readings.
func (d *Decoder) DecodeJSON(body []byte, dst *Batch) error {
	dst.Reset()
	d.begin(len(body))
	v, err := d.p.ParseBytes(body)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrMalformed, err)
	}
	if v.Type() != fastjson.TypeObject {
		return fmt.Errorf("%w: body is not a JSON object", ErrMalformed)
	}
	seqV, readingsV, dup := topLevel(v.GetObject())
	if dup != "" {
		return fmt.Errorf("%w: key %q repeated", ErrMalformed, dup)
	}
	if err := d.decodeSeq(seqV, dst); err != nil {
		return err
	}
	if readingsV == nil {
		return fmt.Errorf("%w: readings missing", ErrMalformed)
	}
	if readingsV.Type() != fastjson.TypeArray {
		return fmt.Errorf("%w: readings is not an array", ErrMalformed)
	}
	arr, _ := readingsV.Array()
	if len(arr) > d.opts.MaxReadings {
		return fmt.Errorf("%w: %d readings, at most %d per request", ErrTooManyReadings, len(arr), d.opts.MaxReadings)
	}
	for i, rv := range arr {
		d.decodeReading(rv, i, dst)
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
	d.arena = d.arena[:0]
	d.offs = d.offs[:0]
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
		v, err := d.p.ParseBytes(line)
		if err != nil {
			dst.Reset()
			return fmt.Errorf("%w: line %d: %s", ErrMalformed, lineNo, err)
		}
		if header {
			header = false
			if err := d.decodeHeader(v, dst); err != nil {
				return err
			}
			continue
		}
		if index >= d.opts.MaxReadings {
			dst.Reset()
			return fmt.Errorf("%w: more than %d readings per request", ErrTooManyReadings, d.opts.MaxReadings)
		}
		n := len(dst.Readings)
		d.decodeReading(v, index, dst)
		if len(dst.Readings) > n {
			// The label points into the parser's copy of this line, which
			// the next line overwrites: keep it in the arena.
			r := &dst.Readings[n]
			d.offs = append(d.offs, len(d.arena))
			d.arena = append(d.arena, r.Panel...)
		}
		index++
	}
	if header {
		return fmt.Errorf("%w: no header line {\"seq\": n}", ErrMalformed)
	}
	for i := range dst.Readings {
		r := &dst.Readings[i]
		off := d.offs[i]
		r.Panel = d.arena[off : off+len(r.Panel) : off+len(r.Panel)]
	}
	return nil
}

func (d *Decoder) decodeHeader(v *fastjson.Value, dst *Batch) error {
	if v.Type() != fastjson.TypeObject {
		return fmt.Errorf("%w: header line is not a JSON object", ErrMalformed)
	}
	seqV, readingsV, dup := topLevel(v.GetObject())
	if dup != "" {
		return fmt.Errorf("%w: key %q repeated", ErrMalformed, dup)
	}
	if readingsV != nil {
		return fmt.Errorf("%w: NDJSON header line must not carry readings", ErrMalformed)
	}
	return d.decodeSeq(seqV, dst)
}

// topLevel finds the seq and readings members of a top-level object, and the
// first of them that appears twice.
func topLevel(o *fastjson.Object) (seq, readings *fastjson.Value, dup string) {
	o.Visit(func(k []byte, v *fastjson.Value) {
		switch string(k) {
		case "seq":
			if seq != nil {
				dup = "seq"
			}
			seq = v
		case "readings":
			if readings != nil {
				dup = "readings"
			}
			readings = v
		}
	})
	return seq, readings, dup
}

func (d *Decoder) decodeSeq(v *fastjson.Value, dst *Batch) error {
	if v == nil {
		return fmt.Errorf("%w: seq missing", ErrMalformed)
	}
	if v.Type() == fastjson.TypeNumber {
		d.num = v.MarshalTo(d.num[:0])
		if seq, ok := parseUint(d.num); ok {
			dst.Seq = seq
			return nil
		}
	}
	return fmt.Errorf("%w: seq must be an integer from 0 to 2^64-1", ErrMalformed)
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

// decodeReading decodes and validates element index of the request and
// appends it to dst.Readings or dst.Problems.
func (d *Decoder) decodeReading(v *fastjson.Value, index int, dst *Batch) {
	n := len(dst.Readings)
	if n < cap(dst.Readings) {
		dst.Readings = dst.Readings[:n+1]
	} else {
		dst.Readings = append(dst.Readings, Reading{})
	}
	r := &dst.Readings[n]
	*r = Reading{}
	reason, field := d.fillReading(v, r)
	if reason == ReasonNone {
		reason, field = d.opts.Limits.Validate(r, d.nowMS)
	}
	if reason != ReasonNone {
		*r = Reading{}
		dst.Readings = dst.Readings[:n]
		dst.Problems = append(dst.Problems, Problem{Index: index, Reason: reason, Field: field})
	}
}

// fillReading sets r from the JSON object v. It returns the first problem in
// document order, then the first missing required field.
func (d *Decoder) fillReading(v *fastjson.Value, r *Reading) (Reason, Field) {
	if v.Type() != fastjson.TypeObject {
		return ReasonMalformedReading, FieldNone
	}
	var seen, present uint16
	reason, field := ReasonNone, FieldNone
	v.GetObject().Visit(func(k []byte, fv *fastjson.Value) {
		if reason != ReasonNone {
			return
		}
		f := fieldOf(k)
		if f == FieldNone {
			return // unknown keys are ignored
		}
		if seen&(1<<f) != 0 {
			reason, field = ReasonDuplicateField, f
			return
		}
		seen |= 1 << f
		if fv.Type() == fastjson.TypeNull {
			return // null is absent
		}
		present |= 1 << f
		if reason = d.setField(r, f, fv); reason != ReasonNone {
			field = f
		}
	})
	if reason != ReasonNone {
		return reason, field
	}
	if missing := required &^ present; missing != 0 {
		for f := FieldPanel; f < numFields; f++ {
			if missing&(1<<f) != 0 {
				return ReasonMissingField, f
			}
		}
	}
	return ReasonNone, FieldNone
}

func fieldOf(k []byte) Field {
	switch string(k) {
	case "panel":
		return FieldPanel
	case "ts":
		return FieldTS
	case "vin":
		return FieldVin
	case "iin":
		return FieldIin
	case "pin":
		return FieldPin
	case "vout":
		return FieldVout
	case "temp":
		return FieldTemp
	case "rssi":
		return FieldRSSI
	case "wh":
		return FieldWh
	}
	return FieldNone
}

// setField sets field f of r from the non-null JSON value v.
func (d *Decoder) setField(r *Reading, f Field, v *fastjson.Value) Reason {
	t := v.Type()
	switch f {
	case FieldPanel:
		if t != fastjson.TypeString {
			return ReasonTypeInvalid
		}
		r.Panel, _ = v.StringBytes()
		return ReasonNone
	case FieldTS:
		var ok bool
		switch t {
		case fastjson.TypeNumber:
			d.num = v.MarshalTo(d.num[:0])
			r.TS, ok = parseInt(d.num)
		case fastjson.TypeString:
			s, _ := v.StringBytes()
			r.TS, ok = parseRFC3339(s)
		default:
			return ReasonTypeInvalid
		}
		if !ok {
			return ReasonTSInvalid
		}
		return ReasonNone
	}
	if t != fastjson.TypeNumber {
		return ReasonTypeInvalid
	}
	d.num = v.MarshalTo(d.num[:0])
	x, reason := parseFloat(d.num)
	r.setNumber(f, x)
	return reason
}
