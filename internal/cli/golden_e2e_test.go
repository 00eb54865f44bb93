package cli

import (
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/e2e")

// volatile are the parts of a reply that change from run to run, and what they become.
var volatile = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`(<(messageId|correlationId|q:requestMessageId)>)[^<]*(</)`), "${1}MESSAGE-ID${3}"},
	{regexp.MustCompile(`(<responseDate>)[^<]*(</)`), "${1}DATE${2}"},
	{regexp.MustCompile(`(<ds:(DigestValue|SignatureValue|X509Certificate)>)[^<]*(</)`), "${1}ELIDED${3}"},
	{regexp.MustCompile(`(\sId=")[^"]*(")`), "${1}ID${2}"},
	{regexp.MustCompile(`(\swsu:Id=")[^"]*(")`), "${1}ID${2}"},
	{regexp.MustCompile(`(\sURI="#)[^"]*(")`), "${1}ID${2}"},
}

// normaliseReply blanks the volatile parts of a reply and indents it, so that a diff reads well.
func normaliseReply(t *testing.T, raw []byte) string {
	t.Helper()
	s := string(raw)
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.repl)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromString(s); err != nil {
		t.Fatalf("normalised reply does not parse: %v", err)
	}
	doc.Indent(2)
	out, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGoldenReplyShape compares the reply to a fixed query with testdata/e2e. The demo world is
// generated from a fixed seed and the development users' IINs are fixed, so only the volatile
// parts need blanking. Regenerate with: go test ./internal/cli -run TestGoldenReplyShape -update
func TestGoldenReplyShape(t *testing.T) {
	e := sharedBroker(t)
	u := findUserByRole(t, e.manifest, 1)
	q := e.query(1, 5, 11, 37)
	q.Purpose = "golden shape"
	// The case is qualified under 190 and 216: naming 190 keeps a denied service (App. 2 fn. 2) in
	// the shape.
	q.Article = "190"
	for _, tc := range []struct {
		placement signing.Placement
		file      string
	}{
		{signing.PlacementWSSE, "reply-shape.golden.xml"},
		{signing.PlacementEnveloped, "reply-shape-enveloped.golden.xml"},
	} {
		t.Run(string(tc.placement), func(t *testing.T) {
			raw := signedRequest(t, e.signer(t, u), tc.placement, newInfo(), q)
			status, reply := post(t, e.url, raw)
			if status != http.StatusOK {
				t.Fatalf("HTTP %d\n%s", status, truncate(reply))
			}
			verifiedReply(t, reply, filepath.Join(e.pki, devpki.CAFile))
			got := normaliseReply(t, reply)
			path := filepath.Join("..", "..", "testdata", "e2e", tc.file)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("reply shape differs from %s (run with -update if the change is intended):\n%s",
					path, lineDiff(string(want), got))
			}
		})
	}
}

func findUserByRole(t *testing.T, m *devpki.Manifest, role int) devpki.User {
	t.Helper()
	for _, u := range m.Users {
		if u.Role == role && u.Status == devpki.StatusValid {
			return u
		}
	}
	t.Fatalf("no valid user with role %d", role)
	return devpki.User{}
}

// lineDiff shows the first differing lines of want and got, with a little context.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 20; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  - " + wl + "\n  + " + gl + "\n")
			shown++
		}
	}
	return b.String()
}
