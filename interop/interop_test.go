package interop

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
)

// The tests run in this order (top-level tests in file-name order, then source order; the
// subtests of each in parallel): the AsyncChannel v10 tests of asyncchannel_test.go first, then the
// WSDL and XSDs, then WSS4J, whose key identifier forms without a certificate are the first
// SyncChannel requests the fresh broker gets (the AsyncChannel tests before them sign with the
// demo users' registered certificates, which the broker holds already: they teach it none), then
// node-soap and zeep, and last a look at the broker's log.

// The requests, from the development PKI of the started broker (demo.json).

const (
	rsaUserIIN = "750312300458" // ИВАНОВ ИВАН, role 1, RSA key: the README's prosecutor
	rsaCase    = "261500031000123"
)

// rsaQuery: the RSA user asks, under his own criminal case, for services 1 and 5.
func rsaQuery(t *testing.T) query {
	t.Helper()
	u := env.user(t, rsaUserIIN)
	if u.Status != "valid" || !u.hasCase(1, rsaCase) {
		t.Fatalf("demo user %s in demo.json: status %q, case %s under basis 1: %v; want valid, with that case", u.IIN, u.Status, rsaCase, u.hasCase(1, rsaCase))
	}
	return query{user: u, basis: 1, caseNo: rsaCase, services: []int{1, 5}}
}

// ecdsaQuery: the ECDSA user asks, under his own criminal case, for service 1.
func ecdsaQuery(t *testing.T) query {
	t.Helper()
	u := env.userWhere(t, "a valid user with an ECDSA key", func(u demoUser) bool { return u.KeyType == "ecdsa" && u.Status == "valid" })
	return query{user: u, basis: 1, caseNo: u.plainCase(t, 1), services: []int{1}}
}

// othersCaseQuery: the RSA user asks under a criminal case that exists but is the ECDSA user's.
// Expect SIO-CASE-UNKNOWN.
func othersCaseQuery(t *testing.T) query {
	t.Helper()
	q := rsaQuery(t)
	q.caseNo = ecdsaQuery(t).caseNo
	if q.user.hasCase(1, q.caseNo) {
		t.Fatalf("case %s is among demo user %s's own cases", q.caseNo, q.user.IIN)
	}
	q.services = []int{1}
	return q
}

// revokedQuery: the demo user whose certificate is revoked in the CRL asks under his own case.
// Expect SIO-CERT-REVOKED.
func revokedQuery(t *testing.T) query {
	t.Helper()
	u := env.userWhere(t, "revoked", func(u demoUser) bool { return u.Status == "revoked" })
	return query{user: u, basis: 1, caseNo: u.plainCase(t, 1), services: []int{1}}
}

// TestWSDL checks what the clients load implicitly: the WSDL names the endpoint it is served at,
// every schemaLocation reachable from it is served as ?xsd=NAME, each served XSD compiles with
// xmllint, and the types XSD (through an envelope schema) validates the repository's golden
// request and reply.
func TestWSDL(t *testing.T) {
	logOnFailure(t)
	s := servedSchemas(t)

	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(s.wsdl); err != nil {
		t.Fatalf("?wsdl: %v", err)
	}
	var addresses []string
	for _, a := range doc.FindElements("//address") {
		if a.NamespaceURI() == "http://schemas.xmlsoap.org/wsdl/soap/" {
			addresses = append(addresses, a.SelectAttrValue("location", ""))
		}
	}
	if !slices.Equal(addresses, []string{env.endpoint}) {
		t.Errorf("?wsdl: soap:address locations %q, want [%s] (the endpoint it was fetched from)", addresses, env.endpoint)
	}
	t.Logf("served XSDs: %s (the WSDL imports %s)", strings.Join(s.xsds, ", "), s.mainXSD)

	xmllint := toolPath(t, "xmllint", "libxml2-utils")
	for _, name := range s.xsds {
		// The instance is the schema document itself: xmllint exits 3 when the document does not
		// validate (it does not: xs:schema is no element of these schemas) and 5 when the schema
		// does not compile, which is all that is checked here.
		file := filepath.Join(s.dir, name)
		out, err := exec.Command(xmllint, "--noout", "--nonet", "--schema", file, file).CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 3) || strings.Contains(string(out), "failed to compile") {
			t.Errorf("xmllint --schema %s (served as ?xsd=%s): %v\n%s", name, name, err, indent(tail(out, 12)))
		}
	}
	for _, p := range validateMessages(t,
		filepath.Join(env.root, "testdata", "soap", "request.xml"),
		filepath.Join(env.root, "testdata", "soap", "reply.xml")) {
		t.Error(p)
	}
}

// TestWSS4J sends the request of a Java system on Apache CXF (WSS4J 1.6, action "Timestamp
// Signature": a signed wsu:Timestamp and Body) with every key identifier form, and verifies each
// reply with WSSecurityEngine as CXF's WSS4JInInterceptor does with action "Timestamp Signature".
func TestWSS4J(t *testing.T) {
	logOnFailure(t)
	rsa := rsaQuery(t)

	// First, on the fresh broker: the forms that carry no certificate, only its issuer and serial,
	// subject key identifier or SHA-1 thumbprint. The broker resolves them against the
	// certificates of its user registry (the demo users' are registered at the first start).
	t.Run("without certificate", func(t *testing.T) {
		for _, keyID := range []string{"issuerserial", "ski", "thumbprint"} {
			t.Run(keyID, func(t *testing.T) {
				t.Parallel()
				r := wss4j(t, "Timestamp Signature").send(t, rsa, "--key-id", keyID)
				expectWSS4JReply(t, r, true, 1, 5)
			})
		}
	})

	t.Run("with certificate", func(t *testing.T) {
		for _, keyID := range []string{"bst", "x509"} {
			t.Run(keyID, func(t *testing.T) {
				t.Parallel()
				r := wss4j(t, "Timestamp Signature").send(t, rsa, "--key-id", keyID)
				expectWSS4JReply(t, r, true, 1, 5)
			})
		}
		t.Run("bst ECDSA", func(t *testing.T) {
			t.Parallel()
			q := ecdsaQuery(t)
			r := wss4j(t, "Timestamp Signature").send(t, q, "--key-id", "bst")
			expectWSS4JReply(t, r, true, q.services...)
		})
		// action="Signature": the Body alone is signed, and the reply carries no Timestamp.
		t.Run("bst no timestamp", func(t *testing.T) {
			t.Parallel()
			r := wss4j(t, "Signature").send(t, rsa, "--key-id", "bst", "--no-timestamp")
			expectWSS4JReply(t, r, false, 1, 5)
		})
		// CXF's action "Timestamp Signature" without signatureParts (its default): the Timestamp
		// goes unsigned, and the same inbound action expects one back.
		t.Run("issuerserial, Timestamp unsigned", func(t *testing.T) {
			t.Parallel()
			r := wss4j(t, "Timestamp Signature").send(t, rsa, "--key-id", "issuerserial", "--parts", "body")
			expectWSS4JReply(t, r, true, 1, 5)
		})
	})

	t.Run("faults", func(t *testing.T) {
		t.Run("case not the user's", func(t *testing.T) {
			t.Parallel()
			expectFault(t, wss4j(t, "Signature").send(t, othersCaseQuery(t)), "SIO-CASE-UNKNOWN")
		})
		t.Run("revoked certificate", func(t *testing.T) {
			t.Parallel()
			expectFault(t, wss4j(t, "Signature").send(t, revokedQuery(t)), "SIO-CERT-REVOKED")
		})
		t.Run("RSA-SHA1", func(t *testing.T) {
			t.Parallel()
			r := wss4j(t, "Signature").send(t, rsa,
				"--sig-alg", "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
				"--digest-alg", "http://www.w3.org/2000/09/xmldsig#sha1")
			expectFault(t, r, "SIO-SIG-ALGORITHM")
		})
	})
}

// expectWSS4JReply: answered and verified, the reply's key in a BinarySecurityToken (the broker
// answers every SecurityTokenReference form so), its Body signed, and its Timestamp signed when
// timestamp, absent otherwise.
func expectWSS4JReply(t *testing.T, r *run, timestamp bool, services ...int) {
	t.Helper()
	if !expectAnswered(t, r, services...) {
		return
	}
	var p []string
	if got := str(r.res.ReplyKeyReference); got != "DIRECT_REF" {
		p = append(p, "the reply's key reference is "+got+", want DIRECT_REF (a BinarySecurityToken)")
	}
	signed := func(local string) bool {
		return slices.ContainsFunc(r.res.ReplySignedIDs, func(s string) bool { return strings.HasSuffix(s, " "+local) })
	}
	if !signed("Body") {
		p = append(p, "WSS4J does not list the Body among the reply's signed elements")
	}
	if signed("Timestamp") != timestamp {
		p = append(p, "WSS4J lists a signed Timestamp in the reply: "+map[bool]string{true: "yes", false: "no"}[signed("Timestamp")])
	}
	if sec, err := readSecurity(r.reply); err != nil {
		p = append(p, err.Error())
	} else if sec.timestamp != timestamp {
		p = append(p, "the reply's wsse:Security has a wsu:Timestamp: "+map[bool]string{true: "yes", false: "no"}[sec.timestamp])
	}
	r.fail(t, p)
}

// TestNodeSOAP sends the request of a Node.js system: node-soap's WSSecurityCert with its defaults
// (BinarySecurityToken, a signed Timestamp and Body), the reply verified with xml-crypto.
func TestNodeSOAP(t *testing.T) {
	logOnFailure(t)
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		q := rsaQuery(t)
		expectAnswered(t, nodeSOAP(t).send(t, q), q.services...)
	})
	t.Run("fault case not the user's", func(t *testing.T) {
		t.Parallel()
		expectFault(t, nodeSOAP(t).send(t, othersCaseQuery(t)), "SIO-CASE-UNKNOWN")
	})
	t.Run("fault revoked certificate", func(t *testing.T) {
		t.Parallel()
		expectFault(t, nodeSOAP(t).send(t, revokedQuery(t)), "SIO-CERT-REVOKED")
	})
}

// TestZeep sends the request of a Python system on zeep, in both of zeep's signature styles: binary
// (BinarySignature: a BinarySecurityToken) and signature (Signature, zeep's default: X509Data with
// the issuer serial and the certificate in the SecurityTokenReference). zeep parses the reply with
// the WSDL's types and verifies it with verify_envelope.
func TestZeep(t *testing.T) {
	logOnFailure(t)
	for _, style := range []string{"binary", "signature"} {
		t.Run(style, func(t *testing.T) {
			t.Parallel()
			q := rsaQuery(t)
			r := zeep(t, style).send(t, q)
			if !expectAnswered(t, r, q.services...) {
				return
			}
			var p []string
			if got := str(r.res.ParsedBy); got != "zeep" {
				p = append(p, "the reply was parsed by "+got+", not by zeep's binding: parseError "+str(r.res.ParseError))
			} else if r.res.ParseError != nil {
				p = append(p, "parseError: "+*r.res.ParseError)
			}
			if r.res.ReplyBodySigned == nil || !*r.res.ReplyBodySigned {
				p = append(p, "the reply's signature does not reference its soap:Body (replyBodySigned)")
			}
			r.fail(t, p)
		})
		t.Run(style+" fault case not the user's", func(t *testing.T) {
			t.Parallel()
			expectFault(t, zeep(t, style).send(t, othersCaseQuery(t)), "SIO-CASE-UNKNOWN")
		})
		t.Run(style+" fault revoked certificate", func(t *testing.T) {
			t.Parallel()
			expectFault(t, zeep(t, style).send(t, revokedQuery(t)), "SIO-CERT-REVOKED")
		})
	}
}

// TestZeepMaintenanceWindows calls the broker's own operation GetMaintenanceWindows through the
// served WSDL with zeep's generated operation, signed by zeep in both styles, after an operator
// announced a planned window and an emergency with the command line on the broker's data
// directory: zeep's binding deserializes the reply, whose signature verify_envelope checks against
// the broker's certificate, and the request and reply validate against the served XSDs. The
// windows are for service 93, which no other test asks for, so that they answer nothing else.
func TestZeepMaintenanceWindows(t *testing.T) {
	logOnFailure(t)
	now := time.Now().In(time.FixedZone("+05", 5*60*60))
	for _, args := range [][]string{
		{"--start", now.Add(48 * time.Hour).Format(time.RFC3339), "--end", now.Add(50 * time.Hour).Format(time.RFC3339), "--reason", "КГД database upgrade"},
		{"--start", now.Add(-time.Minute).Format(time.RFC3339), "--end", now.Add(time.Hour).Format(time.RFC3339), "--reason", "отказ СХД", "--emergency"},
	} {
		cmd := exec.Command(env.bin, append([]string{"maintenance", "announce", "--services", "93", "--by", "interop",
			"--data", env.data, "--config", filepath.Join(env.root, "configs", "broker.yaml")}, args...)...)
		cmd.Dir = env.root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("siobroker maintenance announce %v: %v\n%s", args, err, out)
		}
	}
	for _, style := range []string{"binary", "signature"} {
		t.Run(style, func(t *testing.T) {
			r := zeep(t, style).send(t, rsaQuery(t), "--operation", "maintenance")
			var p []string
			if r.jsonErr != nil || r.exit != 0 || str(r.res.Status) != "SCSS001" {
				p = append(p, fmt.Sprintf("exit %d, status %s, error %s, json %v", r.exit, str(r.res.Status), str(r.res.Error), r.jsonErr))
			}
			if !r.res.ReplySignatureVerified {
				p = append(p, "the reply's signature did not verify: "+str(r.res.VerifyError))
			}
			if got := str(r.res.ParsedBy); got != "zeep" || r.res.ParseError != nil {
				p = append(p, "the reply was not deserialized by zeep's binding: "+str(r.res.ParseError))
			}
			var kinds []string
			for _, w := range r.res.Windows {
				if !strings.HasSuffix(w.Start, "+05:00") || !strings.HasSuffix(w.End, "+05:00") || w.Number == nil || fmt.Sprint(w.Services) != "[93]" {
					p = append(p, fmt.Sprintf("window %+v", w))
				}
				kinds = append(kinds, fmt.Sprintf("%s emergency=%v %s", w.Reason, w.Emergency, w.State))
			}
			if want := "[отказ СХД emergency=true in force КГД database upgrade emergency=false announced]"; fmt.Sprint(kinds) != want {
				p = append(p, fmt.Sprintf("windows %v, want %s", kinds, want))
			}
			p = append(p, validateMessages(t, r.request, r.reply)...)
			r.fail(t, p)
		})
	}
}

// TestBrokerLog runs last: every request above was either answered or refused with a fault the
// client expected, so the broker must have logged no error, panic or data race while serving them.
func TestBrokerLog(t *testing.T) {
	raw, err := os.ReadFile(env.logPath)
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for line := range strings.SplitSeq(string(raw), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, `"level":"ERROR"`) || // log.format text or json
			strings.Contains(line, "panic:") || strings.Contains(line, "DATA RACE") {
			bad = append(bad, line)
		}
	}
	if len(bad) > 0 {
		t.Errorf("the broker log %s has %d error lines:\n  %s", env.logPath, len(bad), strings.Join(bad, "\n  "))
	}
	if ok, why := env.alive(); !ok {
		t.Error(why)
	}
}
