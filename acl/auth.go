package acl

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
)

// Secrets. Account tokens are fst_<id>_<secret> and gateway keys
// fsk_<gateway id>_<secret>: the id finds the stored record in O(1), and
// only the SHA-256 of the secret is stored and compared, in constant time.
// A token that does not have this form (the support token from
// configuration may be any string) is looked up by an id derived from its
// hash, so any string works as a token.
const (
	tokenPrefix = "fst_"
	keyPrefix   = "fsk_"
	secretBytes = 24 // 192 bits
)

// NewToken returns a fresh account token and what the state stores of it.
func NewToken() (token, id string, hash [32]byte) {
	var idb [6]byte
	rand.Read(idb[:])
	id = hex.EncodeToString(idb[:])
	secret := newSecret()
	return tokenPrefix + id + "_" + secret, id, sha256.Sum256([]byte(secret))
}

func newSecret() string {
	var b [secretBytes]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// TokenParts returns the id and secret hash a token is stored under.
func TokenParts(token string) (id string, hash [32]byte) {
	if rest, ok := strings.CutPrefix(token, tokenPrefix); ok {
		if id, secret, ok := strings.Cut(rest, "_"); ok && id != "" && secret != "" {
			return id, sha256.Sum256([]byte(secret))
		}
	}
	h := sha256.Sum256([]byte(token))
	return "x" + hex.EncodeToString(h[:8]), sha256.Sum256(h[:])
}

// Authenticate returns the account a bearer token belongs to. Unverified
// accounts authenticate (they may verify); the rules decide what they may
// do.
func (s *Snapshot) Authenticate(token []byte) (AccountID, bool) {
	if len(token) == 0 || len(token) > 512 {
		return 0, false
	}
	id, hash := TokenParts(string(token))
	acct, want, ok := s.Token(id)
	if !ok || subtle.ConstantTimeCompare(want[:], hash[:]) != 1 {
		return 0, false
	}
	return acct, true
}

// NewGatewayKey returns a fresh ingest key for gateway id and its hash.
func NewGatewayKey(id GatewayID) (key string, hash [32]byte) {
	secret := newSecret()
	return keyPrefix + strconv.FormatUint(uint64(id), 10) + "_" + secret, sha256.Sum256([]byte(secret))
}

// AuthenticateGateway returns the gateway an ingest key belongs to, and
// whether its system is monitored.
func (s *Snapshot) AuthenticateGateway(key []byte) (g Gateway, monitored bool, ok bool) {
	rest, found := bytes.CutPrefix(key, []byte(keyPrefix))
	if !found {
		return Gateway{}, false, false
	}
	idPart, secret, found := bytes.Cut(rest, []byte("_"))
	if !found || len(secret) == 0 {
		return Gateway{}, false, false
	}
	n, err := strconv.ParseUint(string(idPart), 10, 32)
	if err != nil {
		return Gateway{}, false, false
	}
	// One lookup of the gateway and its system's record: this runs on
	// every ingest request.
	rec := s.gateway(GatewayID(n))
	if rec == nil {
		return Gateway{}, false, false
	}
	hash := sha256.Sum256(secret)
	current := subtle.ConstantTimeCompare(rec.hash[:], hash[:]) == 1
	// After a rotation the previous key works until its grace ends, so the
	// gateway can be reconfigured without losing data.
	previous := rec.rekey && s.asOf < rec.prevUntil && subtle.ConstantTimeCompare(rec.prevHash[:], hash[:]) == 1
	if !current && !previous {
		return Gateway{}, false, false
	}
	return Gateway{ID: GatewayID(n), System: rec.sys, Serial: rec.serial}, s.systems.get(uint32(rec.sys)).monitored, true
}
