package devpki

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

func TestUsersHaveDemoCases(t *testing.T) {
	for _, s := range userSpecs {
		if len(s.cases) == 0 {
			t.Errorf("user %s has no demo cases", s.name)
		}
		seen := map[siobroker.CaseRef]bool{}
		for _, c := range s.cases {
			if seen[c.Ref()] {
				t.Errorf("user %s: case %+v listed twice", s.name, c)
			}
			seen[c.Ref()] = true
		}
	}
}

func TestManifestCasesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	m, err := Generate(dir, time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"cases"`) || !strings.Contains(string(raw), `"instructionNo"`) {
		t.Errorf("manifest does not carry the demo cases:\n%s", raw)
	}
	back, err := LoadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Users, m.Users) {
		t.Errorf("cases changed on reload:\n%+v\n%+v", back.Users, m.Users)
	}
	if got := m.Users[0].Cases[0].Ref().Number; got != "261500031000123" {
		t.Errorf("the prosecutor's first case is %q, the demo scripts send 261500031000123", got)
	}
}

func TestLoadManifestCases(t *testing.T) {
	const head = `{"users":[{"iin":"750312300458","name":"X","role":1,"cert":"x.pem","key":"x.key","keyType":"rsa","status":"valid"`
	const tail = `}],"ca":"ca.pem","crl":"crl.pem","brokerCert":"broker.pem","brokerKey":"broker.key"}`
	for _, tc := range []struct {
		name, cases string
		ok          bool
	}{
		{"no cases (a manifest of an older generator)", ``, true},
		{"a case", `,"cases":[{"basis":2,"number":"2-1/2025","year":"2025","court":"X"}]`, true},
		{"basis 7", `,"cases":[{"basis":7,"number":"1"}]`, false},
		{"no number", `,"cases":[{"basis":1}]`, false},
		{"unknown field", `,"cases":[{"basis":1,"number":"1","judge":"x"}]`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte(head+tc.cases+tail), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadManifest(dir)
			if (err == nil) != tc.ok {
				t.Fatalf("LoadManifest: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
