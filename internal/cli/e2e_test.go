package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// TestSendEndToEnd drives `siobroker send` against the real broker, in both placements, with an
// RSA and an ECDSA user, and checks the saved reply's signature independently of the client.
func TestSendEndToEnd(t *testing.T) {
	e := sharedBroker(t)
	for _, keyType := range []string{devpki.KeyRSA, devpki.KeyECDSA} {
		for _, placement := range []signing.Placement{signing.PlacementWSSE, signing.PlacementEnveloped} {
			t.Run(keyType+"/"+string(placement), func(t *testing.T) {
				t.Parallel()
				u := e.user(t, keyType, devpki.StatusValid)
				dir := t.TempDir()
				reqFile, replyFile := filepath.Join(dir, "request.xml"), filepath.Join(dir, "reply.xml")
				// Each user under a criminal case of its own (§5: the case must be in its proceedings).
				code, stdout, stderr := runSend(t, e.sendArgs(u, append(caseFlags(userCase(t, u, siobroker.BasisCriminal)),
					"--services", "1,5,11",
					"--placement", string(placement), "--save-request", reqFile, "--save-reply", replyFile)...)...)
				if code != sendExitOK {
					t.Fatalf("send exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
				}
				for _, want := range []string{
					"status SCSS001: processed: 3 of 3 services answered",
					map[signing.Placement]string{
						signing.PlacementWSSE:      "signature verified over the whole Body",
						signing.PlacementEnveloped: "signature verified over the results (responseInfo above is unsigned)",
					}[placement],
					fmt.Sprintf("signed by %q", devpki.BrokerCommonName),
					"\nservice 1: ok ", "\nservice 5: ok ", "\nservice 11: ok ",
				} {
					if !strings.Contains(stdout, want) {
						t.Errorf("stdout lacks %q:\n%s", want, stdout)
					}
				}
				req, err := os.ReadFile(reqFile)
				if err != nil {
					t.Fatal(err)
				}
				reply, err := os.ReadFile(replyFile)
				if err != nil {
					t.Fatal(err)
				}
				got, info, res := verifiedReply(t, reply, filepath.Join(e.pki, devpki.CAFile))
				if got != placement {
					t.Errorf("reply signed in placement %s, want %s", got, placement)
				}
				id := messageID(t, req)
				if info.CorrelationID != id || res.RequestMessageID != id {
					t.Errorf("reply answers %q/%q, want %q", info.CorrelationID, res.RequestMessageID, id)
				}
				if res.SignerIIN != u.IIN {
					t.Errorf("signerIin %q, want %q", res.SignerIIN, u.IIN)
				}
				if res.Subject.IIN != e.subject || res.Basis != siobroker.BasisCriminal {
					t.Errorf("result echoes subject %+v basis %d", res.Subject, res.Basis)
				}
				if len(res.Services) != 3 {
					t.Fatalf("got %d services, want 3", len(res.Services))
				}
				for i, no := range []int{1, 5, 11} {
					if r := res.Services[i]; r.Service != no || r.Status != siobroker.StatusOK {
						t.Errorf("service #%d: got %d %s %s, want %d ok", i, r.Service, r.Status, r.Reason, no)
					}
				}
				// The reply verifies against the PKI's root, but not against a foreign one.
				if placement == signing.PlacementWSSE && keyType == devpki.KeyRSA {
					other, _ := foreignPKI(t)
					code, stdout, stderr := runSend(t, e.sendArgs(u, "--ca", filepath.Join(other, devpki.CAFile))...)
					if code != sendExitError || !strings.Contains(stderr, "reply signature does not verify") {
						t.Errorf("send trusting a foreign root: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, sendExitError, stdout, stderr)
					}
				}
			})
		}
	}
}

// TestServiceDecisions checks the per-service rights applied by the broker (Appendix 2). The
// role-1 prosecutor may use every basis (Appendix 1) and asks under his own case of each.
func TestServiceDecisions(t *testing.T) {
	e := sharedBroker(t)
	u := findUserByRole(t, e.manifest, 1)
	type want struct {
		status    siobroker.ResultStatus
		reason    string
		hasAmount *bool // service 11 only
	}
	yes, no := true, false
	const b1, b2 = siobroker.BasisCriminal, siobroker.BasisCourtAdmin
	for _, tc := range []struct {
		name     string
		basis    siobroker.Basis // the prosecutor's first case under it gives the case flags
		flags    []string
		services []int
		want     map[int]want
	}{
		{"basis1/11 full", b1, nil, []int{11},
			map[int]want{11: {siobroker.StatusOK, "", &yes}}},
		{"basis2/11 truncated", b2, nil, []int{11},
			map[int]want{11: {siobroker.StatusOK, "", &no}}},
		{"basis2/37 denied basis", b2, nil, []int{37},
			map[int]want{37: {siobroker.StatusDenied, siobroker.ReasonDeniedBasis, nil}}},
		// The case is qualified under 190 and 216 (App. 2 fn. 2 follows the case's articles).
		{"basis1/37 no article", b1, nil, []int{37},
			map[int]want{37: {siobroker.StatusOK, "", nil}}},
		{"basis1/37 article 190", b1, []string{"--article", "190"}, []int{37},
			map[int]want{37: {siobroker.StatusDenied, siobroker.ReasonDeniedArticle, nil}}},
		{"basis1/37 article 216", b1, []string{"--article", "216"}, []int{37},
			map[int]want{37: {siobroker.StatusOK, "", nil}}},
		{"mixed basis2", b2, nil, []int{1, 37, 11, 38, 5},
			map[int]want{
				1: {siobroker.StatusOK, "", nil}, 37: {siobroker.StatusDenied, siobroker.ReasonDeniedBasis, nil},
				11: {siobroker.StatusOK, "", &no}, 38: {siobroker.StatusDenied, siobroker.ReasonDeniedBasis, nil},
				5: {siobroker.StatusOK, "", nil},
			}},
		{"mixed basis1 article 190", b1, []string{"--article", "190"}, []int{37, 1, 11},
			map[int]want{
				37: {siobroker.StatusDenied, siobroker.ReasonDeniedArticle, nil},
				1:  {siobroker.StatusOK, "", nil}, 11: {siobroker.StatusOK, "", &yes},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			replyFile := filepath.Join(t.TempDir(), "reply.xml")
			services := make([]string, len(tc.services))
			for i, s := range tc.services {
				services[i] = fmt.Sprint(s)
			}
			flags := append(caseFlags(userCase(t, u, tc.basis)), tc.flags...)
			args := e.sendArgs(u, append(flags, "--services", strings.Join(services, ","), "--save-reply", replyFile)...)
			code, stdout, stderr := runSend(t, args...)
			if code != sendExitOK {
				t.Fatalf("send exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			reply, err := os.ReadFile(replyFile)
			if err != nil {
				t.Fatal(err)
			}
			_, info, res := verifiedReply(t, reply, filepath.Join(e.pki, devpki.CAFile))
			if info.StatusCode != "SCSS001" {
				t.Errorf("status %s %s, want SCSS001", info.StatusCode, info.StatusMessage)
			}
			if len(res.Services) != len(tc.services) {
				t.Fatalf("got %d services, want %d", len(res.Services), len(tc.services))
			}
			for i, no := range tc.services {
				r := res.Services[i]
				if r.Service != no {
					t.Errorf("service #%d is %d, want %d (order of the request)", i, r.Service, no)
				}
				w := tc.want[no]
				// An answered service's reason is OK or NO_DATA; a denied one's names the rule.
				if r.Status != w.status || (w.reason != "" && r.Reason != w.reason) {
					t.Errorf("service %d: %s %q (%s), want %s %q", no, r.Status, r.Reason, r.Message, w.status, w.reason)
				}
				if r.Status == siobroker.StatusDenied && len(r.Records) != 0 {
					t.Errorf("denied service %d carries %d records", no, len(r.Records))
				}
				if w.hasAmount != nil {
					if len(r.Records) == 0 {
						t.Fatalf("service %d has no records to check the amount in", no)
					}
					if hasField(r, "amount") != *w.hasAmount {
						t.Errorf("service %d: amount present = %v, want %v\n%s", no, !*w.hasAmount, *w.hasAmount, stdout)
					}
				}
				wantLine := fmt.Sprintf("\nservice %d: %s %s", no, w.status, r.Reason)
				if !strings.Contains(stdout, wantLine) {
					t.Errorf("stdout lacks %q:\n%s", wantLine, stdout)
				}
			}
		})
	}
}

// TestFaultsViaSend checks the faults reachable from `siobroker send`: exit 1 and
// "fault CODE: message" on stdout.
func TestFaultsViaSend(t *testing.T) {
	e := sharedBroker(t)
	valid := e.user(t, devpki.KeyRSA, devpki.StatusValid)
	badSubject := e.subject[:11] + fmt.Sprint((int(e.subject[11]-'0')+1)%10)
	for _, tc := range []struct {
		name string
		args func(t *testing.T) []string
		code siobroker.Code
		msg  string // a fragment of the message
	}{
		{"revoked", func(t *testing.T) []string { return e.sendArgs(e.user(t, devpki.KeyRSA, devpki.StatusRevoked)) },
			siobroker.CodeCertRevoked, ""},
		{"expired", func(t *testing.T) []string { return e.sendArgs(e.user(t, devpki.KeyRSA, devpki.StatusExpired)) },
			siobroker.CodeCertExpired, ""},
		{"foreign CA", func(t *testing.T) []string {
			other, _ := foreignPKI(t)
			m, err := devpki.LoadManifest(other)
			if err != nil {
				t.Fatal(err)
			}
			u := findUser(t, m, devpki.KeyRSA, devpki.StatusValid)
			// The same IIN as a trusted user, but issued by another CA.
			if u.IIN != valid.IIN {
				t.Fatalf("the development IINs are fixed; got %s and %s", u.IIN, valid.IIN)
			}
			return e.sendArgs(u, "--pki", other)
		}, siobroker.CodeCertChain, ""},
		{"subject check digit", func(t *testing.T) []string { return e.sendArgs(valid, "--subject", badSubject) },
			siobroker.CodeSubject, "query/subject/iin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runSend(t, tc.args(t)...)
			if code != sendExitFault {
				t.Fatalf("send exited %d, want %d\nstdout:\n%s\nstderr:\n%s", code, sendExitFault, stdout, stderr)
			}
			re := regexp.MustCompile(`(?m)^fault ` + regexp.QuoteMeta(string(tc.code)) + `: \S.*$`)
			if !re.MatchString(stdout) {
				t.Errorf("stdout does not say \"fault %s: message\":\n%s", tc.code, stdout)
			}
			if tc.msg != "" && !strings.Contains(stdout, tc.msg) {
				t.Errorf("fault message lacks %q:\n%s", tc.msg, stdout)
			}
		})
	}
}

// TestMessageDateWindow: a broker whose clock runs 10 minutes ahead refuses a fresh request, and
// the shared broker refuses requests dated 10 minutes in the past or future.
func TestMessageDateWindow(t *testing.T) {
	e := sharedBroker(t)
	u := e.user(t, devpki.KeyRSA, devpki.StatusValid)
	t.Run("skewed broker via send", func(t *testing.T) {
		sk := skewedBroker(t, 10*time.Minute)
		code, stdout, stderr := runSend(t, sk.sendArgs(u)...)
		if code != sendExitFault || !strings.HasPrefix(stdout, "fault "+string(siobroker.CodeReplayDate)+": ") {
			t.Fatalf("send exited %d, want %d with fault %s\nstdout:\n%s\nstderr:\n%s",
				code, sendExitFault, siobroker.CodeReplayDate, stdout, stderr)
		}
		// 4 minutes is inside the window: the same broker answers.
		sk4 := skewedBroker(t, 4*time.Minute)
		if code, stdout, stderr := runSend(t, sk4.sendArgs(u)...); code != sendExitOK {
			t.Fatalf("4 minutes of skew: send exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
	})
	for _, d := range []time.Duration{-10 * time.Minute, 10 * time.Minute} {
		t.Run(fmt.Sprintf("dated %s", d), func(t *testing.T) {
			t.Parallel()
			info := newInfo()
			info.MessageDate = info.MessageDate.Add(d)
			raw := signedRequest(t, e.signer(t, u), signing.PlacementWSSE, info, e.query(1))
			status, body := post(t, e.url, raw)
			wantFault(t, status, body, http.StatusInternalServerError, siobroker.CodeReplayDate)
		})
	}
}

// TestFaultsRaw posts hand-made requests and checks each fault's stable code and HTTP status.
func TestFaultsRaw(t *testing.T) {
	e := sharedBroker(t)
	u := e.user(t, devpki.KeyRSA, devpki.StatusValid)
	s := e.signer(t, u)
	const (
		env   = `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body/></soapenv:Envelope>`
		s500  = http.StatusInternalServerError
		s405  = http.StatusMethodNotAllowed
		s413  = http.StatusRequestEntityTooLarge
		chunk = -1 // send without Content-Length
	)
	big := bytes.Repeat([]byte(" "), int(e.cfg.HTTP.MaxBodyBytes)+10)
	bigEnv := append(append([]byte(`<?xml version="1.0" encoding="UTF-8"?>`), big...), env...)
	schema := e.query(1)
	schema.Basis = 10 // 1–6 the appendices', 7–9 the Law's (§1)
	for _, tc := range []struct {
		name   string
		method string
		url    string
		body   func(t *testing.T) []byte
		length int64
		status int
		code   siobroker.Code
		msg    string
	}{
		{"unsigned", http.MethodPost, e.url, func(t *testing.T) []byte {
			return signedRequest(t, nil, "", newInfo(), e.query(1))
		}, 0, s500, siobroker.CodeSigMissing, ""},
		{"doctype", http.MethodPost, e.url, func(t *testing.T) []byte {
			return []byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>` + env)
		}, 0, s500, siobroker.CodeDoctype, ""},
		{"oversize with length", http.MethodPost, e.url, func(t *testing.T) []byte { return bigEnv }, 0, s413, siobroker.CodeOversize, ""},
		{"oversize chunked", http.MethodPost, e.url, func(t *testing.T) []byte { return bigEnv }, chunk, s413, siobroker.CodeOversize, ""},
		{"GET without wsdl", http.MethodGet, e.url, nil, 0, s405, siobroker.CodeMethod, ""},
		{"PUT", http.MethodPut, e.url, func(t *testing.T) []byte { return []byte(env) }, 0, s405, siobroker.CodeMethod, ""},
		{"DELETE", http.MethodDelete, e.url, nil, 0, s405, siobroker.CodeMethod, ""},
		{"schema basis 10", http.MethodPost, e.url, func(t *testing.T) []byte {
			return signedRequest(t, s, signing.PlacementWSSE, newInfo(), schema)
		}, 0, s500, siobroker.CodeSchema, "basis"},
		{"schema basis 10 enveloped", http.MethodPost, e.url, func(t *testing.T) []byte {
			return signedRequest(t, s, signing.PlacementEnveloped, newInfo(), schema)
		}, 0, s500, siobroker.CodeSchema, "basis"},
		{"subject check digit raw", http.MethodPost, e.url, func(t *testing.T) []byte {
			q := e.query(1)
			q.Subject.IIN = q.Subject.IIN[:11] + fmt.Sprint((int(q.Subject.IIN[11]-'0')+1)%10)
			return signedRequest(t, s, signing.PlacementEnveloped, newInfo(), q)
		}, 0, s500, siobroker.CodeSubject, "subject"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var body io.Reader
			if tc.body != nil {
				b := tc.body(t)
				if tc.length == chunk {
					body = onlyReader{bytes.NewReader(b)} // net/http cannot see the length: chunked
				} else {
					body = bytes.NewReader(b)
				}
			}
			status, hdr, reply := do(t, tc.method, tc.url, body)
			f := wantFault(t, status, reply, tc.status, tc.code)
			if tc.msg != "" && !strings.Contains(f.Message, tc.msg) {
				t.Errorf("fault message %q does not name %q", f.Message, tc.msg)
			}
			if tc.status == s405 && hdr.Get("Allow") != http.MethodPost {
				t.Errorf("405 without Allow: POST (got %q)", hdr.Get("Allow"))
			}
		})
	}
}

// onlyReader hides the concrete type, so that net/http sends the body chunked.
type onlyReader struct{ r *bytes.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// TestReplayAndTamper: a request the broker answered is refused when posted again, and a copy
// whose signed subject was changed is refused as an invalid signature.
func TestReplayAndTamper(t *testing.T) {
	e := sharedBroker(t)
	u := e.user(t, devpki.KeyRSA, devpki.StatusValid)

	t.Run("raw twice", func(t *testing.T) {
		t.Parallel()
		for _, p := range []signing.Placement{signing.PlacementWSSE, signing.PlacementEnveloped} {
			raw := signedRequest(t, e.signer(t, u), p, newInfo(), e.query(1))
			status, body := post(t, e.url, raw)
			if status != http.StatusOK {
				t.Fatalf("%s: first post: HTTP %d\n%s", p, status, truncate(body))
			}
			status, body = post(t, e.url, raw)
			wantFault(t, status, body, http.StatusInternalServerError, siobroker.CodeReplayID)
		}
	})

	for _, p := range []signing.Placement{signing.PlacementWSSE, signing.PlacementEnveloped} {
		t.Run("saved request/"+string(p), func(t *testing.T) {
			t.Parallel()
			reqFile := filepath.Join(t.TempDir(), "request.xml")
			code, stdout, stderr := runSend(t, e.sendArgs(u, "--placement", string(p), "--save-request", reqFile)...)
			if code != sendExitOK {
				t.Fatalf("send exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			saved, err := os.ReadFile(reqFile)
			if err != nil {
				t.Fatal(err)
			}
			status, body := post(t, e.url, saved)
			wantFault(t, status, body, http.StatusInternalServerError, siobroker.CodeReplayID)

			// Another valid IIN in place of the subject: only the signature can tell.
			other := e.user(t, devpki.KeyECDSA, devpki.StatusValid).IIN
			from := "<q:iin>" + e.subject + "</q:iin>"
			if !bytes.Contains(saved, []byte(from)) {
				t.Fatalf("saved request has no %s", from)
			}
			tampered := bytes.Replace(saved, []byte(from), []byte("<q:iin>"+other+"</q:iin>"), 1)
			status, body = post(t, e.url, tampered)
			wantFault(t, status, body, http.StatusInternalServerError, siobroker.CodeSigInvalid)
		})
	}
}

// TestDescribe: the WSDL with the test server's address, the XSDs it imports, and the health check.
func TestDescribe(t *testing.T) {
	e := sharedBroker(t)
	t.Run("wsdl", func(t *testing.T) {
		status, hdr, body := do(t, http.MethodGet, e.url+"?wsdl", nil)
		if status != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/xml") {
			t.Fatalf("HTTP %d %s\n%s", status, hdr.Get("Content-Type"), truncate(body))
		}
		want := `location="` + e.url + `"`
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("WSDL lacks soap:address %s", want)
		}
		if bytes.Contains(body, []byte(`location="http://127.0.0.1:8080/`)) {
			t.Errorf("WSDL still carries the placeholder address")
		}
		if !bytes.Contains(body, []byte(`schemaLocation="?xsd=`)) {
			t.Errorf("WSDL imports are not rewritten to ?xsd=NAME")
		}
		for _, m := range regexp.MustCompile(`schemaLocation="\?xsd=([^"]+)"`).FindAllSubmatch(body, -1) {
			if status, _, _ := do(t, http.MethodGet, e.url+"?xsd="+string(m[1]), nil); status != http.StatusOK {
				t.Errorf("imported schema %s: HTTP %d", m[1], status)
			}
		}
	})
	t.Run("xsd", func(t *testing.T) {
		status, _, body := do(t, http.MethodGet, e.url+"?xsd=sio-query-v1.xsd", nil)
		if status != http.StatusOK || !bytes.Contains(body, []byte(`targetNamespace="urn:kz:sio-pso:broker:v1"`)) {
			t.Fatalf("HTTP %d\n%s", status, truncate(body))
		}
		if status, _, _ := do(t, http.MethodGet, e.url+"?xsd=../go.mod", nil); status != http.StatusNotFound {
			t.Errorf("?xsd=../go.mod: HTTP %d, want 404", status)
		}
	})
	t.Run("healthz", func(t *testing.T) {
		status, _, body := do(t, http.MethodGet, e.base+"/healthz", nil)
		if status != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
			t.Fatalf("HTTP %d %q", status, body)
		}
	})
}

// TestDevPKICommand: `siobroker devpki --out DIR` writes the files its manifest names.
func TestDevPKICommand(t *testing.T) {
	dir, stdout := foreignPKI(t)
	for _, f := range []string{devpki.CAFile, devpki.CRLFile, devpki.BrokerFile, devpki.BrokerKey, devpki.ManifestFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("devpki did not write %s: %v", f, err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, devpki.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m devpki.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	keyTypes := map[string]bool{}
	for _, u := range m.Users {
		keyTypes[u.KeyType] = true
		if err := siobroker.ValidateIIN(u.IIN); err != nil {
			t.Errorf("user IIN %s: %v", u.IIN, err)
		}
		if u.Cert != "users/"+u.IIN+".pem" || u.Key != "users/"+u.IIN+".key" {
			t.Errorf("user %s: files %s, %s", u.IIN, u.Cert, u.Key)
		}
		for _, f := range []string{u.Cert, u.Key} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("user %s: %v", u.IIN, err)
			}
		}
		if !strings.Contains(stdout, u.IIN) {
			t.Errorf("devpki output does not list %s:\n%s", u.IIN, stdout)
		}
		if _, err := signing.LoadSigner(filepath.Join(dir, u.Cert), filepath.Join(dir, u.Key)); err != nil {
			t.Errorf("user %s: %v", u.IIN, err)
		}
	}
	if !keyTypes[devpki.KeyRSA] || !keyTypes[devpki.KeyECDSA] {
		t.Errorf("key types %v, want rsa and ecdsa", keyTypes)
	}
	if fi, err := os.Stat(filepath.Join(dir, devpki.BrokerKey)); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("broker.key has mode %v, want 0600", fi.Mode().Perm())
	}
	if !strings.Contains(stdout, "NOT FOR PRODUCTION") {
		t.Errorf("devpki output does not warn:\n%s", stdout)
	}

	t.Run("usage", func(t *testing.T) {
		var out, errb bytes.Buffer
		if code := Main(context.Background(), []string{"devpki"}, &out, &errb); code != 2 {
			t.Errorf("devpki without --out exited %d, want 2", code)
		}
	})
}

// TestSendUsage: flag mistakes exit 2 before anything is sent.
func TestSendUsage(t *testing.T) {
	e := sharedBroker(t)
	u := e.user(t, devpki.KeyRSA, devpki.StatusValid)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"basis 10", e.sendArgs(u, "--basis", "10")},
		{"no case", e.sendArgs(u, "--case", "")},
		{"short subject", e.sendArgs(u, "--subject", "123")},
		{"no services", e.sendArgs(u, "--services", "")},
		{"bad service", e.sendArgs(u, "--services", "1,x")},
		{"bad placement", e.sendArgs(u, "--placement", "detached")},
		{"unknown user", e.sendArgs(u, "--user", "000000000000")},
		{"extra argument", append(e.sendArgs(u), "extra")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, stdout, stderr := runSend(t, tc.args...); code != sendExitUsage {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, sendExitUsage, stdout, stderr)
			}
		})
	}
}

// TestAllServicesEveryBasis asks for all 93 services under each basis, each time as a user whose
// role may use the basis and under that user's own case: every service is answered or denied by
// the rights, none ends in error or timeout, and the order is the request's.
func TestAllServicesEveryBasis(t *testing.T) {
	e := sharedBroker(t)
	all := make([]string, 0, siobroker.LastService)
	for i := siobroker.FirstService; i <= siobroker.LastService; i++ {
		all = append(all, fmt.Sprint(i))
	}
	for b := siobroker.FirstBasis; b <= siobroker.LastBasis; b++ {
		t.Run(fmt.Sprint("basis ", int(b)), func(t *testing.T) {
			t.Parallel()
			u, c := e.caseUser(t, b)
			replyFile := filepath.Join(t.TempDir(), "reply.xml")
			code, stdout, stderr := runSend(t, e.sendArgs(u, append(caseFlags(c), "--article", "216",
				"--services", strings.Join(all, ","), "--save-reply", replyFile)...)...)
			if code != sendExitOK {
				t.Fatalf("send exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			reply, err := os.ReadFile(replyFile)
			if err != nil {
				t.Fatal(err)
			}
			_, info, res := verifiedReply(t, reply, filepath.Join(e.pki, devpki.CAFile))
			if info.StatusCode != "SCSS001" {
				t.Errorf("status %s: %s", info.StatusCode, info.StatusMessage)
			}
			if len(res.Services) != siobroker.LastService {
				t.Fatalf("got %d services, want %d", len(res.Services), siobroker.LastService)
			}
			denied := 0
			for i, r := range res.Services {
				if r.Service != i+1 {
					t.Errorf("service #%d is %d", i, r.Service)
				}
				switch r.Status {
				case siobroker.StatusOK:
				case siobroker.StatusDenied:
					denied++
					if r.Reason != siobroker.ReasonDeniedBasis {
						t.Errorf("service %d denied with %s (%s)", r.Service, r.Reason, r.Message)
					}
				default:
					t.Errorf("service %d: %s %s (%s)", r.Service, r.Status, r.Reason, r.Message)
				}
			}
			if b == siobroker.BasisCriminal && denied > 1 {
				t.Errorf("basis 1 with a Chapter 8 article denied %d services", denied)
			}
		})
	}
}
