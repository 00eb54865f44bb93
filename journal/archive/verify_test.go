package archive

import (
	"bytes"
	"compress/gzip"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"

	"github.com/sio-pso/siobroker/signing"
)

// sealGolden seals records 1 to 40 into four archives of ten.
func sealGolden(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ms, err := newSealer(t, dir, 10, 0, newSource(40), pkiA.broker).SealFull(ctxT(t))
	if err != nil || len(ms) != 4 {
		t.Fatalf("seal: %v, %v", spans(ms), err)
	}
	return dir
}

func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		copyFile(t, filepath.Join(from, e.Name()), filepath.Join(to, e.Name()))
	}
	return to
}

func writeGz(t *testing.T, path string, lines []string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, l := range lines {
		zw.Write([]byte(l + "\n"))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// editGz rewrites the records of archive n.
func editGz(t *testing.T, dir string, n int, edit func([]string) []string) {
	t.Helper()
	path := filepath.Join(dir, gzName(n))
	writeGz(t, path, edit(readGz(t, path)))
}

// resign rewrites the manifest of archive n the way someone holding the broker key would: edited
// by edit, with the SHA-256 of the gzip file as it now is, and signed again by signer.
func resign(t *testing.T, dir string, n int, signer *signing.Signer, edit func(*Manifest)) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, manifestName(n)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.FileSHA256, err = fileSHA256(filepath.Join(dir, gzName(n))); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&m)
	}
	if raw, err = marshalManifest(m); err != nil {
		t.Fatal(err)
	}
	sig, err := signer.SignDetached(raw)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, certName(n)))
	if err != nil {
		t.Fatal(err)
	}
	if signer != pkiA.broker {
		certPEM = pemCert(signer)
	}
	for name, b := range map[string][]byte{manifestName(n): raw, sigName(n): sig, certName(n): certPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func pemCert(s *signing.Signer) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

func remove(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, name := range names {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	golden := sealGolden(t)
	rep := verifyOK(t, golden)
	if rep.Archives != 4 || rep.Records != 40 || rep.FirstSeq != 1 || rep.LastSeq != 40 {
		t.Fatalf("report %+v", rep)
	}
	// Archive 2 holds records 11 to 20, one a line: record 15 is line index 4.
	const r15 = 4
	editRecord := func(lines []string) []string {
		lines[r15] = strings.Replace(lines[r15], `"code":"OK"`, `"code":"NO"`, 1)
		return lines
	}
	cases := []struct {
		name    string
		tamper  func(t *testing.T, dir string)
		trust   *signing.TrustStore
		want    string // the whole message, or its start if it ends in "…"
		archive int
		seq     int64
	}{
		{"only the gzip file changed", func(t *testing.T, dir string) {
			editGz(t, dir, 2, editRecord)
		}, nil, "journal-000002.jsonl.gz was changed", 2, 0},
		{"a record edited, the manifest signed again", func(t *testing.T, dir string) {
			editGz(t, dir, 2, editRecord)
			resign(t, dir, 2, pkiA.broker, nil)
		}, nil, "record 15 in journal-000002 was changed", 2, 15},
		{"a record edited and its hash recomputed", func(t *testing.T, dir string) {
			editGz(t, dir, 2, func(lines []string) []string {
				r, err := decodeRecord([]byte(lines[r15]))
				if err != nil {
					t.Fatal(err)
				}
				r.Code = "NO"
				r.Hash = r.ComputeHash()
				line, err := encodeRecord(r)
				if err != nil {
					t.Fatal(err)
				}
				lines[r15] = strings.TrimSuffix(string(line), "\n")
				return lines
			})
			resign(t, dir, 2, pkiA.broker, nil)
		}, nil, "the chain breaks between records 15 and 16 in journal-000002: one of them was changed", 2, 16},
		{"a record removed", func(t *testing.T, dir string) {
			editGz(t, dir, 2, func(lines []string) []string { return append(lines[:r15], lines[r15+1:]...) })
			resign(t, dir, 2, pkiA.broker, nil)
		}, nil, "record 15 is missing from journal-000002", 2, 15},
		{"the last record removed", func(t *testing.T, dir string) {
			editGz(t, dir, 2, func(lines []string) []string { return lines[:9] })
			resign(t, dir, 2, pkiA.broker, nil)
		}, nil, "record 20 is missing from journal-000002", 2, 20},
		{"two records swapped", func(t *testing.T, dir string) {
			editGz(t, dir, 2, func(lines []string) []string {
				lines[r15], lines[r15+1] = lines[r15+1], lines[r15]
				return lines
			})
			resign(t, dir, 2, pkiA.broker, nil)
		}, nil, "records 15 and 16 are reordered", 2, 15},
		{"a record duplicated", func(t *testing.T, dir string) {
			editGz(t, dir, 2, func(lines []string) []string { lines[r15+1] = lines[r15]; return lines })
			resign(t, dir, 2, pkiA.broker, nil)
		}, nil, "record 15 appears twice in journal-000002", 2, 15},
		{"a record added after the last", func(t *testing.T, dir string) {
			next := readGz(t, filepath.Join(dir, gzName(3)))[0]
			editGz(t, dir, 2, func(lines []string) []string { return append(lines, next) })
			resign(t, dir, 2, pkiA.broker, nil)
		}, nil, "record 21 in journal-000002 is beyond its manifest, which ends at record 20", 2, 21},
		{"an archive file removed", func(t *testing.T, dir string) {
			remove(t, dir, "journal-000002.jsonl.gz")
		}, nil, "journal-000002.jsonl.gz is missing", 2, 0},
		{"a signature removed", func(t *testing.T, dir string) {
			remove(t, dir, "journal-000003.manifest.sig")
		}, nil, "journal-000003.manifest.sig is missing", 3, 0},
		{"an archive removed", func(t *testing.T, dir string) {
			remove(t, dir, "journal-000003.jsonl.gz", "journal-000003.manifest.json", "journal-000003.manifest.sig", "journal-000003.cert.pem")
		}, nil, "archive 3 is missing", 3, 0},
		{"a manifest edited", func(t *testing.T, dir string) {
			path := filepath.Join(dir, "journal-000002.manifest.json")
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, bytes.Replace(raw, []byte(`"count": 10`), []byte(`"count": 9`), 1), 0o600); err != nil {
				t.Fatal(err)
			}
		}, nil, "journal-000002.manifest.sig does not verify: journal-000002.manifest.json or its signature was changed…", 2, 0},
		{"a manifest replaced by another, signed", func(t *testing.T, dir string) {
			resign(t, dir, 2, pkiA.broker, func(m *Manifest) { m.SealedAt = siobroker.FormatTime(sealClock.t.Add(time.Minute)) })
		}, nil, "journal-000003 does not follow journal-000002", 3, 0},
		{"the first archive linked to nothing", func(t *testing.T, dir string) {
			resign(t, dir, 1, pkiA.broker, func(m *Manifest) { m.PrevManifestSHA256 = strings.Repeat("0", 64) })
		}, nil, "journal-000001 does not begin the journal: it links to an earlier archive", 1, 0},
		{"an archive signed under another CA", func(t *testing.T, dir string) {
			resign(t, dir, 2, pkiB.broker, nil)
		}, nil, "journal-000002.cert.pem is not trusted: …", 2, 0},
		{"all archives under another CA", func(t *testing.T, dir string) {}, pkiB.trust, "journal-000001.cert.pem is not trusted: …", 1, 0},
		{"a stray archive name", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(dir, "journal-000001.cert.pem"), filepath.Join(dir, "journal-0000001.cert.pem"))
		}, nil, "journal-0000001.cert.pem is not the name of an archive file", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, golden)
			tc.tamper(t, dir)
			trust := tc.trust
			if trust == nil {
				trust = pkiA.trust
			}
			rep, err := Verify(dir, trust)
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("got %v, want a Problem %q", err, tc.want)
			}
			if prefix, ok := strings.CutSuffix(tc.want, "…"); ok {
				if !strings.HasPrefix(p.Message, prefix) {
					t.Errorf("got %q, want it to begin %q", p.Message, prefix)
				}
			} else if p.Message != tc.want {
				t.Errorf("got %q, want %q", p.Message, tc.want)
			}
			if p.Archive != tc.archive || p.Seq != tc.seq {
				t.Errorf("problem in archive %d, record %d; want %d, %d", p.Archive, p.Seq, tc.archive, tc.seq)
			}
			// The report covers the archives verified before the problem.
			if want := max(tc.archive-1, 0); rep.Archives != want {
				t.Errorf("report of %d archives, want %d", rep.Archives, want)
			}
		})
	}
}

func TestVerifyEmptyAndErrors(t *testing.T) {
	rep, err := Verify(t.TempDir(), pkiA.trust)
	if err != nil || rep.Archives != 0 {
		t.Errorf("empty directory: %+v, %v", rep, err)
	}
	var p *Problem
	if _, err := Verify(filepath.Join(t.TempDir(), "none"), pkiA.trust); err == nil || errors.As(err, &p) {
		t.Errorf("a directory that does not exist: %v", err)
	}
	if _, err := Verify(t.TempDir(), nil); err == nil {
		t.Error("no trust store: no error")
	}
}

// TestOfflineWithOpenSSL checks the claim of the package documentation: a manifest's signature
// verifies with openssl alone, given the certificate file next to it.
func TestOfflineWithOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skipf("openssl not installed: %v", err)
	}
	dir := sealGolden(t)
	pub := filepath.Join(t.TempDir(), "pub.pem")
	if out, err := exec.Command(openssl, "x509", "-in", filepath.Join(dir, certName(2)), "-pubkey", "-noout", "-out", pub).CombinedOutput(); err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, out)
	}
	if out, err := exec.Command(openssl, "dgst", "-sha256", "-verify", pub, "-signature", filepath.Join(dir, sigName(2)), filepath.Join(dir, manifestName(2))).CombinedOutput(); err != nil {
		t.Errorf("openssl does not verify %s: %v\n%s", sigName(2), err, out)
	}
}
