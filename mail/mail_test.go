package mail

import (
	"bytes"
	"context"
	"errors"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetscope/fleetscope/internal/smtptest"
)

func TestValidate(t *testing.T) {
	f := func(m Message, want error) {
		t.Helper()
		err := m.Validate()
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Fatalf("Validate(%q, %q): %v, want %v", m.To, m.Subject, err, want)
		}
	}
	ok := Message{To: "ana@example.com", Subject: "Hello", Text: "Hi"}
	f(ok, nil)
	f(Message{To: "jürgen@müller.example", Subject: "Grüße ☀", Text: "ü"}, nil)
	f(Message{To: "ana@example.com", Subject: "Tab\there", Text: ""}, nil)
	f(Message{To: "ana@example.com", Subject: "a\rb"}, ErrHeaderInjection)
	f(Message{To: "ana@example.com", Subject: "a\nb"}, ErrHeaderInjection)
	f(Message{To: "ana@example.com\nBcc: eve@example.com", Subject: "a"}, ErrHeaderInjection)
	f(Message{To: "Ana <ana@example.com>", Subject: "a"}, ErrInvalid)
	f(Message{To: "ana@example.com, eve@example.com", Subject: "a"}, ErrInvalid)
	f(Message{To: " ana@example.com", Subject: "a"}, ErrInvalid)
	f(Message{To: "ana", Subject: "a"}, ErrInvalid)
	f(Message{To: "", Subject: "a"}, ErrInvalid)
	f(Message{To: "ana@example.com", Subject: ""}, ErrInvalid)
	f(Message{To: "ana@example.com", Subject: "nul\x00"}, ErrInvalid)
	f(Message{To: "ana@example.com", Subject: "a", Text: "\xff"}, ErrInvalid)
	f(Message{To: "ana@example.com", Subject: strings.Repeat("ü", maxSubject+1)}, ErrInvalid)
}

// TestComposeSubject: a subject reaches a reader as it was, ASCII ones
// unencoded, others RFC 2047-encoded into 7-bit header lines.
func TestComposeSubject(t *testing.T) {
	from := &mail.Address{Name: "Flöt Scope", Address: "noreply@fleet.example"}
	f := func(subject string, wantEncoded bool) {
		t.Helper()
		var buf bytes.Buffer
		compose(&buf, from, Message{To: "ana@example.com", Subject: subject, Text: "x"}, time.Now())
		for _, c := range buf.Bytes() {
			if c >= 0x80 {
				t.Fatalf("%q: message is not 7-bit:\n%s", subject, buf.Bytes())
			}
		}
		for _, line := range strings.Split(buf.String(), "\r\n") {
			if len(line) > 78+len("Subject: ") {
				t.Fatalf("%q: header line of %d characters: %q", subject, len(line), line)
			}
		}
		p := smtptest.Parse(t, buf.Bytes())
		if p.Subject != subject {
			t.Fatalf("subject %q, want %q", p.Subject, subject)
		}
		if raw := p.Header.Get("Subject"); strings.Contains(raw, "=?") != wantEncoded {
			t.Fatalf("%q: raw %q, encoded = %v", subject, raw, !wantEncoded)
		}
		if a, err := p.Header.AddressList("From"); err != nil || *a[0] != *from {
			t.Fatalf("From %v (%v)", a, err)
		}
	}
	f("Verify your fleetscope e-mail address", false)
	f("Ana Müller invited you to Müller Residence on fleetscope", true)
	f("日本語の件名", true)
	f(strings.Repeat("Sonnenstrom für alle ", 9), true) // longer than one encoded word
	f(strings.Repeat("日", maxSubject), true)
}

type fakeMailer struct {
	mu   sync.Mutex
	got  []Message
	fail error
}

func (f *fakeMailer) Send(_ context.Context, m Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, m)
	return f.fail
}

func TestTee(t *testing.T) {
	errDeliver, errRecord := errors.New("deliver failed"), errors.New("record failed")
	f := func(deliverErr, recordErr error) {
		t.Helper()
		d, r := &fakeMailer{fail: deliverErr}, &fakeMailer{fail: recordErr}
		m := Message{To: "ana@example.com", Subject: "s", Text: "t"}
		err := Tee(d, r).Send(context.Background(), m)
		if len(d.got) != 1 || len(r.got) != 1 || d.got[0] != m || r.got[0] != m {
			t.Fatalf("deliver got %v, record got %v; want the message once each", d.got, r.got)
		}
		for _, want := range []error{deliverErr, recordErr} {
			if want != nil && !errors.Is(err, want) {
				t.Fatalf("Send: %v, want it to carry %v", err, want)
			}
		}
		if deliverErr == nil && recordErr == nil && err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	f(nil, nil)
	f(errDeliver, nil)
	f(nil, errRecord)
	f(errDeliver, errRecord)
}

func TestLimit(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	next := &fakeMailer{}
	met := NewMetrics(nil)
	l := Limit(next, LimitOptions{Max: 2, Window: time.Hour, MaxAddresses: 3, Metrics: met, Now: func() time.Time { return now }})
	f := func(to string, wantRetry time.Duration) {
		t.Helper()
		err := l.Send(context.Background(), Message{To: to, Subject: "s"})
		if wantRetry == 0 {
			if err != nil {
				t.Fatalf("Send(%s) at %v: %v", to, now, err)
			}
			return
		}
		var rl *RateLimitError
		if !errors.Is(err, ErrRateLimited) || !errors.As(err, &rl) || rl.RetryAfter != wantRetry {
			t.Fatalf("Send(%s) at %v: %v, want rate limited for %v", to, now, err, wantRetry)
		}
	}
	f("ana@example.com", 0)
	f("ANA@example.com", 0) // the same address
	f("ana@example.com", time.Hour)
	f("bob@example.com", 0)
	now = now.Add(40 * time.Minute)
	f("ana@example.com", 20*time.Minute)
	f("bob@example.com", 0)
	f("bob@example.com", time.Hour-40*time.Minute)
	f("cat@example.com", 0)
	// Three addresses tracked, none expired: a fourth waits for the oldest.
	f("dan@example.com", 20*time.Minute)
	now = now.Add(20 * time.Minute)
	f("ana@example.com", 0) // a new window
	f("dan@example.com", 0) // bob's window ended and was swept
	// bob was forgotten and is a new address again, in a full map until
	// cat's window ends.
	f("bob@example.com", 40*time.Minute)
	if len(next.got) != 7 {
		t.Fatalf("passed on %d messages, want 7", len(next.got))
	}
	if n := counterValue(t, met.limited); n != 5 {
		t.Fatalf("rate_limited_total %v, want 5", n)
	}
}
