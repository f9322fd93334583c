package acl

import (
	"crypto/subtle"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Credentials: account tokens, password hashes, verification codes — and
// the account's display name, which travels with them. They are events like
// every other change so that any node can authenticate any account, and the
// event log (replicated through ClickHouse) holds no secret in clear: the
// HTTP layer generates the secrets and hands this package their hashes.
// None of them changes who may see what, so they stay out of the bitmap
// index and out of Change (except the name, reported in Change.Accounts).
//
// Registers and how they converge:
//   - a token, keyed by its id: last-writer-wins among TokenPuts, and a
//     TokenDelete is absorbing, like a system deletion — a revoked token never
//     authenticates again, whatever arrives later;
//   - a token's expiry and client (TokenMeta), a second register of the
//     token: last-writer-wins, gone with a revocation. A token stops
//     authenticating once the state's time reaches its expiry; one without
//     an expiry register (issued before tokens had one) expires
//     DefaultTokenTTL after it was issued;
//   - an account's password hash, pending verification code and name, one
//     register each: last-writer-wins.

// MaxPasswordHash bounds the password hash an account stores: enough for
// PBKDF2's output with its salt, parameters and an algorithm tag.
const MaxPasswordHash = 128

// maxTokenID bounds a token id.
const maxTokenID = 64

// checkTokenID accepts 1 to 64 letters, digits and '-': the id part of a
// token string fst_<id>_<secret>, which must not contain the '_' separator.
func checkTokenID(id string) error {
	if id == "" || len(id) > maxTokenID {
		return fmt.Errorf("%w: token id of %d bytes (1 to %d)", ErrInvalid, len(id), maxTokenID)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("%w: token id %q: only letters, digits and -", ErrInvalid, id)
		}
	}
	return nil
}

// checkToken checks a token to store: its id and a secret hash.
func checkToken(id string, hash [32]byte) error {
	if err := checkTokenID(id); err != nil {
		return err
	}
	if hash == ([32]byte{}) {
		return fmt.Errorf("%w: token without a secret hash", ErrInvalid)
	}
	return nil
}

// checkPasswordHash checks the length of a password hash.
func checkPasswordHash(n int) error {
	if n > MaxPasswordHash {
		return fmt.Errorf("%w: password hash of %d bytes, limit %d", ErrInvalid, n, MaxPasswordHash)
	}
	return nil
}

// checkCode accepts a pending code — a hash with an expiry — or none (zero
// hash, no expiry). A one-time code always expires.
func checkCode(hash [32]byte, expires int64) error {
	switch none := hash == [32]byte{}; {
	case expires < 0:
		return fmt.Errorf("%w: negative expiry", ErrInvalid)
	case none && expires != 0:
		return fmt.Errorf("%w: expiry without a verification code", ErrInvalid)
	case !none && expires == 0:
		return fmt.Errorf("%w: verification code without an expiry", ErrInvalid)
	}
	return nil
}

// tokenRec is the register of one account token, replaced (never changed)
// by every event that wins it. A revoked token keeps its id and a stamp only.
type tokenRec struct {
	id      string
	hash    [32]byte
	hlc     uint64 // the put's (0: only the meta register is known yet) or the revocation's
	acct    AccountID
	node    uint16
	revoked bool
	// The meta register (TokenMeta); metaHLC 0 = none.
	agent    string
	expires  int64 // Unix ms
	metaHLC  uint64
	metaNode uint16
}

func (t *tokenRec) stamp() Stamp     { return Stamp{t.hlc, t.node} }
func (t *tokenRec) metaStamp() Stamp { return Stamp{t.metaHLC, t.metaNode} }

// DefaultTokenTTL is how long a token without an expiry register lives
// after it was issued: the default session lifetime (DESIGN §5).
const DefaultTokenTTL = 30 * 24 * time.Hour

// expiry is when the token stops authenticating (Unix ms).
func (t *tokenRec) expiry() int64 {
	if t.metaHLC != 0 {
		return t.expires
	}
	return t.stamp().Time().Add(DefaultTokenTTL).UnixMilli()
}

func (st *state) tokenKey(tid uint32) string { return st.tokens.get(tid).id }

// credRec holds an account's credential registers. Kept apart from acctRec,
// which every bitmap read goes through, and created only for accounts that
// have one.
type credRec struct {
	name     string
	password string   // opaque; "" = none
	code     [32]byte // zero = none pending
	codeExp  int64    // Unix ms
	nameHLC  uint64
	pwHLC    uint64
	codeHLC  uint64
	nameNode uint16
	pwNode   uint16
	codeNode uint16
}

func (c *credRec) nameStamp() Stamp { return Stamp{c.nameHLC, c.nameNode} }
func (c *credRec) pwStamp() Stamp   { return Stamp{c.pwHLC, c.pwNode} }
func (c *credRec) codeStamp() Stamp { return Stamp{c.codeHLC, c.codeNode} }

func (w *writer) credMut(id AccountID) *credRec {
	r := w.st.creds.get(uint32(id))
	if r != nil && w.b.owns(r) {
		return r
	}
	c := &credRec{}
	if r != nil {
		*c = *r
	}
	w.b.own(c)
	w.st.creds.set(uint32(id), c, w.gen())
	return c
}

// cred folds a PasswordSet, CodeSet or AccountName into the state.
func (w *writer) cred(ev Event) {
	c := w.st.creds.get(uint32(ev.Account))
	switch ev.Kind {
	case KindPasswordSet:
		if c != nil && !ev.Stamp.After(c.pwStamp()) {
			return
		}
		c = w.credMut(ev.Account)
		c.password, c.pwHLC, c.pwNode = ev.PasswordHash, ev.Stamp.HLC, ev.Stamp.Node
	case KindCodeSet:
		if c != nil && !ev.Stamp.After(c.codeStamp()) {
			return
		}
		c = w.credMut(ev.Account)
		c.code, c.codeExp, c.codeHLC, c.codeNode = ev.Hash, ev.Expires, ev.Stamp.HLC, ev.Stamp.Node
	case KindAccountName:
		if c != nil && !ev.Stamp.After(c.nameStamp()) {
			return
		}
		c = w.credMut(ev.Account)
		c.name, c.nameHLC, c.nameNode = ev.Name, ev.Stamp.HLC, ev.Stamp.Node
		w.ch.account(ev.Account)
	}
}

// token folds a TokenPut, TokenDelete or TokenMeta into the state.
func (w *writer) token(ev Event) {
	tid := w.st.tokenIx.get(ev.Token, w.st.tokenKey)
	var old *tokenRec
	if tid != 0 {
		old = w.st.tokens.get(tid)
		switch {
		case old.revoked && (ev.Kind != KindTokenDelete || !ev.Stamp.After(old.stamp())):
			// Revocation is final. Of several revocations the tombstone keeps
			// the greatest stamp: the same on every node, so that the
			// state's export (Snapshot.Export) is a function of the events.
			return
		case ev.Kind == KindTokenPut && !ev.Stamp.After(old.stamp()):
			return // an older put loses
		case ev.Kind == KindTokenMeta && !ev.Stamp.After(old.metaStamp()):
			return
		}
	}
	t := &tokenRec{id: ev.Token}
	if old != nil {
		*t = *old
	}
	switch ev.Kind {
	case KindTokenDelete:
		t = &tokenRec{id: ev.Token, hlc: ev.Stamp.HLC, node: ev.Stamp.Node, revoked: true}
	case KindTokenPut:
		t.acct, t.hash, t.hlc, t.node = ev.Account, ev.Hash, ev.Stamp.HLC, ev.Stamp.Node
	case KindTokenMeta:
		t.agent, t.expires, t.metaHLC, t.metaNode = ev.Name, ev.Expires, ev.Stamp.HLC, ev.Stamp.Node
	}
	if old != nil && old.acct != 0 && (t.revoked || old.acct != t.acct) {
		w.tokenList(old.acct, tid, false)
	}
	if tid == 0 {
		w.st.nextTID++
		tid = w.st.nextTID
		w.st.tokens.set(tid, t, w.gen()) // before the index, which reads the key from it
		w.st.tokenIx.set(ev.Token, tid, w.st.tokenKey, w.gen())
	} else {
		w.st.tokens.set(tid, t, w.gen())
	}
	if !t.revoked && t.acct != 0 && (old == nil || old.acct != t.acct) {
		w.tokenList(t.acct, tid, true)
	}
}

// tokenList adds a token to or removes it from its account's list (the
// tokens whose put names the account and that are not revoked), for
// listing and revoking an account's sessions. Lists are replaced, never
// changed.
func (w *writer) tokenList(acct AccountID, tid uint32, on bool) {
	var cur []uint32
	if p := w.st.acctTokens.get(uint32(acct)); p != nil {
		cur = *p
	}
	i, found := slices.BinarySearch(cur, tid)
	var next []uint32
	switch {
	case on && !found:
		next = slices.Insert(slices.Clone(cur), i, tid)
	case !on && found:
		next = slices.Delete(slices.Clone(cur), i, i+1)
	default:
		return
	}
	if len(next) == 0 {
		w.st.acctTokens.set(uint32(acct), nil, w.gen())
		return
	}
	w.st.acctTokens.set(uint32(acct), &next, w.gen())
}

// registered returns the credentials of a registered account, or nil.
func (s *Snapshot) registered(acct AccountID) (*credRec, bool) {
	a := s.accounts.get(uint32(acct))
	if a == nil || a.pid == 0 {
		return nil, false
	}
	return s.creds.get(uint32(acct)), true
}

// Token returns the account and secret hash of an account token that is not
// revoked, for authenticating "Authorization: Bearer fst_<id>_<secret>": the
// caller hashes the secret presented and compares with crypto/subtle. A
// token of an account not registered (yet) is not found. Whether the
// account may act is for the caller to ask (Account, or the ops' checks):
// an unverified account authenticates, to verify itself.
//
// A token that has expired (its expiry at or before the state's time) is
// not found either.
func (s *Snapshot) Token(id string) (AccountID, [32]byte, bool) {
	tid := s.tokenIx.get(id, s.tokenKey)
	if tid == 0 {
		return 0, [32]byte{}, false
	}
	t := s.tokens.get(tid)
	if t.revoked || t.hlc == 0 || t.expiry() <= s.asOf {
		return 0, [32]byte{}, false
	}
	if _, ok := s.registered(t.acct); !ok {
		return 0, [32]byte{}, false
	}
	return t.acct, t.hash, true
}

// PasswordHash returns the password hash of a registered account that has a
// password. The slice is the caller's.
func (s *Snapshot) PasswordHash(acct AccountID) ([]byte, bool) {
	c, ok := s.registered(acct)
	if !ok || c == nil || c.password == "" {
		return nil, false
	}
	return []byte(c.password), true
}

// VerificationCode returns the hash of a registered account's pending
// verification code and when it expires (Unix ms). An expired code is still
// returned: the caller compares expires with its clock (VerifyAccount does,
// with the state's time).
func (s *Snapshot) VerificationCode(acct AccountID) (hash [32]byte, expires int64, ok bool) {
	c, ok := s.registered(acct)
	if !ok || c == nil || c.code == ([32]byte{}) {
		return [32]byte{}, 0, false
	}
	return c.code, c.codeExp, true
}

// selfOrPlatform checks that the actor is the account itself (verified or
// not: these ops are how an account proves itself) or fleetscope (Platform).
func selfOrPlatform(a actor, acct AccountID, what string) error {
	if a.id != acct && a.id != Platform {
		return fmt.Errorf("%w: only the account itself may %s account %d", ErrForbidden, what, acct)
	}
	return nil
}

// mustBeRegistered fails unless the account is registered.
func (s *Snapshot) mustBeRegistered(acct AccountID) error {
	if _, ok := s.registered(acct); !ok {
		return fmt.Errorf("%w: account %d", ErrNotFound, acct)
	}
	return nil
}

// IssueToken stores an account token (at registration and at login): the
// HTTP layer generates id and secret, returns fst_<id>_<secret> once and
// passes here the id and the SHA-256 of the secret. The account itself
// (verified or not) or Platform may. The id must never have been used.
// ExpiresAt (after the snapshot's time; zero: DefaultTokenTTL from now) is
// when it stops authenticating unless TouchToken moves it; Agent names the
// client it was issued to (a browser's User-Agent), for the session list.
type IssueToken struct {
	Account   AccountID
	ID        string
	Hash      [32]byte
	ExpiresAt time.Time
	Agent     string
}

func (op IssueToken) plan(s *Snapshot, a actor) ([]Event, error) {
	if err := selfOrPlatform(a, op.Account, "issue a token for"); err != nil {
		return nil, err
	}
	if err := s.mustBeRegistered(op.Account); err != nil {
		return nil, err
	}
	if err := s.newToken(op.ID, op.Hash); err != nil {
		return nil, err
	}
	meta, err := s.tokenMeta(op.ID, op.ExpiresAt, op.Agent)
	if err != nil {
		return nil, err
	}
	return []Event{{Kind: KindTokenPut, Account: op.Account, Token: op.ID, Hash: op.Hash}, meta}, nil
}

// tokenMeta is the TokenMeta event of a token expiring at expiresAt.
func (s *Snapshot) tokenMeta(id string, expiresAt time.Time, agent string) (Event, error) {
	exp := expiresAt.UnixMilli()
	if expiresAt.IsZero() {
		exp = s.asOf + DefaultTokenTTL.Milliseconds()
	}
	if exp <= s.asOf || expiresAt.UTC().Year() > 9999 {
		return Event{}, fmt.Errorf("%w: token expiring at %s, not in the future", ErrInvalid, time.UnixMilli(exp).UTC().Format(time.RFC3339))
	}
	agent = clip(agent, maxName)
	if err := checkText("token client", agent, maxName); err != nil {
		agent = "" // a client that sends control characters is named by nothing
	}
	return Event{Kind: KindTokenMeta, Token: id, Expires: exp, Name: agent}, nil
}

// clip cuts s to at most n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// TouchToken moves a token's expiry (a sliding session: the HTTP layer
// touches a token as it is used, at most about once a day). Its account or
// Platform may; the token must authenticate.
type TouchToken struct {
	ID        string
	ExpiresAt time.Time
}

func (op TouchToken) plan(s *Snapshot, a actor) ([]Event, error) {
	tid := s.tokenIx.get(op.ID, s.tokenKey)
	acct, _, ok := s.Token(op.ID)
	if !ok || a.id != acct && a.id != Platform {
		return nil, fmt.Errorf("%w: token %q", ErrNotFound, op.ID)
	}
	meta, err := s.tokenMeta(op.ID, op.ExpiresAt, s.tokens.get(tid).agent)
	if err != nil {
		return nil, err
	}
	return []Event{meta}, nil
}

// RevokeSessions revokes every token of an account but Keep ("" keeps
// none): a password change keeps the session that made it, a reset keeps
// none, a changed support token keeps the new one. The account itself,
// support or Platform may.
type RevokeSessions struct {
	Account AccountID
	Keep    string
}

func (op RevokeSessions) plan(s *Snapshot, a actor) ([]Event, error) {
	if a.id != op.Account && a.id != Platform && !a.support() {
		return nil, fmt.Errorf("%w: account %d", ErrNotFound, op.Account)
	}
	var evs []Event
	for _, sess := range s.Sessions(op.Account) {
		if sess.ID != op.Keep {
			evs = append(evs, Event{Kind: KindTokenDelete, Token: sess.ID})
		}
	}
	return evs, nil
}

// Session is an account token as its holder sees it in the session list.
type Session struct {
	ID      string
	Account AccountID
	Created time.Time // when it was issued
	Touched time.Time // when its expiry was last moved (issue or TouchToken)
	Expires time.Time
	Agent   string
}

// Sessions lists an account's tokens that authenticate, oldest first.
func (s *Snapshot) Sessions(acct AccountID) []Session {
	p := s.acctTokens.get(uint32(acct))
	if p == nil {
		return nil
	}
	var out []Session
	for _, tid := range *p {
		t := s.tokens.get(tid)
		if sess, ok := s.session(t); ok {
			out = append(out, sess)
		}
	}
	slices.SortFunc(out, func(a, b Session) int { return a.Created.Compare(b.Created) })
	return out
}

// SessionOf returns the session of a token that authenticates.
func (s *Snapshot) SessionOf(id string) (Session, bool) {
	tid := s.tokenIx.get(id, s.tokenKey)
	if tid == 0 {
		return Session{}, false
	}
	return s.session(s.tokens.get(tid))
}

func (s *Snapshot) session(t *tokenRec) (Session, bool) {
	if _, _, ok := s.Token(t.id); !ok {
		return Session{}, false
	}
	sess := Session{ID: t.id, Account: t.acct, Created: t.stamp().Time(), Touched: t.stamp().Time(),
		Expires: time.UnixMilli(t.expiry()).UTC(), Agent: t.agent}
	if t.metaHLC != 0 {
		sess.Touched = t.metaStamp().Time()
	}
	return sess, true
}

// newToken checks a token to issue: well-formed, and its id never used.
func (s *Snapshot) newToken(id string, hash [32]byte) error {
	if err := checkToken(id, hash); err != nil {
		return err
	}
	if s.tokenIx.get(id, s.tokenKey) != 0 {
		return fmt.Errorf("%w: token id %q", ErrExists, id)
	}
	return nil
}

// RevokeToken revokes an account token for good (logout, or a leaked
// token). The token's account, support or Platform may; to anyone else the
// token is not found.
type RevokeToken struct {
	ID string
}

func (op RevokeToken) plan(s *Snapshot, a actor) ([]Event, error) {
	// An expired token can be revoked too (it is still listed nowhere, but
	// its holder may log out with it).
	acct, ok := s.tokenAccount(op.ID)
	if !ok || a.id != acct && a.id != Platform && !a.support() {
		return nil, fmt.Errorf("%w: token %q", ErrNotFound, op.ID)
	}
	return []Event{{Kind: KindTokenDelete, Token: op.ID}}, nil
}

// tokenAccount returns the account of a token that is not revoked,
// expired or not.
func (s *Snapshot) tokenAccount(id string) (AccountID, bool) {
	tid := s.tokenIx.get(id, s.tokenKey)
	if tid == 0 {
		return 0, false
	}
	t := s.tokens.get(tid)
	return t.acct, !t.revoked && t.hlc != 0
}

// SetPassword sets or replaces an account's password hash (nil: the account
// has no password any more). The HTTP layer computes the hash (PBKDF2, salt
// and parameters included, at most MaxPasswordHash bytes); it is stored as
// opaque bytes. The account itself or Platform may.
type SetPassword struct {
	Account AccountID
	Hash    []byte
}

func (op SetPassword) plan(s *Snapshot, a actor) ([]Event, error) {
	if err := selfOrPlatform(a, op.Account, "set the password of"); err != nil {
		return nil, err
	}
	if err := s.mustBeRegistered(op.Account); err != nil {
		return nil, err
	}
	if err := checkPasswordHash(len(op.Hash)); err != nil {
		return nil, err
	}
	return []Event{{Kind: KindPasswordSet, Account: op.Account, PasswordHash: string(op.Hash)}}, nil
}

// SetVerificationCode stores a new one-time code for proving the account's
// e-mail, replacing any pending one (a "send me a new code"). The HTTP layer
// generates the code, mails it and passes its SHA-256; ExpiresAt must be
// after the snapshot's time. A short code's hash is easily reversed, so it
// is only as safe as the event log is private: keep codes short-lived. The
// account itself or Platform may.
type SetVerificationCode struct {
	Account   AccountID
	Hash      [32]byte
	ExpiresAt time.Time
}

func (op SetVerificationCode) plan(s *Snapshot, a actor) ([]Event, error) {
	if err := selfOrPlatform(a, op.Account, "set the verification code of"); err != nil {
		return nil, err
	}
	if err := s.mustBeRegistered(op.Account); err != nil {
		return nil, err
	}
	ev, err := s.codeEvent(op.Account, op.Hash, op.ExpiresAt)
	if err != nil {
		return nil, err
	}
	return []Event{ev}, nil
}

func (s *Snapshot) codeEvent(acct AccountID, hash [32]byte, expiresAt time.Time) (Event, error) {
	if hash == ([32]byte{}) {
		return Event{}, fmt.Errorf("%w: empty verification code hash", ErrInvalid)
	}
	if expiresAt.UnixMilli() <= s.asOf {
		return Event{}, fmt.Errorf("%w: verification code expiring at %s, not in the future", ErrInvalid, expiresAt.UTC().Format(time.RFC3339))
	}
	return Event{Kind: KindCodeSet, Account: acct, Hash: hash, Expires: expiresAt.UnixMilli()}, nil
}

// checkCodeHash checks a code's hash against the account's pending code.
func (s *Snapshot) checkCodeHash(acct AccountID, hash [32]byte) error {
	want, exp, ok := s.VerificationCode(acct)
	switch {
	case !ok:
		return fmt.Errorf("%w: no verification code pending", ErrInvalid)
	case subtle.ConstantTimeCompare(want[:], hash[:]) != 1:
		return fmt.Errorf("%w: wrong verification code", ErrInvalid)
	case exp <= s.asOf:
		return fmt.Errorf("%w: verification code expired", ErrInvalid)
	}
	return nil
}

// BurnCode clears an account's pending code without using it: after too
// many wrong tries (DESIGN §5: five) the code is burnt, so that guessing
// cannot go on. The account itself or Platform may.
type BurnCode struct {
	Account AccountID
}

func (op BurnCode) plan(s *Snapshot, a actor) ([]Event, error) {
	if err := selfOrPlatform(a, op.Account, "burn the code of"); err != nil {
		return nil, err
	}
	if _, _, pending := s.VerificationCode(op.Account); !pending {
		return nil, nil
	}
	return []Event{{Kind: KindCodeSet, Account: op.Account}}, nil
}

// ResetPassword sets a new password with the one-time code mailed to the
// account's e-mail (POST /v1/accounts/password-reset/confirm): the code
// must match the pending one before it expires, and it is used up. The
// code proves the e-mail as a verification code does, so the account is
// verified too; every session of the account is revoked — whoever knew the
// old password is signed out. Only Platform plans it: the caller of the
// endpoint is not authenticated, the code is its credential.
type ResetPassword struct {
	Account AccountID
	Code    [32]byte
	Hash    []byte // the new password's hash
}

func (op ResetPassword) plan(s *Snapshot, a actor) ([]Event, error) {
	if a.id != Platform {
		return nil, fmt.Errorf("%w: a password reset is made by the platform", ErrForbidden)
	}
	if err := s.mustBeRegistered(op.Account); err != nil {
		return nil, err
	}
	if err := s.checkCodeHash(op.Account, op.Code); err != nil {
		return nil, err
	}
	if len(op.Hash) == 0 {
		return nil, fmt.Errorf("%w: empty password hash", ErrInvalid)
	}
	if err := checkPasswordHash(len(op.Hash)); err != nil {
		return nil, err
	}
	evs := []Event{
		{Kind: KindPasswordSet, Account: op.Account, PasswordHash: string(op.Hash)},
		{Kind: KindCodeSet, Account: op.Account},
	}
	if acc, ok := s.Account(op.Account); ok && !acc.Verified {
		evs = append(evs, Event{Kind: KindAccountVerify, Account: op.Account, Verified: true})
	}
	for _, sess := range s.Sessions(op.Account) {
		evs = append(evs, Event{Kind: KindTokenDelete, Token: sess.ID})
	}
	return evs, nil
}
