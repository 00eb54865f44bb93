package soap

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/fuzzbound"
)

// The bounds of the fuzz targets of this package (issue 16: any envelope within the size limit is
// refused or answered within milliseconds of CPU per KB). The reader refuses what is over a limit
// during one token scan, so its cost is linear, and etree allocates per element and attribute.
// Measured on 7 December 2026 (Go 1.26, 2-core Xeon, without the race detector) on the densest
// bodies within the limits (20,000 empty elements; 64 attributes per element; 1 MiB of text):
// at most 0.17 ms of CPU, 1,800 allocations and 120 KB allocated per KB. The bounds leave a
// margin of about 2 for the counts and 6 for the CPU, which fuzzbound multiplies under -race.
var (
	readBound = fuzzbound.Bound{
		CPUBase: 50 * time.Millisecond, CPUPerKB: time.Millisecond,
		AllocsBase: 4000, AllocsPerKB: 3000,
		BytesBase: 1 << 20, BytesPerByte: 250,
	}
	// hangLimit is the wall time after which one input counts as a hang, whatever the load.
	hangLimit = 20 * time.Second
)

// checkRefusal fails t unless err is a *siobroker.Error with a code, which WriteFault turns into
// a proper fault.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var e *siobroker.Error
	if !errors.As(err, &e) || e.Code == "" {
		t.Fatalf("refusal without a code: %v (%T)", err, err)
	}
}

// FuzzReadEnvelope feeds arbitrary bodies through the broker's read path under the production
// limits (Limits{}: the defaults, which are config's http.max_* defaults): envelope, parts,
// requestInfo, query. Each input must be refused with a code or read within readBound, and an
// accepted query must survive NewRequest → Serialize → parse unchanged.
func FuzzReadEnvelope(f *testing.F) {
	seeds := fuzzbound.NewSeeds(f)
	golden := readGolden(f, "request.xml")
	seeds.Add("golden request", golden)
	seeds.Add("golden generated request", readGolden(f, "request.generated.xml"))
	seeds.Add("golden reply", readGolden(f, "reply.xml"))
	seeds.Add("koi8-r declaration", []byte(`<?xml version="1.0" encoding="KOI8-R"?><a/>`))
	seeds.Add("invalid utf-8", []byte("<a>\xff</a>"))
	seeds.Add("nested 70", []byte(nested(70)))
	for _, c := range readCases(string(golden)) {
		if c.code == "" && c.lim != (Limits{}) || len(c.body) > 64<<10 {
			continue // read only under its own limits, or too large to mutate quickly
		}
		seeds.Add(c.name, []byte(c.body))
	}
	for _, h := range hostileBodies() {
		seeds.Add(h.name, []byte(h.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var info siobroker.RequestInfo
		var q siobroker.Query
		var err error
		stop := fuzzbound.Watchdog(hangLimit, "parseRequest")
		cost := fuzzbound.Measure(func() { info, q, err = parseRequest(body) })
		stop()
		readBound.Check(t, len(body), cost)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		b, err := Serialize(NewRequest(info, q))
		if err != nil {
			t.Fatal(err)
		}
		info2, q2, err := parseRequest(b)
		if err != nil {
			t.Fatalf("our own envelope is refused: %v\n%s", err, b)
		}
		if !sameInfo(info, info2) || !reflect.DeepEqual(q, q2) {
			t.Fatalf("round trip changed the request:\n%+v %+v\n%+v %+v", info, q, info2, q2)
		}
		if !bytes.HasPrefix(b, []byte("<?xml")) {
			t.Fatal("no declaration")
		}
	})
}

// FuzzParseQuery feeds arbitrary q:query elements to ParseQuery, read under the production
// limits as the envelope around them would be. Each must be refused with a code or parsed within
// readBound; a parsed query must survive NewRequest → Serialize → parse unchanged, and its
// subject must be 12 digits whose check digit ValidateIIN and CompleteIIN agree on.
func FuzzParseQuery(f *testing.F) {
	seeds := fuzzbound.NewSeeds(f)
	for _, s := range querySeeds(f) {
		seeds.Add(s.name, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var q siobroker.Query
		var err error
		stop := fuzzbound.Watchdog(hangLimit, "ParseQuery")
		cost := fuzzbound.Measure(func() {
			var doc *etree.Document
			if doc, err = parseXML(raw, Limits{}); err == nil {
				q, err = ParseQuery(doc.Root())
			}
		})
		stop()
		readBound.Check(t, len(raw), cost)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		id := q.Subject.ID()
		if len(id) != 12 || (q.Subject.IIN == "") == (q.Subject.BIN == "") {
			t.Fatalf("subject %+v accepted", q.Subject)
		}
		completed, ok := siobroker.CompleteIIN(id[:11])
		if valid := siobroker.ValidateIIN(id) == nil; valid != (ok && completed == id) {
			t.Fatalf("ValidateIIN(%s) and CompleteIIN(%s) = %s, %v disagree", id, id[:11], completed, ok)
		}
		b, err := Serialize(NewRequest(goldenInfo, q))
		if err != nil {
			t.Fatal(err)
		}
		_, q2, err := parseRequest(b)
		if err != nil {
			t.Fatalf("our own envelope of an accepted query is refused: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(q, q2) {
			t.Fatalf("round trip changed the query:\n%+v\n%+v", q, q2)
		}
	})
}

// namedBody is one seed.
type namedBody struct{ name, body string }

// hostileBodies are the worst cases of signing's hostile_test.go (issue 16) and of
// TestReadEnvelopePerElementLimits, each just over the default limit it tests (and one just
// under), so that they stay small enough to mutate quickly.
func hostileBodies() []namedBody {
	const open = `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"`
	const body = `><soapenv:Body><typ:SendMessage xmlns:typ="http://bip.bee.kz/SyncChannel/v10/Types">`
	const end = `</typ:SendMessage></soapenv:Body></soapenv:Envelope>`
	rep := func(n int, format string) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, format, i)
		}
		return b.String()
	}
	decls := func(n int, prefix string) string { return rep(n, ` xmlns:`+prefix+`%d="u:"`) }
	var deep strings.Builder
	for d := range DefaultMaxDepth - 6 {
		fmt.Fprintf(&deep, "<d%s>", decls(9, fmt.Sprintf("d%d_", d)))
	}
	deep.WriteString(strings.Repeat("</d>", DefaultMaxDepth-6))
	return []namedBody{
		// With soapenv: and typ:, one declaration over the total.
		{"issue16: declarations on the Envelope, declaring children", open + decls(DefaultMaxNamespaceDecls-1, "n") + body +
			rep(DefaultMaxNamespaceDeclsTotal-DefaultMaxNamespaceDecls, `<c xmlns:m%d="u:"/>`) + end},
		{"declarations on one element", open + decls(DefaultMaxNamespaceDecls+1, "n") + body + end},
		{"declarations on one element at the limit", open + decls(DefaultMaxNamespaceDecls-1, "n") + body + end},
		{"deep declaring", open + body + deep.String() + end},
		{"attributes", open + body + "<a" + rep(DefaultMaxAttributes+1, ` a%d="v"`) + "/>" + end},
		{"attributes and declarations at the limit", open + body + "<a" + decls(8, "p") + rep(DefaultMaxAttributes-8, ` a%d="v"`) + "/>" + end},
		{"long element name", open + body + "<" + strings.Repeat("n", DefaultMaxNameBytes+1) + "/>" + end},
		{"long attribute name", open + body + "<a " + strings.Repeat("a", DefaultMaxNameBytes+1) + `="v"/>` + end},
		{"long prefix", open + body + "<a xmlns:" + strings.Repeat("p", DefaultMaxNameBytes+1) + `="u:"/>` + end},
		{"long undeclared prefix", open + body + "<" + strings.Repeat("p", DefaultMaxAttrValueBytes+1) + ":a/>" + end},
		{"long attribute value", open + body + `<a v="` + strings.Repeat("v", DefaultMaxAttrValueBytes+1) + `"/>` + end},
		{"long namespace URI", open + body + `<a xmlns:p="` + strings.Repeat("u", DefaultMaxAttrValueBytes+1) + `"/>` + end},
		{"elements declaring", open + body + rep(DefaultMaxNamespaceDeclsTotal+1, `<e xmlns:e="u:%d"/>`) + end},
		{"long text in pieces", open + body + "<t>" + strings.Repeat("t<![CDATA[c]]>", 2000) + "</t>" + end},
		{"comments", open + body + strings.Repeat("<!--c-->", 1000) + end},
		// The densest bodies within the limits, which the bounds were measured on: as many
		// elements as allowed, and elements with as many attributes as allowed.
		{"dense elements", open + body + strings.Repeat("<b/>", DefaultMaxElements-10) + end},
		{"dense attributes", open + body + strings.Repeat("<b"+rep(DefaultMaxAttributes, ` a%d=""`)+"/>", 200) + end},
	}
}

// querySeeds are the golden q:query and hostile or borderline edits of it.
func querySeeds(f *testing.F) []namedBody {
	golden := string(readGolden(f, "request.xml"))
	start, stop := strings.Index(golden, "<q:query"), strings.Index(golden, "</q:query>")+len("</q:query>")
	query := golden[start:stop]
	edit := func(old, new string) string {
		if !strings.Contains(query, old) {
			f.Fatalf("the golden query holds no %q", old)
		}
		return strings.Replace(query, old, new, 1)
	}
	services := func(from, to int) string {
		var b strings.Builder
		for n := from; n <= to; n++ {
			fmt.Fprintf(&b, "<q:service>%d</q:service>", n)
		}
		return b.String()
	}
	const svc = "<q:service>1</q:service>"
	return []namedBody{
		{"golden", query},
		{"bin", edit("<q:iin>870315123455</q:iin>", "<q:bin>951123300019</q:bin>")},
		{"all 93 services", edit(svc, services(2, 11)+svc+services(13, 44)+services(46, 93))},
		{"94 services", edit(svc, services(1, 94))},
		{"duplicate service", edit(svc, svc+svc)},
		{"iin and bin", edit("<q:iin>870315123455</q:iin>", "<q:iin>870315123455</q:iin><q:bin>951123300019</q:bin>")},
		{"bad check digit", edit("870315123455", "870315123456")},
		{"court case", edit("<q:number>267100031000123</q:number>", "<q:number>7199-26-00-2/1</q:number><q:year>2026</q:year><q:court>СМЭС г. Астаны</q:court>")},
		{"enveloped signature first", edit("<q:basis>", `<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/><q:basis>`)},
		{"nested in purpose", edit("<q:purpose>", "<q:purpose>"+strings.Repeat("<q:p>", DefaultMaxDepth)+strings.Repeat("</q:p>", DefaultMaxDepth))},
		{"long purpose", edit("Установление", strings.Repeat("ж", 1001))},
		{"basis with spaces", edit("<q:basis>1</q:basis>", "<q:basis> +1 </q:basis>")},
		{"prefix redeclared", edit("<q:subject>", `<q:subject xmlns:q="urn:other">`)},
		{"default namespace", strings.NewReplacer("q:", "", ` xmlns:q=`, ` xmlns=`).Replace(query)},
		{"attribute on a field", edit("<q:basis>", `<q:basis q:x="1">`)},
		{"mixed content", edit("<q:case>", "<q:case>text")},
		{"comment and cdata", edit("<q:basis>1</q:basis>", "<q:basis><!--c--><![CDATA[1]]></q:basis>")},
	}
}
