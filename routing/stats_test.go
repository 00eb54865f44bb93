package routing

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/routing/msgauth/msgauthtest"
	"github.com/sio-pso/siobroker/schemas"
)

// TestServiceStats: every message ends one way and is counted so; the recent counts cover the
// last five minutes of the dispatcher's clock; the answer latency is measured on that clock.
func TestServiceStats(t *testing.T) {
	clock := testclock.New(time.Date(2026, 11, 23, 10, 0, 0, 0, siobroker.Astana))
	release := make(chan struct{})
	type answer struct {
		service int
		status  siobroker.ResultStatus
		latency time.Duration
	}
	var mu sync.Mutex
	var answers []answer
	observe := observeAnswers(func(service int, status siobroker.ResultStatus, latency time.Duration) {
		mu.Lock()
		answers = append(answers, answer{service, status, latency})
		mu.Unlock()
	})

	env := newTestEnvClock(t, map[int]adapters.Backend{
		1: adapters.BackendFunc(func(context.Context, schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			clock.Advance(2 * time.Second) // the source takes two seconds on the dispatcher's clock
			return siobroker.ServiceResult{}, nil
		}),
		2: adapters.BackendFunc(func(context.Context, schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			return siobroker.ServiceResult{}, errors.New("source down")
		}),
		3: adapters.BackendFunc(func(ctx context.Context, _ schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return siobroker.ServiceResult{}, nil
		}),
	}, clock, observe)

	env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{
		request("a", 1, "750312300458"), request("a", 2, "750312300458"), request("a", 4, "750312300458"),
	}, timeouts(2*time.Second, map[int]time.Duration{4: 20 * time.Millisecond})) // 4 has no adapter
	env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{request("b", 1, "750312300458")}, timeouts(2*time.Second, nil))

	done := make(chan struct{})
	go func() {
		defer close(done)
		env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{request("c", 3, "750312300458")}, timeouts(5*time.Second, nil))
	}()
	deadline := time.Now().Add(2 * time.Second)
	for env.dispatcher.InFlight()[3] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("service 3 never in flight: %v", env.dispatcher.InFlight())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := env.dispatcher.InFlight(); len(got) != 1 {
		t.Errorf("in flight %v, want only service 3", got)
	}
	if s := env.dispatcher.Stats()[3]; s.Dispatched != 1 || s.InFlight != 1 || s.RecentEnded != 0 {
		t.Errorf("service 3 while in flight: %+v", s)
	}
	close(release)
	<-done

	want := map[int]ServiceStats{
		1: {Dispatched: 2, Answered: 2, NoData: 2, RecentEnded: 2}, // the backends found nothing
		2: {Dispatched: 1, Answered: 1, ErrorAnswers: 1, RecentEnded: 1, RecentFailed: 1},
		3: {Dispatched: 1, Answered: 1, NoData: 1, RecentEnded: 1},
		4: {Dispatched: 1, Timeouts: 1, RecentEnded: 1, RecentFailed: 1},
	}
	stats := env.dispatcher.Stats()
	for n, w := range want {
		if stats[n] != w {
			t.Errorf("service %d: %+v, want %+v", n, stats[n], w)
		}
	}
	if r := stats[2].RecentErrorRate(); r != 1 {
		t.Errorf("service 2 recent error rate %v, want 1", r)
	}
	if e := stats[2].Errors(); e != 1 {
		t.Errorf("service 2 errors %d, want 1", e)
	}
	if len(env.dispatcher.InFlight()) != 0 {
		t.Errorf("in flight after every answer: %v", env.dispatcher.InFlight())
	}
	mu.Lock()
	if len(answers) != 4 {
		t.Errorf("observed answers %v, want 4 (services 1, 1, 2, 3)", answers)
	}
	for _, a := range answers {
		if a.service == 1 && a.latency != 2*time.Second {
			t.Errorf("service 1 latency %s, want 2s on the dispatcher's clock", a.latency)
		}
		if a.service == 2 && a.status != siobroker.StatusError {
			t.Errorf("service 2 observed as %s", a.status)
		}
	}
	mu.Unlock()

	// Five minutes later the recent counts are empty; the totals stay.
	clock.Advance(RecentWindow + time.Second)
	for n, s := range env.dispatcher.Stats() {
		if s.RecentEnded != 0 || s.RecentFailed != 0 || s.RecentErrorRate() != 0 {
			t.Errorf("service %d after the window: %+v", n, s)
		}
		if s.Dispatched != want[n].Dispatched {
			t.Errorf("service %d lost its totals: %+v", n, s)
		}
	}
	// A new failure is recent again.
	env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{request("d", 2, "750312300458")}, timeouts(2*time.Second, nil))
	if s := env.dispatcher.Stats()[2]; s.RecentEnded != 1 || s.RecentFailed != 1 || s.Dispatched != 2 {
		t.Errorf("service 2 after a new failure: %+v", s)
	}
}

// TestDispatchErrorCounted: a message the transport refuses is a dispatch error.
func TestDispatchErrorCounted(t *testing.T) {
	d, err := NewDispatcher(DispatcherConfig{Auth: msgauthtest.Broker(), AdapterOf: msgauthtest.AllTo(msgauthtest.Adapter), RegistryAdapterOf: msgauthtest.AllRegistriesTo(msgauthtest.Adapter), Publisher: &failingPublisher{}, ReplyTopic: ReplyTopicPrefix + "x",
		Clock: siobroker.SystemClock{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	d.Dispatch(context.Background(), []schemas.ServiceRequest{request("p", 7, "750312300458")}, timeouts(time.Second, nil))
	if s := d.Stats()[7]; s != (ServiceStats{Dispatched: 1, DispatchErrors: 1, RecentEnded: 1, RecentFailed: 1}) {
		t.Errorf("stats %+v", s)
	}
}

// TestLogsCarryIDsNotSubjects: every line the dispatcher and the adapter runtime write about a
// service of a request names the client's messageId and the correlation key request/service, and
// a backend error that quotes the subject or the case is logged without them.
func TestLogsCarryIDsNotSubjects(t *testing.T) {
	const subject = "810803325634"
	env := newTestEnv(t, map[int]adapters.Backend{
		9: adapters.BackendFunc(func(_ context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			return siobroker.ServiceResult{}, errors.New(`pq: invalid input for iin: "` + req.Subject.IIN + `" in case ` + req.Case.Number)
		}),
	})
	req := request("r-ids", 9, subject)
	req.Case = siobroker.CaseRef{Number: "261500031000123"}
	env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{req}, timeouts(2*time.Second, nil))
	line := env.logs.waitFor(t, "backend error")
	for _, want := range []string{"message_id=msg-r-ids", "correlation_id=r-ids/9", "[subject]", "[case]"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line lacks %q: %s", want, line)
		}
	}
	env.logs.mu.Lock()
	defer env.logs.mu.Unlock()
	for _, r := range env.logs.records {
		if strings.Contains(r, subject) || strings.Contains(r, "261500031000123") {
			t.Errorf("log line quotes the subject or the case: %s", r)
		}
	}
}
