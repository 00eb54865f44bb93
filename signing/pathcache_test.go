package signing

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing/gost"
)

// TestPathCache: the path of a signer whose request verified is remembered, and what the cache
// must not skip is still checked on every request: a revocation published after the path was
// remembered, the leaf's validity, a time outside the validity of a certificate of the path. A
// certificate shown with a SignatureValue its holder did not make (anyone may copy a
// certificate) and a look-alike's are not remembered.
func TestPathCache(t *testing.T) {
	now := fixture.now
	alg := gost.KZ2015_512
	root := gostCert(t, alg, gostCATemplate("path cache root", now), nil)
	user := gostCert(t, alg, gostUserTemplate(now), &root)
	trust, err := NewTrustStore([]*x509.Certificate{root.cert}, []*x509.RevocationList{gostCRL(t, root, now)})
	if err != nil {
		t.Fatal(err)
	}
	v := mustVerifier(t, VerifierConfig{Trust: trust})
	signed := func(s *Signer) *etree.Document {
		doc := loadDoc(t, "request.xml")
		if err := s.Sign(doc, PlacementWSSE); err != nil {
			t.Fatal(err)
		}
		return doc
	}
	signer, err := NewSigner(user.cert, user.key)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(doc *etree.Document, at time.Time) error {
		_, err := v.Verify(context.Background(), reparse(t, doc), at)
		return err
	}
	remembered := func(cert *x509.Certificate, at time.Time) bool {
		_, ok := trust.paths.get(pathKey(cert, nil), at)
		return ok
	}

	// A copy of the user's certificate with a SignatureValue of someone else's: refused, and
	// the path, though it verified, is not remembered.
	doc := signed(signer)
	signatureOf(t, doc).SelectElement("ds:SignatureValue").SetText(b64(make([]byte, 128)))
	wantCode(t, "a copied certificate", verify(doc, now), siobroker.CodeSigInvalid)
	if remembered(user.cert, now) {
		t.Fatal("the path of a certificate whose holder did not sign is remembered")
	}

	doc = signed(signer)
	wantCode(t, "first request", verify(doc, now), "")
	if !remembered(user.cert, now) {
		t.Fatal("the path of a request that verified is not remembered")
	}
	wantCode(t, "second request", verify(doc, now.Add(time.Second)), "")
	// The same certificate shown with other intermediates is another path; outside the
	// validity of the path's certificates the remembered one is not used.
	if _, ok := trust.paths.get(pathKey(user.cert, []*x509.Certificate{root.cert}), now); ok {
		t.Error("a path remembered for other intermediates")
	}
	if remembered(user.cert, now.Add(-2*time.Hour)) {
		t.Error("a remembered path used before its root is valid")
	}
	wantCode(t, "after the leaf's validity", verify(doc, now.Add(2*time.Hour)), siobroker.CodeCertExpired)

	// A CRL revoking the user, published after the path was remembered, refuses it.
	if err := trust.SetCRLs([]*x509.RevocationList{gostCRL(t, root, now.Add(30*time.Minute), user.cert)}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "revoked after the path was remembered", verify(doc, now.Add(time.Minute)), siobroker.CodeCertRevoked)

	// A look-alike root of the same name: refused, nothing remembered.
	lookAlike := gostCert(t, alg, gostCATemplate("path cache root", now), nil)
	forged := gostCert(t, alg, gostUserTemplate(now), &lookAlike)
	forger, err := NewSigner(forged.cert, forged.key)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "look-alike", verify(signed(forger), now), siobroker.CodeCertChain)
	if remembered(forged.cert, now) {
		t.Error("a path that failed is remembered")
	}
}

// TestPathCacheBound: past pathCacheEntries, or pathCacheBytes of certificates, the cache
// forgets to make room.
func TestPathCacheBound(t *testing.T) {
	var c pathCache
	root := fixture.trust.Roots()[0]
	chains := [][]*x509.Certificate{{root}}
	for i := range pathCacheEntries + 100 {
		var key [32]byte
		key[0], key[1], key[2] = byte(i), byte(i>>8), byte(i>>16)
		c.put(key, chains)
	}
	if n := len(c.entries); n > pathCacheEntries || n < pathCacheEntries*7/8 {
		t.Errorf("%d entries after %d puts, bound %d", n, pathCacheEntries+100, pathCacheEntries)
	}

	// Leaves of 64 KB: the bytes bind long before the entries.
	c = pathCache{}
	leaf := &x509.Certificate{Raw: make([]byte, 64<<10), NotAfter: root.NotAfter}
	for i := range 1000 {
		var key [32]byte
		key[0], key[1] = byte(i), byte(i>>8)
		c.put(key, [][]*x509.Certificate{{leaf, root}})
	}
	if c.bytes > pathCacheBytes || len(c.entries) > pathCacheBytes/(64<<10) || len(c.entries) == 0 {
		t.Errorf("%d bytes in %d entries, bound %d bytes", c.bytes, len(c.entries), pathCacheBytes)
	}
	// Several chains are not remembered.
	var key [32]byte
	key[31] = 1
	c.put(key, [][]*x509.Certificate{{root}, {root}})
	if _, ok := c.entries[key]; ok {
		t.Error("a result of two chains remembered")
	}
}
