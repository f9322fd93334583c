package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/internal/smtptest"
	"github.com/fleetscope/fleetscope/internal/storetest"
)

func TestOutboxSendRecent(t *testing.T) {
	st := storetest.Open(t)
	met := NewMetrics(nil)
	o := NewOutbox(st, OutboxOptions{Metrics: met})
	ctx := context.Background()
	sent := []Message{
		{To: "ana@example.com", Subject: "First", Text: "code ABCD234XYZ\n"},
		{To: "bob@example.com", Subject: "Zweite Nachricht für Bob", Text: "Grüße\n"},
		{To: "ana@example.com", Subject: "Third", Text: "line 1\nline 2\n"},
	}
	for _, m := range sent {
		if err := o.Send(ctx, m); err != nil {
			t.Fatalf("Send: %v", err)
		}
		time.Sleep(5 * time.Millisecond) // created_at has millisecond resolution
	}
	f := func(to string, limit int, want ...int) {
		t.Helper()
		got, err := o.Recent(ctx, to, limit)
		if err != nil {
			t.Fatalf("Recent(%q, %d): %v", to, limit, err)
		}
		if len(got) != len(want) {
			t.Fatalf("Recent(%q, %d): %d mails, want %d: %+v", to, limit, len(got), len(want), got)
		}
		for i, w := range want {
			g, m := got[i], sent[w]
			if g.To != m.To || g.Subject != m.Subject || g.Body != m.Text || len(g.ID) != 36 || time.Since(g.CreatedAt) > time.Minute {
				t.Fatalf("Recent(%q, %d)[%d] = %+v, want mail %d", to, limit, i, g, w)
			}
		}
	}
	f("", 0, 2, 1, 0) // newest first
	f("ana@example.com", 0, 2, 0)
	f("ana@example.com", 1, 2)
	f("bob@example.com", -1, 1)
	f("eve@example.com", 10)
	f("", MaxRecent+1, 2, 1, 0)

	// An invalid message is refused and not stored.
	if err := o.Send(ctx, Message{To: "ana@example.com", Subject: "x\r\nBcc: eve@example.com", Text: "y"}); !errors.Is(err, ErrHeaderInjection) {
		t.Fatalf("Send with CRLF in the subject: %v", err)
	}
	f("", 0, 2, 1, 0)
	if n := counterValue(t, met.sent.WithLabelValues("outbox")); n != 3 {
		t.Fatalf("sent_total{outbox} %v, want 3", n)
	}
	if n := counterValue(t, met.failures.WithLabelValues("outbox")); n != 1 {
		t.Fatalf("failures_total{outbox} %v, want 1", n)
	}
}

// TestOutboxLogsNoBody: the body (a one-time code) appears in the log at
// Debug only.
func TestOutboxLogsNoBody(t *testing.T) {
	st := storetest.Open(t)
	const code = "QWERTY2345"
	m := VerificationMail("https://fleet.example", "ana@example.com", code, 24*time.Hour)
	f := func(level slog.Level, wantBody bool) {
		t.Helper()
		var buf bytes.Buffer
		o := NewOutbox(st, OutboxOptions{Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}))})
		if err := o.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		log := buf.String()
		if !strings.Contains(log, "ana@example.com") || !strings.Contains(log, KindVerification) {
			t.Fatalf("level %v: log does not name the recipient and kind:\n%s", level, log)
		}
		if strings.Contains(log, code) != wantBody {
			t.Fatalf("level %v: code in the log = %v, want %v:\n%s", level, !wantBody, wantBody, log)
		}
	}
	f(slog.LevelInfo, false)
	f(slog.LevelDebug, true)
}

// TestTeeRecordsWhenDeliveryFails: an SMTP server that refuses (no
// STARTTLS) fails the Send, and support still finds the mail in the outbox.
func TestTeeRecordsWhenDeliveryFails(t *testing.T) {
	st := storetest.Open(t)
	ts := smtptest.Start(t, smtptest.Plain)
	met := NewMetrics(nil)
	s, err := NewSMTP(ts.URL("smtp", ""), SMTPOptions{TLSConfig: &tls.Config{RootCAs: ts.Roots}, Metrics: met})
	if err != nil {
		t.Fatal(err)
	}
	o := NewOutbox(st, OutboxOptions{Metrics: met})
	m := Message{To: "ana@example.com", Subject: "Code", Text: "ABCD234XYZ\n"}
	if err := Tee(s, o).Send(context.Background(), m); !errors.Is(err, ErrNoSTARTTLS) {
		t.Fatalf("Tee.Send: %v, want ErrNoSTARTTLS", err)
	}
	got, err := o.Recent(context.Background(), m.To, 0)
	if err != nil || len(got) != 1 || got[0].Body != m.Text {
		t.Fatalf("outbox after a failed delivery: %+v (%v), want the mail", got, err)
	}
	for mailer, want := range map[string][2]float64{"smtp": {0, 1}, "outbox": {1, 0}} {
		sent, failed := counterValue(t, met.sent.WithLabelValues(mailer)), counterValue(t, met.failures.WithLabelValues(mailer))
		if [2]float64{sent, failed} != want {
			t.Fatalf("%s: sent %v failed %v, want %v", mailer, sent, failed, want)
		}
	}
}
