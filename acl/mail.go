package acl

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/valyala/fasthttp"

	"github.com/fleetscope/fleetscope/internal/apijson"
	"github.com/fleetscope/fleetscope/store"
)

// Mailer delivers mail to an e-mail address: verification codes and
// invitations. fleetscope ships OutboxMailer; an SMTP or provider mailer
// implements the same interface.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// OutboxMailer "sends" mail by writing it to the log and to the outbox
// table, which support reads with GET /v1/outbox. It is the default: a
// fresh installation has no mail server, and a code must still reach its
// owner somehow (support relays it after checking who asks).
type OutboxMailer struct {
	Store  *store.Store
	Logger *slog.Logger
}

// Send implements Mailer.
func (m *OutboxMailer) Send(ctx context.Context, to, subject, body string) error {
	id, err := uuid.NewRandom()
	if err != nil {
		return err
	}
	if m.Logger != nil {
		m.Logger.Info("mail", "to", to, "subject", subject, "body", body)
	}
	return m.Store.Exec(ctx, "INSERT INTO outbox (id, to, subject, body, created_at) VALUES ({id:UUID}, {to:String}, {subject:String}, {body:String}, now64(3))",
		named("id", id.String()), named("to", to), named("subject", subject), named("body", body))
}

// outbox lists recent mail to support (GET /v1/outbox?to=…).
func (a *API) outbox(ctx *fasthttp.RequestCtx, caller AccountID) {
	acc, ok := a.x.Snapshot().Account(caller)
	if !ok || !acc.Support {
		apijson.Error(ctx, fasthttp.StatusForbidden, "forbidden", "the outbox is for support")
		return
	}
	to := NormalizeEmail(string(ctx.QueryArgs().Peek("to")))
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := a.opts.Store.Query(c, "SELECT toString(id), to, subject, body, created_at FROM outbox WHERE {to:String} = '' OR to = {to:String} ORDER BY created_at DESC LIMIT 200",
		named("to", to))
	if err != nil {
		fail(ctx, err)
		return
	}
	defer rows.Close()
	type mail struct {
		ID        string    `json:"id"`
		To        string    `json:"to"`
		Subject   string    `json:"subject"`
		Body      string    `json:"body"`
		CreatedAt time.Time `json:"created_at"`
	}
	var out []mail
	for rows.Next() {
		var m mail
		if err := rows.Scan(&m.ID, &m.To, &m.Subject, &m.Body, &m.CreatedAt); err != nil {
			fail(ctx, err)
			return
		}
		out = append(out, m)
	}
	apijson.WriteList(ctx, out, len(out), "")
}

// newCode returns a one-time verification code: 10 characters of an
// alphabet without look-alikes, ~50 bits — not guessable within its
// lifetime.
func newCode() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	var b [10]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

func verificationMail(code string) (subject, body string) {
	return "Verify your fleetscope e-mail address",
		fmt.Sprintf("Your verification code is %s.\n\nEnter it in the app, or POST /v1/accounts/verify {\"code\": %q} with your token.\nIt is valid for 24 hours.\n", code, code)
}
