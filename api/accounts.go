package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/mail"
	"github.com/fleetscope/fleetscope/password"
)

// Accounts and credentials (DESIGN §5 "Sessions and credentials", identity
// rules). Passwords are hashed with argon2id (package password); a login
// for an e-mail without an account or without a password spends the same
// work on a dummy hash, so timing does not tell which e-mails exist, and
// every login is limited per e-mail and per client address (Limits). A
// password hashed by an earlier version (PBKDF2) is upgraded on the next
// successful login.

// MinPasswordLength is the shortest password accepted, in characters.
const MinPasswordLength = 10

func checkNewPassword(pw string) error {
	if n := utf8.RuneCountInString(pw); n < MinPasswordLength {
		return fmt.Errorf("%w: password: at least %d characters", acl.ErrInvalid, MinPasswordLength)
	}
	if len(pw) > password.MaxLength {
		return fmt.Errorf("%w: password: at most %d bytes", acl.ErrInvalid, password.MaxLength)
	}
	return nil
}

type (
	accountJSON struct {
		ID       acl.AccountID    `json:"id"`
		Email    string           `json:"email"`
		Name     string           `json:"name,omitempty"`
		Verified bool             `json:"verified"`
		Support  bool             `json:"support,omitempty"`
		Orgs     []membershipJSON `json:"orgs"`
	}
	membershipJSON struct {
		ID          acl.OrgID `json:"id"`
		Name        string    `json:"name"`
		Role        string    `json:"role"`
		Permissions []string  `json:"permissions"`
	}
)

func (s *Server) accountOf(snap *acl.Snapshot, a acl.Account) accountJSON {
	out := accountJSON{ID: a.ID, Email: a.Email, Name: a.Name, Verified: a.Verified, Support: a.Support, Orgs: []membershipJSON{}}
	for _, m := range snap.Memberships(a.ID) {
		out.Orgs = append(out.Orgs, membershipJSON{ID: m.Org, Name: m.Name, Role: m.Role, Permissions: (m.Perms & acl.MemberPerms).Names()})
	}
	return out
}

// register creates an unverified account, mails it a verification code and
// answers its token (POST /v1/accounts, open; limited per client address).
func (s *Server) register(c *call) error {
	var req struct {
		Email    string `json:"email"`
		Name     string `json:"name"`
		Password string `json:"password"`
		Cookie   bool   `json:"cookie"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	if req.Password != "" {
		if err := checkNewPassword(req.Password); err != nil {
			return err
		}
	}
	if err := allow(s.lim.register, s.clientIP(c.ctx), "too many registrations from this address"); err != nil {
		return err
	}
	id, err := s.ids.take(c.ctx, s.ids.account)
	if err != nil {
		return err
	}
	token, tokID, tokHash := acl.NewToken()
	code := newCode()
	op := acl.RegisterAccount{
		Account: acl.AccountID(id), Email: req.Email, Name: req.Name,
		TokenID: tokID, TokenHash: tokHash, TokenExpires: s.opts.Now().Add(s.opts.SessionTTL), TokenAgent: string(c.ctx.UserAgent()),
		CodeHash: codeHash(code), CodeExpires: s.opts.Now().Add(s.opts.CodeTTL),
	}
	if req.Password != "" {
		if op.PasswordHash, err = s.hasher.Hash(c.ctx, req.Password); err != nil {
			return hashErr(err)
		}
	}
	ch, err := s.opts.Log.Do(acl.Platform, op)
	if err != nil {
		return err
	}
	acc, _ := ch.Snapshot.Account(op.Account)
	s.send(mail.VerificationMail(s.opts.BaseURL, acc.Email, code, s.opts.CodeTTL))
	if req.Cookie {
		s.setSessionCookie(c.ctx, token, s.opts.SessionTTL)
		return c.json(fasthttp.StatusCreated, map[string]any{"account": s.accountOf(ch.Snapshot, acc)})
	}
	return c.json(fasthttp.StatusCreated, map[string]any{"account": s.accountOf(ch.Snapshot, acc), "token": token})
}

// login issues a session for an e-mail and password (POST /v1/sessions,
// open). Wrong e-mail and wrong password answer alike, in the same time.
func (s *Server) login(c *call) error {
	var req struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		Cookie   bool   `json:"cookie"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	email := acl.NormalizeEmail(req.Email)
	ip := s.clientIP(c.ctx)
	// Every attempt counts until it succeeds (a success gives its count
	// back): checking first and counting failures after would let a burst
	// of parallel guesses through before the first failure is counted.
	if err := allow(s.lim.loginIP, ip, "too many failed logins from this address"); err != nil {
		return err
	}
	if err := allow(s.lim.loginEmail, email, "too many failed logins for this e-mail"); err != nil {
		return err
	}
	acc, ok, err := s.checkPassword(c.ctx, c.snapshot(), email, req.Password)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: wrong e-mail or password", errUnauthorized)
	}
	s.lim.loginIP.Refund(ip)
	s.lim.loginEmail.Refund(email)
	return s.issueSession(c, acc, req.Cookie, fasthttp.StatusCreated)
}

// checkPassword verifies an e-mail's password, spending a dummy hash when
// there is nothing to check against, and upgrades a hash an earlier
// version made.
func (s *Server) checkPassword(ctx context.Context, snap *acl.Snapshot, email, pw string) (acl.Account, bool, error) {
	acc, found := snap.AccountByEmail(email)
	var stored []byte
	if found {
		stored, found = snap.PasswordHash(acc.ID)
	}
	if !found {
		return acl.Account{}, false, hashErr(s.hasher.VerifyDummy(ctx, pw))
	}
	ok, rehash, err := s.hasher.Verify(ctx, stored, pw)
	if err != nil || !ok {
		return acl.Account{}, false, hashErr(err)
	}
	if rehash {
		if h, err := s.hasher.Hash(ctx, pw); err == nil {
			if _, err := s.opts.Log.Do(acc.ID, acl.SetPassword{Account: acc.ID, Hash: h}); err != nil {
				s.opts.Logger.Warn("api: password hash not upgraded; the next login retries", "account", acc.ID, "err", err)
			}
		}
	}
	return acc, true, nil
}

// hashErr maps the password hasher's refusals: too many at once is the
// server's load (503), a password too long the caller's (400).
func hashErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, password.ErrTooLong):
		return fmt.Errorf("%w: password too long", acl.ErrInvalid)
	case errors.Is(err, password.ErrBusy):
		return &retryAfter{err: fmt.Errorf("%w: too many logins at once", errNoService), after: time.Second}
	}
	return err
}

// codeHash is what the state stores of a one-time code: the SHA-256 of
// its canonical form (upper case, no spaces).
func codeHash(code string) [32]byte {
	return sha256.Sum256([]byte(strings.ToUpper(strings.Join(strings.Fields(code), ""))))
}

// verify checks the mailed code of the caller's account (POST
// /v1/accounts/verify {"code"}); five wrong tries burn the code. Support
// may verify another account with {"account": id} and no code.
func (s *Server) verify(c *call) error {
	var req struct {
		Code    string        `json:"code"`
		Account acl.AccountID `json:"account"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	op := acl.VerifyAccount{Account: c.caller}
	if req.Account != 0 {
		op.Account = req.Account
	}
	if req.Code == "" {
		ch, err := s.opts.Log.Do(c.caller, op) // support, or ErrInvalid
		if err != nil {
			return err
		}
		acc, _ := ch.Snapshot.Account(op.Account)
		return c.json(fasthttp.StatusOK, s.accountOf(ch.Snapshot, acc))
	}
	op.Code = codeHash(req.Code)
	ch, err := s.tryCode(op.Account, func() (acl.Change, error) { return s.opts.Log.Do(c.caller, op) })
	if err != nil {
		return err
	}
	acc, _ := ch.Snapshot.Account(op.Account)
	return c.json(fasthttp.StatusOK, s.accountOf(ch.Snapshot, acc))
}

// tryCode runs a check of an account's one-time code, counting the try: a
// wrong one that reaches Limits.CodeTries burns the code, and once burnt
// every further try answers 429 until a new code is asked for.
func (s *Server) tryCode(acct acl.AccountID, try func() (acl.Change, error)) (acl.Change, error) {
	key := strconv.FormatUint(uint64(acct), 10)
	if ok, after := s.lim.codeTries.Peek(key); !ok {
		return acl.Change{}, limited(after, "too many wrong codes: the code is burnt; ask for a new one")
	}
	s.lim.codeTries.Allow(key)
	ch, err := try()
	if err == nil {
		s.lim.codeTries.Reset(key)
		return ch, nil
	}
	if errors.Is(err, acl.ErrInvalid) {
		if ok, _ := s.lim.codeTries.Peek(key); !ok {
			if _, berr := s.opts.Log.Do(acl.Platform, acl.BurnCode{Account: acct}); berr != nil {
				s.opts.Logger.Warn("api: code not burnt", "account", acct, "err", berr)
			}
		}
		return acl.Change{}, fmt.Errorf("%w: wrong or expired code", acl.ErrInvalid)
	}
	return acl.Change{}, err
}

// resendCode mails the caller a new verification code (POST
// /v1/accounts/verify/resend); the mail per address is limited.
func (s *Server) resendCode(c *call) error {
	acc, ok := c.snapshot().Account(c.caller)
	if !ok {
		return errNotFound
	}
	if acc.Verified {
		return fmt.Errorf("%w: the e-mail is verified already", acl.ErrInvalid)
	}
	code := newCode()
	if _, err := s.opts.Log.Do(c.caller, acl.SetVerificationCode{Account: c.caller, Hash: codeHash(code), ExpiresAt: s.opts.Now().Add(s.opts.CodeTTL)}); err != nil {
		return err
	}
	s.lim.codeTries.Reset(strconv.FormatUint(uint64(c.caller), 10))
	s.send(mail.VerificationMail(s.opts.BaseURL, acc.Email, code, s.opts.CodeTTL))
	return c.json(fasthttp.StatusAccepted, map[string]any{"sent": true})
}

// me answers the caller's own account, with the organizations it belongs
// to (where it is org_admin the dashboard shows the org's page).
func (s *Server) me(c *call) error {
	snap := c.snapshot()
	acc, ok := snap.Account(c.caller)
	if !ok {
		return errNotFound
	}
	return c.json(fasthttp.StatusOK, s.accountOf(snap, acc))
}

// changePassword: POST /v1/accounts/password {"current", "new"} sets a new
// password and revokes every other session of the caller.
func (s *Server) changePassword(c *call) error {
	var req struct {
		Current string `json:"current"`
		New     string `json:"new"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := checkNewPassword(req.New); err != nil {
		return err
	}
	snap := c.snapshot()
	acc, ok := snap.Account(c.caller)
	if !ok || !acc.Verified {
		return fmt.Errorf("%w: verify the e-mail first", acl.ErrUnverified)
	}
	if err := allow(s.lim.loginEmail, acc.Email, "too many wrong passwords for this e-mail"); err != nil {
		return err
	}
	if _, has := snap.PasswordHash(acc.ID); has || req.Current != "" {
		if _, ok, err := s.checkPassword(c.ctx, snap, acc.Email, req.Current); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("%w: the current password is wrong", errForbidden)
		}
	}
	s.lim.loginEmail.Refund(acc.Email)
	h, err := s.hasher.Hash(c.ctx, req.New)
	if err != nil {
		return hashErr(err)
	}
	if _, err := s.opts.Log.Do(c.caller, acl.SetPassword{Account: c.caller, Hash: h}); err != nil {
		return err
	}
	if _, err := s.opts.Log.Do(c.caller, acl.RevokeSessions{Account: c.caller, Keep: c.tokenID}); err != nil {
		return err
	}
	return c.json(fasthttp.StatusOK, s.accountOf(c.snapshot(), acc))
}

// resetCodeTTL is how long a password-reset code lives: long enough to
// read the mail, short enough that a leaked mail is soon harmless.
const resetCodeTTL = time.Hour

// requestReset: POST /v1/accounts/password-reset {"email"} mails a
// one-time code to the account of the e-mail, if there is one; the answer
// is 202 either way, so the endpoint tells nobody which e-mails exist.
func (s *Server) requestReset(c *call) error {
	var req struct {
		Email string `json:"email"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	email := acl.NormalizeEmail(req.Email)
	if err := allow(s.lim.resetIP, s.clientIP(c.ctx), "too many password resets from this address"); err != nil {
		return err
	}
	if err := allow(s.lim.resetEmail, email, "too many password resets for this e-mail"); err != nil {
		return err
	}
	snap := c.snapshot()
	if acc, ok := snap.AccountByEmail(email); ok && !acc.Support {
		// The code names its account, so that confirming needs nothing
		// else: <account id in base 36>-<10 random characters>.
		code := strings.ToUpper(strconv.FormatUint(uint64(acc.ID), 36)) + "-" + newCode()
		if _, err := s.opts.Log.Do(acl.Platform, acl.SetVerificationCode{Account: acc.ID, Hash: codeHash(code), ExpiresAt: s.opts.Now().Add(resetCodeTTL)}); err != nil {
			return err
		}
		s.lim.codeTries.Reset(strconv.FormatUint(uint64(acc.ID), 10))
		s.send(mail.PasswordResetMail(s.opts.BaseURL, acc.Email, code, resetCodeTTL))
	}
	return c.json(fasthttp.StatusAccepted, map[string]any{"sent": "if the e-mail has an account, a code is on its way"})
}

// confirmReset: POST /v1/accounts/password-reset/confirm {"code",
// "password"} sets the password and revokes every session.
func (s *Server) confirmReset(c *call) error {
	var req struct {
		Code     string `json:"code"`
		Password string `json:"password"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := checkNewPassword(req.Password); err != nil {
		return err
	}
	prefix, _, found := strings.Cut(strings.TrimSpace(req.Code), "-")
	n, err := strconv.ParseUint(strings.ToLower(prefix), 36, 32)
	if !found || err != nil || n == 0 {
		return fmt.Errorf("%w: wrong or expired code", acl.ErrInvalid)
	}
	acct := acl.AccountID(n)
	h, err := s.hasher.Hash(c.ctx, req.Password)
	if err != nil {
		return hashErr(err)
	}
	ch, err := s.tryCode(acct, func() (acl.Change, error) {
		return s.opts.Log.Do(acl.Platform, acl.ResetPassword{Account: acct, Code: codeHash(req.Code), Hash: h})
	})
	if err != nil {
		if errors.Is(err, acl.ErrNotFound) {
			return fmt.Errorf("%w: wrong or expired code", acl.ErrInvalid)
		}
		return err
	}
	acc, _ := ch.Snapshot.Account(acct)
	return c.json(fasthttp.StatusOK, s.accountOf(ch.Snapshot, acc))
}

// outbox lists recent mail to support (GET /v1/outbox?to=…).
func (s *Server) outbox(c *call) error {
	acc, ok := c.snapshot().Account(c.caller)
	if !ok || !acc.Support {
		return fmt.Errorf("%w: the outbox is for support", errForbidden)
	}
	if s.opts.Outbox == nil {
		return errNoService
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	mails, err := s.opts.Outbox.Recent(ctx, acl.NormalizeEmail(c.arg("to")), 200)
	if err != nil {
		return err
	}
	return list(c, mails, len(mails), "")
}

// send delivers a mail, logging (not answering) a failure: the change the
// mail tells of is made, and support can read the outbox copy.
func (s *Server) send(m mail.Message) {
	if s.opts.Mailer == nil {
		s.opts.Logger.Warn("api: no mailer configured; mail dropped", "to", m.To, "kind", m.Kind)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.opts.Mailer.Send(ctx, m); err != nil {
		s.opts.Logger.Error("api: mail not sent", "to", m.To, "kind", m.Kind, "err", err)
	}
}

// SupportTokenBits estimates the strength of a support token from its
// length and the kinds of characters it uses; EnsureSupport refuses less
// than 128 bits (DESIGN §5). A token of repeated characters counts as
// little as it is worth.
func SupportTokenBits(tok string) float64 {
	var lower, upper, digit, other bool
	distinct := map[rune]bool{}
	for _, r := range tok {
		distinct[r] = true
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		default:
			other = true
		}
	}
	alphabet := 0
	for _, c := range []struct {
		on bool
		n  int
	}{{lower, 26}, {upper, 26}, {digit, 10}, {other, 32}} {
		if c.on {
			alphabet += c.n
		}
	}
	alphabet = min(alphabet, len(distinct)*4) // 16 distinct hex digits are 4 bits each, not 5.2
	if len(distinct) < 8 {
		return 0 // "aaaa…" or "abababab…": no length makes it secret
	}
	return float64(utf8.RuneCountInString(tok)) * float64(bits.Len(uint(alphabet-1)))
}

// ErrWeakSupportToken: the configured support token carries fewer than 128
// bits.
var ErrWeakSupportToken = errors.New("the support token must carry at least 128 bits (e.g. `openssl rand -hex 16`, 32 hex digits)")

// supportAccount is the id EnsureSupport gives the support account it
// creates (see there).
const supportAccount acl.AccountID = 1

// EnsureSupport makes the platform support account from configuration
// (DESIGN §4): support@fleetscope.local, verified, with support rights and
// token as its one credential. It is never an existing account promoted:
// an account of that address that is not support (registered before the
// address was reserved) is left as it is — unverified, it can do nothing —
// and a new account is made. Every other session of the support account is
// revoked (changing the token revokes the previous one) and it has no
// password. Idempotent: nothing is written when all of it is in place.
func (s *Server) EnsureSupport(ctx context.Context, token string) (acl.AccountID, error) {
	if SupportTokenBits(token) < 128 {
		return 0, ErrWeakSupportToken
	}
	snap := s.x.Snapshot()
	id, hash := acl.TokenParts(token)
	var acct acl.AccountID
	if acc, ok := snap.AccountByEmail(acl.SupportEmail); ok && acc.Support {
		acct = acc.ID
	}
	var evs []acl.Event
	if acct == 0 {
		// Account 1, which no id block hands out (the first block starts
		// past every id the state holds, at IDBlockSize at the least): two
		// nodes starting at once on an empty log then create the same
		// account and converge, where ids of their own blocks would make
		// two support accounts racing for one e-mail and one token. On a
		// state from before id blocks account 1 may be anyone's; then a
		// block's id.
		acct = supportAccount
		if _, taken := snap.Account(acct); taken {
			n, err := s.ids.take(ctx, s.ids.account)
			if err != nil {
				return 0, err
			}
			acct = acl.AccountID(n)
		}
		evs = append(evs,
			acl.Event{Kind: acl.KindAccountRegister, Account: acct, Email: acl.SupportEmail},
			acl.Event{Kind: acl.KindAccountName, Account: acct, Name: "Platform support"},
			acl.Event{Kind: acl.KindAccountVerify, Account: acct, Verified: true},
			acl.Event{Kind: acl.KindAccountSupport, Account: acct, Support: true})
	}
	if owner, want, ok := snap.Token(id); ok && (owner != acct || want != hash) {
		return 0, errors.New("api: the support token's id is another account's token")
	}
	if _, _, ok := snap.Token(id); !ok {
		evs = append(evs, acl.Event{Kind: acl.KindTokenPut, Account: acct, Token: id, Hash: hash})
	}
	// The token lives as long as it is configured: a year from each start,
	// and changing the variable revokes it at the next.
	if sess, ok := snap.SessionOf(id); !ok || time.Until(sess.Expires) < 300*24*time.Hour {
		evs = append(evs, acl.Event{Kind: acl.KindTokenMeta, Token: id, Expires: s.opts.Now().Add(365 * 24 * time.Hour).UnixMilli(), Name: "configuration"})
	}
	for _, sess := range snap.Sessions(acct) {
		if sess.ID != id {
			evs = append(evs, acl.Event{Kind: acl.KindTokenDelete, Token: sess.ID})
		}
	}
	if _, has := snap.PasswordHash(acct); has {
		evs = append(evs, acl.Event{Kind: acl.KindPasswordSet, Account: acct})
	}
	if len(evs) == 0 {
		return acct, nil
	}
	if _, err := s.opts.Log.Record(evs); err != nil {
		return 0, err
	}
	return acct, nil
}
