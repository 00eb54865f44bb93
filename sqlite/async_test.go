package sqlite

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

func TestAsyncJobs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 17, 0, 0, 0, siobroker.Astana)
	job := siobroker.AsyncJob{
		RequestID: "b-1", MessageID: "m-1", SenderID: "s", SignerIIN: "820605401173", Organisation: "org", Role: 1,
		Placement: "wsse",
		Info: siobroker.RequestInfo{MessageID: "m-1", ServiceID: "SIO", MessageDate: now, SenderID: "s",
			Properties: []siobroker.Property{{Key: "k", Value: "v"}}},
		Query: siobroker.Query{Basis: 1, Case: siobroker.CaseRef{Number: "1"}, Subject: siobroker.Subject{IIN: "820605401173"},
			Services: []int{1, 5}, Purpose: "p"},
		State: siobroker.AsyncOnDelivery, Received: now,
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	if err := db.CreateAsync(ctx, job); err != nil {
		t.Fatal(err)
	}
	leased := job
	leased.RequestID, leased.LeaseUntil = "b-2", now.Add(time.Hour)
	if err := db.CreateAsync(ctx, leased); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAsync(ctx, job); err == nil {
		t.Fatal("a second job with the same id was stored")
	}
	pending, err := db.PendingAsync(ctx, now)
	if err != nil || len(pending) != 1 || pending[0].RequestID != "b-1" {
		t.Fatalf("PendingAsync = %+v %v, want only the unleased job", pending, err)
	}
	if !pending[0].Info.MessageDate.Equal(now) || !reflect.DeepEqual(pending[0].Query, job.Query) ||
		!reflect.DeepEqual(pending[0].Info.Properties, job.Info.Properties) || pending[0].TraceParent != job.TraceParent {
		t.Fatalf("job read back as %+v", pending[0])
	}
	db.Close()

	// Reopened, as after a restart: with the earlier run's leases void, the leased job is
	// pending too.
	if db, err = Open(ctx, dir); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, err := db.VoidLeases(ctx); n != 1 || err != nil {
		t.Fatalf("VoidLeases = %d %v, want the one lease", n, err)
	}
	if pending, err = db.PendingAsync(ctx, now); err != nil || len(pending) != 2 {
		t.Fatalf("pending after a restart = %d jobs %v, want 2", len(pending), err)
	}
	if ok, err := db.CompleteAsync(ctx, "b-1", siobroker.AsyncDelivered, "", []byte("<reply/>"), now.Add(time.Minute)); !ok || err != nil {
		t.Fatalf("CompleteAsync = %v %v", ok, err)
	}
	if ok, _ := db.StopAsync(ctx, "b-1", "late", now); ok {
		t.Fatal("a delivered job was stopped")
	}
	if ok, err := db.StopAsync(ctx, "b-2", "operator", now); !ok || err != nil {
		t.Fatalf("StopAsync = %v %v", ok, err)
	}
	if ok, _ := db.CompleteAsync(ctx, "b-2", siobroker.AsyncDelivered, "", []byte("x"), now); ok {
		t.Fatal("a stopped job was completed")
	}
	j, ok, err := db.AsyncJob(ctx, "b-1")
	if err != nil || !ok || j.State != siobroker.AsyncDelivered || string(j.Reply) != "<reply/>" {
		t.Fatalf("AsyncJob = %+v %v %v", j, ok, err)
	}
	if _, ok, _ := db.AsyncJob(ctx, "nope"); ok {
		t.Fatal("an unknown job was found")
	}
	if pending, _ = db.PendingAsync(ctx, now.Add(2*time.Hour)); len(pending) != 0 {
		t.Fatalf("%d jobs still pending", len(pending))
	}
}

// TestSyncHolds: a synchronous request's hold (ON_DELIVERY, channel sync) is kept in sync_holds,
// not among the asynchronous jobs, and reads, leases and ends as a job does: the worker finds it
// pending with the jobs, in order of reception; completed or stopped, it moves to async_jobs
// with its state; forgotten, it is gone. An id is stored once across both tables. A hold an
// earlier version stored in async_jobs is read, completed and forgotten there.
func TestSyncHolds(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	now := time.Date(2026, 12, 7, 21, 0, 0, 0, siobroker.Astana)
	hold := siobroker.AsyncJob{
		RequestID: "h-1", MessageID: "m-h1", SenderID: "s", SignerIIN: "820605401173", Organisation: "org", Role: 3,
		Placement: "wsse",
		Info:      siobroker.RequestInfo{MessageID: "m-h1", ServiceID: "SIO", MessageDate: now, SenderID: "s"},
		Query:     siobroker.Query{Basis: 1, Case: siobroker.CaseRef{Number: "1"}, Services: []int{1}, Purpose: "p"},
		State:     siobroker.AsyncOnDelivery, Channel: siobroker.SyncChannel, Received: now.Add(time.Second), Updated: now.Add(time.Second),
		LeaseUntil: now.Add(time.Minute), ReplyMessageID: "r-h1",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	job := hold
	job.RequestID, job.MessageID, job.Info.MessageID, job.ReplyMessageID = "a-1", "m-a1", "m-a1", "r-a1"
	job.Channel, job.Received, job.Updated, job.LeaseUntil = siobroker.AsyncChannelV10, now, now, time.Time{}
	for _, j := range []siobroker.AsyncJob{hold, job} {
		if err := db.CreateAsync(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	count := func(table string) int {
		t.Helper()
		var n int
		if err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if holds, jobs := count("sync_holds"), count("async_jobs"); holds != 1 || jobs != 1 {
		t.Fatalf("%d holds and %d jobs stored, want 1 and 1", holds, jobs)
	}
	// An id is taken once, whichever table holds it.
	dup := job
	dup.RequestID = hold.RequestID
	if err := db.CreateAsync(ctx, dup); err == nil {
		t.Error("a job with a hold's id was stored")
	}
	dupHold := hold
	dupHold.RequestID = job.RequestID
	if err := db.CreateAsync(ctx, dupHold); err == nil {
		t.Error("a hold with a job's id was stored")
	}
	if err := db.CreateAsync(ctx, hold); err == nil {
		t.Error("a hold was stored twice")
	}

	sameHold := func(got siobroker.AsyncJob, ok bool, err error, want siobroker.AsyncJob) {
		t.Helper()
		if err != nil || !ok {
			t.Fatalf("hold not found: %v %v", ok, err)
		}
		if got.State != want.State || got.Channel != want.Channel || got.ReplyMessageID != want.ReplyMessageID ||
			got.TraceParent != want.TraceParent || !got.LeaseUntil.Equal(want.LeaseUntil) || !got.Received.Equal(want.Received) ||
			got.Role != want.Role || got.Placement != want.Placement || got.Reply != nil || got.Reason != "" ||
			!reflect.DeepEqual(got.Query, want.Query) || got.Info.MessageID != want.Info.MessageID {
			t.Fatalf("hold read back as %+v, want %+v", got, want)
		}
	}
	got, ok, err := db.AsyncJob(ctx, hold.RequestID)
	sameHold(got, ok, err, hold)
	got, ok, err = db.AsyncJobByMessage(ctx, hold.ReplyMessageID)
	sameHold(got, ok, err, hold)
	got, ok, err = db.AsyncJobOfClient(ctx, hold.SignerIIN, hold.MessageID)
	sameHold(got, ok, err, hold)

	ids := func(jobs []siobroker.AsyncJob, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, j := range jobs {
			out = append(out, j.RequestID)
		}
		return out
	}
	// The hold is leased to its call: the worker takes it only once the lease is out, or once a
	// restart voided the lease; then after the job received a second before it.
	if got := ids(db.PendingAsync(ctx, now.Add(2*time.Second))); !reflect.DeepEqual(got, []string{"a-1"}) {
		t.Errorf("pending while the hold is leased: %v", got)
	}
	if ok, err := db.LeaseAsync(ctx, hold.RequestID, now); !ok || err != nil {
		t.Fatalf("LeaseAsync of the hold = %v %v", ok, err)
	}
	if got := ids(db.PendingAsync(ctx, now.Add(2*time.Second))); !reflect.DeepEqual(got, []string{"a-1", "h-1"}) {
		t.Errorf("pending once the hold's lease is out: %v", got)
	}
	if ok, err := db.LeaseAsync(ctx, hold.RequestID, now.Add(time.Hour)); !ok || err != nil {
		t.Fatalf("LeaseAsync of the hold = %v %v", ok, err)
	}
	if n, err := db.VoidLeases(ctx); n != 1 || err != nil {
		t.Fatalf("VoidLeases = %d %v, want the hold's", n, err)
	}
	if got := ids(db.PendingAsync(ctx, now.Add(2*time.Second))); !reflect.DeepEqual(got, []string{"a-1", "h-1"}) {
		t.Errorf("pending at a restart: %v", got)
	}

	// Completed, the hold becomes a finished job of the synchronous channel.
	if ok, err := db.CompleteAsync(ctx, hold.RequestID, siobroker.AsyncDelivered, "", []byte("<reply/>"), now.Add(time.Hour)); !ok || err != nil {
		t.Fatalf("CompleteAsync of the hold = %v %v", ok, err)
	}
	if holds, jobs := count("sync_holds"), count("async_jobs"); holds != 0 || jobs != 2 {
		t.Fatalf("after completing the hold: %d holds and %d jobs, want 0 and 2", holds, jobs)
	}
	got, ok, err = db.AsyncJob(ctx, hold.RequestID)
	if err != nil || !ok || got.State != siobroker.AsyncDelivered || string(got.Reply) != "<reply/>" || got.Channel != siobroker.SyncChannel ||
		got.ReplyMessageID != hold.ReplyMessageID || !got.Updated.Equal(now.Add(time.Hour)) || got.TraceParent != hold.TraceParent {
		t.Fatalf("completed hold read back as %+v %v %v", got, ok, err)
	}
	if ok, _ := db.CompleteAsync(ctx, hold.RequestID, siobroker.AsyncNotDelivered, "again", nil, now); ok {
		t.Error("a completed hold was completed again")
	}
	if err := db.ForgetSync(ctx, hold.RequestID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.AsyncJob(ctx, hold.RequestID); !ok {
		t.Error("ForgetSync deleted a completed request's job")
	}

	// Stopped by an operator, a hold moves too; forgotten, it is gone.
	stopped, forgotten := hold, hold
	stopped.RequestID, forgotten.RequestID = "h-2", "h-3"
	for _, j := range []siobroker.AsyncJob{stopped, forgotten} {
		if err := db.CreateAsync(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := db.StopAsync(ctx, stopped.RequestID, "operator", now); !ok || err != nil {
		t.Fatalf("StopAsync of a hold = %v %v", ok, err)
	}
	if got, _, _ := db.AsyncJob(ctx, stopped.RequestID); got.State != siobroker.AsyncStopped || got.Reason != "operator" {
		t.Errorf("stopped hold read back as %+v", got)
	}
	if err := db.ForgetSync(ctx, forgotten.RequestID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.AsyncJob(ctx, forgotten.RequestID); ok {
		t.Error("a forgotten hold is still found")
	}
	if ok, _ := db.LeaseAsync(ctx, forgotten.RequestID, now); ok {
		t.Error("a forgotten hold was leased")
	}

	// A hold an earlier version kept among the jobs.
	legacy := hold
	legacy.RequestID, legacy.Reason = "h-old", "kept as before" // a reason keeps it out of sync_holds
	if err := db.CreateAsync(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	if count("sync_holds") != 0 {
		t.Fatal("a job with a reason was stored as a hold")
	}
	if ok, err := db.LeaseAsync(ctx, legacy.RequestID, now); !ok || err != nil {
		t.Fatalf("LeaseAsync of a hold among the jobs = %v %v", ok, err)
	}
	if err := db.ForgetSync(ctx, legacy.RequestID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.AsyncJob(ctx, legacy.RequestID); ok {
		t.Error("a hold among the jobs was not forgotten")
	}
}
