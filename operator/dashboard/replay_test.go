package dashboard_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/pgtest"
	"github.com/sio-pso/siobroker/operator/dashboard"
	"github.com/sio-pso/siobroker/postgres"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
)

// startDashboard serves a dashboard of cfg, as a broker (re)started with it would.
func startDashboard(t *testing.T, cfg dashboard.Config) *httptest.Server {
	t.Helper()
	h, err := dashboard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// postLoginTo posts a signed login to the dashboard at base and returns the fault's code, or ""
// for a ticket.
func postLoginTo(t *testing.T, base string, raw []byte) siobroker.Code {
	t.Helper()
	resp, err := http.Post(base+dashboard.LoginPath, "text/xml; charset=utf-8", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return ""
	}
	f, ok := soap.ParseFault(body)
	if !ok {
		t.Fatalf("HTTP %d without a fault:\n%s", resp.StatusCode, body)
	}
	return f.Code
}

// TestLoginReplayAfterRestart: a signed login taken once is refused as a replay by a dashboard
// started afresh on the same store, as after a restart of the broker.
func TestLoginReplayAfterRestart(t *testing.T) {
	f := newFixture(t)
	raw := f.signedLogin(t, pki.operator, signing.PlacementEnveloped)
	if code := postLoginTo(t, f.server.URL, raw); code != "" {
		t.Fatalf("first login: %s", code)
	}
	restarted := startDashboard(t, f.cfg)
	if code := postLoginTo(t, restarted.URL, raw); code != siobroker.CodeReplayID {
		t.Fatalf("the login again after a restart: %q, want %s", code, siobroker.CodeReplayID)
	}
	if code := postLoginTo(t, restarted.URL, f.signedLogin(t, pki.operator, signing.PlacementWSSE)); code != "" {
		t.Fatalf("a new login after the restart: %s", code)
	}
}

// TestIntegrationLoginReplaySharedPostgres: two brokers whose journal is one PostgreSQL database
// share the replay marks of logins: a login one took, the other refuses.
func TestIntegrationLoginReplaySharedPostgres(t *testing.T) {
	dsn := pgtest.Schema(t, "dashreplay")
	f := newFixture(t)
	var servers []*httptest.Server
	for range 2 {
		j, err := postgres.OpenJournal(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(j.Close)
		cfg := f.cfg
		cfg.Journal, cfg.Replay = j, j.ReplayMarks()
		servers = append(servers, startDashboard(t, cfg))
	}
	raw := f.signedLogin(t, pki.operator, signing.PlacementWSSE)
	if code := postLoginTo(t, servers[0].URL, raw); code != "" {
		t.Fatalf("login at the first broker: %s", code)
	}
	if code := postLoginTo(t, servers[1].URL, raw); code != siobroker.CodeReplayID {
		t.Fatalf("the same login at the second broker: %q, want %s", code, siobroker.CodeReplayID)
	}
	if code := postLoginTo(t, servers[1].URL, f.signedLogin(t, pki.operator, signing.PlacementEnveloped)); code != "" {
		t.Fatalf("a new login at the second broker: %s", code)
	}
}
