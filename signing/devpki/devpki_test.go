package devpki

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing/gost"
	"github.com/sio-pso/siobroker/signing/gostx509"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s: no certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEnsureGeneratesOnceAndLoads(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, siobroker.Astana)
	m, created, err := Ensure(dir, now)
	if err != nil || !created {
		t.Fatalf("first Ensure: created=%v err=%v", created, err)
	}
	again, created, err := Ensure(dir, now.Add(time.Hour))
	if err != nil || created {
		t.Fatalf("second Ensure: created=%v err=%v", created, err)
	}
	if len(again.Users) != len(m.Users) || !reflect.DeepEqual(again.Users, m.Users) {
		t.Fatalf("reloaded manifest differs: %+v vs %+v", again, m)
	}

	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"users"`, `"iin"`, `"keyType"`, `"brokerCert"`, `"brokerKey"`, `"ca"`, `"crl"`} {
		if !strings.Contains(string(raw), key) {
			t.Errorf("demo.json lacks %s", key)
		}
	}

	ca := readCert(t, filepath.Join(dir, m.CA))
	if ca.Subject.CommonName != CACommonName || !ca.IsCA {
		t.Errorf("CA subject %q", ca.Subject)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	broker := readCert(t, filepath.Join(dir, m.BrokerCert))
	if broker.Subject.CommonName != BrokerCommonName || broker.Subject.SerialNumber != "" ||
		len(broker.Subject.OrganizationalUnit) != 1 || !strings.HasPrefix(broker.Subject.OrganizationalUnit[0], "BIN") {
		t.Errorf("broker subject %q", broker.Subject)
	} else if err := siobroker.ValidateIIN(strings.TrimPrefix(broker.Subject.OrganizationalUnit[0], "BIN")); err != nil {
		t.Errorf("broker BIN: %v", err)
	}

	crlPEM, err := os.ReadFile(filepath.Join(dir, m.CRL))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(crlPEM)
	crl, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(ca); err != nil {
		t.Errorf("CRL signature: %v", err)
	}

	statuses := map[string]int{}
	roles := map[int]bool{}
	for _, u := range m.Users {
		statuses[u.Status+"/"+u.KeyType]++
		if roles[u.Role] || u.Role < 1 || u.Role > 19 {
			t.Errorf("user %s: role %d repeated or outside 1..19", u.IIN, u.Role)
		}
		roles[u.Role] = true
		if err := siobroker.ValidateIIN(u.IIN); err != nil {
			t.Errorf("user IIN %s: %v", u.IIN, err)
		}
		cert := readCert(t, filepath.Join(dir, u.Cert))
		if cert.Subject.SerialNumber != "IIN"+u.IIN || cert.Subject.CommonName != u.Name {
			t.Errorf("user %s: subject %q", u.IIN, cert.Subject)
		}
		// The NCA's signing profile (signing.SignerUsage holds request signers to it).
		if cert.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment ||
			!slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageEmailProtection) ||
			!slices.ContainsFunc(cert.UnknownExtKeyUsage, oidNCAIndividual.Equal) || cert.IsCA {
			t.Errorf("user %s: key usage %b, extended %v %v, CA %v: not the signing profile", u.IIN, cert.KeyUsage, cert.ExtKeyUsage, cert.UnknownExtKeyUsage, cert.IsCA)
		}
		switch cert.PublicKey.(type) {
		case *rsa.PublicKey:
			if u.KeyType != KeyRSA {
				t.Errorf("user %s: RSA key but keyType %s", u.IIN, u.KeyType)
			}
		case *ecdsa.PublicKey:
			if u.KeyType != KeyECDSA {
				t.Errorf("user %s: ECDSA key but keyType %s", u.IIN, u.KeyType)
			}
		}
		info, err := os.Stat(filepath.Join(dir, u.Key))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("user %s: key mode %v", u.IIN, info.Mode().Perm())
		}
		_, verr := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		revoked := false
		for _, e := range crl.RevokedCertificateEntries {
			revoked = revoked || e.SerialNumber.Cmp(cert.SerialNumber) == 0
		}
		switch u.Status {
		case StatusValid:
			if verr != nil || revoked {
				t.Errorf("valid user %s: verify %v, revoked %v", u.IIN, verr, revoked)
			}
		case StatusExpired:
			if !now.After(cert.NotAfter) {
				t.Errorf("expired user %s is still valid", u.IIN)
			}
		case StatusRevoked:
			if verr != nil || !revoked {
				t.Errorf("revoked user %s: verify %v, revoked %v", u.IIN, verr, revoked)
			}
		}
	}
	for _, want := range []string{"valid/rsa", "valid/ecdsa", "revoked/rsa", "expired/rsa"} {
		if statuses[want] == 0 {
			t.Errorf("no %s user", want)
		}
	}
	for _, key := range []string{CAKeyFile, BrokerKey} {
		info, err := os.Stat(filepath.Join(dir, key))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", key, info.Mode().Perm())
		}
		data, _ := os.ReadFile(filepath.Join(dir, key))
		if !strings.Contains(string(data), "NOT FOR PRODUCTION") {
			t.Errorf("%s is not marked as a development key", key)
		}
	}
}

func TestLoadManifestRejectsEscapingPaths(t *testing.T) {
	dir := t.TempDir()
	bad := `{"users":[{"iin":"750312300458","name":"X","role":1,"cert":"../x.pem","key":"x.key","keyType":"rsa","status":"valid"}],"ca":"ca.pem","crl":"crl.pem","brokerCert":"broker.pem","brokerKey":"broker.key"}`
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadManifest(dir); err == nil {
		t.Fatal("a path outside the PKI directory was accepted")
	}
}

// A PKI of each kind: the CA, the broker and every user have keys of that kind (RSA keeps its one
// ECDSA user), the certificates and the CRL verify under the CA, GOST ones by signing/gostx509,
// and a GOST key is written as PKCS #8 that signing/gost reads back as the certificate's key.
func TestGenerateAlgorithm(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, siobroker.Astana)
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			dir := t.TempDir()
			m, err := GenerateAlgorithm(dir, now, alg)
			if err != nil {
				t.Fatal(err)
			}
			loaded, err := LoadManifest(dir)
			if err != nil || loaded.Algorithm != m.Algorithm {
				t.Fatalf("manifest %v %v", loaded, err)
			}
			if (alg == KeyRSA) != (m.Algorithm == "") {
				t.Errorf("manifest algorithm %q", m.Algorithm)
			}
			ca := readCert(t, filepath.Join(dir, m.CA))
			crlPEM, _ := os.ReadFile(filepath.Join(dir, m.CRL))
			block, _ := pem.Decode(crlPEM)
			crl, err := x509.ParseRevocationList(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if err := gostx509.CheckCRLSignature(crl, ca); err != nil {
				t.Errorf("CRL: %v", err)
			}
			if err := gostx509.CheckCertificateSignature(ca, ca); err != nil {
				t.Errorf("CA: %v", err)
			}
			files := [][2]string{{m.BrokerCert, m.BrokerKey}}
			for _, u := range m.Users {
				files = append(files, [2]string{u.Cert, u.Key})
				want := alg
				if alg == KeyRSA && u.KeyType == KeyECDSA {
					want = KeyECDSA
				}
				if u.KeyType != want {
					t.Errorf("user %s: key type %s in a %s PKI", u.IIN, u.KeyType, alg)
				}
			}
			for _, f := range files {
				cert := readCert(t, filepath.Join(dir, f[0]))
				if err := gostx509.CheckCertificateSignature(cert, ca); err != nil {
					t.Errorf("%s: %v", f[0], err)
				}
				if _, isGOST := gostKinds[alg]; isGOST != gostx509.HasGOSTKey(cert) {
					t.Errorf("%s: GOST key %v in a %s PKI", f[0], gostx509.HasGOSTKey(cert), alg)
				}
				if !gostx509.HasGOSTKey(cert) {
					continue
				}
				keyPEM, _ := os.ReadFile(filepath.Join(dir, f[1]))
				block, _ := pem.Decode(keyPEM)
				key, kalg, err := gost.ParsePKCS8PrivateKey(block.Bytes)
				pub, perr := gostx509.PublicKeyOf(cert)
				if err != nil || perr != nil || kalg != gostKinds[alg] || pub.Algorithm != kalg || !pub.Public.Equal(key.Public()) {
					t.Errorf("%s: key %v %v, certificate %v %v", f[1], kalg, err, pub.Algorithm, perr)
				}
			}
		})
	}
	if _, err := GenerateAlgorithm(t.TempDir(), now, "dsa"); err == nil {
		t.Error("an unknown algorithm was accepted")
	}
}
