package soap

import (
	"strings"
	"testing"

	"github.com/beevik/etree"
)

func TestWSDL(t *testing.T) {
	b := WSDL(`https://broker.example.kz:8443/SyncChannel/v10?a=1&b="2"`)
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	addr := doc.FindElement("//service/port/address")
	if addr == nil {
		t.Fatal("no soap:address")
	}
	if got := addr.SelectAttrValue("location", ""); got != `https://broker.example.kz:8443/SyncChannel/v10?a=1&b="2"` {
		t.Errorf("location = %q", got)
	}
	imp := doc.FindElement("//types/schema/import")
	if imp == nil || imp.SelectAttrValue("schemaLocation", "") != "?xsd=bip-sync-v10-types.xsd" {
		t.Errorf("import = %v", imp)
	}
	for _, p := range []string{"//portType[@name='ISyncChannel']/operation[@name='SendMessage']/fault", "//binding/binding[@style='document']"} {
		if doc.FindElement(p) == nil {
			t.Errorf("missing %s", p)
		}
	}
	// Every message part names an element that the XSD the WSDL imports for its namespace
	// declares: the gateway's types, and the broker's own operations.
	xsdOf := map[string]string{}
	for _, imp := range doc.FindElements("//types/schema/import") {
		xsdOf[imp.SelectAttrValue("namespace", "")] = strings.TrimPrefix(imp.SelectAttrValue("schemaLocation", ""), "?xsd=")
	}
	root := doc.Root()
	for _, part := range doc.FindElements("//message/part") {
		prefix, el, _ := strings.Cut(part.SelectAttrValue("element", ""), ":")
		ns := root.SelectAttrValue("xmlns:"+prefix, "")
		types, ok := XSD(xsdOf[ns])
		if !ok {
			t.Errorf("part element %s:%s: no XSD imported for namespace %q", prefix, el, ns)
			continue
		}
		if !strings.Contains(string(types), `<xs:element name="`+el+`"`) {
			t.Errorf("part element %s:%s is not declared in %s", prefix, el, xsdOf[ns])
		}
	}
	// GetMaintenanceWindows is an operation of the port type and of the binding, beside SendMessage.
	for _, p := range []string{"//portType[@name='ISyncChannel']/operation[@name='GetMaintenanceWindows']/output",
		"//binding/operation[@name='GetMaintenanceWindows']/operation"} {
		if doc.FindElement(p) == nil {
			t.Errorf("missing %s", p)
		}
	}
}

func TestXSD(t *testing.T) {
	b, ok := XSD("bip-sync-v10-types.xsd")
	if !ok {
		t.Fatal("not found")
	}
	if !strings.Contains(string(b), `schemaLocation="?xsd=sio-query-v1.xsd"`) {
		t.Error("the import of the query XSD is not rewritten to ?xsd=")
	}
	if _, ok := XSD("sio-query-v1.xsd"); !ok {
		t.Error("query XSD not served")
	}
	for _, name := range []string{"", "sync-channel-v10.wsdl", "../go.mod", "/etc/passwd.xsd", "a/b.xsd", `..\x.xsd`, "missing.xsd", "schemas.go"} {
		if _, ok := XSD(name); ok {
			t.Errorf("XSD(%q) served", name)
		}
	}
}
