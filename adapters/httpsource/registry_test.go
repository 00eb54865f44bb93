package httpsource_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/adapters/adaptertest"
	"github.com/sio-pso/siobroker/adapters/httpsource"
	"github.com/sio-pso/siobroker/schemas"
)

const (
	prosecutor   = "750312300458"
	investigator = "860421301550"
	outsider     = "900114302034"
)

// erdrSource is an ЕРДР of its own JSON shape: {"case": {"state", "qualification", "people":
// [{"person": {"iin"}, "role"}]}}, found by basis and number, by GET or POST.
func erdrSource(t *testing.T) *httptest.Server {
	t.Helper()
	cases := map[string]string{
		"1/261500031000123": `{"case": {"state": " Open ", "qualification": ["ст.216 ч.1", "ч.2 ст.190"],
			"people": [{"person": {"iin": "860421301550"}, "role": "Investigator"}, {"person": {"iin": "750312300458"}, "role": "supervising_prosecutor"}]}}`,
		"1/241500031000088": `{"case": {"state": "closed", "qualification": "190",
			"people": [{"person": {"iin": "750312300458"}, "role": "supervising_prosecutor"}]}}`,
		"6/261500031000777": `{"case": {"state": "open", "people": [{"person": {"iin": "750312300458"}, "role": "supervising_prosecutor"}]}}`,
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		basis, number := r.URL.Query().Get("basis"), r.URL.Query().Get("number")
		if r.Method == http.MethodPost {
			var body httpsource.RegistryBody
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.Header.Get("Content-Type") != "application/json" {
				http.Error(w, "bad body", http.StatusBadRequest)
				return
			}
			basis, number = strconv.Itoa(body.Basis), body.Case.Number
		}
		if r.Header.Get("X-Api-Key") != "k-1" {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		doc, ok := cases[basis+"/"+number]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, doc)
	}))
}

var erdrFields = map[string]string{"status": "case.state", "articles": "case.qualification", "participants": "case.people",
	"iin": "person.iin", "part": "role"}

func erdrRegistry(t *testing.T, url, method string) adapters.CaseRegistry {
	t.Helper()
	r, err := httpsource.NewRegistry(httpsource.RegistrySpec{Registry: "erdr", URL: url, Method: method, Fields: erdrFields,
		Header: http.Header{"X-Api-Key": {"k-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegistryMeetsTheContract(t *testing.T) {
	src := erdrSource(t)
	defer src.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "ORA-00942 secret_erdr_table", http.StatusInternalServerError)
	}))
	defer failing.Close()
	// The body is read first: the server notices a client gone only once it has the whole request.
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	defer hanging.Close()
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			adaptertest.RunRegistrySuite(t, adaptertest.RegistryCase{
				Registry: erdrRegistry(t, src.URL+"/cases", method),
				Open: adaptertest.KnownCase{
					CaseQuery: adaptertest.CaseQuery{Basis: siobroker.BasisCriminal, Case: siobroker.CaseRef{Number: "261500031000123"}},
					Facts: siobroker.CaseFacts{Status: "open", Articles: []string{"216", "190"}, Participants: []siobroker.Participant{
						{IIN: investigator, Part: "investigator"}, {IIN: prosecutor, Part: "supervising_prosecutor"}}}},
				Closed: adaptertest.KnownCase{
					CaseQuery: adaptertest.CaseQuery{Basis: siobroker.BasisCriminal, Case: siobroker.CaseRef{Number: "241500031000088"}},
					Facts: siobroker.CaseFacts{Status: "closed", Articles: []string{"190"},
						Participants: []siobroker.Participant{{IIN: prosecutor, Part: "supervising_prosecutor"}}}},
				Unknown: []adaptertest.CaseQuery{
					{Basis: siobroker.BasisCriminal, Case: siobroker.CaseRef{Number: "261500031000999"}},
					{Basis: siobroker.BasisSearch, Case: siobroker.CaseRef{Number: "261500031000123"}},
				},
				Outsider: outsider,
				Failing:  func(t *testing.T) adapters.CaseRegistry { return erdrRegistry(t, failing.URL, method) },
				FailText: "secret_erdr_table",
				Hanging:  func(t *testing.T) adapters.CaseRegistry { return erdrRegistry(t, hanging.URL, method) },
			})
		})
	}
}

// TestRegistryDefaultFields reads an answer in the registry's own shape, the fields under their
// own names, with no articles (a search case).
func TestRegistryDefaultFields(t *testing.T) {
	var got http.Header
	var query string
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, query = r.Header.Clone(), r.URL.RawQuery
		_, _ = io.WriteString(w, `{"status": "open", "participants": [{"iin": "750312300458", "part": "Supervising_Prosecutor"}]}`)
	}))
	defer src.Close()
	r, err := httpsource.NewRegistry(httpsource.RegistrySpec{Registry: "erdr", URL: src.URL + "/case?v=2"})
	if err != nil {
		t.Fatal(err)
	}
	req := adaptertest.CheckRequest(adaptertest.CaseQuery{Basis: siobroker.BasisCriminal,
		Case: siobroker.CaseRef{Number: "251500031000456", InstructionNo: "2-15-25/1234"}}, prosecutor)
	resp, err := r.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := []siobroker.Participant{{IIN: prosecutor, Part: "supervising_prosecutor"}}
	if !resp.Found || !resp.InProceedings || resp.Status != "open" || resp.Articles != nil || len(resp.Participants) != 1 ||
		resp.Participants[0] != want[0] || resp.Registry != "erdr" || resp.AnsweredAt.IsZero() {
		t.Errorf("answer %+v", resp)
	}
	if query != "basis=1&instruction_no=2-15-25%2F1234&number=251500031000456&v=2" || got.Get("X-Request-Id") != "test-request" ||
		got.Get("Accept") != "application/json" {
		t.Errorf("request: query %q, headers %v", query, got)
	}
}

// TestRegistryMalformedAnswers: an answer not of the configured shape is an error, never a
// case found without participants or status, which the broker would have to guess about.
func TestRegistryMalformedAnswers(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", `<html>`, "not JSON"},
		{"not an object", `[]`, "not a JSON object"},
		{"no status", `{"participants": []}`, "fields.status"},
		{"no participants", `{"status": "open"}`, "fields.participants"},
		{"participant without part", `{"status": "open", "participants": [{"iin": "750312300458"}]}`, "participant 1"},
		{"bad IIN", `{"status": "open", "participants": [{"iin": "7503", "part": "judge"}]}`, "not 12 digits"},
		{"bad article", `{"status": "open", "articles": ["мошенничество"], "participants": []}`, "not an article number"},
		{"articles of numbers", `{"status": "open", "articles": [216], "participants": []}`, "item 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, tc.body) }))
			defer src.Close()
			r, err := httpsource.NewRegistry(httpsource.RegistrySpec{Registry: "erdr", URL: src.URL})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := r.Check(context.Background(), adaptertest.CheckRequest(adaptertest.CaseQuery{Basis: 1,
				Case: siobroker.CaseRef{Number: "261500031000123"}}, prosecutor))
			if err == nil || !strings.Contains(err.Error(), tc.want) || resp.Found {
				t.Errorf("%s: %+v, %v; want an error with %q", tc.body, resp, err, tc.want)
			}
		})
	}
}

func TestRegistryTransientStatuses(t *testing.T) {
	for code, transient := range map[int]bool{http.StatusServiceUnavailable: true, http.StatusTooManyRequests: true,
		http.StatusInternalServerError: false, http.StatusForbidden: false} {
		src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
		r, err := httpsource.NewRegistry(httpsource.RegistrySpec{Registry: "erdr", URL: src.URL})
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Check(context.Background(), schemas.CaseCheckRequest{Basis: 1, Case: siobroker.CaseRef{Number: "1"}})
		var se *httpsource.StatusError
		if !errors.As(err, &se) || se.Code != code || adapters.IsTransient(err) != transient {
			t.Errorf("status %d: %v (transient %v)", code, err, adapters.IsTransient(err))
		}
		src.Close()
	}
}

func TestRegistrySpecValidate(t *testing.T) {
	for _, tc := range []struct {
		spec httpsource.RegistrySpec
		want string
	}{
		{httpsource.RegistrySpec{URL: "http://x"}, "registry: the name"},
		{httpsource.RegistrySpec{Registry: "erdr", URL: "ftp://x"}, "url:"},
		{httpsource.RegistrySpec{Registry: "erdr", URL: "http://x", Method: "PUT"}, "GET, POST or SOAP"},
		{httpsource.RegistrySpec{Registry: "erdr", URL: "http://x", Method: "SOAP", SOAPBody: "<q>${subject.iin}</q>", CasePath: "r/case"},
			`${subject.iin} is not one of basis, case.court`},
		{httpsource.RegistrySpec{Registry: "erdr", URL: "http://x", Method: "SOAP", SOAPBody: "<q/>", CasePath: "r/@case"}, "case_path:"},
		{httpsource.RegistrySpec{Registry: "erdr", URL: "http://x", Method: "SOAP", SOAPBody: "<q/>", CasePath: "case",
			Fields: map[string]string{"participants": "people/@person"}}, "fields.participants: \"people/@person\" must name elements"},
		{httpsource.RegistrySpec{Registry: "erdr", URL: "http://x", CasePath: "case"}, "only for method SOAP"},
		{httpsource.RegistrySpec{Registry: "erdr", URL: "http://x", Fields: map[string]string{"state": "s"}}, `"state" is not one of`},
		{httpsource.RegistrySpec{Registry: "erdr", URL: "http://x", Fields: map[string]string{"iin": "a..b"}}, "fields.iin"},
	} {
		if err := tc.spec.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.spec, err, tc.want)
		}
	}
}

// soapERDR is an ЕРДР answering over SOAP 1.1: GetCase with the basis and number, answered with
// GetCaseResponse/case (status as an attribute, the qualification and the people as repeated
// elements), or GetCaseResponse without a case.
func soapERDR(t *testing.T) *httptest.Server {
	t.Helper()
	cases := map[string]string{
		"1/261500031000123": `<case status="Open"><qualification><article>ст.216 ч.1</article><article>ч.2 ст.190</article></qualification>
			<people><person iin="860421301550"><role>Investigator</role></person><person iin="750312300458"><role>supervising_prosecutor</role></person></people></case>`,
		"1/241500031000088": `<case status="closed"><qualification><article>190</article></qualification>
			<people><person iin="750312300458"><role>supervising_prosecutor</role></person></people></case>`,
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc := etree.NewDocument()
		if _, err := doc.ReadFrom(r.Body); err != nil || r.Header.Get("SOAPAction") != `"urn:erdr:GetCase"` {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		basis, number := doc.FindElement("//GetCase/basis"), doc.FindElement("//GetCase/number")
		if basis == nil || number == nil {
			http.Error(w, "no case", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		_, _ = io.WriteString(w, `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><e:GetCaseResponse xmlns:e="urn:erdr">`+
			cases[basis.Text()+"/"+number.Text()]+`</e:GetCaseResponse></soap:Body></soap:Envelope>`)
	}))
}

func soapRegistry(t *testing.T, url string) adapters.CaseRegistry {
	t.Helper()
	r, err := httpsource.NewRegistry(httpsource.RegistrySpec{Registry: "erdr", URL: url, Method: "SOAP", SOAPAction: "urn:erdr:GetCase",
		SOAPBody: `<e:GetCase xmlns:e="urn:erdr"><basis>${basis}</basis><number>${case.number}</number></e:GetCase>`,
		CasePath: "GetCaseResponse/case",
		Fields: map[string]string{"status": "@status", "articles": "qualification/article", "participants": "people/person",
			"iin": "@iin", "part": "role"}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSOAPRegistryMeetsTheContract(t *testing.T) {
	src := soapERDR(t)
	defer src.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>`+
			`<faultcode>soap:Server</faultcode><faultstring>ORA-00942 secret_erdr_table</faultstring></soap:Fault></soap:Body></soap:Envelope>`)
	}))
	defer failing.Close()
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	defer hanging.Close()
	adaptertest.RunRegistrySuite(t, adaptertest.RegistryCase{
		Registry: soapRegistry(t, src.URL),
		Open: adaptertest.KnownCase{
			CaseQuery: adaptertest.CaseQuery{Basis: siobroker.BasisCriminal, Case: siobroker.CaseRef{Number: "261500031000123"}},
			Facts: siobroker.CaseFacts{Status: "open", Articles: []string{"216", "190"}, Participants: []siobroker.Participant{
				{IIN: investigator, Part: "investigator"}, {IIN: prosecutor, Part: "supervising_prosecutor"}}}},
		Closed: adaptertest.KnownCase{
			CaseQuery: adaptertest.CaseQuery{Basis: siobroker.BasisCriminal, Case: siobroker.CaseRef{Number: "241500031000088"}},
			Facts: siobroker.CaseFacts{Status: "closed", Articles: []string{"190"},
				Participants: []siobroker.Participant{{IIN: prosecutor, Part: "supervising_prosecutor"}}}},
		Unknown: []adaptertest.CaseQuery{
			{Basis: siobroker.BasisCriminal, Case: siobroker.CaseRef{Number: "261500031000999"}},
			{Basis: siobroker.BasisSearch, Case: siobroker.CaseRef{Number: "261500031000123"}},
		},
		Outsider: outsider,
		Failing:  func(t *testing.T) adapters.CaseRegistry { return soapRegistry(t, failing.URL) },
		FailText: "secret_erdr_table",
		Hanging:  func(t *testing.T) adapters.CaseRegistry { return soapRegistry(t, hanging.URL) },
	})
}

// TestSOAPRegistryShape: an answer without the case's parent is not of the configured shape; a
// case without a status, or a participant without a part, is an error, never a guess; the check's
// values are written XML-escaped.
func TestSOAPRegistryShape(t *testing.T) {
	var sent string
	for _, tc := range []struct{ name, body, want string }{
		{"no response element", `<Other/>`, "case_path GetCaseResponse/case: the answer has no GetCaseResponse"},
		{"no status", `<GetCaseResponse><case><people/></case></GetCaseResponse>`, "fields.status"},
		{"participant without part", `<GetCaseResponse><case status="open"><people><person iin="750312300458"/></people></case></GetCaseResponse>`, "participant 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				sent = string(b)
				_, _ = io.WriteString(w, `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>`+tc.body+`</soap:Body></soap:Envelope>`)
			}))
			defer src.Close()
			resp, err := soapRegistry(t, src.URL).Check(context.Background(), adaptertest.CheckRequest(adaptertest.CaseQuery{Basis: 4,
				Case: siobroker.CaseRef{Number: "2-45<21>/2024"}}, prosecutor))
			if err == nil || !strings.Contains(err.Error(), tc.want) || resp.Found {
				t.Errorf("%+v, %v; want an error with %q", resp, err, tc.want)
			}
			if !strings.Contains(sent, "<basis>4</basis><number>2-45&lt;21&gt;/2024</number>") {
				t.Errorf("request body %s", sent)
			}
		})
	}
}
