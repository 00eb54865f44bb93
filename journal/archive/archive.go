// Package archive seals the permanent journal into archives (§38 of the Rules: as the journal
// fills, its data are archived; the archive holds every request and its outcome for the whole life
// of the broker). An archive can be verified offline, forever, with nothing but the files and the
// trusted root: Verify here, or gzip, sha256sum and openssl.
//
// # Files
//
// Archive N (numbered from 1, written with at least six digits) is four files in one directory:
//
//	journal-000001.jsonl.gz       the records, gzip, one JSON object and "\n" per record, in Seq order
//	journal-000001.manifest.json  the Manifest: what the archive holds and how it links to N-1
//	journal-000001.manifest.sig   detached signature of the exact manifest bytes by the broker key
//	                              (RSA PKCS#1 v1.5 SHA-256, or ECDSA P-256 SHA-256 in ASN.1 DER)
//	journal-000001.cert.pem       the signing certificate, then its intermediates, in PEM
//
// A record line has every field of siobroker.JournalRecord: seq, at (siobroker.TimeLayout, Astana
// time), kind, requestId, messageId, signerIin, organisation, service, code, data (standard
// base64), prevHash and hash. Each record's hash recomputes with JournalRecord.ComputeHash and
// chains to the previous one. The manifest of N carries the SHA-256 of the gzip file, the first
// and last Seq, the previous hash of its first record and the hash of its last, and the SHA-256 of
// the manifest bytes of N-1; so the signed manifests form a chain of their own, and archive N+1
// begins where N ends. Archive 1 begins the journal: its first record has no previous hash.
//
// # Offline check without this package
//
//	openssl x509 -in journal-000001.cert.pem -pubkey -noout > pub.pem
//	openssl dgst -sha256 -verify pub.pem -signature journal-000001.manifest.sig journal-000001.manifest.json
//	sha256sum journal-000001.jsonl.gz   # equals fileSha256 of the manifest
//
// # Writing
//
// Every file is written to a temporary name in the directory, synced, and then linked to its final
// name, which fails if the name exists: an archive is never overwritten or deleted. The manifest
// is the commit point (the gzip file and the certificate are written before it, the signature
// after it); a seal interrupted before the manifest leaves files that the next seal writes again
// byte for byte, and one interrupted before the signature is completed by the next seal.
package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"

	"github.com/sio-pso/siobroker"
)

// Format names the archive format in every manifest. A future format gets a new name.
const Format = "sio-journal-archive-v1"

// Manifest describes one sealed archive. Its JSON, exactly as written, is what the signature
// covers and what the next archive's PrevManifestSHA256 hashes.
type Manifest struct {
	Format             string `json:"format"` // always Format
	Number             int    `json:"number"`
	FirstSeq           int64  `json:"firstSeq"`
	LastSeq            int64  `json:"lastSeq"`
	Count              int    `json:"count"`
	FirstPrevHash      string `json:"firstPrevHash"`      // PrevHash of the first record: LastHash of archive N-1; "" for archive 1
	LastHash           string `json:"lastHash"`           // Hash of the last record
	File               string `json:"file"`               // the gzip file's name, e.g. journal-000001.jsonl.gz
	FileSHA256         string `json:"fileSha256"`         // hex SHA-256 of the gzip file's bytes
	PrevManifestSHA256 string `json:"prevManifestSha256"` // hex SHA-256 of the manifest bytes of archive N-1; "" for archive 1
	SealedAt           string `json:"sealedAt"`           // siobroker.TimeLayout, Astana time (+05:00)
	Signer             string `json:"signer"`             // subject of the signing certificate
}

// Names of the files of archive n.
func baseName(n int) string     { return fmt.Sprintf("journal-%06d", n) }
func gzName(n int) string       { return baseName(n) + ".jsonl.gz" }
func manifestName(n int) string { return baseName(n) + ".manifest.json" }
func sigName(n int) string      { return baseName(n) + ".manifest.sig" }
func certName(n int) string     { return baseName(n) + ".cert.pem" }

// recordLine is one record as it is written in the gzip file. No field is omitted, so that every
// line shows the whole record.
type recordLine struct {
	Seq          int64  `json:"seq"`
	At           string `json:"at"`
	Kind         string `json:"kind"`
	RequestID    string `json:"requestId"`
	MessageID    string `json:"messageId"`
	SignerIIN    string `json:"signerIin"`
	Organisation string `json:"organisation"`
	Service      int    `json:"service"`
	Code         string `json:"code"`
	Data         string `json:"data"` // standard base64
	PrevHash     string `json:"prevHash"`
	Hash         string `json:"hash"`
}

// encodeRecord returns r as one line of JSON with its "\n". It refuses a record that would not
// read back with the same hash (a string that is not valid UTF-8 would be altered by JSON), so that
// an archive never holds a record that cannot be verified. r is a verified record: its Hash is
// its ComputeHash.
func encodeRecord(r siobroker.JournalRecord) ([]byte, error) {
	l, err := newLine(r)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, l.len())
	out = append(out, l.head...)
	out = base64.StdEncoding.AppendEncode(out, r.Data)
	return append(out, l.tail...), nil
}

// line is a record's JSON line without the base64 of its data: head ends with `"data":"`, tail
// begins with the closing quote and ends with "\n". The base64 alphabet needs no escaping in
// JSON, so head, the base64 and tail are exactly the line json.Marshal writes of the record.
type line struct {
	head, tail []byte
	dataLen    int // of the record's Data, before base64
}

// len is the length of the whole line.
func (l line) len() int {
	return len(l.head) + base64.StdEncoding.EncodedLen(l.dataLen) + len(l.tail)
}

// dataField is where the data's value begins in a line. It occurs once: inside a JSON string a
// quote is always escaped, so `,"` is never part of a field's value.
var dataField = []byte(`,"data":"`)

// newLine encodes r's line around its data, and refuses r unless every field the hash covers
// reads back as it was: that is the check of encoding the whole record, reading it back and
// recomputing its hash, without encoding, decoding and hashing the data again (the bulk of every
// record; its base64 always reads back). JSON gives a string back unchanged when it is valid
// UTF-8, and replaces the bytes that are not; the integers read back exactly; the time reads back
// when its text parses as the layout to the same text. encodeRecord agreed with encoding the whole
// record on odd records and fuzzed ones (TestEncodeRecordAsWhole, FuzzEncodeRecord).
func newLine(r siobroker.JournalRecord) (line, error) {
	at := siobroker.FormatTime(r.At)
	if !survives(r, at) {
		return line{}, fmt.Errorf("record %d does not survive encoding (a field that is not valid UTF-8?)", r.Seq)
	}
	meta, err := json.Marshal(recordLine{
		Seq: r.Seq, At: at, Kind: string(r.Kind), RequestID: r.RequestID, MessageID: r.MessageID,
		SignerIIN: r.SignerIIN, Organisation: r.Organisation, Service: r.Service, Code: r.Code,
		PrevHash: r.PrevHash, Hash: r.Hash,
	})
	if err != nil {
		return line{}, fmt.Errorf("record %d: %w", r.Seq, err)
	}
	i := bytes.Index(meta, dataField)
	if i < 0 || !bytes.HasPrefix(meta[i+len(dataField):], []byte(`"`)) {
		return line{}, fmt.Errorf("record %d: its line has no data field", r.Seq)
	}
	i += len(dataField)
	return line{head: meta[:i:i], tail: append(meta[i:], '\n'), dataLen: len(r.Data)}, nil
}

// survives reports whether the fields of r that its hash covers, but the data, read back from its
// line as they are; at is r.At as the line writes it.
func survives(r siobroker.JournalRecord, at string) bool {
	for _, s := range []string{r.PrevHash, string(r.Kind), r.RequestID, r.MessageID, r.SignerIIN, r.Organisation, r.Code} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	back, err := time.Parse(siobroker.TimeLayout, at)
	return err == nil && siobroker.FormatTime(back.In(siobroker.Astana)) == at
}

// decodeRecord reads one record line. Unknown fields are refused: the format is fixed.
func decodeRecord(line []byte) (siobroker.JournalRecord, error) {
	var l recordLine
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return siobroker.JournalRecord{}, err
	}
	if dec.More() {
		return siobroker.JournalRecord{}, errors.New("more than one JSON value on the line")
	}
	at, err := time.Parse(siobroker.TimeLayout, l.At)
	if err != nil {
		return siobroker.JournalRecord{}, fmt.Errorf("at: %w", err)
	}
	data, err := base64.StdEncoding.DecodeString(l.Data)
	if err != nil {
		return siobroker.JournalRecord{}, fmt.Errorf("data: %w", err)
	}
	return siobroker.JournalRecord{
		Seq: l.Seq, At: at.In(siobroker.Astana), Kind: siobroker.JournalKind(l.Kind), RequestID: l.RequestID, MessageID: l.MessageID,
		SignerIIN: l.SignerIIN, Organisation: l.Organisation, Service: l.Service, Code: l.Code, Data: data,
		PrevHash: l.PrevHash, Hash: l.Hash,
	}, nil
}

// parseManifest reads manifest bytes strictly.
func parseManifest(b []byte) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, err
	}
	if dec.More() {
		return Manifest{}, errors.New("more than one JSON value")
	}
	if m.Format != Format {
		return Manifest{}, fmt.Errorf("format %q, expected %q", m.Format, Format)
	}
	return m, nil
}

// check reports what is inconsistent inside m itself, for archive n.
func (m Manifest) check(n int) error {
	switch {
	case m.Number != n:
		return fmt.Errorf("it is numbered %d", m.Number)
	case m.File != gzName(n):
		return fmt.Errorf("it names the file %q", m.File)
	case m.Count <= 0 || m.FirstSeq <= 0 || m.LastSeq-m.FirstSeq+1 != int64(m.Count):
		return fmt.Errorf("%d records do not fit seq %d to %d", m.Count, m.FirstSeq, m.LastSeq)
	}
	return nil
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// fileSHA256 returns the hex SHA-256 of a file's bytes, read as a stream.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// publish gives the finished temporary file tmp its final name path, refusing to replace anything:
// if path exists with other bytes, it is an error; if it exists with the same bytes (the work of
// an interrupted seal, redone), it is kept. tmp is removed either way. The directory is synced.
func publish(tmp, path string) error {
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("archive: %w", err)
		}
		have, herr := fileSHA256(path)
		want, werr := fileSHA256(tmp)
		if herr != nil || werr != nil {
			return fmt.Errorf("archive: %s exists and cannot be compared: %w", path, errors.Join(herr, werr))
		}
		if have != want {
			return fmt.Errorf("archive: refusing to overwrite %s, which exists with other content (left by an interrupted seal, or by something else: check it and move it aside)", path)
		}
		return nil
	}
	return syncDir(filepath.Dir(path))
}

// writeNew writes data to path through a synced temporary file and publish.
func writeNew(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".journal-*.tmp")
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("archive: write %s: %w", path, err)
	}
	return publish(f.Name(), path)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("archive: sync %s: %w", dir, err)
	}
	return nil
}

// marshalManifest returns the manifest bytes as written: indented JSON and a final "\n".
func marshalManifest(m Manifest) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("archive: manifest: %w", err)
	}
	return append(b, '\n'), nil
}
