package archive

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// pki is a development PKI: its trust store and the broker's signer.
type pki struct {
	dir    string
	trust  *signing.TrustStore
	broker *signing.Signer
}

// pkiA signs the archives; pkiB is another CA, which pkiA's trust store does not know. Generated
// once: RSA key generation is too slow to repeat per test.
var pkiA, pkiB pki

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "archive tests: setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	now := time.Now()
	for _, p := range []*pki{&pkiA, &pkiB} {
		dir, err := os.MkdirTemp("", "archive-test-pki-")
		if err != nil {
			return 1, err
		}
		defer os.RemoveAll(dir)
		man, err := devpki.Generate(dir, now)
		if err != nil {
			return 1, err
		}
		p.dir = dir
		if p.trust, err = signing.LoadTrustStore(signing.TrustConfig{
			RootFiles: []string{filepath.Join(dir, man.CA)},
			CRLFiles:  []string{filepath.Join(dir, man.CRL)},
		}); err != nil {
			return 1, err
		}
		if p.broker, err = signing.LoadSigner(filepath.Join(dir, man.BrokerCert), filepath.Join(dir, man.BrokerKey)); err != nil {
			return 1, err
		}
	}
	return m.Run(), nil
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var sealClock = fixedClock{time.Now().In(siobroker.Astana)}

// memSource is an in-memory journal.
type memSource struct {
	mu      sync.Mutex
	recs    []siobroker.JournalRecord
	queries int
}

func (s *memSource) Query(ctx context.Context, f siobroker.JournalFilter) ([]siobroker.JournalRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries++
	var out []siobroker.JournalRecord
	for _, r := range s.recs {
		if r.Seq > f.AfterSeq && (f.Limit == 0 || len(out) < f.Limit) {
			out = append(out, r)
		}
	}
	return out, nil
}

// append adds n correctly chained records to the journal.
func (s *memSource) append(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, chained(s.recs, n)...)
}

func (s *memSource) all() []siobroker.JournalRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.recs)
}

func newSource(n int) *memSource {
	s := &memSource{}
	s.append(n)
	return s
}

// chained returns n records that continue before, each with its Seq, PrevHash and Hash.
func chained(before []siobroker.JournalRecord, n int) []siobroker.JournalRecord {
	var seq int64
	prev := ""
	if len(before) > 0 {
		seq, prev = before[len(before)-1].Seq, before[len(before)-1].Hash
	}
	base := time.Date(2025, 3, 1, 9, 0, 0, 0, siobroker.Astana)
	kinds := []siobroker.JournalKind{siobroker.JournalRequest, siobroker.JournalExchange, siobroker.JournalReply, siobroker.JournalRefusal}
	out := make([]siobroker.JournalRecord, 0, n)
	for i := 0; i < n; i++ {
		seq++
		r := siobroker.JournalRecord{
			Seq:          seq,
			At:           base.Add(time.Duration(seq) * 1500 * time.Millisecond),
			Kind:         kinds[seq%int64(len(kinds))],
			RequestID:    fmt.Sprintf("req-%d", seq/3),
			MessageID:    fmt.Sprintf("msg-%d", seq/3),
			SignerIIN:    "750312300456",
			Organisation: "Генеральная прокуратура РК",
			Service:      int(seq % 7),
			Code:         "OK",
			// Data of varying length, with bytes that are not UTF-8.
			Data:     bytes.Repeat([]byte{'<', 0xff, byte(seq)}, int(seq%13)),
			PrevHash: prev,
		}
		r.Hash = r.ComputeHash()
		prev = r.Hash
		out = append(out, r)
	}
	return out
}

func newSealer(t *testing.T, dir string, maxRecords int, maxBytes int64, src siobroker.JournalReader, signer Signer) *Sealer {
	t.Helper()
	s, err := NewSealer(Config{Dir: dir, MaxRecords: maxRecords, MaxBytes: maxBytes}, src, signer, sealClock)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// span is the first and last Seq of an archive.
type span struct{ first, last int64 }

func spans(ms []Manifest) []span {
	var out []span
	for _, m := range ms {
		out = append(out, span{m.FirstSeq, m.LastSeq})
	}
	return out
}

func verifyOK(t *testing.T, dir string) Report {
	t.Helper()
	rep, err := Verify(dir, pkiA.trust)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func TestSealByCount(t *testing.T) {
	ctx, dir := ctxT(t), t.TempDir()
	src := newSource(25)
	s := newSealer(t, dir, 10, 0, src, pkiA.broker)
	if seq, err := LastSealedSeq(dir); seq != 0 || err != nil {
		t.Fatalf("LastSealedSeq before any archive = %d, %v", seq, err)
	}

	ms, err := s.SealFull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := spans(ms), []span{{1, 10}, {11, 20}}; !slices.Equal(got, want) {
		t.Fatalf("SealFull sealed %v, want %v", got, want)
	}
	if seq, err := LastSealedSeq(dir); seq != 20 || err != nil {
		t.Fatalf("LastSealedSeq = %d, %v; want 20", seq, err)
	}
	recs := src.all()
	m1, m2 := ms[0], ms[1]
	if m1.Number != 1 || m1.FirstPrevHash != "" || m1.PrevManifestSHA256 != "" || m1.LastHash != recs[9].Hash || m1.Count != 10 {
		t.Errorf("manifest 1: %+v", m1)
	}
	raw1, err := os.ReadFile(filepath.Join(dir, "journal-000001.manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m2.Number != 2 || m2.FirstPrevHash != m1.LastHash || m2.PrevManifestSHA256 != hexSHA256(raw1) || m2.File != "journal-000002.jsonl.gz" {
		t.Errorf("manifest 2 does not link to 1: %+v", m2)
	}
	if m1.SealedAt != siobroker.FormatTime(sealClock.t) || !strings.HasSuffix(m1.SealedAt, "+05:00") {
		t.Errorf("SealedAt %q", m1.SealedAt)
	}
	if m1.Signer != pkiA.broker.Certificate().Subject.String() {
		t.Errorf("Signer %q", m1.Signer)
	}
	for _, name := range []string{"journal-000001.jsonl.gz", "journal-000001.manifest.json", "journal-000001.manifest.sig", "journal-000001.cert.pem"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The gzip file holds the records, every field, one JSON object a line.
	lines := readGz(t, filepath.Join(dir, "journal-000001.jsonl.gz"))
	if len(lines) != 10 {
		t.Fatalf("%d lines, want 10", len(lines))
	}
	for i, line := range lines {
		r, err := decodeRecord([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.Data, recs[i].Data) || r.Hash != recs[i].Hash || r.ComputeHash() != r.Hash || !r.At.Equal(recs[i].At) {
			t.Errorf("line %d does not read back as record %d: %s", i+1, recs[i].Seq, line)
		}
	}
	if !strings.Contains(lines[0], `"organisation":"Генеральная прокуратура РК"`) || !strings.Contains(lines[0], `"at":"2025-03-01T09:00:01.500+05:00"`) {
		t.Errorf("line 1: %s", lines[0])
	}

	// Nothing more is full; SealNow seals the pending five, then there is nothing to seal.
	if ms, err := s.SealFull(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("SealFull again: %v, %v", spans(ms), err)
	}
	ms, err = s.SealNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := spans(ms), []span{{21, 25}}; !slices.Equal(got, want) {
		t.Fatalf("SealNow sealed %v, want %v", got, want)
	}
	if ms, err := s.SealNow(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("SealNow with nothing pending: %v, %v", spans(ms), err)
	}
	rep := verifyOK(t, dir)
	if rep.Archives != 3 || rep.Records != 25 || rep.FirstSeq != 1 || rep.LastSeq != 25 || rep.LastHash != recs[24].Hash {
		t.Errorf("report %+v", rep)
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 12 {
		t.Errorf("%d files in the directory, want 12", len(entries))
	}
}

func TestSealByBytes(t *testing.T) {
	ctx := ctxT(t)
	src := newSource(40)
	recs := src.all()
	size := func(r siobroker.JournalRecord) int64 {
		line, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		return int64(len(line))
	}
	// expect applies the rule: the record that reaches a limit is the last of its segment.
	expect := func(maxRecords int, maxBytes int64) (full []span) {
		var count int
		var bytes int64
		first := int64(0)
		for _, r := range recs {
			if count == 0 {
				first = r.Seq
			}
			count++
			bytes += size(r)
			if (maxRecords > 0 && count >= maxRecords) || (maxBytes > 0 && bytes >= maxBytes) {
				full = append(full, span{first, r.Seq})
				count, bytes = 0, 0
			}
		}
		return full
	}
	limit := size(recs[0]) + size(recs[1]) + size(recs[2]) // about three records
	for _, tc := range []struct {
		name       string
		maxRecords int
		maxBytes   int64
	}{
		{"bytes", 0, limit},
		{"bytes before count", 100, limit},
		{"count before bytes", 2, 1 << 20},
		{"one record is enough", 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ms, err := newSealer(t, dir, tc.maxRecords, tc.maxBytes, src, pkiA.broker).SealFull(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := expect(tc.maxRecords, tc.maxBytes)
			if got := spans(ms); !slices.Equal(got, want) {
				t.Fatalf("sealed %v, want %v", got, want)
			}
			if len(want) < 3 {
				t.Fatalf("the case seals only %d segments", len(want))
			}
			verifyOK(t, dir)
		})
	}
}

func TestSealFullContinues(t *testing.T) {
	ctx, dir := ctxT(t), t.TempDir()
	src := newSource(1234) // more than one page of the source
	ms, err := newSealer(t, dir, 500, 0, src, pkiA.broker).SealFull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := spans(ms), []span{{1, 500}, {501, 1000}}; !slices.Equal(got, want) {
		t.Fatalf("first sealer: %v, want %v", got, want)
	}
	src.append(900)
	// A new Sealer (a restarted broker) continues from the last manifest in the directory.
	src.mu.Lock()
	src.queries = 0
	src.mu.Unlock()
	ms, err = newSealer(t, dir, 500, 0, src, pkiA.broker).SealFull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := spans(ms), []span{{1001, 1500}, {1501, 2000}}; !slices.Equal(got, want) {
		t.Fatalf("second sealer: %v, want %v", got, want)
	}
	if ms[0].Number != 3 {
		t.Errorf("the second sealer numbered from %d, want 3", ms[0].Number)
	}
	src.mu.Lock()
	// From 1000: the measure's page of 500, which fills a segment; then the seal's pages of 500, 500,
	// 134 and an empty one. From the start, the seal alone would take six.
	if src.queries > 5 {
		t.Errorf("%d queries: the sealer read the journal from the start", src.queries)
	}
	src.mu.Unlock()
	rep := verifyOK(t, dir)
	if rep.Archives != 4 || rep.Records != 2000 || rep.LastSeq != 2000 {
		t.Errorf("report %+v", rep)
	}

	// A journal that does not continue the archives (another journal) is refused.
	other := newSource(2100)
	other.recs[2000].PrevHash = "00"
	other.recs[2000].Hash = other.recs[2000].ComputeHash()
	if _, err := newSealer(t, dir, 10, 0, other, pkiA.broker).SealFull(ctx); err == nil || !strings.Contains(err.Error(), "chain breaks between records 2000 and 2001") {
		t.Errorf("a journal that does not continue: %v", err)
	}
}

func TestSealRefusesBrokenJournal(t *testing.T) {
	ctx := ctxT(t)
	for _, tc := range []struct {
		name  string
		spoil func([]siobroker.JournalRecord) []siobroker.JournalRecord
		want  string
	}{
		{"gap", func(r []siobroker.JournalRecord) []siobroker.JournalRecord { return slices.Delete(r, 4, 5) }, "record 5 is missing from the journal"},
		{"changed", func(r []siobroker.JournalRecord) []siobroker.JournalRecord { r[6].Code = "X"; return r }, "record 7 of the journal does not match its hash"},
		{"not the first", func(r []siobroker.JournalRecord) []siobroker.JournalRecord { return r[3:] }, "record 4 is not the first of the journal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := &memSource{recs: tc.spoil(chained(nil, 20))}
			ms, err := newSealer(t, dir, 3, 0, src, pkiA.broker).SealFull(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			// What came before the problem is sealed and verifies.
			if len(ms) == 0 && tc.name != "not the first" {
				t.Errorf("nothing sealed before the problem")
			}
			verifyOK(t, dir)
		})
	}
}

func TestSealNeverOverwrites(t *testing.T) {
	ctx := ctxT(t)
	src := newSource(10)

	// A file in the way, with other content: refused, and left as it was.
	dir := t.TempDir()
	junk := filepath.Join(dir, "journal-000001.jsonl.gz")
	if err := os.WriteFile(junk, []byte("not ours"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newSealer(t, dir, 5, 0, src, pkiA.broker).SealFull(ctx); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("got %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(junk); string(b) != "not ours" {
		t.Errorf("the file in the way was changed")
	}
	if _, err := os.Stat(filepath.Join(dir, "journal-000001.manifest.json")); !os.IsNotExist(err) {
		t.Errorf("a manifest was written: %v", err)
	}

	// A seal interrupted before its manifest left the gzip file and the certificate: the next
	// seal writes the same bytes, so it keeps them and goes on.
	done := t.TempDir()
	if _, err := newSealer(t, done, 5, 0, src, pkiA.broker).SealFull(ctx); err != nil {
		t.Fatal(err)
	}
	crashed := t.TempDir()
	for _, name := range []string{"journal-000001.jsonl.gz", "journal-000001.cert.pem"} {
		copyFile(t, filepath.Join(done, name), filepath.Join(crashed, name))
	}
	if ms, err := newSealer(t, crashed, 5, 0, src, pkiA.broker).SealFull(ctx); err != nil || len(ms) != 2 {
		t.Fatalf("after an interrupted seal: %v, %v", spans(ms), err)
	}
	verifyOK(t, crashed)

	// A seal interrupted after its manifest but before the signature: the next seal signs it.
	if err := os.Remove(filepath.Join(crashed, "journal-000002.manifest.sig")); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(crashed, pkiA.trust); err == nil || err.Error() != "journal-000002.manifest.sig is missing" {
		t.Fatalf("Verify without the signature: %v", err)
	}
	src.append(5)
	ms, err := newSealer(t, crashed, 5, 0, src, pkiA.broker).SealFull(ctx)
	if err != nil || len(ms) != 1 || ms[0].Number != 3 {
		t.Fatalf("after a seal interrupted before its signature: %v, %v", spans(ms), err)
	}
	verifyOK(t, crashed)

	// Another broker's certificate does not complete our unsigned manifest.
	if err := os.Remove(filepath.Join(crashed, "journal-000003.manifest.sig")); err != nil {
		t.Fatal(err)
	}
	if _, err := newSealer(t, crashed, 5, 0, src, pkiB.broker).SealFull(ctx); err == nil || !strings.Contains(err.Error(), "has no signature") {
		t.Errorf("a foreign signer completing a signature: %v", err)
	}
}

func TestNewSealerChecksConfig(t *testing.T) {
	src, dir := newSource(1), t.TempDir()
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{MaxRecords: 1}, "archive: Config.Dir is required"},
		{Config{Dir: dir}, "archive: Config.MaxRecords or Config.MaxBytes is required"},
		{Config{Dir: dir, MaxRecords: -1, MaxBytes: 10}, "archive: Config.MaxRecords must not be negative"},
		{Config{Dir: dir, MaxBytes: -1, MaxRecords: 10}, "archive: Config.MaxBytes must not be negative"},
	} {
		if err := tt.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: Validate() = %v, want %q", tt.cfg, err, tt.want)
		}
		if _, err := NewSealer(tt.cfg, src, pkiA.broker, sealClock); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: NewSealer: %v, want %q", tt.cfg, err, tt.want)
		}
	}
	cfg := Config{Dir: dir, MaxRecords: 1}
	for _, tt := range []struct {
		src    siobroker.JournalReader
		signer Signer
		clock  siobroker.Clock
		want   string
	}{
		{nil, pkiA.broker, sealClock, "archive: NewSealer: src is required"},
		{src, nil, sealClock, "archive: NewSealer: signer is required"},
		{src, pkiA.broker, nil, "archive: NewSealer: clock is required"},
	} {
		if _, err := NewSealer(cfg, tt.src, tt.signer, tt.clock); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewSealer: %v, want %q", err, tt.want)
		}
	}
	late := fixedClock{pkiA.broker.Certificate().NotAfter.Add(time.Hour)}
	s, err := NewSealer(Config{Dir: dir, MaxRecords: 1}, src, pkiA.broker, late)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SealNow(ctxT(t)); err == nil || !strings.Contains(err.Error(), "is not valid at") {
		t.Errorf("sealing with an expired certificate: %v", err)
	}
}

func TestSealConcurrent(t *testing.T) {
	ctx, dir := ctxT(t), t.TempDir()
	src := newSource(0)
	s := newSealer(t, dir, 7, 0, src, pkiA.broker)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src.append(11)
			if _, err := s.SealFull(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, err := s.SealNow(ctx); err != nil {
		t.Fatal(err)
	}
	if rep := verifyOK(t, dir); rep.Records != 88 || rep.Archives != 13 {
		t.Errorf("report %+v", rep)
	}
}

func readGz(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
