package archive

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing"
)

// Report is what Verify found: the archives and records of the whole chain.
type Report struct {
	Dir                string
	Archives           int
	Records            int64
	FirstSeq, LastSeq  int64
	LastHash           string // Hash of the last record: the journal continues from it
	LastManifestSHA256 string // hex SHA-256 of the last manifest's bytes
	LastSealedAt       string
}

// Problem is the first thing wrong with the archives that Verify found. Its message names the
// file or record, e.g. "record 1234 in journal-000002 was changed".
type Problem struct {
	Archive int   // the archive's number; 0 if the problem is not in one archive
	Seq     int64 // the record, where the problem is in one; 0 otherwise
	Message string
}

func (p *Problem) Error() string { return p.Message }

func problem(n int, seq int64, format string, args ...any) *Problem {
	return &Problem{Archive: n, Seq: seq, Message: fmt.Sprintf(format, args...)}
}

var archiveFile = regexp.MustCompile(`^journal-([0-9]+)\.(jsonl\.gz|manifest\.json|manifest\.sig|cert\.pem)$`)

// Verify checks the whole chain of archives in dir, offline: every archive from 1 to the highest
// number present, each signed by a certificate that chains to trust (checked at the archive's
// SealedAt), each manifest linked to the one before, each file matching its manifest, and every
// record in order, complete and unchanged. It stops at the first problem and returns it as a
// *Problem, with the report of what was verified before it; other errors mean dir could not be
// read. An empty directory verifies, with no archives.
//
// Offline, nothing can show that the newest archives were removed as a whole: compare
// Report.LastSeq and LastHash with the journal, or with a record of them kept elsewhere.
func Verify(dir string, trust *signing.TrustStore) (Report, error) {
	rep := Report{Dir: dir}
	if trust == nil {
		return rep, errors.New("archive: verify: no trust store")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return rep, fmt.Errorf("archive: verify: %w", err)
	}
	present := map[int]map[string]bool{}
	highest := 0
	for _, e := range entries {
		m := archiveFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue // temporary files of a seal in progress, and anything else, are not archives
		}
		n, err := strconv.Atoi(m[1])
		if err != nil || n <= 0 || baseName(n) != "journal-"+m[1] {
			return rep, problem(0, 0, "%s is not the name of an archive file", e.Name())
		}
		if present[n] == nil {
			present[n] = map[string]bool{}
		}
		present[n][e.Name()] = true
		highest = max(highest, n)
	}
	var prev *Manifest
	for n := 1; n <= highest; n++ {
		m, raw, err := verifyArchive(dir, n, present[n], prev, trust)
		if err != nil {
			return rep, err
		}
		if rep.Archives == 0 {
			rep.FirstSeq = m.FirstSeq
		}
		rep.Archives++
		rep.Records += int64(m.Count)
		rep.LastSeq, rep.LastHash, rep.LastManifestSHA256, rep.LastSealedAt = m.LastSeq, m.LastHash, hexSHA256(raw), m.SealedAt
		prev = &m
	}
	return rep, nil
}

// verifyArchive checks archive n; prev is the manifest of n-1, nil for archive 1.
func verifyArchive(dir string, n int, files map[string]bool, prev *Manifest, trust *signing.TrustStore) (Manifest, []byte, error) {
	if len(files) == 0 {
		return Manifest{}, nil, problem(n, 0, "archive %d is missing", n)
	}
	for _, name := range []string{manifestName(n), sigName(n), certName(n), gzName(n)} {
		if !files[name] {
			return Manifest{}, nil, problem(n, 0, "%s is missing", name)
		}
	}
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("archive: verify: %w", err)
		}
		return b, nil
	}
	raw, err := read(manifestName(n))
	if err != nil {
		return Manifest{}, nil, err
	}
	sig, err := read(sigName(n))
	if err != nil {
		return Manifest{}, nil, err
	}
	certPEM, err := read(certName(n))
	if err != nil {
		return Manifest{}, nil, err
	}

	certs, err := signing.ParseCertificates(certPEM)
	if err != nil {
		return Manifest{}, nil, problem(n, 0, "%s is not a certificate: %v", certName(n), err)
	}
	if err := signing.VerifyDetached(certs[0], raw, sig); err != nil {
		return Manifest{}, nil, problem(n, 0, "%s does not verify: %s or its signature was changed (%v)", sigName(n), manifestName(n), err)
	}
	m, err := parseManifest(raw)
	if err == nil {
		err = m.check(n)
	}
	if err != nil {
		return Manifest{}, nil, problem(n, 0, "%s is not a valid manifest: %v", manifestName(n), err)
	}
	if m.Signer != certs[0].Subject.String() {
		return Manifest{}, nil, problem(n, 0, "%s names the signer %q, but %s is %q", manifestName(n), m.Signer, certName(n), certs[0].Subject.String())
	}
	sealedAt, err := time.Parse(siobroker.TimeLayout, m.SealedAt)
	if err != nil {
		return Manifest{}, nil, problem(n, 0, "%s has no valid sealing time: %v", manifestName(n), err)
	}
	if err := trust.VerifyChain(certs[0], certs[1:], sealedAt); err != nil {
		return Manifest{}, nil, problem(n, 0, "%s is not trusted: %v", certName(n), err)
	}

	if prev == nil {
		if m.PrevManifestSHA256 != "" || m.FirstPrevHash != "" {
			return Manifest{}, nil, problem(n, 0, "%s does not begin the journal: it links to an earlier archive", baseName(n))
		}
	} else {
		prevRaw, err := read(manifestName(prev.Number))
		if err != nil {
			return Manifest{}, nil, err
		}
		if m.PrevManifestSHA256 != hexSHA256(prevRaw) || m.FirstPrevHash != prev.LastHash || m.FirstSeq != prev.LastSeq+1 {
			return Manifest{}, nil, problem(n, 0, "%s does not follow %s", baseName(n), baseName(prev.Number))
		}
	}

	sum, err := fileSHA256(filepath.Join(dir, gzName(n)))
	if err != nil {
		return Manifest{}, nil, fmt.Errorf("archive: verify: %w", err)
	}
	if sum != m.FileSHA256 {
		return Manifest{}, nil, problem(n, 0, "%s was changed", gzName(n))
	}
	if err := verifyRecords(filepath.Join(dir, gzName(n)), m); err != nil {
		return Manifest{}, nil, err
	}
	return m, raw, nil
}

// verifyRecords reads the records of archive m and checks that they are exactly FirstSeq to
// LastSeq, in order, each unchanged and chained to the one before.
func verifyRecords(path string, m Manifest) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("archive: verify: %w", err)
	}
	defer f.Close()
	n, base := m.Number, baseName(m.Number)
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return problem(n, 0, "%s is not gzip: %v", m.File, err)
	}
	defer zr.Close()
	br := bufio.NewReaderSize(zr, 64<<10)
	next, prevHash := m.FirstSeq, m.FirstPrevHash
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if err == io.EOF && len(line) == 0 {
			break
		}
		if err != nil && err != io.EOF {
			return problem(n, 0, "%s cannot be read after %d records: %v", m.File, lineNo-1, err)
		}
		r, err := decodeRecord(line)
		if err != nil {
			return problem(n, 0, "line %d of %s is not a journal record: %v", lineNo, m.File, err)
		}
		switch {
		case r.Seq < next:
			return problem(n, r.Seq, "record %d appears twice in %s", r.Seq, base)
		case next > m.LastSeq:
			return problem(n, r.Seq, "record %d in %s is beyond its manifest, which ends at record %d", r.Seq, base, m.LastSeq)
		case r.Seq > next:
			found, err := seqFollows(br, next)
			if err != nil {
				return problem(n, 0, "%s cannot be read: %v", m.File, err)
			}
			if found {
				return problem(n, next, "records %d and %d are reordered", next, r.Seq)
			}
			return problem(n, next, "record %d is missing from %s", next, base)
		case r.ComputeHash() != r.Hash:
			return problem(n, r.Seq, "record %d in %s was changed", r.Seq, base)
		case r.PrevHash != prevHash:
			return problem(n, r.Seq, "the chain breaks between records %d and %d in %s: one of them was changed", r.Seq-1, r.Seq, base)
		}
		next, prevHash = r.Seq+1, r.Hash
	}
	switch {
	case next <= m.LastSeq:
		return problem(n, next, "record %d is missing from %s", next, base)
	case prevHash != m.LastHash:
		return problem(n, m.LastSeq, "record %d in %s does not match its manifest: it, or the chain before it, was changed", m.LastSeq, base)
	}
	return nil
}

// seqFollows reads the rest of br and reports whether a record with Seq seq is there.
func seqFollows(br *bufio.Reader, seq int64) (bool, error) {
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			var r struct {
				Seq int64 `json:"seq"`
			}
			if json.Unmarshal(line, &r) == nil && r.Seq == seq {
				return true, nil
			}
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
}
