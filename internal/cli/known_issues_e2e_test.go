package cli

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// These tests state behaviour the broker once lacked. A test whose defect is still present skips
// with "KNOWN BUG" (a skip rather than a failure keeps `go test ./internal/cli` green for the other
// engineers); once the defect is fixed, the skip becomes a hard assertion that guards the fix.

// TestEnvelopedReplayWithFreshRequestInfo: in the enveloped placement only q:query is signed, so
// requestInfo (messageId, messageDate) can be rewritten by whoever captured the request. A
// captured request re-posted with a new messageId and a fresh messageDate must not be answered:
// the broker remembers the digest of every signed content it accepted (fixed; was a KNOWN BUG).
func TestEnvelopedReplayWithFreshRequestInfo(t *testing.T) {
	e := sharedBroker(t)
	u := e.user(t, devpki.KeyRSA, devpki.StatusValid)
	reqFile := filepath.Join(t.TempDir(), "request.xml")
	code, stdout, stderr := runSend(t, e.sendArgs(u, "--placement", "enveloped", "--save-request", reqFile)...)
	if code != sendExitOK {
		t.Fatalf("send exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	saved, err := os.ReadFile(reqFile)
	if err != nil {
		t.Fatal(err)
	}
	replayed := regexp.MustCompile(`<messageId>[^<]*</messageId>`).
		ReplaceAll(saved, []byte("<messageId>"+uuid.NewString()+"</messageId>"))
	replayed = regexp.MustCompile(`<messageDate>[^<]*</messageDate>`).
		ReplaceAll(replayed, []byte("<messageDate>"+siobroker.FormatTime(siobroker.SystemClock{}.Now())+"</messageDate>"))
	if bytes.Equal(replayed, saved) {
		t.Fatal("could not rewrite requestInfo")
	}
	status, body := post(t, e.url, replayed)
	if status == http.StatusOK {
		t.Fatalf("the broker answered an enveloped request re-posted with a new messageId and messageDate "+
			"(requestInfo is outside the signed q:query):\n%s", truncate(body))
	}
	f := wantFault(t, status, body, http.StatusInternalServerError, siobroker.CodeReplayID)
	if !strings.Contains(f.Message, "signed content") {
		t.Errorf("fault message %q does not say the signed content was seen before", f.Message)
	}
}

// TestContentTypeRefused: a POST that is not text/xml is refused with SIO-HTTP-CONTENT, as
// siobroker.CodeContentType and the comment on soap.checkContentTypeCharset promise.
func TestContentTypeRefused(t *testing.T) {
	e := sharedBroker(t)
	raw := signedRequest(t, e.signer(t, e.user(t, devpki.KeyRSA, devpki.StatusValid)), "wsse", newInfo(), e.query(1))
	req, err := http.NewRequest(http.MethodPost, e.url, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	wantFault(t, resp.StatusCode, buf.Bytes(), 0, siobroker.CodeContentType)
}
