package httpsource_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/adapters/adaptertest"
	"github.com/sio-pso/siobroker/adapters/httpsource"
)

var (
	person1  = siobroker.Subject{IIN: "850101300015"}
	person2  = siobroker.Subject{IIN: "900512400028"}
	org1     = siobroker.Subject{BIN: "120340000014"}
	noPerson = siobroker.Subject{IIN: "950707400057"}
	empty    = siobroker.Subject{IIN: "781130500033"} // the source answers with an empty array
	nullish  = siobroker.Subject{BIN: "050840000027"} // the source answers {"vehicles": null}
	noOrg    = siobroker.Subject{BIN: "990140000047"}
)

// vehicles is the fake source system's register, as its own JSON.
var vehicles = map[string]string{
	"850101300015": `[{"plate":"123ABC01","vin":"XTA210990Y2765432","make":"Toyota","year":2018,"registered":"2019-03-14T00:00:00+05:00","owner":{"iin":"850101300015"},"stolen":false},
	                  {"plate":"777KZ02","vin":"JTDBR32E720012345","make":"Lada","year":2012,"registered":"2012-07-02","deregistered":"2019-03-01","owner":{"iin":"850101300015"},"stolen":null}]`,
	"900512400028": `[{"plate":"045AAA02","vin":"KMHCT41BAEU123456","make":"Hyundai","year":2021,"registered":"2021-09-30","owner":{"iin":"900512400028"}}]`,
	"120340000014": `[{"plate":"001ORG01","vin":"WDB9066331S123456","make":"Mercedes-Benz","year":2020,"registered":"2020-12-01","owner":{"bin":"120340000014"}}]`,
	"781130500033": `[]`,
	"050840000027": `null`,
}

// source is the fake endpoint: GET ?iin=|?bin=, or POST of httpsource.Body. It records the POST
// bodies it saw.
type source struct {
	mu     sync.Mutex
	bodies []httpsource.Body
}

func (s *source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var id string
	switch r.Method {
	case http.MethodGet:
		id = r.URL.Query().Get("iin") + r.URL.Query().Get("bin")
	case http.MethodPost:
		var b httpsource.Body
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&b) != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.bodies = append(s.bodies, b)
		s.mu.Unlock()
		id = b.Subject.IIN + b.Subject.BIN
	default:
		http.Error(w, "method", http.StatusMethodNotAllowed)
		return
	}
	list, ok := vehicles[id]
	if !ok {
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok","data":{"vehicles":` + list + `}}`))
}

func spec(url, method string) httpsource.Spec {
	return httpsource.Spec{Service: 5, URL: url, Method: method, Timeout: 3 * time.Second, RecordType: "vehicle",
		RecordsPath: "data.vehicles",
		Fields: map[string]string{"plate_number": "plate", "vin": "vin", "make": "make", "year": "year",
			"registration_date": "registered", "deregistration_date": "deregistered", "owner_id": "owner.iin", "stolen": "stolen"}}
}

func newBackend(t *testing.T, s httpsource.Spec) adapters.Backend {
	t.Helper()
	b, err := httpsource.New(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func server(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// failing answers 500 with a body that must stay out of results; hanging blocks until the
// request's context ends.
const secret = "ORA-00942: table or view KGD.INTERNAL_VEHICLES does not exist"

// block is a source that never answers: it waits for the request's context to end. It reads the
// body first, because the server notices a client hanging up only once the body is consumed; the
// 10s cap only keeps a broken backend from hanging the test run.
var block = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
})

func hooks(method string) (failing, hanging func(t *testing.T) adapters.Backend) {
	failing = func(t *testing.T) adapters.Backend {
		srv := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, secret, http.StatusInternalServerError)
		}))
		return newBackend(t, spec(srv.URL, method))
	}
	hanging = func(t *testing.T) adapters.Backend {
		srv := server(t, block)
		s := spec(srv.URL, method)
		s.Timeout = 0
		return newBackend(t, s)
	}
	return failing, hanging
}

func TestBackendMeetsTheContract(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			srv := server(t, &source{})
			failing, hanging := hooks(method)
			adaptertest.RunBackendSuite(t, adaptertest.Case{
				Service:     5,
				Backend:     newBackend(t, spec(srv.URL, method)),
				WithData:    []siobroker.Subject{person1, person2, org1},
				WithoutData: []siobroker.Subject{noPerson, empty, nullish, noOrg},
				Failing:     failing,
				FailText:    "ORA-00942",
				Hanging:     hanging,
			})
		})
	}
}

func fld(name, value string) siobroker.Field { return siobroker.Field{Name: name, Value: value} }

func TestObjectsBecomeRecords(t *testing.T) {
	src := &source{}
	srv := server(t, src)
	for _, method := range []string{"GET", "POST"} {
		res, err := newBackend(t, spec(srv.URL, method)).Query(context.Background(), adaptertest.Request(5, person1))
		if err != nil {
			t.Fatal(err)
		}
		// Fields in name order; the timestamp in a *_date field becomes its date; null is left out.
		want := []siobroker.Record{
			{Type: "vehicle", Fields: []siobroker.Field{fld("make", "Toyota"), fld("owner_id", "850101300015"), fld("plate_number", "123ABC01"),
				fld("registration_date", "2019-03-14"), fld("stolen", "false"), fld("vin", "XTA210990Y2765432"), fld("year", "2018")}},
			{Type: "vehicle", Fields: []siobroker.Field{fld("deregistration_date", "2019-03-01"), fld("make", "Lada"), fld("owner_id", "850101300015"),
				fld("plate_number", "777KZ02"), fld("registration_date", "2012-07-02"), fld("vin", "JTDBR32E720012345"), fld("year", "2012")}},
		}
		if res.Reason != siobroker.ReasonOK || !reflect.DeepEqual(res.Records, want) {
			t.Errorf("%s: got %s %+v\nwant %+v", method, res.Reason, res.Records, want)
		}
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	want := httpsource.Body{Service: 5, Subject: httpsource.BodySubject{IIN: person1.IIN},
		Case: httpsource.BodyCase{Basis: 1, Number: "255100031000123", Article: "190"}}
	if len(src.bodies) != 1 || src.bodies[0] != want {
		t.Errorf("POST bodies %+v, want [%+v]", src.bodies, want)
	}
}

func TestAnswers(t *testing.T) {
	for name, tc := range map[string]struct {
		status  int
		body    string
		path    string
		noData  bool
		errText string
	}{
		"404":              {status: 404, body: "no such subject", noData: true},
		"204":              {status: 204, noData: true},
		"empty array":      {status: 200, body: `{"data":{"vehicles":[]}}`, noData: true},
		"null array":       {status: 200, body: `{"data":{"vehicles":null}}`, noData: true},
		"top-level array":  {status: 200, body: `[]`, path: "-", noData: true},
		"objects of nulls": {status: 200, body: `{"data":{"vehicles":[{"plate":null}]}}`, noData: true},
		"500":              {status: 500, body: "boom", errText: "500"},
		"503":              {status: 503, errText: "503"},
		"400":              {status: 400, errText: "400"},
		"bad JSON":         {status: 200, body: `{"data":`, errText: "not JSON"},
		"trailing data":    {status: 200, body: `{"data":{"vehicles":[]}} {}`, errText: "not JSON"},
		"no path":          {status: 200, body: `{"result":[]}`, errText: `no "data"`},
		"not an array":     {status: 200, body: `{"data":{"vehicles":{"plate":"1"}}}`, errText: "not an array"},
		"not objects":      {status: 200, body: `{"data":{"vehicles":[1,2]}}`, errText: "not an object"},
		"too large":        {status: 200, body: `{"data":{"vehicles":[{"plate":"` + strings.Repeat("x", 2000) + `"}]}}`, errText: "exceeds"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			s := spec(srv.URL, "GET")
			s.MaxBodyBytes = 1024
			if tc.path == "-" {
				s.RecordsPath = ""
			}
			res, err := newBackend(t, s).Query(context.Background(), adaptertest.Request(5, person1))
			switch {
			case tc.noData && (err != nil || res.Reason != siobroker.ReasonNoData || res.Status != siobroker.StatusOK):
				t.Errorf("got %+v, %v; want ok/NO_DATA", res, err)
			case !tc.noData && (err == nil || !strings.Contains(err.Error(), tc.errText)):
				t.Errorf("got %+v, %v; want an error containing %q", res, err, tc.errText)
			}
		})
	}
}

func TestSpecTimeout(t *testing.T) {
	srv := server(t, block)
	s := spec(srv.URL, "GET")
	s.Timeout = 100 * time.Millisecond
	start := time.Now()
	_, err := newBackend(t, s).Query(context.Background(), adaptertest.Request(5, person1))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("after %s: %v, want an error wrapping context.DeadlineExceeded", time.Since(start), err)
	}
}

func TestMalformedRequestsAreErrors(t *testing.T) {
	srv := server(t, &source{})
	b := newBackend(t, spec(srv.URL, "GET"))
	for name, req := range map[string]struct {
		service int
		subject siobroker.Subject
	}{
		"other service": {6, person1},
		"no subject":    {5, siobroker.Subject{}},
		"both ids":      {5, siobroker.Subject{IIN: person1.IIN, BIN: org1.BIN}},
	} {
		if _, err := b.Query(context.Background(), adaptertest.Request(req.service, req.subject)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	good := spec("http://127.0.0.1:9999/vehicles", "GET")
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		change func(*httpsource.Spec)
		want   string
	}{
		"service":      {func(s *httpsource.Spec) { s.Service = 94 }, "no such service"},
		"url":          {func(s *httpsource.Spec) { s.URL = "ftp://x/y" }, "not an absolute http"},
		"relative url": {func(s *httpsource.Spec) { s.URL = "/vehicles" }, "not an absolute http"},
		"method":       {func(s *httpsource.Spec) { s.Method = "PUT" }, "use GET, POST or SOAP"},
		"record type":  {func(s *httpsource.Spec) { s.RecordType = "" }, "snake_case"},
		"path":         {func(s *httpsource.Spec) { s.RecordsPath = "data..vehicles" }, "empty element"},
		"no fields":    {func(s *httpsource.Spec) { s.Fields = nil }, "at least one"},
		"field name":   {func(s *httpsource.Spec) { s.Fields = map[string]string{"Plate": "plate"} }, "snake_case"},
		"field key":    {func(s *httpsource.Spec) { s.Fields = map[string]string{"plate": "a."} }, "not a key"},
		"timeout":      {func(s *httpsource.Spec) { s.Timeout = -1 }, "negative"},
	} {
		s := good
		tc.change(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
}

// TestErrorsDoNotQuoteTheSubject: a source's errors are logged by the adapter runtime, so they
// must not carry the subject: not in a failed connection's URL (the GET query holds the IIN), not
// in an error body that repeats it.
func TestErrorsDoNotQuoteTheSubject(t *testing.T) {
	echo := server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no person "+r.URL.Query().Get("iin"), http.StatusInternalServerError)
	}))
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // nothing listens there any more: the connection is refused
	for name, url := range map[string]string{"error body": echo.URL, "refused connection": closed.URL} {
		b := newBackend(t, spec(url, "GET"))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := b.Query(ctx, adaptertest.Request(5, person1))
		cancel()
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		if strings.Contains(err.Error(), person1.IIN) {
			t.Errorf("%s: the error quotes the subject: %v", name, err)
		}
	}
}
