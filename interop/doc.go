// Package interop tests the broker from the outside, as a new user would run it, with WS-Security
// clients of other ecosystems.
//
// It holds no code of its own, only tests. TestMain builds the siobroker binary, starts
// `siobroker serve` as a separate operating-system process on a free loopback port with the
// shipped configs/broker.yaml and a fresh data directory (so that it creates its development PKI
// and registers the demo users, as on a first `make run`), and stops it at the end. The tests then
// send signed SendMessage requests with three client programs written against real libraries,
// each in its own default WS-Security style, and check that each request is answered and that
// each client verifies the signed reply with its own library, or surfaces the broker's fault code:
//
//   - clients/nodesoap: Node.js, npm soap 1.13.0 (WSSecurityCert) and xml-crypto;
//   - clients/zeep: Python, Debian's python3-zeep (BinarySignature and Signature) and python3-xmlsec;
//   - clients/wss4j: Java, Debian's WSS4J 1.6 as Apache CXF drives it, with every key identifier
//     form (BinarySecurityToken, IssuerSerial, SubjectKeyIdentifier, thumbprint, X509 key identifier).
//
// zeep also calls the broker's own operation GetMaintenanceWindows through the served WSDL, signed
// in both of its styles, after windows were announced with `siobroker maintenance announce`.
//
// The WSDL and the XSDs the broker serves are loaded by the clients and checked with xmllint; the
// signed replies are also verified with xmlsec1, and the requests and replies exchanged are
// validated against the served XSDs. A last test makes sure the broker logged no error meanwhile.
//
// The gateway's AsyncChannel v10 at /AsyncChannel/v10 (asyncchannel_test.go) is run through by
// zeep, through the served WSDL (which imports ?wsdl=async-channel-v10-interface.wsdl) with zeep's
// own operations and signing (binary and signature styles), by node-soap, through the same WSDL with
// its generated operations and its default WSSecurityCert (the q:query in the xsd:anyType data as an
// object in the query's default namespace, and as raw XML), and by WSS4J, with envelopes built as
// CXF writes them and signed with a BinarySecurityToken or a thumbprint (--channel async): a
// REQUEST is acknowledged, polled with getMessageStatus until DELIVERED, its RESPONSE fetched by
// the chain with getMessages, confirmed with sendDeliveryNotification, and then DELIVERED and gone
// from the mailbox; every answer is verified by the client's library and by xmlsec1, and every
// message validated against the XSDs that endpoint serves. Each client also provokes a fault of
// each operation (--async-fault), which must carry the broker's code in the operation's own detail
// element, and another signer must be told the flow's ids are unknown.
//
// Each client needs its tools (node and npm; /usr/bin/python3 with zeep and xmlsec; javac, java and
// Debian's wss4j jars; xmlsec1 and xmllint). A test whose tool is missing skips, and fails under
// CI=true; .ci/run installs them. Run:
//
//	go test -race -count=1 ./interop/
package interop
