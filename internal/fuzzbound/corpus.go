package fuzzbound

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// WriteCorpusEnv names the environment variable that makes Seeds write its seeds to the
// package's testdata/fuzz/<target>/ as well: SIO_FUZZ_WRITE_CORPUS=1 go test -run '^Fuzz' ./pkg.
const WriteCorpusEnv = "SIO_FUZZ_WRITE_CORPUS"

// seedPrefix starts the names of the files Seeds writes. Files of other names in the same
// directory are inputs the fuzzer found and kept as regression tests, and are never touched.
const seedPrefix = "seed-"

// Seeds collects the seed inputs of a fuzz target. Each is given to f.Add; with
// SIO_FUZZ_WRITE_CORPUS set, each is also written to testdata/fuzz/<target>/seed-<name> in
// Go's corpus format ("go test fuzz v1"), replacing the seed files written before.
type Seeds struct {
	f     *testing.F
	dir   string
	write bool
	names map[string]bool
}

// NewSeeds returns the seed collector of f.
func NewSeeds(f *testing.F) *Seeds {
	f.Helper()
	s := &Seeds{f: f, dir: filepath.Join("testdata", "fuzz", f.Name()), write: os.Getenv(WriteCorpusEnv) != "", names: map[string]bool{}}
	if s.write {
		old, _ := filepath.Glob(filepath.Join(s.dir, seedPrefix+"*"))
		for _, p := range old {
			if err := os.Remove(p); err != nil {
				f.Fatal(err)
			}
		}
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	return s
}

// Add adds one seed. name is made a file name (lower case, runs of other characters as one
// dash) and must be unique within the target.
func (s *Seeds) Add(name string, values ...any) {
	s.f.Helper()
	name = fileName(name)
	if s.names[name] {
		s.f.Fatalf("seed %q added twice", name)
	}
	s.names[name] = true
	s.f.Add(values...)
	if !s.write {
		return
	}
	data, err := marshal(values...)
	if err != nil {
		s.f.Fatalf("seed %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, seedPrefix+name), data, 0o644); err != nil {
		s.f.Fatal(err)
	}
}

func fileName(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// marshal writes values as internal/fuzz's marshalCorpusFile does, for the types the targets
// of this module take.
func marshal(values ...any) ([]byte, error) {
	b := bytes.NewBufferString("go test fuzz v1\n")
	for _, v := range values {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(b, "string(%q)\n", v)
		case int, int64, uint16, uint32, uint64, bool:
			fmt.Fprintf(b, "%T(%v)\n", v, v)
		default:
			return nil, fmt.Errorf("a seed of type %T cannot be written", v)
		}
	}
	return b.Bytes(), nil
}
