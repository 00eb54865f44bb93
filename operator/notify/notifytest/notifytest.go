// Package notifytest runs a real SMTP server (github.com/emersion/go-smtp) for the tests of the
// notices: it offers STARTTLS with a certificate of its own for 127.0.0.1 when asked to, and
// keeps every message it receives.
package notifytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one message the server received for one recipient.
type Message struct {
	From, To string
	TLS      bool // received after STARTTLS
	Data     []byte
}

// Mailbox is a running SMTP server.
type Mailbox struct {
	Addr   string // host:port
	CAFile string // a PEM file of its certificate, when it offers STARTTLS

	mu   sync.Mutex
	msgs []Message
}

// Messages returns what the server received so far.
func (b *Mailbox) Messages() []Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Message(nil), b.msgs...)
}

type session struct {
	box  *Mailbox
	conn *smtp.Conn
	from string
	to   []string
}

func (s *session) Reset()                                      {}
func (s *session) Logout() error                               { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error   { s.to = append(s.to, to); return nil }
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.box.mu.Lock()
	for _, to := range s.to {
		s.box.msgs = append(s.box.msgs, Message{From: s.from, To: to, TLS: isTLS, Data: b})
	}
	s.box.mu.Unlock()
	return nil
}

// Serve starts the server on l (nil: a new listener on 127.0.0.1), offering STARTTLS with cert
// when it is not nil, and stops it when the test ends.
func Serve(t testing.TB, l net.Listener, cert *Certificate) *Mailbox {
	t.Helper()
	if l == nil {
		var err error
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	box := &Mailbox{Addr: l.Addr().String()}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{box: box, conn: c}, nil }))
	srv.Domain = "mail.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
		box.CAFile = cert.CAFile
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return box
}

// Certificate is the server's certificate, and a PEM file of it for a client to trust.
type Certificate struct {
	TLS    tls.Certificate
	CAFile string
}

// SelfSigned makes a certificate for 127.0.0.1 (the server's, to offer STARTTLS with).
func SelfSigned(t testing.TB) *Certificate {
	cert, file := selfSigned(t)
	return &Certificate{TLS: cert, CAFile: file}
}

func selfSigned(t testing.TB) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mail.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, file
}
