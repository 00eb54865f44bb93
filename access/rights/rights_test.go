package rights_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/rights"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// kgd are the State Revenue Committee services of footnote 2, as numbered in both texts.
var kgd = []int{37, 38, 39, 40, 70, 71, 72, 73, 74}

func TestTruncation(t *testing.T) {
	tab := loadConfig(t)
	for b := siobroker.FirstBasis; b <= siobroker.LastBasis; b++ {
		d := tab.DecideService(b, 11, siobroker.Qualification{})
		want := siobroker.AccessFull
		if b == siobroker.BasisCourtAdmin || b == siobroker.BasisAdminOffence || b == siobroker.BasisCourtCivil {
			want = siobroker.AccessTruncated
		}
		if !d.Allowed || d.Access != want || d.Reason != siobroker.ReasonOK {
			t.Errorf("service 11, basis %d: %+v, want allowed %q", b, d, want)
		}
	}
	if got := tab.TruncatedFields(11); !slices.Equal(got, []string{"amount"}) {
		t.Errorf("TruncatedFields(11) = %v, want [amount]", got)
	}
	// Footnote 1 is the only truncation in the Rules.
	for _, s := range tab.Services() {
		for b, a := range s.Access {
			if a == siobroker.AccessTruncated && s.No != 11 {
				t.Errorf("service %d, basis %d: unexpected truncated cell", s.No, b)
			}
		}
		if s.No != 11 && tab.TruncatedFields(s.No) != nil {
			t.Errorf("TruncatedFields(%d) = %v, want nil", s.No, tab.TruncatedFields(s.No))
		}
	}
	// The returned slice is a copy: a caller cannot change the table.
	tab.TruncatedFields(11)[0] = "x"
	if got := tab.TruncatedFields(11); got[0] != "amount" {
		t.Errorf("TruncatedFields shares its slice: %v", got)
	}
}

func TestEconomicArticles(t *testing.T) {
	tab := loadConfig(t)
	for _, svc := range kgd {
		s, _ := tab.Service(svc)
		if len(s.Access) != 1 || s.Access[siobroker.BasisCriminal] != siobroker.AccessEconomicArticles {
			t.Errorf("service %d: access %v, want only basis 1 %q", svc, s.Access, siobroker.AccessEconomicArticles)
		}
		// Footnote 2 follows the case's qualification, as its registry gave it; the article the
		// request names is a hint that must be among the case's articles.
		cases := []struct {
			basis    siobroker.Basis
			articles []string // the case's, from its registry
			hint     string   // the request's
			allowed  bool
			reason   string
		}{
			{siobroker.BasisCriminal, []string{"216"}, "", true, siobroker.ReasonOK},                       // false invoicing: Chapter 8
			{siobroker.BasisCriminal, []string{"190", "245"}, "", true, siobroker.ReasonOK},                // one of Chapter 8 is enough
			{siobroker.BasisCriminal, []string{"214"}, "", true, siobroker.ReasonOK},                       // first article of Chapter 8
			{siobroker.BasisCriminal, []string{"249"}, "", true, siobroker.ReasonOK},                       // last article of Chapter 8
			{siobroker.BasisCriminal, []string{"232-1"}, "", true, siobroker.ReasonOK},                     // inserted by the Law of 16.07.2025
			{siobroker.BasisCriminal, []string{"190", "232-1"}, "232-1", true, siobroker.ReasonOK},         // named as the hint
			{siobroker.BasisCriminal, []string{"232-2"}, "", false, siobroker.ReasonDeniedArticle},         // no such article listed
			{siobroker.BasisCriminal, []string{"190", "216"}, "216", true, siobroker.ReasonOK},             // the hint matches
			{siobroker.BasisCriminal, []string{"216"}, " 216 ", true, siobroker.ReasonOK},                  // layout spaces forgiven
			{siobroker.BasisCriminal, nil, "", false, siobroker.ReasonDeniedArticle},                       // no registry said
			{siobroker.BasisCriminal, nil, "216", false, siobroker.ReasonDeniedArticle},                    // a typed article proves nothing
			{siobroker.BasisCriminal, []string{"190"}, "216", false, siobroker.ReasonDeniedArticle},        // not the case's article
			{siobroker.BasisCriminal, []string{"190", "216"}, "190", false, siobroker.ReasonDeniedArticle}, // the case's, not of Chapter 8
			{siobroker.BasisCriminal, []string{"188"}, "", false, siobroker.ReasonDeniedArticle},           // theft: Chapter 6
			{siobroker.BasisCriminal, []string{"253"}, "", false, siobroker.ReasonDeniedArticle},           // commercial bribery: Chapter 9
			{siobroker.BasisCriminal, []string{"255"}, "", false, siobroker.ReasonDeniedArticle},           // terrorism: Chapter 10
			{siobroker.BasisCriminal, []string{"216"}, "ст. 216", false, siobroker.ReasonDeniedArticle},
			{siobroker.BasisCriminal, []string{"216-9"}, "", false, siobroker.ReasonDeniedArticle},
			{siobroker.BasisCourtAdmin, []string{"216"}, "", false, siobroker.ReasonDeniedBasis},
			{siobroker.BasisAdminOffence, []string{"216"}, "216", false, siobroker.ReasonDeniedBasis},
			{siobroker.BasisCourtCivil, []string{"216"}, "", false, siobroker.ReasonDeniedBasis},
			{siobroker.BasisEnforcement, []string{"216"}, "", false, siobroker.ReasonDeniedBasis},
			{siobroker.BasisSearch, []string{"216"}, "", false, siobroker.ReasonDeniedBasis},
		}
		for _, c := range cases {
			d := tab.DecideService(c.basis, svc, siobroker.Qualification{Articles: c.articles, Hint: c.hint})
			if d.Allowed != c.allowed || d.Reason != c.reason {
				t.Errorf("service %d, basis %d, articles %v, hint %q: %+v, want allowed=%t %s", svc, c.basis, c.articles, c.hint, d, c.allowed, c.reason)
			}
			if d.Explanation == "" {
				t.Errorf("service %d, basis %d, articles %v, hint %q: no explanation", svc, c.basis, c.articles, c.hint)
			}
		}
	}
	// An article has no effect on a service without footnote 2.
	if d := tab.DecideService(siobroker.BasisCriminal, 1, siobroker.Qualification{Articles: []string{"188"}, Hint: "190"}); !d.Allowed || d.Access != siobroker.AccessFull {
		t.Errorf("service 1 with article 188: %+v", d)
	}
	if !slices.Equal(tab.EconomicArticles()[:2], []string{"214", "215"}) {
		t.Errorf("EconomicArticles starts %v", tab.EconomicArticles()[:2])
	}
	// A "-N" article sorts after its base article and before the next one.
	arts := tab.EconomicArticles()
	if i := slices.Index(arts, "232-1"); i < 1 || arts[i-1] != "232" || arts[i+1] != "233" {
		t.Errorf("EconomicArticles around 232-1: %v", arts)
	}
	if !tab.IsEconomicArticle("232-1") || tab.IsEconomicArticle("232-2") {
		t.Errorf("IsEconomicArticle: 232-1 %t, 232-2 %t", tab.IsEconomicArticle("232-1"), tab.IsEconomicArticle("232-2"))
	}
}

func TestDecideServiceRefusals(t *testing.T) {
	tab := loadConfig(t)
	cases := []struct {
		name    string
		basis   siobroker.Basis
		service int
	}{
		{"empty cell", siobroker.BasisCourtAdmin, 65},
		{"empty cell, only enforcement", siobroker.BasisCriminal, 67},
		{"basis 0", 0, 1},
		{"basis 7", 7, 1},
		{"service 0", siobroker.BasisCriminal, 0},
		{"service 94", siobroker.BasisCriminal, 94},
	}
	for _, c := range cases {
		d := tab.DecideService(c.basis, c.service, siobroker.Qualification{})
		if d.Allowed || d.Reason != siobroker.ReasonDeniedBasis || d.Access != siobroker.AccessNone || d.Explanation == "" {
			t.Errorf("%s: %+v", c.name, d)
		}
	}
	d := tab.DecideService(siobroker.BasisEnforcement, 67, siobroker.Qualification{})
	if !d.Allowed || !strings.Contains(d.Explanation, "service 67") || !strings.Contains(d.Explanation, "enforcement proceedings") {
		t.Errorf("service 67 under basis 5: %+v", d)
	}
}

func TestExplainRoleFirst(t *testing.T) {
	tab := loadConfig(t)
	cases := []struct {
		role    int
		basis   siobroker.Basis
		service int
		article string
		allowed bool
		reason  string
		mention []string
	}{
		// A bailiff (15) may use only enforcement proceedings.
		{15, siobroker.BasisCriminal, 1, "", false, siobroker.ReasonDeniedBasis, []string{"Appendix 1", "role 15", "Судебный исполнитель", "basis 1"}},
		{15, siobroker.BasisEnforcement, 1, "", true, siobroker.ReasonOK, []string{"role 15", "service 1"}},
		// A judge (2) may not use basis 3 even for a service open under it.
		{2, siobroker.BasisAdminOffence, 1, "", false, siobroker.ReasonDeniedBasis, []string{"Appendix 1", "role 2"}},
		// The duty officer (19) has only the search case.
		{19, siobroker.BasisSearch, 85, "", true, siobroker.ReasonOK, []string{"role 19"}},
		{19, siobroker.BasisCriminal, 85, "", false, siobroker.ReasonDeniedBasis, []string{"Appendix 1"}},
		// The role check passes but the service is closed under the basis.
		{17, siobroker.BasisAdminOffence, 37, "216", false, siobroker.ReasonDeniedBasis, []string{"Appendix 2", "role 17"}},
		// An ОВД investigator (3) asks a КГД service in a criminal case.
		{3, siobroker.BasisCriminal, 37, "216", true, siobroker.ReasonOK, []string{"footnote 2", "216", "role 3"}},
		{3, siobroker.BasisCriminal, 37, "190", false, siobroker.ReasonDeniedArticle, []string{"footnote 2", "190", "not of Chapter 8"}},
		{3, siobroker.BasisCriminal, 37, "", true, siobroker.ReasonOK, []string{"footnote 2", "qualification holds article 216", "role 3"}},
		// Truncated pension service for a judge in a civil case.
		{2, siobroker.BasisCourtCivil, 11, "", true, siobroker.ReasonOK, []string{"truncated", "amount"}},
		// Unknown role.
		{20, siobroker.BasisCriminal, 1, "", false, siobroker.ReasonDeniedBasis, []string{"Role 20"}},
		{0, siobroker.BasisCriminal, 1, "", false, siobroker.ReasonDeniedBasis, []string{"Role 0"}},
	}
	for _, c := range cases {
		// The case of every row is qualified under articles 190 and 216.
		d, trace := tab.Explain(c.role, c.basis, c.service, siobroker.Qualification{Articles: []string{"190", "216"}, Hint: c.article})
		if d.Allowed != c.allowed || d.Reason != c.reason {
			t.Errorf("Explain(%d, %d, %d, %q) = %+v, want allowed=%t %s", c.role, c.basis, c.service, c.article, d, c.allowed, c.reason)
		}
		for _, m := range c.mention {
			if !strings.Contains(d.Explanation, m) {
				t.Errorf("Explain(%d, %d, %d, %q): explanation %q does not mention %q", c.role, c.basis, c.service, c.article, d.Explanation, m)
			}
		}
		if !strings.HasSuffix(trace, "\n") || !strings.Contains(trace, "Result: ") {
			t.Errorf("Explain(%d, %d, %d, %q): trace %q", c.role, c.basis, c.service, c.article, trace)
		}
	}
}

func TestRoleAccessors(t *testing.T) {
	tab := loadConfig(t)
	r, ok := tab.Role(1)
	if !ok || r.Name != "Прокурор" || len(r.Bases) != 6 {
		t.Errorf("Role(1) = %+v, %t", r, ok)
	}
	if _, ok := tab.Role(20); ok {
		t.Error("Role(20) exists")
	}
	if _, ok := tab.Service(94); ok {
		t.Error("Service(94) exists")
	}
	if n := len(tab.Services()); n != rights.NumServices {
		t.Errorf("Services() has %d, want %d", n, rights.NumServices)
	}
	// Accessors return copies.
	r.Bases[0] = 6
	s, _ := tab.Service(1)
	delete(s.Access, siobroker.BasisCriminal)
	if !tab.RoleMayUse(1, siobroker.BasisCriminal) || tab.DecideService(siobroker.BasisCriminal, 1, siobroker.Qualification{}).Access != siobroker.AccessFull {
		t.Error("accessors share state with the table")
	}
}

func TestExportJSONGolden(t *testing.T) {
	tab := loadConfig(t)
	var buf bytes.Buffer
	if err := tab.ExportJSON(&buf); err != nil {
		t.Fatal(err)
	}
	const golden = "../../testdata/rights/export.golden.json"
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./rights -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("ExportJSON differs from %s; run go test ./rights -update and review the diff", golden)
	}

	// The shape, independent of the golden file.
	if !strings.HasPrefix(buf.String(), "{\n  \"roles\": [\n    {\n      \"no\": 1,\n      \"name\": \"Прокурор\",\n      \"bases\": [\n        1,") {
		t.Errorf("unexpected start:\n%.200s", buf.String())
	}
	var doc struct {
		Roles []struct {
			No    int    `json:"no"`
			Name  string `json:"name"`
			Bases []int  `json:"bases"`
		} `json:"roles"`
		Services []struct {
			No     int               `json:"no"`
			Name   string            `json:"name"`
			Access map[string]string `json:"access"`
		} `json:"services"`
		Edition     string `json:"edition"`
		EditionDate string `json:"edition_date"`
	}
	dec := json.NewDecoder(bytes.NewReader(buf.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.Edition != "2026" || doc.EditionDate != "2026-02-23" {
		t.Errorf("exported edition %q of %q", doc.Edition, doc.EditionDate)
	}
	if len(doc.Roles) != rights.NumRoles || len(doc.Services) != rights.NumServices {
		t.Fatalf("%d roles, %d services", len(doc.Roles), len(doc.Services))
	}
	if got := doc.Services[10].Access; got["2"] != "truncated" || got["1"] != "full" || len(got) != 6 {
		t.Errorf("service 11 access %v", got)
	}
	if got := doc.Services[36].Access; len(got) != 1 || got["1"] != "economic-articles-only" {
		t.Errorf("service 37 access %v", got)
	}
	if got := doc.Services[66].Access; len(got) != 1 || got["5"] != "full" {
		t.Errorf("service 67 access %v", got)
	}
	if r := doc.Roles[18]; r.No != 19 || !slices.Equal(r.Bases, []int{6}) {
		t.Errorf("role 19 = %+v", r)
	}
}
