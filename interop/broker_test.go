package interop

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The broker under test: one siobroker process for the whole package, started by TestMain.

const (
	endpointPath = "/SyncChannel/v10" // configs/broker.yaml: endpoint
	readyTimeout = 90 * time.Second   // build excluded; the first start creates the development PKI
	stopTimeout  = 15 * time.Second   // SIGTERM, then SIGKILL
	logTailLines = 25
)

// env is set by TestMain before any test runs and read only afterwards.
var env *broker

type broker struct {
	root     string // the module root: the working directory of the broker and of the clients
	tmp      string // removed at the end
	bin      string
	data     string
	pki      string
	base     string // http://127.0.0.1:PORT
	ops      string // the operator listener's base, http://127.0.0.1:PORT: /readyz
	endpoint string // base + endpointPath
	logPath  string // the broker's standard output and error
	demo     demoPKI
	subject  string // a demo subject IIN the adapters know

	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited; waitErr is then set
	// waitErr is written before exited is closed and read only after it is.
	waitErr error
}

// demoPKI is <data>/pki/demo.json, as `siobroker devpki` writes it.
type demoPKI struct {
	Users []demoUser `json:"users"`
	CA    string     `json:"ca"`
	CRL   string     `json:"crl"`
	Cert  string     `json:"brokerCert"`
}

type demoUser struct {
	IIN     string     `json:"iin"`
	Name    string     `json:"name"`
	Role    int        `json:"role"`
	Cert    string     `json:"cert"`
	Key     string     `json:"key"`
	KeyType string     `json:"keyType"`
	Status  string     `json:"status"`
	Cases   []demoCase `json:"cases"`
}

type demoCase struct {
	Basis            int    `json:"basis"`
	Number           string `json:"number"`
	InstructionNo    string `json:"instructionNo"`
	RequestingBody   string `json:"requestingBody"`
	CoveringLetterNo string `json:"coveringLetterNo"`
	Year             string `json:"year"`
	Court            string `json:"court"`
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "interop: %v\n", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "siobroker-interop-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "interop: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	b := &broker{root: root, tmp: tmp, bin: filepath.Join(tmp, "siobroker")}
	start := time.Now()
	if out, err := goCommand(root, "build", "-o", b.bin, "./cmd/siobroker"); err != nil {
		fmt.Fprintf(os.Stderr, "interop: go build ./cmd/siobroker: %v\n%s\n", err, out)
		return 1
	}
	built := time.Since(start)
	if err := b.start(); err != nil {
		fmt.Fprintf(os.Stderr, "interop: starting the broker: %v\n", err)
		if b.logPath != "" {
			fmt.Fprintf(os.Stderr, "broker log (%s), last lines:\n%s\n", b.logPath, b.logTail(logTailLines))
		}
		b.stop()
		return 1
	}
	if testing.Verbose() {
		fmt.Printf("interop: broker built in %v, ready %v later at %s (data %s)\n",
			built.Round(time.Millisecond), (time.Since(start) - built).Round(time.Millisecond), b.endpoint, b.data)
	}
	env = b

	code := m.Run()

	if err := b.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "interop: stopping the broker: %v\nbroker log, last lines:\n%s\n", err, b.logTail(logTailLines))
		if code == 0 {
			code = 1
		}
	}
	return code
}

// moduleRoot is the directory of this module's go.mod: `go env GOMOD`, else the parent directory
// (go test runs a package's tests in the package's directory).
func moduleRoot() (string, error) {
	if out, err := goCommand(".", "env", "GOMOD"); err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod), nil
		}
	}
	parent, err := filepath.Abs("..")
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(parent, "go.mod")); err != nil {
		return "", fmt.Errorf("no module root: `go env GOMOD` gave nothing and %s has no go.mod", parent)
	}
	return parent, nil
}

// goCommand runs the go command (go test puts GOROOT/bin first in PATH) in dir.
func goCommand(dir string, args ...string) ([]byte, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("the go command: %w", err)
	}
	cmd := exec.Command(goTool, args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

// start runs `siobroker serve --dev` on a free loopback port (and its operator listener on
// another) with a fresh data directory, from the module root so that the config's relative paths
// (configs/...) resolve, and waits until /readyz answers 200 and the development PKI is written.
// A port taken between choosing and binding it is retried.
func (b *broker) start() error {
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		opsPort, err := freePort()
		if err != nil {
			return err
		}
		b.ops = fmt.Sprintf("http://127.0.0.1:%d", opsPort)
		b.data = filepath.Join(b.tmp, "data")
		if err := os.RemoveAll(b.data); err != nil {
			return err
		}
		b.pki = filepath.Join(b.data, "pki")
		b.base = fmt.Sprintf("http://127.0.0.1:%d", port)
		b.endpoint = b.base + endpointPath
		b.logPath = filepath.Join(b.tmp, fmt.Sprintf("broker-%d.log", attempt))
		lastErr = b.startOnce(port, opsPort)
		if lastErr == nil {
			return b.loadDemo()
		}
		b.stop()
		if !strings.Contains(b.logTail(logTailLines), "address already in use") {
			return lastErr
		}
	}
	return lastErr
}

func (b *broker) startOnce(port, opsPort int) error {
	logFile, err := os.Create(b.logPath)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command(b.bin, "serve", "--dev",
		"--data", b.data,
		"--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--config", filepath.Join(b.root, "configs", "broker.yaml"))
	cmd.Dir = b.root
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(brokerEnviron(), fmt.Sprintf("SIOBROKER_OPERATOR_LISTEN=127.0.0.1:%d", opsPort))
	setChildAttrs(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	b.cmd = cmd
	b.exited = make(chan struct{})
	go func() {
		b.waitErr = cmd.Wait()
		close(b.exited)
	}()

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-b.exited:
			return fmt.Errorf("the broker exited before it was ready: %v", b.waitErr)
		default:
		}
		if b.ready(client) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the broker was not ready within %v (GET %s/readyz and %s)", readyTimeout, b.ops, filepath.Join(b.pki, "demo.json"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *broker) ready(client *http.Client) bool {
	resp, err := client.Get(b.ops + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	_, err = os.Stat(filepath.Join(b.pki, "demo.json"))
	return err == nil
}

// brokerEnviron is the test's environment without SIOBROKER_* variables, which would override the
// shipped configuration.
func brokerEnviron() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "SIOBROKER_") })
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// stop sends SIGTERM and, if the broker has not exited within stopTimeout, SIGKILL. It returns an
// error when the broker had to be killed or exited with an error status (a crash during the tests
// shows here too).
func (b *broker) stop() error {
	if b.cmd == nil {
		return nil
	}
	defer func() { b.cmd = nil }()
	select {
	case <-b.exited:
		return fmt.Errorf("the broker had exited during the tests: %v", b.waitErr)
	default:
	}
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-b.exited:
		return b.waitErr
	case <-time.After(stopTimeout):
		_ = b.cmd.Process.Kill()
		<-b.exited
		return fmt.Errorf("the broker did not exit within %v of SIGTERM; killed", stopTimeout)
	}
}

// alive reports whether the broker process still runs, with how it exited when not.
func (b *broker) alive() (bool, string) {
	select {
	case <-b.exited:
		return false, fmt.Sprintf("the broker process has exited: %v", b.waitErr)
	default:
		return true, ""
	}
}

func (b *broker) loadDemo() error {
	raw, err := os.ReadFile(filepath.Join(b.pki, "demo.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &b.demo); err != nil {
		return fmt.Errorf("demo.json: %w", err)
	}
	subjects, err := os.ReadFile(filepath.Join(b.data, "demo-subjects.json"))
	if err != nil {
		return err
	}
	var s struct {
		People []struct {
			ID string `json:"id"`
		} `json:"people"`
	}
	if err := json.Unmarshal(subjects, &s); err != nil {
		return fmt.Errorf("demo-subjects.json: %w", err)
	}
	// The README's subject, when the demo world still has it (demo.seed 1); else the first person.
	for _, p := range s.People {
		if p.ID == "810803325634" {
			b.subject = p.ID
			return nil
		}
	}
	if len(s.People) == 0 {
		return errors.New("demo-subjects.json lists no people")
	}
	b.subject = s.People[0].ID
	return nil
}

// pkiPath is a path of demo.json (relative to the PKI directory) made absolute.
func (b *broker) pkiPath(rel string) string { return filepath.Join(b.pki, rel) }

// logTail is the last n lines of the broker's output.
func (b *broker) logTail(n int) string {
	raw, err := os.ReadFile(b.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read the broker log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// logLines are the lines of the broker's output that contain s (a client's messageId, which the
// broker's log lines of that request carry).
func (b *broker) logLines(s string) string {
	if s == "" {
		return "  (no messageId known)"
	}
	raw, err := os.ReadFile(b.logPath)
	if err != nil {
		return fmt.Sprintf("  (cannot read the broker log: %v)", err)
	}
	var out []string
	for line := range strings.SplitSeq(string(raw), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return "  (none)"
	}
	return "  " + strings.Join(out, "\n  ")
}

// logOnFailure prints the broker log's tail when t fails, to make failures diagnosable.
func logOnFailure(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			state := "the broker process is running"
			if ok, why := env.alive(); !ok {
				state = why
			}
			t.Logf("%s; broker log %s, last %d lines:\n%s", state, env.logPath, logTailLines, env.logTail(logTailLines))
		}
	})
}

// user is the demo user with this IIN; the test fails when demo.json no longer has it.
func (b *broker) user(t *testing.T, iin string) demoUser {
	t.Helper()
	for _, u := range b.demo.Users {
		if u.IIN == iin {
			return u
		}
	}
	t.Fatalf("demo user %s is not in %s", iin, filepath.Join(b.pki, "demo.json"))
	return demoUser{}
}

// userWhere is the first demo user for which ok holds.
func (b *broker) userWhere(t *testing.T, what string, ok func(demoUser) bool) demoUser {
	t.Helper()
	for _, u := range b.demo.Users {
		if ok(u) {
			return u
		}
	}
	t.Fatalf("no demo user in %s is %s", filepath.Join(b.pki, "demo.json"), what)
	return demoUser{}
}

// plainCase is the user's first case of this basis that has a number and nothing else (the ЕРДР
// form for basis 1).
func (u demoUser) plainCase(t *testing.T, basis int) string {
	t.Helper()
	for _, c := range u.Cases {
		if c.Basis == basis && c.InstructionNo == "" && c.RequestingBody == "" && c.CoveringLetterNo == "" && c.Year == "" && c.Court == "" {
			return c.Number
		}
	}
	t.Fatalf("demo user %s has no plain case of basis %d in demo.json", u.IIN, basis)
	return ""
}

func (u demoUser) hasCase(basis int, number string) bool {
	for _, c := range u.Cases {
		if c.Basis == basis && c.Number == number {
			return true
		}
	}
	return false
}
