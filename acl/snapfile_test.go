package acl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// smallState folds n random events into an index.
func smallState(t testing.TB, seed uint64, n int) *Index {
	t.Helper()
	clockNow := func() time.Time { return t0 }
	g := &gen{r: rand.New(rand.NewPCG(seed, 1)), clock: NewHLC(0, clockNow), seen: map[Stamp]bool{}, now: clockNow}
	x := New(Options{Now: clockNow})
	for range n {
		if _, err := x.Apply(g.event()); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

func setChunkRaw(n int) (restore func()) {
	old := snapChunkRaw
	snapChunkRaw = n
	return func() { snapChunkRaw = old }
}

func decodeAll(blob []byte) (snapHeader, []Event, error) {
	var got []Event
	h, err := decodeSnapshotBlob(blob, func(evs []Event) error {
		got = append(got, evs...)
		return nil
	})
	return h, got, err
}

// A blob decodes to the header and the events it was made of, in one chunk
// or many, and the events rebuild the state.
func TestSnapshotBlobRoundTrip(t *testing.T) {
	x := smallState(t, 1, 2000)
	want := slices.Collect(x.Snapshot().Export())
	for _, chunk := range []int{8 << 20, 1000, 1} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) {
			defer setChunkRaw(chunk)()
			h0 := snapHeader{Covers: t0.UnixMilli(), HLC: 1 << 50, Node: 3}
			blob, h, err := appendSnapshotBlob([]byte("prefix"), h0, slices.Values(want))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(blob, []byte("prefix")) {
				t.Fatal("appendSnapshotBlob overwrote dst")
			}
			if h.Events != uint64(len(want)) || h.Chunks == 0 || chunk == 1 && uint64(h.Chunks) != h.Events {
				t.Fatalf("header %+v for %d events", h, len(want))
			}
			gh, got, err := decodeAll(blob[len("prefix"):])
			if err != nil {
				t.Fatal(err)
			}
			if gh != h {
				t.Fatalf("header %+v, wrote %+v", gh, h)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("decoded %d events, encoded %d (or they differ)", len(got), len(want))
			}
			t.Logf("%d events, %d chunks, %d bytes", h.Events, h.Chunks, len(blob)-len("prefix"))
		})
	}
	// An empty state has an empty snapshot.
	blob, h, err := appendSnapshotBlob(nil, snapHeader{HLC: 1}, New(Options{}).Snapshot().Export())
	if err != nil || h.Events != 0 || h.Chunks != 0 {
		t.Fatalf("empty: %+v %v", h, err)
	}
	if _, got, err := decodeAll(blob); err != nil || len(got) != 0 {
		t.Fatalf("empty: %d events, %v", len(got), err)
	}
}

// Every damage — any byte flipped, cut short, extended — is rejected, and
// nothing of the damaged chunk is emitted.
func TestSnapshotBlobDamage(t *testing.T) {
	defer setChunkRaw(300)()
	x := smallState(t, 2, 200)
	blob, h, err := appendSnapshotBlob(nil, snapHeader{Covers: 5, HLC: 1 << 40, Node: 1}, x.Snapshot().Export())
	if err != nil {
		t.Fatal(err)
	}
	if h.Chunks < 3 {
		t.Fatalf("want several chunks, got %d", h.Chunks)
	}
	_, want, _ := decodeAll(blob)
	for i := range blob {
		bit := byte(1) << (i % 8)
		bad := bytes.Clone(blob)
		bad[i] ^= bit
		_, got, err := decodeAll(bad)
		if err == nil {
			t.Fatalf("byte %d ^ %#x: accepted", i, bit)
		}
		if !errors.Is(err, errSnapshot) {
			t.Fatalf("byte %d: error %v does not wrap errSnapshot", i, err)
		}
		// What was emitted is a prefix of the genuine events: whole chunks
		// before the damage.
		if len(got) > len(want) || !slices.Equal(got, want[:len(got)]) {
			t.Fatalf("byte %d ^ %#x: emitted events that are not the snapshot's", i, bit)
		}
	}
	for _, n := range []int{0, 1, len(snapMagic), 20, len(blob) / 2, len(blob) - 1} {
		if _, _, err := decodeAll(blob[:n]); !errors.Is(err, errSnapshot) {
			t.Fatalf("cut to %d bytes: %v", n, err)
		}
	}
	if _, _, err := decodeAll(append(bytes.Clone(blob), 0)); !errors.Is(err, errSnapshot) {
		t.Fatalf("trailing byte: %v", err)
	}
	// A header that miscounts its events.
	h.Events++
	bad := h.appendBinary(nil)
	_, rest, _ := parseSnapHeader(blob)
	if _, _, err := decodeAll(append(bad, rest...)); !errors.Is(err, errSnapshot) {
		t.Fatalf("wrong event count: %v", err)
	}
}

// resealSnapshot rewrites the checksums of a blob wherever its structure
// parses, so that the fuzzer reaches past them into the zstd frames and the
// records.
func resealSnapshot(b []byte) []byte {
	b = bytes.Clone(b)
	if len(b) < len(snapMagic)+1 {
		return b
	}
	d := decoder{b: b[len(snapMagic)+1:]}
	for range 5 {
		d.uvarint(1<<64 - 1)
	}
	n := len(b) - len(d.b)
	if d.err != nil || len(d.b) < 4 {
		return b
	}
	binary.LittleEndian.PutUint32(b[n:], crc32.Checksum(b[:n], castagnoli))
	rest := b[n+4:]
	for len(rest) > 0 {
		d := decoder{b: rest}
		m := d.uvarint(uint64(len(rest)))
		if d.err != nil || uint64(len(d.b)) < m {
			break
		}
		if c := d.b[:m]; len(c) >= 4 {
			binary.LittleEndian.PutUint32(c, crc32.Checksum(c[4:], castagnoli))
		}
		rest = d.b[m:]
	}
	return b
}

// FuzzSnapshotDecode feeds arbitrary bytes to the snapshot decoder — as they
// are, or with their checksums made to match (reseal), to get at the zstd
// frames and records behind them. It must never panic; an error wraps
// errSnapshot; whatever decodes is valid events that re-encode into a
// snapshot decoding to the same events, and that replay.
func FuzzSnapshotDecode(f *testing.F) {
	defer setChunkRaw(200)()
	for _, seed := range snapshotSeeds(f) {
		f.Add(seed.blob, seed.reseal)
	}
	f.Fuzz(func(t *testing.T, data []byte, reseal bool) {
		if reseal {
			data = resealSnapshot(data)
		}
		h, got, err := decodeAll(data)
		if err != nil {
			if !errors.Is(err, errSnapshot) {
				t.Fatalf("error %v does not wrap errSnapshot", err)
			}
			return
		}
		if h.Events != uint64(len(got)) {
			t.Fatalf("header says %d events, decoded %d", h.Events, len(got))
		}
		blob, _, err := appendSnapshotBlob(nil, snapHeader{Covers: h.Covers, HLC: h.HLC, Node: h.Node}, slices.Values(got))
		if err != nil {
			t.Fatalf("cannot re-encode decoded events: %v", err)
		}
		h2, again, err := decodeAll(blob)
		if err != nil || !slices.Equal(again, got) || h2.id() != h.id() || h2.Covers != h.Covers {
			t.Fatalf("second round trip: %d events (%d), %+v, %v", len(again), len(got), h2, err)
		}
		if _, err := New(Options{}).Replay(batched(slices.Values(got), 64)); err != nil {
			t.Fatalf("decoded events do not replay: %v", err)
		}
	})
}

type snapSeed struct {
	name   string
	blob   []byte
	reseal bool
}

// snapshotSeeds are the seed corpus: snapshots of a few states in small
// chunks, and near misses.
func snapshotSeeds(t testing.TB) []snapSeed {
	t.Helper()
	defer setChunkRaw(200)()
	var out []snapSeed
	var valid []byte
	for i, n := range []int{0, 5, 60} {
		x := smallState(t, uint64(10+i), n)
		blob, _, err := appendSnapshotBlob(nil, snapHeader{Covers: t0.UnixMilli(), HLC: 1<<56 + uint64(i), Node: uint16(i)}, x.Snapshot().Export())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, snapSeed{fmt.Sprintf("valid-%d-events", n), blob, false})
		valid = blob
	}
	flip := bytes.Clone(valid)
	flip[len(flip)/2] ^= 4
	out = append(out,
		snapSeed{"reject-flipped", flip, false},
		snapSeed{"resealed-flipped", flip, true},
		snapSeed{"reject-truncated", valid[:len(valid)-3], false},
		snapSeed{"reject-trailing", append(bytes.Clone(valid), 1), false},
		snapSeed{"reject-version", append([]byte(snapMagic+"\x02"), valid[len(snapMagic)+1:]...), false},
		snapSeed{"reject-empty", nil, false},
	)
	return out
}

// TestSnapshotFuzzCorpus keeps the checked-in seed corpus of
// FuzzSnapshotDecode in step with the format: the valid seeds decode, the
// others do not (with -acl.update the corpus is rewritten).
func TestSnapshotFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzSnapshotDecode")
	if *flagUpdate {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range snapshotSeeds(t) {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s.blob)) + ")\nbool(" + strconv.FormatBool(s.reseal) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(files) < 5 {
		t.Fatalf("seed corpus: %d files (%v); run go test -run TestSnapshotFuzzCorpus -acl.update", len(files), err)
	}
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[1], "[]byte(") || !strings.HasPrefix(lines[2], "bool(") {
			t.Fatalf("%s: not a go fuzz corpus file of ([]byte, bool)", name)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, _, err = decodeAll([]byte(s))
		if valid := strings.HasPrefix(filepath.Base(name), "valid"); valid != (err == nil) {
			t.Errorf("%s: decode error %v", name, err)
		}
	}
}
