package faults

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/client"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// The load: signed requests for services 1, 5 and 11 at a steady rate, every fifth on the
// asynchronous channel, each logged with what the client got back.

// Client outcomes of a request.
const (
	gotReply       = "reply"      // synchronous: a signed reply that verifies
	gotAck         = "ack"        // asynchronous: accepted, on delivery
	gotFault       = "fault"      // a SOAP fault: refused
	gotNoAnswer    = "no-answer"  // the connection failed or broke: the client does not know
	gotUnreadable  = "unreadable" // an answer that is neither a verified reply nor a fault
	asyncEvery     = 5            // every asyncEvery-th request goes on the asynchronous channel
	clientDeadline = 2 * time.Minute
)

// sent is one request of the load as the client saw it.
type sent struct {
	phase     int
	async     bool
	messageID string
	at        time.Time
	done      time.Time // when the client had its answer, or gave up
	got       string
	code      string // the fault's code
	detail    string // the fault's message or the error
	requestID string // the broker's id, from a synchronous reply
	services  map[int]siobroker.ResultStatus
}

type loader struct {
	sync, async *client.Client
	query       siobroker.Query

	phase atomic.Int32
	mu    sync.Mutex
	log   []*sent
	wg    sync.WaitGroup
	n     atomic.Int64
}

// newLoader signs as the ECDSA demo user (900114302034) under its first criminal case, asking
// about the first demo subject.
func newLoader(t *testing.T, top *topology) *loader {
	t.Helper()
	const user = "900114302034"
	m, err := devpki.LoadManifest(top.pki())
	must(t, err, "read the development PKI")
	var q siobroker.Query
	var cert, key string
	for _, u := range m.Users {
		if u.IIN != user {
			continue
		}
		cert, key = filepath.Join(top.pki(), u.Cert), filepath.Join(top.pki(), u.Key)
		for _, c := range u.Cases {
			if c.Basis == siobroker.BasisCriminal && q.Case.Number == "" {
				q.Basis, q.Case = c.Basis, c.Ref()
			}
		}
	}
	if cert == "" || q.Case.Number == "" {
		t.Fatalf("demo user %s with a criminal case not in %s", user, top.pki())
	}
	subjects, err := os.ReadFile(filepath.Join(top.dataDir, app.DemoSubjectsFile))
	must(t, err, "read the demo subjects")
	i := strings.Index(string(subjects), `"id": "`)
	if i < 0 {
		t.Fatal("no demo subject")
	}
	q.Subject.IIN = string(subjects[i+7 : i+19])
	q.Services = services
	q.Purpose = "fault test"

	signer, err := signing.LoadSigner(cert, key)
	must(t, err, "load the signer")
	trust, err := signing.LoadTrustStore(signing.TrustConfig{RootFiles: []string{filepath.Join(top.pki(), devpki.CAFile)}})
	must(t, err, "load the trusted root")
	verifier, err := signing.NewReplyVerifier(trust)
	must(t, err, "reply verifier")
	httpc := &http.Client{Timeout: clientDeadline, Transport: &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128, IdleConnTimeout: time.Minute}}
	base := "http://" + top.listen
	c := &client.Client{URL: base + "/SyncChannel/v10", Signer: signer, Verifier: verifier, Placement: signing.PlacementWSSE,
		HTTP: httpc, Clock: siobroker.SystemClock{}, SenderID: "SIO_PSO_FAULTS", ServiceID: "SIO_PSO_QUERY"}
	ac := *c
	ac.URL = base + "/AsyncChannel/v10"
	return &loader{sync: c, async: &ac, query: q}
}

// send sends one request and logs what came back.
func (l *loader) send(async bool) *sent {
	c := l.sync
	if async {
		c = l.async
	}
	s := &sent{phase: int(l.phase.Load()), async: async, at: time.Now()}
	p, err := c.Prepare(l.query)
	if err != nil {
		s.got, s.detail = gotUnreadable, err.Error()
		l.record(s)
		return s
	}
	s.messageID = p.Info.MessageID
	ctx, cancel := context.WithTimeout(context.Background(), clientDeadline)
	defer cancel()
	// The asynchronous channel's acknowledgement is not a q:result: only its fault or its
	// SendMessageResponse is read here. What became of the request is read from the journal.
	ex, err := c.SendPrepared(ctx, p, !async)
	var fault *client.FaultError
	switch {
	case errors.As(err, &fault):
		s.got, s.code, s.detail = gotFault, string(fault.Fault.Code), fault.Fault.Message
	case err != nil && (ex == nil || len(ex.Reply) == 0 || brokenConnection(err)):
		s.got, s.detail = gotNoAnswer, err.Error()
	case err != nil:
		s.got, s.detail = gotUnreadable, err.Error()
	case async:
		s.got = gotAck
	default:
		s.got, s.requestID = gotReply, ex.Info.MessageID
		s.services = map[int]siobroker.ResultStatus{}
		for _, r := range ex.Result.Services {
			s.services[r.Service] = r.Status
		}
	}
	l.record(s)
	return s
}

// brokenConnection: the connection broke while the reply was being read (the broker was killed
// while writing it), so the client holds part of a reply and knows no more than with none at all.
// Counting it as an unreadable answer, which must not happen, failed the fault test once in a
// while: when the broker's SIGKILL fell in the middle of a reply.
func brokenConnection(err error) bool {
	var op *net.OpError
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.As(err, &op)
}

func (l *loader) record(s *sent) {
	s.done = time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log = append(l.log, s)
}

// run sends at rate per second until stop is closed (open loop: a slow answer does not delay
// the next request), then waits for every request in flight.
func (l *loader) run(rate float64, stop <-chan struct{}) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			l.wg.Wait()
			return
		case <-tick.C:
			n := l.n.Add(1)
			l.wg.Go(func() { l.send(n%asyncEvery == 0) })
		}
	}
}

// sent returns the log so far.
func (l *loader) sentLog() []*sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*sent(nil), l.log...)
}
