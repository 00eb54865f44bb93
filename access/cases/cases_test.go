package cases

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// today is the clock of the tests: the accounting year may be at most 2026.
var today = fixedClock(time.Date(2026, 11, 23, 17, 0, 0, 0, siobroker.Astana))

func defaultRules(t *testing.T) *Rules {
	t.Helper()
	r, err := NewRules(DefaultConfig(), today)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

const (
	astanaCourt = "Есильский районный суд г. Астаны"
	kgBody      = "Генеральная прокуратура Кыргызской Республики"
)

type ref = siobroker.CaseRef

func TestValidate(t *testing.T) {
	r := defaultRules(t)
	erdr := "261500031000123"
	court := func(n, y, c string) ref { return ref{Number: n, Year: y, Court: c} }
	legal := func(n, body, letter string) ref {
		return ref{Number: n, RequestingBody: body, CoveringLetterNo: letter}
	}
	for _, tc := range []struct {
		name  string
		basis siobroker.Basis
		c     ref
		form  string
		field string   // "" when valid
		words []string // the message must contain these
	}{
		// Basis 1, §21: the ЕРДР number.
		{"erdr", 1, ref{Number: erdr}, FormERDR, "", nil},
		{"erdr 14 digits", 1, ref{Number: "26150003100012"}, FormERDR, FieldNumber,
			[]string{"basis 1 (criminal case)", "query/case/number", "15-digit ЕРДР number", `"26150003100012"`, "cases.patterns.erdr"}},
		{"erdr 16 digits", 1, ref{Number: "2615000310001234"}, FormERDR, FieldNumber, nil},
		{"erdr with a dash", 1, ref{Number: "26-1500031000123"}, FormERDR, FieldNumber, nil},
		{"erdr with letters", 1, ref{Number: "26150003100012А"}, FormERDR, FieldNumber, nil},
		{"erdr missing", 1, ref{}, FormERDR, FieldNumber, []string{"needs the ЕРДР number", "missing"}},
		{"erdr with a year", 1, ref{Number: erdr, Year: "2025"}, FormERDR, FieldYear, []string{"has no field year", "court form"}},
		{"erdr with a court", 1, ref{Number: erdr, Court: astanaCourt}, FormERDR, FieldCourt, nil},

		// Basis 1, §22: investigative or prosecutor's instruction.
		{"instruction", 1, ref{Number: erdr, InstructionNo: "2-15-25/1234"}, FormInstruction, "", nil},
		{"instruction with Cyrillic", 1, ref{Number: erdr, InstructionNo: "К-12/3"}, FormInstruction, "", nil},
		{"instruction with Kazakh letters and dots", 1, ref{Number: erdr, InstructionNo: "18.01.2025-Қ"}, FormInstruction, "", nil},
		{"instruction 30 characters", 1, ref{Number: erdr, InstructionNo: strings.Repeat("1", 30)}, FormInstruction, "", nil},
		{"instruction 31 characters", 1, ref{Number: erdr, InstructionNo: strings.Repeat("1", 31)}, FormInstruction, FieldInstructionNo,
			[]string{"instruction form", "outgoing number of the instruction", "1 to 30 letters"}},
		{"instruction with a space", 1, ref{Number: erdr, InstructionNo: "2 15"}, FormInstruction, FieldInstructionNo, nil},
		{"instruction starting with a slash", 1, ref{Number: erdr, InstructionNo: "/15"}, FormInstruction, FieldInstructionNo, nil},
		{"instruction with a bad case number", 1, ref{Number: "1234", InstructionNo: "2-15"}, FormInstruction, FieldNumber,
			[]string{"instruction form", "ЕРДР number of the criminal case"}},
		{"instruction with a year", 1, ref{Number: erdr, InstructionNo: "2-15", Year: "2025"}, FormInstruction, FieldYear, nil},

		// Basis 1, §22: international legal assistance.
		{"legal assistance", 1, legal("MLA-2025/118", kgBody, "2-09-25/5512"), FormLegalAssistance, "", nil},
		{"legal assistance, Latin body", 1, legal("118", "Ministry of Justice of the Republic of Türkiye (Ankara)", "5512"), FormLegalAssistance, "", nil},
		{"legal assistance without a covering letter", 1, legal("MLA-2025/118", kgBody, ""), FormLegalAssistance, FieldCoveringLetterNo,
			[]string{"international legal assistance form", "covering letter", "missing"}},
		{"legal assistance without a requesting body", 1, legal("MLA-2025/118", "", "5512"), FormLegalAssistance, FieldRequestingBody,
			[]string{"the body that sent the instruction", "missing"}},
		{"legal assistance without a number", 1, legal("", kgBody, "5512"), FormLegalAssistance, FieldNumber,
			[]string{"outgoing number of the legal-assistance instruction"}},
		{"legal assistance, number with a space", 1, legal("MLA 118", kgBody, "5512"), FormLegalAssistance, FieldNumber,
			[]string{"cases.patterns.legal_assistance_no"}},
		{"legal assistance, body starting with punctuation", 1, legal("118", "-Прокуратура", "5512"), FormLegalAssistance, FieldRequestingBody, nil},
		{"legal assistance, body with markup", 1, legal("118", "<b>Прокуратура</b>", "5512"), FormLegalAssistance, FieldRequestingBody, nil},
		{"legal assistance, bad covering letter", 1, legal("118", kgBody, "55 12"), FormLegalAssistance, FieldCoveringLetterNo, nil},
		{"legal assistance with an instruction number", 1, ref{Number: "118", InstructionNo: "2-15", RequestingBody: kgBody, CoveringLetterNo: "5512"},
			FormLegalAssistance, FieldInstructionNo, []string{"has no field instructionNo", "goes in number"}},
		{"legal assistance with a court", 1, ref{Number: "118", RequestingBody: kgBody, CoveringLetterNo: "5512", Court: "1975"},
			FormLegalAssistance, FieldCourt, nil},

		// Bases 2 and 4, §§24–25: number, accounting year, court.
		{"court admin", 2, court("7511-25-00-3а/125", "2025", astanaCourt), FormCourt, "", nil},
		{"court civil", 4, court("7511-25-00-2/1234", "2025", astanaCourt), FormCourt, "", nil},
		{"court civil, old form", 4, court("2-4521/2024", "2024", "Алмалинский районный суд г. Алматы"), FormCourt, "", nil},
		{"court by code", 2, court("1975-25-00-4/87", "2025", "1975"), FormCourt, "", nil},
		{"court, current year", 4, court("2-1/2026", "2026", astanaCourt), FormCourt, "", nil},
		{"court, 1991", 4, court("2-1/1991", "1991", astanaCourt), FormCourt, "", nil},
		{"court, year in the future", 4, court("2-1/2027", "2027", astanaCourt), FormCourt, FieldYear,
			[]string{"basis 4 (civil case, court)", "accounting year", "between 1991 and 2026", "2027"}},
		{"court, year before 1991", 2, court("2-1/1990", "1990", astanaCourt), FormCourt, FieldYear,
			[]string{"basis 2 (administrative or administrative-offence case, court)", "between 1991 and 2026"}},
		{"court, 2-digit year", 2, court("2-1/2025", "25", astanaCourt), FormCourt, FieldYear, []string{"4 digits"}},
		{"court, year missing", 2, court("2-1/2025", "", astanaCourt), FormCourt, FieldYear, []string{"accounting year", "missing"}},
		{"court, court missing", 4, court("2-1/2025", "2025", ""), FormCourt, FieldCourt, []string{"the court that took the decision", "missing"}},
		{"court, number missing", 4, court("", "2025", astanaCourt), FormCourt, FieldNumber, []string{"court case number", "missing"}},
		{"court, digits only", 4, court("12345", "2025", astanaCourt), FormCourt, FieldNumber,
			[]string{"court code-YY-NN-category/serial", "cases.patterns.court_case"}},
		{"court, ЕРДР number", 2, court(erdr, "2025", astanaCourt), FormCourt, FieldNumber, nil},
		{"court, 2-digit year in the old form", 4, court("2-4521/24", "2024", astanaCourt), FormCourt, FieldNumber, nil},
		{"court, court with markup", 4, court("2-1/2025", "2025", "<суд>"), FormCourt, FieldCourt, nil},
		{"court with an instruction number", 4, ref{Number: "2-1/2025", Year: "2025", Court: astanaCourt, InstructionNo: "1"}, FormCourt, FieldInstructionNo,
			[]string{"belong to basis 1"}},
		{"court with a requesting body", 2, ref{Number: "2-1/2025", Year: "2025", Court: astanaCourt, RequestingBody: kgBody}, FormCourt, FieldRequestingBody, nil},

		// Basis 3, §23.
		{"admin offence", 3, ref{Number: "2615000310000789"}, FormAdminOffence, "", nil},
		{"admin offence 10 digits", 3, ref{Number: "1234567890"}, FormAdminOffence, "", nil},
		{"admin offence too short", 3, ref{Number: "123456789"}, FormAdminOffence, FieldNumber,
			[]string{"basis 3 (administrative-offence case, КПСиСУ)", "10 to 20 digits"}},
		{"admin offence with letters", 3, ref{Number: "РД-123456789"}, FormAdminOffence, FieldNumber, nil},
		{"admin offence with a year", 3, ref{Number: "2615000310000789", Year: "2025"}, FormAdminOffence, FieldYear, nil},
		{"admin offence with a covering letter", 3, ref{Number: "2615000310000789", CoveringLetterNo: "1"}, FormAdminOffence, FieldCoveringLetterNo,
			[]string{"legal assistance form of basis 1"}},

		// Basis 5, §27.
		{"enforcement grouped", 5, ref{Number: "02-0015-25-1/1234"}, FormEnforcement, "", nil},
		{"enforcement digits", 5, ref{Number: "1975250012345"}, FormEnforcement, "", nil},
		{"enforcement too short", 5, ref{Number: "12345"}, FormEnforcement, FieldNumber,
			[]string{"basis 5 (enforcement proceedings)", "АИС ОИП through-number"}},
		{"enforcement letters", 5, ref{Number: "ИП-12345678"}, FormEnforcement, FieldNumber, nil},
		{"enforcement trailing dash", 5, ref{Number: "02-0015-"}, FormEnforcement, FieldNumber, nil},
		{"enforcement with a court", 5, ref{Number: "1975250012345", Court: "1975"}, FormEnforcement, FieldCourt, nil},

		// Basis 6, §26.
		{"search 15 digits", 6, ref{Number: "261500031000777"}, FormSearch, "", nil},
		{"search with a prefix", 6, ref{Number: "РД-257100041"}, FormSearch, "", nil},
		{"search with a prefix, no dash", 6, ref{Number: "РД257100041"}, FormSearch, "", nil},
		{"search lower-case prefix", 6, ref{Number: "рд-257100041"}, FormSearch, FieldNumber,
			[]string{"basis 6 (search case)", "КПСиСУ number of the search case"}},
		{"search too short", 6, ref{Number: "12345"}, FormSearch, FieldNumber, nil},
		{"search with an instruction number", 6, ref{Number: "261500031000777", InstructionNo: "1"}, FormSearch, FieldInstructionNo, nil},

		// No basis.
		{"basis 0", 0, ref{Number: erdr}, "", FieldBasis, []string{"not a basis"}},
		{"basis 10", 10, ref{Number: erdr}, "", FieldBasis, []string{"not a basis (1 to 9)"}},

		// The Law's bases of §1 (2026): the number of the document, by its own pattern.
		{"other bodies", 7, ref{Number: "12-3/456"}, FormOtherBodies, "", nil},
		{"covert", 8, ref{Number: "ОРД-2026/17"}, FormCovert, "", nil},
		{"covert with a court", 8, ref{Number: "ОРД-1", Court: astanaCourt}, FormCovert, FieldCourt, nil},
		{"financial monitoring, a space", 9, ref{Number: "ФМ 1"}, FormFinMonitoring, FieldNumber,
			[]string{"basis 9 (financial monitoring, art. 16-2 p. 5 of the Law)", "financial-monitoring case", "cases.patterns.fin_monitoring"}},
		{"financial monitoring, missing", 9, ref{}, FormFinMonitoring, FieldNumber, []string{"missing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.Form(tc.basis, tc.c); got != tc.form {
				t.Errorf("Form = %q, want %q", got, tc.form)
			}
			err := r.Validate(tc.basis, tc.c)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var e *siobroker.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want a *siobroker.Error", err)
			}
			if e.Code != siobroker.CodeCaseInvalid || e.Field != tc.field {
				t.Errorf("code %s field %q, want %s %q (%s)", e.Code, e.Field, siobroker.CodeCaseInvalid, tc.field, e.Message)
			}
			if !strings.HasPrefix(e.Message, tc.field+": ") {
				t.Errorf("message does not start with the field: %s", e.Message)
			}
			for _, w := range tc.words {
				if !strings.Contains(e.Message, w) {
					t.Errorf("message lacks %q: %s", w, e.Message)
				}
			}
		})
	}
}

func TestExemptAndRegistry(t *testing.T) {
	r := defaultRules(t)
	want := map[siobroker.Basis]string{1: "erdr", 2: "courts", 4: "courts", 5: "aisoip", 6: "erdr"}
	for b := siobroker.FirstBasis; b <= siobroker.LastBasis; b++ {
		if Exempt(b) != (b == 3) {
			t.Errorf("Exempt(%d) = %v", b, Exempt(b))
		}
		name, ok := r.Registry(b)
		if name != want[b] || ok != (want[b] != "") {
			t.Errorf("Registry(%d) = %q, %v; want %q", b, name, ok, want[b])
		}
	}
	if r.CheckTimeout() != 5*time.Second {
		t.Errorf("CheckTimeout = %s", r.CheckTimeout())
	}
}

func TestNewRulesRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"malformed pattern", func(c *Config) { c.Patterns.CourtCase.Regexp = `^(\d+$` }, "cases.patterns.court_case.regexp"},
		{"unanchored pattern", func(c *Config) { c.Patterns.Search.Regexp = `\d{15}` }, "cases.patterns.search.regexp"},
		{"empty pattern", func(c *Config) { c.Patterns.Year.Regexp = `` }, "cases.patterns.year.regexp"},
		{"registry for basis 3", func(c *Config) { c.Registries[3] = "erdr" }, "cases.registries.3"},
		{"registry for basis 9", func(c *Config) { c.Registries[9] = "erdr" }, "cases.registries.9"},
		{"registry name with a dot", func(c *Config) { c.Registries[5] = "ais.oip" }, "cases.registries.5"},
		{"no check timeout", func(c *Config) { c.CheckTimeout = 0 }, "cases.check_timeout"},
		{"min year", func(c *Config) { c.MinYear = 91 }, "cases.min_year"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.change(&c)
			_, err := NewRules(c, siobroker.SystemClock{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

// An alternation anchored only at its ends is anchored whole: "^a$|^b$" passes the check, and
// "^\d{15}|\d{16}$" would otherwise accept "x1234567890123456".
func TestPatternsAreAnchoredWhole(t *testing.T) {
	c := DefaultConfig()
	c.Patterns.ERDR.Regexp = `^\d{15}|\d{16}$`
	c.Patterns.ERDR.Words = ""
	r, err := NewRules(c, siobroker.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(1, ref{Number: "x1234567890123456"}); err == nil {
		t.Fatal("an unanchored alternative was accepted")
	} else if !strings.Contains(err.Error(), `a value matching ^\d{15}|\d{16}$`) {
		t.Errorf("without words the message quotes the pattern: %v", err)
	}
	if err := r.Validate(1, ref{Number: "1234567890123456"}); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentValidate(t *testing.T) {
	r := defaultRules(t)
	done := make(chan error, 8)
	for range 8 {
		go func() {
			var err error
			for range 200 {
				if e := r.Validate(4, ref{Number: "2-1/2025", Year: "2025", Court: astanaCourt}); e != nil {
					err = e
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestNewRulesNeedsClock(t *testing.T) {
	if _, err := NewRules(DefaultConfig(), nil); err == nil {
		t.Fatal("rules without a clock were built")
	}
}
