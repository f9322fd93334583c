package password

import (
	"testing"
)

// FuzzVerify feeds arbitrary stored hashes and passwords to Verify: it must
// never panic, report needsRehash only with ok, and accept nothing over the
// length limits. Seeds are cheap hashes (small parameters) so that the
// mutations that still parse cost little.
func FuzzVerify(f *testing.F) {
	f.Add(cheapHash("fuzz", 8, 1, 1, 16, 32), "fuzz")
	f.Add(cheapHash("fuzz", 64, 2, 2, 8, 16), "fuzz")
	f.Add(legacyHash("fuzz", 10), "fuzz")
	f.Add([]byte("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"), "x")
	f.Add([]byte("$argon2id$v=19$m=8,t=1,p=1$$"), "")
	f.Fuzz(func(t *testing.T, encoded []byte, pw string) {
		ok, rehash := Verify(encoded, pw)
		if rehash && !ok {
			t.Fatalf("needsRehash without ok")
		}
		if ok && (len(encoded) > MaxEncoded || len(pw) > MaxLength) {
			t.Fatalf("accepted a %d-byte hash and %d-byte password", len(encoded), len(pw))
		}
		if ok2, rehash2 := Verify(encoded, pw); ok2 != ok || rehash2 != rehash {
			t.Fatalf("Verify is not deterministic: %v,%v then %v,%v", ok, rehash, ok2, rehash2)
		}
	})
}
