package password

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/crypto/argon2"
)

// legacyHash is acl's hashPassword as it stood before this package: salt
// (16 bytes), iterations (uint32 big-endian), PBKDF2-SHA256 key (32 bytes).
func legacyHash(pw string, iter uint32) []byte {
	salt := make([]byte, 16)
	rand.Read(salt)
	key, _ := pbkdf2.Key(sha256.New, pw, salt, int(iter), 32)
	out := append(salt, binary.BigEndian.AppendUint32(nil, iter)...)
	return append(out, key...)
}

// cheapHash is an argon2id hash with the given parameters, in the PHC
// format: tests use small ones where they verify many times.
func cheapHash(pw string, m, t uint32, p uint8, saltLen, keyLen int) []byte {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(keyLen))
	return fmt.Appendf(nil, "$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, t, p, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func value(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}

func TestHashRoundTrip(t *testing.T) {
	f := func(pw string) {
		t.Helper()
		enc, err := Hash(pw)
		if err != nil {
			t.Fatalf("Hash(%d bytes): %v", len(pw), err)
		}
		if want := "$argon2id$v=19$m=19456,t=2,p=1$"; !bytes.HasPrefix(enc, []byte(want)) || len(enc) != 97 || len(enc) > MaxEncoded {
			t.Fatalf("Hash = %q (%d bytes), want prefix %q and 97 bytes", enc, len(enc), want)
		}
		if ok, rehash := Verify(enc, pw); !ok || rehash {
			t.Fatalf("Verify(Hash(pw), pw) = %v, %v; want true, false", ok, rehash)
		}
		if ok, rehash := Verify(enc, pw+"x"); ok || rehash {
			t.Fatalf("Verify with a wrong password = %v, %v", ok, rehash)
		}
	}
	f("correct horse battery staple")
	f("Jürgen-Müller-ß-密码")
	f("")
	f(strings.Repeat("a", MaxLength))
}

func TestHashSalted(t *testing.T) {
	a, _ := Hash("same password")
	b, _ := Hash("same password")
	if bytes.Equal(a, b) {
		t.Fatalf("two hashes of one password are equal: %q", a)
	}
}

func TestTooLong(t *testing.T) {
	pw := strings.Repeat("a", MaxLength+1)
	if _, err := Hash(pw); !errors.Is(err, ErrTooLong) {
		t.Fatalf("Hash of %d bytes: err %v, want ErrTooLong", len(pw), err)
	}
	enc := cheapHash(pw, 8, 1, 1, 16, 32)
	if ok, _ := Verify(enc, pw); ok {
		t.Fatalf("Verify accepted a %d-byte password", len(pw))
	}
}

func TestLegacy(t *testing.T) {
	const pw = "legacy password 1"
	enc := legacyHash(pw, 100_000)
	if len(enc) != 52 {
		t.Fatalf("legacy hash of %d bytes", len(enc))
	}
	if ok, rehash := Verify(enc, pw); !ok || !rehash {
		t.Fatalf("Verify(legacy, pw) = %v, %v; want true, true", ok, rehash)
	}
	if ok, rehash := Verify(enc, "legacy password 2"); ok || rehash {
		t.Fatalf("Verify(legacy, wrong) = %v, %v", ok, rehash)
	}
	// The caller replaces it; the new hash needs nothing more.
	next, _ := Hash(pw)
	if ok, rehash := Verify(next, pw); !ok || rehash {
		t.Fatalf("Verify(rehashed) = %v, %v", ok, rehash)
	}
	// Iterations outside 1..maxLegacyIter are a corrupt record, refused
	// without deriving.
	for _, iter := range []uint32{0, maxLegacyIter + 1, 1<<32 - 1} {
		bad := bytes.Clone(enc)
		binary.BigEndian.PutUint32(bad[16:], iter)
		if _, err := parse(bad); err == nil {
			t.Fatalf("legacy hash with %d iterations parsed", iter)
		}
	}
}

func TestNeedsRehash(t *testing.T) {
	const pw = "rehash me please"
	f := func(m, tc uint32, p uint8, saltLen, keyLen int, want bool) {
		t.Helper()
		enc := cheapHash(pw, m, tc, p, saltLen, keyLen)
		ok, rehash := Verify(enc, pw)
		if !ok || rehash != want {
			t.Fatalf("m=%d t=%d p=%d salt %d key %d: Verify = %v, %v; want true, %v", m, tc, p, saltLen, keyLen, ok, rehash, want)
		}
		if ok, rehash := Verify(enc, pw+"!"); ok || rehash {
			t.Fatalf("m=%d t=%d p=%d: wrong password = %v, %v", m, tc, p, ok, rehash)
		}
	}
	f(64, 1, 1, 16, 32, true)          // weaker memory and passes
	f(memoryKiB, 1, 1, 16, 32, true)   // one pass fewer
	f(memoryKiB/2, 2, 1, 16, 32, true) // half the memory
	f(memoryKiB, 2, 1, 8, 32, true)    // short salt
	f(memoryKiB, 2, 1, 16, 16, true)   // short key
	f(memoryKiB, 2, 1, 16, 32, false)  // current
	f(memoryKiB, 3, 2, 24, 48, false)  // stronger everywhere, 128 bytes encoded
}

// TestTampered changes every byte of a stored hash in turn: no change
// verifies (parameters, salt and key are all bound into the key), and none
// panics.
func TestTampered(t *testing.T) {
	const pw = "tamper-evident"
	enc := cheapHash(pw, 16, 1, 1, 16, 32)
	for i := range enc {
		for _, d := range []byte{1, 0x20} {
			bad := bytes.Clone(enc)
			bad[i] ^= d
			if ok, _ := Verify(bad, pw); ok {
				t.Fatalf("byte %d ^ %#x: %q verifies", i, d, bad)
			}
		}
	}
	legacy := legacyHash(pw, 1000)
	for i := range legacy {
		bad := bytes.Clone(legacy)
		bad[i] ^= 1
		if i >= 16 && i < 20 {
			// An iteration count differing by one is a different
			// derivation; keep it within bounds.
			bad[i] ^= 1
			bad[19] ^= 2
		}
		if ok, _ := Verify(bad, pw); ok {
			t.Fatalf("legacy byte %d changed: verifies", i)
		}
	}
	// And one full-cost hash: its key's last byte.
	real, _ := Hash(pw)
	real[len(real)-2] ^= 1
	if ok, _ := Verify(real, pw); ok {
		t.Fatalf("tampered %q verifies", real)
	}
}

func TestMalformed(t *testing.T) {
	good := string(cheapHash("x", 8, 1, 1, 16, 32))
	salt, key := func() (string, string) {
		parts := strings.Split(good, "$")
		return parts[4], parts[5]
	}()
	long := strings.Repeat("A", 200)
	for _, enc := range []string{
		"",
		"$",
		"$argon2id$",
		"$argon2id$v=19$",
		"$argon2i$v=19$m=8,t=1,p=1$" + salt + "$" + key,  // argon2i, not id
		"$argon2id$v=16$m=8,t=1,p=1$" + salt + "$" + key, // version 1.0
		"$argon2id$m=8,t=1,p=1$" + salt + "$" + key,      // no version
		"$argon2id$v=19$t=1,m=8,p=1$" + salt + "$" + key, // order
		"$argon2id$v=19$m=08,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=+8,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=7,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=15,t=1,p=2$" + salt + "$" + key,
		"$argon2id$v=19$m=8,t=1,p=5$" + salt + "$" + key,
		"$argon2id$v=19$m=65537,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=65536,t=3,p=1$" + salt + "$" + key, // cost bound
		"$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=99999999999,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8,t=4294967296,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8,t=1,p=1$" + salt,
		"$argon2id$v=19$m=8,t=1,p=1$" + salt + "$",
		"$argon2id$v=19$m=8,t=1,p=1$$" + key,
		"$argon2id$v=19$m=8,t=1,p=1$" + salt + "$" + key + "$",
		"$argon2id$v=19$m=8,t=1,p=1$" + salt + "=$" + key,
		"$argon2id$v=19$m=8,t=1,p=1$" + salt + "$" + key + "==",
		"$argon2id$v=19$m=8,t=1,p=1$" + salt[:10] + "$" + key,               // salt under 8 bytes
		"$argon2id$v=19$m=8,t=1,p=1$" + salt + "$" + key[:20],               // key under 16 bytes
		"$argon2id$v=19$m=8,t=1,p=1$" + salt + "$" + key[:len(key)-1] + "B", // non-canonical tail bits
		"$argon2id$v=19$m=8,t=1,p=1$" + long + "$" + key,
		good + long, // over MaxEncoded
		strings.Repeat("\x00", 51),
		strings.Repeat("\x00", 53),
		"pbkdf2$x",
	} {
		if ok, rehash := Verify([]byte(enc), "x"); ok || rehash {
			t.Fatalf("Verify(%q) = %v, %v", enc, ok, rehash)
		}
	}
	if ok, _ := Verify([]byte(good), "x"); !ok {
		t.Fatalf("the unaltered hash %q does not verify", good)
	}
}

func TestVerifyDummy(t *testing.T) {
	// The dummy hash has the current parameters, so it costs what a
	// current hash costs; no password verifies against it by chance.
	h, err := parse(dummy())
	if err != nil || h.weak() || h.memory != memoryKiB || h.time != passes {
		t.Fatalf("dummy hash %q: %+v, %v", dummy(), h, err)
	}
	VerifyDummy("anything at all")
	VerifyDummy(strings.Repeat("a", MaxLength+1))
}

func TestHasher(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := New(Options{Registerer: reg})
	ctx := context.Background()
	const pw = "hasher password"
	enc, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	f := func(enc []byte, pw string, wantOK, wantRehash bool, result string) {
		t.Helper()
		before := value(h.m.verified[result])
		ok, rehash, err := h.Verify(ctx, enc, pw)
		if err != nil || ok != wantOK || rehash != wantRehash {
			t.Fatalf("Verify = %v, %v, %v; want %v, %v, nil", ok, rehash, err, wantOK, wantRehash)
		}
		if got := value(h.m.verified[result]); got != before+1 {
			t.Fatalf("verifications_total{result=%q} = %v, want %v", result, got, before+1)
		}
	}
	f(enc, pw, true, false, resultOK)
	f(enc, "wrong password", false, false, resultMismatch)
	f(legacyHash(pw, 1000), pw, true, true, resultRehash)
	f(nil, pw, false, false, resultMalformed)
	f(enc, strings.Repeat("a", MaxLength+1), false, false, resultTooLong)
	if err := h.VerifyDummy(ctx, pw); err != nil {
		t.Fatal(err)
	}
	if got := value(h.m.verified[resultDummy]); got != 1 {
		t.Fatalf("verifications_total{result=dummy} = %v", got)
	}
	if _, err := h.Hash(ctx, strings.Repeat("a", MaxLength+1)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("Hasher.Hash of a long password: %v", err)
	}
	// Every label value is there before use, as 0 or more.
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	for _, mf := range families {
		series[mf.GetName()] = len(mf.GetMetric())
	}
	if series["fleetscope_password_verifications_total"] != 6 || series["fleetscope_password_refused_total"] != 2 {
		t.Fatalf("series per metric: %v", series)
	}
}

// TestHasherMalformedSpendsDummy checks that a stored hash Verify cannot
// use costs a derivation like any other, not the microseconds of parsing:
// an account without a password must not answer faster than one with.
func TestHasherMalformedSpendsDummy(t *testing.T) {
	h := New(Options{})
	ctx := context.Background()
	enc, _ := Hash("some password")
	real := time.Duration(1 << 62)
	for range 3 {
		start := time.Now()
		h.Verify(ctx, enc, "other password")
		real = min(real, time.Since(start))
	}
	start := time.Now()
	h.Verify(ctx, []byte("not a hash"), "other password")
	if got := time.Since(start); got < real/10 {
		t.Fatalf("a malformed hash answered in %v, a real one in %v", got, real)
	}
}

// TestHasherBounds fills the derivation slots by hand: callers beyond them
// wait with their context, and beyond MaxWaiting are refused at once.
func TestHasherBounds(t *testing.T) {
	h := New(Options{MaxConcurrent: 1, MaxWaiting: 1})
	h.sem <- struct{}{} // the one slot, taken

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := h.Verify(ctx, nil, "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify with every slot taken: %v, want the context's deadline", err)
	}

	// One waiter fills the line; the next is refused without waiting.
	waiting := make(chan error)
	go func() {
		_, err := h.Hash(context.Background(), "pw")
		waiting <- err
	}()
	for h.waiting.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	if err := h.VerifyDummy(context.Background(), "pw"); !errors.Is(err, ErrBusy) {
		t.Fatalf("VerifyDummy beyond MaxWaiting: %v, want ErrBusy", err)
	}
	if got := value(h.m.refused["busy"]); got != 1 {
		t.Fatalf("refused_total{reason=busy} = %v", got)
	}
	<-h.sem // the slot frees: the waiter runs
	if err := <-waiting; err != nil {
		t.Fatal(err)
	}
	if n := len(h.sem); n != 0 || h.waiting.Load() != 0 {
		t.Fatalf("after the waiter: %d slots taken, %d waiting", n, h.waiting.Load())
	}
}
