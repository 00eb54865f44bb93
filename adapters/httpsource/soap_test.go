package httpsource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/adapters/adaptertest"
	"github.com/sio-pso/siobroker/adapters/httpsource"
)

const soapAction = "urn:tc:GetVehicles"

// soapSource is the vehicle register as a SOAP 1.1 service: GetVehicles{iin|bin, caseNo}
// answered with GetVehiclesResponse{vehicle*}, built from the same register as the JSON source.
// It records the request bodies it saw.
type soapSource struct {
	mu     sync.Mutex
	bodies []string
}

func (s *soapSource) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/xml") || r.Header.Get("SOAPAction") != `"`+soapAction+`"` {
		http.Error(w, "not a SOAP 1.1 call", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.bodies = append(s.bodies, string(raw))
	s.mu.Unlock()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		http.Error(w, "bad XML", http.StatusBadRequest)
		return
	}
	id := ""
	if el := doc.FindElement("//GetVehicles/iin"); el != nil {
		id = el.Text()
	}
	if el := doc.FindElement("//GetVehicles/bin"); el != nil {
		id += el.Text()
	}
	var list []map[string]any
	if js, ok := vehicles[id]; ok {
		if err := json.Unmarshal([]byte(js), &list); err != nil {
			panic(err)
		}
	}
	var buf bytes.Buffer
	buf.WriteString(`<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><tc:GetVehiclesResponse xmlns:tc="urn:tc">`)
	for _, v := range list {
		fmt.Fprintf(&buf, `<tc:vehicle id="%v"><tc:plate>%v</tc:plate><tc:vin>%v</tc:vin><tc:make>%v</tc:make><tc:year>%v</tc:year><tc:registered>%v</tc:registered>`,
			v["plate"], v["plate"], v["vin"], v["make"], v["year"], v["registered"])
		if d, ok := v["deregistered"]; ok {
			fmt.Fprintf(&buf, `<tc:deregistered>%v</tc:deregistered>`, d)
		}
		owner := v["owner"].(map[string]any)
		if iin, ok := owner["iin"]; ok {
			fmt.Fprintf(&buf, `<tc:owner iin="%v"/>`, iin)
		}
		buf.WriteString(`</tc:vehicle>`)
	}
	buf.WriteString(`</tc:GetVehiclesResponse></S:Body></S:Envelope>`)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

func soapSpec(url string) httpsource.Spec {
	return httpsource.Spec{Service: 5, URL: url, Method: "SOAP", Timeout: 3 * time.Second, RecordType: "vehicle",
		SOAPAction:  soapAction,
		SOAPBody:    `<tc:GetVehicles xmlns:tc="urn:tc"><tc:iin>${subject.iin}</tc:iin><tc:bin>${subject.bin}</tc:bin><tc:caseNo>${case.number}</tc:caseNo></tc:GetVehicles>`,
		RecordsPath: "GetVehiclesResponse/vehicle",
		Fields: map[string]string{"plate_number": "plate", "vin": "vin", "make": "make", "year": "year",
			"registration_date": "registered", "deregistration_date": "deregistered", "owner_id": "owner/@iin", "registration_certificate": "@id"}}
}

// soapFault answers 500 with a SOAP fault whose text repeats a secret, as a source's may.
func soapFault(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = io.WriteString(w, `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault>`+
		`<faultcode>S:Server</faultcode><faultstring>`+secret+` for 850101300015</faultstring></S:Fault></S:Body></S:Envelope>`)
}

func TestSOAPBackendMeetsTheContract(t *testing.T) {
	srv := server(t, &soapSource{})
	adaptertest.RunBackendSuite(t, adaptertest.Case{
		Service:     5,
		Backend:     newBackend(t, soapSpec(srv.URL)),
		WithData:    []siobroker.Subject{person1, person2, org1},
		WithoutData: []siobroker.Subject{noPerson, empty, nullish, noOrg},
		Failing: func(t *testing.T) adapters.Backend {
			return newBackend(t, soapSpec(server(t, http.HandlerFunc(soapFault)).URL))
		},
		FailText: "ORA-00942",
		Hanging: func(t *testing.T) adapters.Backend {
			s := soapSpec(server(t, block).URL)
			s.Timeout = 0
			return newBackend(t, s)
		},
	})
}

// TestSOAPElementsBecomeRecords: the request's values go into the body escaped; the record
// elements' children and attributes become fields, by local name whatever the prefix.
func TestSOAPElementsBecomeRecords(t *testing.T) {
	src := &soapSource{}
	srv := server(t, src)
	req := adaptertest.Request(5, person1)
	req.Case.Number = `25<51>&"0003'1`
	res, err := newBackend(t, soapSpec(srv.URL)).Query(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := []siobroker.Record{
		{Type: "vehicle", Fields: []siobroker.Field{fld("make", "Toyota"), fld("owner_id", "850101300015"), fld("plate_number", "123ABC01"),
			fld("registration_certificate", "123ABC01"), fld("registration_date", "2019-03-14"), fld("vin", "XTA210990Y2765432"), fld("year", "2018")}},
		{Type: "vehicle", Fields: []siobroker.Field{fld("deregistration_date", "2019-03-01"), fld("make", "Lada"), fld("owner_id", "850101300015"),
			fld("plate_number", "777KZ02"), fld("registration_certificate", "777KZ02"), fld("registration_date", "2012-07-02"), fld("vin", "JTDBR32E720012345"), fld("year", "2012")}},
	}
	if res.Reason != siobroker.ReasonOK || !reflect.DeepEqual(res.Records, want) {
		t.Errorf("got %s %+v\nwant %+v", res.Reason, res.Records, want)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if len(src.bodies) != 1 {
		t.Fatalf("%d calls, want 1", len(src.bodies))
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromString(src.bodies[0]); err != nil {
		t.Fatalf("the request is not XML: %v\n%s", err, src.bodies[0])
	}
	if got := doc.FindElement("//GetVehicles/caseNo").Text(); got != req.Case.Number {
		t.Errorf("caseNo %q, want %q, escaped in the body:\n%s", got, req.Case.Number, src.bodies[0])
	}
	if !strings.Contains(src.bodies[0], `25&lt;51&gt;&amp;`) {
		t.Errorf("the case number is not escaped:\n%s", src.bodies[0])
	}
}

func TestSOAPAnswers(t *testing.T) {
	envelope := func(body string) string {
		return `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>` + body + `</soap:Body></soap:Envelope>`
	}
	for name, tc := range map[string]struct {
		status  int
		body    string
		noData  bool
		errText string
	}{
		"no records":        {status: 200, body: envelope(`<GetVehiclesResponse/>`), noData: true},
		"empty records":     {status: 200, body: envelope(`<GetVehiclesResponse><vehicle/></GetVehiclesResponse>`), noData: true},
		"fault with 500":    {status: 500, body: envelope(`<soap:Fault><faultcode>soap:Client</faultcode><faultstring>850101300015 unknown</faultstring></soap:Fault>`), errText: "SOAP fault soap:Client"},
		"fault with 200":    {status: 200, body: envelope(`<soap:Fault><faultcode>soap:Server</faultcode></soap:Fault>`), errText: "SOAP fault soap:Server"},
		"500 without fault": {status: 500, body: envelope(`<GetVehiclesResponse/>`), errText: "without a SOAP fault"},
		"503":               {status: 503, body: "busy", errText: "503"},
		"404":               {status: 404, body: "no such endpoint", errText: "404"},
		"not XML":           {status: 200, body: `{"data":[]}`, errText: "not XML"},
		"SOAP 1.2":          {status: 200, body: `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body/></env:Envelope>`, errText: "not a SOAP 1.1 envelope"},
		"no body":           {status: 200, body: `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"/>`, errText: "no Body"},
		"other shape":       {status: 200, body: envelope(`<Other/>`), errText: "the answer has no GetVehiclesResponse"},
		"too large":         {status: 200, body: envelope(`<GetVehiclesResponse><vehicle><plate>` + strings.Repeat("x", 2000) + `</plate></vehicle></GetVehiclesResponse>`), errText: "exceeds"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			s := soapSpec(srv.URL)
			s.MaxBodyBytes = 1024
			res, err := newBackend(t, s).Query(context.Background(), adaptertest.Request(5, person1))
			switch {
			case tc.noData && (err != nil || res.Reason != siobroker.ReasonNoData || res.Status != siobroker.StatusOK):
				t.Errorf("got %+v, %v; want ok/NO_DATA", res, err)
			case !tc.noData && (err == nil || !strings.Contains(err.Error(), tc.errText)):
				t.Errorf("got %+v, %v; want an error containing %q", res, err, tc.errText)
			}
			if err != nil && strings.Contains(err.Error(), person1.IIN) {
				t.Errorf("the error quotes the subject: %v", err)
			}
		})
	}
}

func TestSOAPSpecValidate(t *testing.T) {
	good := soapSpec("http://127.0.0.1:9999/VehicleService")
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		change func(*httpsource.Spec)
		want   string
	}{
		"no body":           {func(s *httpsource.Spec) { s.SOAPBody = " " }, "needs the element"},
		"unknown value":     {func(s *httpsource.Spec) { s.SOAPBody = `<q>${subject.name}</q>` }, "${subject.name} is not one of"},
		"malformed":         {func(s *httpsource.Spec) { s.SOAPBody = `<q>${subject.iin}</p>` }, "not well-formed"},
		"two elements":      {func(s *httpsource.Spec) { s.SOAPBody = `<a/><b/>` }, "one element"},
		"action":            {func(s *httpsource.Spec) { s.SOAPAction = `a"b` }, "quotes"},
		"no records path":   {func(s *httpsource.Spec) { s.RecordsPath = "" }, "element path of the records"},
		"empty step":        {func(s *httpsource.Spec) { s.RecordsPath = "a//b" }, "element path of the records"},
		"attribute records": {func(s *httpsource.Spec) { s.RecordsPath = "a/@b" }, "element path of the records"},
		"attribute inside":  {func(s *httpsource.Spec) { s.Fields = map[string]string{"vin": "@a/b"} }, "at most a last @attribute"},
		"bare @":            {func(s *httpsource.Spec) { s.Fields = map[string]string{"vin": "a/@"} }, "at most a last @attribute"},
	} {
		s := good
		tc.change(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
	// A JSON spec takes no SOAP keys.
	s := spec("http://127.0.0.1:9999/vehicles", "POST")
	s.SOAPBody = "<q/>"
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "only for method SOAP") {
		t.Errorf("soap_body on POST: %v", err)
	}
}
