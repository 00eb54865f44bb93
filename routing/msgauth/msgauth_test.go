package msgauth

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker/schemas"
)

// testMaster is a fixed master key: 0x00, 0x01, … 0x1f.
func testMaster(t *testing.T, first byte) Master {
	t.Helper()
	secret := make([]byte, KeySize)
	for i := range secret {
		secret[i] = first + byte(i)
	}
	m, err := MasterFromBytes(secret)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustBroker(t *testing.T, cfg BrokerConfig) *Broker {
	t.Helper()
	b, err := NewBroker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustAdapter(t *testing.T, cfg AdapterConfig) *Adapter {
	t.Helper()
	a, err := NewAdapter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustDerive(t *testing.T, m Master, adapter string) Key {
	t.Helper()
	k, err := m.Derive(adapter)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestKnownAnswer holds Derive, the key id and a service message's MAC to values computed
// independently (Python's hmac and hashlib, HKDF by RFC 5869), for an adapter written in another
// language to test against.
func TestKnownAnswer(t *testing.T) {
	k := mustDerive(t, testMaster(t, 0), "kgd-adapter-1")
	if got, want := hex.EncodeToString(k.secret), "405575e26aef65097f9ccb60e8d15723400bafeca1450c39cf5f454eee306f41"; got != want {
		t.Errorf("key %s, want %s", got, want)
	}
	if got, want := k.ID(), "4096b62b01789b73"; got != want {
		t.Errorf("key id %s, want %s", got, want)
	}
	meta := map[string]string{schemas.MetaAuthAdapter: "kgd-adapter-1", schemas.MetaAuthKey: k.ID(), schemas.MetaRequestID: "r-1",
		schemas.MetaService: "37", schemas.MetaReplyTo: "sio.reply.b1", schemas.MetaAuthExpires: "2026-12-01T10:01:00Z"}
	if got, want := encodeMAC(mac(k.secret, kindRequest, requestFields(meta), []byte(`{"requestId":"r-1"}`))),
		"v1:dd_FWVAxFYoIx82VBxkXZftIBuXJzH5D_lyQ_pDcj4k"; got != want {
		t.Errorf("MAC %s, want %s", got, want)
	}
}

// TestKnownAnswerCaseCheck holds a case check's and a case answer's MAC to values computed
// independently (Python's hmac, hashlib and HKDF by RFC 5869), for a registry adapter written in
// another language.
func TestKnownAnswerCaseCheck(t *testing.T) {
	k := mustDerive(t, testMaster(t, 0), "erdr-pg")
	if got, want := k.ID(), "4886633456a54ed5"; got != want {
		t.Errorf("key id %s, want %s", got, want)
	}
	check := map[string]string{schemas.MetaAuthAdapter: "erdr-pg", schemas.MetaAuthKey: k.ID(), schemas.MetaRequestID: "r-1",
		schemas.MetaRegistry: "erdr", schemas.MetaReplyTo: "sio.reply.b1", schemas.MetaAuthExpires: "2026-12-01T10:01:00Z"}
	if got, want := encodeMAC(mac(k.secret, kindCaseCheck, caseCheckFields(check), []byte(`{"requestId":"r-1"}`))),
		"v1:SvALGs6GkuhZQ-k9PW6ovb1jFE_FRfYMWZdCijki6GQ"; got != want {
		t.Errorf("case check MAC %s, want %s", got, want)
	}
	answer := map[string]string{schemas.MetaAuthAdapter: "erdr-pg", schemas.MetaAuthKey: k.ID(), schemas.MetaCorrelation: "r-1/case",
		schemas.MetaRegistry: "erdr"}
	if got, want := encodeMAC(mac(k.secret, kindCaseAnswer, caseAnswerFields(answer), []byte(`{"requestId":"r-1","found":true}`))),
		"v1:2MPL5ocjxn4mQx-Yl4_aVcazGM3m-KaZHTdnsPx70mQ"; got != want {
		t.Errorf("case answer MAC %s, want %s", got, want)
	}
}

// TestRequest: a service message the broker made for an adapter is accepted by it, with the key
// that made it; anything else is refused with its reason, before its source could be asked.
func TestRequest(t *testing.T) {
	m := testMaster(t, 0)
	broker := mustBroker(t, BrokerConfig{Master: m, Validity: time.Minute})
	adapter := mustAdapter(t, AdapterConfig{Key: mustDerive(t, m, "kgd")})
	deadline := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	now := deadline.Add(-5 * time.Second)
	payload := []byte(`{"requestId":"r-1","service":37,"replyTo":"sio.reply.b1","subject":{"bin":"050540004455"}}`)
	signed := func(t *testing.T) map[string]string {
		meta := map[string]string{schemas.MetaRequestID: "r-1", schemas.MetaService: "37", schemas.MetaReplyTo: "sio.reply.b1",
			schemas.MetaMessageID: "m-1"}
		if err := broker.SignRequest("kgd", meta, payload, deadline); err != nil {
			t.Fatal(err)
		}
		return meta
	}

	meta := signed(t)
	if meta[schemas.MetaAuthExpires] != "2026-12-01T10:01:00Z" || meta[schemas.MetaAuthAdapter] != "kgd" ||
		!strings.HasPrefix(meta[schemas.MetaAuthMAC], "v1:") {
		t.Fatalf("metadata %v", meta)
	}
	k, err := adapter.CheckRequest(meta, payload, now)
	if err != nil || k.ID() != adapter.key.ID() {
		t.Fatalf("an authentic message: %v (key %s)", err, k.ID())
	}
	// Metadata the MAC does not cover may change (the transport adds its own headers), and the
	// W3C trace context may be added or changed (tracing; see the package comment).
	meta[schemas.MetaMessageID], meta["x-delivery-count"] = "other", "2"
	meta["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if _, err := adapter.CheckRequest(meta, payload, now); err != nil {
		t.Fatalf("with another message id: %v", err)
	}

	other := mustBroker(t, BrokerConfig{Master: testMaster(t, 100)})
	for _, tt := range []struct {
		name    string
		change  func(meta map[string]string) []byte // returns the payload to check
		at      time.Time
		reason  Reason
		message string
	}{
		{"tampered content", func(map[string]string) []byte {
			return bytes.Replace(payload, []byte("050540004455"), []byte("050540004456"), 1)
		},
			now, ReasonMismatch, "does not match"},
		{"wrong request id", func(meta map[string]string) []byte { meta[schemas.MetaRequestID] = "r-2"; return payload }, now, ReasonMismatch, "does not match"},
		{"wrong service", func(meta map[string]string) []byte { meta[schemas.MetaService] = "38"; return payload }, now, ReasonMismatch, "does not match"},
		{"another reply topic", func(meta map[string]string) []byte { meta[schemas.MetaReplyTo] = "sio.reply.evil"; return payload }, now, ReasonMismatch, "does not match"},
		{"a later expiry", func(meta map[string]string) []byte {
			meta[schemas.MetaAuthExpires] = "2027-01-01T00:00:00Z"
			return payload
		}, now, ReasonMismatch, "does not match"},
		{"expired", func(map[string]string) []byte { return payload }, deadline.Add(time.Minute + time.Second), ReasonExpired, "expired at 2026-12-01T10:01:00Z"},
		{"missing", func(meta map[string]string) []byte { delete(meta, schemas.MetaAuthMAC); return payload }, now, ReasonMissing, "no authenticator"},
		{"no metadata at all", func(meta map[string]string) []byte { clear(meta); return payload }, now, ReasonMissing, "no authenticator"},
		{"not base64", func(meta map[string]string) []byte { meta[schemas.MetaAuthMAC] = "v1:!!"; return payload }, now, ReasonMalformed, "base64url"},
		{"another version", func(meta map[string]string) []byte { meta[schemas.MetaAuthMAC] = "v2:abc"; return payload }, now, ReasonMalformed, "version"},
		{"for another adapter", func(meta map[string]string) []byte {
			if err := broker.SignRequest("vehicles", meta, payload, deadline); err != nil {
				t.Fatal(err)
			}
			return payload
		}, now, ReasonWrongAdapter, `made for adapter "vehicles", and this is adapter kgd`},
		{"another adapter's key under this adapter's name", func(meta map[string]string) []byte {
			k := mustDerive(t, m, "vehicles") // what the adapter vehicles holds: it cannot forge for kgd
			meta[schemas.MetaAuthKey] = adapter.key.ID()
			meta[schemas.MetaAuthMAC] = encodeMAC(mac(k.secret, kindRequest, requestFields(meta), payload))
			return payload
		}, now, ReasonMismatch, "does not match"},
		{"another broker's master", func(meta map[string]string) []byte {
			if err := other.SignRequest("kgd", meta, payload, deadline); err != nil {
				t.Fatal(err)
			}
			return payload
		}, now, ReasonUnknownKey, "does not hold (current " + adapter.key.ID() + ")"},
		{"an answer's MAC", func(meta map[string]string) []byte {
			adapter.SignAnswer(adapter.key, meta, payload)
			return payload
		}, now, ReasonMismatch, "does not match"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			meta := signed(t)
			p := tt.change(meta)
			_, err := adapter.CheckRequest(meta, p, tt.at)
			var e *Error
			if !errors.As(err, &e) || e.Reason != tt.reason || !strings.Contains(e.Detail, tt.message) {
				t.Fatalf("err %v, want %s: …%s…", err, tt.reason, tt.message)
			}
			if strings.Contains(e.Detail, "050540004455") || strings.Contains(e.Detail, "050540004456") {
				t.Errorf("the reason quotes the payload: %s", e.Detail)
			}
		})
	}
}

// TestAnswer: the broker takes an answer only when the adapter its service is routed to made it.
func TestAnswer(t *testing.T) {
	m := testMaster(t, 0)
	broker := mustBroker(t, BrokerConfig{Master: m})
	kgd := mustAdapter(t, AdapterConfig{Key: mustDerive(t, m, "kgd")})
	vehicles := mustAdapter(t, AdapterConfig{Key: mustDerive(t, m, "vehicles")})
	payload := []byte(`{"requestId":"r-1","service":37,"result":{"status":"OK"}}`)
	answer := func(a *Adapter) map[string]string {
		meta := map[string]string{schemas.MetaCorrelation: "r-1/37", schemas.MetaRequestID: "r-1"}
		a.SignAnswer(Key{}, meta, payload)
		return meta
	}
	now := time.Now()
	if err := broker.CheckAnswer("kgd", answer(kgd), payload, now); err != nil {
		t.Fatalf("an authentic answer: %v", err)
	}
	for _, tt := range []struct {
		name    string
		meta    map[string]string
		payload []byte
		reason  Reason
	}{
		{"another adapter's answer", answer(vehicles), payload, ReasonWrongAdapter},
		{"another adapter claiming this one's name", func() map[string]string {
			meta := answer(vehicles)
			meta[schemas.MetaAuthAdapter], meta[schemas.MetaAuthKey] = "kgd", kgd.key.ID()
			return meta
		}(), payload, ReasonMismatch},
		{"moved to another request", func() map[string]string {
			meta := answer(kgd)
			meta[schemas.MetaCorrelation] = "r-2/37"
			return meta
		}(), payload, ReasonMismatch},
		{"altered result", answer(kgd), bytes.Replace(payload, []byte("OK"), []byte("KO"), 1), ReasonMismatch},
		{"unauthenticated", map[string]string{schemas.MetaCorrelation: "r-1/37"}, payload, ReasonMissing},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := broker.CheckAnswer("kgd", tt.meta, tt.payload, now)
			var e *Error
			if !errors.As(err, &e) || e.Reason != tt.reason {
				t.Fatalf("err %v, want %s", err, tt.reason)
			}
		})
	}
}

// TestRotation: adapters take the new key first and answer with the key each request came with;
// the previous key is refused after its time.
func TestRotation(t *testing.T) {
	oldM, newM := testMaster(t, 0), testMaster(t, 50)
	until := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	before, after := until.Add(-time.Hour), until.Add(time.Hour)
	adapter := mustAdapter(t, AdapterConfig{Key: mustDerive(t, newM, "kgd"), Previous: mustDerive(t, oldM, "kgd"), PreviousUntil: until})
	oldBroker := mustBroker(t, BrokerConfig{Master: oldM})
	newBroker := mustBroker(t, BrokerConfig{Master: newM, Previous: oldM, PreviousUntil: until})
	payload := []byte(`{}`)
	for _, tt := range []struct {
		name   string
		broker *Broker
		now    time.Time
		ok     bool
	}{
		{"a broker still on the old key, during the overlap", oldBroker, before, true},
		{"a broker on the new key", newBroker, before, true},
		{"a broker still on the old key, after the overlap", oldBroker, after, false},
		{"a broker on the new key, after the overlap", newBroker, after, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			meta := map[string]string{schemas.MetaRequestID: "r", schemas.MetaService: "1", schemas.MetaReplyTo: "sio.reply.b", schemas.MetaCorrelation: "r/1"}
			if err := tt.broker.SignRequest("kgd", meta, payload, tt.now.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			k, err := adapter.CheckRequest(meta, payload, tt.now)
			if !tt.ok {
				var e *Error
				if !errors.As(err, &e) || e.Reason != ReasonUnknownKey || !strings.Contains(e.Detail, "accepted until 2026-12-31T00:00:00Z") {
					t.Fatalf("err %v, want the previous key refused after its time", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			answer := maps.Clone(meta)
			adapter.SignAnswer(k, answer, payload)
			if err := tt.broker.CheckAnswer("kgd", answer, payload, tt.now); err != nil {
				t.Fatalf("the answer, made with the request's key: %v", err)
			}
		})
	}
}

// TestKeyFiles: the files are private PEM, each kind refused where the other is expected, and a
// file others may read is refused.
func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	masterFile := filepath.Join(dir, "transport.key")
	m, created, err := LoadOrCreateMaster(masterFile)
	if err != nil || !created {
		t.Fatalf("created %v, %v", created, err)
	}
	if st, err := os.Stat(masterFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("master key file: %v %v", st.Mode(), err)
	}
	again, created, err := LoadOrCreateMaster(masterFile)
	if err != nil || created || again.ID() != m.ID() {
		t.Fatalf("read again: created %v, %v", created, err)
	}
	if err := WriteFile(masterFile, m.PEM()); err == nil {
		t.Error("WriteFile replaced an existing key file")
	}
	k := mustDerive(t, m, "kgd")
	keyFile := filepath.Join(dir, "kgd.key")
	if err := WriteFile(keyFile, k.PEM()); err != nil {
		t.Fatal(err)
	}
	read, err := ReadKey(keyFile)
	if err != nil || read.Adapter() != "kgd" || read.ID() != k.ID() {
		t.Fatalf("ReadKey: %v %v", read.Adapter(), err)
	}
	if _, err := ReadKey(masterFile); err == nil || !strings.Contains(err.Error(), "master key") {
		t.Errorf("ReadKey of the master key: %v", err)
	}
	if _, err := ReadMaster(keyFile); err == nil || !strings.Contains(err.Error(), `adapter "kgd"`) {
		t.Errorf("ReadMaster of an adapter's key: %v", err)
	}
	if err := os.Chmod(keyFile, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKey(keyFile); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a key file the group may read: %v", err)
	}
	if _, err := m.Derive("Not A Name"); err == nil {
		t.Error("derived a key for a name no adapter may have")
	}
	if a, b := mustDerive(t, m, "kgd"), mustDerive(t, m, "kgd2"); a.ID() == b.ID() || bytes.Equal(a.secret, b.secret) {
		t.Error("two adapters got the same key")
	}
}

// TestCaseCheck: a case check (§5) the broker made for a registry is accepted by the adapter the
// registry is routed to, on that registry's queue only; a service message's MAC, a check made for
// another registry or altered in any covered field is refused, and the broker takes the case
// answer only from that adapter, for that registry.
func TestCaseCheck(t *testing.T) {
	m := testMaster(t, 0)
	broker := mustBroker(t, BrokerConfig{Master: m, Validity: time.Minute})
	registryAdapter := mustAdapter(t, AdapterConfig{Key: mustDerive(t, m, "erdr-pg")})
	deadline := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	now := deadline.Add(-time.Second)
	payload := []byte(`{"requestId":"r-1","basis":1,"case":{"number":"251234567890123"},"signerIin":"880101300123","replyTo":"sio.reply.b1"}`)
	signed := func(t *testing.T) map[string]string {
		meta := map[string]string{schemas.MetaRequestID: "r-1", schemas.MetaReplyTo: "sio.reply.b1"}
		if err := broker.SignCaseCheck("erdr-pg", "erdr", meta, payload, deadline); err != nil {
			t.Fatal(err)
		}
		return meta
	}
	meta := signed(t)
	if meta[schemas.MetaRegistry] != "erdr" {
		t.Fatalf("metadata %v, want the registry named", meta)
	}
	k, err := registryAdapter.CheckCaseCheck("erdr", meta, payload, now)
	if err != nil || k.ID() != registryAdapter.key.ID() {
		t.Fatalf("an authentic case check: %v", err)
	}
	if _, err := registryAdapter.CheckRequest(meta, payload, now); !isReason(err, ReasonMismatch) {
		t.Errorf("a case check taken as a service message: %v, want %s", err, ReasonMismatch)
	}
	for _, tt := range []struct {
		name     string
		registry string // the queue it was taken from
		change   func(meta map[string]string) []byte
		reason   Reason
	}{
		{"put on another registry's queue", "courts", func(map[string]string) []byte { return payload }, ReasonWrongRegistry},
		{"relabelled for another registry", "courts", func(meta map[string]string) []byte { meta[schemas.MetaRegistry] = "courts"; return payload }, ReasonMismatch},
		{"another signer", "erdr", func(map[string]string) []byte {
			return bytes.Replace(payload, []byte("880101300123"), []byte("880101300124"), 1)
		}, ReasonMismatch},
		{"another reply topic", "erdr", func(meta map[string]string) []byte { meta[schemas.MetaReplyTo] = "sio.reply.evil"; return payload }, ReasonMismatch},
		{"a service message's MAC", "erdr", func(meta map[string]string) []byte {
			meta[schemas.MetaService] = "1"
			if err := broker.SignRequest("erdr-pg", meta, payload, deadline); err != nil {
				t.Fatal(err)
			}
			return payload
		}, ReasonMismatch},
		{"made for another adapter", "erdr", func(meta map[string]string) []byte {
			if err := broker.SignCaseCheck("demo", "erdr", meta, payload, deadline); err != nil {
				t.Fatal(err)
			}
			return payload
		}, ReasonWrongAdapter},
		{"unauthenticated", "erdr", func(meta map[string]string) []byte { delete(meta, schemas.MetaAuthMAC); return payload }, ReasonMissing},
		{"unauthenticated, for another registry", "courts", func(meta map[string]string) []byte { clear(meta); return payload }, ReasonMissing},
	} {
		t.Run(tt.name, func(t *testing.T) {
			meta := signed(t)
			p := tt.change(meta)
			if _, err := registryAdapter.CheckCaseCheck(tt.registry, meta, p, now); !isReason(err, tt.reason) {
				t.Fatalf("err %v, want %s", err, tt.reason)
			}
		})
	}
	if _, err := registryAdapter.CheckCaseCheck("erdr", signed(t), payload, deadline.Add(time.Minute+time.Second)); !isReason(err, ReasonExpired) {
		t.Errorf("past its expiry: %v, want %s", err, ReasonExpired)
	}

	answer := []byte(`{"requestId":"r-1","found":true,"inProceedings":true,"registry":"erdr"}`)
	answerMeta := func(a *Adapter, registry string) map[string]string {
		meta := map[string]string{schemas.MetaCorrelation: "r-1/case"}
		a.SignCaseAnswer(Key{}, registry, meta, answer)
		return meta
	}
	if err := broker.CheckCaseAnswer("erdr-pg", "erdr", answerMeta(registryAdapter, "erdr"), answer, now); err != nil {
		t.Fatalf("an authentic case answer: %v", err)
	}
	demo := mustAdapter(t, AdapterConfig{Key: mustDerive(t, m, "demo")})
	serviceAnswer := map[string]string{schemas.MetaCorrelation: "r-1/case", schemas.MetaRegistry: "erdr"}
	registryAdapter.SignAnswer(Key{}, serviceAnswer, answer)
	for _, tt := range []struct {
		name   string
		meta   map[string]string
		reason Reason
	}{
		{"another adapter's answer", answerMeta(demo, "erdr"), ReasonWrongAdapter},
		{"the answer of another registry of the adapter", answerMeta(registryAdapter, "courts"), ReasonWrongRegistry},
		{"a service answer's MAC", serviceAnswer, ReasonMismatch},
		{"no authenticator", map[string]string{schemas.MetaCorrelation: "r-1/case", schemas.MetaRegistry: "erdr"}, ReasonMissing},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := broker.CheckCaseAnswer("erdr-pg", "erdr", tt.meta, answer, now); !isReason(err, tt.reason) {
				t.Fatalf("err %v, want %s", err, tt.reason)
			}
		})
	}
	forged := answerMeta(registryAdapter, "erdr")
	if err := broker.CheckCaseAnswer("erdr-pg", "erdr", forged, bytes.Replace(answer, []byte(`"found":true`), []byte(`"found":false`), 1), now); !isReason(err, ReasonMismatch) {
		t.Errorf("an altered verdict: %v, want %s", err, ReasonMismatch)
	}
}

// isReason reports whether err is an *Error of reason.
func isReason(err error, reason Reason) bool {
	var e *Error
	return errors.As(err, &e) && e.Reason == reason
}

// TestRenew: a service message or a case check the broker made, past its expiry, is given a new
// one that its adapter accepts; a forged, altered or foreign message is not renewed, and an
// answer (no request MAC to renew) is left alone.
func TestRenew(t *testing.T) {
	m := testMaster(t, 0)
	broker := mustBroker(t, BrokerConfig{Master: m, Validity: time.Minute})
	kgd := mustAdapter(t, AdapterConfig{Key: mustDerive(t, m, "kgd")})
	deadline := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	later := deadline.Add(3 * time.Hour) // long past the expiry
	payload := []byte(`{"requestId":"r-1","service":37}`)
	service := func() map[string]string {
		meta := map[string]string{schemas.MetaRequestID: "r-1", schemas.MetaService: "37", schemas.MetaReplyTo: "sio.reply.b1"}
		if err := broker.SignRequest("kgd", meta, payload, deadline); err != nil {
			t.Fatal(err)
		}
		return meta
	}
	meta := service()
	if _, err := kgd.CheckRequest(meta, payload, later); !isReason(err, ReasonExpired) {
		t.Fatalf("before renewal: %v, want expired", err)
	}
	if ok, err := broker.Renew(meta, payload, later); !ok || err != nil {
		t.Fatalf("Renew = %v, %v", ok, err)
	}
	if _, err := kgd.CheckRequest(meta, payload, later.Add(30*time.Second)); err != nil {
		t.Errorf("after renewal: %v", err)
	}

	check := map[string]string{schemas.MetaRequestID: "r-2", schemas.MetaReplyTo: "sio.reply.b1"}
	if err := broker.SignCaseCheck("kgd", "erdr", check, payload, deadline); err != nil {
		t.Fatal(err)
	}
	if ok, err := broker.Renew(check, payload, later); !ok || err != nil {
		t.Fatalf("Renew of a case check = %v, %v", ok, err)
	}
	if _, err := kgd.CheckCaseCheck("erdr", check, payload, later); err != nil {
		t.Errorf("the renewed case check: %v", err)
	}

	other := mustBroker(t, BrokerConfig{Master: testMaster(t, 100)})
	for _, tt := range []struct {
		name   string
		meta   func() map[string]string
		data   []byte
		reason Reason
	}{
		{"altered", service, []byte(`{"requestId":"r-1","service":38}`), ReasonMismatch},
		{"another broker's", func() map[string]string {
			meta := map[string]string{schemas.MetaRequestID: "r-1", schemas.MetaService: "37"}
			if err := other.SignRequest("kgd", meta, payload, deadline); err != nil {
				t.Fatal(err)
			}
			return meta
		}, payload, ReasonUnknownKey},
		{"a service message relabelled a case check", func() map[string]string {
			meta := service()
			meta[schemas.MetaRegistry] = "erdr"
			return meta
		}, payload, ReasonMismatch},
	} {
		t.Run(tt.name, func(t *testing.T) {
			meta := tt.meta()
			before := maps.Clone(meta)
			if ok, err := broker.Renew(meta, tt.data, later); ok || !isReason(err, tt.reason) {
				t.Fatalf("Renew = %v, %v; want not renewed, %s", ok, err, tt.reason)
			}
			if !maps.Equal(meta, before) {
				t.Errorf("a message not renewed was changed: %v", meta)
			}
		})
	}
	answer := map[string]string{schemas.MetaCorrelation: "r-1/37"}
	if ok, err := broker.Renew(answer, payload, later); ok || err != nil || len(answer) != 1 {
		t.Errorf("an unauthenticated message: %v, %v, %v", ok, err, answer)
	}
}

// TestBrokerKeepsDerivedKeys: the keys the broker keeps are the ones Master.Derive gives, with
// their ids, for more adapters than it keeps; a name that is not an adapter's is refused every
// time, not kept; and a message signed with a kept key is accepted by its adapter.
func TestBrokerKeepsDerivedKeys(t *testing.T) {
	m := testMaster(t, 0)
	b := mustBroker(t, BrokerConfig{Master: m})
	for round := range 2 {
		for i := range maxDerivedKeys + 10 {
			name := fmt.Sprintf("adapter-%d", i)
			got, err := b.KeyOf(name)
			if err != nil {
				t.Fatal(err)
			}
			want := mustDerive(t, m, name)
			if got.Adapter() != name || !bytes.Equal(got.secret, want.secret) || got.ID() != keyID(want.secret) {
				t.Fatalf("round %d: the broker's key of %s is %s (id %s), want %s (id %s)", round, name,
					hex.EncodeToString(got.secret), got.ID(), hex.EncodeToString(want.secret), want.ID())
			}
		}
		if _, err := b.KeyOf("Not An Adapter"); err == nil {
			t.Fatalf("round %d: a name that is no adapter's got a key", round)
		}
	}
	if n := len(b.master.keys); n != maxDerivedKeys {
		t.Fatalf("the broker keeps %d keys, want at most %d", n, maxDerivedKeys)
	}
	a := mustAdapter(t, AdapterConfig{Key: mustDerive(t, m, "adapter-1")})
	meta := map[string]string{schemas.MetaRequestID: "r-1", schemas.MetaService: "1", schemas.MetaReplyTo: "sio.reply.b1", schemas.MetaMessageID: "m-1"}
	for range 2 {
		if err := b.SignRequest("adapter-1", meta, []byte("{}"), time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := a.CheckRequest(meta, []byte("{}"), time.Now()); err != nil {
			t.Fatalf("the adapter refuses a message signed with the kept key: %v", err)
		}
	}
}
