package main

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/live"
	"github.com/fleetscope/fleetscope/store"
)

// The ingest flags of issue 14: their defaults, their environment twins,
// and the refusals that keep them coherent.
func TestIngestIntegrityFlags(t *testing.T) {
	c, err := parseServe(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ingest.MaxPanels != live.DefaultMaxPanels || c.ingest.RawRetention != store.DefaultRawRetention || store.DefaultRawRetention != 400*24*time.Hour ||
		c.ingest.WALSkipCorrupt {
		t.Fatalf("defaults: max panels %d, raw retention %s, skip corrupt %v", c.ingest.MaxPanels, c.ingest.RawRetention, c.ingest.WALSkipCorrupt)
	}
	t.Setenv("FLEETSCOPE_INGEST_MAX_PANELS", "64")
	t.Setenv("FLEETSCOPE_RAW_RETENTION", "2160h")
	t.Setenv("FLEETSCOPE_WAL_SKIP_CORRUPT", "true")
	if c, err = parseServe(nil); err != nil {
		t.Fatal(err)
	}
	if c.ingest.MaxPanels != 64 || c.ingest.RawRetention != 90*24*time.Hour || !c.ingest.WALSkipCorrupt {
		t.Fatalf("from the environment: max panels %d, raw retention %s, skip corrupt %v", c.ingest.MaxPanels, c.ingest.RawRetention, c.ingest.WALSkipCorrupt)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ingest-max-panels", "0"}, "positive"},
		{[]string{"--raw-retention", "30m"}, "--raw-retention"},
		{[]string{"--raw-retention", "720h", "--retention", "840h"}, "--retention"},
	} {
		if _, err := parseServe(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want one naming %q", tc.args, err, tc.want)
		}
	}
}
