package revocation

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/private"
	"github.com/sio-pso/siobroker/signing"
)

// The disk cache holds one file per source, named by the SHA-256 of its URL: the CRL last put in
// force from it (a PEM "X509 CRL" block whose Source header is the URL) and the CA certificate
// that verified it (a CERTIFICATE block), so that a CRL of an intermediate that is not configured
// can be verified again at start, before any chain has shown the intermediate. Nothing in it is
// trusted as read: the trust store verifies the CA to a root and the CRL to the CA again.
const (
	cacheExt     = ".crl.pem"
	sourceHeader = "Source"
)

// cachePath is where the CRL of url is cached.
func (f *Fetcher) cachePath(url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(f.cfg.CacheDir, hex.EncodeToString(sum[:16])+cacheExt)
}

// writeCache caches crl from url with the CA that verified it, replacing the file whole (written
// beside and renamed), private to the broker.
func (f *Fetcher) writeCache(url string, crl *x509.RevocationList, issuer *x509.Certificate) error {
	if f.cfg.CacheDir == "" {
		return nil
	}
	if err := private.MkdirAll(f.cfg.CacheDir); err != nil {
		return err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Headers: map[string]string{sourceHeader: url}, Bytes: crl.Raw})
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuer.Raw})...)
	path := f.cachePath(url)
	tmp, err := os.CreateTemp(f.cfg.CacheDir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("cache the CRL of %s: %w", url, err)
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing left to remove
	// CreateTemp makes the file 0600 whatever the umask.
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("cache the CRL of %s: %w", url, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("cache the CRL of %s: %w", url, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cache the CRL of %s: %w", url, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("cache the CRL of %s: %w", url, err)
	}
	return nil
}

// LoadCache puts the cached CRLs of the fetcher's sources in force, as PutFetchedCRL checks
// them, and makes their sources due at once. A cached CRL that does not verify, or is older than
// one in force (a CRL file newer than the cache), is logged and left out; so is the cache of a
// source no longer configured. It returns how many CRLs it put in force; a missing cache
// directory is none.
func (f *Fetcher) LoadCache() (int, error) {
	if f.cfg.CacheDir == "" {
		return 0, nil
	}
	entries, err := os.ReadDir(f.cfg.CacheDir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the CRL cache: %w", err)
	}
	loaded := 0
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), cacheExt) {
			continue
		}
		path := filepath.Join(f.cfg.CacheDir, e.Name())
		url, crl, issuer, err := readCacheFile(path)
		if err != nil {
			f.cfg.Logger.Warn("a cached CRL cannot be read; it is left out", "file", path, "error", err)
			continue
		}
		if !f.wanted(url) {
			continue
		}
		if _, _, err := f.trust.PutFetchedCRL(signing.FetchedCRL{Source: url, CRL: crl, Issuer: issuer}, f.cfg.Clock.Now()); err != nil {
			f.cfg.Logger.Warn("a cached CRL is not put in force", "source", url, "file", path, "error", err)
			continue
		}
		loaded++
		f.mu.Lock()
		if f.sources[url] == nil {
			f.sources[url] = &source{url: url}
		}
		f.mu.Unlock()
		f.cfg.Logger.Info("cached CRL in force until the next fetch", "source", url, "issuer", crl.Issuer.String(), "number", crl.Number,
			"next_update", siobroker.FormatTime(crl.NextUpdate))
	}
	return loaded, nil
}

// readCacheFile reads one cache file: the source, its CRL and the CA that verified it.
func readCacheFile(path string) (string, *x509.RevocationList, *x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, nil, err
	}
	var (
		url    string
		crl    *x509.RevocationList
		issuer *x509.Certificate
	)
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		switch block.Type {
		case "X509 CRL":
			url = block.Headers[sourceHeader]
			if crl, err = x509.ParseRevocationList(block.Bytes); err != nil {
				return "", nil, nil, fmt.Errorf("the CRL does not parse: %w", err)
			}
		case "CERTIFICATE":
			if issuer, err = x509.ParseCertificate(block.Bytes); err != nil {
				return "", nil, nil, fmt.Errorf("the CA certificate does not parse: %w", err)
			}
		}
	}
	if crl == nil || url == "" {
		return "", nil, nil, errors.New("no CRL with its source")
	}
	return url, crl, issuer, nil
}
