package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/pgtest"
	"github.com/sio-pso/siobroker/postgres"
)

// sharedDeployment is brokers that share one PostgreSQL journal, and the request marks in it, as
// serve wires them with journal.driver: postgres; each broker has a store of its own.
type sharedDeployment struct{ dsn string }

var sharedRuns atomic.Int64

func newSharedDeployment(t *testing.T) sharedDeployment {
	return sharedDeployment{dsn: pgtest.Schema(t, "sio_shared_replay_")}
}

// broker starts a broker whose request marks carry id, over a connection of its own to the
// shared database (a new one is a restart); wrap, if set, wraps its journal.
func (d sharedDeployment) broker(t *testing.T, id string, opts harnessOpts, wrap func(siobroker.Journal) siobroker.Journal) *harness {
	t.Helper()
	j, err := postgres.OpenJournal(context.Background(), d.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(j.Close)
	marks, err := j.RequestMarks(id)
	if err != nil {
		t.Fatal(err)
	}
	opts.replay = marks
	// The broker's request ids differ from run to run, as uuids do.
	opts.idPrefix = fmt.Sprintf("%s-run%d", id, sharedRuns.Add(1))
	opts.journal = func(siobroker.Journal) siobroker.Journal {
		if wrap != nil {
			return wrap(j)
		}
		return j
	}
	return newHarnessWith(t, opts)
}

// TestIntegrationSharedReplayMarks: a signed request one broker took is refused as a replay by
// another broker of the deployment, and still after that broker's restart; of one request sent to
// two brokers at once, exactly one is served.
func TestIntegrationSharedReplayMarks(t *testing.T) {
	d := newSharedDeployment(t)
	a, b := d.broker(t, "a", harnessOpts{}, nil), d.broker(t, "b", harnessOpts{}, nil)

	raw, _ := a.build(t, reqSpec{services: []int{1}})
	if _, _, err := a.handle(raw); err != nil {
		t.Fatalf("the request at broker A: %v", err)
	}
	if _, _, err := b.handle(raw); siobroker.ErrorCode(err) != siobroker.CodeReplayID {
		t.Fatalf("the same request at broker B: %v, want %s", err, siobroker.CodeReplayID)
	}
	b.stop()
	restarted := d.broker(t, "b", harnessOpts{dir: t.TempDir()}, nil)
	if _, _, err := restarted.handle(raw); siobroker.ErrorCode(err) != siobroker.CodeReplayID {
		t.Fatalf("the same request at broker B after its restart: %v, want %s", err, siobroker.CodeReplayID)
	}

	for round := range 5 {
		raw, _ := a.build(t, reqSpec{services: []int{1}})
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, h := range []*harness{a, restarted} {
			wg.Go(func() { _, _, errs[i] = h.handle(raw) })
		}
		wg.Wait()
		served, replays := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				served++
			case siobroker.ErrorCode(err) == siobroker.CodeReplayID:
				replays++
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if served != 1 || replays != 1 {
			t.Fatalf("round %d: one request sent to two brokers at once was served %d times and refused as a replay %d times; want once each", round, served, replays)
		}
	}
}

// TestIntegrationSharedAdmissionsClosedByTheirBroker: a broker closes at its start only the
// admissions it left itself: broker A's start does not take broker B's request in progress for
// an interrupted one, B's restart does, and then the client's retry is taken at A.
func TestIntegrationSharedAdmissionsClosedByTheirBroker(t *testing.T) {
	d := newSharedDeployment(t)
	frozen := &frozenAfterRequest{frozen: make(chan struct{}), thawed: make(chan struct{})}
	b := d.broker(t, "b", harnessOpts{}, func(j siobroker.Journal) siobroker.Journal {
		frozen.Journal = j
		return frozen
	})
	raw, info := b.build(t, reqSpec{services: []int{1}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _ = b.handle(raw)
	}()
	<-frozen.frozen
	t.Cleanup(func() { close(frozen.thawed); <-done })

	a := d.broker(t, "a", harnessOpts{}, nil)
	if n, err := a.broker.CloseInterrupted(context.Background(), a.clock.Now().Add(1)); err != nil || n != 0 {
		t.Fatalf("broker A's start closed %d requests (%v); want none: B's request is B's, and live", n, err)
	}
	if _, _, err := a.handle(raw); siobroker.ErrorCode(err) != siobroker.CodeReplayID {
		t.Fatalf("a copy at broker A while B admits it: %v, want %s", err, siobroker.CodeReplayID)
	}

	// B stops there (the frozen call never completes); its restart closes what it left.
	restarted := d.broker(t, "b", harnessOpts{}, nil)
	if n, err := restarted.broker.CloseInterrupted(context.Background(), restarted.clock.Now().Add(1)); err != nil || n != 1 {
		t.Fatalf("broker B's restart closed %d requests (%v); want its interrupted one", n, err)
	}
	recs, err := frozen.Journal.Query(context.Background(), siobroker.JournalFilter{})
	if err != nil {
		t.Fatal(err)
	}
	interrupted := 0
	for _, r := range recs {
		if r.MessageID == info.MessageID && r.Kind == siobroker.JournalRefusal && r.Code == string(siobroker.CodeUnavailable) {
			interrupted++
		}
	}
	if interrupted != 1 {
		t.Fatalf("%d SIO-UNAVAILABLE refusals of the interrupted request in the shared journal, want 1", interrupted)
	}
	if _, _, err := a.handle(raw); err != nil {
		t.Fatalf("the retry as sent, at broker A, after B closed it: %v", err)
	}
}

// failFirstRequestRecord fails the journal's first request record, as a locked journal would:
// the request is refused SIO-UNAVAILABLE and its replay marks are released.
type failFirstRequestRecord struct {
	siobroker.Journal
	once sync.Once
}

func (j *failFirstRequestRecord) Append(ctx context.Context, recs ...siobroker.JournalRecord) ([]siobroker.JournalRecord, error) {
	fail := false
	if recs[0].Kind == siobroker.JournalRequest {
		j.once.Do(func() { fail = true })
	}
	if fail {
		return nil, errors.New("the journal is locked")
	}
	return j.Journal.Append(ctx, recs...)
}

// TestIntegrationSharedMarksReleasedOnUnavailable: a request one broker refused SIO-UNAVAILABLE
// has its marks released in the shared store, so that its retry as sent is taken by another
// broker; that broker's acceptance ends its admission (no admission left for anyone to close).
func TestIntegrationSharedMarksReleasedOnUnavailable(t *testing.T) {
	d := newSharedDeployment(t)
	a := d.broker(t, "a", harnessOpts{}, func(j siobroker.Journal) siobroker.Journal { return &failFirstRequestRecord{Journal: j} })
	b := d.broker(t, "b", harnessOpts{}, nil)
	raw, _ := a.build(t, reqSpec{services: []int{1}})
	if _, _, err := a.handle(raw); siobroker.ErrorCode(err) != siobroker.CodeUnavailable {
		t.Fatalf("the request at broker A with its journal locked: %v, want %s", err, siobroker.CodeUnavailable)
	}
	if _, _, err := b.handle(raw); err != nil {
		t.Fatalf("the retry as sent at broker B: %v", err)
	}
	if _, _, err := a.handle(raw); siobroker.ErrorCode(err) != siobroker.CodeReplayID {
		t.Fatalf("a third copy at broker A: %v, want %s", err, siobroker.CodeReplayID)
	}
}
