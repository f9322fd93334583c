package ingest

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

// Fuzz targets for every decoder of untrusted bytes; the body decoders are
// also compared with a reference built on encoding/json
// (decode_oracle_test.go). Seed corpora live in
// testdata/fuzz/<FuzzName>/ (valid, truncated and hostile bodies); inputs
// that once failed stay there.

const fuzzMaxReadings = 500

func FuzzDecodeJSON(f *testing.F) {
	f.Add(sampleBody(3))
	f.Add([]byte(`{"seq":1,"readings":[` + validReading + `]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var b Batch
		err := newTestDecoder(fuzzMaxReadings).DecodeJSON(body, &b)
		checkDecoded(t, &b, err)
		compareWithReference(t, body, false, &b, err)
	})
}

func FuzzDecodeNDJSON(f *testing.F) {
	f.Add(sampleNDJSON(3))
	f.Add([]byte("{\"seq\":1}\n" + validReading + "\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		var b Batch
		err := newTestDecoder(fuzzMaxReadings).DecodeNDJSON(body, &b)
		checkDecoded(t, &b, err)
		compareWithReference(t, body, true, &b, err)
	})
}

// checkDecoded asserts the decoder's invariants on any input, then the round
// trip: the accepted readings, encoded again as JSON and as NDJSON, decode to
// the same readings with no problems.
func checkDecoded(t *testing.T, b *Batch, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooManyReadings) {
			t.Fatalf("error %v wraps no sentinel", err)
		}
		if len(b.Readings) != 0 || len(b.Problems) != 0 {
			t.Fatalf("error %v left %d readings, %d problems", err, len(b.Readings), len(b.Problems))
		}
		return
	}
	if b.Total() > fuzzMaxReadings {
		t.Fatalf("%d readings over the limit %d", b.Total(), fuzzMaxReadings)
	}
	for i, p := range b.Problems {
		if p.Index < 0 || p.Index >= b.Total() || (i > 0 && p.Index <= b.Problems[i-1].Index) {
			t.Fatalf("problems not strictly ascending within the batch: %v", b.Problems)
		}
		if p.Reason == ReasonNone || p.Reason >= numReasons || p.Field >= numFields {
			t.Fatalf("invalid problem %+v", p)
		}
	}
	var l Limits
	for i := range b.Readings {
		r := &b.Readings[i]
		if reason, f := l.Validate(r, testNowMS); reason != ReasonNone {
			t.Fatalf("accepted reading %d fails validation: %v %v: %+v", i, reason, f, r)
		}
		for _, x := range []float64{r.Vin, r.Iin, r.Pin, r.Vout, r.Temp, r.RSSI, r.Wh} {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("accepted reading %d has a non-finite value: %+v", i, r)
			}
		}
	}
	want := make([]Reading, len(b.Readings))
	for i, r := range b.Readings {
		r.Panel = bytes.Clone(r.Panel)
		want[i] = r
	}
	for _, ndjson := range []bool{false, true} {
		var again Batch
		d := newTestDecoder(fuzzMaxReadings)
		var err error
		if ndjson {
			err = d.DecodeNDJSON(AppendNDJSON(nil, b.Seq, want), &again)
		} else {
			err = d.DecodeJSON(AppendJSON(nil, b.Seq, want), &again)
		}
		if err != nil {
			t.Fatalf("re-encoded body (ndjson=%v): %v", ndjson, err)
		}
		if again.Seq != b.Seq || len(again.Problems) != 0 {
			t.Fatalf("re-encoded body (ndjson=%v): seq %d, problems %v", ndjson, again.Seq, again.Problems)
		}
		if err := readingsEqual(again.Readings, want); err != nil {
			t.Fatalf("round trip (ndjson=%v): %v", ndjson, err)
		}
	}
}

func FuzzDecompress(f *testing.F) {
	body := sampleBody(3)
	f.Add("gzip", gzipBytes(f, body))
	f.Add("zstd", zstdBytes(f, body, true))
	f.Add("identity", body)
	const limit = 1 << 16
	f.Fuzz(func(t *testing.T, encoding string, in []byte) {
		out, err := Decompress(encoding, in, limit, nil)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupportedEncoding) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
		} else if len(out) > limit {
			t.Fatalf("%d bytes out, over the limit %d", len(out), limit)
		}
		// Whatever in is, compressing it and decompressing gives it back,
		// or ErrTooLarge past the limit.
		for _, enc := range []string{"gzip", "zstd"} {
			packed := gzipBytes(t, in)
			if enc == "zstd" {
				packed = zstdBytes(t, in, len(in)%2 == 0)
			}
			out, err := Decompress(enc, packed, limit, nil)
			switch {
			case len(in) > limit:
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("%s of %d bytes: err = %v, want ErrTooLarge", enc, len(in), err)
				}
			case err != nil:
				t.Fatalf("%s round trip: %v", enc, err)
			case !bytes.Equal(out, in):
				t.Fatalf("%s round trip changed the bytes", enc)
			}
		}
	})
}

// FuzzRecordDecode decodes arbitrary bytes as a WAL payload (it must never
// panic, and whatever it accepts must encode and decode to the same record),
// and round-trips a valid record built from the same bytes exactly.
func FuzzRecordDecode(f *testing.F) {
	f.Add(AppendRecord(nil, RecordHeader{GatewayID: 1, SystemID: 2, Seq: 3, ReceivedAt: testNowMS}, sampleReadings(3, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var rec, again Record
		if err := rec.Decode(data); err == nil {
			rs := make([]Reading, len(rec.Readings))
			for i := range rec.Readings {
				rs[i] = rec.Readings[i].Reading()
			}
			if err := again.Decode(AppendRecord(nil, rec.RecordHeader, rs)); err != nil {
				t.Fatalf("re-encoded record: %v", err)
			}
			checkRecord(t, &again, rec.RecordHeader, rec.Readings)
		} else if !errors.Is(err, ErrBadRecord) {
			t.Fatalf("error %v does not wrap ErrBadRecord", err)
		}

		h, want := recordFromBytes(data)
		rs := make([]Reading, len(want))
		for i := range want {
			rs[i] = want[i].Reading()
		}
		if err := again.Decode(AppendRecord(nil, h, rs)); err != nil {
			t.Fatalf("valid record: %v", err)
		}
		checkRecord(t, &again, h, want)
	})
}

// recordFromBytes builds a record from arbitrary bytes: every value the
// format can carry, labels from a small alphabet so that they repeat.
func recordFromBytes(data []byte) (RecordHeader, []ScaledReading) {
	next := func(n int) uint64 {
		var v uint64
		for range n {
			v <<= 8
			if len(data) > 0 {
				v |= uint64(data[0])
				data = data[1:]
			}
		}
		return v
	}
	h := RecordHeader{GatewayID: uint32(next(4)), SystemID: uint32(next(4)), Seq: next(8), ReceivedAt: int64(next(8)), BodyHash: next(8)}
	var rs []ScaledReading
	for len(data) > 0 {
		l := int(next(1)%4) + 1
		panel := make([]byte, l)
		for i := range panel {
			panel[i] = "AB12._"[next(1)%6]
		}
		rs = append(rs, ScaledReading{
			Panel: panel, TS: int64(next(8)),
			Vin: uint16(next(2)), Iin: uint16(next(2)), Pin: uint16(next(2)), Vout: uint16(next(2)),
			Temp: int16(next(2)), RSSI: uint8(next(1)), Wh: uint32(next(4)),
		})
	}
	return h, rs
}
