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
	// WSDLSyncChannel and WSDLAsyncChannel are the service descriptions of the two endpoints;
	// async-channel-v10.wsdl imports async-channel-v10-interface.wsdl.
	WSDLSyncChannel  = "sync-channel-v10.wsdl"
	WSDLAsyncChannel = "async-channel-v10.wsdl"
)

// reAddress finds the soap:address of a WSDL file, a placeholder that WSDLFile replaces.
var reAddress = regexp.MustCompile(`(<soap:address\s+location=")[^"]*(")`)

// reSchemaLocation finds schemaLocation values that are plain file names. On disk they are file
// names so that offline tools resolve them; served, they become ?xsd=NAME, which resolves against
// the endpoint URL the WSDL was fetched from (RFC 3986 §5.2: a query-only reference keeps the path).
var reSchemaLocation = regexp.MustCompile(`schemaLocation="([A-Za-z0-9._-]+\.xsd)"`)

// reWSDLImport finds the locations of wsdl:import elements that are plain file names; served,
// they become ?wsdl=NAME.
var reWSDLImport = regexp.MustCompile(`(<wsdl:import\s[^>]*location=")([A-Za-z0-9._-]+\.wsdl)(")`)

func rewriteSchemaLocations(b []byte) []byte {
	b = reSchemaLocation.ReplaceAll(b, []byte(`schemaLocation="?xsd=$1"`))
	return reWSDLImport.ReplaceAll(b, []byte(`$1?wsdl=$2$3`))
}

// WSDL returns the SyncChannel service description with its soap:address set to location (the
// endpoint URL the request came to) and its imports pointing at ?xsd=NAME.
func WSDL(location string) []byte {
	b, ok := WSDLFile(WSDLSyncChannel, location)
	if !ok {
		panic("soap: the embedded WSDL is missing") // a build defect, caught by tests
	}
	return b
}

// WSDLImports returns the names of the WSDL files the embedded WSDL file name imports.
func WSDLImports(name string) []string {
	b, err := schemas.Files.ReadFile(name)
	if err != nil {
		return nil
	}
	var out []string
	for _, m := range reWSDLImport.FindAllSubmatch(b, -1) {
		out = append(out, string(m[2]))
	}
	return out
}

// WSDLFile returns an embedded WSDL file as served at ?wsdl=NAME: its soap:address, if it has one,
// set to location, and its imports pointing at ?wsdl=NAME and ?xsd=NAME. Any other name, a path
// included, gives false.
func WSDLFile(name, location string) ([]byte, bool) {
	if !strings.HasSuffix(name, ".wsdl") || strings.ContainsAny(name, `/\`) || !fs.ValidPath(name) {
		return nil, false
	}
	b, err := schemas.Files.ReadFile(name)
	if err != nil {
		return nil, false
	}
	var esc bytes.Buffer
	_ = xml.EscapeText(&esc, []byte(location)) // writes to a buffer: cannot fail
	b = reAddress.ReplaceAllLiteral(b, []byte(`<soap:address location="`+esc.String()+`"`))
	return rewriteSchemaLocations(b), true
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
