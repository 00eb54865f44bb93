package signing

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"
	"time"
)

// pathCacheEntries and pathCacheBytes bound pathCache: a deployment's signers, with room, and
// their certificates' DER (a parsed certificate holds its DER and about as much again). Past
// either the cache forgets entries to make room, so that many signers cost a path verification
// per request (as before the cache) and no memory beyond the bound.
const (
	pathCacheEntries = 8192
	pathCacheBytes   = 8 << 20
)

// pathCache remembers the paths to a trusted root that verified, by the certificate and the
// intermediates it came with, with the span of time in which every certificate of the path is
// valid. Only a path found alone is kept: with several, which one x509 finds may depend on the
// time, and each would need its revocation checked. Failures are not kept, nor the paths of
// certificates whose holder did not sign with them (TrustStore.rememberPath). A TrustStore's roots
// never change (a reload of the trust makes a new store), so the paths it verified stay true.
// What changes, revocation and the responders' answers, is checkStatus's, which no cache skips.
type pathCache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]verifiedPath
	bytes   int // the entries' cost
}

// verifiedPath is one remembered path and when all of its certificates are valid.
type verifiedPath struct {
	chains              [][]*x509.Certificate
	notBefore, notAfter time.Time
	cost                int // the DER of its certificates but the root, which the store holds anyway
}

// pathKey names a certificate with the intermediates it came with.
func pathKey(cert *x509.Certificate, intermediates []*x509.Certificate) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, c := range append([]*x509.Certificate{cert}, intermediates...) {
		binary.BigEndian.PutUint64(n[:], uint64(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key
}

// get returns the path remembered under key if every certificate of it is valid at at.
func (c *pathCache) get(key [sha256.Size]byte, at time.Time) ([][]*x509.Certificate, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.entries[key]
	if !ok || at.Before(p.notBefore) || at.After(p.notAfter) {
		return nil, false
	}
	return p.chains, true
}

// put remembers chains under key when they are one path.
func (c *pathCache) put(key [sha256.Size]byte, chains [][]*x509.Certificate) {
	if len(chains) != 1 || len(chains[0]) == 0 {
		return
	}
	p := verifiedPath{chains: chains, notBefore: chains[0][0].NotBefore, notAfter: chains[0][0].NotAfter}
	for i, cert := range chains[0] {
		if cert.NotBefore.After(p.notBefore) {
			p.notBefore = cert.NotBefore
		}
		if cert.NotAfter.Before(p.notAfter) {
			p.notAfter = cert.NotAfter
		}
		if i < len(chains[0])-1 {
			p.cost += len(cert.Raw)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[[sha256.Size]byte]verifiedPath)
	}
	if _, ok := c.entries[key]; ok {
		return
	}
	if len(c.entries) >= pathCacheEntries || c.bytes+p.cost > pathCacheBytes {
		// Forget an eighth of the entries, in the map's own order: cheap, and no sender can
		// choose what stays.
		drop := max(1, len(c.entries)/8)
		for k, old := range c.entries {
			if drop == 0 && c.bytes+p.cost <= pathCacheBytes {
				break
			}
			delete(c.entries, k)
			c.bytes -= old.cost
			drop = max(0, drop-1)
		}
	}
	c.entries[key] = p
	c.bytes += p.cost
}
