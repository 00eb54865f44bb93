package gost

// Tests against implementations nobody here wrote: libgcrypt (through testdata/gcryref.c),
// OpenSSL's GOST engine, and Debian's gostsum and gost12sum. Under CI (CI=true) a missing tool
// fails the test; elsewhere the test is skipped with the Debian package to install. .ci/run
// installs them all.

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// external returns the path of a program, or fails (CI) or skips the test.
func external(t *testing.T, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, fmt.Sprintf("%s is not installed (Debian package %s)", name, debianPackage))
	}
	return p
}

func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI must have it: see .ci/run", what)
	}
	t.Skipf("%s; skipped outside CI", what)
}

// gcryref builds testdata/gcryref.c against libgcrypt and starts it.
func gcryref(t *testing.T) *refProcess {
	t.Helper()
	gcc := external(t, "gcc", "gcc")
	if _, err := os.Stat("/usr/include/gcrypt.h"); err != nil {
		missing(t, "gcrypt.h is not installed (Debian package libgcrypt20-dev)")
	}
	bin := filepath.Join(t.TempDir(), "gcryref")
	if out, err := exec.Command(gcc, "-O1", "-o", bin, "testdata/gcryref.c", "-lgcrypt").CombinedOutput(); err != nil {
		t.Fatalf("building gcryref: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &refProcess{in: in, out: bufio.NewScanner(out)}
	p.out.Buffer(make([]byte, 1<<16), 1<<20)
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	return p
}

type refProcess struct {
	in  io.WriteCloser
	out *bufio.Scanner
}

func (p *refProcess) ask(t *testing.T, format string, args ...any) string {
	t.Helper()
	fmt.Fprintf(p.in, format+"\n", args...)
	if !p.out.Scan() {
		t.Fatalf("gcryref stopped: %v", p.out.Err())
	}
	line := p.out.Text()
	if strings.HasPrefix(line, "error") {
		t.Fatalf("gcryref: %s (asked: "+format+")", append([]any{line}, args...)...)
	}
	return line
}

// libgcryptNames are libgcrypt's names of the curves.
var libgcryptNames = map[*Curve]string{
	curveTest256:    "GOST2001-test",
	curveTest512:    "GOST2012-512-test",
	curveCryptoProA: "GOST2001-CryptoPro-A",
	curveCryptoProB: "GOST2001-CryptoPro-B",
	curveCryptoProC: "GOST2001-CryptoPro-C",
	curveTC26_256A:  "GOST2012-256-A",
	curveTC26_512A:  "GOST2012-512-tc26-A",
	curveTC26_512B:  "GOST2012-512-tc26-B",
	curveTC26_512C:  "GOST2012-512-tc26-C",
}

// Our curve constants against the tables compiled into libgcrypt.
func TestCrossCurvesMatchLibgcrypt(t *testing.T) {
	ref := gcryref(t)
	for c, name := range libgcryptNames {
		f := strings.Fields(ref.ask(t, "params %s", name))
		g := hexInt(f[4][2:]) // 04 || X || Y
		gx, gy := new(big.Int).Rsh(g, uint(8*c.size)), new(big.Int).Mod(g, new(big.Int).Lsh(big.NewInt(1), uint(8*c.size)))
		for i, v := range []struct {
			what      string
			ours, ref *big.Int
		}{
			{"p", c.p, hexInt(f[0])}, {"a", c.a, hexInt(f[1])}, {"b", c.b, hexInt(f[2])}, {"q", c.q, hexInt(f[3])},
			{"x", c.gx, gx}, {"y", c.gy, gy}, {"cofactor", big.NewInt(c.cofactor), hexInt(f[5])},
		} {
			if v.ours.Cmp(v.ref) != 0 {
				t.Errorf("%s (%s): %s (field %d) = %X, libgcrypt has %X", c, name, v.what, i, v.ours, v.ref)
			}
		}
	}
}

// TestCrossHashes hashes 1024 random messages (lengths 0..199 exactly, then random from 1 byte to 1 KiB)
// here and with libgcrypt, gost12sum, gostsum -t and OpenSSL's GOST engine, each run once
// over all the files.
func TestCrossHashes(t *testing.T) {
	if testing.Short() {
		t.Skip("a thousand messages through four programs; not in -short")
	}
	ref := gcryref(t)
	gost12sum := external(t, "gost12sum", "gostsum")
	gostsum := external(t, "gostsum", "gostsum")
	openssl := external(t, "openssl", "openssl")
	requireOpenSSLGost(t, openssl)

	seed := uint64(time.Now().UnixNano())
	t.Logf("messages from math/rand/v2 PCG seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, 17))
	dir := t.TempDir()
	const n = 1024
	type msg struct {
		path            string
		g94, s256, s512 []byte
		empty           bool
	}
	msgs := make([]msg, n)
	var paths, nonEmpty []string
	for i := range msgs {
		size := i
		if i >= 200 {
			size = 1 + rng.IntN(1024)
		}
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		p := filepath.Join(dir, fmt.Sprintf("m%04d", i))
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		g94, s256, s512 := GOST94(data), Streebog256(data), Streebog512(data)
		msgs[i] = msg{p, g94[:], s256[:], s512[:], size == 0}
		paths = append(paths, p)
		if size > 0 {
			nonEmpty = append(nonEmpty, p)
		}
	}
	byPath := map[string]*msg{}
	for i := range msgs {
		byPath[msgs[i].path] = &msgs[i]
	}
	compared := map[string]int{}
	check := func(tool, path, got string, want []byte) {
		t.Helper()
		if got != hex.EncodeToString(want) {
			t.Errorf("%s %s: %s, we have %x", tool, filepath.Base(path), got, want)
		}
		compared[tool]++
	}

	for i := range msgs {
		f := strings.Fields(ref.ask(t, "hash %s", msgs[i].path))
		check("libgcrypt GOSTR3411_94", msgs[i].path, f[0], msgs[i].g94)
		check("libgcrypt STRIBOG256", msgs[i].path, f[1], msgs[i].s256)
		check("libgcrypt STRIBOG512", msgs[i].path, f[2], msgs[i].s512)
	}
	sumLine := regexp.MustCompile(`^([0-9a-f]+) (.+)$`)
	run := func(tool string, args []string, want func(*msg) []byte) {
		out, err := exec.Command(args[0], args[1:]...).Output()
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			m := sumLine.FindStringSubmatch(line)
			if m == nil || byPath[m[2]] == nil {
				t.Fatalf("%s printed %q", tool, line)
			}
			check(tool, m[2], m[1], want(byPath[m[2]]))
		}
	}
	// gost12sum prints the hash in the byte order Kalkan uses for DigestValue (issue 17).
	run("gost12sum", append([]string{gost12sum}, paths...), func(m *msg) []byte { return m.s256 })
	run("gost12sum -l", append([]string{gost12sum, "-l"}, paths...), func(m *msg) []byte { return m.s512 })
	// gostsum -t prints the test-parameter-set hash reversed, and a wrong value for an empty
	// file (issue 17), so the empty message is left to libgcrypt.
	run("gostsum -t", append([]string{gostsum, "-t"}, nonEmpty...), func(m *msg) []byte { return reversed(m.g94) })

	dgstLine := regexp.MustCompile(`^md_gost12_(256|512)\((.+)\)= ([0-9a-f]+)$`)
	for _, md := range []string{"md_gost12_256", "md_gost12_512"} {
		cmd := exec.Command(openssl, append([]string{"dgst", "-engine", "gost", "-" + md}, paths...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl dgst -%s: %v", md, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if strings.HasPrefix(line, "Engine ") {
				continue
			}
			m := dgstLine.FindStringSubmatch(line)
			if m == nil || byPath[m[2]] == nil {
				t.Fatalf("openssl printed %q", line)
			}
			want := byPath[m[2]].s256
			if m[1] == "512" {
				want = byPath[m[2]].s512
			}
			check("openssl "+md, m[2], m[3], want)
		}
	}
	for tool, k := range compared {
		t.Logf("%s: %d messages agree", tool, k)
		if k < 1000 {
			t.Errorf("%s compared only %d messages", tool, k)
		}
	}
	if len(compared) != 8 {
		t.Errorf("compared with %d tools, want 8: %v", len(compared), compared)
	}
}

// TestCrossSignaturesLibgcrypt: on every curve, signatures made here verify with libgcrypt
// and signatures libgcrypt makes verify here, in the Kazakh convention (libgcrypt takes the
// integers; the bytes are ours to map). The digests include 0, q and 2^n-1, where the
// reduction mod q and the 0 → 1 rule must agree.
func TestCrossSignaturesLibgcrypt(t *testing.T) {
	ref := gcryref(t)
	for c, name := range libgcryptNames {
		size := c.Size()
		digests := [][]byte{
			make([]byte, size),
			reversed(c.q.FillBytes(make([]byte, size))),
			bytes.Repeat([]byte{0xff}, size),
		}
		for range 3 {
			d := make([]byte, size)
			fillRandom(d)
			digests = append(digests, d)
		}
		for i, digest := range digests {
			priv, err := GenerateKey(c, nil)
			if err != nil {
				t.Fatal(err)
			}
			qx, qy := priv.PublicKey().Point()
			qxh, qyh := fmt.Sprintf("%0*X", 2*size, qx), fmt.Sprintf("%0*X", 2*size, qy)
			alpha := Kazakh.DigestInt(digest)

			// Ours, verified by libgcrypt.
			sig, err := Kazakh.Sign(nil, priv, digest)
			if err != nil {
				t.Fatal(err)
			}
			r, s, _ := Kazakh.ParseSignature(c, sig)
			if got := ref.ask(t, "verify %s %s %s %X %X %X", name, qxh, qyh, alpha, r, s); got != "ok" {
				t.Errorf("%s digest %d: libgcrypt says %s to our signature", c, i, got)
			}
			// And libgcrypt can say no: the same signature over another digest (+2, since 0 and
			// 1, and q and q+1, are the same digest once reduced).
			if got := ref.ask(t, "verify %s %s %s %X %X %X", name, qxh, qyh, new(big.Int).Add(alpha, big.NewInt(2)), r, s); got != "bad" {
				t.Errorf("%s digest %d: libgcrypt says %s to a signature over another digest", c, i, got)
			}

			// libgcrypt's, verified here.
			f := strings.Fields(ref.ask(t, "sign %s %s %s %X %X", name, qxh, qyh, new(big.Int).SetBytes(priv.Bytes()), alpha))
			theirs := Kazakh.MarshalSignature(c, hexInt(f[0]), hexInt(f[1]))
			if err := Kazakh.Verify(priv.PublicKey(), digest, theirs); err != nil {
				t.Errorf("%s digest %d: libgcrypt's signature: %v", c, i, err)
			}
		}
	}
}

func fillRandom(b []byte) {
	for i := range b {
		b[i] = byte(mrand.Uint32())
	}
}

func requireOpenSSLGost(t *testing.T, openssl string) {
	t.Helper()
	if out, err := exec.Command(openssl, "engine", "gost").CombinedOutput(); err != nil {
		missing(t, fmt.Sprintf("OpenSSL's GOST engine does not load (Debian package libengine-gost-openssl): %v %s", err, out))
	}
}

// TestCrossSignaturesOpenSSL: keys and signatures of OpenSSL's GOST engine in the RFC 9215
// SubjectPublicKeyInfo and the RFC 4491 signature form (s||r big-endian, digest read
// little-endian). OpenSSL's public keys parse here and its signatures verify; our keys,
// marshalled here, load in OpenSSL and our signatures verify there.
func TestCrossSignaturesOpenSSL(t *testing.T) {
	openssl := external(t, "openssl", "openssl")
	requireOpenSSLGost(t, openssl)
	dir := t.TempDir()
	ossl := func(args ...string) ([]byte, error) {
		return exec.Command(openssl, args...).CombinedOutput()
	}
	cases := []struct {
		algorithm, paramset string
		curve               *Curve
		alg                 KeyAlgorithm
	}{
		{"gost2012_256", "A", curveCryptoProA, TC26_256},
		{"gost2012_256", "TCA", curveTC26_256A, TC26_256},
		{"gost2012_512", "A", curveTC26_512A, TC26_512},
		{"gost2012_512", "C", curveTC26_512C, TC26_512},
	}
	for _, tc := range cases {
		name := tc.algorithm + "-" + tc.paramset
		size := tc.curve.Size()
		// Theirs, verified here.
		key := filepath.Join(dir, name+".key")
		if out, err := ossl("genpkey", "-engine", "gost", "-algorithm", tc.algorithm, "-pkeyopt", "paramset:"+tc.paramset, "-out", key); err != nil {
			t.Fatalf("%s: genpkey: %v\n%s", name, err, out)
		}
		pubPEM, err := exec.Command(openssl, "pkey", "-engine", "gost", "-in", key, "-pubout").Output()
		if err != nil {
			t.Fatalf("%s: pkey -pubout: %v", name, err)
		}
		block, _ := pem.Decode(pubPEM)
		if block == nil {
			t.Fatalf("%s: no PEM in %q", name, pubPEM)
		}
		pub, alg, err := ParsePKIXPublicKey(block.Bytes)
		if err != nil || alg != tc.alg || pub.Curve() != tc.curve {
			t.Fatalf("%s: OpenSSL's public key: %v, %v, %v", name, alg, pub, err)
		}
		// OpenSSL's private key, in its PKCS #8 form, is the key of its public key here.
		keyDER, err := exec.Command(openssl, "pkey", "-engine", "gost", "-in", key, "-outform", "DER").Output()
		if err != nil {
			t.Fatalf("%s: pkey -outform DER: %v", name, err)
		}
		if theirPriv, alg, err := ParsePKCS8PrivateKey(keyDER); err != nil || alg != tc.alg || !theirPriv.PublicKey().Equal(pub) {
			t.Errorf("%s: OpenSSL's private key: %v, %v", name, alg, err)
		}
		for i := range 2 {
			digest := make([]byte, size)
			fillRandom(digest)
			dfile, sfile := filepath.Join(dir, fmt.Sprintf("%s-%d.dgst", name, i)), filepath.Join(dir, fmt.Sprintf("%s-%d.sig", name, i))
			os.WriteFile(dfile, digest, 0o600)
			if out, err := ossl("pkeyutl", "-engine", "gost", "-sign", "-inkey", key, "-in", dfile, "-out", sfile); err != nil {
				t.Fatalf("%s: pkeyutl -sign: %v\n%s", name, err, out)
			}
			sig, _ := os.ReadFile(sfile)
			if err := RFC4491.Verify(pub, digest, sig); err != nil {
				t.Errorf("%s: OpenSSL's signature %d: %v", name, i, err)
			}
		}

		// Ours, verified by OpenSSL.
		priv, err := GenerateKey(tc.curve, nil)
		if err != nil {
			t.Fatal(err)
		}
		der, err := MarshalPKIXPublicKey(priv.PublicKey(), tc.alg)
		if err != nil {
			t.Fatal(err)
		}
		ourPub := filepath.Join(dir, name+".ours.pub")
		os.WriteFile(ourPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
		// Our PKCS #8 private key loads in OpenSSL, which derives our public key from it.
		p8, err := MarshalPKCS8PrivateKey(priv, tc.alg)
		if err != nil {
			t.Fatal(err)
		}
		ourKey := filepath.Join(dir, name+".ours.key")
		os.WriteFile(ourKey, p8, 0o600)
		derived, err := exec.Command(openssl, "pkey", "-engine", "gost", "-inform", "DER", "-in", ourKey, "-pubout", "-outform", "DER").Output()
		if err != nil {
			t.Fatalf("%s: OpenSSL on our private key: %v", name, err)
		}
		// Compared as keys: OpenSSL may add the digest OID to the parameters on the way.
		if dpub, alg, err := ParsePKIXPublicKey(derived); err != nil || alg != tc.alg || !dpub.Equal(priv.Public()) {
			t.Errorf("%s: OpenSSL derives %x from our private key (%v, %v)", name, derived, alg, err)
		}
		for i := range 2 {
			digest := make([]byte, size)
			fillRandom(digest)
			sig, err := priv.Sign(nil, digest, SignerOpts{Convention: RFC4491})
			if err != nil {
				t.Fatal(err)
			}
			dfile, sfile := filepath.Join(dir, fmt.Sprintf("%s-ours-%d.dgst", name, i)), filepath.Join(dir, fmt.Sprintf("%s-ours-%d.sig", name, i))
			os.WriteFile(dfile, digest, 0o600)
			os.WriteFile(sfile, sig, 0o600)
			out, err := ossl("pkeyutl", "-engine", "gost", "-verify", "-pubin", "-inkey", ourPub, "-in", dfile, "-sigfile", sfile)
			if err != nil || !bytes.Contains(out, []byte("Signature Verified Successfully")) {
				t.Errorf("%s: OpenSSL on our signature %d: %v\n%s", name, i, err, out)
			}
			// OpenSSL must also refuse: the signature with r and s in the Kazakh order.
			os.WriteFile(sfile, reversed(sig), 0o600)
			if out, err := ossl("pkeyutl", "-engine", "gost", "-verify", "-pubin", "-inkey", ourPub, "-in", dfile, "-sigfile", sfile); err == nil {
				t.Errorf("%s: OpenSSL accepted a reversed signature\n%s", name, out)
			}
		}
	}
}
