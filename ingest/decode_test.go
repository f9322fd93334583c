package ingest

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// validReading is a reading at the test clock's interval with every field.
const validReading = `{"panel":"A1","ts":1763798400000,"vin":38.2,"iin":9.1,"pin":347.6,"vout":37.9,"temp":41.5,"rssi":180,"wh":5.8}`

var validWant = Reading{Panel: []byte("A1"), TS: 1763798400000, Vin: 38.2, Iin: 9.1, Pin: 347.6, Vout: 37.9, Temp: 41.5, RSSI: 180, Wh: 5.8}

func TestDecodeJSONDocumentErrors(t *testing.T) {
	deep := strings.Repeat("[", 400) + strings.Repeat("]", 400)
	tests := []struct {
		name string
		body string
		want error
	}{
		{"empty body is malformed", ``, ErrMalformed},
		{"truncated document is malformed", `{"seq":1,"readings":[` + validReading, ErrMalformed},
		{"not JSON is malformed", `seq=1`, ErrMalformed},
		{"top-level array is malformed", `[]`, ErrMalformed},
		{"top-level string is malformed", `"x"`, ErrMalformed},
		{"missing seq is malformed", `{"readings":[]}`, ErrMalformed},
		{"null seq is malformed", `{"seq":null,"readings":[]}`, ErrMalformed},
		{"negative seq is malformed", `{"seq":-1,"readings":[]}`, ErrMalformed},
		{"fractional seq is malformed", `{"seq":1.5,"readings":[]}`, ErrMalformed},
		{"seq with exponent is malformed", `{"seq":1e3,"readings":[]}`, ErrMalformed},
		{"seq as string is malformed", `{"seq":"1","readings":[]}`, ErrMalformed},
		{"seq over 2^64-1 is malformed", `{"seq":18446744073709551616,"readings":[]}`, ErrMalformed},
		{"seq with leading zero is malformed", `{"seq":01,"readings":[]}`, ErrMalformed},
		{"missing readings is malformed", `{"seq":1}`, ErrMalformed},
		{"null readings is malformed", `{"seq":1,"readings":null}`, ErrMalformed},
		{"readings object is malformed", `{"seq":1,"readings":{}}`, ErrMalformed},
		{"repeated seq is malformed", `{"seq":1,"seq":2,"readings":[]}`, ErrMalformed},
		{"repeated readings is malformed", `{"seq":1,"readings":[],"readings":[` + validReading + `]}`, ErrMalformed},
		{"trailing garbage is malformed", `{"seq":1,"readings":[]} x`, ErrMalformed},
		{"two documents are malformed", `{"seq":1,"readings":[]}{"seq":2,"readings":[]}`, ErrMalformed},
		{"nesting deeper than 300 is malformed", `{"seq":1,"readings":[],"x":` + deep + `}`, ErrMalformed},
		{"a misspelt Infinity is malformed", `{"seq":1,"readings":[{"vin":-Infinit}]}`, ErrMalformed},
		{"a bare word is malformed", `{"seq":1,"readings":[{"vin":yes}]}`, ErrMalformed},
		{"a raw control character in a string is malformed", "{\"seq\":1,\"readings\":[{\"panel\":\"A\x011\"}]}", ErrMalformed},
		{"an unknown escape is malformed", `{"seq":1,"readings":[{"panel":"A\q"}]}`, ErrMalformed},
		{"a short \\u escape is malformed", `{"seq":1,"readings":[{"panel":"A\u12"}]}`, ErrMalformed},
		{"an unterminated string is malformed", `{"seq":1,"readings":[{"panel":"A1}]}`, ErrMalformed},
		{"a missing colon is malformed", `{"seq" 1,"readings":[]}`, ErrMalformed},
		{"a trailing comma is malformed", `{"seq":1,"readings":[],}`, ErrMalformed},
		{"a trailing comma in readings is malformed", `{"seq":1,"readings":[` + validReading + `,]}`, ErrMalformed},
		{"a NUL after the document is malformed", "{\"seq\":1,\"readings\":[]}\x00", ErrMalformed},
		{"a syntax error past the reading limit is malformed, not too many", `{"seq":1,"readings":[` + validReading + `,` + validReading + `,` + validReading + `,x]}`, ErrMalformed},
		{"three readings over a limit of two", `{"seq":1,"readings":[` + validReading + `,` + validReading + `,` + validReading + `]}`, ErrTooManyReadings},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDecoder(2)
			var b Batch
			err := d.DecodeJSON([]byte(tt.body), &b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if len(b.Readings) != 0 || len(b.Problems) != 0 {
				t.Fatalf("batch not empty after error: %d readings, %d problems", len(b.Readings), len(b.Problems))
			}
		})
	}
}

func TestDecodeJSONDocuments(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		seq      uint64
		accepted int
	}{
		{"empty readings array is a valid empty batch", `{"seq":1,"readings":[]}`, 1, 0},
		{"seq 0 is accepted", `{"seq":0,"readings":[]}`, 0, 0},
		{"seq 2^64-1 is accepted", `{"seq":18446744073709551615,"readings":[]}`, math.MaxUint64, 0},
		{"unknown top-level keys are ignored", `{"fw":"1.2","seq":7,"extra":{"a":[1,2]},"readings":[` + validReading + `]}`, 7, 1},
		{"whitespace around tokens is allowed", " \n\t{ \"seq\" : 3 ,\r\n \"readings\" : [ " + validReading + " ] } \n", 3, 1},
		{"key order does not matter", `{"readings":[` + validReading + `],"seq":9}`, 9, 1},
		{"exactly the reading limit is accepted", `{"seq":1,"readings":[` + validReading + `,` + validReading + `]}`, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDecoder(2)
			var b Batch
			if err := d.DecodeJSON([]byte(tt.body), &b); err != nil {
				t.Fatal(err)
			}
			if b.Seq != tt.seq || len(b.Readings) != tt.accepted || len(b.Problems) != 0 {
				t.Fatalf("seq %d, %d accepted, problems %v; want seq %d, %d accepted", b.Seq, len(b.Readings), b.Problems, tt.seq, tt.accepted)
			}
		})
	}
}

// readingCase is one reading, decoded alone in JSON and in NDJSON.
type readingCase struct {
	name   string
	json   string
	want   Reading // if reason is ReasonNone
	reason Reason
	field  Field
}

func withTS(ts int64) Reading { r := validWant; r.TS = ts; return r }

var readingCases = []readingCase{
	{"full reading decodes every field", validReading, validWant, ReasonNone, FieldNone},
	{"ts as RFC 3339 UTC", `{"panel":"A1","ts":"2025-11-22T08:00:00Z","vin":38.2,"iin":9.1,"pin":347.6,"vout":37.9,"temp":41.5,"rssi":180,"wh":5.8}`, validWant, ReasonNone, FieldNone},
	{"ts as RFC 3339 with offset and fraction", `{"panel":"A1","ts":"2025-11-22T09:00:00.250+01:00","vin":38.2,"iin":9.1,"pin":347.6,"vout":37.9,"temp":41.5,"rssi":180,"wh":5.8}`, withTS(1763798400250), ReasonNone, FieldNone},
	{"ts as RFC 3339 lower-case t and z", `{"panel":"A1","ts":"2025-11-22t08:00:00z","vin":38.2,"iin":9.1,"pin":347.6,"vout":37.9,"temp":41.5,"rssi":180,"wh":5.8}`, validWant, ReasonNone, FieldNone},
	{"only required fields: optional ones are 0", `{"panel":"B12","ts":1763798400000,"pin":12.5,"wh":0.1}`,
		Reading{Panel: []byte("B12"), TS: 1763798400000, Pin: 12.5, Wh: 0.1}, ReasonNone, FieldNone},
	{"null optional fields are 0", `{"panel":"B12","ts":1763798400000,"pin":12.5,"wh":0.1,"vin":null,"temp":null}`,
		Reading{Panel: []byte("B12"), TS: 1763798400000, Pin: 12.5, Wh: 0.1}, ReasonNone, FieldNone},
	{"unknown fields are ignored", `{"panel":"A1","fw":"x","ts":1763798400000,"pin":1,"wh":1,"extra":[{"a":1}]}`,
		Reading{Panel: []byte("A1"), TS: 1763798400000, Pin: 1, Wh: 1}, ReasonNone, FieldNone},
	{"escaped panel label is unescaped", `{"panel":"A\u0031","ts":1763798400000,"pin":1,"wh":1}`,
		Reading{Panel: []byte("A1"), TS: 1763798400000, Pin: 1, Wh: 1}, ReasonNone, FieldNone},
	{"16-character panel with all allowed characters", `{"panel":"Zz09_.-abcdefghi","ts":1763798400000,"pin":1,"wh":1}`,
		Reading{Panel: []byte("Zz09_.-abcdefghi"), TS: 1763798400000, Pin: 1, Wh: 1}, ReasonNone, FieldNone},
	{"negative zero is in range", `{"panel":"A1","ts":1763798400000,"pin":-0,"wh":0.0,"vin":-0.0}`,
		Reading{Panel: []byte("A1"), TS: 1763798400000}, ReasonNone, FieldNone},
	{"exponent numbers are parsed exactly", `{"panel":"A1","ts":1763798400000,"pin":3.476e2,"wh":58E-1}`,
		Reading{Panel: []byte("A1"), TS: 1763798400000, Pin: 347.6, Wh: 5.8}, ReasonNone, FieldNone},
	{"every bound is inclusive (upper)", `{"panel":"A1","ts":1763798700000,"vin":120,"iin":30,"pin":1500,"vout":120,"temp":125,"rssi":255,"wh":2000}`,
		Reading{Panel: []byte("A1"), TS: 1763798700000, Vin: 120, Iin: 30, Pin: 1500, Vout: 120, Temp: 125, RSSI: 255, Wh: 2000}, ReasonNone, FieldNone},
	{"every bound is inclusive (lower)", `{"panel":"A1","ts":1760774460000,"vin":0,"iin":0,"pin":0,"vout":0,"temp":-50,"rssi":0,"wh":0}`,
		Reading{Panel: []byte("A1"), TS: 1760774460000, Temp: -50}, ReasonNone, FieldNone},

	{"number instead of object", `42`, Reading{}, ReasonMalformedReading, FieldNone},
	{"array instead of object", `[1,2]`, Reading{}, ReasonMalformedReading, FieldNone},
	{"null instead of object", `null`, Reading{}, ReasonMalformedReading, FieldNone},
	{"empty object misses panel first", `{}`, Reading{}, ReasonMissingField, FieldPanel},
	{"missing ts", `{"panel":"A1","pin":1,"wh":1}`, Reading{}, ReasonMissingField, FieldTS},
	{"missing pin", `{"panel":"A1","ts":1763798400000,"wh":1}`, Reading{}, ReasonMissingField, FieldPin},
	{"null pin counts as missing", `{"panel":"A1","ts":1763798400000,"pin":null,"wh":1}`, Reading{}, ReasonMissingField, FieldPin},
	{"missing wh", `{"panel":"A1","ts":1763798400000,"pin":1}`, Reading{}, ReasonMissingField, FieldWh},
	{"repeated field", `{"panel":"A1","ts":1763798400000,"pin":1,"pin":2,"wh":1}`, Reading{}, ReasonDuplicateField, FieldPin},
	{"repeated field even if first is null", `{"panel":"A1","ts":1763798400000,"pin":null,"pin":2,"wh":1}`, Reading{}, ReasonDuplicateField, FieldPin},
	{"panel as number", `{"panel":1,"ts":1763798400000,"pin":1,"wh":1}`, Reading{}, ReasonTypeInvalid, FieldPanel},
	{"empty panel", `{"panel":"","ts":1763798400000,"pin":1,"wh":1}`, Reading{}, ReasonPanelInvalid, FieldPanel},
	{"17-character panel", `{"panel":"ABCDEFGHIJKLMNOPQ","ts":1763798400000,"pin":1,"wh":1}`, Reading{}, ReasonPanelInvalid, FieldPanel},
	{"panel with a space", `{"panel":"A 1","ts":1763798400000,"pin":1,"wh":1}`, Reading{}, ReasonPanelInvalid, FieldPanel},
	{"panel with non-ASCII letters", `{"panel":"Ä1","ts":1763798400000,"pin":1,"wh":1}`, Reading{}, ReasonPanelInvalid, FieldPanel},
	{"panel with an escaped NUL", `{"panel":"A\u0000","ts":1763798400000,"pin":1,"wh":1}`, Reading{}, ReasonPanelInvalid, FieldPanel},
	{"number as string", `{"panel":"A1","ts":1763798400000,"vin":"38.2","pin":1,"wh":1}`, Reading{}, ReasonTypeInvalid, FieldVin},
	{"NaN as string", `{"panel":"A1","ts":1763798400000,"pin":"NaN","wh":1}`, Reading{}, ReasonTypeInvalid, FieldPin},
	{"bool as number", `{"panel":"A1","ts":1763798400000,"pin":true,"wh":1}`, Reading{}, ReasonTypeInvalid, FieldPin},
	{"object as number", `{"panel":"A1","ts":1763798400000,"pin":{"v":1},"wh":1}`, Reading{}, ReasonTypeInvalid, FieldPin},
	{"number with leading zero", `{"panel":"A1","ts":1763798400000,"pin":01,"wh":1}`, Reading{}, ReasonTypeInvalid, FieldPin},
	{"number with bare dot", `{"panel":"A1","ts":1763798400000,"pin":1.,"wh":1}`, Reading{}, ReasonTypeInvalid, FieldPin},
	{"number without integer part", `{"panel":"A1","ts":1763798400000,"pin":.5,"wh":1}`, Reading{}, ReasonTypeInvalid, FieldPin},
	{"NaN literal", `{"panel":"A1","ts":1763798400000,"pin":NaN,"wh":1}`, Reading{}, ReasonNotFinite, FieldPin},
	{"nan literal lower case", `{"panel":"A1","ts":1763798400000,"pin":1,"wh":nan}`, Reading{}, ReasonNotFinite, FieldWh},
	{"inf literal", `{"panel":"A1","ts":1763798400000,"pin":inf,"wh":1}`, Reading{}, ReasonNotFinite, FieldPin},
	{"Infinity literal (Python's json)", `{"panel":"A1","ts":1763798400000,"pin":Infinity,"wh":1}`, Reading{}, ReasonNotFinite, FieldPin},
	{"-Infinity literal", `{"panel":"A1","ts":1763798400000,"pin":1,"vin":-Infinity,"wh":1}`, Reading{}, ReasonNotFinite, FieldVin},
	{"escaped keys are unescaped", `{"p\u0061nel":"A1","ts":1763798400000,"pin":1,"wh":1}`,
		Reading{Panel: []byte("A1"), TS: 1763798400000, Pin: 1, Wh: 1}, ReasonNone, FieldNone},
	{"escaped RFC 3339 ts is unescaped", `{"panel":"A1","ts":"2025-11-22T08:00:00\u005A","vin":38.2,"iin":9.1,"pin":347.6,"vout":37.9,"temp":41.5,"rssi":180,"wh":5.8}`, validWant, ReasonNone, FieldNone},
	{"panel with a lone surrogate", `{"panel":"A\ud800","ts":1763798400000,"pin":1,"wh":1}`, Reading{}, ReasonPanelInvalid, FieldPanel},
	{"NaN ts", `{"panel":"A1","ts":NaN,"pin":1,"wh":1}`, Reading{}, ReasonTSInvalid, FieldTS},
	{"panel as null is missing", `{"panel":null,"ts":1763798400000,"pin":1,"wh":1}`, Reading{}, ReasonMissingField, FieldPanel},
	{"number beyond float64", `{"panel":"A1","ts":1763798400000,"pin":1e400,"wh":1}`, Reading{}, ReasonNotFinite, FieldPin},
	{"huge integer is out of range, not an error", `{"panel":"A1","ts":1763798400000,"pin":123456789012345678901234567890,"wh":1}`, Reading{}, ReasonPinRange, FieldPin},
	{"fractional ts", `{"panel":"A1","ts":1763798400000.5,"pin":1,"wh":1}`, Reading{}, ReasonTSInvalid, FieldTS},
	{"ts with exponent", `{"panel":"A1","ts":1.7637984e12,"pin":1,"wh":1}`, Reading{}, ReasonTSInvalid, FieldTS},
	{"ts beyond int64", `{"panel":"A1","ts":9223372036854775808,"pin":1,"wh":1}`, Reading{}, ReasonTSInvalid, FieldTS},
	{"ts not a date", `{"panel":"A1","ts":"yesterday","pin":1,"wh":1}`, Reading{}, ReasonTSInvalid, FieldTS},
	{"ts date without time", `{"panel":"A1","ts":"2025-11-22","pin":1,"wh":1}`, Reading{}, ReasonTSInvalid, FieldTS},
	{"ts without zone", `{"panel":"A1","ts":"2025-11-22T08:00:00","pin":1,"wh":1}`, Reading{}, ReasonTSInvalid, FieldTS},
	{"ts February 30", `{"panel":"A1","ts":"2025-02-30T08:00:00Z","pin":1,"wh":1}`, Reading{}, ReasonTSInvalid, FieldTS},
	{"ts as bool", `{"panel":"A1","ts":true,"pin":1,"wh":1}`, Reading{}, ReasonTypeInvalid, FieldTS},
	{"ts 5 min + 1 ms ahead", `{"panel":"A1","ts":1763798760001,"pin":1,"wh":1}`, Reading{}, ReasonTSFuture, FieldTS},
	{"ts older than the retention window", `{"panel":"A1","ts":1760774459999,"pin":1,"wh":1}`, Reading{}, ReasonTSTooOld, FieldTS},
	{"negative ts is too old", `{"panel":"A1","ts":-1,"pin":1,"wh":1}`, Reading{}, ReasonTSTooOld, FieldTS},
	{"vin above 120 V", `{"panel":"A1","ts":1763798400000,"vin":120.01,"pin":1,"wh":1}`, Reading{}, ReasonVinRange, FieldVin},
	{"negative vin", `{"panel":"A1","ts":1763798400000,"vin":-0.01,"pin":1,"wh":1}`, Reading{}, ReasonVinRange, FieldVin},
	{"iin above 30 A", `{"panel":"A1","ts":1763798400000,"iin":30.001,"pin":1,"wh":1}`, Reading{}, ReasonIinRange, FieldIin},
	{"pin above 1500 W", `{"panel":"A1","ts":1763798400000,"pin":1500.1,"wh":1}`, Reading{}, ReasonPinRange, FieldPin},
	{"negative pin", `{"panel":"A1","ts":1763798400000,"pin":-1,"wh":1}`, Reading{}, ReasonPinRange, FieldPin},
	{"vout above 120 V", `{"panel":"A1","ts":1763798400000,"vout":121,"pin":1,"wh":1}`, Reading{}, ReasonVoutRange, FieldVout},
	{"temp below -50 °C", `{"panel":"A1","ts":1763798400000,"temp":-50.1,"pin":1,"wh":1}`, Reading{}, ReasonTempRange, FieldTemp},
	{"temp above 125 °C", `{"panel":"A1","ts":1763798400000,"temp":125.1,"pin":1,"wh":1}`, Reading{}, ReasonTempRange, FieldTemp},
	{"rssi above 255", `{"panel":"A1","ts":1763798400000,"rssi":256,"pin":1,"wh":1}`, Reading{}, ReasonRSSIRange, FieldRSSI},
	{"wh above 2000", `{"panel":"A1","ts":1763798400000,"pin":1,"wh":2000.001}`, Reading{}, ReasonWhRange, FieldWh},
	{"first problem in document order wins", `{"vin":"x","panel":7,"ts":true}`, Reading{}, ReasonTypeInvalid, FieldVin},
	{"type problems come before missing fields", `{"panel":"A1","vin":"x"}`, Reading{}, ReasonTypeInvalid, FieldVin},
}

func TestDecodeReadings(t *testing.T) {
	for _, tt := range readingCases {
		t.Run(tt.name, func(t *testing.T) {
			// The case sits between two valid readings, which must survive.
			for _, format := range []string{"json", "ndjson"} {
				d := newTestDecoder(0)
				var b Batch
				var err error
				if format == "json" {
					err = d.DecodeJSON([]byte(`{"seq":5,"readings":[`+validReading+`,`+tt.json+`,`+validReading+`]}`), &b)
				} else {
					err = d.DecodeNDJSON([]byte("{\"seq\":5}\n"+validReading+"\n"+tt.json+"\n"+validReading+"\n"), &b)
				}
				if err != nil {
					t.Fatalf("%s: %v", format, err)
				}
				if tt.reason == ReasonNone {
					if len(b.Problems) != 0 {
						t.Fatalf("%s: problems %v, want none", format, b.Problems)
					}
					if err := readingsEqual(b.Readings, []Reading{validWant, tt.want, validWant}); err != nil {
						t.Fatalf("%s: %v", format, err)
					}
					continue
				}
				want := Problem{Index: 1, Reason: tt.reason, Field: tt.field}
				if len(b.Problems) != 1 || b.Problems[0] != want {
					t.Fatalf("%s: problems %v, want [%v]", format, b.Problems, want)
				}
				if err := readingsEqual(b.Readings, []Reading{validWant, validWant}); err != nil {
					t.Fatalf("%s: %v", format, err)
				}
			}
		})
	}
}

func TestDecodeProblemsAreInIndexOrder(t *testing.T) {
	body := `{"seq":1,"readings":[{"panel":""},` + validReading + `,7,{"panel":"A1","ts":1763798400000,"pin":1},` + validReading + `]}`
	var b Batch
	if err := newTestDecoder(0).DecodeJSON([]byte(body), &b); err != nil {
		t.Fatal(err)
	}
	want := []Problem{
		{Index: 0, Reason: ReasonMissingField, Field: FieldTS},
		{Index: 2, Reason: ReasonMalformedReading},
		{Index: 3, Reason: ReasonMissingField, Field: FieldWh},
	}
	if len(b.Problems) != len(want) {
		t.Fatalf("problems %v, want %v", b.Problems, want)
	}
	for i := range want {
		if b.Problems[i] != want[i] {
			t.Fatalf("problems %v, want %v", b.Problems, want)
		}
	}
	if len(b.Readings) != 2 || b.Total() != 5 {
		t.Fatalf("%d accepted of %d", len(b.Readings), b.Total())
	}
}

func TestDecodeNDJSONDocuments(t *testing.T) {
	r := validReading
	tests := []struct {
		name     string
		body     string
		want     error
		seq      uint64
		accepted int
		problems []Problem
	}{
		{"header and readings with trailing newline", "{\"seq\":3}\n" + r + "\n" + r + "\n", nil, 3, 2, nil},
		{"no trailing newline", "{\"seq\":3}\n" + r + "\n" + r, nil, 3, 2, nil},
		{"CRLF line ends", "{\"seq\":3}\r\n" + r + "\r\n" + r + "\r\n", nil, 3, 2, nil},
		{"blank lines anywhere are ignored", "\n \n{\"seq\":3}\n\n" + r + "\n\t\n" + r + "\n\n", nil, 3, 2, nil},
		{"header only is an empty batch", "{\"seq\":3}", nil, 3, 0, nil},
		{"header with unknown keys", "{\"seq\":3,\"fw\":\"2.1\"}\n" + r, nil, 3, 1, nil},
		{"indices count reading lines, not lines", "{\"seq\":3}\n\n" + r + "\n\n42\n", nil, 3, 1, []Problem{{Index: 1, Reason: ReasonMalformedReading}}},
		{"empty body is malformed", "", ErrMalformed, 0, 0, nil},
		{"blank body is malformed", "\n \r\n", ErrMalformed, 0, 0, nil},
		{"header without seq is malformed", "{}\n" + r, ErrMalformed, 0, 0, nil},
		{"header array is malformed", "[1]\n" + r, ErrMalformed, 0, 0, nil},
		{"negative seq is malformed", "{\"seq\":-3}\n" + r, ErrMalformed, 0, 0, nil},
		{"JSON body sent as NDJSON is malformed", `{"seq":1,"readings":[` + r + `]}`, ErrMalformed, 0, 0, nil},
		{"a non-JSON line makes the whole body malformed", "{\"seq\":3}\n" + r + "\n{\"panel\":\n" + r, ErrMalformed, 0, 0, nil},
		{"two objects on one line are malformed", "{\"seq\":3}\n" + r + " " + r, ErrMalformed, 0, 0, nil},
		{"repeated seq in header is malformed", "{\"seq\":3,\"seq\":4}\n" + r, ErrMalformed, 0, 0, nil},
		{"three readings over a limit of two", "{\"seq\":3}\n" + r + "\n" + r + "\n" + r, ErrTooManyReadings, 0, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Batch
			err := newTestDecoder(2).DecodeNDJSON([]byte(tt.body), &b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if b.Seq != tt.seq || len(b.Readings) != tt.accepted || len(b.Problems) != len(tt.problems) {
				t.Fatalf("seq %d, %d accepted, problems %v; want seq %d, %d accepted, problems %v",
					b.Seq, len(b.Readings), b.Problems, tt.seq, tt.accepted, tt.problems)
			}
			for i := range tt.problems {
				if b.Problems[i] != tt.problems[i] {
					t.Fatalf("problems %v, want %v", b.Problems, tt.problems)
				}
			}
		})
	}
}

// TestDecodeNDJSONPanelsSurviveLaterLines checks that every accepted label
// is intact once all lines are parsed (the parser reuses its buffer per line).
func TestDecodeNDJSONPanelsSurviveLaterLines(t *testing.T) {
	want := sampleReadings(300, 7)
	var b Batch
	if err := newTestDecoder(0).DecodeNDJSON(AppendNDJSON(nil, 1, want), &b); err != nil {
		t.Fatal(err)
	}
	if err := readingsEqual(b.Readings, want); err != nil {
		t.Fatal(err)
	}
}

func TestDecoderReuseAcrossFormatsAndSizes(t *testing.T) {
	d := newTestDecoder(0)
	var b Batch
	small := sampleReadings(30, 1)
	big := sampleReadings(DefaultMaxReadings, 3) // > retainBytes: buffers are dropped after
	if n := len(AppendJSON(nil, 1, big)); n <= retainBytes {
		t.Fatalf("big body is %d bytes, want > %d", n, retainBytes)
	}
	steps := []struct {
		ndjson bool
		rs     []Reading
	}{{false, small}, {true, big}, {true, small}, {false, big}, {false, small}, {true, small}}
	for i, step := range steps {
		var err error
		if step.ndjson {
			err = d.DecodeNDJSON(AppendNDJSON(nil, 1842, step.rs), &b)
		} else {
			err = d.DecodeJSON(AppendJSON(nil, 1842, step.rs), &b)
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if err := readingsEqual(b.Readings, step.rs); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
}

func TestZeroDecoderUsesDefaults(t *testing.T) {
	var d Decoder
	var b Batch
	body := AppendJSON(nil, 1, make([]Reading, DefaultMaxReadings+1))
	if err := d.DecodeJSON(body, &b); !errors.Is(err, ErrTooManyReadings) {
		t.Fatalf("err = %v, want ErrTooManyReadings at the default limit", err)
	}
}

func TestProblemText(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{Index: 3, Reason: ReasonMissingField, Field: FieldPin}, "pin: missing_field: required field missing (panel, ts, pin and wh are required)"},
		{Problem{Reason: ReasonMalformedReading}, "malformed_reading: reading is not a JSON object"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.p, got, tt.want)
		}
	}
}
