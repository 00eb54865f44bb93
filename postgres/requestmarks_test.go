package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

func requestMarks(t *testing.T, j *Journal, brokerID string) RequestMarks {
	t.Helper()
	m, err := j.RequestMarks(brokerID)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestIntegrationRequestMarksShared: two brokers on one journal database share the marks of
// requests: an id or a signed content one recorded is not new to the other, of concurrent marks
// of one id exactly one is new, and a broker that reconnects (a restart) still finds them.
func TestIntegrationRequestMarksShared(t *testing.T) {
	ctx := context.Background()
	dsn := testDSN(t)
	a, b := requestMarks(t, openTest(t, dsn), "broker-a"), requestMarks(t, openTest(t, dsn), "broker-b")
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, siobroker.Astana)

	mark := siobroker.ReplayMark{Key: "m-1", SenderID: "s", Digest: "d-1", At: at, RequestID: "r-1", SignerIIN: "750312300458"}
	if id, content, err := a.MarkRequest(ctx, mark); err != nil || !id || !content {
		t.Fatalf("first mark: %v %v %v", id, content, err)
	}
	if id, _, err := b.MarkRequest(ctx, siobroker.ReplayMark{Key: "m-1", Digest: "d-other", At: at, RequestID: "r-b"}); err != nil || id {
		t.Fatalf("the same messageId at the other broker: new %v, %v; want not new", id, err)
	}
	if id, content, err := b.MarkRequest(ctx, siobroker.ReplayMark{Key: "m-2", Digest: "d-1", At: at, RequestID: "r-2"}); err != nil || !id || content {
		t.Fatalf("the same signed content under a new messageId at the other broker: id %v content %v, %v; want a new id, seen content", id, content, err)
	}
	restarted := requestMarks(t, openTest(t, dsn), "broker-b")
	if id, _, err := restarted.MarkRequest(ctx, siobroker.ReplayMark{Key: "m-1", Digest: "d-1", At: at}); err != nil || id {
		t.Fatalf("the messageId after the other broker reconnected: new %v, %v; want not new", id, err)
	}

	var wg sync.WaitGroup
	var fresh atomic.Int32
	for i := range 8 {
		m := a
		if i%2 == 1 {
			m = b
		}
		wg.Go(func() {
			id, _, err := m.MarkRequest(ctx, siobroker.ReplayMark{Key: "m-race", Digest: fmt.Sprintf("d-race-%d", i), At: at, RequestID: fmt.Sprintf("r-race-%d", i)})
			if err != nil {
				t.Error(err)
			}
			if id {
				fresh.Add(1)
			}
		})
	}
	wg.Wait()
	if n := fresh.Load(); n != 1 {
		t.Fatalf("%d concurrent marks of one messageId were new, want 1", n)
	}
}

// TestIntegrationRequestMarksAdmissions: each broker lists, ends and closes only its own
// admissions: broker A must not take broker B's live admission for one a crash interrupted. A
// release forgets only what its request recorded, and pruning keeps admissions and contents.
func TestIntegrationRequestMarksAdmissions(t *testing.T) {
	ctx := context.Background()
	dsn := testDSN(t)
	a, b := requestMarks(t, openTest(t, dsn), "broker-a"), requestMarks(t, openTest(t, dsn), "broker-b")
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, siobroker.Astana)
	for _, c := range []struct {
		m    RequestMarks
		mark siobroker.ReplayMark
	}{
		{a, siobroker.ReplayMark{Key: "a-left", SenderID: "s", Digest: "da-left", At: at, RequestID: "ra-left", SignerIIN: "750312300458"}},
		{a, siobroker.ReplayMark{Key: "a-ended", Digest: "da-ended", At: at, RequestID: "ra-ended"}},
		{a, siobroker.ReplayMark{Key: "a-status", Digest: "da-status", At: at}},
		{b, siobroker.ReplayMark{Key: "b-live", Digest: "db-live", At: at, RequestID: "rb-live", SignerIIN: "750312300458"}},
	} {
		if id, content, err := c.m.MarkRequest(ctx, c.mark); err != nil || !id || !content {
			t.Fatalf("MarkRequest(%s) = %v, %v, %v", c.mark.Key, id, content, err)
		}
	}
	if err := a.EndAdmission(ctx, "ra-ended"); err != nil {
		t.Fatal(err)
	}
	if err := a.EndAdmission(ctx, "rb-live"); err != nil { // not A's: nothing happens
		t.Fatal(err)
	}
	if n, err := a.ForgetBefore(ctx, at.Add(time.Hour)); err != nil || n != 2 {
		t.Fatalf("ForgetBefore = %d, %v; want the ended admission's and the status call's marks", n, err)
	}
	marks, err := a.Admissions(ctx, at)
	if err != nil || len(marks) != 1 {
		t.Fatalf("A's admissions = %+v, %v; want ra-left only", marks, err)
	}
	if m := marks[0]; m.RequestID != "ra-left" || m.Key != "a-left" || m.Digest != "da-left" || m.SenderID != "s" ||
		m.SignerIIN != "750312300458" || !m.At.Equal(at) || m.At.Location() != siobroker.Astana {
		t.Fatalf("admission %+v", m)
	}
	if marks, _ := a.Admissions(ctx, at.Add(-time.Second)); len(marks) != 0 {
		t.Fatalf("A's admissions before the mark = %+v", marks)
	}
	if marks, err := b.Admissions(ctx, at); err != nil || len(marks) != 1 || marks[0].RequestID != "rb-live" {
		t.Fatalf("B's admissions = %+v, %v; want rb-live only", marks, err)
	}

	// A release names the request's own digest: another's marks of the same key stay.
	if err := a.Release(ctx, "a-left", "another-digest"); err != nil {
		t.Fatal(err)
	}
	if id, _, _ := b.MarkRequest(ctx, siobroker.ReplayMark{Key: "a-left", At: at}); id {
		t.Fatal("a release with another digest forgot the messageId")
	}
	if err := a.Release(ctx, "a-left", "da-left"); err != nil {
		t.Fatal(err)
	}
	if marks, _ := a.Admissions(ctx, at); len(marks) != 0 {
		t.Fatalf("A's admissions after Release = %+v", marks)
	}
	if id, content, err := b.MarkRequest(ctx, siobroker.ReplayMark{Key: "a-left", Digest: "da-left", At: at}); err != nil || !id || !content {
		t.Fatalf("the released request at the other broker: id %v content %v, %v; want both new", id, content, err)
	}
	// The content of a pruned id is kept for good.
	if _, content, err := b.MarkRequest(ctx, siobroker.ReplayMark{Key: "new-id", Digest: "da-status", At: at}); err != nil || content {
		t.Fatalf("a pruned request's content under a new id: new %v, %v; want seen", content, err)
	}
	if _, err := (&Journal{}).RequestMarks(""); err == nil {
		t.Fatal("request marks without a broker id were made")
	}
}

// TestIntegrationRequestMarksAddedToEarlierSchema: a journal database made by an earlier version
// (the journal and the marks of logins, no request marks) gets the request marks' tables when a
// broker of this version opens it.
func TestIntegrationRequestMarksAddedToEarlierSchema(t *testing.T) {
	ctx := context.Background()
	dsn := testDSN(t)
	if _, err := openTest(t, dsn).pool.Exec(ctx, `DROP TABLE sio_request_marks; DROP TABLE sio_request_content`); err != nil {
		t.Fatal(err)
	}
	m := requestMarks(t, openTest(t, dsn), "broker-a")
	if id, content, err := m.MarkRequest(ctx, siobroker.ReplayMark{Key: "m", Digest: "d", At: time.Now()}); err != nil || !id || !content {
		t.Fatalf("MarkRequest on the upgraded schema: %v %v %v", id, content, err)
	}
}
