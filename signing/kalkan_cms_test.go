package signing

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing/gost"
	"github.com/sio-pso/siobroker/signing/gostx509"
)

// Just enough of CMS (RFC 5652) to read the one Kalkan-made SignedData below.
type kalkanContentInfo struct {
	Type    asn1.ObjectIdentifier
	Content asn1.RawValue `asn1:"explicit,tag:0"`
}

type kalkanSignedData struct {
	Version      int
	Digests      asn1.RawValue
	Encap        kalkanEncapContent
	Certificates asn1.RawValue      `asn1:"optional,tag:0"`
	SignerInfos  []kalkanSignerInfo `asn1:"set"`
}

type kalkanEncapContent struct {
	Type    asn1.ObjectIdentifier
	Content []byte `asn1:"explicit,tag:0"`
}

type kalkanSignerInfo struct {
	Version   int
	SID       asn1.RawValue
	DigestAlg kalkanAlgorithm
	Attrs     asn1.RawValue `asn1:"tag:0"`
	SigAlg    kalkanAlgorithm
	Signature []byte
}

type kalkanAlgorithm struct {
	OID    asn1.ObjectIdentifier
	Params asn1.RawValue `asn1:"optional"`
}

type kalkanAttribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue `asn1:"set"`
}

// A CMS SignedData made with a GOST 34.310-2004 key by KalkanCrypt, from the tests of gokalkan
// (the Go binding of KalkanCrypt; testdata/gost/kalkan/README.md): "test" signed on 13 May 2022
// by the НУЦ РК's 2004 test user ТЕСТОВ ТЕСТ under "ҰКО 3.0 (GOST TEST)". It is not an XML
// signature, but the one public signature of a 2004 user key made by Kalkan found so far (the
// other 2004 samples are the CA's own certificate and CRL signatures): the messageDigest is
// GOST 34.311-95 of the content as signing/gost computes it, and the signature over the signed
// attributes verifies through VerifyDetached, the Kazakh convention, and in no other convention;
// the signer's certificate chains to the test CA while it was valid.
func TestKalkanCMSGOST2004(t *testing.T) {
	b64, err := os.ReadFile(kalkanFile("gokalkan-test-cms-gost2004.b64"))
	if err != nil {
		t.Fatal(err)
	}
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b64)))
	if err != nil {
		t.Fatal(err)
	}
	var ci kalkanContentInfo
	rest, err := asn1.Unmarshal(der, &ci)
	// Kalkan wrote one NUL byte after the DER.
	if err != nil || !bytes.Equal(rest, []byte{0}) {
		t.Fatalf("ContentInfo: %v, trailing %x", err, rest)
	}
	var sd kalkanSignedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		t.Fatalf("SignedData: %v", err)
	}
	if string(sd.Encap.Content) != "test" || len(sd.SignerInfos) != 1 {
		t.Fatalf("content %q, %d signers", sd.Encap.Content, len(sd.SignerInfos))
	}
	var certRaw asn1.RawValue
	if _, err := asn1.Unmarshal(sd.Certificates.Bytes, &certRaw); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(certRaw.FullBytes)
	if err != nil {
		t.Fatal(err)
	}
	si := sd.SignerInfos[0]
	if got := si.DigestAlg.OID.String(); got != "1.2.398.3.10.1.3.1" {
		t.Errorf("digest algorithm %s", got)
	}
	if got := si.SigAlg.OID.String(); got != gost.KZ2004.OID().String() {
		t.Errorf("signature algorithm %s, want the 2004 key's %s", got, gost.KZ2004.OID())
	}
	key, err := gostx509.PublicKeyOf(cert)
	if err != nil || key.Algorithm != gost.KZ2004 {
		t.Fatalf("the signer's key: %v, %v", key.Algorithm, err)
	}

	// The signed attributes: messageDigest is GOST 34.311-95 of the content, and
	// signingCertificateV2 names the signer's certificate by its SHA-256.
	var attrs []kalkanAttribute
	if _, err := asn1.UnmarshalWithParams(si.Attrs.FullBytes, &attrs, "set,tag:0"); err != nil {
		t.Fatalf("signed attributes: %v", err)
	}
	digests := map[string][]byte{}
	for _, a := range attrs {
		digests[a.Type.String()] = a.Values.Bytes
	}
	var md []byte
	if _, err := asn1.Unmarshal(digests["1.2.840.113549.1.9.4"], &md); err != nil {
		t.Fatalf("messageDigest: %v", err)
	}
	if want := gost.GOST94([]byte("test")); !bytes.Equal(md, want[:]) {
		t.Errorf("messageDigest %x, GOST 34.311-95 of the content %x", md, want)
	}
	if sum := sha256.Sum256(cert.Raw); !bytes.Contains(digests["1.2.840.113549.1.9.16.2.47"], sum[:]) {
		t.Error("signingCertificateV2 does not name the embedded certificate")
	}

	// The signature is over the DER of the signed attributes as a SET.
	signed := append([]byte{0x31}, si.Attrs.FullBytes[1:]...)
	if err := VerifyDetached(cert, signed, si.Signature); err != nil {
		t.Errorf("the Kalkan signature: %v", err)
	}
	h := gost.NewGOST94()
	h.Write(signed)
	for _, other := range []gost.Convention{gost.BigEndian, gost.RFC4491} {
		if other.Verify(key.Public, h.Sum(nil), si.Signature) == nil {
			t.Errorf("verifies in the %v convention too", other)
		}
	}
	// One byte changed, in what is signed (the signing time) or in the signature.
	badSigned := bytes.Replace(signed, []byte("220513095032Z"), []byte("220513095033Z"), 1)
	badSig := append([]byte(nil), si.Signature...)
	badSig[0] ^= 1
	for name, tc := range map[string][2][]byte{"signed attributes": {badSigned, si.Signature}, "signature": {signed, badSig}} {
		if err := VerifyDetached(cert, tc[0], tc[1]); siobroker.ErrorCode(err) != siobroker.CodeSigInvalid {
			t.Errorf("changed %s: %v", name, err)
		}
	}

	// The signer chains to the 2004 test CA while its certificate was valid (the signature itself
	// was made after, on 13 May 2022: Kalkan signs with an expired test certificate).
	store, err := LoadTrustStore(TrustConfig{RootFiles: []string{kalkanFile("nca_gost_test.crt")}})
	if err != nil {
		t.Fatal(err)
	}
	wantChainCode(t, "the CMS signer", store.VerifyChain(cert, nil, time.Date(2021, 6, 1, 12, 0, 0, 0, siobroker.Astana)), "", "")
}
