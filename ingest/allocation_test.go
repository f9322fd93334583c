//go:build !race

package ingest

import "testing"

// Zero-allocation claims of the hot path, checked after a warm-up call
// (fasthttp's allocation_test.go practice; the race detector allocates, hence
// the build tag).

func TestDecodeAllocs(t *testing.T) {
	mixed := []byte(`{"seq":9,"readings":[` + validReading + `,{"panel":""},7,{"panel":"A1","ts":"2025-11-22T09:00:00.250+01:00","pin":"1","wh":1},` +
		`{"panel":"A2","ts":"2025-11-22T08:00:00Z","pin":1,"wh":1,"vin":NaN},{"panel":"A3","ts":1763798400000,"pin":1.234567890123456789,"wh":1}]}`)
	tests := []struct {
		name   string
		body   []byte
		ndjson bool
	}{
		{"JSON, 30 readings", sampleBody(30), false},
		{"NDJSON, 30 readings", sampleNDJSON(30), true},
		{"JSON with RFC 3339 timestamps and rejected readings", mixed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDecoder(0)
			var b Batch
			decode := func() {
				var err error
				if tt.ndjson {
					err = d.DecodeNDJSON(tt.body, &b)
				} else {
					err = d.DecodeJSON(tt.body, &b)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			decode() // warm-up: the decoder and batch grow their buffers
			if n := testing.AllocsPerRun(100, decode); n != 0 {
				t.Fatalf("%v allocations per decode, want 0", n)
			}
			if b.Total() == 0 {
				t.Fatal("nothing decoded")
			}
		})
	}
}

func TestRecordAllocs(t *testing.T) {
	h := RecordHeader{GatewayID: 1, SystemID: 2, Seq: 3, ReceivedAt: testNowMS}
	rs := sampleReadings(30, 1)
	buf := AppendRecord(nil, h, rs)
	var rec Record
	if err := rec.Decode(buf); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { buf = AppendRecord(buf[:0], h, rs) }); n != 0 {
		t.Errorf("AppendRecord: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = rec.Decode(buf) }); n != 0 {
		t.Errorf("Record.Decode: %v allocations, want 0", n)
	}
}

func TestDecompressAllocs(t *testing.T) {
	body := sampleBody(30)
	for _, enc := range []string{"gzip", "zstd"} {
		in := gzipBytes(t, body)
		if enc == "zstd" {
			in = zstdBytes(t, body, true)
		}
		dst, err := Decompress(enc, in, 1<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		n := testing.AllocsPerRun(100, func() { dst, _ = Decompress(enc, in, 1<<20, dst) })
		t.Logf("%s: %v allocations per call", enc, n)
		if n > 2 {
			t.Errorf("%s: %v allocations per call, want ≤ 2 (pooled readers)", enc, n)
		}
	}
}
