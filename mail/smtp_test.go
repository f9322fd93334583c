package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/fleetscope/fleetscope/internal/smtptest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// smtpURL is scheme://user:pass@addr?from=...&extra for a server that is
// not a smtptest.Server.
func smtpURL(scheme, addr, extra string) string {
	return (&smtptest.Server{Addr: addr}).URL(scheme, extra)
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestSMTPSendSTARTTLS(t *testing.T) {
	ts := smtptest.Start(t, smtptest.STARTTLS)
	met := NewMetrics(prometheus.NewRegistry())
	s, err := NewSMTP(ts.URL("smtp", ""), SMTPOptions{TLSConfig: &tls.Config{RootCAs: ts.Roots}, Metrics: met})
	if err != nil {
		t.Fatal(err)
	}
	m := Message{
		To:      "bob.mueller@example.com",
		Subject: "Einladung: Müller Residence ☀",
		// A line starting with a dot (dot-stuffing), a long line (QP soft
		// breaks), trailing space and a code.
		Text: "Hallo Bob,\n.\n..dots\n" + strings.Repeat("Sonnenstrom ", 20) + "\ntrailing space \nCode: ABCD234XYZ\n",
		Kind: KindSystemInvitation,
	}
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	auths, mails := ts.Received()
	if len(auths) != 1 || auths[0] != (smtptest.Auth{User: smtptest.User, Pass: smtptest.Pass}) {
		t.Fatalf("auths %+v, want one with the URL's credentials", auths)
	}
	if len(mails) != 1 {
		t.Fatalf("server received %d mails, want 1", len(mails))
	}
	got := mails[0]
	if got.From != "noreply@fleet.example" || len(got.To) != 1 || got.To[0] != m.To {
		t.Fatalf("envelope from %q to %q", got.From, got.To)
	}
	if !got.TLS || got.User != smtptest.User {
		t.Fatalf("mail over tls=%v as %q, want TLS and authenticated", got.TLS, got.User)
	}
	for i, line := range bytes.Split(got.Data, []byte("\r\n")) {
		if len(line) > 78 {
			t.Fatalf("line %d is %d bytes: %q", i, len(line), line)
		}
		for _, c := range line {
			if c >= 0x80 || c == '\n' || c == '\r' {
				t.Fatalf("line %d is not 7-bit ASCII without bare CR/LF: %q", i, line)
			}
		}
	}
	p := smtptest.Parse(t, got.Data)
	if p.Subject != m.Subject {
		t.Fatalf("subject %q, want %q", p.Subject, m.Subject)
	}
	if raw := p.Header.Get("Subject"); !strings.Contains(raw, "=?utf-8?") {
		t.Fatalf("non-ASCII subject not RFC 2047-encoded: %q", raw)
	}
	if p.Text != m.Text {
		t.Fatalf("text\n%q\nwant\n%q", p.Text, m.Text)
	}
	from, err := p.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "noreply@fleet.example" || from[0].Name != "fleetscope" {
		t.Fatalf("From %v (%v)", from, err)
	}
	to, err := p.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != m.To {
		t.Fatalf("To %v (%v)", to, err)
	}
	if d, err := p.Header.Date(); err != nil || time.Since(d) > time.Minute {
		t.Fatalf("Date %v (%v)", d, err)
	}
	if id := p.Header.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@fleet.example>") {
		t.Fatalf("Message-ID %q", id)
	}
	for k, want := range map[string]string{"MIME-Version": "1.0", "Content-Type": "text/plain; charset=utf-8", "Auto-Submitted": "auto-generated"} {
		if v := p.Header.Get(k); v != want {
			t.Fatalf("%s %q, want %q", k, v, want)
		}
	}
	if n := counterValue(t, met.sent.WithLabelValues("smtp")); n != 1 {
		t.Fatalf("sent_total{smtp} %v, want 1", n)
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	ts := smtptest.Start(t, smtptest.Implicit)
	s, err := NewSMTP(ts.URL("smtps", ""), SMTPOptions{TLSConfig: &tls.Config{RootCAs: ts.Roots}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), Message{To: "ana@example.com", Subject: "Hello", Text: "Hi\n"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	auths, mails := ts.Received()
	if len(auths) != 1 || len(mails) != 1 || !mails[0].TLS || smtptest.Parse(t, mails[0].Data).Text != "Hi\n" {
		t.Fatalf("auths %+v mails %+v", auths, mails)
	}
}

// TestSMTPUTF8Address: a non-ASCII address goes only to a server that
// offers SMTPUTF8.
func TestSMTPUTF8Address(t *testing.T) {
	f := func(serverUTF8 bool) {
		t.Helper()
		ts := smtptest.StartWith(t, smtptest.STARTTLS, func(s *smtp.Server) { s.EnableSMTPUTF8 = serverUTF8 })
		s, err := NewSMTP(ts.URL("smtp", ""), SMTPOptions{TLSConfig: &tls.Config{RootCAs: ts.Roots}})
		if err != nil {
			t.Fatal(err)
		}
		m := Message{To: "jürgen@example.com", Subject: "Hallo Jürgen", Text: "Grüße\n"}
		err = s.Send(context.Background(), m)
		_, mails := ts.Received()
		if !serverUTF8 {
			if err == nil || len(mails) != 0 {
				t.Fatalf("without SMTPUTF8: Send %v, %d mails; want an error and none", err, len(mails))
			}
			return
		}
		if err != nil || len(mails) != 1 {
			t.Fatalf("with SMTPUTF8: Send %v, %d mails", err, len(mails))
		}
		p := smtptest.Parse(t, mails[0].Data)
		if to, err := p.Header.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != m.To || mails[0].To[0] != m.To {
			t.Fatalf("To %v (%v), envelope %v", to, err, mails[0].To)
		}
		if p.Subject != m.Subject || p.Text != m.Text {
			t.Fatalf("subject %q text %q", p.Subject, p.Text)
		}
	}
	f(false)
	f(true)
}

// TestSMTPRequiresSTARTTLS: a server that offers no STARTTLS gets neither
// the password nor the message, although it would accept AUTH in the clear.
func TestSMTPRequiresSTARTTLS(t *testing.T) {
	ts := smtptest.Start(t, smtptest.Plain)
	met := NewMetrics(nil)
	s, err := NewSMTP(ts.URL("smtp", ""), SMTPOptions{TLSConfig: &tls.Config{RootCAs: ts.Roots}, Metrics: met})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), Message{To: "ana@example.com", Subject: "Code", Text: "ABCD234XYZ\n"})
	if !errors.Is(err, ErrNoSTARTTLS) {
		t.Fatalf("Send: %v, want ErrNoSTARTTLS", err)
	}
	if strings.Contains(err.Error(), smtptest.Pass) {
		t.Fatalf("error carries the password: %v", err)
	}
	if auths, mails := ts.Received(); len(auths) != 0 || len(mails) != 0 {
		t.Fatalf("server got auths %+v and mails %d, want none", auths, len(mails))
	}
	if n := counterValue(t, met.failures.WithLabelValues("smtp")); n != 1 {
		t.Fatalf("failures_total{smtp} %v, want 1", n)
	}
}

// TestSMTPPlainLoopback: ?tls=none talks to a loopback relay in the clear.
func TestSMTPPlainLoopback(t *testing.T) {
	ts := smtptest.Start(t, smtptest.Plain)
	s, err := NewSMTP(ts.URL("smtp", "tls=none"), SMTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), Message{To: "ana@example.com", Subject: "Hello", Text: "Hi\n"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if auths, mails := ts.Received(); len(auths) != 1 || len(mails) != 1 || mails[0].TLS {
		t.Fatalf("auths %+v mails %+v", auths, mails)
	}
}

func TestSMTPFailures(t *testing.T) {
	ts := smtptest.Start(t, smtptest.STARTTLS)
	f := func(name, rawURL string, tlsConf *tls.Config) {
		t.Helper()
		s, err := NewSMTP(rawURL, SMTPOptions{TLSConfig: tlsConf})
		if err != nil {
			t.Fatalf("%s: NewSMTP: %v", name, err)
		}
		err = s.Send(context.Background(), Message{To: "ana@example.com", Subject: "Hello", Text: "Hi\n"})
		if err == nil {
			t.Fatalf("%s: Send succeeded", name)
		}
		if strings.Contains(err.Error(), smtptest.Pass) {
			t.Fatalf("%s: error carries the password: %v", name, err)
		}
		if _, mails := ts.Received(); len(mails) != 0 {
			t.Fatalf("%s: server received a mail", name)
		}
	}
	// The self-signed certificate is not in the system roots.
	f("untrusted certificate", ts.URL("smtp", ""), nil)
	wrong := "smtp://" + url.UserPassword(smtptest.User, "wrong").String() + "@" + ts.Addr + "?from=noreply%40fleet.example"
	f("wrong password", wrong, &tls.Config{RootCAs: ts.Roots})
	// Nothing listens on port 1.
	f("refused", smtpURL("smtp", "127.0.0.1:1", ""), &tls.Config{RootCAs: ts.Roots})
}

// TestSMTPTimeout: a server that accepts and never greets is given up on
// at the context's deadline.
func TestSMTPTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	s, err := NewSMTP(smtpURL("smtp", l.Addr().String(), ""), SMTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Send(ctx, Message{To: "ana@example.com", Subject: "Hello", Text: "Hi\n"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Send took %v", d)
	}
}

// TestSMTPHeaderInjection: a CR or LF in To or Subject is refused before
// any connection is made.
func TestSMTPHeaderInjection(t *testing.T) {
	ts := smtptest.Start(t, smtptest.STARTTLS)
	s, err := NewSMTP(ts.URL("smtp", ""), SMTPOptions{TLSConfig: &tls.Config{RootCAs: ts.Roots}})
	if err != nil {
		t.Fatal(err)
	}
	f := func(m Message) {
		t.Helper()
		if err := s.Send(context.Background(), m); !errors.Is(err, ErrHeaderInjection) || !errors.Is(err, ErrInvalid) {
			t.Fatalf("Send(%q, %q): %v, want ErrHeaderInjection", m.To, m.Subject, err)
		}
	}
	f(Message{To: "ana@example.com", Subject: "Hi\r\nBcc: eve@example.com", Text: "x"})
	f(Message{To: "ana@example.com", Subject: "Hi\nBcc: eve@example.com", Text: "x"})
	f(Message{To: "ana@example.com\r\nBcc: eve@example.com", Subject: "Hi", Text: "x"})
	f(Message{To: "ana@example.com\r", Subject: "Hi", Text: "x"})
	if auths, mails := ts.Received(); len(auths)+len(mails) != 0 {
		t.Fatalf("server was contacted: auths %v mails %v", auths, mails)
	}
}

func TestNewSMTP(t *testing.T) {
	f := func(rawURL string, opts SMTPOptions, wantErr bool, wantAddr string) {
		t.Helper()
		s, err := NewSMTP(rawURL, opts)
		if wantErr {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("NewSMTP(%q): %v, want ErrConfig", rawURL, err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("NewSMTP(%q): error carries the password: %v", rawURL, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("NewSMTP(%q): %v", rawURL, err)
		}
		if s.addr != wantAddr {
			t.Fatalf("NewSMTP(%q): addr %q, want %q", rawURL, s.addr, wantAddr)
		}
		if strings.Contains(s.String(), "hunter2") {
			t.Fatalf("String() carries the password: %s", s)
		}
	}
	from := SMTPOptions{From: "noreply@fleet.example"}
	f("smtp://u:hunter2@mail.example.com:587?from=noreply%40fleet.example", SMTPOptions{}, false, "mail.example.com:587")
	f("smtp://u:hunter2@mail.example.com", from, false, "mail.example.com:587")
	f("smtps://u:hunter2@mail.example.com", from, false, "mail.example.com:465")
	f("smtp://[::1]:2525?tls=none", from, false, "[::1]:2525")
	f("smtp://localhost:25?tls=none", from, false, "localhost:25")
	f("smtp://127.0.0.2:25?tls=none", from, false, "127.0.0.2:25")
	f("smtp://mail.example.com", from, false, "mail.example.com:587") // no credentials: no AUTH

	f("smtp://u:hunter2@mail.example.com:25?tls=none", from, true, "") // plaintext off loopback
	f("smtps://u:hunter2@127.0.0.1?tls=none", from, true, "")
	f("smtp://u:hunter2@mail.example.com?tls=insecure", from, true, "")
	f("smtp://u:hunter2@mail.example.com?form=x", from, true, "")   // typo
	f("smtp://u:hunter2@mail.example.com", SMTPOptions{}, true, "") // no sender
	f("smtp://u:hunter2@mail.example.com?from=not-an-address", SMTPOptions{}, true, "")
	f("smtp://u:hunter2@mail.example.com", SMTPOptions{From: "a@b.example\r\nBcc: x@y"}, true, "")
	f("http://u:hunter2@mail.example.com", from, true, "")
	f("smtp://u:hunter2@:587", from, true, "")
	f("smtp://u:hunter2@mail.example.com/path", from, true, "")
	f("smtp://:hunter2@mail.example.com", from, true, "")
	f("smtp://u:hunter2@mail.example.com:bad%zz", from, true, "")
}
