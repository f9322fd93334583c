package api

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/acl"
	"github.com/fleetscope/fleetscope/mail"
)

// Password hashes: salt (16 bytes), iterations (4 bytes), PBKDF2-SHA256 key
// (32 bytes).
const (
	pbkdf2Iter    = 100_000
	pbkdf2KeyLen  = 32
	pbkdf2SaltLen = 16
)

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
	ID       acl.AccountID `json:"id"`
	Email    string        `json:"email"`
	Name     string        `json:"name,omitempty"`
	Verified bool          `json:"verified"`
	Support  bool          `json:"support,omitempty"`
}

func accountOf(a acl.Account) accountJSON {
	return accountJSON{ID: a.ID, Email: a.Email, Name: a.Name, Verified: a.Verified, Support: a.Support}
}

// register creates an unverified account, mails it a verification code and
// answers its token (POST /v1/accounts, open).
func (s *Server) register(c *call) error {
	var req struct {
		Email    string `json:"email"`
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	if req.Password != "" && len(req.Password) < 8 {
		return fmt.Errorf("%w: password: at least 8 characters", acl.ErrInvalid)
	}
	token, tokID, tokHash := acl.NewToken()
	code := newCode()
	op := acl.RegisterAccount{
		Account: s.nextAccount(), Email: req.Email, Name: req.Name,
		TokenID: tokID, TokenHash: tokHash,
		CodeHash: sha256.Sum256([]byte(code)), CodeExpires: s.opts.Now().Add(s.opts.CodeTTL),
	}
	if req.Password != "" {
		op.PasswordHash = hashPassword(req.Password)
	}
	ch, err := s.opts.Log.Do(acl.Platform, op)
	if err != nil {
		return err
	}
	acc, _ := ch.Snapshot.Account(op.Account)
	s.send(mail.VerificationMail(s.opts.BaseURL, acc.Email, code, s.opts.CodeTTL))
	return c.json(fasthttp.StatusCreated, map[string]any{"account": accountOf(acc), "token": token})
}

// login issues a new token for an e-mail and password (POST /v1/sessions,
// open). Wrong e-mail and wrong password answer alike.
func (s *Server) login(c *call) error {
	var req struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	snap := c.snapshot()
	acc, ok := snap.AccountByEmail(acl.NormalizeEmail(req.Email))
	var stored []byte
	if ok {
		stored, ok = snap.PasswordHash(acc.ID)
	}
	if !ok || !checkPassword(stored, req.Password) {
		return fmt.Errorf("%w: wrong e-mail or password", errUnauthorized)
	}
	token, id, hash := acl.NewToken()
	if _, err := s.opts.Log.Do(acc.ID, acl.IssueToken{Account: acc.ID, ID: id, Hash: hash}); err != nil {
		return err
	}
	return c.json(fasthttp.StatusCreated, map[string]any{"account": accountOf(acc), "token": token})
}

// verify checks the mailed code of the caller's account (POST
// /v1/accounts/verify {"code"}). Support may verify another account with
// {"account": id} and no code.
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
	if req.Code != "" {
		op.Code = sha256.Sum256([]byte(strings.ToUpper(strings.TrimSpace(req.Code))))
	}
	ch, err := s.opts.Log.Do(c.caller, op)
	if err != nil {
		return err
	}
	acc, _ := ch.Snapshot.Account(op.Account)
	return c.json(fasthttp.StatusOK, accountOf(acc))
}

// me answers the caller's own account.
func (s *Server) me(c *call) error {
	acc, ok := c.snapshot().Account(c.caller)
	if !ok {
		return errNotFound
	}
	return c.json(fasthttp.StatusOK, accountOf(acc))
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

// EnsureSupport makes the platform support account from configuration
// exist (support@fleetscope.local), verified, with support rights and the
// given token. Idempotent: nothing is written when all of it is in place.
func (s *Server) EnsureSupport(token string) (acl.AccountID, error) {
	const email = "support@fleetscope.local"
	snap := s.x.Snapshot()
	id, hash := acl.TokenParts(token)
	if acct, want, ok := snap.Token(id); ok {
		if want != hash {
			return 0, fmt.Errorf("api: support token id collides with another token")
		}
		if acc, ok := snap.Account(acct); ok && acc.Support && acc.Verified {
			return acct, nil
		}
	}
	var evs []acl.Event
	acct := acl.AccountID(0)
	if acc, ok := snap.AccountByEmail(email); ok {
		acct = acc.ID
	} else {
		acct = s.nextAccount()
		evs = append(evs, acl.Event{Kind: acl.KindAccountRegister, Account: acct, Email: email}, acl.Event{Kind: acl.KindAccountName, Account: acct, Name: "Platform support"})
	}
	evs = append(evs,
		acl.Event{Kind: acl.KindAccountVerify, Account: acct, Verified: true},
		acl.Event{Kind: acl.KindAccountSupport, Account: acct, Support: true})
	if _, _, ok := snap.Token(id); !ok {
		evs = append(evs, acl.Event{Kind: acl.KindTokenPut, Account: acct, Token: id, Hash: hash})
	}
	if _, err := s.opts.Log.Record(evs); err != nil {
		return 0, err
	}
	return acct, nil
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
