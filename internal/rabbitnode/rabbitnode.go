// Package rabbitnode runs a private RabbitMQ node for a test, from the rabbitmq-server installed
// on the machine, so that a test may stop, kill and restart RabbitMQ without disturbing the
// shared server at 127.0.0.1:5672 that other test packages use at the same time.
//
// The node gets its own name (sio-test-<random>@localhost), two free loopback ports (AMQP and
// Erlang distribution), and its own home (Erlang cookie), database, logs, configuration and
// empty plugin list, all in the test's temporary directory. It runs in the foreground as a child
// process in its own process group: Stop sends SIGTERM (RabbitMQ's start script turns it into an
// orderly shutdown), Kill sends SIGKILL to the whole group, and Start boots it again on the same
// port and database, so durable queues and persistent messages survive as they would on a real
// server. The node registers with the machine's epmd; when none runs, Erlang starts one, which
// outlives the test as any epmd does.
//
// When rabbitmq-server is not installed the test is skipped, or fails when CI=true.
package rabbitnode

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Time limits. A node boots in 5-10 s on a quiet 2-core machine; other test packages compete
// for the cores.
const (
	BootTimeout = 120 * time.Second
	StopTimeout = 60 * time.Second
)

// Node is a private RabbitMQ node.
type Node struct {
	t       testing.TB
	name    string
	port    int
	dir     string
	script  string
	env     []string
	logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	starts  int
	logFile *os.File
}

// Start boots a private node and waits until it accepts AMQP logins. The node is stopped when
// the test ends.
func Start(t testing.TB) *Node {
	t.Helper()
	n := newNode(t, "")
	n.Start()
	return n
}

// newNode prepares a node without starting it; with cookie not empty, it is the node's Erlang
// cookie (the nodes of a cluster share theirs), else Erlang makes one on the first start.
func newNode(t testing.TB, cookie string) *Node {
	t.Helper()
	script, err := findServer()
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("rabbitmq-server is required when CI=true: %v", err)
		}
		t.Skipf("rabbitmq-server not installed: %v", err)
	}
	dir := t.TempDir()
	amqpPort, distPort := freePort(t), freePort(t)
	n := &Node{
		t: t, script: script, dir: dir, port: amqpPort,
		name:    "sio-test-" + strconv.FormatUint(rand.Uint64(), 36) + "@localhost",
		logPath: filepath.Join(dir, "node.log"),
	}
	for _, sub := range []string{"home", "mnesia", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf("listeners.tcp.1 = 127.0.0.1:%d\nloopback_users.guest = true\n", amqpPort)
	files := map[string]string{
		"rabbitmq.conf":     conf,
		"rabbitmq-env.conf": "# the machine's /etc/rabbitmq/rabbitmq-env.conf is not read\n",
		"enabled_plugins":   "[].\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n.env = append(cleanEnv(),
		"HOME="+filepath.Join(dir, "home"), // the Erlang cookie is created here
		"RABBITMQ_NODENAME="+n.name,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(amqpPort),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(distPort),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_LOGS=-", // to the child's stdout, kept in node.log
		"ERL_EPMD_ADDRESS=127.0.0.1",
		// Distribution listens on loopback only; the machine's config file says the same.
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
	)
	if cookie != "" {
		// Erlang refuses a cookie file that others may read.
		if err := os.WriteFile(filepath.Join(dir, "home", ".erlang.cookie"), []byte(cookie), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(n.cleanup)
	return n
}

// URL is the node's AMQP URL (guest, loopback only).
func (n *Node) URL() string { return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", n.port) }

// URLAs is the node's AMQP URL for another user than guest, on virtual host vhost (see Ctl to add
// them).
func (n *Node) URLAs(user, password, vhost string) string {
	return (&url.URL{Scheme: "amqp", User: url.UserPassword(user, password), Host: n.Addr(), Path: "/" + vhost}).String()
}

// Addr is the node's AMQP address.
func (n *Node) Addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

// Name is the Erlang node name.
func (n *Node) Name() string { return n.name }

// Start boots the node (again, after Stop or Kill) and waits until it accepts AMQP logins.
func (n *Node) Start() {
	n.t.Helper()
	if err := n.boot(); err != nil {
		n.t.Fatal(err)
	}
}

// boot is Start, returning its failure instead of failing the test, so that the nodes of a
// cluster may boot side by side (t.Fatal belongs to the test's goroutine).
func (n *Node) boot() error {
	n.mu.Lock()
	if n.cmd != nil {
		n.mu.Unlock()
		return errors.New("rabbitnode: Start while the node runs")
	}
	n.starts++
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	fmt.Fprintf(f, "\n==== start %d at %s ====\n", n.starts, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(n.script)
	cmd.Dir = n.dir
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, so that Kill reaches the Erlang VM and its helpers, not only the
	// start script.
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		n.mu.Unlock()
		return fmt.Errorf("rabbitnode: start %s: %w", n.script, err)
	}
	exited := make(chan struct{})
	n.cmd, n.exited, n.logFile = cmd, exited, f
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	n.mu.Unlock()

	start := time.Now()
	deadline := start.Add(BootTimeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("rabbitnode: %s exited while booting:\n%s", n.name, n.LogTail(40))
		default:
		}
		if err := n.login(); err == nil {
			break
		} else if time.Now().After(deadline) {
			return fmt.Errorf("rabbitnode: %s: no AMQP login within %s (%w):\n%s", n.name, BootTimeout, err, n.LogTail(40))
		}
		time.Sleep(200 * time.Millisecond)
	}
	n.t.Logf("rabbitnode: %s accepts logins on %s after %s", n.name, n.Addr(), time.Since(start).Round(time.Millisecond))
	return nil
}

func (n *Node) login() error {
	conn, err := amqp091.DialConfig(n.URL(), amqp091.Config{Dial: amqp091.DefaultDial(2 * time.Second)})
	if err != nil {
		return err
	}
	return conn.Close()
}

// Stop shuts the node down in order (SIGTERM) and waits until it has exited, and its port is
// closed.
func (n *Node) Stop() {
	n.t.Helper()
	n.signal(syscall.SIGTERM, false)
}

// Kill kills the node (SIGKILL to its process group): no orderly shutdown, as in a crash or
// an OOM kill.
func (n *Node) Kill() {
	n.t.Helper()
	n.signal(syscall.SIGKILL, true)
}

func (n *Node) signal(sig syscall.Signal, group bool) {
	n.t.Helper()
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		n.t.Fatal("rabbitnode: the node is not running")
	}
	pid := cmd.Process.Pid
	if group {
		_ = syscall.Kill(-pid, sig)
	} else {
		_ = syscall.Kill(pid, sig)
	}
	select {
	case <-exited:
	case <-time.After(StopTimeout):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
		n.t.Errorf("rabbitnode: the node did not stop within %s after %s; killed", StopTimeout, sig)
	}
	// The start script has returned; the VM's helper processes of the group go with it, or
	// are killed here so that nothing of this node outlives it.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	n.mu.Lock()
	n.cmd, n.exited = nil, nil
	if n.logFile != nil {
		n.logFile.Close()
		n.logFile = nil
	}
	n.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", n.Addr(), 500*time.Millisecond)
		if err != nil {
			return
		}
		_ = c.Close()
		time.Sleep(100 * time.Millisecond)
	}
	n.t.Errorf("rabbitnode: %s still accepts connections after the node stopped", n.Addr())
}

// Running reports whether the node's process is running.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// Ctl runs rabbitmqctl (the one beside the node's start script) against the node, with its
// environment (its Erlang cookie is in the node's home), and returns what it printed. Tests use
// it for what AMQP cannot do: users and permissions, or a memory alarm that blocks publishers.
func (n *Node) Ctl(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(filepath.Dir(n.script), "rabbitmqctl"), append([]string{"-n", n.name}, args...)...)
	cmd.Dir = n.dir
	cmd.Env = n.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("rabbitnode: rabbitmqctl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// LogTail returns the last lines of the node's output.
func (n *Node) LogTail(lines int) string {
	data, err := os.ReadFile(n.logPath)
	if err != nil {
		return err.Error()
	}
	all := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return string(bytes.Join(all, []byte("\n")))
}

func (n *Node) cleanup() {
	if !n.Running() {
		return
	}
	if n.t.Failed() {
		n.t.Logf("rabbitnode: last lines of %s:\n%s", n.name, n.LogTail(30))
	}
	n.Stop()
}

// findServer returns the start script to run. The Debian wrapper /usr/sbin/rabbitmq-server
// switches to the rabbitmq user, who could not write the test's directory; the script it wraps
// runs as the caller. SIO_RABBITMQ_SERVER names another.
func findServer() (string, error) {
	if p := os.Getenv("SIO_RABBITMQ_SERVER"); p != "" {
		return p, nil
	}
	candidates := []string{"/usr/lib/rabbitmq/bin/rabbitmq-server"}
	if m, _ := filepath.Glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server"); len(m) > 0 {
		candidates = append(candidates, m[len(m)-1])
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, nil
		}
	}
	p, err := exec.LookPath("rabbitmq-server")
	if err != nil {
		return "", errors.New("no rabbitmq-server in /usr/lib/rabbitmq/bin or on PATH")
	}
	return p, nil
}

// cleanEnv is the environment without the caller's RabbitMQ and Erlang settings.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "RABBITMQ_") || strings.HasPrefix(k, "ERL_") || k == "HOME" || k == "CI" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Ports for private nodes are taken below the kernel's ephemeral range (32768-60999 on Linux):
// a port the kernel gave out (net.Listen on port 0) is free only for a moment, and an outgoing
// connection of any other test may take it as its source port before the node binds it, which
// failed a node's boot ("could not bind to distribution port", not_erlang) with other packages
// testing beside it. No outgoing connection takes a port outside that range; between the
// private nodes of concurrent test processes, a lock file per port decides.
const (
	portLow  = 20000
	portHigh = 32767
)

// freePort returns a loopback port below the ephemeral range that nobody listens on, reserved for
// the test by a lock on a file named after it (released when the test ends), so that no other
// test's node takes it, even while this node is stopped between a Stop and a Start.
func freePort(t testing.TB) int {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "siobroker-rabbitnode-ports")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		port := portLow + rand.IntN(portHigh-portLow+1)
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close() // another test's node holds it
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			f.Close() // some server of the machine listens there
			continue
		}
		l.Close()
		t.Cleanup(func() { f.Close() }) // after the node's own cleanup (LIFO): the lock goes with the file
		return port
	}
	t.Fatalf("rabbitnode: no free port in %d-%d", portLow, portHigh)
	return 0
}
