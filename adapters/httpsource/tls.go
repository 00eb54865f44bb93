package httpsource

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/sio-pso/siobroker/internal/tlspolicy"
)

// TLSFiles are the files of a source's HTTPS connection: the roots its server certificate must
// chain to (beside the system's, unless only these are wanted) and this adapter's client
// certificate, for sources that require one, as state systems commonly do.
type TLSFiles struct {
	CAFile     string // PEM roots trusted for the source's certificate; "" trusts the system's
	CertFile   string // PEM client certificate; with KeyFile, or neither
	KeyFile    string
	ServerName string // the name the source's certificate must carry, when the URL's host is not it
}

// Client returns an HTTP client for the files: the broker's TLS policy (internal/tlspolicy:
// TLS 1.3, or TLS 1.2 with ECDHE and AEAD suites; the adapter carries citizens' data back from
// the source as the broker carries it out), the roots of CAFile only when it is given, the
// client certificate when given. A source that offers only CBC suites or an RSA key exchange is
// refused at the handshake, with an error naming TLS. Every file is read now, so that a missing
// or unreadable one is reported when the configuration is checked, not at the first request.
func (f TLSFiles) Client() (*http.Client, error) {
	cfg := tlspolicy.Apply(&tls.Config{ServerName: f.ServerName})
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", f.CAFile)
		}
		cfg.RootCAs = roots
	}
	switch {
	case f.CertFile != "" && f.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file, tls.key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case f.CertFile != "" || f.KeyFile != "":
		return nil, errors.New("tls: cert_file and key_file go together")
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = cfg
	transport.TLSHandshakeTimeout = 10 * time.Second
	return &http.Client{Transport: transport}, nil
}
