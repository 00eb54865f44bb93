package sqlite

import (
	"bytes"
	"context"
	"testing"
	"time"
)

func TestKeepAnswer(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	first, same, err := db.KeepAnswer(ctx, "r1/5", []byte(`{"a":1}`), []byte("sum-a"), at)
	if err != nil || !first || !same {
		t.Fatalf("first answer: first %v same %v err %v", first, same, err)
	}
	// A copy: the same result, another payload (another adapter's timestamps).
	first, same, err = db.KeepAnswer(ctx, "r1/5", []byte(`{"a":1,"t":2}`), []byte("sum-a"), at)
	if err != nil || first || !same {
		t.Fatalf("copy: first %v same %v err %v", first, same, err)
	}
	// Another answer to the same key.
	first, same, err = db.KeepAnswer(ctx, "r1/5", []byte(`{"b":2}`), []byte("sum-b"), at)
	if err != nil || first || same {
		t.Fatalf("another answer: first %v same %v err %v", first, same, err)
	}
	payload, ok, err := db.Answer(ctx, "r1/5")
	if err != nil || !ok || !bytes.Equal(payload, []byte(`{"a":1}`)) {
		t.Fatalf("Answer = %s, %v, %v; want the first", payload, ok, err)
	}
	if _, ok, _ := db.Answer(ctx, "r1/6"); ok {
		t.Fatal("an answer for a key never answered")
	}
	if n, err := db.ForgetAnswersBefore(ctx, at.Add(time.Millisecond)); err != nil || n != 1 {
		t.Fatalf("ForgetAnswersBefore = %d, %v", n, err)
	}
	if _, ok, _ := db.Answer(ctx, "r1/5"); ok {
		t.Fatal("a forgotten answer is still held")
	}
}
