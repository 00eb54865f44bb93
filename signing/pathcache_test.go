package signing

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing/gost"
)

// TestPathCache: a path that verified is remembered, and what the cache must not skip is still
// checked on every request: a revocation published after the path was remembered, the leaf's
// validity, and a time outside the validity of a certificate of the path. A look-alike's path
// is never remembered, and the cache stays within its bound.
func TestPathCache(t *testing.T) {
	now := fixture.now
	alg := gost.KZ2015_512
	root := gostCert(t, alg, gostCATemplate("path cache root", now), nil)
	user := gostCert(t, alg, gostUserTemplate(now), &root)
	trust, err := NewTrustStore([]*x509.Certificate{root.cert}, []*x509.RevocationList{gostCRL(t, root, now)})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "first request", trust.VerifyChain(user.cert, nil, now), "")
	if _, ok := trust.paths.get(pathKey(user.cert, nil), now); !ok {
		t.Fatal("the path that verified is not remembered")
	}
	wantCode(t, "second request", trust.VerifyChain(user.cert, nil, now.Add(time.Second)), "")

	// The same certificate offered with another intermediate is another path.
	if _, ok := trust.paths.get(pathKey(user.cert, []*x509.Certificate{root.cert}), now); ok {
		t.Error("a path remembered for other intermediates")
	}
	// Outside the validity of the path's certificates the remembered path is not used: the
	// root is valid from an hour before now, the user until an hour after.
	if _, ok := trust.paths.get(pathKey(user.cert, nil), now.Add(-2*time.Hour)); ok {
		t.Error("a remembered path used before its root is valid")
	}
	wantCode(t, "after the leaf's validity", trust.VerifyChain(user.cert, nil, now.Add(2*time.Hour)), siobroker.CodeCertExpired)

	// A CRL revoking the user, published after the path was remembered, refuses it.
	if err := trust.SetCRLs([]*x509.RevocationList{gostCRL(t, root, now.Add(30*time.Minute), user.cert)}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "revoked after the path was remembered", trust.VerifyChain(user.cert, nil, now.Add(time.Minute)), siobroker.CodeCertRevoked)

	// A look-alike root of the same name: refused, and nothing remembered.
	lookAlike := gostCert(t, alg, gostCATemplate("path cache root", now), nil)
	forged := gostCert(t, alg, gostUserTemplate(now), &lookAlike)
	wantCode(t, "look-alike", trust.VerifyChain(forged.cert, nil, now), siobroker.CodeCertChain)
	if _, ok := trust.paths.get(pathKey(forged.cert, nil), now); ok {
		t.Error("a path that failed is remembered")
	}
}

// TestPathCacheBound: past pathCacheEntries the cache forgets to make room.
func TestPathCacheBound(t *testing.T) {
	var c pathCache
	cert := fixture.trust.Roots()[0]
	chains := [][]*x509.Certificate{{cert}}
	for i := range pathCacheEntries + 100 {
		var key [32]byte
		key[0], key[1], key[2] = byte(i), byte(i>>8), byte(i>>16)
		c.put(key, chains)
	}
	if n := len(c.entries); n > pathCacheEntries || n < pathCacheEntries*7/8 {
		t.Errorf("%d entries after %d puts, bound %d", n, pathCacheEntries+100, pathCacheEntries)
	}
	// Several chains are not remembered.
	var key [32]byte
	key[31] = 1
	c.put(key, [][]*x509.Certificate{{cert}, {cert}})
	if _, ok := c.entries[key]; ok {
		t.Error("a result of two chains remembered")
	}
}
