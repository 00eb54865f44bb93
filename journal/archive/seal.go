package archive

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/pace"
	"github.com/sio-pso/siobroker/internal/private"
)

// Signer signs manifests. *signing.Signer satisfies it. If it also has
// Chain() []*x509.Certificate, the intermediates are written after the certificate.
type Signer interface {
	SignDetached(data []byte) ([]byte, error)
	Certificate() *x509.Certificate
}

// Config says where archives go and when a segment of the journal is full.
type Config struct {
	Dir string
	// A segment is sealed when it reaches MaxRecords records or MaxBytes of record data (the
	// bytes of its JSON lines before compression), whichever comes first; the record that reaches
	// the limit is the segment's last, so a segment may pass MaxBytes by less than one record.
	// Zero means no limit of that kind; at least one must be set.
	MaxRecords int
	MaxBytes   int64
	// Share is the share of the wall time SealFull, the broker's background seal, may spend
	// working: it rests after each page of records it reads (see internal/pace), so that a seal of
	// ten thousand records does not take a core from the requests at once. Zero: it never rests.
	// SealNow never rests: the operator waits for it.
	Share float64
}

// Validate reports what is wrong with c: Dir is required, and at least one segment limit, none
// negative. Config has no defaults.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("archive: Config.Dir is required"))
	}
	if c.MaxRecords < 0 {
		errs = append(errs, fmt.Errorf("archive: Config.MaxRecords must not be negative, got %d", c.MaxRecords))
	}
	if c.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("archive: Config.MaxBytes must not be negative, got %d", c.MaxBytes))
	}
	if err := pace.Check(c.Share); err != nil {
		errs = append(errs, fmt.Errorf("archive: Config.Share: %w", err))
	}
	if c.MaxRecords == 0 && c.MaxBytes == 0 {
		errs = append(errs, errors.New("archive: Config.MaxRecords or Config.MaxBytes is required (no segment limit)"))
	}
	return errors.Join(errs...)
}

// pageSize is how many records are asked of the Source at a time.
const pageSize = 500

// Sealer seals the journal into archives. It is safe for concurrent use; seals run one at a time.
// Two Sealers (or processes) must not share a directory: the loser of a race is refused rather
// than overwriting, but it is an error all the same.
//
// SealFull is called often (every minute in the broker) and most calls find no full segment. So
// that such a call does not read, verify and encode every pending record again, the Sealer
// remembers how far it has measured past the last sealed archive, and a call continues from the
// last measured record, verifying only the records that are new. When the measure shows a full
// segment, the seal starts over from the last sealed archive and reads and verifies every record
// it seals, exactly as a Sealer without memory would: the measure decides only when to seal, never
// what, so the archives are the same byte for byte. The memory is forgotten after a seal, after
// any error, and when the last sealed archive is not the one it started from (another process
// sealed, the directory changed). The price: a pending record altered after it was measured is no
// longer caught by the next SealFull, within the minute, but when its segment is sealed (the seal
// refuses it and seals nothing past it), or by the journal's own Verify of the whole chain.
// `siobroker journal verify` reads only sealed archives, so it does not see such a record sooner.
type Sealer struct {
	cfg     Config
	src     siobroker.JournalReader
	signer  Signer
	clock   siobroker.Clock
	certPEM []byte
	subject string

	mu       sync.Mutex
	measured *measure // guarded by mu; nil when nothing is remembered
}

// measure is how far SealFull has read the pending records without finding a full segment.
type measure struct {
	from     position // the last sealed archive when the measure began
	lastSeq  int64    // the last record measured; from.afterSeq if none
	lastHash string
	count    int   // records measured, as segment.count counts them
	bytes    int64 // their JSON lines' bytes, as segment.bytes counts them
}

// NewSealer checks cfg and its collaborators, and creates cfg.Dir if needed. The error names
// every field of cfg that is invalid and every collaborator that is missing: src, signer and
// clock are required.
func NewSealer(cfg Config, src siobroker.JournalReader, signer Signer, clock siobroker.Clock) (*Sealer, error) {
	errs := []error{cfg.Validate()}
	if src == nil {
		errs = append(errs, errors.New("archive: NewSealer: src is required"))
	}
	if signer == nil {
		errs = append(errs, errors.New("archive: NewSealer: signer is required"))
	}
	if clock == nil {
		errs = append(errs, errors.New("archive: NewSealer: clock is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cert := signer.Certificate()
	if cert == nil {
		return nil, errors.New("archive: the signer has no certificate")
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if c, ok := signer.(interface{ Chain() []*x509.Certificate }); ok {
		for _, ic := range c.Chain() {
			certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ic.Raw})...)
		}
	}
	// The archives hold the journal's raw requests and replies: 0700, and their files 0600 (made
	// by os.CreateTemp, which creates with 0600 whatever the umask).
	if err := private.MkdirAll(cfg.Dir); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return &Sealer{cfg: cfg, src: src, signer: signer, clock: clock, certPEM: certPEM, subject: cert.Subject.String()}, nil
}

// SealFull seals every full segment after the last sealed archive and returns the manifests
// written. Records that do not yet fill a segment stay pending.
func (s *Sealer) SealFull(ctx context.Context) ([]Manifest, error) { return s.seal(ctx, false) }

// SealNow seals like SealFull, then seals whatever is pending even if it does not fill a segment
// (the operator's command). With nothing pending it writes nothing.
func (s *Sealer) SealNow(ctx context.Context) ([]Manifest, error) { return s.seal(ctx, true) }

// position is where the next archive continues: after the last sealed one.
type position struct {
	number       int    // of the next archive
	afterSeq     int64  // Seq of the last archived record; 0 if none
	prevHash     string // its Hash
	prevManifest string // hex SHA-256 of the last manifest's bytes
}

func (s *Sealer) seal(ctx context.Context, flush bool) (sealed []Manifest, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Taken rather than read: only a measure that ends without error or seal puts it back, so every
	// other way out of here forgets it.
	m := s.measured
	s.measured = nil
	// An archive signed outside the certificate's validity would never verify.
	if cert, now := s.signer.Certificate(), s.clock.Now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, fmt.Errorf("archive: the signing certificate %q is not valid at %s (valid %s to %s)", s.subject,
			siobroker.FormatTime(now), siobroker.FormatTime(cert.NotBefore), siobroker.FormatTime(cert.NotAfter))
	}
	pos, err := s.resume(ctx)
	if err != nil {
		return nil, err
	}
	var pacer *pace.Pacer
	if !flush && s.cfg.Share > 0 {
		if pacer, err = pace.New(s.cfg.Share); err != nil {
			return nil, fmt.Errorf("archive: %w", err)
		}
	}
	if !flush {
		if m == nil || m.from != pos {
			m = &measure{from: pos, lastSeq: pos.afterSeq, lastHash: pos.prevHash}
		}
		full, err := s.measure(ctx, m, pacer)
		if err != nil {
			return nil, err
		}
		if !full {
			s.measured = m
			return nil, nil
		}
	}
	return s.sealFrom(ctx, pos, flush, pacer)
}

// measure reads the records after m.lastSeq, verifying each, and adds them to m until they fill a
// segment (it reports true) or the journal ends, resting with pacer after each page.
func (s *Sealer) measure(ctx context.Context, m *measure, pacer *pace.Pacer) (full bool, err error) {
	err = s.eachVerified(ctx, m.lastSeq, m.lastHash, pacer.Rest, func(r siobroker.JournalRecord) (bool, error) {
		l, err := newLine(r)
		if err != nil {
			return false, fmt.Errorf("archive: %w", err)
		}
		m.count++
		m.bytes += int64(l.len())
		m.lastSeq, m.lastHash = r.Seq, r.Hash
		full = s.reached(m.count, m.bytes)
		return !full, nil
	})
	return full, err
}

// eachVerified calls f with every journal record after afterSeq (whose hash is prevHash), in
// order, a page at a time, once the record is found to follow the one before it (checkNext),
// until the journal ends or f returns false or an error. After each page it calls afterPage.
func (s *Sealer) eachVerified(ctx context.Context, afterSeq int64, prevHash string, afterPage func(context.Context) error, f func(siobroker.JournalRecord) (more bool, err error)) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		recs, err := s.src.Query(ctx, siobroker.JournalFilter{AfterSeq: afterSeq, Limit: pageSize})
		if err != nil {
			return fmt.Errorf("archive: read the journal after record %d: %w", afterSeq, err)
		}
		if len(recs) == 0 {
			return nil
		}
		for _, r := range recs {
			if err := checkNext(r, afterSeq, prevHash); err != nil {
				return err
			}
			if more, err := f(r); err != nil || !more {
				return err
			}
			afterSeq, prevHash = r.Seq, r.Hash
		}
		if err := afterPage(ctx); err != nil {
			return err
		}
	}
}

// checkNext reports why r cannot follow the record afterSeq, whose hash is prevHash (afterSeq 0:
// r should begin the journal).
func checkNext(r siobroker.JournalRecord, afterSeq int64, prevHash string) error {
	started := afterSeq > 0
	switch {
	case r.Seq <= afterSeq:
		return fmt.Errorf("archive: the journal returned record %d after record %d", r.Seq, afterSeq)
	case started && r.Seq != afterSeq+1:
		return fmt.Errorf("archive: record %d is missing from the journal (the next is %d)", afterSeq+1, r.Seq)
	case r.PrevHash != prevHash && !started:
		return fmt.Errorf("archive: record %d is not the first of the journal (it has a previous hash)", r.Seq)
	case r.PrevHash != prevHash:
		return fmt.Errorf("archive: the journal's chain breaks between records %d and %d", afterSeq, r.Seq)
	case r.ComputeHash() != r.Hash:
		return fmt.Errorf("archive: record %d of the journal does not match its hash", r.Seq)
	}
	return nil
}

// sealFrom reads the journal from pos, verifying every record, and seals each segment that fills;
// with flush, also the last one that does not. After each page it syncs what it wrote of the
// segment, and rests with pacer.
func (s *Sealer) sealFrom(ctx context.Context, pos position, flush bool, pacer *pace.Pacer) (sealed []Manifest, err error) {
	var seg *segment
	defer func() {
		if seg != nil {
			seg.discard()
		}
	}()
	afterPage := func(ctx context.Context) error {
		// A page's share of the file on the disk now, not the whole segment's megabytes at its
		// end: on ext4 (data=ordered) every fsync of the store's WAL meanwhile would wait for them
		// (the commits of the requests in flight stalled for up to 140 ms at each seal).
		if seg != nil {
			if err := seg.tmp.Sync(); err != nil {
				return fmt.Errorf("archive: write %s: %w", seg.tmp.Name(), err)
			}
		}
		return pacer.Rest(ctx)
	}
	err = s.eachVerified(ctx, pos.afterSeq, pos.prevHash, afterPage, func(r siobroker.JournalRecord) (bool, error) {
		if seg == nil {
			var err error
			if seg, err = s.newSegment(pos); err != nil {
				return false, err
			}
		}
		if err := seg.add(r); err != nil {
			return false, err
		}
		pos.afterSeq, pos.prevHash = r.Seq, r.Hash
		if s.reached(seg.count, seg.bytes) {
			m, raw, err := s.finish(seg)
			seg = nil
			if err != nil {
				return false, err
			}
			sealed = append(sealed, m)
			pos.number, pos.prevManifest = m.Number+1, hexSHA256(raw)
		}
		return true, nil
	})
	if err != nil {
		return sealed, err
	}
	if seg != nil && flush {
		m, _, err := s.finish(seg)
		seg = nil
		if err != nil {
			return sealed, err
		}
		sealed = append(sealed, m)
	}
	return sealed, nil
}

// reached reports whether count records of that many bytes fill a segment.
func (s *Sealer) reached(count int, bytes int64) bool {
	return (s.cfg.MaxRecords > 0 && count >= s.cfg.MaxRecords) || (s.cfg.MaxBytes > 0 && bytes >= s.cfg.MaxBytes)
}

var manifestFile = regexp.MustCompile(`^journal-([0-9]{6,})\.manifest\.json$`)

// resume finds the last sealed archive (the highest numbered manifest) and where to continue. If
// a seal was interrupted after that manifest but before its signature, the signature is written
// now, once the archive is found to agree with the journal.
func (s *Sealer) resume(ctx context.Context) (position, error) {
	last, m, raw, err := lastManifest(s.cfg.Dir)
	if err != nil || last == 0 {
		return position{number: 1}, err
	}
	if _, err := os.Stat(filepath.Join(s.cfg.Dir, sigName(last))); errors.Is(err, os.ErrNotExist) {
		if err := s.completeSignature(ctx, m, raw); err != nil {
			return position{}, err
		}
	} else if err != nil {
		return position{}, fmt.Errorf("archive: %w", err)
	}
	return position{number: last + 1, afterSeq: m.LastSeq, prevHash: m.LastHash, prevManifest: hexSHA256(raw)}, nil
}

// LastSealedSeq returns the Seq of the last journal record sealed into an archive in dir, read
// from the highest-numbered manifest; 0 when there is no archive yet. It only reads: the metrics
// of archive progress use it.
func LastSealedSeq(dir string) (int64, error) {
	_, m, _, err := lastManifest(dir)
	return m.LastSeq, err
}

// LastManifest returns the highest-numbered manifest in dir, the last archive sealed; the zero
// Manifest when there is none yet, or no directory. It only reads.
func LastManifest(dir string) (Manifest, error) {
	_, m, _, err := lastManifest(dir)
	if errors.Is(err, os.ErrNotExist) {
		return Manifest{}, nil
	}
	return m, err
}

// lastManifest finds the highest-numbered manifest in dir and reads it; n is 0 when there is none.
func lastManifest(dir string) (n int, m Manifest, raw []byte, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, m, nil, fmt.Errorf("archive: %w", err)
	}
	for _, e := range entries {
		if sm := manifestFile.FindStringSubmatch(e.Name()); sm != nil {
			if k, err := strconv.Atoi(sm[1]); err == nil && k > n && e.Name() == manifestName(k) {
				n = k
			}
		}
	}
	if n == 0 {
		return 0, m, nil, nil
	}
	if raw, err = os.ReadFile(filepath.Join(dir, manifestName(n))); err != nil {
		return 0, m, nil, fmt.Errorf("archive: %w", err)
	}
	m, err = parseManifest(raw)
	if err == nil {
		err = m.check(n)
	}
	if err != nil {
		return 0, Manifest{}, nil, fmt.Errorf("archive: %s, the last manifest, is not valid: %v", manifestName(n), err)
	}
	return n, m, raw, nil
}

// completeSignature signs the manifest of an archive whose seal was interrupted just before its
// signature, after checking that the archive is ours and agrees with the journal.
func (s *Sealer) completeSignature(ctx context.Context, m Manifest, raw []byte) error {
	unsigned := fmt.Errorf("archive: %s has no signature", manifestName(m.Number))
	certPEM, err := os.ReadFile(filepath.Join(s.cfg.Dir, certName(m.Number)))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("archive: %w", err)
	}
	if m.Signer != s.subject || (err == nil && !bytes.Equal(certPEM, s.certPEM)) {
		return fmt.Errorf("%w and was sealed with another certificate than this broker's", unsigned)
	}
	sum, err := fileSHA256(filepath.Join(s.cfg.Dir, m.File))
	if err != nil || sum != m.FileSHA256 {
		return fmt.Errorf("%w and its file %s does not match it", unsigned, m.File)
	}
	recs, err := s.src.Query(ctx, siobroker.JournalFilter{AfterSeq: m.LastSeq - 1, Limit: 1})
	if err != nil {
		return fmt.Errorf("archive: read the journal: %w", err)
	}
	if len(recs) == 0 || recs[0].Seq != m.LastSeq || recs[0].Hash != m.LastHash {
		return fmt.Errorf("%w and does not agree with the journal at record %d", unsigned, m.LastSeq)
	}
	if err := writeNew(filepath.Join(s.cfg.Dir, certName(m.Number)), s.certPEM); err != nil {
		return err
	}
	sig, err := s.signer.SignDetached(raw)
	if err != nil {
		return fmt.Errorf("archive: sign %s: %w", manifestName(m.Number), err)
	}
	return writeNew(filepath.Join(s.cfg.Dir, sigName(m.Number)), sig)
}

// segment is an archive being written: records go through gzip into a temporary file.
type segment struct {
	pos    position
	tmp    *os.File
	sum    hash.Hash // of the compressed bytes
	zw     *gzip.Writer
	count  int
	bytes  int64
	first  int64
	firstH string // PrevHash of the first record
	last   int64
	lastH  string
	b64    []byte // the base64 of a piece of a record's data
}

func (s *Sealer) newSegment(pos position) (*segment, error) {
	f, err := os.CreateTemp(s.cfg.Dir, ".journal-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	seg := &segment{pos: pos, tmp: f, sum: sha256.New()}
	// The zero gzip header (no name, no time) and a fixed level make the file a function of the
	// records alone, so an interrupted seal is redone byte for byte.
	seg.zw, err = gzip.NewWriterLevel(io.MultiWriter(f, seg.sum), gzip.BestCompression)
	if err != nil {
		seg.discard()
		return nil, fmt.Errorf("archive: %w", err)
	}
	return seg, nil
}

// add writes r's line into the segment, its data streamed from r through base64 into gzip.
func (seg *segment) add(r siobroker.JournalRecord) error {
	l, err := newLine(r)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	if err := seg.write(l, r.Data); err != nil {
		return fmt.Errorf("archive: write %s: %w", seg.tmp.Name(), err)
	}
	if seg.count == 0 {
		seg.first, seg.firstH = r.Seq, r.PrevHash
	}
	seg.count++
	seg.bytes += int64(l.len())
	seg.last, seg.lastH = r.Seq, r.Hash
	return nil
}

// write writes a line whose data is data.
func (seg *segment) write(l line, data []byte) (err error) {
	seg.b64, err = writeLine(seg.zw, l, data, seg.b64)
	return err
}

// writeLine writes line l, whose record's data is data, to w: the data in pieces through buf,
// which it returns (grown) for the next line, so that a record's data is not encoded whole again.
// The archive's bytes do not depend on the pieces: compress/flate's output is the same however
// its input is split into writes (its own TestDeterministic checks that, at every level).
func writeLine(w io.Writer, l line, data, buf []byte) ([]byte, error) {
	if _, err := w.Write(l.head); err != nil {
		return buf, err
	}
	const piece = 3 * 1024 // a multiple of 3: no padding but at the end
	for len(data) > 0 {
		n := min(piece, len(data))
		buf = base64.StdEncoding.AppendEncode(buf[:0], data[:n])
		if _, err := w.Write(buf); err != nil {
			return buf, err
		}
		data = data[n:]
	}
	_, err := w.Write(l.tail)
	return buf, err
}

func (seg *segment) discard() {
	seg.zw.Close()
	seg.tmp.Close()
	os.Remove(seg.tmp.Name())
}

// finish seals seg as archive seg.pos.number: the gzip file, the certificate, the manifest (the
// commit point), then its signature. It returns the manifest and its bytes.
func (s *Sealer) finish(seg *segment) (Manifest, []byte, error) {
	n := seg.pos.number
	err := seg.zw.Close()
	if err == nil {
		err = seg.tmp.Sync()
	}
	if cerr := seg.tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(seg.tmp.Name())
		return Manifest{}, nil, fmt.Errorf("archive: write %s: %w", gzName(n), err)
	}
	m := Manifest{
		Format: Format, Number: n, FirstSeq: seg.first, LastSeq: seg.last, Count: seg.count,
		FirstPrevHash: seg.firstH, LastHash: seg.lastH, File: gzName(n), FileSHA256: hex.EncodeToString(seg.sum.Sum(nil)),
		PrevManifestSHA256: seg.pos.prevManifest, SealedAt: siobroker.FormatTime(s.clock.Now()), Signer: s.subject,
	}
	if err := publish(seg.tmp.Name(), filepath.Join(s.cfg.Dir, m.File)); err != nil {
		return Manifest{}, nil, err
	}
	if err := writeNew(filepath.Join(s.cfg.Dir, certName(n)), s.certPEM); err != nil {
		return Manifest{}, nil, err
	}
	raw, err := marshalManifest(m)
	if err != nil {
		return Manifest{}, nil, err
	}
	sig, err := s.signer.SignDetached(raw)
	if err != nil {
		return Manifest{}, nil, fmt.Errorf("archive: sign %s: %w", manifestName(n), err)
	}
	if err := writeNew(filepath.Join(s.cfg.Dir, manifestName(n)), raw); err != nil {
		return Manifest{}, nil, err
	}
	if err := writeNew(filepath.Join(s.cfg.Dir, sigName(n)), sig); err != nil {
		return Manifest{}, nil, err
	}
	return m, raw, nil
}
