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
	pending, err := db.PendingAsync(ctx, now, false)
	if err != nil || len(pending) != 1 || pending[0].RequestID != "b-1" {
		t.Fatalf("PendingAsync = %+v %v, want only the unleased job", pending, err)
	}
	if !pending[0].Info.MessageDate.Equal(now) || !reflect.DeepEqual(pending[0].Query, job.Query) ||
		!reflect.DeepEqual(pending[0].Info.Properties, job.Info.Properties) || pending[0].TraceParent != job.TraceParent {
		t.Fatalf("job read back as %+v", pending[0])
	}
	db.Close()

	// Reopened, as after a restart: the resume scan takes the leased job too.
	if db, err = Open(ctx, dir); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if pending, err = db.PendingAsync(ctx, now, true); err != nil || len(pending) != 2 {
		t.Fatalf("resume scan = %d jobs %v, want 2", len(pending), err)
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
	if pending, _ = db.PendingAsync(ctx, now.Add(2*time.Hour), true); len(pending) != 0 {
		t.Fatalf("%d jobs still pending", len(pending))
	}
}
