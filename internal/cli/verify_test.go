package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func runVerify(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), append([]string{"verify"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// kalkan names a file of the НУЦ РК test material (testdata/gost/kalkan/README.md).
func kalkan(name string) string { return filepath.Join("..", "..", "testdata", "gost", "kalkan", name) }

// TestVerifyKalkanXML: `siobroker verify --verification-time` on the real document Kalkan signed
// with RSA and then with GOST 34.10-2015 512: each signature verifies under its НУЦ РК test CA
// (the 2015 one a DER file, as the НУЦ publishes it) and CRL in its signer's validity; the
// document as a whole, at one time, does not; and the usage mistakes exit 2.
func TestVerifyKalkanXML(t *testing.T) {
	doc := kalkan("ncanode-two-signers-rsa-gost2015-512.xml")
	code, out, errs := runVerify(t, doc, "--trusted-pem", kalkan("nca_gost2015_test.cer"), "--crl", kalkan("nca_gost2022_test.crl"),
		"--verification-time", "2022-09-01T12:00:00+05:00", "--signature", "2")
	if code != exitOK {
		t.Fatalf("the GOST signature: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"signature 2 of 2", "VALID", "GOST 34.10-2015 512", "gostr34102015-gostr34112015-512",
		"gostr34112015-512", "IIN123456789012", "ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (GOST) TEST 2022", `URI="" covers the whole document`, "verdict: VALID"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runVerify(t, doc, "--trusted-pem", kalkan("nca_rsa_test.crt"), "--crl", kalkan("nca_rsa_test.crl"),
		"--verification-time", "2021-06-01T12:00:00+05:00", "--signature", "1")
	if code != exitOK || !strings.Contains(out, "RSA 2048 bits") || !strings.Contains(out, "checked without the 1 signature(s) after it") {
		t.Fatalf("the RSA signature: exit %d\n%s", code, out)
	}
	code, out, _ = runVerify(t, doc, "--trusted-pem", kalkan("nca_rsa_test.crt"), "--trusted-pem", kalkan("nca_gost2015_test.cer"),
		"--verification-time", "2022-09-01T12:00:00+05:00")
	if code != exitFailed || !strings.Contains(out, "SIO-CERT-EXPIRED") || !strings.Contains(out, "verdict: INVALID (1 of 2") {
		t.Fatalf("both signatures at one time: exit %d\n%s", code, out)
	}

	for _, tc := range [][]string{
		{doc},
		{"--trusted-pem", kalkan("nca_rsa_test.crt")},
		{doc, "--trusted-pem", kalkan("nca_rsa_test.crt"), "--verification-time", "yesterday"},
		{doc, "--trusted-pem", kalkan("nca_rsa_test.crt"), "--id-attr", "wsu:Id"},
		{kalkan("no-such-file.xml"), "--trusted-pem", kalkan("nca_rsa_test.crt")},
		{doc, "--trusted-pem", kalkan("README.md")},
	} {
		if code, _, errs := runVerify(t, tc...); code != exitUsage || !strings.Contains(errs, "siobroker verify") {
			t.Errorf("%v: exit %d, want 2 (%s)", tc, code, errs)
		}
	}
	if code, out, _ := runVerify(t, kalkan("README.md"), "--trusted-pem", kalkan("nca_rsa_test.crt")); code != exitFailed || !strings.Contains(out, "INVALID") {
		t.Errorf("a file that is not XML: exit %d\n%s", code, out)
	}
}
