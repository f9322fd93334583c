package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/bench"
	"github.com/fleetscope/fleetscope/internal/storetest"
)

// `fleetscope bench store` inserts the same batch round after round into
// copies of readings, a ReplacingMergeTree keyed by (system, panel, ts):
// every round must stay its own rows (StoreInsert counts them with FINAL),
// and the caller's columns come back as they were.
func TestStoreInsertKeepsEveryRound(t *testing.T) {
	s := storetest.Open(t)
	cols := bench.FleetColumns(1, 3000, 30, time.Date(2026, 6, 21, 6, 0, 0, 0, time.UTC), time.Minute)
	first := cols.TS[0]
	res, err := bench.StoreInsert(context.Background(), s, cols, 4)
	if err != nil {
		t.Fatal(err)
	}
	if res.BatchRows != 3000 || res.Rounds != 4 || res.Bridge <= 0 || res.Engine <= 0 {
		t.Fatalf("result %+v", res)
	}
	if cols.TS[0] != first {
		t.Fatalf("columns changed: first ts %d, was %d", cols.TS[0], first)
	}
}
