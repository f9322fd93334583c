package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// Message is one mail to one recipient. Its fields are plain text.
type Message struct {
	// To is the recipient's address as a bare addr-spec (ana@example.com),
	// the form fleetscope stores e-mails in; a display name is refused, so
	// that the outbox is searched by the address alone.
	To string
	// Subject is one line of UTF-8; it is RFC 2047-encoded when it is not
	// ASCII. It is logged at Info, so it never carries a secret.
	Subject string
	// Text is the body, UTF-8 with \n or \r\n line ends. It may carry a
	// secret (a one-time code) and is never logged above Debug.
	Text string
	// Kind names what the mail is (see the Kind constants) for logs; it is
	// not sent.
	Kind string
}

// Kinds of mail the templates build.
const (
	KindVerification     = "verification"
	KindPasswordReset    = "password_reset"
	KindSystemInvitation = "system_invitation"
	KindOrgInvitation    = "org_invitation"
	KindWelcome          = "welcome"
)

// Mailer sends a message. Send returns once the message is handed over —
// to the mail server, or to the outbox table — or with the reason it was
// not; an implementation is safe for concurrent use.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// Errors of Send and NewSMTP. Callers branch with errors.Is: ErrInvalid is
// the caller's mistake and is not worth retrying, the others are the mail
// server's or the configuration's.
var (
	// ErrInvalid is a message that cannot be sent as it is: a recipient
	// that is not one bare address, an empty subject, text that is not
	// UTF-8.
	ErrInvalid = errors.New("mail: invalid message")
	// ErrHeaderInjection is a CR or LF in To or Subject, which would end
	// the header and let the value add headers or a body of its own.
	ErrHeaderInjection = fmt.Errorf("%w: CR or LF in a header value", ErrInvalid)
	// ErrNoSTARTTLS is a server that does not offer STARTTLS on an smtp://
	// URL that requires it: nothing, the credentials included, is sent in
	// the clear.
	ErrNoSTARTTLS = errors.New("mail: smtp server does not offer STARTTLS")
	// ErrConfig is an SMTP URL or option that NewSMTP refuses.
	ErrConfig = errors.New("mail: bad smtp configuration")
)

// maxSubject bounds a subject: an ASCII one is not folded, and its header
// line stays far within RFC 5322's 998 characters.
const maxSubject = 200

// Validate reports whether m can be sent: To is one bare address, Subject
// one line without control characters, Text UTF-8.
func (m Message) Validate() error {
	if strings.ContainsAny(m.To, "\r\n") || strings.ContainsAny(m.Subject, "\r\n") {
		return ErrHeaderInjection
	}
	a, err := mail.ParseAddress(m.To)
	if err != nil || a.Name != "" || a.Address != m.To {
		return fmt.Errorf("%w: recipient %q is not one bare address", ErrInvalid, m.To)
	}
	if m.Subject == "" {
		return fmt.Errorf("%w: empty subject", ErrInvalid)
	}
	if !utf8.ValidString(m.Subject) || !utf8.ValidString(m.Text) {
		return fmt.Errorf("%w: not UTF-8", ErrInvalid)
	}
	if utf8.RuneCountInString(m.Subject) > maxSubject {
		return fmt.Errorf("%w: subject longer than %d characters", ErrInvalid, maxSubject)
	}
	for _, r := range m.Subject {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return fmt.Errorf("%w: control character in the subject", ErrInvalid)
		}
	}
	return nil
}

// compose writes m as an RFC 5322 message from from: a text/plain UTF-8
// body in quoted-printable, which keeps ASCII text readable in the raw mail
// and any line within SMTP's length limit. m must be valid.
func compose(buf *bytes.Buffer, from *mail.Address, m Message, date time.Time) {
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	header := func(k, v string) {
		buf.WriteString(k)
		buf.WriteString(": ")
		buf.WriteString(v)
		buf.WriteString("\r\n")
	}
	header("From", from.String())
	header("To", (&mail.Address{Address: m.To}).String())
	// The encoder splits a long subject into encoded-words of at most 75
	// characters separated by spaces; folding at those spaces keeps every
	// line within RFC 5322's limits (readers ignore the folds between
	// encoded-words).
	header("Subject", strings.ReplaceAll(mime.QEncoding.Encode("utf-8", m.Subject), "?= =?", "?=\r\n =?"))
	header("Date", date.Format(time.RFC1123Z))
	header("Message-ID", "<"+messageID()+"@"+domain+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	// RFC 3834: an automatic mail, so that out-of-office responders do not
	// answer it.
	header("Auto-Submitted", "auto-generated")
	buf.WriteString("\r\n")
	w := quotedprintable.NewWriter(buf)
	w.Write([]byte(m.Text))
	w.Close()
	if !bytes.HasSuffix(buf.Bytes(), []byte("\r\n")) {
		buf.WriteString("\r\n")
	}
}

func messageID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Tee returns a Mailer that records every message with record (the outbox,
// for support) and then delivers it with deliver (SMTP). It records first so
// that a delivery that uses up the context's deadline still leaves support
// its copy; a recording failure does not stop the delivery. Send returns
// both errors joined: a delivery failure is the caller's to know even though
// the copy was made.
func Tee(deliver, record Mailer) Mailer { return tee{deliver: deliver, record: record} }

type tee struct{ deliver, record Mailer }

func (t tee) Send(ctx context.Context, m Message) error {
	rerr := t.record.Send(ctx, m)
	derr := t.deliver.Send(ctx, m)
	return errors.Join(derr, rerr)
}
