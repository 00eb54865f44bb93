package soap

import (
	"bytes"
	"encoding/xml"
	"io/fs"
	"regexp"
	"strings"

	"github.com/sio-pso/siobroker/schemas"
)

const (
	wsdlFile = "sync-channel-v10.wsdl"
	// wsdlPlaceholder is the soap:address written in the WSDL file; WSDL replaces it.
	wsdlPlaceholder = `location="http://127.0.0.1:8080/SyncChannel/v10"`
)

// reSchemaLocation finds schemaLocation values that are plain file names. On disk they are file
// names so that offline tools resolve them; served, they become ?xsd=NAME, which resolves against
// the endpoint URL the WSDL was fetched from (RFC 3986 §5.2: a query-only reference keeps the path).
var reSchemaLocation = regexp.MustCompile(`schemaLocation="([A-Za-z0-9._-]+\.xsd)"`)

func rewriteSchemaLocations(b []byte) []byte {
	return reSchemaLocation.ReplaceAll(b, []byte(`schemaLocation="?xsd=$1"`))
}

// WSDL returns the service description with its soap:address set to location (the endpoint URL the
// request came to) and its imports pointing at ?xsd=NAME.
func WSDL(location string) []byte {
	b, err := schemas.Files.ReadFile(wsdlFile)
	if err != nil {
		panic("soap: the embedded WSDL is missing: " + err.Error()) // a build defect, caught by tests
	}
	var esc bytes.Buffer
	_ = xml.EscapeText(&esc, []byte(location)) // writes to a buffer: cannot fail
	b = bytes.Replace(b, []byte(wsdlPlaceholder), []byte(`location="`+esc.String()+`"`), 1)
	return rewriteSchemaLocations(b)
}

// XSD returns the schema file name as served at ?xsd=NAME. Only the embedded .xsd files are
// served; any other name, including a path, gives false.
func XSD(name string) ([]byte, bool) {
	if !strings.HasSuffix(name, ".xsd") || strings.ContainsAny(name, `/\`) || !fs.ValidPath(name) {
		return nil, false
	}
	b, err := schemas.Files.ReadFile(name)
	if err != nil {
		return nil, false
	}
	return rewriteSchemaLocations(b), true
}
