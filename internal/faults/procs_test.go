package faults

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The processes of the topology: the siobroker binary, built once without the race detector
// (the processes are what is under test), run as operating-system processes that the test
// kills with SIGKILL as a crash would.

// buildBinary builds cmd/siobroker into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command, to build the binary: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "siobroker")
	cmd := exec.Command(goTool, "build", "-o", bin, "./cmd/siobroker")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// repoRoot is the module's root, from this package's directory: the default configuration's
// relative paths resolve from it.
const repoRoot = "../.."

// proc is one started process, its output kept in memory.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startProc starts bin with args from the repository's root, with the environment plus env.
// The test's end stops it (SIGTERM, then SIGKILL) and logs the end of its output if the test
// failed.
func startProc(t *testing.T, bin, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = repoRoot
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("%s (pid %d) output, last lines:\n%s", name, p.cmd.Process.Pid, lastLines(p.output(), 40))
		}
	})
	return p
}

// waitFor waits until the process has printed line.
func (p *proc) waitFor(t *testing.T, line string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for !strings.Contains(p.output(), line) {
		select {
		case <-p.done:
			t.Fatalf("%s exited before printing %q:\n%s", p.name, line, lastLines(p.output(), 30))
		case <-deadline:
			t.Fatalf("%s did not print %q within %s:\n%s", p.name, line, within, lastLines(p.output(), 30))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL and waits until the process is gone.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still running 10 s after SIGKILL", p.name)
	}
}

// stop ends the process in order (SIGTERM), or kills it after 30 s.
func (p *proc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop within 30 s of SIGTERM; killed", p.name)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// countLines counts the lines of the output that contain all of words.
func (p *proc) countLines(words ...string) int {
	n := 0
	for _, line := range strings.Split(p.output(), "\n") {
		all := true
		for _, w := range words {
			if !strings.Contains(line, w) {
				all = false
				break
			}
		}
		if all {
			n++
		}
	}
	return n
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func must(t *testing.T, err error, what string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}
