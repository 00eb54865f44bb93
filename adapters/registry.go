package adapters

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

// CaseRegistry answers case checks (§5 of the Rules): does the case exist, and if so its status,
// the people in its proceedings with their part, and its qualification (CaseAnswer builds that
// answer). An error means the registry could not answer, which is not the same as "no such
// case". Check must honour ctx: the check's deadline is on it.
type CaseRegistry interface {
	Check(ctx context.Context, req schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error)
}

// CaseRegistryFunc adapts a function to CaseRegistry.
type CaseRegistryFunc func(ctx context.Context, req schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error)

// Check calls f.
func (f CaseRegistryFunc) Check(ctx context.Context, req schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error) {
	return f(ctx, req)
}

// CaseParams are the values of a case check a registry backend may pass to its source (a
// postgres query's bind parameters, an http registry's query), and how each is read. As with
// Params, a configuration names values and never writes them into a query itself. The signer is
// not among them: the registry answers for the case, and the broker decides whose it is.
var CaseParams = map[string]func(schemas.CaseCheckRequest) string{
	"basis":                   func(r schemas.CaseCheckRequest) string { return strconv.Itoa(int(r.Basis)) },
	"case.number":             func(r schemas.CaseCheckRequest) string { return r.Case.Number },
	"case.instruction_no":     func(r schemas.CaseCheckRequest) string { return r.Case.InstructionNo },
	"case.requesting_body":    func(r schemas.CaseCheckRequest) string { return r.Case.RequestingBody },
	"case.covering_letter_no": func(r schemas.CaseCheckRequest) string { return r.Case.CoveringLetterNo },
	"case.year":               func(r schemas.CaseCheckRequest) string { return r.Case.Year },
	"case.court":              func(r schemas.CaseCheckRequest) string { return r.Case.Court },
}

// CaseParamNames returns the names of CaseParams, sorted.
func CaseParamNames() []string {
	names := make([]string, 0, len(CaseParams))
	for n := range CaseParams {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// CaseAnswer is a registry's answer to req from what its source said: found or not, and of a
// found case its facts, normalised so that every backend answers alike: status and parts trimmed
// and lower-cased; participants without an IIN dropped, and repeats (a query that joins the
// participants with the articles gives each one per article) kept once; articles reduced to
// their numbers (ArticleNumbers), each once. A participant whose IIN is not 12 digits, or an
// article that is not one, is an error: the source's data is not what the registry's
// configuration says it is, and the broker must not decide on a guess. Neither value is quoted
// in the error, which is logged.
//
// InProceedings is set when the signer is among the participants, whatever the part, for the
// readers of the answer that predate participants; the broker decides from the participants.
func CaseAnswer(req schemas.CaseCheckRequest, found bool, facts siobroker.CaseFacts) (schemas.CaseCheckResponse, error) {
	resp := schemas.CaseCheckResponse{RequestID: req.RequestID, Found: found}
	if !found {
		resp.Message = "no such case"
		return resp, nil
	}
	resp.Status = norm(facts.Status)
	var errs []error
	for i, p := range facts.Participants {
		iin, part := strings.TrimSpace(p.IIN), norm(p.Part)
		switch {
		case iin == "":
			continue
		case !isIIN(iin):
			errs = append(errs, fmt.Errorf("participant %d: the IIN is not 12 digits", i+1))
			continue
		}
		q := siobroker.Participant{IIN: iin, Part: part}
		if !slices.Contains(resp.Participants, q) {
			resp.Participants = append(resp.Participants, q)
		}
		resp.InProceedings = resp.InProceedings || iin == req.SignerIIN
	}
	for _, a := range facts.Articles {
		numbers, err := ArticleNumbers(a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, n := range numbers {
			if !slices.Contains(resp.Articles, n) {
				resp.Articles = append(resp.Articles, n)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return schemas.CaseCheckResponse{}, err
	}
	if resp.InProceedings {
		resp.Message = "the case is in the registry, with the signer among its participants"
	} else {
		resp.Message = "the case is in the registry; the signer is not among its participants"
	}
	return resp, nil
}

func norm(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

func isIIN(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

var (
	// articleRef is an article named as such: "ст. 216", "ст.217-1", "статья 216", "article 216".
	articleRef = regexp.MustCompile(`(?i)(?:^|[^\p{L}])(?:ст\.?|статья|статьи|статье|article|art\.?)\s*(\d{1,3}(?:-\d{1,2})?)`)
	// leadingArticle is an item that starts with its number: "216", "217-1", "216 ч.2".
	leadingArticle = regexp.MustCompile(`^(\d{1,3}(?:-\d{1,2})?)(?:$|[^\d-])`)
)

// ArticleNumbers reads the Criminal Code articles of a qualification as a source writes it: one
// article ("216", "217-1"), one with its part and paragraph ("216 ч.2", "ст. 216 ч. 2 п. 1)",
// "ч.2 ст.216"), or several separated by ',' or ';' ("ст.190 ч.2, ст.216"). It returns the article
// numbers, which is what footnote 2 of Appendix 2 asks about (the chapter of the article); the
// parts and paragraphs are left out. Empty text is no article; an item in which no article can be
// read is an error.
func ArticleNumbers(text string) ([]string, error) {
	var out []string
	for item := range strings.FieldsFuncSeq(text, func(r rune) bool { return r == ',' || r == ';' }) {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		m := articleRef.FindStringSubmatch(item)
		if m == nil {
			m = leadingArticle.FindStringSubmatch(item)
		}
		if m == nil {
			return nil, errors.New("an article of the qualification is not an article number such as 216, 217-1 or \"ст. 216 ч. 2\"")
		}
		out = append(out, m[1])
	}
	return out, nil
}
