//go:build unix

package cli

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters/demo"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// runBinary runs the built siobroker with args from the repository's root and returns its exit
// status and output.
func runBinary(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(siobrokerBinary(t), args...)
	cmd.Dir = "../.."
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("siobroker %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return code, out.String(), errb.String()
}

// TestE2EGOSTBroker (issue 17, "done when"): for each GOST kind of the national PKI, the built
// binary makes a development PKI of that kind (devpki --algorithm), serves over it, and `send`
// signs a request with a demo user's GOST key; the broker answers with a reply signed with its
// own GOST key, which `send` verifies and `siobroker verify` verifies again from the saved bytes,
// as the request does. A revoked GOST user, in the CRL the GOST CA signed, is refused; the saved
// request posted again is a replay.
func TestE2EGOSTBroker(t *testing.T) {
	subject := demo.Generate(config.Defaults().Demo.Seed, config.Defaults().Demo.People, config.Defaults().Demo.Organisations).People()[0].IIN
	for _, tc := range []struct {
		alg, placement, sigAlg, digest string
	}{
		{devpki.KeyGOST2015_512, "wsse", signing.AlgGOST2015_512, signing.AlgDigestGOST2015_512},
		{devpki.KeyGOST2015_256, "enveloped", signing.AlgGOST2015_256, signing.AlgDigestGOST2015_256},
		{devpki.KeyGOST2004, "wsse-token-ts", signing.AlgGOST2004, signing.AlgDigestGOST34311},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			pki := filepath.Join(data, "pki")
			if code, out, errs := runBinary(t, "devpki", "--algorithm", tc.alg, "--out", pki); code != 0 || !strings.Contains(out, "development PKI ("+tc.alg+")") {
				t.Fatalf("devpki: exit %d\n%s%s", code, out, errs)
			}
			m, err := devpki.LoadManifest(pki)
			if err != nil {
				t.Fatal(err)
			}
			addr, ops := loopbackAddr(t), loopbackAddr(t)
			p := startProcess(t, "serve "+tc.alg, []string{"SIOBROKER_OPERATOR_LISTEN=" + ops}, "serve", "--dev", "--listen", addr, "--data", data)
			p.waitFor(t, "siobroker listening on", 2*time.Minute)
			url := "http://" + addr + "/SyncChannel/v10"
			// Readiness signs and verifies a probe with the broker's key: a GOST key here.
			if status, _, body := do(t, http.MethodGet, "http://"+ops+"/readyz", nil); status != http.StatusOK {
				t.Errorf("/readyz: HTTP %d %s", status, truncate(body))
			}

			user := findUserByRole(t, m, 1)
			if user.KeyType != tc.alg {
				t.Fatalf("the prosecutor's key is %s", user.KeyType)
			}
			request, reply := filepath.Join(dir, "request.xml"), filepath.Join(dir, "reply.xml")
			send := func(u devpki.User, extra ...string) (int, string, string) {
				args := append([]string{"send", "--url", url, "--user", u.IIN, "--pki", pki, "--timeout", "60s",
					"--subject", subject, "--services", "1", "--basis", "1", "--case", prosecutorCase, "--placement", tc.placement}, extra...)
				return runBinary(t, args...)
			}
			code, out, errs := send(user, "--save-request", request, "--save-reply", reply)
			if code != 0 || !strings.Contains(out, "signature verified") || !strings.Contains(out, devpki.BrokerCommonName) {
				t.Fatalf("send: exit %d\n%s%s", code, out, errs)
			}
			raw, err := os.ReadFile(reply)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{tc.sigAlg, tc.digest} {
				if !bytes.Contains(raw, []byte(`Algorithm="`+want+`"`)) {
					t.Errorf("the reply is not signed with %s:\n%s", want, truncate(raw))
				}
			}

			ca, crl := filepath.Join(pki, devpki.CAFile), filepath.Join(pki, devpki.CRLFile)
			code, out, errs = runBinary(t, "verify", reply, "--trusted-pem", ca, "--crl", crl)
			if code != 0 || !strings.Contains(out, "verdict: VALID") || !strings.Contains(out, tc.sigAlg) ||
				!strings.Contains(out, "CN="+devpki.BrokerCommonName) || !strings.Contains(out, "BIN:        05014") {
				t.Fatalf("verify the reply: exit %d\n%s%s", code, out, errs)
			}
			code, out, errs = runBinary(t, "verify", request, "--trusted-pem", ca, "--crl", crl)
			if code != 0 || !strings.Contains(out, "IIN:        "+user.IIN) || !strings.Contains(out, "verdict: VALID") {
				t.Fatalf("verify the request: exit %d\n%s%s", code, out, errs)
			}
			// The reply changed by one character (the signer's IIN it reports) no longer verifies.
			other := user.IIN[:11] + map[bool]string{true: "0", false: "9"}[user.IIN[11] == '9']
			changed := bytes.Replace(raw, []byte(">"+user.IIN+"<"), []byte(">"+other+"<"), 1)
			if bytes.Equal(changed, raw) {
				t.Fatalf("the reply does not name the signer %s:\n%s", user.IIN, truncate(raw))
			}
			tampered := filepath.Join(dir, "tampered.xml")
			if err := os.WriteFile(tampered, changed, 0o600); err != nil {
				t.Fatal(err)
			}
			if code, out, _ := runBinary(t, "verify", tampered, "--trusted-pem", ca); code != 1 || !strings.Contains(out, "SIO-SIG-INVALID") {
				t.Errorf("verify a changed reply: exit %d\n%s", code, out)
			}

			// The same signed request again: a replay.
			body, err := os.ReadFile(request)
			if err != nil {
				t.Fatal(err)
			}
			status, answer := post(t, url, body)
			wantFault(t, status, answer, 0, siobroker.CodeReplayID)

			// The revoked user, in the CRL the GOST CA signed.
			revoked := findUser(t, m, tc.alg, devpki.StatusRevoked)
			if code, out, errs := send(revoked); code != 1 || !strings.Contains(out, string(siobroker.CodeCertRevoked)) {
				t.Errorf("the revoked user: exit %d\n%s%s", code, out, errs)
			}
		})
	}
}
