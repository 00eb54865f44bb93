package cli

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// pgBrokerProcess is a `siobroker serve` process over the data directory dir (which holds a copy
// of the shared broker's PKI) that journals into the PostgreSQL database at dsn, on the embedded
// transport with its in-process demo adapters. It returns the process and its endpoint.
func pgBrokerProcess(t *testing.T, name, dir, dsn string) (*osProcess, string) {
	t.Helper()
	listen := loopbackAddr(t)
	p := startProcess(t, name, []string{
		"SIOBROKER_TRANSPORT=gochannel", "SIOBROKER_LISTEN=" + listen, "SIOBROKER_DATA_DIR=" + dir,
		"SIOBROKER_JOURNAL_DRIVER=postgres", "SIOBROKER_JOURNAL_DSN=" + dsn, "SIOBROKER_LOG_LEVEL=info",
		"SIOBROKER_OPERATOR_LISTEN=" + loopbackAddr(t),
	}, "serve", "--config", "configs/broker.yaml", "--dev")
	p.waitFor(t, "siobroker listening on", time.Minute)
	return p, "http://" + listen + sharedBroker(t).cfg.Endpoint
}

// posted is one POST's outcome, for posts made off the test's goroutine.
type posted struct {
	status int
	body   []byte
	err    error
}

func postAsync(url string, body []byte) posted {
	resp, err := httpClient.Post(url, "text/xml; charset=utf-8", bytes.NewReader(body))
	if err != nil {
		return posted{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return posted{status: resp.StatusCode, body: b, err: err}
}

// TestSharedReplayMarksTwoBrokerProcesses: two `siobroker serve` processes share one PostgreSQL
// journal (journal.driver: postgres), each with a data directory of its own. A signed request
// served by broker A is refused by broker B as a replay (SIO-REPLAY-ID), also after both were
// killed and started again; of one request posted to both at once, exactly one is served.
func TestSharedReplayMarksTwoBrokerProcesses(t *testing.T) {
	dsn := sharedJournalDSN(t)
	src := sharedBroker(t)
	dirs := map[string]string{}
	for _, name := range []string{"broker-a", "broker-b"} {
		dirs[name] = filepath.Join(t.TempDir(), name)
		copyDir(t, src.pki, filepath.Join(dirs[name], "pki"))
	}
	procA, urlA := pgBrokerProcess(t, "broker-a", dirs["broker-a"], dsn)
	procB, urlB := pgBrokerProcess(t, "broker-b", dirs["broker-b"], dsn)

	u := src.user(t, devpki.KeyRSA, devpki.StatusValid)
	signer := src.signer(t, u)
	raw := signedRequest(t, signer, signing.PlacementWSSE, newInfo(), src.query(1))
	if status, body := post(t, urlA, raw); status != http.StatusOK {
		t.Fatalf("the request at broker A: HTTP %d\n%s", status, truncate(body))
	}
	status, body := post(t, urlB, raw)
	f := wantFault(t, status, body, http.StatusInternalServerError, siobroker.CodeReplayID)
	t.Logf("broker B: %s %s", f.Code, f.Message)

	// A crash and a restart of both forget nothing: the marks are in the shared database.
	procA.kill(t)
	procB.kill(t)
	_, urlA = pgBrokerProcess(t, "broker-a (restarted)", dirs["broker-a"], dsn)
	_, urlB = pgBrokerProcess(t, "broker-b (restarted)", dirs["broker-b"], dsn)
	for name, url := range map[string]string{"A": urlA, "B": urlB} {
		status, body := post(t, url, raw)
		if f, ok := soap.ParseFault(body); !ok || f.Code != siobroker.CodeReplayID {
			t.Fatalf("the request at broker %s after the restart: HTTP %d, want %s\n%s", name, status, siobroker.CodeReplayID, truncate(body))
		}
	}

	for round := range 4 {
		raw := signedRequest(t, signer, signing.PlacementWSSE, newInfo(), src.query(1))
		got := make([]posted, 2)
		var wg sync.WaitGroup
		for i, url := range []string{urlA, urlB} {
			wg.Go(func() { got[i] = postAsync(url, raw) })
		}
		wg.Wait()
		served, replays := 0, 0
		for i, p := range got {
			if p.err != nil {
				t.Fatalf("round %d, broker %d: %v", round, i, p.err)
			}
			f, fault := soap.ParseFault(p.body)
			switch {
			case p.status == http.StatusOK && !fault:
				served++
			case fault && f.Code == siobroker.CodeReplayID:
				replays++
			default:
				t.Fatalf("round %d, broker %d: HTTP %d\n%s", round, i, p.status, truncate(p.body))
			}
		}
		if served != 1 || replays != 1 {
			t.Fatalf("round %d: one request posted to both brokers at once was served %d times and refused as a replay %d times; want once each",
				round, served, replays)
		}
	}
}
