package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// startAsyncE2E starts a broker over dir with opts, closed when the test ends (Close is safe to
// call twice: the test may close it earlier).
func startAsyncE2E(t *testing.T, dir string, opts app.Options) (*e2eBroker, func()) {
	t.Helper()
	cfg := testConfig(dir)
	b, err := app.StartWith(context.Background(), cfg, siobroker.SystemClock{}, testLogger(), opts)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	closed := false
	closeIt := func() {
		if !closed {
			closed = true
			if err := b.Close(); err != nil {
				t.Errorf("close broker: %v", err)
			}
		}
	}
	t.Cleanup(closeIt)
	m, err := devpki.LoadManifest(b.PKIDir())
	if err != nil {
		t.Fatal(err)
	}
	src := sharedBroker(t)
	return &e2eBroker{b: b, cfg: cfg, base: b.BaseURL(), url: b.BaseURL() + cfg.Endpoint, pki: b.PKIDir(), manifest: m, subject: src.subject}, closeIt
}

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = Main(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func (e *e2eBroker) asyncArgs(cmd, iin, id string) []string {
	return []string{cmd, "--url", e.url, "--user", iin, "--pki", e.pki, "--timeout", "20s", "--id", id}
}

// waitDelivered asks e for the status of the asynchronous request id, as its signer iin, until
// it is DELIVERED; it fails the test on a failed status query, or after within.
func (e *e2eBroker) waitDelivered(t *testing.T, iin, id string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, out, errOut := runCmd(t, e.asyncArgs("status", iin, id)...)
		if code != 0 {
			t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
		}
		if strings.Contains(out, id+" DELIVERED") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not delivered within %s:\n%s", id, within, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAsyncE2ERestart: send --async to a broker whose worker does not run, see it on delivery,
// stop that broker, start another over the same data directory, and fetch the verified result.
func TestAsyncE2ERestart(t *testing.T) {
	src := sharedBroker(t)
	dir := t.TempDir()
	copyDir(t, src.pki, filepath.Join(dir, "pki"))
	e1, close1 := startAsyncE2E(t, dir, app.Options{NoAsyncWorker: true})
	u, _ := e1.caseUser(t, siobroker.BasisCriminal)

	code, out, errOut := runSend(t, e1.sendArgs(u, "--async", "--services", "1,5")...)
	if code != 0 {
		t.Fatalf("send --async: exit %d\n%s%s", code, out, errOut)
	}
	id := strings.TrimSpace(out)
	if id == "" || strings.ContainsAny(id, " \n") {
		t.Fatalf("send --async printed %q, want the id alone", out)
	}

	code, out, errOut = runCmd(t, e1.asyncArgs("status", u.IIN, id)...)
	if code != 0 || !strings.Contains(out, id+" ON_DELIVERY") {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCmd(t, e1.asyncArgs("fetch", u.IIN, id)...)
	if code != sendExitFault || !strings.Contains(out, "fault SIO-ASYNC-PENDING") {
		t.Fatalf("fetch before delivery: exit %d\n%s", code, out)
	}
	close1()

	e2, _ := startAsyncE2E(t, dir, app.Options{})
	e2.waitDelivered(t, u.IIN, id, 20*time.Second)
	code, out, errOut = runCmd(t, e2.asyncArgs("fetch", u.IIN, id)...)
	if code != 0 {
		t.Fatalf("fetch: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"reply " + id + " to ", "signature verified", "service 1: ok", "service 5: ok"} {
		if !strings.Contains(out, want) {
			t.Fatalf("fetch output lacks %q:\n%s", want, out)
		}
	}

	// Another signer learns nothing about the id.
	other := findOtherUser(t, e2, u.IIN)
	for _, cmd := range []string{"status", "fetch"} {
		code, out, _ = runCmd(t, e2.asyncArgs(cmd, other, id)...)
		if code != sendExitFault || !strings.Contains(out, "fault SIO-ASYNC-UNKNOWN") {
			t.Fatalf("%s by another signer: exit %d\n%s", cmd, code, out)
		}
	}
}

// TestAsyncE2EWorker: with the worker running, the result of send --async can be fetched, in the
// enveloped placement too.
func TestAsyncE2EWorker(t *testing.T) {
	e := privateBroker(t, siobroker.SystemClock{})
	u, _ := e.caseUser(t, siobroker.BasisCriminal)
	code, out, errOut := runSend(t, e.sendArgs(u, "--async", "--placement", "enveloped")...)
	if code != 0 {
		t.Fatalf("send --async: exit %d\n%s%s", code, out, errOut)
	}
	id := strings.TrimSpace(out)
	deadline := time.Now().Add(20 * time.Second)
	for {
		args := append(e.asyncArgs("fetch", u.IIN, id), "--placement", "enveloped")
		code, out, errOut = runCmd(t, args...)
		if code == 0 {
			break
		}
		if !strings.Contains(out, "SIO-ASYNC-PENDING") || time.Now().After(deadline) {
			t.Fatalf("fetch: exit %d\n%s%s", code, out, errOut)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out, "service 1: ok") || !strings.Contains(out, "signature verified over the results") {
		t.Fatalf("fetch output:\n%s", out)
	}
}

// findOtherUser returns the IIN of a valid demo user other than iin.
func findOtherUser(t *testing.T, e *e2eBroker, iin string) string {
	t.Helper()
	for _, u := range e.manifest.Users {
		if u.IIN != iin && u.Status == devpki.StatusValid {
			return u.IIN
		}
	}
	t.Fatal("no other valid demo user")
	return ""
}
