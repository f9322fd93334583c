package ingest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/live"
)

// Decode benchmarks: the per-request CPU cost of the ingest path before the
// WAL. b.SetBytes is the uncompressed body size, so MB/s compare across
// encodings; readings/s is the figure DESIGN §7 targets.

var benchSizes = []int{30, 1000}

func benchmarkDecode(b *testing.B, encoding string, ndjson bool) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("readings=%d", n), func(b *testing.B) {
			body := sampleBody(n)
			if ndjson {
				body = sampleNDJSON(n)
			}
			in := body
			switch encoding {
			case "gzip":
				in = gzipBytes(b, body)
			case "zstd":
				in = zstdBytes(b, body, true)
			}
			d := newTestDecoder(0)
			var batch Batch
			var buf []byte
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				raw, err := Decompress(encoding, in, DefaultMaxBodySize, buf)
				if err != nil {
					b.Fatal(err)
				}
				if encoding != "" {
					buf = raw
				}
				if ndjson {
					err = d.DecodeNDJSON(raw, &batch)
				} else {
					err = d.DecodeJSON(raw, &batch)
				}
				if err != nil || len(batch.Readings) != n {
					b.Fatalf("%v, %d readings", err, len(batch.Readings))
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "readings/s")
		})
	}
}

func BenchmarkDecodeJSON(b *testing.B)       { benchmarkDecode(b, "", false) }
func BenchmarkDecodeNDJSON(b *testing.B)     { benchmarkDecode(b, "", true) }
func BenchmarkDecodeJSONGzip(b *testing.B)   { benchmarkDecode(b, "gzip", false) }
func BenchmarkDecodeNDJSONGzip(b *testing.B) { benchmarkDecode(b, "gzip", true) }
func BenchmarkDecodeJSONZstd(b *testing.B)   { benchmarkDecode(b, "zstd", false) }

// BenchmarkAppendRecord is the cost of building the WAL payload of one
// 30-reading request; SetBytes is the payload size.
func BenchmarkAppendRecord(b *testing.B) {
	h := RecordHeader{GatewayID: 1, SystemID: 2, Seq: 3, ReceivedAt: testNowMS}
	rs := sampleReadings(30, 1)
	buf := AppendRecord(nil, h, rs)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRecord(buf[:0], h, rs)
	}
}

// BenchmarkRecordDecode is the batcher's cost of reading one 30-reading
// payload back.
func BenchmarkRecordDecode(b *testing.B) {
	h := RecordHeader{GatewayID: 1, SystemID: 2, Seq: 3, ReceivedAt: testNowMS}
	buf := AppendRecord(nil, h, sampleReadings(30, 1))
	var rec Record
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if err := rec.Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLiveApply applies 30-panel records of 2000 systems round-robin,
// as the flusher does at saturation: per record, with the zone lookup a
// real live.ZoneFunc makes (a map behind a mutex).
func BenchmarkLiveApply(b *testing.B) {
	const systems, panels = 2000, 30
	var mu sync.Mutex
	zones := map[uint32]*time.Location{}
	l := live.New(func(sys uint32) *time.Location {
		mu.Lock()
		defer mu.Unlock()
		if z, ok := zones[sys]; ok {
			return z
		}
		zones[sys] = time.UTC
		return time.UTC
	})
	labels := make([]string, panels)
	for i := range labels {
		labels[i] = fmt.Sprintf("A%d", i+1)
	}
	start := time.Date(2026, 6, 21, 10, 0, 0, 0, time.UTC).UnixMilli()
	ups := make([]live.Update, panels)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		sys := uint32(i%systems) + 1
		ts := start + int64(i/systems)*1000
		for p := range ups {
			ups[p] = live.Update{Panel: labels[p], TS: ts, PinDW: int64(2000 + p), WhMWh: 500}
		}
		l.Apply(sys, uint64(i+1), ups)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*panels), "ns/reading")
}
