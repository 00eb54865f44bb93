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
// The WSDL and the XSDs the broker serves are loaded by the clients and checked with xmllint; the
// signed replies are also verified with xmlsec1, and the requests and replies exchanged are
// validated against the served XSDs. A last test makes sure the broker logged no error meanwhile.
//
// Each client needs its tools (node and npm; /usr/bin/python3 with zeep and xmlsec; javac, java and
// Debian's wss4j jars; xmlsec1 and xmllint). A test whose tool is missing skips, and fails under
// CI=true; .ci/run installs them. Run:
//
//	go test -race -count=1 ./interop/
package interop
