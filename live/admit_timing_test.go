package live

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkLiveAdmit is a gateway's request of 30 known labels, as at
// saturation under bench ingest.
func BenchmarkLiveAdmit(b *testing.B) {
	l := NewState(Options{})
	labels := make([][]byte, 30)
	ups := make([]Update, 30)
	for i := range labels {
		labels[i] = []byte(string(rune('A'+i/12)) + strconv.Itoa(i%12+1))
		ups[i] = Update{Panel: string(labels[i]), TS: time.Date(2026, 6, 21, 10, 0, 0, 0, time.UTC).UnixMilli(), PinDW: 1}
	}
	ok := make([]bool, len(labels))
	l.Admit(1, labels, ok)
	l.Apply(1, 1, ups)
	b.ReportAllocs()
	for b.Loop() {
		if l.Admit(1, labels, ok) != 0 {
			b.Fatal("refused")
		}
	}
}
