package httpsource

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"
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

// Client returns an HTTP client for the files: TLS 1.2 at least, the roots of CAFile only when
// it is given, the client certificate when given. Every file is read now, so that a missing or
// unreadable one is reported when the configuration is checked, not at the first request.
func (f TLSFiles) Client() (*http.Client, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
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
