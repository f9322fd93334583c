package acl

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/internal/apijson"
)

// Secrets. Account tokens are fst_<id>_<secret> and gateway keys
// fsk_<gateway id>_<secret>: the id finds the stored record in O(1), and
// only the SHA-256 of the secret is stored and compared, in constant time.
// A token that does not have this form (the support token from
// configuration may be any string) is looked up by an id derived from its
// hash, so any string works as a token.
const (
	tokenPrefix   = "fst_"
	keyPrefix     = "fsk_"
	secretBytes   = 24 // 192 bits
	pbkdf2Iter    = 100_000
	pbkdf2KeyLen  = 32
	pbkdf2SaltLen = 16
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
	hash := sha256.Sum256(secret)
	if rec == nil || subtle.ConstantTimeCompare(rec.hash[:], hash[:]) != 1 {
		return Gateway{}, false, false
	}
	return Gateway{ID: GatewayID(n), System: rec.sys, Serial: rec.serial}, s.systems.get(uint32(rec.sys)).monitored, true
}

// hashPassword returns a salted PBKDF2-SHA256 hash: salt (16 bytes),
// iterations (4 bytes), key (32 bytes).
func hashPassword(pw string) []byte {
	salt := make([]byte, pbkdf2SaltLen)
	rand.Read(salt)
	key, _ := pbkdf2.Key(sha256.New, pw, salt, pbkdf2Iter, pbkdf2KeyLen)
	out := append(salt, binary.BigEndian.AppendUint32(nil, pbkdf2Iter)...)
	return append(out, key...)
}

func checkPassword(stored []byte, pw string) bool {
	if len(stored) != pbkdf2SaltLen+4+pbkdf2KeyLen {
		return false
	}
	salt, iter, want := stored[:pbkdf2SaltLen], binary.BigEndian.Uint32(stored[pbkdf2SaltLen:]), stored[pbkdf2SaltLen+4:]
	key, err := pbkdf2.Key(sha256.New, pw, salt, int(iter), pbkdf2KeyLen)
	return err == nil && subtle.ConstantTimeCompare(key, want) == 1
}

type accountJSON struct {
	ID       AccountID `json:"id"`
	Email    string    `json:"email"`
	Name     string    `json:"name,omitempty"`
	Verified bool      `json:"verified"`
	Support  bool      `json:"support,omitempty"`
}

func accountOf(a Account) accountJSON {
	return accountJSON{ID: a.ID, Email: a.Email, Name: a.Name, Verified: a.Verified, Support: a.Support}
}

// register creates an unverified account, mails it a verification code and
// answers its token (POST /v1/accounts, open).
func (a *API) register(ctx *fasthttp.RequestCtx, _ AccountID) {
	var req struct {
		Email    string `json:"email"`
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	if !apijson.Decode(ctx, &req) {
		return
	}
	if req.Password != "" && len(req.Password) < 8 {
		apijson.Error(ctx, fasthttp.StatusBadRequest, "invalid", "password: at least 8 characters")
		return
	}
	token, tokID, tokHash := NewToken()
	code := newCode()
	op := RegisterAccount{
		Account: a.nextAccount(), Email: req.Email, Name: req.Name,
		TokenID: tokID, TokenHash: tokHash,
		CodeHash: sha256.Sum256([]byte(code)), CodeExpires: a.opts.Now().Add(a.opts.CodeTTL),
	}
	if req.Password != "" {
		op.PasswordHash = hashPassword(req.Password)
	}
	ch, err := a.log.Do(Platform, op)
	if err != nil {
		fail(ctx, err)
		return
	}
	acc, _ := ch.Snapshot.Account(op.Account)
	subject, body := verificationMail(code)
	mctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.opts.Mailer.Send(mctx, acc.Email, subject, body); err != nil {
		a.opts.Logger.Error("acl: verification mail not sent", "to", acc.Email, "err", err)
	}
	apijson.Write(ctx, fasthttp.StatusCreated, map[string]any{"account": accountOf(acc), "token": token})
}

// login issues a new token for an e-mail and password (POST /v1/sessions,
// open). Wrong e-mail and wrong password answer alike.
func (a *API) login(ctx *fasthttp.RequestCtx, _ AccountID) {
	var req struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if !apijson.Decode(ctx, &req) {
		return
	}
	s := a.x.Snapshot()
	acc, ok := s.AccountByEmail(NormalizeEmail(req.Email))
	var stored []byte
	if ok {
		stored, ok = s.PasswordHash(acc.ID)
	}
	if !ok || !checkPassword(stored, req.Password) {
		a.m.authFail.Inc()
		apijson.Error(ctx, fasthttp.StatusUnauthorized, "unauthorized", "wrong e-mail or password")
		return
	}
	token, id, hash := NewToken()
	if _, err := a.log.Do(acc.ID, IssueToken{Account: acc.ID, ID: id, Hash: hash}); err != nil {
		fail(ctx, err)
		return
	}
	apijson.Write(ctx, fasthttp.StatusCreated, map[string]any{"account": accountOf(acc), "token": token})
}

// verify checks the mailed code of the caller's account (POST
// /v1/accounts/verify {"code"}). Support may verify another account with
// {"account": id} and no code.
func (a *API) verify(ctx *fasthttp.RequestCtx, caller AccountID) {
	var req struct {
		Code    string    `json:"code"`
		Account AccountID `json:"account"`
	}
	if !apijson.Decode(ctx, &req) {
		return
	}
	op := VerifyAccount{Account: caller}
	if req.Account != 0 {
		op.Account = req.Account
	}
	if req.Code != "" {
		op.Code = sha256.Sum256([]byte(strings.ToUpper(strings.TrimSpace(req.Code))))
	}
	ch, err := a.log.Do(caller, op)
	if err != nil {
		fail(ctx, err)
		return
	}
	acc, _ := ch.Snapshot.Account(op.Account)
	apijson.Write(ctx, fasthttp.StatusOK, accountOf(acc))
}

// me answers the caller's own account.
func (a *API) me(ctx *fasthttp.RequestCtx, caller AccountID) {
	acc, ok := a.x.Snapshot().Account(caller)
	if !ok {
		apijson.Error(ctx, fasthttp.StatusNotFound, "not_found", "no such account")
		return
	}
	apijson.Write(ctx, fasthttp.StatusOK, accountOf(acc))
}

// addGateway registers a gateway and answers its ingest key — the only
// time the key is shown (POST /v1/systems/{id}/gateways {"serial"}).
func (a *API) addGateway(ctx *fasthttp.RequestCtx, caller AccountID) {
	s := a.x.Snapshot()
	id, ok := a.systemParam(ctx, s, caller)
	if !ok {
		return
	}
	var req struct {
		Serial string `json:"serial"`
	}
	if !apijson.Decode(ctx, &req) {
		return
	}
	gw := a.nextGateway()
	key, hash := NewGatewayKey(gw)
	ch, err := a.log.Do(caller, AddGateway{Gateway: gw, System: id, Serial: req.Serial, KeyHash: hash})
	if err != nil {
		fail(ctx, err)
		return
	}
	g, _ := ch.Snapshot.Gateway(gw)
	apijson.Write(ctx, fasthttp.StatusCreated, map[string]any{
		"gateway": gatewayJSON{ID: g.ID, System: g.System, Serial: g.Serial},
		"key":     key,
	})
}

func (a *API) removeGateway(ctx *fasthttp.RequestCtx, caller AccountID) {
	s := a.x.Snapshot()
	id, ok := a.systemParam(ctx, s, caller)
	if !ok {
		return
	}
	g, found := s.GatewayBySerial(id, param(ctx, "serial"))
	if !found {
		apijson.Error(ctx, fasthttp.StatusNotFound, "not_found", "no such gateway")
		return
	}
	if _, err := a.log.Do(caller, RemoveGateway{System: id, Serial: g.Serial}); err != nil {
		fail(ctx, err)
		return
	}
	apijson.Write(ctx, fasthttp.StatusOK, gatewayJSON{ID: g.ID, System: g.System, Serial: g.Serial})
}

// Authenticate resolves the request's bearer token; it answers 401 itself
// and returns false when there is none or it is not valid.
func (a *API) Authenticate(ctx *fasthttp.RequestCtx) (AccountID, bool) {
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	const prefix = "bearer "
	if len(h) > len(prefix) && strings.EqualFold(string(h[:len(prefix)]), prefix) {
		if id, ok := a.x.Snapshot().Authenticate(bytes.TrimSpace(h[len(prefix):])); ok {
			return id, true
		}
	}
	a.m.authFail.Inc()
	ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="fleetscope"`)
	apijson.Error(ctx, fasthttp.StatusUnauthorized, "unauthorized", "missing or invalid token: send Authorization: Bearer <token>")
	return 0, false
}

// EnsureSupport makes the platform support account from configuration
// exist (support@<domain>), verified, with support rights and the given
// token. Idempotent: nothing is written when all of it is in place.
func (a *API) EnsureSupport(token string) (AccountID, error) {
	const email = "support@fleetscope.local"
	s := a.x.Snapshot()
	id, hash := TokenParts(token)
	if acct, want, ok := s.Token(id); ok {
		if want != hash {
			return 0, fmt.Errorf("acl: support token id collides with another token")
		}
		if acc, ok := s.Account(acct); ok && acc.Support && acc.Verified {
			return acct, nil
		}
	}
	var evs []Event
	acct := AccountID(0)
	if acc, ok := s.AccountByEmail(email); ok {
		acct = acc.ID
	} else {
		acct = a.nextAccount()
		evs = append(evs, Event{Kind: KindAccountRegister, Account: acct, Email: email}, Event{Kind: KindAccountName, Account: acct, Name: "Platform support"})
	}
	evs = append(evs,
		Event{Kind: KindAccountVerify, Account: acct, Verified: true},
		Event{Kind: KindAccountSupport, Account: acct, Support: true})
	if _, _, ok := s.Token(id); !ok {
		evs = append(evs, Event{Kind: KindTokenPut, Account: acct, Token: id, Hash: hash})
	}
	if _, err := a.log.Record(evs); err != nil {
		return 0, err
	}
	return acct, nil
}
