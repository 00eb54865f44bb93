package cli

// Shared harness of the end-to-end tests: one broker per test binary (the development PKI costs
// RSA key generation), started lazily and closed by TestMain.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters/demo"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/routing/msgauth"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// offsetClock is the wall clock moved by a fixed offset, in Astana time.
type offsetClock struct{ d time.Duration }

func (c offsetClock) Now() time.Time { return time.Now().Add(c.d).In(siobroker.Astana) }

// e2eBroker is a started broker and what the tests need to talk to it.
type e2eBroker struct {
	b        *app.Broker
	cfg      config.Broker
	base     string // http://127.0.0.1:PORT
	opsBase  string // the operator's listener of a broker process (b is nil); see ops
	url      string // base + endpoint
	pki      string
	manifest *devpki.Manifest
	subject  string // a demo person's IIN
}

var (
	sharedOnce   sync.Once
	shared       *e2eBroker
	sharedErr    error
	sharedDir    string
	closers      []func()
	closersMu    sync.Mutex
	otherPKIOnce sync.Once
	otherPKI     string
	otherPKIErr  error
	otherPKIOut  string
)

func TestMain(m *testing.M) {
	// The commands read SIOBROKER_* as serve does: a developer's own variables would move the
	// tests' stores and queues. Tests that need one set it with t.Setenv.
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "SIOBROKER_") {
			os.Unsetenv(name)
		}
	}
	code := m.Run()
	closersMu.Lock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	closersMu.Unlock()
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

func addCloser(f func()) {
	closersMu.Lock()
	closers = append(closers, f)
	closersMu.Unlock()
}

func testLogger() *slog.Logger {
	// SIO_TEST_LOG=debug|info keeps the in-process brokers' whole log, to follow one message
	// through a failed end-to-end test.
	if level := os.Getenv("SIO_TEST_LOG"); level != "" {
		var l slog.Level
		if err := l.UnmarshalText([]byte(level)); err == nil {
			return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
		}
	}
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// ops is the broker's operator listener (/metrics, /readyz), http://127.0.0.1:PORT.
func (e *e2eBroker) ops(t *testing.T) string {
	t.Helper()
	if e.b != nil {
		return e.b.OperatorURL()
	}
	if e.opsBase == "" {
		t.Fatal("a broker process without its operator listener's address")
	}
	return e.opsBase
}

// testConfig is the embedded default under --dev (the tests' brokers share a development PKI)
// over dataDir, on free loopback ports: the SOAP listener and the operator's.
func testConfig(dataDir string) config.Broker {
	cfg := config.Defaults()
	cfg.Dev = true
	cfg.Listen = "127.0.0.1:0"
	cfg.Operator.Listen = "127.0.0.1:0"
	cfg.DataDir = dataDir
	cfg.Rights = "../../configs/rights.yaml"
	cfg.Routing.RoutesFile = "../../configs/routes.yaml"
	cfg.Maintenance = "../../configs/maintenance.yaml"
	cfg.Incidents.EmergencyPlans = "../../configs/emergencies.yaml"
	return cfg
}

// startE2E starts a broker over dataDir (which may already hold a PKI in dataDir/pki).
func startE2E(dataDir string, clock siobroker.Clock) (*e2eBroker, error) {
	return startE2EWith(dataDir, clock, nil)
}

// startE2EWith starts a broker over dataDir with the test configuration changed by edit.
func startE2EWith(dataDir string, clock siobroker.Clock, edit func(*config.Broker)) (*e2eBroker, error) {
	cfg := testConfig(dataDir)
	if edit != nil {
		edit(&cfg)
	}
	// startBroker's context bounds the broker's life (router, pruning), not only its start, so it
	// is not a timeout here; Close stops it.
	b, err := app.Start(context.Background(), cfg, clock, testLogger())
	if err != nil {
		return nil, err
	}
	m, err := devpki.LoadManifest(b.PKIDir())
	if err != nil {
		b.Close()
		return nil, err
	}
	world := demo.Generate(cfg.Demo.Seed, cfg.Demo.People, cfg.Demo.Organisations)
	e := &e2eBroker{
		b: b, cfg: cfg, base: b.BaseURL(), url: b.BaseURL() + cfg.Endpoint,
		pki: b.PKIDir(), manifest: m, subject: world.People()[0].IIN,
	}
	return e, nil
}

// sharedBroker returns the broker of this test binary.
func sharedBroker(t *testing.T) *e2eBroker {
	t.Helper()
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "siobroker-e2e-")
		if sharedErr != nil {
			return
		}
		start := time.Now()
		shared, sharedErr = startE2E(sharedDir, siobroker.SystemClock{})
		if sharedErr == nil {
			b := shared.b
			addCloser(func() { b.Close() })
			if testing.Verbose() {
				fmt.Fprintf(os.Stderr, "e2e: shared broker on %s ready in %s\n", shared.base, time.Since(start).Round(time.Millisecond))
			}
		}
	})
	if sharedErr != nil {
		t.Fatalf("start the shared broker: %v", sharedErr)
	}
	return shared
}

// skewedBroker starts a second broker whose clock runs d ahead of the wall clock.
func skewedBroker(t *testing.T, d time.Duration) *e2eBroker {
	t.Helper()
	return privateBroker(t, offsetClock{d})
}

// privateBroker starts a broker of the test's own on clock, for tests that change state the
// other tests rely on (the user registry, the clock). It reuses the shared broker's PKI (copied
// into its own data directory, e.cfg.DataDir), so that no key is generated; serve seeds the demo
// users into its fresh registry. It is closed when the test ends.
func privateBroker(t *testing.T, clock siobroker.Clock) *e2eBroker {
	t.Helper()
	src := sharedBroker(t)
	dir := t.TempDir()
	copyDir(t, src.pki, filepath.Join(dir, "pki"))
	e, err := startE2E(dir, clock)
	if err != nil {
		t.Fatalf("start a private broker: %v", err)
	}
	t.Cleanup(func() {
		if err := e.b.Close(); err != nil {
			t.Errorf("close the private broker: %v", err)
		}
	})
	return e
}

// foreignPKI writes a second, unrelated development PKI through `siobroker devpki --out` (once per
// binary) and returns its directory.
func foreignPKI(t *testing.T) (dir, stdout string) {
	t.Helper()
	otherPKIOnce.Do(func() {
		base, err := os.MkdirTemp("", "siobroker-e2e-other-")
		if err != nil {
			otherPKIErr = err
			return
		}
		addCloser(func() { os.RemoveAll(base) })
		otherPKI = filepath.Join(base, "pki")
		var out, errb bytes.Buffer
		if code := Main(context.Background(), []string{"devpki", "--out", otherPKI}, &out, &errb); code != 0 {
			otherPKIErr = fmt.Errorf("devpki exited %d: %s", code, errb.String())
		}
		otherPKIOut = out.String()
	})
	if otherPKIErr != nil {
		t.Fatal(otherPKIErr)
	}
	return otherPKI, otherPKIOut
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// user returns the first demo user with the given key type and status.
func (e *e2eBroker) user(t *testing.T, keyType, status string) devpki.User {
	t.Helper()
	return findUser(t, e.manifest, keyType, status)
}

func findUser(t *testing.T, m *devpki.Manifest, keyType, status string) devpki.User {
	t.Helper()
	for _, u := range m.Users {
		if u.KeyType == keyType && u.Status == status {
			return u
		}
	}
	t.Fatalf("no %s user with status %s in the manifest", keyType, status)
	return devpki.User{}
}

func (e *e2eBroker) signer(t *testing.T, u devpki.User) *signing.Signer {
	t.Helper()
	s, err := signing.LoadSigner(filepath.Join(e.pki, u.Cert), filepath.Join(e.pki, u.Key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runSend runs `siobroker send` against e with the shared flags plus extra.
func runSend(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = Main(ctx, append([]string{"send"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// prosecutorCase is the first demo case of the role-1 prosecutor, the criminal case the demo
// scripts send; e.query asks under it.
const prosecutorCase = "261500031000123"

// sendArgs are the flags of a send as user u, under u's first demo criminal case; extra flags are
// appended (later flags win, so caseFlags of another case replaces the whole case).
func (e *e2eBroker) sendArgs(u devpki.User, extra ...string) []string {
	args := []string{
		"--url", e.url, "--user", u.IIN, "--pki", e.pki, "--timeout", "20s",
		"--subject", e.subject, "--services", "1",
	}
	if c, ok := firstCase(u, siobroker.BasisCriminal); ok {
		args = append(args, caseFlags(c)...)
	} else {
		args = append(args, "--basis", "1", "--case", prosecutorCase)
	}
	return append(args, extra...)
}

// caseFlags are the send flags of case c: its basis and every case reference field, the empty
// ones too, so that they replace any case flags given before.
func caseFlags(c devpki.Case) []string {
	return []string{
		"--basis", fmt.Sprint(int(c.Basis)), "--case", c.Number,
		"--instruction-no", c.InstructionNo, "--requesting-body", c.RequestingBody, "--letter-no", c.CoveringLetterNo,
		"--year", c.Year, "--court", c.Court,
	}
}

// firstCase returns u's first demo case under basis b.
func firstCase(u devpki.User, b siobroker.Basis) (devpki.Case, bool) {
	for _, c := range u.Cases {
		if c.Basis == b {
			return c, true
		}
	}
	return devpki.Case{}, false
}

// userCase returns u's first demo case under basis b, and fails the test if u has none.
func userCase(t *testing.T, u devpki.User, b siobroker.Basis) devpki.Case {
	t.Helper()
	c, ok := firstCase(u, b)
	if !ok {
		t.Fatalf("demo user %s (role %d) has no case under basis %d", u.IIN, u.Role, int(b))
	}
	return c
}

// caseUser returns the first valid demo user with a case under basis b, and that case. (Demo
// users have cases only under bases their role may use.)
func (e *e2eBroker) caseUser(t *testing.T, b siobroker.Basis) (devpki.User, devpki.Case) {
	t.Helper()
	for _, u := range e.manifest.Users {
		if c, ok := firstCase(u, b); ok && u.Status == devpki.StatusValid {
			return u, c
		}
	}
	t.Fatalf("no valid demo user has a case under basis %d", int(b))
	return devpki.User{}, devpki.Case{}
}

// newInfo is a fresh requestInfo dated now by the wall clock.
func newInfo() siobroker.RequestInfo {
	return siobroker.RequestInfo{
		MessageID: uuid.NewString(), ServiceID: "SIO_PSO_QUERY",
		MessageDate: siobroker.SystemClock{}.Now(), SenderID: "SIO_PSO_E2E",
	}
}

// query is a query under the role-1 prosecutor's first criminal case: only that user (the first
// valid RSA user) may send it. queryFor asks under another user's case.
func (e *e2eBroker) query(services ...int) siobroker.Query {
	return e.queryFor(devpki.Case{Basis: siobroker.BasisCriminal, Number: prosecutorCase}, services...)
}

// queryFor is a query under case c.
func (e *e2eBroker) queryFor(c devpki.Case, services ...int) siobroker.Query {
	return siobroker.Query{
		Basis:    c.Basis,
		Case:     c.Ref(),
		Subject:  siobroker.Subject{IIN: e.subject},
		Services: services,
		Purpose:  "e2e",
	}
}

// signedRequest builds and signs a request; a nil signer leaves it unsigned.
func signedRequest(t *testing.T, s *signing.Signer, p signing.Placement, info siobroker.RequestInfo, q siobroker.Query) []byte {
	t.Helper()
	doc := soap.NewRequest(info, q)
	if s != nil {
		if err := s.Sign(doc, p); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := soap.Serialize(doc)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// do sends one HTTP request and returns the status, the headers and the body.
func do(t *testing.T, method, url string, body io.Reader) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
		req.Header.Set("SOAPAction", `""`)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func post(t *testing.T, url string, body []byte) (int, []byte) {
	t.Helper()
	status, _, b := do(t, http.MethodPost, url, bytes.NewReader(body))
	return status, b
}

// wantFault checks that body is a SOAP fault with code (and, if given, status) and returns it.
func wantFault(t *testing.T, status int, body []byte, wantStatus int, code siobroker.Code) *siobroker.Error {
	t.Helper()
	f, ok := soap.ParseFault(body)
	if !ok {
		t.Fatalf("want fault %s, got HTTP %d and no fault:\n%s", code, status, truncate(body))
	}
	if f.Code != code {
		t.Fatalf("want fault %s, got %s: %s", code, f.Code, f.Message)
	}
	if wantStatus != 0 && status != wantStatus {
		t.Errorf("fault %s came with HTTP %d, want %d", code, status, wantStatus)
	}
	return f
}

func truncate(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

// verifiedReply checks the broker's signature on a reply with a reply verifier over ca (the PKI's
// ca.pem) and returns the placement and the signed result.
func verifiedReply(t *testing.T, raw []byte, ca string) (signing.Placement, soap.ResponseInfo, soap.Result) {
	t.Helper()
	trust, err := signing.LoadTrustStore(signing.TrustConfig{RootFiles: []string{ca}})
	if err != nil {
		t.Fatal(err)
	}
	doc, _, err := soap.ReadResponseEnvelope(bytes.NewReader(raw), "text/xml; charset=utf-8",
		soap.Limits{MaxBytes: int64(len(raw)) + 1, MaxElements: 1 << 20, MaxDepth: 64})
	if err != nil {
		t.Fatalf("reply is not an envelope: %v\n%s", err, truncate(raw))
	}
	v, err := mustVerifier(t, signing.VerifierConfig{Trust: trust, AnySigner: true}).Verify(context.Background(), doc, time.Now())
	if err != nil {
		t.Fatalf("reply signature does not verify: %v", err)
	}
	if v.Certificate.Subject.CommonName != devpki.BrokerCommonName {
		t.Errorf("reply signed by %q, want %q", v.Certificate.Subject.CommonName, devpki.BrokerCommonName)
	}
	body := v.Signed
	if v.Placement == signing.PlacementEnveloped {
		body = soap.Body(doc)
	}
	info, res, err := soap.ParseResponse(body)
	if err != nil {
		t.Fatalf("reply does not parse: %v", err)
	}
	if v.Placement == signing.PlacementEnveloped {
		if res, err = soap.ParseResult(v.Signed); err != nil {
			t.Fatalf("signed result does not parse: %v", err)
		}
	}
	return v.Placement, info, res
}

func hasField(r siobroker.ServiceResult, name string) bool {
	for _, rec := range r.Records {
		for _, f := range rec.Fields {
			if f.Name == name {
				return true
			}
		}
	}
	return false
}

// messageID reads requestInfo/messageId of a serialized request.
func messageID(t *testing.T, raw []byte) string {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	el := doc.FindElement("//requestInfo/messageId")
	if el == nil {
		t.Fatalf("no messageId in\n%s", truncate(raw))
	}
	return strings.TrimSpace(el.Text())
}

// routesWithDefaultTimeout writes the shipped routing table with default_timeout d into dir and
// returns its path.
func routesWithDefaultTimeout(t testing.TB, dir string, d time.Duration) string {
	t.Helper()
	return routesEdited(t, dir, "default_timeout: 10s", "default_timeout: "+d.String())
}

// routesEdited writes the shipped routing table with its line old replaced by new into dir and
// returns its path.
func routesEdited(t testing.TB, dir, old, new string) string {
	t.Helper()
	b, err := os.ReadFile("../../configs/routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), old, new, 1)
	if text == string(b) {
		t.Fatalf("configs/routes.yaml has no %q", old)
	}
	path := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// adapterKey writes the transport key of adapter (the adapter the routing table routes its
// services to) with `siobroker transport-key derive`, from the master key at masterFile, which is
// made here if no broker has made it yet (a broker whose amqp.message_key_file, or data
// directory's transport.key, it is reads it then). It returns the file, for an adapter config's
// transport.message_key_file.
func adapterKey(t *testing.T, masterFile, adapter string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(masterFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := msgauth.LoadOrCreateMaster(masterFile); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), adapter+".key")
	var stdout, stderr strings.Builder
	if code := Main(context.Background(), []string{"transport-key", "derive", "--master", masterFile, "--adapter", adapter, "--out", out},
		&stdout, &stderr); code != exitOK {
		t.Fatalf("transport-key derive exited %d: %s", code, stderr.String())
	}
	return out
}
