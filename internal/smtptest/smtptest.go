// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp) on
// 127.0.0.1 for tests, with STARTTLS on a self-signed certificate and AUTH
// PLAIN, and records what it receives — so that mail is tested through a
// real SMTP exchange, not a mock of one.
package smtptest

import (
	"bytes"
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
)

// The credentials the server accepts.
const (
	User = "mailer@fleet.example"
	Pass = "s3cret pass:word@"
)

// Mode is how the server speaks TLS.
type Mode int

const (
	STARTTLS Mode = iota // STARTTLS offered, AUTH only after it
	Plain                // no TLS at all, AUTH offered in the clear
	Implicit             // TLS from the first byte (smtps)
)

// Server is a running SMTP server.
type Server struct {
	Addr  string
	Roots *x509.CertPool // trusts the server's self-signed certificate

	mu    sync.Mutex
	auths []Auth // every AUTH PLAIN attempt, accepted or not
	mails []Mail
}

// Auth is one AUTH PLAIN attempt.
type Auth struct{ User, Pass string }

// Mail is one message received.
type Mail struct {
	From string
	To   []string
	Data []byte
	TLS  bool // the connection was TLS when DATA arrived
	User string
}

// Start runs a server until the test ends.
func Start(t testing.TB, mode Mode) *Server { return StartWith(t, mode, nil) }

// StartWith lets configure change the server before it starts.
func StartWith(t testing.TB, mode Mode, configure func(*smtp.Server)) *Server {
	t.Helper()
	cert, roots := SelfSigned(t)
	ts := &Server{Roots: roots}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{ts: ts, c: c}, nil
	}))
	srv.Domain = "localhost"
	// The server's complaints about clients that hang up are noise here; a
	// t.Logf could also outlive the test.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}}
	var l net.Listener
	var err error
	switch mode {
	case STARTTLS:
		srv.TLSConfig = tlsConf
		l, err = net.Listen("tcp", "127.0.0.1:0")
	case Plain:
		// AUTH in the clear is allowed so that a client that does not
		// insist on TLS would send its password: tests check that ours
		// does not.
		srv.AllowInsecureAuth = true
		l, err = net.Listen("tcp", "127.0.0.1:0")
	case Implicit:
		srv.TLSConfig = tlsConf
		l, err = tls.Listen("tcp", "127.0.0.1:0", tlsConf)
	}
	if err != nil {
		t.Fatal(err)
	}
	if configure != nil {
		configure(srv)
	}
	ts.Addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return ts
}

// Received returns what the server got so far.
func (ts *Server) Received() ([]Auth, []Mail) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]Auth(nil), ts.auths...), append([]Mail(nil), ts.mails...)
}

// URL is scheme://User:Pass@Addr?from=…&extra, for mail.NewSMTP.
func (ts *Server) URL(scheme, extra string) string {
	u := scheme + "://" + url.UserPassword(User, Pass).String() + "@" + ts.Addr +
		"?from=" + url.QueryEscape("fleetscope <noreply@fleet.example>")
	if extra != "" {
		u += "&" + extra
	}
	return u
}

type session struct {
	ts   *Server
	c    *smtp.Conn
	user string
	m    Mail
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		s.ts.mu.Lock()
		s.ts.auths = append(s.ts.auths, Auth{user, pass})
		s.ts.mu.Unlock()
		if user != User || pass != Pass {
			return errors.New("invalid credentials")
		}
		s.user = user
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.m = Mail{From: from, User: s.user}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.To = append(s.m.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.Data = b
	_, s.m.TLS = s.c.TLSConnectionState()
	s.ts.mu.Lock()
	s.ts.mails = append(s.ts.mails, s.m)
	s.ts.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.m = Mail{} }
func (s *session) Logout() error { return nil }

// SelfSigned returns a certificate for 127.0.0.1 and localhost and a pool
// that trusts it.
func SelfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
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

// Parsed is a received mail decoded as a mail client would.
type Parsed struct {
	Header  mail.Header
	Subject string
	Text    string
}

// Parse decodes a received mail (quoted-printable text, RFC 2047 subject).
func Parse(t testing.TB, data []byte) Parsed {
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
	return Parsed{Header: msg.Header, Subject: subject, Text: strings.ReplaceAll(string(body), "\r\n", "\n")}
}
