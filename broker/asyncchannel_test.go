package broker

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
)

// acClient makes signed AsyncChannel v10 calls as one signer, and reads the verified answers.
type acClient struct {
	t         *testing.T
	h         *harness
	signer    *signing.Signer
	placement signing.Placement
}

func (c acClient) sign(doc *etree.Document) []byte {
	c.t.Helper()
	if err := c.signer.Sign(doc, c.placement); err != nil {
		c.t.Fatalf("sign: %v", err)
	}
	raw, err := soap.Serialize(doc)
	if err != nil {
		c.t.Fatal(err)
	}
	return raw
}

// call posts raw and returns the verified signed Body of the answer.
func (c acClient) call(raw []byte) (*etree.Element, error) {
	c.t.Helper()
	reply, req, err := c.h.accept(raw)
	if err != nil {
		if req.Operation == "" {
			c.t.Fatalf("a refused AsyncChannel call was not recognised as one: %v", err)
		}
		return nil, err
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(reply.Bytes); err != nil {
		c.t.Fatal(err)
	}
	v, err := mustVerifier(c.t, signing.VerifierConfig{Trust: trust, AnySigner: true}).Verify(context.Background(), doc, c.h.clock.Now())
	if err != nil {
		c.t.Fatalf("answer signature: %v\n%s", err, reply.Bytes)
	}
	if v.Placement != c.placement {
		c.t.Fatalf("answer signed in %s, the call in %s", v.Placement, c.placement)
	}
	return v.Signed, nil
}

func (c acClient) id() string { return fmt.Sprintf("ac-%d-%d", time.Now().UnixNano(), msgSeq.Add(1)) }

func (c acClient) sendMessage(mi soap.ACMessageInfo, services ...int) (string, error) {
	c.t.Helper()
	if mi.ServiceID == "" {
		mi.ServiceID = "SIO_PSO_QUERY"
	}
	if mi.MessageType == "" {
		mi.MessageType = soap.ACRequest
	}
	mi.MessageDate, mi.SenderID = c.h.clock.Now(), "MVD_IS_ERDR"
	q := siobroker.Query{Basis: siobroker.BasisCriminal, Case: caseFor(c.t, userOf(c.t, c.signer), siobroker.BasisCriminal),
		Subject: siobroker.Subject{IIN: validIIN}, Services: services, Purpose: "unit test"}
	body, err := c.call(c.sign(soap.NewACSendMessage(c.id(), mi, q)))
	if err != nil {
		return "", err
	}
	id, chain, err := soap.ParseACSendMessageResponse(body)
	if err != nil {
		c.t.Fatal(err)
	}
	if id == "" || chain != id {
		c.t.Fatalf("ack messageId %q correlationId %q: both must be the broker's id of the request", id, chain)
	}
	return id, nil
}

func (c acClient) status(id string) (soap.ACStatus, error) {
	c.t.Helper()
	body, err := c.call(c.sign(soap.NewACGetMessageStatus(c.id(), id, "MVD_IS_ERDR", c.h.clock.Now())))
	if err != nil {
		return soap.ACStatus{}, err
	}
	st, err := soap.ParseACGetMessageStatusResponse(body)
	if err != nil {
		c.t.Fatal(err)
	}
	return st, nil
}

func (c acClient) messages(messageID, correlationID string, amount int) ([]soap.ACMessage, error) {
	c.t.Helper()
	body, err := c.call(c.sign(soap.NewACGetMessages(c.id(), "SIO_PSO_QUERY", messageID, correlationID, "MVD_IS_ERDR", amount, c.h.clock.Now())))
	if err != nil {
		return nil, err
	}
	msgs, err := soap.ParseACGetMessagesResponse(body)
	if err != nil {
		c.t.Fatal(err)
	}
	return msgs, nil
}

func (c acClient) notify(messageID string, r siobroker.AsyncReceipt) error {
	c.t.Helper()
	_, err := c.call(c.sign(soap.NewACSendDeliveryNotification(c.id(), messageID, "SIO_PSO_QUERY", "MVD_IS_ERDR", r, c.h.clock.Now())))
	return err
}

// TestAsyncChannelV10 runs the gateway's contract through: a REQUEST acknowledged with the chain's
// id, its state while worked on, the reply handed out as a RESPONSE of its own, confirmed, and gone
// from the mailbox; in every WS-Security form a client signs in.
func TestAsyncChannelV10(t *testing.T) {
	for _, p := range []signing.Placement{signing.PlacementWSSE, signing.PlacementWSSEToken, signing.PlacementWSSETokenTimestamp} {
		t.Run(string(p), func(t *testing.T) {
			h := newHarness(t, nil)
			c := acClient{t: t, h: h, signer: userSigner, placement: p}
			id, err := c.sendMessage(soap.ACMessageInfo{}, 1, 5)
			if err != nil {
				t.Fatal(err)
			}
			if st, err := c.status(id); err != nil || st.State != siobroker.AsyncOnDelivery {
				t.Fatalf("status before the worker: %+v %v", st, err)
			}
			if msgs, err := c.messages("", "", 0); err != nil || len(msgs) != 0 {
				t.Fatalf("mailbox before the worker: %d messages, %v", len(msgs), err)
			}
			startWorker(t, h)
			job := waitState(t, h, id, siobroker.AsyncDelivered)
			if st, err := c.status(id); err != nil || st.State != siobroker.AsyncDelivered {
				t.Fatalf("status of the request after the worker: %+v %v", st, err)
			}

			msgs, err := c.messages("", "", 0)
			if err != nil || len(msgs) != 1 {
				t.Fatalf("mailbox: %d messages, %v", len(msgs), err)
			}
			m := msgs[0]
			if m.Info.MessageType != soap.ACResponse || m.Info.CorrelationID != id || m.Info.MessageID != job.ReplyMessageID || m.Info.MessageID == id {
				t.Fatalf("message info %+v, want a RESPONSE %s in chain %s", m.Info, job.ReplyMessageID, id)
			}
			res, err := soap.ParseResult(m.Data)
			if err != nil || res.SignerIIN != userSigner.IIN() || len(res.Services) != 2 {
				t.Fatalf("q:result %+v %v", res, err)
			}
			// By the reply's id and by the chain: the same one message.
			for _, by := range [][2]string{{m.Info.MessageID, ""}, {"", id}} {
				if got, err := c.messages(by[0], by[1], 0); err != nil || len(got) != 1 || got[0].Info.MessageID != m.Info.MessageID {
					t.Fatalf("getMessages by %q: %d messages, %v", by, len(got), err)
				}
			}
			if st, err := c.status(m.Info.MessageID); err != nil || st.State != siobroker.AsyncOnDelivery {
				t.Fatalf("status of the reply before its receipt: %+v %v", st, err)
			}

			// Refused with RESEND: offered again. Accepted: delivered, and out of the mailbox.
			if err := c.notify(m.Info.MessageID, siobroker.AsyncReceipt{Resend: true}); err != nil {
				t.Fatal(err)
			}
			if got, err := c.messages("", "", 0); err != nil || len(got) != 1 {
				t.Fatalf("mailbox after RESEND: %d, %v", len(got), err)
			}
			if err := c.notify(m.Info.MessageID, siobroker.AsyncReceipt{Accepted: true}); err != nil {
				t.Fatal(err)
			}
			if got, err := c.messages("", "", 0); err != nil || len(got) != 0 {
				t.Fatalf("mailbox after acceptance: %d, %v", len(got), err)
			}
			if st, err := c.status(m.Info.MessageID); err != nil || st.State != siobroker.AsyncDelivered {
				t.Fatalf("status of the reply after its receipt: %+v %v", st, err)
			}
			// Still fetchable by id, as the gateway's getMessages by messageId is.
			if got, err := c.messages(m.Info.MessageID, "", 0); err != nil || len(got) != 1 {
				t.Fatalf("getMessages by id after acceptance: %d, %v", len(got), err)
			}
			var receipts []string
			for _, r := range journalOf(t, h, id) {
				if r.Kind == siobroker.JournalDelivery {
					receipts = append(receipts, r.Code)
				}
			}
			if strings.Join(receipts, ",") != "MESSAGE_NOT_ACCTEPTED/RESEND,MESSAGE_ACCEPTED" {
				t.Errorf("journaled receipts %v", receipts)
			}
			// A receipt is final: accepted cannot become refused, or offered again.
			wantCode(t, c.notify(m.Info.MessageID, siobroker.AsyncReceipt{Resend: true}), siobroker.CodeAsyncReceipted)
			if res.RequestMessageID != id {
				t.Errorf("q:result/requestMessageId %q, want the chain %s (the REQUEST carried no messageId)", res.RequestMessageID, id)
			}
		})
	}
}

// TestAsyncChannelV10States: every state is reachable and reported; a refusal for good drops the
// reply from the mailbox.
func TestAsyncChannelV10States(t *testing.T) {
	h := newHarness(t, nil)
	c := acClient{t: t, h: h, signer: userSigner, placement: signing.PlacementWSSETokenTimestamp}
	failed, err := c.sendMessage(soap.ACMessageInfo{}, failService)
	if err != nil {
		t.Fatal(err)
	}
	stopped, err := c.sendMessage(soap.ACMessageInfo{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := h.db.StopAsync(context.Background(), stopped, "operator: source withdrawn", h.clock.Now()); err != nil || !ok {
		t.Fatalf("StopAsync: %v %v", ok, err)
	}
	startWorker(t, h)
	job := waitState(t, h, failed, siobroker.AsyncNotDelivered)
	for id, want := range map[string]siobroker.AsyncState{failed: siobroker.AsyncNotDelivered, stopped: siobroker.AsyncStopped} {
		if st, err := c.status(id); err != nil || st.State != want || st.StatusCode != string(want) {
			t.Errorf("status of %s: %+v %v, want %s", id, st, err, want)
		}
	}
	msgs, err := c.messages("", "", 0)
	if err != nil || len(msgs) != 1 || msgs[0].Info.MessageID != job.ReplyMessageID {
		t.Fatalf("mailbox: %+v %v (a NOT_DELIVERED request's reply says why; a stopped one has none)", msgs, err)
	}
	if err := c.notify(job.ReplyMessageID, siobroker.AsyncReceipt{}); err != nil {
		t.Fatal(err)
	}
	if st, err := c.status(job.ReplyMessageID); err != nil || st.State != siobroker.AsyncNotDelivered {
		t.Errorf("reply refused for good: %+v %v", st, err)
	}
	if got, _ := c.messages("", "", 0); len(got) != 0 {
		t.Errorf("a reply refused for good is still offered")
	}
}

// TestAsyncChannelV10Mailbox: the mailbox holds the gateway contract's replies only; a reply of the
// broker's own variant is fetched by its chain, and never offered.
func TestAsyncChannelV10Mailbox(t *testing.T) {
	h := newHarness(t, nil)
	c := acClient{t: t, h: h, signer: userSigner, placement: signing.PlacementWSSE}
	raw, _ := h.build(t, reqSpec{services: []int{1}})
	ack, _, err := h.accept(raw)
	if err != nil {
		t.Fatal(err)
	}
	startWorker(t, h)
	waitState(t, h, ack.MessageID, siobroker.AsyncDelivered)
	if msgs, err := c.messages("", "", 0); err != nil || len(msgs) != 0 {
		t.Fatalf("mailbox holds %d messages of the own variant, %v", len(msgs), err)
	}
	if msgs, err := c.messages("", ack.MessageID, 0); err != nil || len(msgs) != 1 {
		t.Fatalf("by chain: %d, %v", len(msgs), err)
	}
	// The service must be the request's.
	body := soap.NewACGetMessages(c.id(), "OTHER_SERVICE", "", ack.MessageID, "MVD_IS_ERDR", 0, h.clock.Now())
	_, err = c.call(c.sign(body))
	wantCode(t, err, siobroker.CodeSchema)
}

// TestFetchResignsTimestamp: a stored reply whose signature carries a wsu:Timestamp is signed anew
// when it is fetched later, so that its Timestamp has not expired; its Body is the one stored.
func TestFetchResignsTimestamp(t *testing.T) {
	h := newHarness(t, nil)
	p := signing.PlacementWSSETokenTimestamp
	raw, _ := h.build(t, reqSpec{placement: p, services: []int{1}})
	ack, _, err := h.accept(raw)
	if err != nil {
		t.Fatal(err)
	}
	startWorker(t, h)
	job := waitState(t, h, ack.MessageID, siobroker.AsyncDelivered)
	h.clock.Advance(2 * signing.ReplyTimestampTTL)
	fetched, _, err := h.accept(h.asyncQuery(t, soap.AsyncFetchQuery, ack.MessageID, userSigner, p))
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(fetched.Bytes); err != nil {
		t.Fatal(err)
	}
	v, err := mustVerifier(t, signing.VerifierConfig{Trust: trust, AnySigner: true, Timestamps: signing.TimestampPolicy{Clock: h.clock, Skew: time.Minute}}).
		Verify(context.Background(), doc, h.clock.Now())
	if err != nil {
		t.Fatalf("the fetched reply: %v", err)
	}
	stored := etree.NewDocument()
	if err := stored.ReadFromBytes(job.Reply); err != nil {
		t.Fatal(err)
	}
	wantInfo, wantRes, err := soap.ParseResponse(soap.Body(stored))
	if err != nil {
		t.Fatal(err)
	}
	gotInfo, gotRes, err := soap.ParseResponse(v.Signed)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotInfo, wantInfo) || !reflect.DeepEqual(gotRes, wantRes) {
		t.Errorf("the fetched reply says\n%+v %+v\nthe stored one\n%+v %+v", gotInfo, gotRes, wantInfo, wantRes)
	}
}

// TestAsyncChannelV10Refusals: each with its code, and the fault's detail element is the
// operation's own.
func TestAsyncChannelV10Refusals(t *testing.T) {
	h := newHarness(t, nil)
	c := acClient{t: t, h: h, signer: userSigner, placement: signing.PlacementWSSEToken}
	id, err := c.sendMessage(soap.ACMessageInfo{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	other := acClient{t: t, h: h, signer: ecdsaSigner, placement: signing.PlacementWSSE}
	_, err = other.status(id)
	wantCode(t, err, siobroker.CodeAsyncUnknown)
	_, err = other.messages("", id, 0)
	wantCode(t, err, siobroker.CodeAsyncUnknown)
	wantCode(t, other.notify(id, siobroker.AsyncReceipt{Accepted: true}), siobroker.CodeAsyncUnknown)
	_, err = c.status("no-such-id")
	wantCode(t, err, siobroker.CodeAsyncUnknown)

	_, err = c.sendMessage(soap.ACMessageInfo{MessageType: soap.ACResponse, CorrelationID: id}, 1)
	wantCode(t, err, siobroker.CodeSchema)
	_, err = c.sendMessage(soap.ACMessageInfo{CorrelationID: id}, 1)
	wantCode(t, err, siobroker.CodeSchema)
	// A notification before there is a reply, and one naming the request rather than its reply.
	job, _, _ := h.db.AsyncJob(context.Background(), id)
	wantCode(t, c.notify(job.ReplyMessageID, siobroker.AsyncReceipt{Accepted: true}), siobroker.CodeAsyncPending)
	wantCode(t, c.notify(id, siobroker.AsyncReceipt{Accepted: true}), siobroker.CodeSchema)

	// A replayed call, and a getMessages without a date.
	raw := c.sign(soap.NewACGetMessageStatus(c.id(), id, "MVD_IS_ERDR", h.clock.Now()))
	if _, err := c.call(raw); err != nil {
		t.Fatal(err)
	}
	_, err = c.call(raw)
	wantCode(t, err, siobroker.CodeReplayID)
	undated := soap.NewACGetMessages(c.id(), "SIO_PSO_QUERY", "", "", "MVD_IS_ERDR", 0, h.clock.Now())
	rd := undated.FindElement("//requestDate")
	rd.Parent().RemoveChild(rd)
	_, err = c.call(c.sign(undated))
	wantCode(t, err, siobroker.CodeSchema)

	// Unsigned, and signed in the enveloped placement only.
	unsigned, _ := soap.Serialize(soap.NewACGetMessageStatus(c.id(), id, "MVD_IS_ERDR", h.clock.Now()))
	reply, req, err := h.accept(unsigned)
	wantCode(t, err, siobroker.CodeSigMissing)
	if reply != nil || req.Operation != soap.ACGetMessageStatus {
		t.Fatalf("operation %q", req.Operation)
	}
	fault := soap.FaultXMLFor(req.Operation, err, h.clock.Now())
	if !bytes.Contains(fault, []byte(`getMessageStatusFault1_getMessageStatusFault xmlns:typ="http://bip.bee.kz/AsyncChannel/v10/Types"`)) {
		t.Errorf("fault detail:\n%s", fault)
	}
	if parsed, ok := soap.ParseFault(fault); !ok || parsed.Code != siobroker.CodeSigMissing {
		t.Errorf("ParseFault: %+v %v", parsed, ok)
	}
}
