package mail

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"

	"github.com/fleetscope/fleetscope/store"
)

// OutboxOptions configure an Outbox. The zero value is valid.
type OutboxOptions struct {
	// Logger gets a line per mail at Info (recipient, subject, kind) and
	// the body at Debug. Default: discard.
	Logger *slog.Logger
	// Metrics count the mails under mailer="outbox". Default: unregistered.
	Metrics *Metrics
}

// Outbox "sends" mail by writing it to the outbox table (kept 30 days, see
// store/schema.go), where support reads it with Recent.
type Outbox struct {
	st   *store.Store
	opts OutboxOptions
}

// NewOutbox returns an Outbox on st.
func NewOutbox(st *store.Store, opts OutboxOptions) *Outbox {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	return &Outbox{st: st, opts: opts}
}

// Send implements Mailer. It logs the mail at Info without its body: a body
// carries a one-time code, and logs reach more people than support does.
func (o *Outbox) Send(ctx context.Context, m Message) (err error) {
	start := time.Now()
	defer func() { o.opts.Metrics.observe("outbox", start, err) }()
	if err := m.Validate(); err != nil {
		return err
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return fmt.Errorf("mail: outbox id: %w", err)
	}
	err = o.st.Exec(ctx, "INSERT INTO outbox (id, to, subject, body, created_at) VALUES ({id:UUID}, {to:String}, {subject:String}, {body:String}, now64(3))",
		clickhouse.Named("id", id.String()), clickhouse.Named("to", m.To),
		clickhouse.Named("subject", m.Subject), clickhouse.Named("body", m.Text))
	if err != nil {
		return fmt.Errorf("mail: outbox insert: %w", err)
	}
	o.opts.Logger.Info("mail: written to the outbox", "id", id.String(), "to", m.To, "subject", m.Subject, "kind", m.Kind)
	o.opts.Logger.Debug("mail: body", "id", id.String(), "body", m.Text)
	return nil
}

// Stored is a mail read back from the outbox. Its JSON form is what
// GET /v1/outbox lists.
type Stored struct {
	ID        string    `json:"id"`
	To        string    `json:"to"`
	Subject   string    `json:"subject"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// Recent limits for Outbox.Recent: 200 is the page GET /v1/outbox has
// always answered; 1000 bounds what one call reads, bodies included.
const (
	DefaultRecent = 200
	MaxRecent     = 1000
)

// Recent returns the newest mails to the address to, or to anyone when to
// is "", newest first. to is compared as stored: the caller normalizes it
// as it normalized the address it sent to. limit ≤ 0 means DefaultRecent;
// more than MaxRecent reads MaxRecent.
func (o *Outbox) Recent(ctx context.Context, to string, limit int) ([]Stored, error) {
	if limit <= 0 {
		limit = DefaultRecent
	}
	limit = min(limit, MaxRecent)
	rows, err := o.st.Query(ctx, "SELECT toString(id), to, subject, body, created_at FROM outbox WHERE {to:String} = '' OR to = {to:String} ORDER BY created_at DESC LIMIT {limit:UInt32}",
		clickhouse.Named("to", to), clickhouse.Named("limit", fmt.Sprint(limit)))
	if err != nil {
		return nil, fmt.Errorf("mail: outbox read: %w", err)
	}
	defer rows.Close()
	var out []Stored
	for rows.Next() {
		var s Stored
		if err := rows.Scan(&s.ID, &s.To, &s.Subject, &s.Body, &s.CreatedAt); err != nil {
			return nil, fmt.Errorf("mail: outbox read: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mail: outbox read: %w", err)
	}
	return out, nil
}
