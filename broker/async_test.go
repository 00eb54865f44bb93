package broker

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
)

func (h *harness) accept(raw []byte) (*Reply, Request, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h.broker.Accept(ctx, bytes.NewReader(raw), "text/xml; charset=utf-8")
}

// asyncQuery builds a signed q:statusQuery or q:fetchQuery for the broker's id id.
func (h *harness) asyncQuery(t *testing.T, kind, id string, signer *signing.Signer, p signing.Placement) []byte {
	t.Helper()
	info := siobroker.RequestInfo{
		MessageID:   fmt.Sprintf("aq-%d-%d", time.Now().UnixNano(), msgSeq.Add(1)),
		ServiceID:   "SIO_PSO_QUERY",
		MessageDate: h.clock.Now(),
		SenderID:    "MVD_IS_ERDR",
	}
	doc := soap.NewAsyncQueryRequest(info, kind, id)
	if err := signer.Sign(doc, p); err != nil {
		t.Fatalf("sign %s: %v", kind, err)
	}
	raw, err := soap.Serialize(doc)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// parseStatus verifies a reply carrying q:asyncStatus and reads what its signature covers.
func parseStatus(t *testing.T, h *harness, reply *Reply, want signing.Placement) (soap.ResponseInfo, soap.AsyncStatus) {
	t.Helper()
	doc, _, err := soap.ReadResponseEnvelope(bytes.NewReader(reply.Bytes), "text/xml; charset=utf-8", soap.Limits{})
	if err != nil {
		t.Fatalf("ReadResponseEnvelope: %v\n%s", err, reply.Bytes)
	}
	v, err := mustVerifier(t, signing.VerifierConfig{Trust: trust, AnySigner: true}).Verify(context.Background(), doc, h.clock.Now())
	if err != nil {
		t.Fatalf("status signature: %v", err)
	}
	if v.Placement != want {
		t.Fatalf("status placement %s, want %s", v.Placement, want)
	}
	body := v.Signed
	if v.Placement == signing.PlacementEnveloped {
		body = soap.Body(doc)
	}
	info, st, err := soap.ParseAsyncStatusResponse(body)
	if err != nil {
		t.Fatalf("ParseAsyncStatusResponse: %v\n%s", err, reply.Bytes)
	}
	if v.Placement == signing.PlacementEnveloped {
		if st, err = soap.ParseAsyncStatus(v.Signed); err != nil {
			t.Fatalf("ParseAsyncStatus: %v", err)
		}
	}
	return info, st
}

// startWorker runs an AsyncWorker until the returned stop is called (or the test ends).
func startWorker(t *testing.T, h *harness) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w := &AsyncWorker{Broker: h.broker, Concurrency: 2, Poll: 20 * time.Millisecond}
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func waitState(t *testing.T, h *harness, id string, want siobroker.AsyncState) siobroker.AsyncJob {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, ok, err := h.db.AsyncJob(context.Background(), id)
		if err != nil || !ok {
			t.Fatalf("AsyncJob(%s): %v %v", id, ok, err)
		}
		if j.State == want {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s (%s), want %s", id, j.State, j.Reason, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) status(t *testing.T, id string, signer *signing.Signer, p signing.Placement) (soap.AsyncStatus, error) {
	t.Helper()
	reply, _, err := h.accept(h.asyncQuery(t, soap.AsyncStatusQuery, id, signer, p))
	if err != nil {
		return soap.AsyncStatus{}, err
	}
	info, st := parseStatus(t, h, reply, p)
	if info.StatusCode != string(st.State) {
		t.Fatalf("responseInfo status %s, asyncStatus state %s", info.StatusCode, st.State)
	}
	return st, nil
}

func TestAsyncAcceptProcessFetch(t *testing.T) {
	for _, p := range []signing.Placement{signing.PlacementWSSE, signing.PlacementEnveloped} {
		t.Run(string(p), func(t *testing.T) {
			h := newHarness(t, nil)
			raw, info := h.build(t, reqSpec{placement: p, services: []int{1, 5, 11}})
			ack, _, err := h.accept(raw)
			if err != nil {
				t.Fatalf("Accept: %v", err)
			}
			ackInfo, st := parseStatus(t, h, ack, p)
			id := ack.MessageID
			if ackInfo.MessageID != id || ackInfo.CorrelationID != info.MessageID || ackInfo.StatusCode != "ON_DELIVERY" {
				t.Fatalf("ack responseInfo %+v, want messageId %s correlationId %s ON_DELIVERY", ackInfo, id, info.MessageID)
			}
			if st.MessageID != id || st.CorrelationID != info.MessageID || st.RequestMessageID != info.MessageID || st.State != siobroker.AsyncOnDelivery {
				t.Fatalf("ack asyncStatus %+v", st)
			}
			if n := h.called(1); n != 0 {
				t.Fatalf("service 1 called %d times before the worker ran", n)
			}

			// Before the worker: on delivery, and nothing to fetch.
			if st, err := h.status(t, id, userSigner, p); err != nil || st.State != siobroker.AsyncOnDelivery {
				t.Fatalf("status before the worker: %+v %v", st, err)
			}
			_, _, err = h.accept(h.asyncQuery(t, soap.AsyncFetchQuery, id, userSigner, p))
			wantCode(t, err, siobroker.CodeAsyncPending)
			// Another signer, and an unknown id, get the same fault.
			_, err = h.status(t, id, ecdsaSigner, p)
			wantCode(t, err, siobroker.CodeAsyncUnknown)
			_, _, err = h.accept(h.asyncQuery(t, soap.AsyncFetchQuery, id, ecdsaSigner, p))
			wantCode(t, err, siobroker.CodeAsyncUnknown)
			_, err = h.status(t, "no-such-id", userSigner, p)
			wantCode(t, err, siobroker.CodeAsyncUnknown)

			startWorker(t, h)
			waitState(t, h, id, siobroker.AsyncDelivered)
			if st, err := h.status(t, id, userSigner, p); err != nil || st.State != siobroker.AsyncDelivered {
				t.Fatalf("status after the worker: %+v %v", st, err)
			}
			fetched, _, err := h.accept(h.asyncQuery(t, soap.AsyncFetchQuery, id, userSigner, p))
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			rinfo, res := h.parseReply(t, fetched, p)
			if rinfo.MessageID != id || rinfo.CorrelationID != info.MessageID || res.RequestMessageID != info.MessageID {
				t.Fatalf("fetched reply %+v answers %s, want %s/%s", rinfo, res.RequestMessageID, id, info.MessageID)
			}
			if res.SignerIIN != userSigner.IIN() || len(res.Services) != 3 {
				t.Fatalf("fetched result %+v", res)
			}
			for _, r := range res.Services {
				if r.Status != siobroker.StatusOK {
					t.Fatalf("service %d: %s %s", r.Service, r.Status, r.Reason)
				}
			}
			// The bytes are those stored, and those journaled.
			var replies int
			for _, r := range journalOf(t, h, id) {
				if r.Kind == siobroker.JournalReply {
					replies++
					if !bytes.Equal(r.Data, fetched.Bytes) {
						t.Fatal("journaled reply differs from the fetched one")
					}
				}
			}
			if replies != 1 {
				t.Fatalf("%d reply records, want 1", replies)
			}
		})
	}
}

func TestAsyncNotDelivered(t *testing.T) {
	h := newHarness(t, nil)
	raw, _ := h.build(t, reqSpec{services: []int{failService}})
	ack, _, err := h.accept(raw)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	startWorker(t, h)
	j := waitState(t, h, ack.MessageID, siobroker.AsyncNotDelivered)
	if !strings.Contains(j.Reason, "none of the 1 services") {
		t.Fatalf("reason %q", j.Reason)
	}
	st, err := h.status(t, ack.MessageID, userSigner, signing.PlacementWSSE)
	if err != nil || st.State != siobroker.AsyncNotDelivered || !strings.Contains(st.Message, j.Reason) {
		t.Fatalf("status %+v %v", st, err)
	}
	fetched, _, err := h.accept(h.asyncQuery(t, soap.AsyncFetchQuery, ack.MessageID, userSigner, signing.PlacementWSSE))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if _, res := h.parseReply(t, fetched, signing.PlacementWSSE); res.Services[0].Status != siobroker.StatusError {
		t.Fatalf("fetched %+v", res.Services)
	}
}

// TestAsyncChecksUpFront: the refusals of the synchronous path come at once, and nothing is
// stored.
func TestAsyncChecksUpFront(t *testing.T) {
	h := newHarness(t, nil)
	raw, _ := h.build(t, reqSpec{services: []int{1}})
	if _, _, err := h.accept(raw); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	_, _, err := h.accept(raw)
	wantCode(t, err, siobroker.CodeReplayID)
	raw, _ = h.build(t, reqSpec{services: []int{1}, skew: -time.Hour})
	_, _, err = h.accept(raw)
	wantCode(t, err, siobroker.CodeReplayDate)
	raw, _ = h.build(t, reqSpec{services: []int{1}, caseRef: siobroker.CaseRef{Number: "999999999999999"}})
	_, _, err = h.accept(raw)
	if err == nil {
		t.Fatal("a case not in the user's proceedings was accepted")
	}
	pending, err := h.db.PendingAsync(context.Background(), h.clock.Now())
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending %d %v, want only the first request", len(pending), err)
	}
}

func TestAsyncStopped(t *testing.T) {
	h := newHarness(t, nil)
	raw, _ := h.build(t, reqSpec{services: []int{1}})
	ack, _, err := h.accept(raw)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if ok, err := h.db.StopAsync(context.Background(), ack.MessageID, "operator test", h.clock.Now()); !ok || err != nil {
		t.Fatalf("StopAsync: %v %v", ok, err)
	}
	startWorker(t, h)
	time.Sleep(100 * time.Millisecond)
	if n := h.called(1); n != 0 {
		t.Fatalf("a stopped request reached its service %d times", n)
	}
	st, err := h.status(t, ack.MessageID, userSigner, signing.PlacementWSSE)
	if err != nil || st.State != siobroker.AsyncStopped {
		t.Fatalf("status %+v %v", st, err)
	}
	_, _, err = h.accept(h.asyncQuery(t, soap.AsyncFetchQuery, ack.MessageID, userSigner, signing.PlacementWSSE))
	wantCode(t, err, siobroker.CodeAsyncPending)
}

// TestAsyncDurable: a request accepted by a broker that stops before its worker runs is answered
// by the next broker over the same data directory.
// TestAsyncDurable: an accepted request survives a restart, and is answered by the next broker on
// the facts of its admission: the КГД service 37, asked with no article named, is decided on the
// case's qualification its registry gave then (App. 2 fn. 2), stored with the request.
func TestAsyncDurable(t *testing.T) {
	dir := t.TempDir()
	h1 := newHarnessWith(t, harnessOpts{dir: dir, idPrefix: "first"})
	raw, info := h1.build(t, reqSpec{placement: signing.PlacementEnveloped, services: []int{1, 2, 37}})
	ack, _, err := h1.accept(raw)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	id := ack.MessageID
	h1.stop() // the transport and the store are closed

	h2 := newHarnessWith(t, harnessOpts{dir: dir, idPrefix: "second"})
	startWorker(t, h2)
	waitState(t, h2, id, siobroker.AsyncDelivered)
	fetched, _, err := h2.accept(h2.asyncQuery(t, soap.AsyncFetchQuery, id, userSigner, signing.PlacementEnveloped))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	_, res := h2.parseReply(t, fetched, signing.PlacementEnveloped)
	if res.RequestMessageID != info.MessageID || len(res.Services) != 3 || res.Services[0].Status != siobroker.StatusOK {
		t.Fatalf("fetched %+v", res)
	}
	if r := res.Services[2]; r.Service != 37 || r.Status != siobroker.StatusOK {
		t.Errorf("service 37 after the restart: %+v, want ok on the case's articles stored at admission", r)
	}
	if h2.called(1) != 1 {
		t.Fatalf("service 1 called %d times by the second broker", h2.called(1))
	}
}

// TestSyncLateServices: a synchronous reply that went out without a late service says where the
// complete result will be; the broker keeps waiting and stores it as a DELIVERED asynchronous
// request under the reply's messageId.
func TestSyncLateServices(t *testing.T) {
	h := newHarnessWith(t, harnessOpts{asyncTimeout: 10 * time.Second, slowAnswers: true})
	raw, info := h.build(t, reqSpec{services: []int{1, slowService}})
	reply, _, err := h.handle(raw)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	ri, res := h.parseReply(t, reply, signing.PlacementWSSE)
	if ri.StatusCode != StatusPartial || res.Services[1].Status != siobroker.StatusTimeout {
		t.Fatalf("sync reply %s %+v", ri.StatusCode, res.Services)
	}
	if !strings.Contains(ri.StatusMessage, "by messageId "+ri.MessageID) {
		t.Fatalf("status message %q does not point to the asynchronous result", ri.StatusMessage)
	}
	waitState(t, h, ri.MessageID, siobroker.AsyncDelivered)
	fetched, _, err := h.accept(h.asyncQuery(t, soap.AsyncFetchQuery, ri.MessageID, userSigner, signing.PlacementWSSE))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	fi, full := h.parseReply(t, fetched, signing.PlacementWSSE)
	if fi.MessageID != ri.MessageID || full.RequestMessageID != info.MessageID || fi.StatusCode != StatusProcessed {
		t.Fatalf("complete reply %+v", fi)
	}
	for _, r := range full.Services {
		if r.Status != siobroker.StatusOK {
			t.Fatalf("service %d: %s", r.Service, r.Status)
		}
	}
	// A request whose services all answer in time leaves no asynchronous request behind.
	raw, _ = h.build(t, reqSpec{services: []int{1}})
	reply, _, err = h.handle(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := h.db.AsyncJob(context.Background(), reply.MessageID); ok {
		t.Fatal("a complete synchronous reply was stored as asynchronous")
	}
}

// TestSyncLateServicesShutdown: a broker shut down while waiting leaves the request ON_DELIVERY,
// and the worker of the next run resumes it despite the lease.
func TestSyncLateServicesShutdown(t *testing.T) {
	dir := t.TempDir()
	h1 := newHarnessWith(t, harnessOpts{dir: dir, idPrefix: "first", asyncTimeout: 10 * time.Second})
	raw, _ := h1.build(t, reqSpec{services: []int{1, slowService}})
	reply, _, err := h1.handle(raw)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	h1.broker.Shutdown()
	h1.stop()

	h2 := newHarnessWith(t, harnessOpts{dir: dir, idPrefix: "second", slowAnswers: true})
	startWorker(t, h2)
	waitState(t, h2, reply.MessageID, siobroker.AsyncDelivered)
}

// TestAsyncLateServices: an asynchronous request whose service misses its (synchronous) timeout
// is not ended NOT_DELIVERED: the broker waits for the late answer in the background, with the
// job leased to that wait so that the worker does not route it again, and stores the complete
// reply DELIVERED once it comes.
func TestAsyncLateServices(t *testing.T) {
	h := newHarnessWith(t, harnessOpts{asyncTimeout: 10 * time.Second, slowAnswers: true})
	raw, _ := h.build(t, reqSpec{services: []int{1, slowService}})
	ack, _, err := h.accept(raw)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	startWorker(t, h)
	j := waitState(t, h, ack.MessageID, siobroker.AsyncDelivered)
	_, res := h.parseReply(t, &Reply{Bytes: j.Reply}, signing.PlacementWSSE)
	for _, r := range res.Services {
		if r.Status != siobroker.StatusOK {
			t.Fatalf("service %d: %s %s, want ok", r.Service, r.Status, r.Reason)
		}
	}
	if n := h.called(slowService); n != 1 {
		t.Fatalf("the late service was asked %d times, want once (the wait holds the job)", n)
	}
}

// TestWorkerLeavesThisRunsHolds: a synchronous request taken before the worker's first scan (the
// HTTP server starts before the worker) is its own call's: the worker, scanning meanwhile, does
// not route it again, so the service is asked once. A hold an earlier run left is the worker's
// at once, since the start voided its lease (ResumeEarlierRun; TestSyncResumedAfterRestart).
func TestWorkerLeavesThisRunsHolds(t *testing.T) {
	g := newGate()
	h := newHarnessWith(t, harnessOpts{wrapDispatcher: g.wrap})
	raw, _ := h.build(t, reqSpec{services: []int{gatedService}})
	done, release := g.sendSync(t, h, raw)
	startWorker(t, h)
	scans := func() uint64 {
		h.broker.asyncSlots.mu.Lock()
		defer h.broker.asyncSlots.mu.Unlock()
		return h.broker.asyncSlots.scans
	}
	for deadline := time.Now().Add(10 * time.Second); scans() < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("the worker scanned %d times in 10 s", scans())
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case again := <-g.held:
		close(again)
		t.Error("the worker routed a request its own call was serving")
	case <-time.After(100 * time.Millisecond):
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("the synchronous request: %v", err)
	}
	if n := h.called(gatedService); n != 1 {
		t.Errorf("service %d asked %d times, want once", gatedService, n)
	}
}

// TestSyncResumedAfterRestart: a synchronous request whose broker stopped while its call was
// serving it (its hold leased to the call for as long as its services may take) is completed by
// the next broker's worker at once: the start voided the lease of the call that went.
func TestSyncResumedAfterRestart(t *testing.T) {
	dir := t.TempDir()
	first := newHarnessWith(t, harnessOpts{dir: dir})
	raw, info := first.build(t, reqSpec{services: []int{1, 5}})
	job := first.broker.jobOf(Request{RequestID: "held-1", SignerIIN: "750312300458", Placement: signing.PlacementEnveloped}, info, mustQuery(t, raw), first.clock.Now())
	if err := first.broker.holdSync(context.Background(), &job); err != nil {
		t.Fatal(err)
	}
	first.stop()

	h := newHarnessWith(t, harnessOpts{dir: dir})
	h.clock.Set(first.clock.Now())
	startWorker(t, h)
	waitState(t, h, job.RequestID, siobroker.AsyncDelivered)
	if h.called(1) != 1 || h.called(5) != 1 {
		t.Errorf("services asked %d and %d times, want once each", h.called(1), h.called(5))
	}
}
