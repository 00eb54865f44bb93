// Package schemas holds the one message format shared by the broker and its adapters: the WSDL and
// XSDs of the SOAP endpoint, served as they are, and the JSON messages of the transport.
package schemas

import "embed"

// Files holds the WSDL and XSDs. The broker serves them at <endpoint>?wsdl and ?xsd=NAME.
//
//go:embed *.wsdl *.xsd
var Files embed.FS

// Namespaces of the wire contract.
const (
	NSSoapEnv   = "http://schemas.xmlsoap.org/soap/envelope/"
	NSSyncTypes = "http://bip.bee.kz/SyncChannel/v10/Types"
	// NSAsyncTypes is the namespace of the global elements of the gateway's AsyncChannel v10.
	NSAsyncTypes = "http://bip.bee.kz/AsyncChannel/v10/Types"
	NSQuery      = "urn:kz:sio-pso:broker:v1"
	// NSOperations is the namespace of the broker's own operations of the SyncChannel endpoint
	// (GetMaintenanceWindows), beside the gateway's SendMessage: sio-operations-v1.xsd.
	NSOperations = "urn:kz:sio-pso:broker:operations:v1"
	NSDSig       = "http://www.w3.org/2000/09/xmldsig#"
	NSWSSE       = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	NSWSU        = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
)
