// Package password hashes account passwords and checks a login's password
// against the stored hash (DESIGN §5 "Sessions and credentials").
//
// # Format
//
// Hash returns argon2id (RFC 9106) in the PHC string format,
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt, base64>$<key, base64>
//
// 97 bytes, within the 128 bytes an account's stored hash may hold
// (acl.MaxPasswordHash). The string carries its parameters, so raising them
// later leaves existing hashes verifiable. Verify also accepts the format
// fleetscope stored before: a 52-byte binary blob of salt (16 bytes), PBKDF2
// iterations (uint32, big-endian) and a PBKDF2-HMAC-SHA256 key (32 bytes).
// A legacy hash, or an argon2id hash with weaker parameters than Hash uses
// now, verifies with needsRehash set: the caller stores Hash of the
// password it just checked, so accounts move to the current parameters at
// their next successful login without anyone resetting a password.
//
// # Cost and uniform timing
//
// Hash and a verification cost the same: one argon2id derivation, ~19 MiB
// of memory held for its duration and tens of milliseconds of one core (the
// package's benchmarks report the figure for the machine at hand). A login
// for an e-mail that has no account, or an account without a usable
// password hash, calls Hasher.VerifyDummy (Hasher.Verify does it itself for
// a malformed or empty stored hash), which checks the password against a
// fixed hash made with the current parameters, so the answer takes the same
// time whether the account exists or not. One difference remains while
// legacy hashes exist: PBKDF2 at the 100 000 iterations fleetscope used
// costs a different time than argon2id, so a timing attacker can tell an
// account that has not logged in since the upgrade; it goes away as those
// accounts log in or reset their password.
//
// Passwords longer than MaxLength bytes are refused before any hashing:
// argon2id's cost barely depends on the length, but nobody types a longer
// one, and refusing it makes the limit explicit. The HTTP layer enforces the
// minimum length (10 characters).
//
// # Concurrency
//
// Hash, Verify and VerifyDummy of the package compute at once and are safe
// for concurrent use; a server calls them through a Hasher, which bounds
// how many derivations run at once (each holds its 19 MiB until it ends)
// and how many callers may wait for one, so a burst of logins costs bounded
// memory and waits in line, with the caller's context, instead of piling up
// argon2 buffers.
package password

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"sync"

	"golang.org/x/crypto/argon2"
)

// The argon2id parameters Hash uses. OWASP's password storage cheat sheet
// lists equivalent argon2id settings of which two fit a small server: m=46
// MiB, t=1, p=1 and m=19 MiB, t=2, p=1. Both cost about the same CPU (an
// attacker's cost per guess is memory × passes: 46 vs 38 MiB-passes), but
// fleetscope runs on 2 cores next to ingest and the ACL index, and a login
// holds its m for the whole derivation: with m=19 MiB the Hasher's default
// of two derivations at once holds 38 MiB instead of 92 MiB. p=1 because a
// derivation with more lanes only runs on more cores at once, which a
// server busy with other logins does not have spare. On the 2-core
// development machine one derivation costs 23–29 ms of CPU, garbage
// collection of its buffer included (BenchmarkHash, BenchmarkVerify): the
// two cores check ~75 passwords a second.
const (
	memoryKiB = 19 * 1024
	passes    = 2
	lanes     = 1
	saltLen   = 16 // 128 bits, RFC 9106's recommendation
	keyLen    = 32 // 256 bits
)

// MaxLength is the longest password, in bytes, that Hash and Verify accept:
// far beyond any typed or generated password (a password manager's longest
// is ~100 characters), short enough that refusing is the only thing longer
// input costs.
const MaxLength = 1024

// MaxEncoded is the longest stored hash Verify parses: an account's hash
// field holds at most 128 bytes (acl.MaxPasswordHash), and Hash's output
// takes 97 of them.
const MaxEncoded = 128

// Bounds on the parameters Verify accepts from a stored hash. A stored hash
// is written by fleetscope, so these only stop a corrupted record (or a
// fuzzer) from making one verification cost seconds or gigabytes; they sit
// well above anything Hash has produced or is likely to.
const (
	maxMemoryKiB  = 64 * 1024         // 64 MiB
	maxCost       = 4 * 19 * 1024 * 2 // memory × passes, 4× the current
	maxLanes      = 4
	minSalt       = 8 // RFC 9106's minimum
	maxSalt       = 64
	minKey        = 16
	maxKey        = 64
	maxLegacyIter = 1_000_000 // 10× what fleetscope stored; ~0.3 s of CPU
)

// ErrTooLong is returned by Hash for a password longer than MaxLength.
var ErrTooLong = errors.New("password: longer than 1024 bytes")

const prefix = "$argon2id$"

var b64 = base64.RawStdEncoding.Strict()

// Hash returns the encoded argon2id hash of pw with a fresh random salt.
// It computes at once; a server calls Hasher.Hash instead, which bounds how
// many run at the same time.
func Hash(pw string) ([]byte, error) {
	if len(pw) > MaxLength {
		return nil, ErrTooLong
	}
	var salt [saltLen]byte
	rand.Read(salt[:])
	key := argon2.IDKey([]byte(pw), salt[:], passes, memoryKiB, lanes, keyLen)
	return encode(salt[:], key), nil
}

func encode(salt, key []byte) []byte {
	out := make([]byte, 0, MaxEncoded)
	out = append(out, prefix...)
	out = append(out, "v=19$m="...)
	out = strconv.AppendUint(out, memoryKiB, 10)
	out = append(out, ",t="...)
	out = strconv.AppendUint(out, passes, 10)
	out = append(out, ",p="...)
	out = strconv.AppendUint(out, lanes, 10)
	out = append(out, '$')
	out = b64.AppendEncode(out, salt)
	out = append(out, '$')
	return b64.AppendEncode(out, key)
}

// Verify reports whether pw is the password encoded is the hash of, and
// whether encoded should be replaced by Hash(pw) because it is a legacy
// PBKDF2 hash or uses weaker parameters than Hash does now (needsRehash is
// false unless ok is true). The key comparison takes constant time. A
// password longer than MaxLength, or an encoded hash that is neither format
// or is out of bounds, answers false at once without hashing, and never
// panics; Hasher.Verify spends a dummy verification in that case instead.
func Verify(encoded []byte, pw string) (ok, needsRehash bool) {
	if len(pw) > MaxLength {
		return false, false
	}
	h, err := parse(encoded)
	if err != nil {
		return false, false
	}
	return h.check(pw)
}

// VerifyDummy spends what Verify of a current hash spends, and fails:
// a login for an unknown account calls it so its answer takes as long as a
// wrong password for a known one.
func VerifyDummy(pw string) {
	if len(pw) > MaxLength {
		return
	}
	h, _ := parse(dummy())
	h.check(pw)
}

// dummy is a hash with the current parameters of a password nobody knows
// (the derivation's random salt makes it unguessable whatever its text).
var dummy = sync.OnceValue(func() []byte {
	var pw [16]byte
	rand.Read(pw[:])
	h, _ := Hash(string(pw[:]))
	return h
})

// hash is a parsed stored hash.
type hash struct {
	legacy       bool
	iter         uint32 // PBKDF2 iterations, legacy only
	memory, time uint32
	lanes        uint8
	salt, key    []byte // into the caller's encoded hash or saltBuf/keyBuf
	saltBuf      [maxSalt]byte
	keyBuf       [maxKey]byte
}

var errMalformed = errors.New("password: malformed hash")

// legacyLen is the length of the PBKDF2 blob acl stored before this
// package: salt, iterations, key. No argon2id string is this short (the
// shortest Verify accepts is 61 bytes), and none starts with anything but
// prefix, so the two formats never overlap.
const legacyLen = 16 + 4 + 32

func parse(encoded []byte) (*hash, error) {
	if len(encoded) > MaxEncoded {
		return nil, errMalformed
	}
	if rest, ok := bytes.CutPrefix(encoded, []byte(prefix)); ok {
		return parseArgon2id(rest)
	}
	if len(encoded) != legacyLen {
		return nil, errMalformed
	}
	h := &hash{legacy: true, salt: encoded[:16], iter: binary.BigEndian.Uint32(encoded[16:]), key: encoded[20:]}
	if h.iter < 1 || h.iter > maxLegacyIter {
		return nil, errMalformed
	}
	return h, nil
}

// parseArgon2id parses "v=19$m=<m>,t=<t>,p=<p>$<salt>$<key>", the rest of a
// PHC string after "$argon2id$", strictly: fields in this order, decimal
// numbers without signs or leading zeros, unpadded canonical base64.
func parseArgon2id(s []byte) (*hash, error) {
	s, ok := bytes.CutPrefix(s, []byte("v=19$m="))
	if !ok {
		return nil, errMalformed
	}
	var m, t, p uint32
	if m, s, ok = number(s, ','); !ok {
		return nil, errMalformed
	}
	if s, ok = bytes.CutPrefix(s, []byte("t=")); !ok {
		return nil, errMalformed
	}
	if t, s, ok = number(s, ','); !ok {
		return nil, errMalformed
	}
	if s, ok = bytes.CutPrefix(s, []byte("p=")); !ok {
		return nil, errMalformed
	}
	if p, s, ok = number(s, '$'); !ok {
		return nil, errMalformed
	}
	// argon2 needs at least 8 KiB per lane; the cost bounds keep a corrupt
	// record from costing more than a few current verifications.
	if p < 1 || p > maxLanes || t < 1 || m < 8*p || m > maxMemoryKiB || uint64(m)*uint64(t) > maxCost {
		return nil, errMalformed
	}
	saltB64, keyB64, ok := bytes.Cut(s, []byte("$"))
	if !ok {
		return nil, errMalformed
	}
	h := &hash{memory: m, time: t, lanes: uint8(p)}
	if h.salt, ok = decode(h.saltBuf[:0], saltB64, minSalt, maxSalt); !ok {
		return nil, errMalformed
	}
	if h.key, ok = decode(h.keyBuf[:0], keyB64, minKey, maxKey); !ok {
		return nil, errMalformed
	}
	return h, nil
}

// number parses a decimal uint32 up to the byte end, and returns the rest
// after end.
func number(s []byte, end byte) (uint32, []byte, bool) {
	i := bytes.IndexByte(s, end)
	if i < 1 || i > 10 || (s[0] == '0' && i > 1) {
		return 0, nil, false
	}
	var n uint64
	for _, c := range s[:i] {
		if c < '0' || c > '9' {
			return 0, nil, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n > 1<<32-1 {
		return 0, nil, false
	}
	return uint32(n), s[i+1:], true
}

func decode(dst, src []byte, min, max int) ([]byte, bool) {
	if n := b64.DecodedLen(len(src)); n < min || n > max {
		return nil, false
	}
	out, err := b64.AppendDecode(dst, src)
	if err != nil || len(out) < min || len(out) > max {
		return nil, false
	}
	return out, true
}

// check derives the key for pw with h's parameters and compares it with
// h's key in constant time.
func (h *hash) check(pw string) (ok, needsRehash bool) {
	var key []byte
	if h.legacy {
		var err error
		// Exactly what acl's hashPassword computed.
		key, err = pbkdf2.Key(sha256.New, pw, h.salt, int(h.iter), len(h.key))
		if err != nil {
			return false, false
		}
	} else {
		key = argon2.IDKey([]byte(pw), h.salt, h.time, h.memory, h.lanes, uint32(len(h.key)))
	}
	if subtle.ConstantTimeCompare(key, h.key) != 1 {
		return false, false
	}
	return true, h.weak()
}

// weak reports whether h is weaker than what Hash makes now in any
// parameter. A hash that is stronger in one and weaker in another is
// replaced too: the current parameters are the ones chosen for this
// server.
func (h *hash) weak() bool {
	return h.legacy || h.memory < memoryKiB || h.time < passes || h.lanes < lanes ||
		len(h.salt) < saltLen || len(h.key) < keyLen
}
