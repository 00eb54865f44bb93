package health

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/signing"
)

// testSigner makes a self-signed test certificate valid from notBefore to notAfter, and its signer.
func testSigner(t *testing.T, notBefore, notAfter time.Time) *signing.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test broker"},
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signing.NewSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCertificateState(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, siobroker.Astana)
	to := from.AddDate(1, 0, 0)
	cert := testSigner(t, from, to).Certificate()
	day := 24 * time.Hour
	tests := []struct {
		at     time.Time
		status CheckStatus
		detail string
	}{
		{from.Add(-time.Second), CheckFail, "not valid until 2026-01-01T00:00:00.000+05:00"},
		{from, CheckOK, "valid until 2027-01-01T00:00:00.000+05:00"},
		{to.Add(-31 * day), CheckOK, "valid until"},
		{to.Add(-29 * day), CheckWarn, "expires on 2027-01-01T00:00:00.000+05:00, in 29 days"},
		{to.Add(-time.Hour), CheckWarn, "in 0 days"},
		{to.Add(time.Second), CheckFail, "expired on 2027-01-01T00:00:00.000+05:00"},
	}
	for _, tt := range tests {
		res := CertificateCheck(cert, fixed(tt.at)).Run(context.Background())
		if res.Status != tt.status || !strings.Contains(res.Detail, tt.detail) {
			t.Errorf("at %s: %s %q; want %s with %q", tt.at, res.Status, res.Detail, tt.status, tt.detail)
		}
	}
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func fixed(t time.Time) siobroker.Clock { return fixedClock{t} }

// countingSigner counts signatures, and can present another certificate than its key's.
type countingSigner struct {
	*signing.Signer
	signs atomic.Int32
	cert  *x509.Certificate
}

func (c *countingSigner) SignDetached(data []byte) ([]byte, error) {
	c.signs.Add(1)
	return c.Signer.SignDetached(data)
}

func (c *countingSigner) Certificate() *x509.Certificate {
	if c.cert != nil {
		return c.cert
	}
	return c.Signer.Certificate()
}

func TestSigningKeyCheck(t *testing.T) {
	now := time.Now()
	clock := testclock.New(now)
	s := &countingSigner{Signer: testSigner(t, now.Add(-time.Hour), now.Add(time.Hour))}
	check := SigningKeyCheck(s, clock, time.Minute)
	for range 3 {
		if res := check.Run(context.Background()); res.Status != CheckOK || check.Name != "signing_key" {
			t.Fatalf("%s: %+v", check.Name, res)
		}
	}
	if n := s.signs.Load(); n != 1 {
		t.Errorf("%d signatures within the TTL, want 1", n)
	}
	clock.Advance(time.Minute)
	check.Run(context.Background())
	if n := s.signs.Load(); n != 2 {
		t.Errorf("%d signatures after the TTL, want 2", n)
	}

	// A key that does not match the certificate the broker presents fails.
	other := &countingSigner{Signer: s.Signer, cert: testSigner(t, now.Add(-time.Hour), now.Add(time.Hour)).Certificate()}
	if res := SigningKeyCheck(other, clock, time.Minute).Run(context.Background()); res.Status != CheckFail || res.Detail == "" {
		t.Errorf("mismatched key: %+v", res)
	}
}

// TestReadyz: /readyz answers each check by name, 200 while none fails (a warning included) and
// 503 when one does; the detail shows only the public part of a failure, and the log has the
// cause once when the check starts failing, not at every probe.
func TestReadyz(t *testing.T) {
	var failing atomic.Bool
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, nil))
	r, err := NewReadiness(ReadinessConfig{Timeout: time.Second, Logger: logger, Checks: []Check{
		FuncCheck("transport", "the message transport is not connected", func(context.Context) error {
			if failing.Load() {
				return &Public{Text: "RabbitMQ publishing connection down", Err: errors.New("dial amqp://guest:secret@10.1.2.3:5672")}
			}
			return nil
		}),
		FuncCheck("store", "the store does not answer", func(context.Context) error {
			if failing.Load() {
				return fmt.Errorf("open /var/lib/siobroker/keys/broker.key: permission denied")
			}
			return nil
		}),
		{Name: "certificate", Run: func(context.Context) CheckResult {
			return CheckResult{Status: CheckWarn, Detail: "expires soon"}
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer srv.Close()
	get := func() (int, Report) {
		t.Helper()
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rep Report
		if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, rep
	}

	code, rep := get()
	if code != http.StatusOK || rep.Status != "ok" || len(rep.Checks) != 3 ||
		rep.Checks[0] != (CheckResult{Name: "transport", Status: CheckOK}) || rep.Checks[2].Status != CheckWarn {
		t.Fatalf("ready: %d %+v", code, rep)
	}

	failing.Store(true)
	for range 3 {
		code, rep = get()
	}
	if code != http.StatusServiceUnavailable || rep.Status != "fail" {
		t.Fatalf("not ready: %d %+v", code, rep)
	}
	if c := rep.Checks[0]; c.Name != "transport" || c.Status != CheckFail ||
		c.Detail != "the message transport is not connected: RabbitMQ publishing connection down" {
		t.Errorf("transport check %+v", c)
	}
	if c := rep.Checks[1]; c.Status != CheckFail || strings.Contains(c.Detail, "/var/lib") || strings.Contains(c.Detail, "key") {
		t.Errorf("store check leaks its cause: %+v", c)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if n := strings.Count(out, `"check":"transport","status":"fail"`); n != 1 {
		t.Errorf("the failing transport was logged %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "permission denied") {
		t.Errorf("the log lacks the cause:\n%s", out)
	}
	failing.Store(false)
	if code, _ = get(); code != http.StatusOK {
		t.Errorf("recovered: %d", code)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// TestNewReadinessValidates: a negative timeout or a check without a Run is refused, naming it.
func TestNewReadinessValidates(t *testing.T) {
	ok := Check{Name: "store", Run: func(context.Context) CheckResult { return CheckResult{} }}
	if _, err := NewReadiness(ReadinessConfig{Checks: []Check{ok}}); err != nil {
		t.Fatalf("NewReadiness with defaults: %v", err)
	}
	for _, tt := range []struct {
		cfg  ReadinessConfig
		want string
	}{
		{ReadinessConfig{Timeout: -time.Second}, "health: ReadinessConfig.Timeout must not be negative"},
		{ReadinessConfig{Checks: []Check{ok, {Name: "journal"}}}, `health: ReadinessConfig.Checks[1].Run is required (check "journal")`},
	} {
		if _, err := NewReadiness(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewReadiness: %v, want %q", err, tt.want)
		}
	}
}
