package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sio-pso/siobroker"
)

// loggedSource notes the AfterSeq of every Query.
type loggedSource struct {
	siobroker.JournalReader
	mu    sync.Mutex
	after []int64
}

func (s *loggedSource) Query(ctx context.Context, f siobroker.JournalFilter) ([]siobroker.JournalRecord, error) {
	s.mu.Lock()
	s.after = append(s.after, f.AfterSeq)
	s.mu.Unlock()
	return s.JournalReader.Query(ctx, f)
}

// take returns the AfterSeq values queried since the last take.
func (s *loggedSource) take() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.after
	s.after = nil
	return out
}

// sealWithoutMemory seals as SealFull did before the Sealer remembered its measure: every
// pending record read from the last sealed archive.
func sealWithoutMemory(ctx context.Context, s *Sealer) ([]Manifest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pos, err := s.resume(ctx)
	if err != nil {
		return nil, err
	}
	return s.sealFrom(ctx, pos, false, nil)
}

// dirFiles returns the files of dir by name.
func dirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func sameDirs(t *testing.T, got, want string) {
	t.Helper()
	g, w := dirFiles(t, got), dirFiles(t, want)
	for name, b := range w {
		if gb, ok := g[name]; !ok {
			t.Errorf("%s is missing", name)
		} else if !bytes.Equal(gb, b) {
			t.Errorf("%s differs", name)
		}
	}
	for name := range g {
		if _, ok := w[name]; !ok {
			t.Errorf("%s should not be there", name)
		}
	}
}

func TestSealFullMemoryWritesTheSameArchives(t *testing.T) {
	ctx := ctxT(t)
	src := newSource(1)
	limit := int64(0)
	for _, r := range chained(nil, 6) {
		line, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		limit += int64(len(line))
	}
	for _, tc := range []struct {
		name       string
		maxRecords int
		maxBytes   int64
	}{
		{"records", 10, 0},
		{"bytes", 0, limit},
		{"both", 9, limit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &memSource{recs: slices.Clone(src.all())}
			memDir, oldDir := t.TempDir(), t.TempDir()
			mem := newSealer(t, memDir, tc.maxRecords, tc.maxBytes, src, pkiA.broker)
			remembered := 0
			for round, n := range []int{3, 2, 1, 14, 0, 22, 5, 4, 2, 31, 0, 1, 7} {
				src.append(n)
				got, err := mem.SealFull(ctx)
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				want, err := sealWithoutMemory(ctx, newSealer(t, oldDir, tc.maxRecords, tc.maxBytes, src, pkiA.broker))
				if err != nil {
					t.Fatalf("round %d, without memory: %v", round, err)
				}
				if !slices.Equal(spans(got), spans(want)) {
					t.Fatalf("round %d: sealed %v, without memory %v", round, spans(got), spans(want))
				}
				sameDirs(t, memDir, oldDir)
				if mem.measured != nil && mem.measured.count > 0 {
					remembered++
				}
			}
			if remembered < 3 {
				t.Fatalf("the memory was used in %d rounds only", remembered)
			}
			if _, err := mem.SealNow(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := newSealer(t, oldDir, tc.maxRecords, tc.maxBytes, src, pkiA.broker).SealNow(ctx); err != nil {
				t.Fatal(err)
			}
			sameDirs(t, memDir, oldDir)
			if rep := verifyOK(t, memDir); rep.Records != 93 || rep.Archives < 9 {
				t.Errorf("report %+v", rep)
			}
		})
	}
}

func TestSealFullReadsOnlyNewRecords(t *testing.T) {
	ctx, dir := ctxT(t), t.TempDir()
	src := &loggedSource{JournalReader: newSource(25)}
	s := newSealer(t, dir, 10, 0, src, pkiA.broker)
	if ms, err := s.SealFull(ctx); err != nil || len(ms) != 2 {
		t.Fatalf("SealFull: %v, %v", spans(ms), err)
	}
	src.take()

	// The first call after a seal measures the pending records from the sealed position.
	if ms, err := s.SealFull(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("SealFull: %v, %v", spans(ms), err)
	}
	if got, want := src.take(), []int64{20, 25}; !slices.Equal(got, want) {
		t.Fatalf("queried after %v, want %v", got, want)
	}
	// Then only what follows the last measured record.
	if ms, err := s.SealFull(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("SealFull with nothing new: %v, %v", spans(ms), err)
	}
	if got, want := src.take(), []int64{25}; !slices.Equal(got, want) {
		t.Fatalf("with nothing new, queried after %v, want %v", got, want)
	}
	src.JournalReader.(*memSource).append(3)
	if ms, err := s.SealFull(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("SealFull: %v, %v", spans(ms), err)
	}
	if got, want := src.take(), []int64{25, 28}; !slices.Equal(got, want) {
		t.Fatalf("with three new records, queried after %v, want %v", got, want)
	}
	// When the measure reaches a full segment, the seal reads it all again from the sealed position.
	src.JournalReader.(*memSource).append(4)
	ms, err := s.SealFull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := spans(ms), []span{{21, 30}}; !slices.Equal(got, want) {
		t.Fatalf("sealed %v, want %v", got, want)
	}
	if got, want := src.take(), []int64{28, 20, 32}; !slices.Equal(got, want) {
		t.Fatalf("sealing, queried after %v, want %v", got, want)
	}
	if s.measured != nil {
		t.Errorf("the measure is remembered after a seal: %+v", *s.measured)
	}
	// SealNow does not use the memory.
	if _, err := s.SealFull(ctx); err != nil {
		t.Fatal(err)
	}
	src.take()
	if ms, err := s.SealNow(ctx); err != nil || !slices.Equal(spans(ms), []span{{31, 32}}) {
		t.Fatalf("SealNow: %v, %v", spans(ms), err)
	}
	if got, want := src.take(), []int64{30, 32}; !slices.Equal(got, want) {
		t.Fatalf("SealNow queried after %v, want %v", got, want)
	}
	verifyOK(t, dir)
}

func TestSealFullCatchesAMeasuredRecordChanged(t *testing.T) {
	ctx := ctxT(t)
	for _, tc := range []struct {
		name  string
		spoil func(*siobroker.JournalRecord)
		want  string
	}{
		{"changed", func(r *siobroker.JournalRecord) { r.Code = "X" }, "record 23 of the journal does not match its hash"},
		{"changed and rehashed", func(r *siobroker.JournalRecord) { r.Code = "X"; r.Hash = r.ComputeHash() },
			"the journal's chain breaks between records 23 and 24"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := newSource(25)
			s := newSealer(t, dir, 10, 0, src, pkiA.broker)
			for range 2 { // the first seals 1 to 20, the second measures 21 to 25
				if _, err := s.SealFull(ctx); err != nil {
					t.Fatal(err)
				}
			}
			src.mu.Lock()
			tc.spoil(&src.recs[22])
			src.mu.Unlock()
			// The price of the memory: the change is not seen until the segment is sealed.
			if ms, err := s.SealFull(ctx); err != nil || len(ms) != 0 {
				t.Fatalf("SealFull before the segment is full: %v, %v", spans(ms), err)
			}
			src.append(5)
			ms, err := s.SealFull(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if len(ms) != 0 {
				t.Errorf("sealed %v", spans(ms))
			}
			if seq, err := LastSealedSeq(dir); seq != 20 || err != nil {
				t.Errorf("LastSealedSeq = %d, %v; want 20", seq, err)
			}
			if s.measured != nil {
				t.Errorf("the measure is remembered after an error: %+v", *s.measured)
			}
			// Forgotten, so the next call measures from the sealed position and sees it at once.
			if _, err := s.SealFull(ctx); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("again: got %v, want %q", err, tc.want)
			}
			verifyOK(t, dir)
		})
	}
}

func TestSealFullForgetsWhenAnotherSealed(t *testing.T) {
	ctx, dir := ctxT(t), t.TempDir()
	mem := newSource(25)
	src := &loggedSource{JournalReader: mem}
	s := newSealer(t, dir, 10, 0, src, pkiA.broker)
	for range 2 { // the first seals 1 to 20, the second measures 21 to 25
		if _, err := s.SealFull(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if s.measured == nil || s.measured.lastSeq != 25 || s.measured.count != 5 {
		t.Fatalf("measured %+v", s.measured)
	}
	mem.append(3)
	if ms, err := newSealer(t, dir, 10, 0, mem, pkiA.broker).SealNow(ctx); err != nil || !slices.Equal(spans(ms), []span{{21, 28}}) {
		t.Fatalf("the other sealer: %v, %v", spans(ms), err)
	}
	mem.append(4)
	src.take()
	if ms, err := s.SealFull(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("SealFull: %v, %v", spans(ms), err)
	}
	if got, want := src.take(), []int64{28, 32}; !slices.Equal(got, want) {
		t.Fatalf("queried after %v, want %v (from the other sealer's last archive)", got, want)
	}
	if m := s.measured; m == nil || m.from.number != 4 || m.from.afterSeq != 28 || m.lastSeq != 32 || m.count != 4 {
		t.Fatalf("measured %+v", m)
	}
	mem.append(6)
	ms, err := s.SealFull(ctx)
	if err != nil || !slices.Equal(spans(ms), []span{{29, 38}}) {
		t.Fatalf("SealFull: %v, %v", spans(ms), err)
	}
	verifyOK(t, dir)
}
