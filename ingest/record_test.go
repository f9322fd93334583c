package ingest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"testing"
)

func scaledOf(rs []Reading) []ScaledReading {
	out := make([]ScaledReading, len(rs))
	for i := range rs {
		out[i] = rs[i].Scaled()
	}
	return out
}

func checkRecord(t *testing.T, rec *Record, h RecordHeader, want []ScaledReading) {
	t.Helper()
	if rec.RecordHeader != h {
		t.Fatalf("header %+v, want %+v", rec.RecordHeader, h)
	}
	if len(rec.Readings) != len(want) {
		t.Fatalf("%d readings, want %d", len(rec.Readings), len(want))
	}
	for i := range want {
		if !scaledEqual(&rec.Readings[i], &want[i]) {
			t.Fatalf("reading %d: %+v, want %+v", i, rec.Readings[i], want[i])
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	h := RecordHeader{GatewayID: 77, SystemID: 123456, Seq: 1842, ReceivedAt: testNowMS}
	// Several intervals of the same panels, as a gateway catching up sends.
	intervals := func(panels, n int) []Reading {
		var rs []Reading
		for k := range n {
			for _, r := range sampleReadings(panels, int64(k)) {
				r.TS -= int64(k) * 300_000
				rs = append(rs, r)
			}
		}
		return rs
	}
	tests := []struct {
		name     string
		h        RecordHeader
		readings []Reading
	}{
		{"no readings", h, nil},
		{"one 30-panel interval", h, sampleReadings(30, 1)},
		{"twelve intervals of 30 panels share labels", h, intervals(30, 12)},
		{"more distinct labels than the dictionary holds", h, intervals(700, 2)},
		{"extreme header values", RecordHeader{GatewayID: math.MaxUint32, SystemID: math.MaxUint32, Seq: math.MaxUint64, ReceivedAt: math.MinInt64, BodyHash: math.MaxUint64},
			[]Reading{{Panel: []byte("A1"), TS: math.MaxInt64}, {Panel: []byte("A1"), TS: math.MinInt64}}},
		{"extreme values", h, []Reading{{Panel: []byte("A1"), TS: testNowMS, Vin: 655.35, Iin: 65.535, Pin: 6553.5, Vout: 655.35, Temp: -3276.8, RSSI: 255, Wh: 4294967.295}}},
	}
	var rec Record
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendRecord([]byte("prefix"), tt.h, tt.readings)
			if err := rec.Decode(b[len("prefix"):]); err != nil {
				t.Fatal(err)
			}
			checkRecord(t, &rec, tt.h, scaledOf(tt.readings))
		})
	}
}

// TestRecordSize pins the compactness the format promises.
func TestRecordSize(t *testing.T) {
	h := RecordHeader{GatewayID: 77, SystemID: 123456, Seq: 1842, ReceivedAt: testNowMS}
	rs := sampleReadings(30, 1)
	one := len(AppendRecord(nil, h, rs))
	if per := float64(one) / 30; per > 20 {
		t.Errorf("one interval: %.1f bytes/reading, want ≤ 20", per)
	}
	var twelve []Reading
	for k := range 12 {
		for _, r := range rs {
			r.TS -= int64(k) * 300_000
			twelve = append(twelve, r)
		}
	}
	if per := float64(len(AppendRecord(nil, h, twelve))) / float64(len(twelve)); per > 16 {
		t.Errorf("twelve intervals: %.1f bytes/reading, want ≤ 16 (labels from the dictionary)", per)
	} else {
		t.Logf("bytes per reading: %.1f (one interval), %.1f (twelve)", float64(one)/30, per)
	}
}

// TestRecordGolden pins the version-2 encoding — a change here is a format
// change and needs a new RecordVersion — and that version 1 (a log written
// before the body hash) still decodes.
func TestRecordGolden(t *testing.T) {
	h := RecordHeader{GatewayID: 7, SystemID: 300, Seq: 1842, ReceivedAt: 1763798400123, BodyHash: 0x0123456789abcdef}
	rs := []Reading{validWant, validWant}
	rs[1].TS += 1000
	const readings = "00024131" + "f501" + "ec1d" + "8c47" + "941b" + "ce1d" + "be06" + "b4" + "a82d" + // "A1" literal, ts −123, values
		"01" + "d00f" + "ec1d" + "8c47" + "941b" + "ce1d" + "be06" + "b4" + "a82d" // dictionary ref 1, ts +1000
	const want = "02" + "07" + "ac02" + "b20e" + "f6f19da9d566" + "efcdab8967452301" + "02" + // version, gw, system, seq, received-at, body hash, n
		readings
	if got := hex.EncodeToString(AppendRecord(nil, h, rs)); got != want {
		t.Fatalf("encoding changed:\n got %s\nwant %s", got, want)
	}
	v1, err := hex.DecodeString("01" + "07" + "ac02" + "b20e" + "f6f19da9d566" + "02" + readings)
	if err != nil {
		t.Fatal(err)
	}
	var rec Record
	if err := rec.Decode(v1); err != nil {
		t.Fatalf("version 1: %v", err)
	}
	h.BodyHash = 0
	checkRecord(t, &rec, h, scaledOf(rs))
}

func TestRecordDecodeErrors(t *testing.T) {
	valid := AppendRecord(nil, RecordHeader{GatewayID: 1, SystemID: 2, Seq: 3, ReceivedAt: testNowMS}, sampleReadings(3, 1))
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown version", append([]byte{3}, valid[1:]...)},
		{"version 0", append([]byte{0}, valid[1:]...)},
		{"trailing byte", append(append([]byte{}, valid...), 0)},
		{"gateway id over 32 bits", []byte{1, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0, 0}},
		{"more readings than bytes", []byte{1, 1, 1, 1, 0, 0xff, 0xff, 0x03}},
		{"dictionary reference before any label", []byte{1, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0}},
		{"label longer than the record", []byte{1, 1, 1, 1, 0, 1, 0, 50, 'A', 0, 1, 1, 1, 1, 0, 0, 0}},
		{"uint16 value over 65535", []byte{1, 1, 1, 1, 0, 1, 0, 1, 'A', 0, 0x80, 0x80, 0x04, 1, 1, 1, 0, 0, 0}},
		{"temp over int16", []byte{1, 1, 1, 1, 0, 1, 0, 1, 'A', 0, 1, 1, 1, 1, 0x80, 0x80, 0x04, 0, 0}},
		{"overlong varint", []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	}
	var rec Record
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := rec.Decode(tt.in); !errors.Is(err, ErrBadRecord) {
				t.Fatalf("err = %v, want ErrBadRecord", err)
			}
		})
	}
	t.Run("every truncation fails", func(t *testing.T) {
		for n := range len(valid) {
			if err := rec.Decode(valid[:n]); !errors.Is(err, ErrBadRecord) {
				t.Fatalf("%d of %d bytes: err = %v", n, len(valid), err)
			}
		}
	})
}

func TestRecordDecodeReusesBuffers(t *testing.T) {
	var rec Record
	h := RecordHeader{GatewayID: 1, SystemID: 2, Seq: 3, ReceivedAt: testNowMS}
	big, small := sampleReadings(50, 1), sampleReadings(3, 2)
	for i, rs := range [][]Reading{big, small, big} {
		if err := rec.Decode(AppendRecord(nil, h, rs)); err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkRecord(t, &rec, h, scaledOf(rs)) })
	}
}
