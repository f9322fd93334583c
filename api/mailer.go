package api

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"

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
	if m.Store == nil {
		return errors.New("api: no outbox store")
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return err
	}
	if m.Logger != nil {
		m.Logger.Info("mail", "to", to, "subject", subject, "body", body)
	}
	return m.Store.Exec(ctx, "INSERT INTO outbox (id, to, subject, body, created_at) VALUES ({id:UUID}, {to:String}, {subject:String}, {body:String}, now64(3))",
		clickhouse.Named("id", id.String()), clickhouse.Named("to", to), clickhouse.Named("subject", subject), clickhouse.Named("body", body))
}

// storedMail is one mail in the outbox.
type storedMail struct {
	ID        string    `json:"id"`
	To        string    `json:"to"`
	Subject   string    `json:"subject"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// recent lists the newest mail, to one address or ("") to any.
func (m *OutboxMailer) recent(ctx context.Context, to string) ([]storedMail, error) {
	if m.Store == nil {
		return nil, errNoService
	}
	rows, err := m.Store.Query(ctx, "SELECT toString(id), to, subject, body, created_at FROM outbox WHERE {to:String} = '' OR to = {to:String} ORDER BY created_at DESC LIMIT 200",
		clickhouse.Named("to", to))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storedMail
	for rows.Next() {
		var ml storedMail
		if err := rows.Scan(&ml.ID, &ml.To, &ml.Subject, &ml.Body, &ml.CreatedAt); err != nil {
			return nil, store.Transient(err)
		}
		out = append(out, ml)
	}
	return out, store.Transient(rows.Err())
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
