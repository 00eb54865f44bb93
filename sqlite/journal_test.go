package sqlite

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/journal"
	"github.com/sio-pso/siobroker/journal/journaltest"
)

// tamperJournal is the SQLite journal with the suite's hooks for raw SQL.
type tamperJournal struct {
	*Journal
}

func (j tamperJournal) RawUpdate(ctx context.Context, seq int64, r siobroker.JournalRecord) error {
	data := r.Data
	if data == nil {
		data = []byte{}
	}
	_, err := j.db.db.ExecContext(ctx, `UPDATE journal SET at = ?, at_unix_ms = ?, kind = ?, request_id = ?,
			message_id = ?, signer_iin = ?, organisation = ?, service = ?, code = ?, data = ?, prev_hash = ?, hash = ?
		WHERE seq = ?`,
		siobroker.FormatTime(r.At), r.At.UnixMilli(), string(r.Kind), r.RequestID, r.MessageID, r.SignerIIN,
		r.Organisation, r.Service, r.Code, data, r.PrevHash, r.Hash, seq)
	return err
}

func (j tamperJournal) RawDelete(ctx context.Context, seq int64) error {
	_, err := j.db.db.ExecContext(ctx, `DELETE FROM journal WHERE seq = ?`, seq)
	return err
}

func (j tamperJournal) Bypass(ctx context.Context, fn func() error) error {
	if _, err := j.db.db.ExecContext(ctx, `DROP TRIGGER journal_no_update; DROP TRIGGER journal_no_delete;`); err != nil {
		return err
	}
	ferr := fn()
	if _, err := j.db.db.ExecContext(ctx, journalTriggers); err != nil {
		return err
	}
	return ferr
}

func TestJournalSuite(t *testing.T) {
	journaltest.RunStoreSuite(t, func(t *testing.T) siobroker.Journal {
		return tamperJournal{openTest(t).Journal()}
	})
}

var _ siobroker.Journal = (*Journal)(nil)

// The hash does not cover the at text; Verify checks it against at_unix_ms, which it covers.
func TestJournalVerifyChecksTimeText(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	j := tamperJournal{db.Journal()}
	for i := range 3 {
		if _, err := j.Append(ctx, journaltest.Record(siobroker.JournalRequest, i, "r")); err != nil {
			t.Fatal(err)
		}
	}
	err := j.Bypass(ctx, func() error {
		_, err := db.db.ExecContext(ctx, `UPDATE journal SET at = '2020-01-01T00:00:00.000+05:00' WHERE seq = 2`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = j.Verify(ctx)
	if ce, ok := err.(*journal.ChainError); !ok || ce.Seq != 2 {
		t.Fatalf("Verify = %v; want a break at record 2", err)
	}
}

// Two handles on one file, as two brokers would have, append to one chain; and the journal
// survives reopening.
func TestJournalTwoHandles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	for _, db := range []*DB{a, b} {
		go func() {
			for i := range 100 {
				if _, err := db.Journal().Append(ctx, journaltest.Record(siobroker.JournalRequest, i, "r")); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	if seq, _, err := a.Journal().Head(ctx); err != nil || seq != 200 {
		t.Fatalf("Head = %d, %v; want 200", seq, err)
	}
	if err := a.Journal().Verify(ctx); err != nil {
		t.Fatal(err)
	}
	a.Close()
	c, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if seq, _, err := c.Journal().Head(ctx); err != nil || seq != 200 {
		t.Fatalf("after reopening Head = %d, %v; want 200", seq, err)
	}
}

// Separate processes append to one file; the chain stays one chain. The test binary runs itself
// as the other processes (TestJournalHelperProcess).
func TestJournalSeveralProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const procs, appends = 3, 60
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, dir) // migrate before the processes start
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*strings.Builder, procs)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestJournalHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SIO_JOURNAL_HELPER_DIR="+dir,
			"SIO_JOURNAL_HELPER_APPENDS="+strconv.Itoa(appends), fmt.Sprintf("SIO_JOURNAL_HELPER_NAME=p%d", i))
		outs[i] = &strings.Builder{}
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	// This process appends too, meanwhile.
	for i := range appends {
		if _, err := db.Journal().Append(ctx, journaltest.Record(siobroker.JournalRequest, i, "parent")); err != nil {
			t.Fatal(err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, outs[i])
		}
	}
	want := int64((procs + 1) * appends)
	if seq, _, err := db.Journal().Head(ctx); err != nil || seq != want {
		t.Fatalf("Head = %d, %v; want %d", seq, err, want)
	}
	if err := db.Journal().Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestJournalHelperProcess(t *testing.T) {
	dir := os.Getenv("SIO_JOURNAL_HELPER_DIR")
	if dir == "" {
		t.Skip("run by TestJournalSeveralProcesses")
	}
	n, _ := strconv.Atoi(os.Getenv("SIO_JOURNAL_HELPER_APPENDS"))
	ctx := context.Background()
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := os.Getenv("SIO_JOURNAL_HELPER_NAME")
	for i := range n {
		if _, err := db.Journal().Append(ctx, journaltest.Record(siobroker.JournalRequest, i, name)); err != nil {
			t.Fatal(err)
		}
	}
}
