package bench

import (
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/ingest"
)

// Patched template bodies decode to the seq and timestamps of the request.
func TestTemplateBodiesDecode(t *testing.T) {
	sim := NewSim([]Gateway{{Key: "k", Panels: 30}}, time.Now().Add(-time.Hour), time.Second)
	var dec ingest.Decoder
	for _, nd := range []bool{false, true} {
		o := &LoadOptions{Step: time.Second, NDJSON: nd}
		var body []byte
		for i := 1; i <= 3; i++ {
			var n int
			body, n = sim.states[0].next(body, o, &sim.templates)
			var b ingest.Batch
			var err error
			if nd {
				err = dec.DecodeNDJSON(body, &b)
			} else {
				err = dec.DecodeJSON(body, &b)
			}
			if err != nil || len(b.Readings) != n || len(b.Problems) != 0 || b.Seq != seqBase+sim.states[0].seq {
				t.Fatalf("body %d: %v %d readings %v problems seq %d\n%s", i, err, len(b.Readings), b.Problems, b.Seq, body)
			}
			if b.Readings[29].TS != sim.states[0].ts.UnixMilli() {
				t.Fatalf("ts %d", b.Readings[29].TS)
			}
		}
	}
}
