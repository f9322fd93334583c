package ingest

import (
	"testing"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
)

func TestSeqWindow(t *testing.T) {
	d := newDedup()
	for seq := uint64(1); seq <= SeqWindow+5; seq++ {
		if st := d.reserve(1, seq, seq*10); st != seqNew {
			t.Fatalf("seq %d: %v", seq, st)
		}
		d.commit(1, seq, seq*10)
	}
	f := func(seq, hash uint64, want seqState) {
		t.Helper()
		if got := d.reserve(1, seq, hash); got != want {
			t.Fatalf("reserve(%d, %d) = %v, want %v", seq, hash, got, want)
		}
		if got := d.reserve(1, seq, hash); want == seqNew && got != seqInFlight {
			t.Fatalf("reserve(%d, %d) twice = %v, want in flight", seq, hash, got)
		}
		d.release(1, seq)
	}
	f(SeqWindow+5, (SeqWindow+5)*10, seqDuplicate)
	f(6, 60, seqDuplicate) // the oldest remembered
	f(6, 61, seqReused)
	f(5, 999, seqNew) // forgotten: a counter reset, not a duplicate
	f(SeqWindow+6, 1, seqNew)
	if st := d.reserve(2, 6, 61); st != seqNew {
		t.Fatalf("another gateway's seq: %v", st)
	}

	// The checkpoint restores the same window.
	cps := d.takeDirty([]uint32{1, 2, 3})
	if len(cps) != 1 || cps[0].gateway != 1 || cps[0].max != SeqWindow+5 {
		t.Fatalf("checkpoints %+v", cps)
	}
	if again := d.takeDirty([]uint32{1}); len(again) != 0 {
		t.Fatalf("clean window checkpointed again: %+v", again)
	}
	r := newDedup()
	if err := r.restore(cps[0]); err != nil {
		t.Fatal(err)
	}
	d = r
	f(6, 60, seqDuplicate)
	f(6, 61, seqReused)
	f(5, 50, seqNew)
}

// Windows checkpointed before body hashes (a roaring64 bitmap of seqs)
// restore their last SeqWindow seqs, duplicates whatever their body.
func TestSeqWindowRestoresTheFormatBeforeHashes(t *testing.T) {
	bm := roaring64.New()
	bm.AddRange(1, 101)
	b, err := bm.ToBytes()
	if err != nil {
		t.Fatal(err)
	}
	d := newDedup()
	if err := d.restore(checkpoint{gateway: 4, max: 100, seqs: b}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		seq  uint64
		want seqState
	}{{100, seqDuplicate}, {101 - SeqWindow, seqDuplicate}, {100 - SeqWindow, seqNew}, {101, seqNew}} {
		if got := d.reserve(4, c.seq, 12345); got != c.want {
			t.Fatalf("seq %d: %v, want %v", c.seq, got, c.want)
		}
		d.release(4, c.seq)
	}
}

// The checkpoint decoder reads rows of a table: whatever they hold, it
// answers an error or a window, never a panic.
func FuzzSeqWindowRestore(f *testing.F) {
	d := newDedup()
	for seq := uint64(1); seq < 40; seq += 3 {
		d.commit(1, seq, seq^0x5555)
	}
	f.Add(d.takeDirty([]uint32{1})[0].seqs)
	bm := roaring64.BitmapOf(1, 2, 3, 1<<40)
	b, _ := bm.ToBytes()
	f.Add(b)
	// A bucket count the decoder would allocate (the fuzzer's first find).
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x01, 0, 0, 0, 0x3a, 0x30, 0, 0, 0, 0, 0, 0})
	f.Add([]byte("FSQ1"))
	f.Add([]byte("FSQ1\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := newDedup()
		if err := d.restore(checkpoint{gateway: 1, seqs: data}); err != nil {
			return
		}
		w := d.window(1)
		if w.n > SeqWindow {
			t.Fatalf("%d seqs in a window of %d", w.n, SeqWindow)
		}
		cp := d.takeDirty([]uint32{1})
		if len(cp) == 1 {
			again := newDedup()
			if err := again.restore(cp[0]); err != nil {
				t.Fatalf("a window's own checkpoint does not restore: %v", err)
			}
		}
	})
}
