package soap

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/sio-pso/siobroker/internal/repofiles"
	"github.com/sio-pso/siobroker/schemas"
)

// JournaledQuery reads a journaled request in one pass and a tree of its q:query alone;
// JournaledQueryByTree reads the tree of the whole document. The request index must be the same
// either way, its notes included, so they are compared on every envelope the tests hold and on
// documents built to tell them apart: namespaces declared, redeclared and undeclared around the
// query, the prefixes xml and xmlns, queries in comments, CDATA and attributes, nested and
// repeated queries, odd tags, and every refusal of the reader.

// sameJournaledQuery fails t unless both readings of raw agree: the same query, or errors with
// the same text and the same ErrNoQuery.
func sameJournaledQuery(t testing.TB, name string, raw []byte, lim Limits) {
	t.Helper()
	want, wantErr := JournaledQueryByTree(raw, lim)
	got, err := JournaledQuery(raw, lim)
	if !reflect.DeepEqual(got, want) || (err == nil) != (wantErr == nil) ||
		(err != nil && (err.Error() != wantErr.Error() || errors.Is(err, ErrNoQuery) != errors.Is(wantErr, ErrNoQuery))) {
		t.Fatalf("%s: JournaledQuery = %+v, %v\nthe whole tree gives %+v, %v\ndocument: %.2000s", name, got, err, want, wantErr, raw)
	}
}

// journaledCases are documents that could tell the two readings apart, built from the golden
// request.
func journaledCases(golden string) map[string]string {
	const ns = schemas.NSQuery
	i, j := strings.Index(golden, "<q:query"), strings.Index(golden, "</q:query>")+len("</q:query>")
	query := golden[i:j]
	replaceQuery := func(with string) string { return golden[:i] + with + golden[j:] }
	unprefixed := strings.NewReplacer("<q:", "<", "</q:", "</", ` xmlns:q="`+ns+`"`, ` xmlns="`+ns+`"`).Replace(query)
	body := func(inner string) string {
		return `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>` + inner + `</soapenv:Body></soapenv:Envelope>`
	}
	cases := map[string]string{
		"golden":                          golden,
		"golden with BOM":                 "\xEF\xBB\xBF" + golden,
		"declared utf8":                   strings.Replace(golden, `encoding="UTF-8"`, `encoding="utf8"`, 1),
		"declared koi8-r":                 strings.Replace(golden, `encoding="UTF-8"`, `encoding="KOI8-R"`, 1),
		"default namespace":               replaceQuery(unprefixed),
		"prefix declared on the envelope": strings.Replace(replaceQuery(strings.Replace(query, ` xmlns:q="`+ns+`"`, "", 1)), "<soapenv:Envelope ", `<soapenv:Envelope xmlns:q="`+ns+`" `, 1),
		"prefix declared twice on the envelope": strings.Replace(replaceQuery(strings.Replace(query, ` xmlns:q="`+ns+`"`, "", 1)),
			"<soapenv:Envelope ", `<soapenv:Envelope xmlns:q="urn:other" xmlns:q="`+ns+`" `, 1),
		"prefix declared twice, the other last": strings.Replace(replaceQuery(strings.Replace(query, ` xmlns:q="`+ns+`"`, "", 1)),
			"<soapenv:Envelope ", `<soapenv:Envelope xmlns:q="`+ns+`" xmlns:q="urn:other" `, 1),
		"prefix undeclared": replaceQuery(strings.Replace(query, ` xmlns:q="`+ns+`"`, "", 1)),
		"prefix emptied":    replaceQuery(strings.Replace(query, ` xmlns:q="`+ns+`"`, ` xmlns:q=""`, 1)),
		"children's prefix on an ancestor": strings.Replace(replaceQuery(strings.NewReplacer("<r:query", "<q:query", "</r:query", "</q:query").Replace(strings.ReplaceAll(query, "q:", "r:"))),
			"<requestData>", `<requestData xmlns:r="`+ns+`">`, 1),
		"children's prefix nowhere": replaceQuery(strings.NewReplacer("<r:query", "<q:query", "</r:query", "</q:query").Replace(strings.ReplaceAll(query, "q:", "r:"))),
		"default namespace on an ancestor": strings.Replace(replaceQuery(strings.Replace(unprefixed, ` xmlns="`+ns+`"`, "", 1)),
			"<data>", `<data xmlns="`+ns+`">`, 1),
		"default namespace on an ancestor, emptied on the query": strings.Replace(replaceQuery(strings.Replace(unprefixed, ` xmlns="`+ns+`"`, ` xmlns=""`, 1)),
			"<data>", `<data xmlns="`+ns+`">`, 1),
		"default namespace emptied below the query": replaceQuery(strings.Replace(unprefixed, "<subject>", `<subject xmlns="">`, 1)),
		"prefix xml":                   replaceQuery(`<xml:query xmlns:xml="` + ns + `"/>` + query),
		"prefix xml alone":             replaceQuery(strings.ReplaceAll(strings.Replace(query, `xmlns:q=`, `xmlns:xml=`, 1), "q:", "xml:")),
		"prefix xmlns":                 replaceQuery(`<xmlns:query xmlns:xmlns="` + ns + `"/>` + query),
		"prefix xmlns alone":           replaceQuery(strings.ReplaceAll(strings.Replace(query, `xmlns:q=`, `xmlns:xmlns=`, 1), "q:", "xmlns:")),
		"prefix bound to xml's space":  replaceQuery(`<p:query xmlns:p="http://www.w3.org/XML/1998/namespace"/>` + query),
		"prefix declared on a sibling": replaceQuery(`<x xmlns:q="` + ns + `"/>` + strings.Replace(query, ` xmlns:q="`+ns+`"`, "", 1)),
		"query in a comment":           replaceQuery("<!--" + query + "-->" + query),
		"query in CDATA":               replaceQuery("<![CDATA[" + query + "]]>"),
		"query in an attribute":        strings.Replace(replaceQuery(""), "<data>", `<data a="`+strings.NewReplacer(`"`, "&quot;", "<", "&lt;").Replace(query)+`">`, 1),
		"query only in a comment":      replaceQuery("<!--" + query + "-->"),
		"two queries":                  replaceQuery(query + query),
		"a query in the query":         replaceQuery(strings.Replace(query, "<q:basis>", query+"<q:basis>", 1)),
		"a query in the header":        strings.Replace(golden, "<soapenv:Header/>", "<soapenv:Header>"+query+"</soapenv:Header>", 1),
		"a query of another namespace": replaceQuery(`<p:query xmlns:p="urn:other"><p:basis>1</p:basis></p:query>` + query),
		"a query elsewhere after":      strings.Replace(golden, "</soapenv:Body>", `<p:query xmlns:p="urn:other"/></soapenv:Body>`, 1),
		"empty query":                  replaceQuery(`<q:query xmlns:q="` + ns + `"/>`),
		"empty query, spaced":          replaceQuery(`<q:query xmlns:q="` + ns + `" />`),
		"empty query, then siblings":   replaceQuery(`<q:query xmlns:q="` + ns + `"/><x><y/></x>`),
		"query as the root":            query,
		"query as the root, declared":  `<?xml version="1.0"?>` + "\n" + query,
		"end tags with spaces":         regexp.MustCompile(`(</[^>]+)>`).ReplaceAllString(golden, "$1 \n>"),
		"odd whitespace in tags": strings.NewReplacer("<soapenv:Body xmlns", "<soapenv:Body\n\txmlns", "<requestData>", "<requestData\r\n>",
			"<data>", "<data\t>", "</data>", "</data\n>").Replace(golden),
		"tag attributes holding > and /": strings.Replace(golden, "<requestData>", `<requestData a="/>" b='x>y' c="&lt;/requestData>">`, 1),
		"names with dots and dashes":     strings.NewReplacer("<requestData>", "<request-Data.x>", "</requestData>", "</request-Data.x>").Replace(golden),
		"non-ASCII ancestor":             strings.NewReplacer("<data>", "<данные>", "</data>", "</данные>").Replace(golden),
		"two colons":                     replaceQuery(`<a:q:query xmlns:a="` + ns + `"/>` + query),
		"leading colon":                  replaceQuery(`<:query/>` + query),
		"the query's Id":                 replaceQuery(strings.Replace(query, `Id="`, `Id="1`, 1)),
		"an attribute in the namespace":  replaceQuery(strings.Replace(query, ` Id=`, ` q:Id=`, 1)),
		"a field's text in CDATA":        strings.Replace(golden, "<q:basis>1</q:basis>", "<q:basis><![CDATA[1]]></q:basis>", 1),
		"entities":                       strings.Replace(golden, "<q:basis>1</q:basis>", "<q:basis>&#x31;</q:basis>", 1),
		"carriage returns":               strings.ReplaceAll(golden, "\n", "\r\n"),
		"unknown field":                  replaceQuery(strings.Replace(query, "<q:basis>", "<q:x/><q:basis>", 1)),
		"text in the query":              replaceQuery(strings.Replace(query, "<q:basis>", "text<q:basis>", 1)),
		"bad basis":                      strings.Replace(golden, "<q:basis>1</q:basis>", "<q:basis>99</q:basis>", 1),
		"no envelope":                    body(query),
		"malformed after the query":      strings.Replace(golden, "</soapenv:Body>", "</soapenv:Bdy>", 1),
		"malformed in the query":         replaceQuery(strings.Replace(query, "</q:basis>", "</q:bases>", 1)),
		"unclosed":                       golden[:len(golden)-20],
		"doctype":                        "<!DOCTYPE x>" + query,
		"processing instruction":         replaceQuery("<?pi x?>" + query),
		"invalid UTF-8":                  replaceQuery(query + "\xff"),
		"nested too deep":                replaceQuery(strings.Repeat("<a>", 70) + query + strings.Repeat("</a>", 70)),
		"query nested to the limit":      body(strings.Repeat("<a>", 55) + query + strings.Repeat("</a>", 55)),
		"status query":                   body(`<x:statusQuery xmlns:x="urn:x"/>`),
		"empty":                          "",
		"long default namespace":         body(`<q:query xmlns:q="` + ns + `"><a xmlns="urn:` + strings.Repeat("x", 9000) + `"/></q:query>`),
		"long prefixed namespace":        body(`<p:a xmlns:p="urn:` + strings.Repeat("x", 9000) + `"/>`),
		"text only":                      "query",
	}
	return cases
}

// unsureCases are the journaledCases the one-pass reading leaves to the tree: a query named with
// the prefix xml or xmlns, or in the namespace of xml. It reads every other document itself.
var unsureCases = map[string]bool{"prefix xml": true, "prefix xml alone": true, "prefix xmlns": true, "prefix xmlns alone": true,
	"prefix bound to xml's space": true}

func TestJournaledQueryAsTree(t *testing.T) {
	golden := string(readGolden(t, "request.xml"))
	for name, doc := range journaledCases(golden) {
		if _, _, err := findQuery([]byte(doc), journaledLimits([]byte(doc), Limits{})); errors.Is(err, errUnsure) != unsureCases[name] {
			t.Errorf("%s: the one-pass reading returned %v", name, err)
		}
		sameJournaledQuery(t, name, []byte(doc), Limits{})
		sameJournaledQuery(t, name+", low limits", []byte(doc), Limits{MaxDepth: 12, MaxElements: 40, MaxAttributes: 2, MaxNamespaceDecls: 1})
	}
	for _, c := range readCases(golden) {
		sameJournaledQuery(t, c.name, []byte(c.body), c.lim)
	}
	sync, err := Serialize(NewRequest(goldenInfo, goldenQuery))
	if err != nil {
		t.Fatal(err)
	}
	async, err := Serialize(NewACSendMessage("ac-1", ACMessageInfo{ServiceID: "SIO_PSO_QUERY", MessageDate: goldenInfo.MessageDate}, goldenQuery))
	if err != nil {
		t.Fatal(err)
	}
	status, err := Serialize(NewAsyncQueryRequest(goldenInfo, "statusQuery", "m-1"))
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string][]byte{"SyncChannel": sync, "AsyncChannel": async, "status": status} {
		sameJournaledQuery(t, name, doc, Limits{})
	}
	// Every envelope the repository's tests hold.
	repofiles.Each(t, "../..", ".xml", 10, func(path string, raw []byte) {
		if _, _, err := findQuery(raw, journaledLimits(raw, Limits{})); errors.Is(err, errUnsure) {
			t.Errorf("%s: the one-pass reading is unsure", path)
		}
		sameJournaledQuery(t, path, raw, Limits{})
	})
}

// FuzzJournaledQuery compares the two readings on any document.
func FuzzJournaledQuery(f *testing.F) {
	golden := string(readGolden(f, "request.xml"))
	for _, doc := range journaledCases(golden) {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		sameJournaledQuery(t, "fuzzed", raw, Limits{})
	})
}
