package intake

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
)

var issued = time.Date(2026, 12, 6, 10, 0, 0, 0, siobroker.Astana)

func loginEnvelope(t *testing.T, messageID string, at time.Time) *etree.Document {
	t.Helper()
	return soap.NewDashboardLoginRequest(siobroker.RequestInfo{
		MessageID: messageID, MessageDate: at, SenderID: "test-system", ServiceID: "dashboard-login",
	})
}

// verifierOf stands in for signing.Verifier: these tests are about what intake does with its
// answer, the verifier's own behaviour is tested in package signing.
func verifierOf(placement signing.Placement, signed func(*etree.Document) *etree.Element, seenAt *time.Time) func(context.Context, *etree.Document, time.Time) (*signing.Verified, error) {
	return func(_ context.Context, doc *etree.Document, at time.Time) (*signing.Verified, error) {
		*seenAt = at
		return &signing.Verified{Placement: placement, Signed: signed(doc)}, nil
	}
}

func TestVerifySendMessageRefusesMessageDateOutsideWindow(t *testing.T) {
	clock := testclock.New(issued.Add(6 * time.Minute))
	var at time.Time
	verify := verifierOf(signing.PlacementWSSE, soap.Body, &at)
	_, err := VerifySendMessage(context.Background(), loginEnvelope(t, "m-1", issued), 5*time.Minute, clock, verify)
	if got := siobroker.ErrorCode(err); got != siobroker.CodeReplayDate {
		t.Fatalf("code = %s, want %s (err %v)", got, siobroker.CodeReplayDate, err)
	}
	if !at.IsZero() {
		t.Fatal("the signature was verified for a message outside the window")
	}
}

func TestVerifySendMessageVerifiesAtMessageDateAndTakesSignedBody(t *testing.T) {
	clock := testclock.New(issued.Add(time.Minute))
	var at time.Time
	doc := loginEnvelope(t, "m-2", issued)
	// The verifier hands back a copy of the Body, as the real one does: the caller's tree is
	// never what intake reads.
	signedBody := soap.Body(loginEnvelope(t, "m-2", issued)).Copy()
	verify := verifierOf(signing.PlacementWSSE, func(*etree.Document) *etree.Element { return signedBody }, &at)
	sr, err := VerifySendMessage(context.Background(), doc, 5*time.Minute, clock, verify)
	if err != nil {
		t.Fatal(err)
	}
	if !at.Equal(issued) {
		t.Errorf("verified at %s, want the message date %s", at, issued)
	}
	if sr.Info.MessageID != "m-2" || sr.Data == nil || sr.Data.Tag != "dashboardLogin" {
		t.Errorf("info %+v, data %v", sr.Info, sr.Data)
	}
	if !sr.Now.Equal(clock.Now()) {
		t.Errorf("Now = %s, want %s", sr.Now, clock.Now())
	}
}

func TestVerifySendMessageRefusesRequestInfoOutsideSignedBody(t *testing.T) {
	clock := testclock.New(issued)
	var at time.Time
	// The envelope says m-3, the signed Body m-other: a sender changed what the signature does
	// not cover.
	signedBody := soap.Body(loginEnvelope(t, "m-other", issued)).Copy()
	verify := verifierOf(signing.PlacementWSSE, func(*etree.Document) *etree.Element { return signedBody }, &at)
	_, err := VerifySendMessage(context.Background(), loginEnvelope(t, "m-3", issued), 5*time.Minute, clock, verify)
	if got := siobroker.ErrorCode(err); got != siobroker.CodeSigReference {
		t.Fatalf("code = %s, want %s (err %v)", got, siobroker.CodeSigReference, err)
	}
}

func TestVerifySendMessagePassesVerifierRefusal(t *testing.T) {
	clock := testclock.New(issued)
	refusal := siobroker.Errorf(siobroker.CodeSigInvalid, "digest mismatch")
	verify := func(context.Context, *etree.Document, time.Time) (*signing.Verified, error) { return nil, refusal }
	sr, err := VerifySendMessage(context.Background(), loginEnvelope(t, "m-4", issued), 5*time.Minute, clock, verify)
	if !errors.Is(err, refusal) {
		t.Fatalf("err = %v, want the verifier's refusal", err)
	}
	if sr.Info.MessageID != "m-4" {
		t.Errorf("the refusal lost what was learnt for the journal: %+v", sr.Info)
	}
}
