package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

// TestAdmissions: a mark naming a request is an admission until its request is stored, ended or
// released; ForgetSeenBefore keeps it meanwhile; the statement that ends one uses its index.
func TestAdmissions(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, siobroker.Astana)
	for _, m := range []siobroker.ReplayMark{
		{Key: "m-accepted", SenderID: "s", Digest: "d1", At: at, RequestID: "r-accepted", SignerIIN: "750312300458"},
		{Key: "m-ended", SenderID: "s", Digest: "d2", At: at, RequestID: "r-ended", SignerIIN: "750312300458"},
		{Key: "m-left", SenderID: "s", Digest: "d3", At: at, RequestID: "r-left", SignerIIN: "750312300458"},
		{Key: "m-status", SenderID: "s", Digest: "d4", At: at},
	} {
		if id, content, err := db.MarkRequest(ctx, m); err != nil || !id || !content {
			t.Fatalf("MarkRequest(%s) = %v, %v, %v", m.Key, id, content, err)
		}
	}
	if err := db.CreateAsync(ctx, siobroker.AsyncJob{RequestID: "r-accepted", MessageID: "m-accepted", State: siobroker.AsyncOnDelivery,
		Received: at, Channel: siobroker.SyncChannel}); err != nil {
		t.Fatal(err)
	}
	if err := db.EndAdmission(ctx, "r-ended"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ForgetSeenBefore(ctx, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	marks, err := db.Admissions(ctx, at)
	if err != nil || len(marks) != 1 {
		t.Fatalf("Admissions = %+v, %v; want r-left only", marks, err)
	}
	if m := marks[0]; m.RequestID != "r-left" || m.Key != "m-left" || m.Digest != "d3" || m.SignerIIN != "750312300458" || !m.At.Equal(at) {
		t.Fatalf("admission %+v", m)
	}
	if marks, _ := db.Admissions(ctx, at.Add(-time.Second)); len(marks) != 0 {
		t.Fatalf("Admissions before the mark = %+v", marks)
	}
	if err := db.Release(ctx, "m-left", "d3"); err != nil {
		t.Fatal(err)
	}
	if marks, _ := db.Admissions(ctx, at); len(marks) != 0 {
		t.Fatalf("Admissions after Release = %+v", marks)
	}
	var plan string
	var id, parent, unused int
	if err := db.db.QueryRowContext(ctx, `EXPLAIN QUERY PLAN `+endAdmissionSQL, "r").Scan(&id, &parent, &unused, &plan); err != nil {
		t.Fatal(err)
	}
	if want := "seen_messages_admitting"; !strings.Contains(plan, want) {
		t.Fatalf("ending an admission: plan %q does not use %s", plan, want)
	}
}

// TestStoreID: a store keeps its id across reopening (a broker's restart), and two stores have
// different ids, so that brokers sharing their replay marks each find only their own admissions.
func TestStoreID(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ids := map[string]bool{}
	for _, d := range []string{dir, dir, t.TempDir()} {
		db, err := Open(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		id, err := db.StoreID(ctx)
		db.Close()
		if err != nil || len(id) != 32 {
			t.Fatalf("StoreID = %q, %v; want 32 hex digits", id, err)
		}
		ids[id] = true
	}
	if len(ids) != 2 {
		t.Fatalf("ids %v: want one for the reopened store and another for the second", ids)
	}
}
