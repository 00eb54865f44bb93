package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The three client programs of interop/clients, the tools they need, and how a run of one is
// judged and reported.

const clientTimeout = 90 * time.Second // one client run; the JVM's and the WSDL's loading included

// ciOrSkip fails the test under CI=true and skips it otherwise: a missing tool is a broken CI
// machine, but only an incomplete workstation. install says how to get it.
func ciOrSkip(t *testing.T, what, install string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s: required in CI (%s; .ci/run installs it): %v", what, install, err)
	}
	t.Skipf("%s: not available (%s): %v", what, install, err)
}

// toolPath is the path of a command on PATH, as xmlsec1Path in internal/cli: a test needing a
// missing one skips, or fails under CI=true.
func toolPath(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		ciOrSkip(t, name, "apt-get install "+debianPackage, err)
	}
	return path
}

// optionalTool is toolPath for a cross-check that is not the point of the test: without the tool
// the check is left out (logged), except under CI=true, where the test fails.
func optionalTool(t *testing.T, name, debianPackage string) (string, bool) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (apt-get install %s; .ci/run installs it): %v", name, debianPackage, err)
		}
		t.Logf("%s not installed (apt-get install %s): cross-check left out", name, debianPackage)
		return "", false
	}
	return path, true
}

// client is one of the client programs: argv is the command before its flags, environ what it
// needs in its environment, trust the flags that make it verify the broker's reply.
type client struct {
	name    string
	argv    []string
	environ []string
	trust   []string
}

// ---------------------------------------------------------------- node-soap

var nodeSOAPInstall struct {
	once     sync.Once
	nodePath string
	err      error
}

// nodeSOAP is the node-soap client, its pinned npm dependencies installed by install.sh (once per
// test binary; it is idempotent and fast when they are installed).
func nodeSOAP(t *testing.T) client {
	t.Helper()
	node := toolPath(t, "node", "nodejs npm")
	toolPath(t, "npm", "nodejs npm")
	dir := filepath.Join(env.root, "interop", "clients", "nodesoap")
	nodeSOAPInstall.once.Do(func() {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command("sh", filepath.Join(dir, "install.sh"))
		cmd.Dir = env.root
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			nodeSOAPInstall.err = fmt.Errorf("%s: %w\n%s", filepath.Join(dir, "install.sh"), err, tail(stderr.Bytes(), 20))
			return
		}
		nodeSOAPInstall.nodePath = strings.TrimSpace(stdout.String())
		if _, err := os.Stat(filepath.Join(nodeSOAPInstall.nodePath, "soap", "package.json")); err != nil {
			nodeSOAPInstall.err = fmt.Errorf("install.sh printed %q, which holds no soap package: %w", nodeSOAPInstall.nodePath, err)
		}
	})
	if nodeSOAPInstall.err != nil {
		ciOrSkip(t, "node-soap's npm dependencies", "interop/clients/nodesoap/install.sh with Node.js >= 20.19 and npm", nodeSOAPInstall.err)
	}
	ca, brokerCert := env.pkiPath(env.demo.CA), env.pkiPath(env.demo.Cert)
	return client{
		name:    "node-soap",
		argv:    []string{node, filepath.Join(dir, "client.js")},
		environ: []string{"NODE_PATH=" + nodeSOAPInstall.nodePath},
		trust:   []string{"--ca", ca, "--broker-cert", brokerCert},
	}
}

// ---------------------------------------------------------------- zeep

const debianPython = "/usr/bin/python3"

var zeepCheck struct {
	once sync.Once
	err  error
}

// zeep is the zeep client in one of its styles (binary, signature), run with Debian's Python,
// which has python3-zeep and python3-xmlsec.
func zeep(t *testing.T, style string) client {
	t.Helper()
	zeepCheck.once.Do(func() {
		out, err := exec.Command(debianPython, "-c", "import zeep, xmlsec").CombinedOutput()
		if err != nil {
			zeepCheck.err = fmt.Errorf("%s -c 'import zeep, xmlsec': %w %s", debianPython, err, tail(out, 5))
		}
	})
	if zeepCheck.err != nil {
		ciOrSkip(t, debianPython+" with zeep and xmlsec", "apt-get install python3-zeep python3-xmlsec", zeepCheck.err)
	}
	return client{
		name:  "zeep " + style,
		argv:  []string{debianPython, filepath.Join(env.root, "interop", "clients", "zeep", "client.py"), "--style", style},
		trust: []string{"--broker-cert", env.pkiPath(env.demo.Cert)},
	}
}

// ---------------------------------------------------------------- WSS4J

var wss4jJars = []string{
	"/usr/share/java/wss4j.jar",
	"/usr/share/java/xmlsec.jar",
	"/usr/share/java/commons-logging.jar",
	"/usr/share/java/slf4j-api.jar",
	"/usr/share/java/slf4j-jdk14.jar",
}

var wss4jBuild struct {
	once    sync.Once
	classes string
	err     error
}

// wss4j is the WSS4J client, compiled once per test binary. It verifies the reply as CXF's
// WSS4JInInterceptor would with action inAction, trusting the development CA (the reply carries
// the broker's certificate in a BinarySecurityToken).
func wss4j(t *testing.T, inAction string) client {
	t.Helper()
	javac := toolPath(t, "javac", "default-jdk-headless")
	java := toolPath(t, "java", "default-jdk-headless")
	for _, jar := range wss4jJars {
		if _, err := os.Stat(jar); err != nil {
			ciOrSkip(t, jar, "apt-get install libwss4j-java", err)
		}
	}
	cp := strings.Join(wss4jJars, string(os.PathListSeparator))
	wss4jBuild.once.Do(func() {
		classes := filepath.Join(env.tmp, "wss4j-classes")
		src := filepath.Join(env.root, "interop", "clients", "wss4j", "Client.java")
		out, err := exec.Command(javac, "-cp", cp, "-d", classes, src).CombinedOutput()
		if err != nil {
			wss4jBuild.err = fmt.Errorf("javac %s: %w\n%s", src, err, out)
			return
		}
		wss4jBuild.classes = classes
	})
	if wss4jBuild.err != nil {
		t.Fatal(wss4jBuild.err) // the tools are there: a compile error is the client's bug
	}
	return client{
		name: "WSS4J",
		// C1 only: these JVMs live for one request, and the C2 compiler's work would be wasted.
		argv:  []string{java, "-XX:TieredStopAtLevel=1", "-cp", wss4jBuild.classes + string(os.PathListSeparator) + cp, "Client"},
		trust: []string{"--ca", env.pkiPath(env.demo.CA), "--in-action", inAction},
	}
}

// ---------------------------------------------------------------- a run

// query is what a request asks; every client takes these flags under the same names.
type query struct {
	user     demoUser
	basis    int
	caseNo   string
	services []int
}

// result is the JSON object a client prints; the fields after Error are some clients' own.
type result struct {
	OK                     bool      `json:"ok"`
	Fault                  *fault    `json:"fault"`
	Status                 *string   `json:"status"`
	Services               []service `json:"services"`
	ReplySignatureVerified bool      `json:"replySignatureVerified"`
	VerifyError            *string   `json:"verifyError"`
	Error                  *string   `json:"error"`

	ReplyBodySigned   *bool    `json:"replyBodySigned"`   // zeep
	ParseError        *string  `json:"parseError"`        // zeep
	ParsedBy          *string  `json:"parsedBy"`          // zeep
	MessageID         *string  `json:"messageId"`         // zeep
	ReplyKeyReference *string  `json:"replyKeyReference"` // WSS4J
	ReplySignedIDs    []string `json:"replySignedIds"`    // WSS4J

	Windows []window `json:"windows"` // zeep, --operation maintenance
}

// window is one maintenance window of a GetMaintenanceWindows reply, as a client read it.
type window struct {
	Number      *int64  `json:"number"`
	Services    []int   `json:"services"`
	Start       string  `json:"start"`
	End         string  `json:"end"`
	Reason      string  `json:"reason"`
	AnnouncedAt string  `json:"announcedAt"`
	Emergency   bool    `json:"emergency"`
	Cancelled   *string `json:"cancelled"`
	State       string  `json:"state"`
}

type fault struct {
	Faultcode   string  `json:"faultcode"`
	Faultstring string  `json:"faultstring"`
	ErrorCode   *string `json:"errorCode"`
}

type service struct {
	No     any     `json:"no"`
	Status string  `json:"status"`
	Reason *string `json:"reason"`
}

// run is one execution of a client: what it was given, what it printed, and the exact bytes it
// posted and received.
type run struct {
	client    string
	args      []string
	exit      int
	runErr    error // the command could not be run, or timed out
	stdout    []byte
	stderr    []byte
	res       result
	jsonErr   error
	dur       time.Duration
	request   string // file: the bytes posted
	reply     string // file: the bytes received
	messageID string // the request's messageId, which the broker's log lines of the request carry
}

// send runs c for q with extra flags and parses its JSON.
func (c client) send(t *testing.T, q query, extra ...string) *run {
	t.Helper()
	dir := t.TempDir()
	r := &run{client: c.name, request: filepath.Join(dir, "request.xml"), reply: filepath.Join(dir, "reply.xml")}
	args := append(q.args(env.endpoint), "--dump-request", r.request, "--dump-reply", r.reply)
	c.exec(r, append(append(args, c.trust...), extra...))
	r.jsonErr = parseResult(r.stdout, &r.res)
	r.messageID = requestMessageID(r.request)
	if r.messageID == "" && r.res.MessageID != nil {
		r.messageID = *r.res.MessageID
	}
	return r
}

// args are the flags, common to every client, that post q to url as q's user.
func (q query) args(url string) []string {
	services := make([]string, len(q.services))
	for i, s := range q.services {
		services[i] = strconv.Itoa(s)
	}
	return []string{
		"--url", url,
		"--cert", env.pkiPath(q.user.Cert), "--key", env.pkiPath(q.user.Key),
		"--basis", strconv.Itoa(q.basis), "--case", q.caseNo,
		"--subject", env.subject, "--services", strings.Join(services, ","),
	}
}

// exec runs c with args and notes in r the command, its exit, its output and its duration.
func (c client) exec(r *run, args []string) {
	r.args = append(slices.Clone(c.argv), args...)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.args[0], r.args[1:]...)
	cmd.Dir = env.root
	cmd.Env = append(os.Environ(), c.environ...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r.dur = time.Since(start)
	r.stdout, r.stderr = stdout.Bytes(), stderr.Bytes()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.exit, r.runErr = -1, fmt.Errorf("timed out after %v", clientTimeout)
	case errors.As(err, &exit):
		r.exit = exit.ExitCode()
	case err != nil:
		r.exit, r.runErr = -1, err
	}
}

// parseResult reads the last non-empty line of stdout as the client's JSON object into res.
func parseResult(stdout []byte, res any) error {
	lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if last == "" {
		return errors.New("the client printed nothing on stdout")
	}
	if err := json.Unmarshal([]byte(last), res); err != nil {
		return fmt.Errorf("the client's stdout is not its JSON object: %w", err)
	}
	return nil
}

var messageIDRe = regexp.MustCompile(`<(?:[A-Za-z_][\w.-]*:)?messageId>\s*([^<\s]+)\s*</`)

// requestMessageID is the messageId of the request a client posted ("" when it posted none).
func requestMessageID(file string) string {
	raw, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	if m := messageIDRe.FindSubmatch(raw); m != nil {
		return string(m[1])
	}
	return ""
}

// report is everything needed to tell what went wrong: the command, the client's JSON and the
// tail of its stderr, and the broker's log lines for this request and its last lines.
func (r *run) report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "client %s: exit %d after %v", r.client, r.exit, r.dur.Round(time.Millisecond))
	if r.runErr != nil {
		fmt.Fprintf(&b, " (%v)", r.runErr)
	}
	fmt.Fprintf(&b, "\n  command: %s\n", strings.Join(r.args, " "))
	fmt.Fprintf(&b, "  JSON: %s\n", bytes.TrimSpace(r.stdout))
	if r.jsonErr != nil {
		fmt.Fprintf(&b, "  (%v)\n", r.jsonErr)
	}
	fmt.Fprintf(&b, "  stderr, last lines:\n%s\n", indent(tail(r.stderr, 15)))
	if ok, why := env.alive(); !ok {
		fmt.Fprintf(&b, "  %s\n", why)
	}
	fmt.Fprintf(&b, "  broker log, lines of messageId %s:\n%s\n", r.messageID, env.logLines(r.messageID))
	fmt.Fprintf(&b, "  broker log %s, last %d lines:\n%s", env.logPath, 15, env.logTail(15))
	return b.String()
}

// fail reports the problems found with r, if any, as one test error with r's report.
func (r *run) fail(t *testing.T, problems []string) bool {
	t.Helper()
	if len(problems) == 0 {
		return false
	}
	t.Errorf("%s:\n  - %s\n%s", r.client, strings.Join(problems, "\n  - "), r.report())
	return true
}

// expectAnswered checks that the request was answered (SCSS001) with every one of the wanted
// services ok, and that the client parsed the reply and verified its signature with its own
// library. It then checks the reply's wsu:Timestamp against the request's, verifies the reply
// with xmlsec1 and validates both messages against the XSDs the broker serves.
func expectAnswered(t *testing.T, r *run, services ...int) bool {
	t.Helper()
	var p []string
	if r.jsonErr != nil {
		p = append(p, r.jsonErr.Error())
	}
	if r.exit != 0 {
		p = append(p, fmt.Sprintf("exit status %d, want 0 (a reply received and parsed)", r.exit))
	}
	res := r.res
	if res.Fault != nil {
		p = append(p, fmt.Sprintf("a fault: %s %q (errorCode %s)", res.Fault.Faultcode, res.Fault.Faultstring, str(res.Fault.ErrorCode)))
	}
	if res.Error != nil {
		p = append(p, "error: "+*res.Error)
	}
	if got := str(res.Status); got != "SCSS001" {
		p = append(p, fmt.Sprintf("status %s, want SCSS001", got))
	}
	if !res.ReplySignatureVerified || res.VerifyError != nil {
		p = append(p, fmt.Sprintf("the reply's signature did not verify: %s", str(res.VerifyError)))
	}
	if !res.OK {
		p = append(p, `"ok" is false`)
	}
	var got []string
	for _, s := range res.Services {
		got = append(got, fmt.Sprint(s.No))
		if s.Status != "ok" {
			p = append(p, fmt.Sprintf("service %v: status %q (reason %s), want ok", s.No, s.Status, str(s.Reason)))
		}
	}
	var want []string
	for _, s := range services {
		want = append(want, strconv.Itoa(s))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		p = append(p, fmt.Sprintf("services answered %v, want %v", got, want))
	}
	if r.fail(t, p) {
		return false
	}
	p = append(p, checkTimestamps(r)...)
	p = append(p, crossCheckReply(t, r)...)
	p = append(p, validateMessages(t, r.request, r.reply)...)
	return !r.fail(t, p)
}

// expectFault checks that the client surfaced a SOAP fault with the broker's errorCode.
func expectFault(t *testing.T, r *run, code string) bool {
	t.Helper()
	var p []string
	if r.jsonErr != nil {
		p = append(p, r.jsonErr.Error())
	}
	if r.exit != 1 {
		p = append(p, fmt.Sprintf("exit status %d, want 1 (a SOAP fault)", r.exit))
	}
	switch {
	case r.res.Fault == nil:
		p = append(p, fmt.Sprintf("no fault, want errorCode %s", code))
	case str(r.res.Fault.ErrorCode) != code:
		p = append(p, fmt.Sprintf("fault errorCode %s (%q), want %s", str(r.res.Fault.ErrorCode), r.res.Fault.Faultstring, code))
	}
	if r.res.OK {
		p = append(p, `"ok" is true on a fault`)
	}
	if r.fail(t, p) {
		return false
	}
	return !r.fail(t, validateMessages(t, r.request, r.reply))
}

func str(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

// tail is the last n lines of b.
func tail(b []byte, n int) string {
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return "(empty)"
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }
