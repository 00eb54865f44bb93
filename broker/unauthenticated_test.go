package broker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// unsignedEnvelope is a SendMessage of about size bytes with no signature, dated skew from the
// harness's clock: what anyone can post.
func unsignedEnvelope(t *testing.T, h *harness, size int, skew time.Duration) []byte {
	t.Helper()
	info := siobroker.RequestInfo{MessageID: fmt.Sprintf("unsigned-%d", msgSeq.Add(1)), ServiceID: "SIO_PSO_QUERY",
		MessageDate: h.clock.Now().Add(skew), SenderID: "ANYONE"}
	q := siobroker.Query{Basis: siobroker.BasisCriminal, Subject: siobroker.Subject{IIN: validIIN}, Services: []int{1}, Purpose: "x"}
	raw, err := soap.Serialize(soap.NewRequest(info, q))
	if err != nil {
		t.Fatal(err)
	}
	if pad := size - len(raw); pad > 0 {
		raw = bytes.Replace(raw, []byte("<q:purpose>x"), []byte("<q:purpose>x"+strings.Repeat("y", pad)), 1)
	}
	return raw
}

func handleFrom(h *harness, client string, raw []byte) (Request, error) {
	ctx, cancel := context.WithTimeout(WithClient(context.Background(), client), 5*time.Second)
	defer cancel()
	_, seen, err := h.broker.Handle(ctx, bytes.NewReader(raw), "text/xml; charset=utf-8")
	return seen, err
}

func refusals(t *testing.T, h *harness) []siobroker.JournalRecord {
	t.Helper()
	recs, err := h.db.Journal().Query(context.Background(), siobroker.JournalFilter{Kinds: []siobroker.JournalKind{siobroker.JournalRefusal}})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestUnauthenticatedRefusalKeepsDigestNotBody: an unsigned envelope of almost 1 MiB with an old
// messageDate is refused, and its refusal keeps the body's size, digest and first bytes, in less
// than 1 KiB, never the body.
func TestUnauthenticatedRefusalKeepsDigestNotBody(t *testing.T) {
	h := newHarness(t, nil)
	body := unsignedEnvelope(t, h, soap.DefaultMaxBytes-1024, -time.Hour)
	seen, err := handleFrom(h, "192.0.2.7:41000", body)
	if siobroker.ErrorCode(err) != siobroker.CodeReplayDate {
		t.Fatalf("error %v, want %s", err, siobroker.CodeReplayDate)
	}
	recs := journalOf(t, h, seen.RequestID)
	if len(recs) != 1 || recs[0].Kind != siobroker.JournalRefusal || recs[0].Code != string(siobroker.CodeReplayDate) {
		t.Fatalf("records %+v, want one refusal with %s", recs, siobroker.CodeReplayDate)
	}
	if n := len(recs[0].Data); n >= 1024 {
		t.Errorf("the refusal's data is %d bytes, want less than 1 KiB for a body of %d", n, len(body))
	}
	var data struct {
		Message string     `json:"message"`
		Client  string     `json:"client"`
		Body    BodyDigest `json:"body"`
		Request []byte     `json:"request"`
	}
	if err := json.Unmarshal(recs[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if data.Body.Size != len(body) || data.Body.SHA256 != hex.EncodeToString(sum[:]) ||
		data.Body.Prefix != string(body[:DefaultRefusalPrefixBytes]) {
		t.Errorf("body %+v, want size %d, its SHA-256 and its first %d bytes", data.Body, len(body), DefaultRefusalPrefixBytes)
	}
	if data.Request != nil || data.Message == "" || data.Client != "192.0.2.7" {
		t.Errorf("refusal %+v: want the message and the client, no request", data)
	}
	if recs[0].SignerIIN != "" {
		t.Errorf("signer %q of a request whose signature was never verified", recs[0].SignerIIN)
	}
}

// TestUnauthenticatedRefusalCutsLongIDs: the unsigned messageId is kept no longer than an id.
func TestUnauthenticatedRefusalCutsLongIDs(t *testing.T) {
	h := newHarness(t, nil)
	body := unsignedEnvelope(t, h, 0, -time.Hour)
	long := strings.Repeat("é", 50000)
	// Only in the text of messageId (and senderId): an attribute value this long is refused by
	// the envelope's limits before any id is read.
	body = bytes.ReplaceAll(body, []byte(">unsigned-"), []byte(">"+long))
	seen, err := handleFrom(h, "192.0.2.7", body)
	if err == nil {
		t.Fatal("an unsigned request was answered")
	}
	recs := journalOf(t, h, seen.RequestID)
	if len(recs) != 1 || len(recs[0].MessageID) > refusalIDBytes || !strings.HasPrefix(recs[0].MessageID, "éé") {
		t.Fatalf("records %+v, want one refusal with the messageId cut to %d bytes", recs, refusalIDBytes)
	}
}

func TestTruncateUTF8(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abc", 2, "ab"},
		{"aé", 2, "a"}, // the cut falls inside é
		{"aé", 3, "aé"},
		{"a€b", 3, "a"}, // inside a three-byte character
		{"a\xffb", 3, "a\uFFFDb"},
		{"", 0, ""},
	} {
		if got := truncateUTF8(tc.in, tc.n); got != tc.want {
			t.Errorf("truncateUTF8(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// TestUnauthenticatedRefusalsBounded: past the bound per client (3) and in total (5) a minute,
// refusals of unauthenticated requests are counted, not journaled one by one; the count, codes
// and bytes of each client are journaled as its summary when the minute ends. A client within
// its bound is unaffected by another's flood until the total is reached.
func TestUnauthenticatedRefusalsBounded(t *testing.T) {
	var mu sync.Mutex
	observed := map[string]int{}
	h := newHarnessWith(t, harnessOpts{
		unauthenticated: UnauthenticatedLimits{PerClientPerMinute: 3, TotalPerMinute: 5},
		observeUnauthenticated: func(c siobroker.Code, summarised bool) {
			mu.Lock()
			defer mu.Unlock()
			observed[fmt.Sprintf("%s/%v", c, summarised)]++
		},
	})
	// The minute starts now, so that every refusal below falls in it.
	h.clock.Set(h.clock.Now().Truncate(time.Minute).Add(time.Second))
	body := unsignedEnvelope(t, h, 4096, -time.Hour)
	send := func(client string, n int) {
		for range n {
			if _, err := handleFrom(h, client, body); siobroker.ErrorCode(err) != siobroker.CodeReplayDate {
				t.Fatalf("error %v, want %s", err, siobroker.CodeReplayDate)
			}
		}
	}
	send("198.51.100.1:1000", 5)      // 3 journaled, 2 summarised
	send("198.51.100.2:1000", 1)      // journaled: its own bound is untouched
	send("[2001:db8:1:1::1]:1000", 1) // journaled: the fifth, the total's last
	send("[2001:db8:1:1::2]:1000", 1) // summarised: the total is spent (same /64)
	send("198.51.100.3", 1)           // summarised likewise
	byClient := map[string]int{}
	for _, r := range refusals(t, h) {
		var d unauthenticatedRefusal
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatal(err)
		}
		byClient[d.Client]++
	}
	want := map[string]int{"198.51.100.1": 3, "198.51.100.2": 1, "2001:db8:1:1::/64": 1}
	if fmt.Sprint(byClient) != fmt.Sprint(want) {
		t.Fatalf("refusals journaled by client %v, want %v", byClient, want)
	}

	h.clock.Advance(time.Minute)
	h.broker.FlushRefusalSummaries(context.Background())
	sums := map[string]RefusalSummary{}
	for _, r := range refusals(t, h) {
		if r.Code != RefusalSummaryCode {
			continue
		}
		var s RefusalSummary
		if err := json.Unmarshal(r.Data, &s); err != nil {
			t.Fatal(err)
		}
		sums[s.Client] = s
	}
	if len(sums) != 3 {
		t.Fatalf("summaries %+v, want one for each of the three clients past the bound", sums)
	}
	for client, n := range map[string]int{"198.51.100.1": 2, "2001:db8:1:1::/64": 1, "198.51.100.3": 1} {
		s := sums[client]
		if s.Count != n || s.Codes[string(siobroker.CodeReplayDate)] != n || s.Bytes != int64(n*len(body)) ||
			s.To.Sub(s.From) != time.Minute {
			t.Errorf("summary of %s: %+v, want %d refusals of %d bytes each", client, s, n, len(body))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got := fmt.Sprint(observed); got != fmt.Sprint(map[string]int{"SIO-REPLAY-DATE/false": 5, "SIO-REPLAY-DATE/true": 4}) {
		t.Errorf("observed %s, want 5 journaled and 4 summarised", got)
	}
	if err := h.db.Journal().Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestAuthenticatedRefusalKeepsRequest: a replay, refused after its signature verified, is refused with the raw request kept, as before: its signer answers for it.
func TestAuthenticatedRefusalKeepsRequest(t *testing.T) {
	h := newHarness(t, nil)
	raw, _ := h.build(t, reqSpec{services: []int{1}})
	// Replay the same request: the second is refused after its signature verified.
	if _, _, err := h.handle(raw); err != nil {
		t.Fatal(err)
	}
	_, seen, err := h.handle(raw)
	if err == nil {
		t.Fatal("a replay was answered")
	}
	recs := journalOf(t, h, seen.RequestID)
	if len(recs) != 1 || recs[0].SignerIIN == "" {
		t.Fatalf("records %+v, want one refusal with its signer", recs)
	}
	var data struct {
		Request []byte `json:"request"`
	}
	if err := json.Unmarshal(recs[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data.Request, raw) {
		t.Error("the refusal of an authenticated request does not keep it")
	}
}

// TestUnauthenticatedRefusalDigestsWhatWasRead: a body that is not even read as an envelope (a
// DOCTYPE), and one refused on the asynchronous endpoint, have their size and digest in their
// refusal all the same.
func TestUnauthenticatedRefusalDigestsWhatWasRead(t *testing.T) {
	h := newHarness(t, nil)
	doctype := []byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "a">]><x>` + strings.Repeat("z", 10000) + `</x>`)
	old := unsignedEnvelope(t, h, 200000, -time.Hour)
	for _, tc := range []struct {
		name     string
		pipeline func(context.Context, *bytes.Reader) (Request, error)
		body     []byte
		code     siobroker.Code
	}{
		{"sync doctype", func(ctx context.Context, r *bytes.Reader) (Request, error) {
			_, seen, err := h.broker.Handle(ctx, r, "text/xml; charset=utf-8")
			return seen, err
		}, doctype, siobroker.CodeDoctype},
		{"async old date", func(ctx context.Context, r *bytes.Reader) (Request, error) {
			_, seen, err := h.broker.Accept(ctx, r, "text/xml; charset=utf-8")
			return seen, err
		}, old, siobroker.CodeReplayDate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen, err := tc.pipeline(WithClient(context.Background(), "192.0.2.9:1"), bytes.NewReader(tc.body))
			if siobroker.ErrorCode(err) != tc.code {
				t.Fatalf("error %v, want %s", err, tc.code)
			}
			recs := journalOf(t, h, seen.RequestID)
			if len(recs) != 1 {
				t.Fatalf("records %+v, want the refusal", recs)
			}
			var data unauthenticatedRefusal
			if err := json.Unmarshal(recs[0].Data, &data); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(tc.body)
			if data.Body.Size != len(tc.body) || data.Body.SHA256 != hex.EncodeToString(sum[:]) ||
				data.Body.Prefix != string(tc.body[:DefaultRefusalPrefixBytes]) || len(recs[0].Data) >= 1024 {
				t.Errorf("refusal %s: body %+v, want size %d, its digest and prefix, in less than 1 KiB", recs[0].Data, data.Body, len(tc.body))
			}
		})
	}
}

// TestRefusalSummaryAtShutdown: refusals counted in a minute that has not ended are journaled as
// their summary when the broker shuts down, so that none goes unaccounted for.
func TestRefusalSummaryAtShutdown(t *testing.T) {
	h := newHarnessWith(t, harnessOpts{unauthenticated: UnauthenticatedLimits{PerClientPerMinute: 1, TotalPerMinute: 10}})
	h.clock.Set(h.clock.Now().Truncate(time.Minute).Add(time.Second))
	body := unsignedEnvelope(t, h, 0, -time.Hour)
	for range 3 {
		if _, err := handleFrom(h, "192.0.2.1", body); siobroker.ErrorCode(err) != siobroker.CodeReplayDate {
			t.Fatalf("error %v, want %s", err, siobroker.CodeReplayDate)
		}
	}
	h.broker.Shutdown()
	var got []RefusalSummary
	for _, r := range refusals(t, h) {
		if r.Code == RefusalSummaryCode {
			var s RefusalSummary
			if err := json.Unmarshal(r.Data, &s); err != nil {
				t.Fatal(err)
			}
			got = append(got, s)
		}
	}
	if len(got) != 1 || got[0].Client != "192.0.2.1" || got[0].Count != 2 {
		t.Fatalf("summaries %+v, want one of 192.0.2.1 with the 2 refusals past its bound", got)
	}
}

// TestRefusalSummariesBoundedInNumber: past MaxSummarisedClients clients in a minute, further
// clients share one summary, so that many addresses cannot make one record each.
func TestRefusalSummariesBoundedInNumber(t *testing.T) {
	h := newHarnessWith(t, harnessOpts{unauthenticated: UnauthenticatedLimits{PerClientPerMinute: 1, TotalPerMinute: 1}})
	h.clock.Set(h.clock.Now().Truncate(time.Minute).Add(time.Second))
	body := unsignedEnvelope(t, h, 0, -time.Hour)
	const clients = MaxSummarisedClients + 3 // the first is journaled one by one, two go to "*"
	for i := range clients {
		if _, err := handleFrom(h, fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), body); siobroker.ErrorCode(err) != siobroker.CodeReplayDate {
			t.Fatalf("error %v, want %s", err, siobroker.CodeReplayDate)
		}
	}
	h.clock.Advance(time.Minute)
	h.broker.FlushRefusalSummaries(context.Background())
	var summaries, individual int
	var other RefusalSummary
	for _, r := range refusals(t, h) {
		if r.Code != RefusalSummaryCode {
			individual++
			continue
		}
		summaries++
		var s RefusalSummary
		if err := json.Unmarshal(r.Data, &s); err != nil {
			t.Fatal(err)
		}
		if s.Client == OtherClients {
			other = s
		}
	}
	if individual != 1 || summaries != MaxSummarisedClients+1 || other.Count != 2 {
		t.Errorf("%d refusals one by one and %d summaries (%q: %d), want 1 and %d with 2 under %q",
			individual, summaries, OtherClients, other.Count, MaxSummarisedClients+1, OtherClients)
	}
}

// TestIssue16EnvelopeRefusedByTheReader: the penetration test's envelope (10,000 namespace
// declarations on the Envelope, 5,000 children each declaring one more, 321 KB) took 8 s of CPU
// to refuse unsigned. The reader now refuses it for its declarations, at the Envelope's start tag,
// and the refusal is journaled like any other unauthenticated one.
func TestIssue16EnvelopeRefusedByTheReader(t *testing.T) {
	h := newHarness(t, nil)
	raw := unsignedEnvelope(t, h, 0, 0)
	var decls, children strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&decls, ` xmlns:n%d="u:%d"`, i, i)
	}
	for i := range 5000 {
		fmt.Fprintf(&children, `<q:c xmlns:m%d="u:"/>`, i)
	}
	raw = bytes.Replace(raw, []byte("<soapenv:Envelope"), []byte("<soapenv:Envelope"+decls.String()), 1)
	raw = bytes.Replace(raw, []byte("<q:purpose>"), []byte(children.String()+"<q:purpose>"), 1)
	if len(raw) < 300<<10 || len(raw) > 1<<20 {
		t.Fatalf("the envelope is %d bytes, want the issue's size (about 321 KB)", len(raw))
	}
	seen, err := handleFrom(h, "192.0.2.7", raw)
	if got := siobroker.ErrorCode(err); got != siobroker.CodeTooDeep {
		t.Fatalf("code %s, want %s (%v)", got, siobroker.CodeTooDeep, err)
	}
	if msg := siobroker.ErrorMessage(err); !strings.Contains(msg, "declares more than 16 namespaces") {
		t.Errorf("message %q does not say which limit", msg)
	}
	if recs := journalOf(t, h, seen.RequestID); len(recs) != 1 || recs[0].Code != string(siobroker.CodeTooDeep) {
		t.Errorf("records %+v, want one refusal with %s", recs, siobroker.CodeTooDeep)
	}
}

// TestRefuseUnreadWithinTheBounds: a refusal decided before the body was read (a client over its
// HTTP limits) is journaled with its client, code and declared length, no body, within the same
// per-client budget as unsigned requests; past it, it is counted into the client's summary.
func TestRefuseUnreadWithinTheBounds(t *testing.T) {
	var summarised atomic.Int32
	h := newHarnessWith(t, harnessOpts{unauthenticated: UnauthenticatedLimits{PerClientPerMinute: 2, TotalPerMinute: 10},
		observeUnauthenticated: func(c siobroker.Code, s bool) {
			if s {
				summarised.Add(1)
			}
		}})
	h.clock.Set(h.clock.Now().Truncate(time.Minute).Add(time.Second))
	ctx := WithClient(context.Background(), "192.0.2.9:5000")
	// One unsigned request spends one of the client's two; the first unread refusal the other.
	if _, err := handleFrom(h, "192.0.2.9:5001", unsignedEnvelope(t, h, 0, -time.Hour)); err == nil {
		t.Fatal("an unsigned request was answered")
	}
	cause := siobroker.Errorf(siobroker.CodeRateLimited, "too many requests of this client address")
	first := h.broker.RefuseUnread(ctx, cause, 4096)
	for range 3 {
		h.broker.RefuseUnread(ctx, cause, -1)
	}
	recs := journalOf(t, h, first.RequestID)
	if len(recs) != 1 || recs[0].Code != string(siobroker.CodeRateLimited) || recs[0].MessageID != "" {
		t.Fatalf("records %+v, want one refusal %s", recs, siobroker.CodeRateLimited)
	}
	var d unauthenticatedRefusal
	if err := json.Unmarshal(recs[0].Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.Client != "192.0.2.9" || d.Body != nil || d.ContentLength != 4096 || d.Message != cause.Message {
		t.Errorf("refusal %s: want the client, the message and the declared length, no body", recs[0].Data)
	}
	if n := summarised.Load(); n != 3 {
		t.Errorf("%d refusals summarised, want the 3 past the client's budget", n)
	}
	h.clock.Advance(time.Minute)
	h.broker.FlushRefusalSummaries(context.Background())
	var sum RefusalSummary
	for _, r := range refusals(t, h) {
		if r.Code == RefusalSummaryCode {
			if err := json.Unmarshal(r.Data, &sum); err != nil {
				t.Fatal(err)
			}
		}
	}
	if sum.Client != "192.0.2.9" || sum.Count != 3 || sum.Codes[string(siobroker.CodeRateLimited)] != 3 || sum.Bytes != 0 {
		t.Errorf("summary %+v, want the 3 unread refusals of 192.0.2.9", sum)
	}
}
