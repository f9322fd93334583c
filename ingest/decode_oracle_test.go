package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// A reference decoder for differential fuzzing: encoding/json tokenizes the
// body (an independent, strict parser), and the ingest rules of DESIGN §5
// are applied to the token tree in the plainest way. For every body that is
// valid JSON, Decoder must give the same answer. Bodies that are not (where
// the scanner's number leniencies apply) are checked by checkDecoded's
// invariants alone.

// jvalue is a JSON value with object members in document order,
// duplicates kept.
type jvalue struct {
	kind    byte // '{', '[', '"', 'n' (number), 'b' (bool), '0' (null)
	str     string
	members []jmember
	elems   []jvalue
}

type jmember struct {
	key string
	val jvalue
}

func parseTree(dec *json.Decoder) (jvalue, error) {
	tok, err := dec.Token()
	if err != nil {
		return jvalue{}, err
	}
	switch t := tok.(type) {
	case json.Delim:
		v := jvalue{kind: byte(t)}
		for dec.More() {
			var m jmember
			if t == '{' {
				k, err := dec.Token()
				if err != nil {
					return v, err
				}
				m.key = k.(string)
			}
			if m.val, err = parseTree(dec); err != nil {
				return v, err
			}
			if t == '{' {
				v.members = append(v.members, m)
			} else {
				v.elems = append(v.elems, m.val)
			}
		}
		_, err := dec.Token() // the closing delimiter
		return v, err
	case string:
		return jvalue{kind: '"', str: t}, nil
	case json.Number:
		return jvalue{kind: 'n', str: string(t)}, nil
	case bool:
		return jvalue{kind: 'b'}, nil
	}
	return jvalue{kind: '0'}, nil
}

// refDocument applies the top-level rules; header: an NDJSON header line.
func refDocument(v jvalue, header bool, maxReadings int, b *Batch) error {
	if v.kind != '{' {
		return ErrMalformed
	}
	var seq, readings *jvalue
	for i := range v.members {
		m := &v.members[i]
		switch m.key {
		case "seq":
			if seq != nil {
				return ErrMalformed
			}
			seq = &m.val
		case "readings":
			if readings != nil {
				return ErrMalformed
			}
			readings = &m.val
		}
	}
	if header && readings != nil {
		return ErrMalformed
	}
	if seq == nil || seq.kind != 'n' {
		return ErrMalformed
	}
	n, ok := parseUint([]byte(seq.str))
	if !ok {
		return ErrMalformed
	}
	b.Seq = n
	if header {
		return nil
	}
	if readings == nil || readings.kind != '[' {
		return ErrMalformed
	}
	if len(readings.elems) > maxReadings {
		return ErrTooManyReadings
	}
	for i := range readings.elems {
		refReading(readings.elems[i], i, b)
	}
	return nil
}

func refReading(v jvalue, index int, b *Batch) {
	var r Reading
	reason, field := refFill(v, &r)
	if reason == ReasonNone {
		reason, field = (&Limits{}).Validate(&r, testNowMS)
	}
	if reason != ReasonNone {
		b.Problems = append(b.Problems, Problem{Index: index, Reason: reason, Field: field})
		return
	}
	b.Readings = append(b.Readings, r)
}

var refFields = map[string]Field{"panel": FieldPanel, "ts": FieldTS, "vin": FieldVin, "iin": FieldIin,
	"pin": FieldPin, "vout": FieldVout, "temp": FieldTemp, "rssi": FieldRSSI, "wh": FieldWh}

func refFill(v jvalue, r *Reading) (Reason, Field) {
	if v.kind != '{' {
		return ReasonMalformedReading, FieldNone
	}
	seen := map[Field]bool{}
	present := map[Field]bool{}
	for _, m := range v.members {
		f, known := refFields[m.key]
		if !known {
			continue
		}
		if seen[f] {
			return ReasonDuplicateField, f
		}
		seen[f] = true
		val := m.val
		if val.kind == '0' {
			continue
		}
		present[f] = true
		switch {
		case f == FieldPanel && val.kind == '"':
			r.Panel = []byte(val.str)
		case f == FieldTS && val.kind == '"':
			ts, ok := parseRFC3339([]byte(val.str))
			if !ok {
				return ReasonTSInvalid, f
			}
			r.TS = ts
		case f == FieldTS && val.kind == 'n':
			ts, ok := parseInt([]byte(val.str))
			if !ok {
				return ReasonTSInvalid, f
			}
			r.TS = ts
		case f != FieldPanel && f != FieldTS && val.kind == 'n':
			x, reason := parseFloat([]byte(val.str))
			if reason != ReasonNone {
				return reason, f
			}
			r.setNumber(f, x)
		default:
			return ReasonTypeInvalid, f
		}
	}
	for _, f := range []Field{FieldPanel, FieldTS, FieldPin, FieldWh} {
		if !present[f] {
			return ReasonMissingField, f
		}
	}
	return ReasonNone, FieldNone
}

// refValue parses one whole JSON text (nothing after it); ok is false when
// the text is not valid JSON or nests deeper than the scanner allows.
func refValue(text []byte) (jvalue, bool) {
	if !json.Valid(text) || nesting(text) >= maxDepth {
		return jvalue{}, false
	}
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	v, err := parseTree(dec)
	if err != nil {
		panic(fmt.Sprintf("json.Valid text did not tokenize: %v", err))
	}
	if _, err := dec.Token(); err != io.EOF {
		panic("json.Valid text has a second value")
	}
	return v, true
}

// nesting is the deepest bracket nesting of a valid JSON text.
func nesting(text []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// refDecodeJSON is the reference answer for a JSON body; ok is false when
// the body is outside what the reference decides.
func refDecodeJSON(body []byte, maxReadings int) (Batch, error, bool) {
	var b Batch
	v, ok := refValue(body)
	if !ok {
		return b, nil, false
	}
	err := refDocument(v, false, maxReadings, &b)
	if err != nil {
		b = Batch{}
	}
	return b, err, true
}

// refDecodeNDJSON is the reference answer for an NDJSON body.
func refDecodeNDJSON(body []byte, maxReadings int) (Batch, error, bool) {
	var b Batch
	lines := strings.Split(string(body), "\n")
	header, index := true, 0
	for _, line := range lines {
		if blank([]byte(line)) {
			continue
		}
		v, ok := refValue([]byte(line))
		if !ok {
			return Batch{}, nil, false
		}
		if header {
			header = false
			if err := refDocument(v, true, maxReadings, &b); err != nil {
				return Batch{}, err, true
			}
			continue
		}
		if index >= maxReadings {
			return Batch{}, ErrTooManyReadings, true
		}
		refReading(v, index, &b)
		index++
	}
	if header {
		return Batch{}, ErrMalformed, true
	}
	return b, nil, true
}

// compareWithReference fails t when the decoder's answer for body differs
// from the reference's.
func compareWithReference(t *testing.T, body []byte, ndjson bool, got *Batch, err error) {
	t.Helper()
	ref, want, ok := refDecodeJSON(body, fuzzMaxReadings)
	if ndjson {
		ref, want, ok = refDecodeNDJSON(body, fuzzMaxReadings)
	}
	if !ok {
		return
	}
	if !errors.Is(err, want) || (err == nil) != (want == nil) {
		t.Fatalf("error %v, the reference says %v", err, want)
	}
	if err != nil {
		return
	}
	if got.Seq != ref.Seq {
		t.Fatalf("seq %d, the reference says %d", got.Seq, ref.Seq)
	}
	if fmt.Sprint(got.Problems) != fmt.Sprint(ref.Problems) {
		t.Fatalf("problems %v, the reference says %v", got.Problems, ref.Problems)
	}
	if err := readingsEqual(got.Readings, ref.Readings); err != nil {
		t.Fatalf("readings differ from the reference: %v", err)
	}
}

// TestDecodeAgreesWithReference runs the comparison over the seed corpus
// and a set of bodies in both formats (the fuzz targets run it on
// generated ones).
func TestDecodeAgreesWithReference(t *testing.T) {
	bodies := []string{
		string(sampleBody(40)),
		`{"seq":1,"readings":[` + validReading + `,{"panel":"A\u0031","ts":"2025-11-22T08:00:00Z","pin":1,"wh":1,"x":[{"y":null}]}]}`,
		`{"seq":1,"readings":[` + validReading + `,7,{"panel":"A1"},{"pin":"1"},null,[],{"panel":"A1","ts":1763798400000,"pin":1,"pin":2,"wh":1}]}`,
		`{"seq":2,"x":{"readings":1},"readings":[]}`,
		`{"readings":[],"seq":3}`,
		`{"seq":1,"readings":[` + strings.Repeat(validReading+",", fuzzMaxReadings) + validReading + `]}`,
	}
	for _, body := range bodies {
		for _, ndjson := range []bool{false, true} {
			in := []byte(body)
			if ndjson {
				var b Batch
				if err := newTestDecoder(fuzzMaxReadings+1).DecodeJSON(in, &b); err != nil {
					continue
				}
				in = AppendNDJSON(nil, b.Seq, b.Readings)
			}
			var b Batch
			d := newTestDecoder(fuzzMaxReadings)
			var err error
			if ndjson {
				err = d.DecodeNDJSON(in, &b)
			} else {
				err = d.DecodeJSON(in, &b)
			}
			if _, _, ok := refDecodeJSON(in, fuzzMaxReadings); !ok && !ndjson {
				t.Fatalf("test body is not valid JSON: %.80s", in)
			}
			compareWithReference(t, in, ndjson, &b, err)
		}
	}
}
