package signing

import (
	"testing"
)

// TestCertificateCache: a certificate sent again is the one parsed before, the cache never holds
// more than its bound, and what does not parse is refused every time and never remembered.
func TestCertificateCache(t *testing.T) {
	c := certificateCache{max: 2, maxBytes: 1 << 20}
	a, b := fixture.signers["valid/rsa"].Certificate().Raw, fixture.broker.Certificate().Raw
	first, err := c.parse(append([]byte(nil), a...))
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.parse(append([]byte(nil), a...))
	if err != nil || again != first {
		t.Fatalf("the same DER parsed anew (%v)", err)
	}
	for range 2 {
		if _, err := c.parse([]byte("not a certificate")); err == nil {
			t.Fatal("garbage parsed")
		}
	}
	if len(c.certs) != 1 {
		t.Fatalf("%d certificates remembered, want 1", len(c.certs))
	}
	if _, err := c.parse(b); err != nil {
		t.Fatal(err)
	}
	// Full: the next new certificate empties it first.
	for _, s := range fixture.signers {
		if _, err := c.parse(s.Certificate().Raw); err != nil {
			t.Fatal(err)
		}
		if len(c.certs) > c.max {
			t.Fatalf("%d certificates remembered, bound %d", len(c.certs), c.max)
		}
	}
}

// TestCertificateCacheBytes: the DER remembered stays within maxBytes, whatever the entries, and
// a certificate larger than the whole bound is parsed but not remembered.
func TestCertificateCacheBytes(t *testing.T) {
	a := fixture.signers["valid/rsa"].Certificate().Raw
	c := certificateCache{max: 64, maxBytes: 3 * len(a)}
	for _, s := range fixture.signers {
		if _, err := c.parse(s.Certificate().Raw); err != nil {
			t.Fatal(err)
		}
		if c.bytes > c.maxBytes {
			t.Fatalf("%d bytes remembered, bound %d", c.bytes, c.maxBytes)
		}
	}
	small := certificateCache{max: 64, maxBytes: len(a)}
	if _, err := small.parse(a); err != nil {
		t.Fatal(err)
	}
	if len(small.certs) != 0 || small.bytes != 0 {
		t.Errorf("a certificate larger than the bound remembered (%d entries, %d bytes)", len(small.certs), small.bytes)
	}
}
