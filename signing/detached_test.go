package signing

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sio-pso/siobroker"
)

func TestDetachedRoundTrip(t *testing.T) {
	data := []byte(`{"number":1,"file":"journal-000001.jsonl.gz"}` + "\n")
	for name, s := range map[string]*Signer{"rsa": fixture.broker, "ecdsa": signer(t, "valid/ecdsa")} {
		t.Run(name, func(t *testing.T) {
			sig, err := s.SignDetached(data)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyDetached(s.Certificate(), data, sig); err != nil {
				t.Fatalf("VerifyDetached: %v", err)
			}
			changed := append([]byte(nil), data...)
			changed[3] ^= 1
			if err := VerifyDetached(s.Certificate(), changed, sig); siobroker.ErrorCode(err) != siobroker.CodeSigInvalid {
				t.Errorf("changed data: got %v, want %s", err, siobroker.CodeSigInvalid)
			}
			bad := append([]byte(nil), sig...)
			bad[len(bad)/2] ^= 1
			if err := VerifyDetached(s.Certificate(), data, bad); siobroker.ErrorCode(err) != siobroker.CodeSigInvalid {
				t.Errorf("changed signature: got %v, want %s", err, siobroker.CodeSigInvalid)
			}
			if err := VerifyDetached(fixture.foreign.Certificate(), data, sig); siobroker.ErrorCode(err) != siobroker.CodeSigInvalid {
				t.Errorf("another key: got %v, want %s", err, siobroker.CodeSigInvalid)
			}
		})
	}
	if err := VerifyDetached(nil, data, []byte("x")); err == nil {
		t.Error("nil certificate: no error")
	}
	if got := len(fixture.broker.Chain()); got != 0 {
		t.Errorf("Chain of the broker: %d certificates, want 0", got)
	}
}

// TestDetachedMatchesOpenSSL checks that a detached signature verifies with
// "openssl dgst -sha256 -verify", so that archives can be checked with nothing but openssl.
func TestDetachedMatchesOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skipf("openssl not installed: %v", err)
	}
	dir := t.TempDir()
	data := []byte("the exact manifest bytes\n")
	dataFile := filepath.Join(dir, "data")
	if err := os.WriteFile(dataFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Signer{"rsa": fixture.broker, "ecdsa": signer(t, "valid/ecdsa")} {
		switch s.Certificate().PublicKey.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey:
		default:
			t.Fatalf("%s: unexpected key type", name)
		}
		sig, err := s.SignDetached(data)
		if err != nil {
			t.Fatal(err)
		}
		sigFile := filepath.Join(dir, name+".sig")
		if err := os.WriteFile(sigFile, sig, 0o600); err != nil {
			t.Fatal(err)
		}
		certFile := filepath.Join(dir, name+".pem")
		if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		pubFile := filepath.Join(dir, name+".pub")
		if out, err := exec.Command(openssl, "x509", "-in", certFile, "-pubkey", "-noout", "-out", pubFile).CombinedOutput(); err != nil {
			t.Fatalf("%s: openssl x509: %v\n%s", name, err, out)
		}
		if out, err := exec.Command(openssl, "dgst", "-sha256", "-verify", pubFile, "-signature", sigFile, dataFile).CombinedOutput(); err != nil {
			t.Errorf("%s: openssl does not verify the detached signature: %v\n%s", name, err, out)
		}
	}
}
