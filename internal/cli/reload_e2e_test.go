package cli

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/signing"
)

// reloadableBroker starts a private broker whose routes, rights and maintenance files are copies
// in the test's own directory, so that the test can edit them.
func reloadableBroker(t *testing.T) (e *e2eBroker, routesFile, rightsFile, maintenanceFile string) {
	t.Helper()
	src := sharedBroker(t)
	dir := t.TempDir()
	copyDir(t, src.pki, filepath.Join(dir, "pki"))
	conf := filepath.Join(dir, "conf")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"routes.yaml", "rights.yaml", "maintenance.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "configs", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(conf, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	routesFile, rightsFile, maintenanceFile = filepath.Join(conf, "routes.yaml"), filepath.Join(conf, "rights.yaml"), filepath.Join(conf, "maintenance.yaml")
	e, err := startE2EWith(dir, siobroker.SystemClock{}, func(c *config.Broker) {
		c.Routing.RoutesFile, c.Rights, c.Maintenance = routesFile, rightsFile, maintenanceFile
	})
	if err != nil {
		t.Fatalf("start a broker: %v", err)
	}
	t.Cleanup(func() { e.b.Close() })
	return e, routesFile, rightsFile, maintenanceFile
}

func replaceInFile(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s has no %q", path, old)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o600); err != nil {
		t.Fatal(err)
	}
}

// sendOne sends a signed request for services as the role-1 prosecutor and returns the HTTP
// status and body.
func (e *e2eBroker) sendOne(t *testing.T, signer *signing.Signer, services ...int) (int, []byte) {
	t.Helper()
	return post(t, e.url, signedRequest(t, signer, signing.PlacementWSSE, newInfo(), e.query(services...)))
}

// TestReloadKeepsRequestsInFlight: requests sent without pause while the routes and rights are
// reloaded, by signal and by file change, all get their answer; the new timeout and rights are
// in force after; a reload that fails the check is refused whole and the running table stays.
func TestReloadKeepsRequestsInFlight(t *testing.T) {
	e, routesFile, rightsFile, _ := reloadableBroker(t)
	signer := e.signer(t, findUserByRole(t, e.manifest, 1))
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, nil))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := 0; i < 200; i++ { // bounded: the loop also ends when stop closes
				select {
				case <-stop:
					return
				default:
				}
				status, body := e.sendOne(t, signer, 1, 11)
				sent.Add(1)
				if status != 200 {
					failed.Add(1)
					t.Errorf("a request during reload failed: HTTP %d %s", status, truncate(body))
				}
			}
		})
	}

	// A good reload by signal: service 1's timeout changes.
	replaceInFile(t, routesFile, "1: {queue: sio.service.001, adapter: demo, backend: demo}", "1: {queue: sio.service.001, adapter: demo, backend: demo, timeout: 7s}")
	if err := e.b.Reload(ctx, "test", logger); err != nil {
		t.Fatalf("good reload refused: %v", err)
	}
	if got := e.b.RouteTimeout(1); got != 7*time.Second {
		t.Errorf("timeout of service 1 after reload = %s, want 7s", got)
	}
	e.b.RequestReload() // as SIGHUP does

	// A bad reload: a service loses its route, and the rights file is edited validly at the same
	// time. Both are refused together.
	replaceInFile(t, routesFile, "  2: {queue: sio.service.002, adapter: demo, backend: demo}", "")
	replaceInFile(t, rightsFile, "access: {1: full, 2: full, 3: full, 4: full, 5: full, 6: full}", "access: {1: full, 2: full, 3: full, 4: full, 5: full}")
	err := e.b.Reload(ctx, "test", logger)
	if err == nil || !strings.Contains(err.Error(), "no route for service 2") || !strings.Contains(err.Error(), "routes.yaml:") {
		t.Fatalf("bad reload = %v, want a refusal naming the missing route and the file", err)
	}
	if !e.b.Routed(2) || !e.b.DecideService(siobroker.BasisSearch, 1, siobroker.Qualification{}).Allowed {
		t.Error("a refused reload changed the running tables")
	}
	// A reload that moves a service to another queue is refused too.
	replaceInFile(t, routesFile, "queues: []", "queues: [sio.kgd]")
	replaceInFile(t, routesFile, "  3: {queue: sio.service.003,", "  2: {queue: sio.service.002, adapter: demo, backend: demo}\n  3: {queue: sio.kgd,")
	if err := e.b.Reload(ctx, "test", logger); err == nil || !strings.Contains(err.Error(), "moves from queue sio.service.003 to sio.kgd") {
		t.Fatalf("queue change = %v, want refused", err)
	}
	replaceInFile(t, routesFile, "  3: {queue: sio.kgd,", "  3: {queue: sio.service.003,")

	// The file change alone is noticed by the watcher: service 1's timeout becomes 9s, and the
	// rights edit (basis 6 withdrawn from service 1) goes in with it.
	replaceInFile(t, routesFile, "timeout: 7s}", "timeout: 9s}")
	deadline := time.Now().Add(15 * time.Second)
	for e.b.RouteTimeout(1) != 9*time.Second && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := e.b.RouteTimeout(1); got != 9*time.Second {
		t.Fatalf("the watcher did not reload the changed file: timeout %s", got)
	}
	if d := e.b.DecideService(siobroker.BasisSearch, 1, siobroker.Qualification{}); d.Allowed {
		t.Errorf("the rights edit was not reloaded with the routes: %+v", d)
	}
	close(stop)
	wg.Wait()
	if sent.Load() == 0 || failed.Load() != 0 {
		t.Errorf("%d requests sent during the reloads, %d failed", sent.Load(), failed.Load())
	}
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	for _, want := range []string{"configuration change", "service 1: timeout 10s → 7s", "configuration reload refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("reload log lacks %q:\n%s", want, out)
		}
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestMaintenanceWindow: a service in an announced window is answered MAINTENANCE naming the
// window, without reaching its adapter; a request all of whose services are in windows gets the
// fault SIO-MAINTENANCE; a window of the file applies after a reload; a cancelled one ends.
func TestMaintenanceWindow(t *testing.T) {
	e, _, _, maintenanceFile := reloadableBroker(t)
	signer := e.signer(t, findUserByRole(t, e.manifest, 1))
	ctx := context.Background()
	now := siobroker.SystemClock{}.Now()
	// Begun a minute ago: only an emergency may be announced so, and it opens an incident.
	w, err := e.b.Maintenance().Announce(ctx, siobroker.MaintenanceWindow{Services: []int{11}, Start: now.Add(-time.Minute),
		End: now.Add(time.Hour), Reason: "КГД upgrade", AnnouncedBy: "operator on duty", Emergency: true})
	if err != nil {
		t.Fatal(err)
	}
	status, body := e.sendOne(t, signer, 1, 11)
	if status != 200 {
		t.Fatalf("HTTP %d: %s", status, truncate(body))
	}
	_, _, res := verifiedReply(t, body, filepath.Join(e.pki, e.manifest.CA))
	var got11 siobroker.ServiceResult
	for _, r := range res.Services {
		if r.Service == 11 {
			got11 = r
		}
		if r.Service == 1 && r.Status != siobroker.StatusOK {
			t.Errorf("service 1 outside the window: %+v", r)
		}
	}
	if got11.Status != siobroker.StatusError || got11.Reason != siobroker.ReasonMaintenance || !strings.Contains(got11.Message, w.Describe()) {
		t.Errorf("service 11 in the window: %+v", got11)
	}

	status, body = e.sendOne(t, signer, 11)
	f := wantFault(t, status, body, 500, siobroker.CodeMaintenance)
	if !strings.Contains(f.Message, "КГД upgrade") || !strings.Contains(f.Message, "+05:00") {
		t.Errorf("fault does not name the window: %s", f.Message)
	}
	if err := e.b.Maintenance().Cancel(ctx, w.ID, "operator on duty"); err != nil {
		t.Fatal(err)
	}
	if status, body = e.sendOne(t, signer, 11); status != 200 {
		t.Fatalf("after cancel: HTTP %d %s", status, truncate(body))
	}

	// A window of the file, every service, in force after a reload: planned, announced two days
	// before it began.
	text := "windows:\n  - start: " + now.Add(-time.Minute).Format(time.RFC3339) + "\n    end: " + now.Add(time.Hour).Format(time.RFC3339) +
		"\n    reason: data centre move\n    announced_at: " + now.Add(-48*time.Hour).Format(time.RFC3339) + "\n"
	if err := os.WriteFile(maintenanceFile, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.b.Reload(ctx, "test", slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	status, body = e.sendOne(t, signer, 1, 5)
	if f := wantFault(t, status, body, 0, siobroker.CodeMaintenance); !strings.Contains(f.Message, "data centre move") {
		t.Errorf("file window fault: %s", f.Message)
	}

	// A window of the file announced now for an hour hence has too little notice: the reload is
	// refused, and the window above stays in force. Marked an emergency, it is taken, and the
	// reload opens its incident beside the one the announcement opened.
	soon := "windows:\n  - services: [5]\n    start: " + now.Add(time.Hour).Format(time.RFC3339) + "\n    end: " + now.Add(2*time.Hour).Format(time.RFC3339) +
		"\n    reason: замена коммутатора\n    announced_at: " + now.Format(time.RFC3339) + "\n"
	if err := os.WriteFile(maintenanceFile, []byte(soon), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.b.Reload(ctx, "test", slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "not announced in advance") {
		t.Fatalf("a reload with a window of an hour's notice: %v", err)
	}
	if len(e.b.Maintenance().FileWindows()) != 1 || e.b.Maintenance().FileWindows()[0].Reason != "data centre move" {
		t.Errorf("the refused reload changed the windows: %+v", e.b.Maintenance().FileWindows())
	}
	if err := os.WriteFile(maintenanceFile, []byte(soon+"    emergency: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.b.Reload(ctx, "test", slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	all, err := e.b.Store().Incidents(ctx, true)
	if err != nil || len(all) != 2 || all[0].Cause.Queue != fmt.Sprintf("maintenance window %d", w.ID) || all[1].Cause.Service != 5 ||
		all[1].Type != siobroker.IncidentEmergencyMaintenance {
		t.Errorf("incidents of the emergencies: %+v %v", all, err)
	}
}
