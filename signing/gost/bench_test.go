package gost

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"hash"
	"testing"
)

// The GOST signatures beside the standard library's RSA-2048 and ECDSA P-256 in the same run,
// so the machine's noise is shared (docs/benchmarks.md). Each op is one signature or one
// verification of a precomputed digest; hashing is measured separately.

func BenchmarkSign(b *testing.B) {
	for _, tc := range []struct {
		name  string
		curve *Curve
	}{{"GOST-256-CryptoProA", curveCryptoProA}, {"GOST-256-TC26A", curveTC26_256A}, {"GOST-512-TC26A", curveTC26_512A}} {
		b.Run(tc.name, func(b *testing.B) {
			priv, _ := GenerateKey(tc.curve, nil)
			digest := make([]byte, tc.curve.Size())
			rand.Read(digest)
			for b.Loop() {
				if _, err := priv.Sign(nil, digest, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	digest := sha256.Sum256([]byte("baseline"))
	b.Run("RSA-2048", func(b *testing.B) {
		priv, _ := rsa.GenerateKey(rand.Reader, 2048)
		for b.Loop() {
			if _, err := priv.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ECDSA-P256", func(b *testing.B) {
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		for b.Loop() {
			if _, err := priv.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	for _, tc := range []struct {
		name  string
		curve *Curve
	}{{"GOST-256-CryptoProA", curveCryptoProA}, {"GOST-256-TC26A", curveTC26_256A}, {"GOST-512-TC26A", curveTC26_512A}} {
		b.Run(tc.name, func(b *testing.B) {
			priv, _ := GenerateKey(tc.curve, nil)
			digest := make([]byte, tc.curve.Size())
			rand.Read(digest)
			sig, _ := priv.Sign(nil, digest, nil)
			for b.Loop() {
				if err := Kazakh.Verify(priv.PublicKey(), digest, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	digest := sha256.Sum256([]byte("baseline"))
	b.Run("RSA-2048", func(b *testing.B) {
		priv, _ := rsa.GenerateKey(rand.Reader, 2048)
		sig, _ := priv.Sign(rand.Reader, digest[:], crypto.SHA256)
		for b.Loop() {
			if err := rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ECDSA-P256", func(b *testing.B) {
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		sig, _ := ecdsa.SignASN1(rand.Reader, priv, digest[:])
		for b.Loop() {
			if !ecdsa.VerifyASN1(&priv.PublicKey, digest[:], sig) {
				b.Fatal("ECDSA verification failed")
			}
		}
	})
}

func BenchmarkHash(b *testing.B) {
	data := make([]byte, 16<<10)
	for _, tc := range []struct {
		name string
		new  func() hash.Hash
	}{{"Streebog256", NewStreebog256}, {"Streebog512", NewStreebog512}, {"GOST94", NewGOST94}, {"SHA-256", sha256.New}} {
		b.Run(tc.name+"-16KiB", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			h := tc.new()
			for b.Loop() {
				h.Reset()
				h.Write(data)
				h.Sum(nil)
			}
		})
	}
}
