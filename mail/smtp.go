package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strings"
	"time"
)

// SMTPOptions configure an SMTP mailer. The zero value is valid when the
// URL carries ?from=.
type SMTPOptions struct {
	// From is the sender, an address with an optional display name
	// ("fleetscope <noreply@example.com>"). It overrides the URL's ?from=;
	// one of the two is required.
	From string
	// TLSConfig is the base of the TLS configuration for STARTTLS and
	// smtps:// (RootCAs for a private CA, or a test's self-signed
	// certificate). ServerName defaults to the URL's host and MinVersion
	// to TLS 1.2. Default: the system roots.
	TLSConfig *tls.Config
	// Timeout bounds one submission, connection to QUIT, when the context
	// has no earlier deadline. Default 30 s: submission takes well under a
	// second, and a stuck server must not hold a request's goroutine.
	Timeout time.Duration
	// LocalName is the name sent with EHLO. Default "localhost", as
	// net/smtp does; submission servers authenticate the client instead.
	LocalName string
	// Logger gets a line per mail at Info (recipient, subject, kind —
	// never the body) and a Warn per failure. Default: discard.
	Logger *slog.Logger
	// Metrics count the mails under mailer="smtp". Default: unregistered.
	Metrics *Metrics
}

// SMTP submits mail to a mail server, one connection per message: fleetscope
// sends a few mails an hour, and a fresh connection has no idle state to
// lose.
//
// It is built on the standard library's net/smtp, which does what this
// needs — STARTTLS, AUTH PLAIN, dot-stuffing — and whose PlainAuth itself
// refuses to send a password over an unencrypted connection to a host other
// than localhost, a second guard behind the policy of NewSMTP; a third-party
// client would add a dependency to the binary for no feature used.
type SMTP struct {
	host, addr string
	implicit   bool // smtps://: TLS from the first byte
	plain      bool // ?tls=none: no TLS at all (loopback only)
	user, pass string
	from       *mail.Address
	tls        *tls.Config
	redacted   string
	opts       SMTPOptions
}

// NewSMTP returns a mailer submitting through the server that rawURL names:
//
//	smtp://user:pass@host:587?from=noreply%40example.com
//	smtps://user:pass@host:465?from=...
//	smtp://127.0.0.1:2525?tls=none&from=...
//
// smtp:// (default port 587) requires STARTTLS: a server that does not
// offer it gets nothing — neither the credentials nor the message, whose
// body may be a one-time code — and Send fails with ErrNoSTARTTLS.
// smtps:// (default port 465) speaks TLS from the first byte. ?tls=none
// sends in the clear and is accepted only for a loopback host (localhost,
// 127.0.0.0/8, ::1): a local relay, or a test server; credentials in the
// clear go only to localhost, 127.0.0.1 and ::1, the names net/smtp's
// PlainAuth accepts. The certificate is always verified, against
// SMTPOptions.TLSConfig's RootCAs if set.
//
// User and password (percent-encoded in the URL) authenticate with AUTH
// PLAIN; without them no AUTH is attempted. When they are given and the
// server offers no AUTH, Send fails rather than submitting anonymously.
// Unknown query parameters are refused, so that a typo does not silently
// weaken the policy. Errors never include the password.
func NewSMTP(rawURL string, opts SMTPOptions) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the URL, password included.
		return nil, fmt.Errorf("%w: the smtp URL does not parse", ErrConfig)
	}
	s := &SMTP{redacted: u.Redacted()}
	port := ""
	switch u.Scheme {
	case "smtp":
		port = "587"
	case "smtps":
		port, s.implicit = "465", true
	default:
		return nil, fmt.Errorf("%w: scheme %q is not smtp or smtps", ErrConfig, u.Scheme)
	}
	s.host = u.Hostname()
	if s.host == "" {
		return nil, fmt.Errorf("%w: no host in %s", ErrConfig, s.redacted)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("%w: unexpected path in %s", ErrConfig, s.redacted)
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
		if s.user == "" {
			return nil, fmt.Errorf("%w: empty user name in %s", ErrConfig, s.redacted)
		}
	}
	q := u.Query()
	for k := range q {
		if k != "from" && k != "tls" {
			return nil, fmt.Errorf("%w: unknown parameter %q in %s (from, tls)", ErrConfig, k, s.redacted)
		}
	}
	switch mode := q.Get("tls"); mode {
	case "":
	case "none":
		if s.implicit {
			return nil, fmt.Errorf("%w: smtps:// with tls=none", ErrConfig)
		}
		if !isLoopback(s.host) {
			return nil, fmt.Errorf("%w: tls=none is for a loopback host only, not %q", ErrConfig, s.host)
		}
		s.plain = true
	default:
		return nil, fmt.Errorf("%w: tls=%q (the only value is none, for loopback)", ErrConfig, mode)
	}
	from := opts.From
	if from == "" {
		from = q.Get("from")
	}
	if from == "" {
		return nil, fmt.Errorf("%w: no sender: set ?from= or SMTPOptions.From", ErrConfig)
	}
	if strings.ContainsAny(from, "\r\n") {
		return nil, fmt.Errorf("%w: CR or LF in the sender", ErrConfig)
	}
	if s.from, err = mail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("%w: sender %q: %w", ErrConfig, from, err)
	}
	if opts.TLSConfig != nil {
		s.tls = opts.TLSConfig.Clone()
	} else {
		s.tls = &tls.Config{}
	}
	if s.tls.ServerName == "" {
		s.tls.ServerName = s.host
	}
	s.tls.MinVersion = max(s.tls.MinVersion, tls.VersionTLS12)
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.LocalName == "" {
		opts.LocalName = "localhost"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	s.opts = opts
	return s, nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// String returns the URL with the password redacted.
func (s *SMTP) String() string { return s.redacted }

// Send implements Mailer.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	start := time.Now()
	err := s.send(ctx, m)
	s.opts.Metrics.observe("smtp", start, err)
	if err != nil {
		s.opts.Logger.Warn("mail: smtp submission failed", "server", s.addr, "to", m.To, "kind", m.Kind, "err", err)
		return err
	}
	s.opts.Logger.Info("mail: submitted", "server", s.addr, "to", m.To, "subject", m.Subject, "kind", m.Kind)
	return nil
}

func (s *SMTP) send(ctx context.Context, m Message) (err error) {
	if err := m.Validate(); err != nil {
		return err
	}
	var msg bytes.Buffer
	compose(&msg, s.from, m, time.Now())

	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	defer func() {
		// A deadline or cancellation surfaces from the connection as an
		// i/o timeout; say what happened. The connection's deadline is the
		// context's, so the i/o error can come a moment before the context
		// reports it.
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("mail: smtp %s: %w (%w)", s.addr, context.Cause(ctx), err)
		} else if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			err = fmt.Errorf("mail: smtp %s: %w (%w)", s.addr, context.DeadlineExceeded, err)
		}
	}()
	var conn net.Conn
	if s.implicit {
		conn, err = (&tls.Dialer{Config: s.tls}).DialContext(ctx, "tcp", s.addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return fmt.Errorf("mail: smtp dial: %w", err)
	}
	defer conn.Close()
	// The deadline bounds every read and write of the exchange; a
	// cancellation moves it to the past, which unblocks them at once.
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return fmt.Errorf("mail: smtp greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello(s.opts.LocalName); err != nil {
		return fmt.Errorf("mail: smtp: %w", err)
	}
	if !s.implicit && !s.plain {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("%w (%s)", ErrNoSTARTTLS, s.addr)
		}
		if err := c.StartTLS(s.tls); err != nil {
			return fmt.Errorf("mail: smtp starttls: %w", err)
		}
	}
	if s.user != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("mail: smtp %s offers no AUTH and the URL has credentials", s.addr)
		}
		if err := c.Auth(smtp.PlainAuth("", s.user, s.pass, s.host)); err != nil {
			return fmt.Errorf("mail: smtp auth: %w", err)
		}
	}
	// A non-ASCII address needs SMTPUTF8 (RFC 6531) in the envelope and
	// RFC 6532 headers; without it a server would mangle or bounce the
	// mail, so it is refused here with the reason.
	if !isASCII(m.To) || !isASCII(s.from.Address) {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			return fmt.Errorf("mail: smtp %s does not offer SMTPUTF8, which the address %q needs", s.addr, m.To)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("mail: smtp MAIL FROM: %w", err)
	}
	if err := c.Rcpt(m.To); err != nil {
		return fmt.Errorf("mail: smtp RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("mail: smtp DATA: %w", err)
	}
	if _, err := w.Write(msg.Bytes()); err != nil {
		return fmt.Errorf("mail: smtp DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mail: smtp DATA: %w", err)
	}
	// The server has accepted the message; a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
