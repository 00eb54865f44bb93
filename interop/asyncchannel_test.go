package interop

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

// The gateway's AsyncChannel v10 at /AsyncChannel/v10, run through by zeep (through the served
// WSDL, with zeep's own operations and signing), by node-soap (through the served WSDL, with
// node-soap's generated operations and its default WSSecurityCert, each answer verified with
// xml-crypto) and by WSS4J (envelopes built as CXF writes them, signed and verified with WSS4J): a
// REQUEST acknowledged, polled until DELIVERED, its RESPONSE fetched by the chain, confirmed,
// DELIVERED and gone from the mailbox; and a fault of each operation, with its own detail element.

const (
	asyncPath      = "/AsyncChannel/v10" // internal/app: AsyncPath
	nsAsyncTypes   = "http://bip.bee.kz/AsyncChannel/v10/Types"
	asyncServiceID = "SIO_PSO_QUERY"
)

// provoked is a fault the clients provoke with --async-fault KIND: the operation they call, and
// the errorCode expected.
type provoked struct{ operation, code string }

var asyncFaults = map[string]provoked{
	"others-case":     {"sendMessage", "SIO-CASE-UNKNOWN"},               // a case not the signer's
	"unknown-id":      {"getMessageStatus", "SIO-ASYNC-UNKNOWN"},         // getMessageStatus of --fault-id
	"unknown-chain":   {"getMessages", "SIO-ASYNC-UNKNOWN"},              // getMessages by that chain
	"unknown-receipt": {"sendDeliveryNotification", "SIO-ASYNC-UNKNOWN"}, // a receipt of that message
}

// allAsyncFaults is one fault of each operation.
var allAsyncFaults = []string{"others-case", "unknown-id", "unknown-chain", "unknown-receipt"}

// asyncResult is the JSON object a client prints in --channel async.
type asyncResult struct {
	OK      bool   `json:"ok"`
	Channel string `json:"channel"`
	Ack     *struct {
		MessageID     string `json:"messageId"`
		CorrelationID string `json:"correlationId"`
		ResponseDate  string `json:"responseDate"`
		SessionID     string `json:"sessionId"`
	} `json:"ack"`
	RequestStates []string `json:"requestStates"`
	Polls         int      `json:"polls"`
	ChainMessages *int     `json:"chainMessages"`
	Response      *struct {
		MessageID     string `json:"messageId"`
		CorrelationID string `json:"correlationId"`
		ServiceID     string `json:"serviceId"`
		MessageType   string `json:"messageType"`
		MessageDate   string `json:"messageDate"`
		SenderID      string `json:"senderId"`
	} `json:"response"`
	Result *struct {
		RequestMessageID *string `json:"requestMessageId"`
		SignerIIN        string  `json:"signerIin"`
	} `json:"result"`
	Services       []service `json:"services"`
	ParsedBy       *string   `json:"parsedBy"`   // zeep, node-soap
	ParseError     *string   `json:"parseError"` // zeep, node-soap
	ResponseStates struct {
		BeforeReceipt *string `json:"beforeReceipt"`
		AfterReceipt  *string `json:"afterReceipt"`
	} `json:"responseStates"`
	Receipt *struct {
		NotificationID string `json:"notificationId"`
	} `json:"receipt"`
	Mailbox struct {
		Before *mailbox `json:"before"`
		After  *mailbox `json:"after"`
	} `json:"mailbox"`
	Calls           []asyncCall  `json:"calls"`
	AnswersVerified bool         `json:"answersVerified"`
	Faults          []asyncFault `json:"faults"`
	Error           *string      `json:"error"`
}

type mailbox struct {
	Count       int  `json:"count"`
	HasResponse bool `json:"hasResponse"`
}

// asyncCall is one call of the flow: its answer's verification and the files of its exact bytes.
type asyncCall struct {
	Operation         string   `json:"operation"`
	HTTPStatus        *int     `json:"httpStatus"`
	Fault             bool     `json:"fault"`
	Signed            *bool    `json:"signed"`
	SignatureVerified bool     `json:"signatureVerified"`
	VerifyError       *string  `json:"verifyError"`
	BodySigned        *bool    `json:"bodySigned"`
	KeyReference      *string  `json:"keyReference"` // WSS4J
	SignedIDs         []string `json:"signedIds"`    // WSS4J
	Request           *string  `json:"request"`
	Reply             *string  `json:"reply"`
}

type asyncFault struct {
	Operation       string  `json:"operation"`
	Provoked        *string `json:"provoked"`
	Faultcode       string  `json:"faultcode"`
	Faultstring     string  `json:"faultstring"`
	ErrorCode       *string `json:"errorCode"`
	DetailElement   *string `json:"detailElement"`
	DetailNamespace *string `json:"detailNamespace"`
}

// asyncRun is a run of a client in --channel async: dir holds the bytes of every call.
type asyncRun struct {
	*run
	res asyncResult
	dir string
}

// sendAsync runs c's AsyncChannel v10 flow for q, or with --async-fault the calls that provoke
// faults, and parses its JSON.
func (c client) sendAsync(t *testing.T, q query, extra ...string) *asyncRun {
	t.Helper()
	r := &asyncRun{run: &run{client: c.name + " (AsyncChannel v10)"}, dir: t.TempDir()}
	args := append(q.args(env.base+asyncPath), "--channel", "async", "--dump-dir", r.dir)
	c.exec(r.run, append(append(args, c.trust...), extra...))
	r.jsonErr = parseResult(r.stdout, &r.res)
	if r.res.Ack != nil {
		r.messageID = r.res.Ack.MessageID // the broker's id of the request, in its log lines
	}
	return r
}

// files are the files of the exact bytes of a call and of its answer.
func (r *asyncRun) files(c asyncCall) (request, reply string) {
	if c.Request != nil {
		request = filepath.Join(r.dir, *c.Request)
	}
	if c.Reply != nil {
		reply = filepath.Join(r.dir, *c.Reply)
	}
	return request, reply
}

// validate checks every message exchanged against the XSDs the AsyncChannel endpoint serves.
func (r *asyncRun) validate(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, c := range r.res.Calls {
		req, rep := r.files(c)
		if req == "" || rep == "" {
			return []string{fmt.Sprintf("call %s: no dump of its request or its answer", c.Operation)}
		}
		files = append(files, req, rep)
	}
	return validateWith(t, servedAsyncSchemas(t), files...)
}

// expectAsyncFlow checks the whole flow: acknowledged with messageId = correlationId, polled until
// DELIVERED, exactly one RESPONSE in the chain (its own messageId, the request's correlationId)
// with every wanted service ok, confirmed, then DELIVERED and out of the mailbox; every answer
// signed over its Body and verified by the client's library, its wsu:Timestamp there exactly when
// the call had one, verified by xmlsec1 too, and every message valid against the served XSDs.
func expectAsyncFlow(t *testing.T, r *asyncRun, signer string, services ...int) bool {
	t.Helper()
	var p []string
	if r.jsonErr != nil {
		p = append(p, r.jsonErr.Error())
	}
	if r.exit != 0 {
		p = append(p, fmt.Sprintf("exit status %d, want 0 (the flow ran to its end)", r.exit))
	}
	res := r.res
	if res.Error != nil {
		p = append(p, "error: "+*res.Error)
	}
	for _, f := range res.Faults {
		p = append(p, fmt.Sprintf("%s: a fault %s %q (errorCode %s)", f.Operation, f.Faultcode, f.Faultstring, str(f.ErrorCode)))
	}
	if r.fail(t, p) {
		return false
	}

	ack := ""
	switch {
	case res.Ack == nil || res.Ack.MessageID == "":
		p = append(p, "no acknowledgement with a messageId")
	case res.Ack.CorrelationID != res.Ack.MessageID:
		p = append(p, fmt.Sprintf("ack: correlationId %q, want the messageId %q (a REQUEST opens its chain)", res.Ack.CorrelationID, res.Ack.MessageID))
	default:
		ack = res.Ack.MessageID
	}
	if n := len(res.RequestStates); n == 0 || res.RequestStates[n-1] != "DELIVERED" ||
		slices.ContainsFunc(res.RequestStates, func(s string) bool { return s != "ON_DELIVERY" && s != "DELIVERED" }) {
		p = append(p, fmt.Sprintf("the request's states %v after %d polls, want ON_DELIVERY until DELIVERED", res.RequestStates, res.Polls))
	}
	if res.ChainMessages == nil || *res.ChainMessages != 1 {
		p = append(p, fmt.Sprintf("getMessages by the chain returned %s messages, want 1", ptr(res.ChainMessages)))
	}
	response := ""
	switch m := res.Response; {
	case m == nil:
		p = append(p, "no RESPONSE in the chain")
	case m.MessageType != "RESPONSE" || m.MessageID == "" || m.MessageID == ack || m.CorrelationID != ack || m.ServiceID != asyncServiceID:
		p = append(p, fmt.Sprintf("the chain's message %+v: want a RESPONSE of %s with a messageId of its own and correlationId %s", *m, asyncServiceID, ack))
	default:
		response = m.MessageID
	}
	if res.Result == nil || res.Result.SignerIIN != signer {
		p = append(p, fmt.Sprintf("q:result %+v: want signerIin %s", res.Result, signer))
	}
	p = append(p, checkServices(res.Services, services)...)
	if got := str(res.ResponseStates.BeforeReceipt); got != "ON_DELIVERY" {
		p = append(p, "the RESPONSE's state before the receipt is "+got+", want ON_DELIVERY")
	}
	if got := str(res.ResponseStates.AfterReceipt); got != "DELIVERED" {
		p = append(p, "the RESPONSE's state after the receipt is "+got+", want DELIVERED")
	}
	if res.Receipt == nil || res.Receipt.NotificationID == "" {
		p = append(p, "the delivery notification was not answered with a notificationId")
	}
	// Other runs of the same signer share the mailbox meanwhile: what is checked is that this
	// RESPONSE is in it before the receipt and not after.
	if b := res.Mailbox.Before; b == nil || !b.HasResponse {
		p = append(p, fmt.Sprintf("the mailbox before the receipt (%+v) does not hold the RESPONSE %s", b, response))
	}
	if a := res.Mailbox.After; a == nil || a.HasResponse {
		p = append(p, fmt.Sprintf("the mailbox after the receipt (%+v) still holds the RESPONSE %s, or was not read", a, response))
	}

	var ops []string
	for _, c := range res.Calls {
		ops = append(ops, c.Operation)
		switch {
		case c.HTTPStatus == nil || *c.HTTPStatus != 200:
			p = append(p, fmt.Sprintf("%s: HTTP status %s", c.Operation, ptr(c.HTTPStatus)))
		case !c.SignatureVerified:
			p = append(p, fmt.Sprintf("%s: the answer's signature did not verify: %s", c.Operation, str(c.VerifyError)))
		case c.BodySigned == nil || !*c.BodySigned:
			p = append(p, c.Operation+": the answer's signature does not cover its soap:Body")
		}
	}
	want := []string{"sendMessage"}
	for range res.Polls {
		want = append(want, "getMessageStatus")
	}
	want = append(want, "getMessages", "getMessages", "getMessageStatus", "sendDeliveryNotification", "getMessageStatus", "getMessages")
	if !slices.Equal(ops, want) {
		p = append(p, fmt.Sprintf("calls %v, want %v", ops, want))
	}
	if !res.AnswersVerified || !res.OK {
		p = append(p, fmt.Sprintf("answersVerified %v, ok %v; want both true", res.AnswersVerified, res.OK))
	}
	if r.fail(t, p) {
		return false
	}
	t.Logf("%s: %d calls in %v (%d polls: %v)", r.client, len(res.Calls), r.dur, res.Polls, res.RequestStates)
	for _, c := range res.Calls {
		call := *r.run
		call.request, call.reply = r.files(c)
		for _, q := range append(checkTimestamps(&call), crossCheckReply(t, &call)...) {
			p = append(p, c.Operation+" ("+filepath.Base(call.reply)+"): "+q)
		}
	}
	p = append(p, r.validate(t)...)
	return !r.fail(t, p)
}

// checkServices: the services answered are the wanted ones, each ok.
func checkServices(got []service, want []int) []string {
	var p, gotNo, wantNo []string
	for _, s := range got {
		gotNo = append(gotNo, fmt.Sprint(s.No))
		if s.Status != "ok" {
			p = append(p, fmt.Sprintf("service %v: status %q (reason %s), want ok", s.No, s.Status, str(s.Reason)))
		}
	}
	for _, s := range want {
		wantNo = append(wantNo, strconv.Itoa(s))
	}
	slices.Sort(gotNo)
	slices.Sort(wantNo)
	if !slices.Equal(gotNo, wantNo) {
		p = append(p, fmt.Sprintf("services answered %v, want %v", gotNo, wantNo))
	}
	return p
}

// expectAsyncFaults checks that each call provoked by --async-fault kinds was refused, in order,
// with a SOAP fault carrying its errorCode and the detail element its operation declares in the
// WSDL (<operation>Fault1_<operation>Fault in the AsyncChannel Types namespace), and that the calls
// and the faults are valid against the served XSDs.
func expectAsyncFaults(t *testing.T, r *asyncRun, kinds ...string) bool {
	t.Helper()
	var p []string
	if r.jsonErr != nil {
		p = append(p, r.jsonErr.Error())
	}
	if r.exit != 1 {
		p = append(p, fmt.Sprintf("exit status %d, want 1 (every provoked call refused with a fault)", r.exit))
	}
	if r.res.Error != nil {
		p = append(p, "error: "+*r.res.Error)
	}
	if len(r.res.Faults) != len(kinds) {
		p = append(p, fmt.Sprintf("%d faults, want %d (%s)", len(r.res.Faults), len(kinds), strings.Join(kinds, ", ")))
	}
	for i, kind := range kinds {
		if i >= len(r.res.Faults) {
			break
		}
		want := asyncFaults[kind]
		f := r.res.Faults[i]
		detail := want.operation + "Fault1_" + want.operation + "Fault"
		switch {
		case str(f.Provoked) != kind || f.Operation != want.operation:
			p = append(p, fmt.Sprintf("fault %d is of %s (%s), want of %s (%s)", i+1, f.Operation, str(f.Provoked), want.operation, kind))
		case str(f.ErrorCode) != want.code:
			p = append(p, fmt.Sprintf("%s: errorCode %s (%q), want %s", f.Operation, str(f.ErrorCode), f.Faultstring, want.code))
		case str(f.DetailElement) != detail || str(f.DetailNamespace) != nsAsyncTypes:
			p = append(p, fmt.Sprintf("%s: fault detail {%s}%s, want {%s}%s", f.Operation, str(f.DetailNamespace), str(f.DetailElement), nsAsyncTypes, detail))
		}
	}
	if !r.res.OK {
		p = append(p, `"ok" is false`)
	}
	if r.fail(t, p) {
		return false
	}
	return !r.fail(t, r.validate(t))
}

// ptr is *v, or null.
func ptr[T any](v *T) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprint(*v)
}

// TestAsyncChannelWSDL: the AsyncChannel endpoint's WSDL names the endpoint it is served at, and
// its import of ?wsdl=NAME and every schemaLocation reachable from it are served.
func TestAsyncChannelWSDL(t *testing.T) {
	logOnFailure(t)
	s := servedAsyncSchemas(t)
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(s.wsdl); err != nil {
		t.Fatalf("%s?wsdl: %v", asyncPath, err)
	}
	var addresses []string
	for _, a := range doc.FindElements("//address") {
		if a.NamespaceURI() == "http://schemas.xmlsoap.org/wsdl/soap/" {
			addresses = append(addresses, a.SelectAttrValue("location", ""))
		}
	}
	if want := env.base + asyncPath; !slices.Equal(addresses, []string{want}) {
		t.Errorf("%s?wsdl: soap:address locations %q, want [%s] (the endpoint it was fetched from)", asyncPath, addresses, want)
	}
	var imports []string
	for _, im := range s.imports {
		imports = append(imports, im.namespace+" "+im.location)
	}
	t.Logf("served XSDs: %s (the WSDLs import %s)", strings.Join(s.xsds, ", "), strings.Join(imports, ", "))
}

// TestAsyncChannelZeep runs the flow with zeep through the served WSDL, in both of zeep's
// signature styles, and provokes a fault of each operation.
func TestAsyncChannelZeep(t *testing.T) {
	logOnFailure(t)
	for _, style := range []string{"binary", "signature"} {
		t.Run(style, func(t *testing.T) {
			t.Parallel()
			q := rsaQuery(t)
			r := zeep(t, style).sendAsync(t, q)
			if !expectAsyncFlow(t, r, q.user.IIN, q.services...) {
				return
			}
			if got := str(r.res.ParsedBy); got != "zeep" {
				r.fail(t, []string{"the q:result was parsed by " + got + ", not with the WSDL's q:result element: " + str(r.res.ParseError)})
			}
		})
		t.Run(style+" faults", func(t *testing.T) {
			t.Parallel()
			r := zeep(t, style).sendAsync(t, othersCaseQuery(t), "--async-fault", strings.Join(allAsyncFaults, ","))
			expectAsyncFaults(t, r, allAsyncFaults...)
		})
	}
}

// TestAsyncChannelNodeSOAP runs the flow with node-soap through the served WSDL, its calls signed
// by one WSSecurityCert, with the q:query handed to node-soap in each form it writes into the
// xsd:anyType data as the broker takes it (an object whose query element declares the namespace as
// the default one, and raw XML through $xml); and provokes a fault of each operation.
func TestAsyncChannelNodeSOAP(t *testing.T) {
	logOnFailure(t)
	t.Run("flow", func(t *testing.T) {
		t.Parallel()
		// One form after the other: both runs are the RSA user's, and xml-crypto numbers the Ids of
		// a process's messages from _0, so the two runs' mailbox calls (getMessages by serviceId
		// alone) differ only by their requestDate: in the same millisecond they would be the same
		// signed content, and the second would be refused as a replay.
		for _, form := range []string{"object", "xml"} {
			t.Run(form, func(t *testing.T) {
				q := rsaQuery(t)
				r := nodeSOAP(t).sendAsync(t, q, "--query-form", form)
				if !expectAsyncFlow(t, r, q.user.IIN, q.services...) {
					return
				}
				if got := str(r.res.ParsedBy); got != "node-soap" {
					r.fail(t, []string{"the q:result was not read from node-soap's parse of the message (parsedBy " + got + "): " + str(r.res.ParseError)})
				}
			})
		}
	})
	t.Run("faults", func(t *testing.T) {
		t.Parallel()
		r := nodeSOAP(t).sendAsync(t, othersCaseQuery(t), "--async-fault", strings.Join(allAsyncFaults, ","))
		expectAsyncFaults(t, r, allAsyncFaults...)
	})
}

// TestAsyncChannelWSS4J runs the flow with envelopes built as CXF writes them, signed with WSS4J
// with the certificate in a BinarySecurityToken and with a thumbprint only, each answer verified
// with WSSecurityEngine as CXF's "Timestamp Signature" inbound action does; provokes a fault of
// each operation; and asks about the flow's ids as another signer, who must be told they are
// unknown.
func TestAsyncChannelWSS4J(t *testing.T) {
	logOnFailure(t)
	for _, keyID := range []string{"bst", "thumbprint"} {
		t.Run(keyID, func(t *testing.T) {
			t.Parallel()
			q := rsaQuery(t)
			r := wss4j(t, "Timestamp Signature").sendAsync(t, q, "--key-id", keyID)
			if !expectAsyncFlow(t, r, q.user.IIN, q.services...) {
				return
			}
			var p []string
			for _, c := range r.res.Calls {
				if got := str(c.KeyReference); got != "DIRECT_REF" {
					p = append(p, c.Operation+": the answer's key reference is "+got+", want DIRECT_REF (a BinarySecurityToken)")
				}
				if !slices.ContainsFunc(c.SignedIDs, func(s string) bool { return strings.HasSuffix(s, " Timestamp") }) {
					p = append(p, c.Operation+": WSS4J lists no signed Timestamp in the answer")
				}
			}
			if r.fail(t, p) || keyID != "bst" {
				return
			}
			// Another signer (the ECDSA user) asks about this chain by its id, as its owner could: the
			// id is unknown to him, for each operation.
			kinds := allAsyncFaults[1:]
			other := wss4j(t, "Timestamp Signature").sendAsync(t, ecdsaQuery(t), "--key-id", "bst",
				"--async-fault", strings.Join(kinds, ","), "--fault-id", r.res.Ack.MessageID)
			other.messageID = r.res.Ack.MessageID
			expectAsyncFaults(t, other, kinds...)
		})
		t.Run(keyID+" faults", func(t *testing.T) {
			t.Parallel()
			r := wss4j(t, "Timestamp Signature").sendAsync(t, othersCaseQuery(t), "--key-id", keyID, "--async-fault", strings.Join(allAsyncFaults, ","))
			expectAsyncFaults(t, r, allAsyncFaults...)
		})
	}
}
