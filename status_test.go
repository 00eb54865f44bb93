package siobroker

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// declaredCodes reads every Code constant of errors.go, so that a code added there without a
// status or a README row fails here rather than answering 500 by default.
func declaredCodes(t *testing.T) []Code {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []Code
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for _, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok {
					t.Fatalf("a Code constant that is not a literal: %v", vs.Names)
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				codes = append(codes, Code(s))
			}
		}
	}
	if len(codes) < 40 {
		t.Fatalf("read %d codes from errors.go; the reader has lost them", len(codes))
	}
	return codes
}

func TestEveryCodeHasAnHTTPStatus(t *testing.T) {
	for _, c := range declaredCodes(t) {
		if _, ok := plainHTTPStatus[c]; !ok {
			t.Errorf("%s has no HTTP status in plainHTTPStatus", c)
		}
	}
}

// TestReadmeFaultTable holds the README's table of codes to errors.go and to plainHTTPStatus:
// every code has its row, and the row's status is the one the broker answers.
func TestReadmeFaultTable(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[Code]string{}
	for _, line := range strings.Split(string(readme), "\n") {
		if !strings.HasPrefix(line, "| `SIO-") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		rows[Code(strings.Trim(cells[0], "`"))] = cells[len(cells)-1]
	}
	for _, c := range declaredCodes(t) {
		status, ok := rows[c]
		if !ok {
			t.Errorf("README.md has no row for `%s`", c)
			continue
		}
		if want := strconv.Itoa(HTTPStatus(c)); status != want {
			t.Errorf("README.md gives `%s` the status %s; the broker answers %s", c, status, want)
		}
	}
}
