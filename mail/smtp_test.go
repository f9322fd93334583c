package mail

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// testServer is a real SMTP server (go-smtp) on 127.0.0.1 that records what
// it receives.
type testServer struct {
	addr  string
	roots *x509.CertPool // trusts the server's self-signed certificate

	mu    sync.Mutex
	auths []testAuth // every AUTH PLAIN attempt, accepted or not
	mails []testMail
}

type testAuth struct{ user, pass string }

type testMail struct {
	from string
	to   []string
	data []byte
	tls  bool // the connection was TLS when DATA arrived
	user string
}

type serverMode int

const (
	modeSTARTTLS serverMode = iota // STARTTLS offered, AUTH only after it
	modePlain                      // no TLS at all, AUTH offered in the clear
	modeImplicit                   // TLS from the first byte (smtps)
)

const (
	testUser = "mailer@fleet.example"
	testPass = "s3cret pass:word@"
)

func startServer(t *testing.T, mode serverMode) *testServer {
	t.Helper()
	return startServerWith(t, mode, nil)
}

// startServerWith lets configure change the server before it starts.
func startServerWith(t *testing.T, mode serverMode, configure func(*smtp.Server)) *testServer {
	t.Helper()
	cert, roots := selfSigned(t)
	ts := &testServer{roots: roots}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &testSession{ts: ts, c: c}, nil
	}))
	srv.Domain = "localhost"
	// The server's complaints about clients that hang up (as ours does
	// after refusing a server) are noise here; a t.Logf could also outlive
	// the test.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}}
	var l net.Listener
	var err error
	switch mode {
	case modeSTARTTLS:
		srv.TLSConfig = tlsConf
		l, err = net.Listen("tcp", "127.0.0.1:0")
	case modePlain:
		// AUTH in the clear is allowed so that a client that does not
		// insist on TLS would send its password: the tests check that ours
		// does not.
		srv.AllowInsecureAuth = true
		l, err = net.Listen("tcp", "127.0.0.1:0")
	case modeImplicit:
		srv.TLSConfig = tlsConf
		l, err = tls.Listen("tcp", "127.0.0.1:0", tlsConf)
	}
	if err != nil {
		t.Fatal(err)
	}
	if configure != nil {
		configure(srv)
	}
	ts.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return ts
}

func (ts *testServer) received() ([]testAuth, []testMail) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]testAuth(nil), ts.auths...), append([]testMail(nil), ts.mails...)
}

type testSession struct {
	ts   *testServer
	c    *smtp.Conn
	user string
	m    testMail
}

func (s *testSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *testSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		s.ts.mu.Lock()
		s.ts.auths = append(s.ts.auths, testAuth{user, pass})
		s.ts.mu.Unlock()
		if user != testUser || pass != testPass {
			return errors.New("invalid credentials")
		}
		s.user = user
		return nil
	}), nil
}

func (s *testSession) Mail(from string, _ *smtp.MailOptions) error {
	s.m = testMail{from: from, user: s.user}
	return nil
}

func (s *testSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.to = append(s.m.to, to)
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.data = b
	_, s.m.tls = s.c.TLSConnectionState()
	s.ts.mu.Lock()
	s.ts.mails = append(s.ts.mails, s.m)
	s.ts.mu.Unlock()
	return nil
}

func (s *testSession) Reset()        { s.m = testMail{} }
func (s *testSession) Logout() error { return nil }

// selfSigned returns a certificate for 127.0.0.1 and localhost and a pool
// that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fleetscope test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// smtpURL is scheme://user:pass@addr?from=...&extra.
func smtpURL(scheme, addr, extra string) string {
	u := scheme + "://" + url.UserPassword(testUser, testPass).String() + "@" + addr +
		"?from=" + url.QueryEscape("fleetscope <noreply@fleet.example>")
	if extra != "" {
		u += "&" + extra
	}
	return u
}

// parsed is a received mail decoded as a mail client would.
type parsed struct {
	header  mail.Header
	subject string
	text    string
}

func parseReceived(t *testing.T, data []byte) parsed {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("received mail does not parse: %v\n%s", err, data)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("subject does not decode: %v", err)
	}
	if cte := msg.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		t.Fatalf("Content-Transfer-Encoding %q", cte)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatalf("body does not decode: %v", err)
	}
	return parsed{header: msg.Header, subject: subject, text: strings.ReplaceAll(string(body), "\r\n", "\n")}
}

func TestSMTPSendSTARTTLS(t *testing.T) {
	ts := startServer(t, modeSTARTTLS)
	met := NewMetrics(prometheus.NewRegistry())
	s, err := NewSMTP(smtpURL("smtp", ts.addr, ""), SMTPOptions{TLSConfig: &tls.Config{RootCAs: ts.roots}, Metrics: met})
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
	auths, mails := ts.received()
	if len(auths) != 1 || auths[0] != (testAuth{testUser, testPass}) {
		t.Fatalf("auths %+v, want one with the URL's credentials", auths)
	}
	if len(mails) != 1 {
		t.Fatalf("server received %d mails, want 1", len(mails))
	}
	got := mails[0]
	if got.from != "noreply@fleet.example" || len(got.to) != 1 || got.to[0] != m.To {
		t.Fatalf("envelope from %q to %q", got.from, got.to)
	}
	if !got.tls || got.user != testUser {
		t.Fatalf("mail over tls=%v as %q, want TLS and authenticated", got.tls, got.user)
	}
	for i, line := range bytes.Split(got.data, []byte("\r\n")) {
		if len(line) > 78 {
			t.Fatalf("line %d is %d bytes: %q", i, len(line), line)
		}
		for _, c := range line {
			if c >= 0x80 || c == '\n' || c == '\r' {
				t.Fatalf("line %d is not 7-bit ASCII without bare CR/LF: %q", i, line)
			}
		}
	}
	p := parseReceived(t, got.data)
	if p.subject != m.Subject {
		t.Fatalf("subject %q, want %q", p.subject, m.Subject)
	}
	if raw := p.header.Get("Subject"); !strings.Contains(raw, "=?utf-8?") {
		t.Fatalf("non-ASCII subject not RFC 2047-encoded: %q", raw)
	}
	if p.text != m.Text {
		t.Fatalf("text\n%q\nwant\n%q", p.text, m.Text)
	}
	from, err := p.header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "noreply@fleet.example" || from[0].Name != "fleetscope" {
		t.Fatalf("From %v (%v)", from, err)
	}
	to, err := p.header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != m.To {
		t.Fatalf("To %v (%v)", to, err)
	}
	if d, err := p.header.Date(); err != nil || time.Since(d) > time.Minute {
		t.Fatalf("Date %v (%v)", d, err)
	}
	if id := p.header.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@fleet.example>") {
		t.Fatalf("Message-ID %q", id)
	}
	for k, want := range map[string]string{"MIME-Version": "1.0", "Content-Type": "text/plain; charset=utf-8", "Auto-Submitted": "auto-generated"} {
		if v := p.header.Get(k); v != want {
			t.Fatalf("%s %q, want %q", k, v, want)
		}
	}
	if n := counterValue(t, met.sent.WithLabelValues("smtp")); n != 1 {
		t.Fatalf("sent_total{smtp} %v, want 1", n)
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	ts := startServer(t, modeImplicit)
	s, err := NewSMTP(smtpURL("smtps", ts.addr, ""), SMTPOptions{TLSConfig: &tls.Config{RootCAs: ts.roots}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), Message{To: "ana@example.com", Subject: "Hello", Text: "Hi\n"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	auths, mails := ts.received()
	if len(auths) != 1 || len(mails) != 1 || !mails[0].tls || parseReceived(t, mails[0].data).text != "Hi\n" {
		t.Fatalf("auths %+v mails %+v", auths, mails)
	}
}

// TestSMTPUTF8Address: a non-ASCII address goes only to a server that
// offers SMTPUTF8.
func TestSMTPUTF8Address(t *testing.T) {
	f := func(serverUTF8 bool) {
		t.Helper()
		ts := startServerWith(t, modeSTARTTLS, func(s *smtp.Server) { s.EnableSMTPUTF8 = serverUTF8 })
		s, err := NewSMTP(smtpURL("smtp", ts.addr, ""), SMTPOptions{TLSConfig: &tls.Config{RootCAs: ts.roots}})
		if err != nil {
			t.Fatal(err)
		}
		m := Message{To: "jürgen@example.com", Subject: "Hallo Jürgen", Text: "Grüße\n"}
		err = s.Send(context.Background(), m)
		_, mails := ts.received()
		if !serverUTF8 {
			if err == nil || len(mails) != 0 {
				t.Fatalf("without SMTPUTF8: Send %v, %d mails; want an error and none", err, len(mails))
			}
			return
		}
		if err != nil || len(mails) != 1 {
			t.Fatalf("with SMTPUTF8: Send %v, %d mails", err, len(mails))
		}
		p := parseReceived(t, mails[0].data)
		if to, err := p.header.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != m.To || mails[0].to[0] != m.To {
			t.Fatalf("To %v (%v), envelope %v", to, err, mails[0].to)
		}
		if p.subject != m.Subject || p.text != m.Text {
			t.Fatalf("subject %q text %q", p.subject, p.text)
		}
	}
	f(false)
	f(true)
}

// TestSMTPRequiresSTARTTLS: a server that offers no STARTTLS gets neither
// the password nor the message, although it would accept AUTH in the clear.
func TestSMTPRequiresSTARTTLS(t *testing.T) {
	ts := startServer(t, modePlain)
	met := NewMetrics(nil)
	s, err := NewSMTP(smtpURL("smtp", ts.addr, ""), SMTPOptions{TLSConfig: &tls.Config{RootCAs: ts.roots}, Metrics: met})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), Message{To: "ana@example.com", Subject: "Code", Text: "ABCD234XYZ\n"})
	if !errors.Is(err, ErrNoSTARTTLS) {
		t.Fatalf("Send: %v, want ErrNoSTARTTLS", err)
	}
	if strings.Contains(err.Error(), testPass) {
		t.Fatalf("error carries the password: %v", err)
	}
	if auths, mails := ts.received(); len(auths) != 0 || len(mails) != 0 {
		t.Fatalf("server got auths %+v and mails %d, want none", auths, len(mails))
	}
	if n := counterValue(t, met.failures.WithLabelValues("smtp")); n != 1 {
		t.Fatalf("failures_total{smtp} %v, want 1", n)
	}
}

// TestSMTPPlainLoopback: ?tls=none talks to a loopback relay in the clear.
func TestSMTPPlainLoopback(t *testing.T) {
	ts := startServer(t, modePlain)
	s, err := NewSMTP(smtpURL("smtp", ts.addr, "tls=none"), SMTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), Message{To: "ana@example.com", Subject: "Hello", Text: "Hi\n"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if auths, mails := ts.received(); len(auths) != 1 || len(mails) != 1 || mails[0].tls {
		t.Fatalf("auths %+v mails %+v", auths, mails)
	}
}

func TestSMTPFailures(t *testing.T) {
	ts := startServer(t, modeSTARTTLS)
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
		if strings.Contains(err.Error(), testPass) {
			t.Fatalf("%s: error carries the password: %v", name, err)
		}
		if _, mails := ts.received(); len(mails) != 0 {
			t.Fatalf("%s: server received a mail", name)
		}
	}
	// The self-signed certificate is not in the system roots.
	f("untrusted certificate", smtpURL("smtp", ts.addr, ""), nil)
	wrong := "smtp://" + url.UserPassword(testUser, "wrong").String() + "@" + ts.addr + "?from=noreply%40fleet.example"
	f("wrong password", wrong, &tls.Config{RootCAs: ts.roots})
	// Nothing listens on port 1.
	f("refused", smtpURL("smtp", "127.0.0.1:1", ""), &tls.Config{RootCAs: ts.roots})
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
	ts := startServer(t, modeSTARTTLS)
	s, err := NewSMTP(smtpURL("smtp", ts.addr, ""), SMTPOptions{TLSConfig: &tls.Config{RootCAs: ts.roots}})
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
	if auths, mails := ts.received(); len(auths)+len(mails) != 0 {
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
