package adaptertest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/schemas"
)

// RegistryCase describes one case registry under test (§5): the cases its source holds and the
// facts it must give of them, cases it does not hold, and how to make its source misbehave.
type RegistryCase struct {
	Registry adapters.CaseRegistry
	// Open is a case the source holds in proceedings. Its Facts are the answer the registry must
	// give: the status, every participant with their part (in any order), the articles (in any
	// order), all as CaseAnswer normalises them.
	Open KnownCase
	// Closed is a case the source holds with a status that is not in proceedings ("closed"): it
	// must still be found, with its status and participants, for the broker to refuse it.
	Closed KnownCase
	// Unknown are cases the source does not hold: found false, with no facts.
	Unknown []CaseQuery
	// Outsider is an IIN in the proceedings of neither known case: asking with it finds the case,
	// but not with the outsider among its participants.
	Outsider string

	// Failing returns a registry whose source answers with an error (a missing table, a 500).
	// Nil skips the upstream-error check.
	Failing func(t *testing.T) adapters.CaseRegistry
	// FailText, if set, is text the failing source puts in its error: it must not appear in the
	// answer.
	FailText string
	// Hanging returns a registry whose source never answers until the check's context ends. Nil
	// skips the timeout checks against a live source.
	Hanging func(t *testing.T) adapters.CaseRegistry
	// Prompt bounds how long after its context ends a registry may take to return. Zero means 2s.
	Prompt time.Duration
}

// KnownCase is a case the registry's source holds, and the facts its answer must carry.
type KnownCase struct {
	CaseQuery
	Facts siobroker.CaseFacts
}

// CaseQuery is what a case check names: the basis and the case reference.
type CaseQuery struct {
	Basis siobroker.Basis
	Case  siobroker.CaseRef
}

var articleNumber = regexp.MustCompile(`^\d{1,3}(-\d{1,2})?$`)

// RunRegistrySuite checks the behaviour the registry runtime and the broker rely on: a case in
// proceedings is found with all its participants, its status and its articles; an unknown case
// is not found and carries no facts; a signer outside the proceedings gets the case found but is
// not among its participants (so the broker refuses); a closed case is found with its status
// (so the broker can refuse it); a failing source is an error whose text stays out of the answer;
// a done context (already done, or ending while the source hangs) is a prompt error wrapping
// ctx.Err(); and concurrent checks get the answers sequential ones do.
func RunRegistrySuite(t *testing.T, c RegistryCase) {
	t.Helper()
	if c.Registry == nil {
		t.Fatal("adaptertest: RegistryCase.Registry is nil")
	}
	for _, k := range []KnownCase{c.Open, c.Closed} {
		if len(k.Facts.Participants) == 0 || k.Facts.Status == "" {
			t.Fatalf("adaptertest: case %q needs a status and participants", k.Case.Number)
		}
	}
	if len(c.Unknown) == 0 || c.Outsider == "" {
		t.Fatal("adaptertest: RegistryCase needs Unknown cases and an Outsider")
	}
	t.Run("found", func(t *testing.T) { testFound(t, c) })
	t.Run("not found", func(t *testing.T) { testNotFound(t, c) })
	t.Run("not the user's", func(t *testing.T) { testNotTheUsers(t, c) })
	t.Run("closed", func(t *testing.T) { testClosed(t, c) })
	t.Run("upstream error", func(t *testing.T) { testRegistryError(t, c) })
	t.Run("done context", func(t *testing.T) { testRegistryDoneContext(t, c) })
	t.Run("timeout", func(t *testing.T) { testRegistryTimeout(t, c) })
	t.Run("concurrent use", func(t *testing.T) { testRegistryConcurrent(t, c) })
}

// CheckRequest is the check the suite sends: q, signed by signer.
func CheckRequest(q CaseQuery, signer string) schemas.CaseCheckRequest {
	return schemas.CaseCheckRequest{RequestID: "test-request", MessageID: "test-message", Basis: q.Basis, Case: q.Case,
		SignerIIN: signer, SentAt: time.Date(2026, 1, 15, 10, 0, 0, 0, siobroker.Astana)}
}

func checkOK(t *testing.T, r adapters.CaseRegistry, req schemas.CaseCheckRequest) schemas.CaseCheckResponse {
	t.Helper()
	resp, err := r.Check(context.Background(), req)
	if err != nil {
		t.Fatalf("case %q: %v", req.Case.Number, err)
	}
	if resp.RequestID != req.RequestID {
		t.Errorf("case %q: the answer is for request %q, want %q", req.Case.Number, resp.RequestID, req.RequestID)
	}
	return resp
}

// wantFacts wants the answer to carry k's facts, well formed.
func wantFacts(t *testing.T, k KnownCase, resp schemas.CaseCheckResponse) {
	t.Helper()
	if !resp.Found {
		t.Fatalf("case %q: not found (%s)", k.Case.Number, resp.Message)
	}
	if resp.Status != k.Facts.Status {
		t.Errorf("case %q: status %q, want %q", k.Case.Number, resp.Status, k.Facts.Status)
	}
	if !sameSet(resp.Participants, k.Facts.Participants) {
		t.Errorf("case %q: participants %v, want %v", k.Case.Number, resp.Participants, k.Facts.Participants)
	}
	if !sameSet(resp.Articles, k.Facts.Articles) {
		t.Errorf("case %q: articles %v, want %v", k.Case.Number, resp.Articles, k.Facts.Articles)
	}
	for _, p := range resp.Participants {
		if p.Part != strings.ToLower(strings.TrimSpace(p.Part)) || p.Part == "" {
			t.Errorf("case %q: part %q is not trimmed and lower-cased", k.Case.Number, p.Part)
		}
	}
	for _, a := range resp.Articles {
		if !articleNumber.MatchString(a) {
			t.Errorf("case %q: article %q is not an article number", k.Case.Number, a)
		}
	}
}

func sameSet[T comparable](got, want []T) bool {
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

func testFound(t *testing.T, c RegistryCase) {
	for _, p := range c.Open.Facts.Participants {
		resp := checkOK(t, c.Registry, CheckRequest(c.Open.CaseQuery, p.IIN))
		wantFacts(t, c.Open, resp)
		if !resp.InProceedings {
			t.Errorf("case %q asked by participant %s: inProceedings false", c.Open.Case.Number, p.IIN)
		}
	}
}

func testNotFound(t *testing.T, c RegistryCase) {
	for _, q := range c.Unknown {
		resp := checkOK(t, c.Registry, CheckRequest(q, c.Open.Facts.Participants[0].IIN))
		if resp.Found || resp.InProceedings || resp.Status != "" || resp.Participants != nil || resp.Articles != nil {
			t.Errorf("unknown case %q under basis %d: %+v, want not found and no facts", q.Case.Number, q.Basis, resp)
		}
	}
}

func testNotTheUsers(t *testing.T, c RegistryCase) {
	resp := checkOK(t, c.Registry, CheckRequest(c.Open.CaseQuery, c.Outsider))
	wantFacts(t, c.Open, resp)
	if resp.InProceedings || len(resp.Facts().PartsOf(c.Outsider)) > 0 {
		t.Errorf("case %q asked by outsider %s: %+v; the outsider must not be among its participants", c.Open.Case.Number, c.Outsider, resp)
	}
}

func testClosed(t *testing.T, c RegistryCase) {
	resp := checkOK(t, c.Registry, CheckRequest(c.Closed.CaseQuery, c.Closed.Facts.Participants[0].IIN))
	wantFacts(t, c.Closed, resp)
	if resp.Status == c.Open.Facts.Status {
		t.Errorf("closed case %q has the open case's status %q", c.Closed.Case.Number, resp.Status)
	}
}

func testRegistryError(t *testing.T, c RegistryCase) {
	if c.Failing == nil {
		t.Skip("no Failing hook")
	}
	resp, err := c.Failing(t).Check(context.Background(), CheckRequest(c.Open.CaseQuery, c.Open.Facts.Participants[0].IIN))
	if err == nil {
		t.Fatalf("a failing source gave no error but %+v", resp)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a failing source gave a context error %v", err)
	}
	if !reflect.DeepEqual(resp, schemas.CaseCheckResponse{}) {
		t.Errorf("with an error the answer must be empty, got %+v", resp)
	}
	body, _ := json.Marshal(resp)
	if c.FailText != "" && strings.Contains(string(body), c.FailText) {
		t.Errorf("the answer %s carries the source's error text %q", body, c.FailText)
	}
}

func testRegistryDoneContext(t *testing.T, c RegistryCase) {
	req := CheckRequest(c.Open.CaseQuery, c.Open.Facts.Participants[0].IIN)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Registry.Check(ctx, req); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context gave %v, want an error wrapping context.Canceled", err)
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := c.Registry.Check(ctx, req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("expired deadline gave %v, want an error wrapping context.DeadlineExceeded", err)
	}
}

// testRegistryTimeout wants a hanging source to return promptly, with an error wrapping
// context.DeadlineExceeded, once the check's deadline passes.
func testRegistryTimeout(t *testing.T, c RegistryCase) {
	if c.Hanging == nil {
		t.Skip("no Hanging hook")
	}
	r := c.Hanging(t)
	prompt := c.Prompt
	if prompt <= 0 {
		prompt = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	type answer struct {
		resp schemas.CaseCheckResponse
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := r.Check(ctx, CheckRequest(c.Open.CaseQuery, c.Open.Facts.Participants[0].IIN))
		done <- answer{resp, err}
	}()
	var a answer
	select {
	case a = <-done:
	case <-ctx.Done():
		select {
		case a = <-done:
		case <-time.After(prompt):
			t.Fatalf("still waiting %s after the deadline", prompt)
		}
	}
	if !errors.Is(a.err, context.DeadlineExceeded) {
		t.Errorf("a hanging source past the deadline gave %+v, %v; want an error wrapping context.DeadlineExceeded", a.resp, a.err)
	}
}

func testRegistryConcurrent(t *testing.T, c RegistryCase) {
	reqs := []schemas.CaseCheckRequest{
		CheckRequest(c.Open.CaseQuery, c.Open.Facts.Participants[0].IIN),
		CheckRequest(c.Open.CaseQuery, c.Outsider),
		CheckRequest(c.Closed.CaseQuery, c.Closed.Facts.Participants[0].IIN),
	}
	for _, q := range c.Unknown {
		reqs = append(reqs, CheckRequest(q, c.Outsider))
	}
	want := make([]schemas.CaseCheckResponse, len(reqs))
	for i, r := range reqs {
		want[i] = stable(checkOK(t, c.Registry, r))
	}
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan string, workers*len(reqs))
	for w := range workers {
		wg.Go(func() {
			for k := range reqs {
				i := (k + w) % len(reqs)
				got, err := c.Registry.Check(context.Background(), reqs[i])
				if err != nil || !reflect.DeepEqual(stable(got), want[i]) {
					errs <- reqs[i].Case.Number
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for n := range errs {
		t.Errorf("case %q: a concurrent answer differs from the sequential one", n)
	}
}

// stable is an answer without the time it was made, with its lists in a fixed order.
func stable(r schemas.CaseCheckResponse) schemas.CaseCheckResponse {
	r.AnsweredAt = time.Time{}
	r.Participants = slices.Clone(r.Participants)
	slices.SortFunc(r.Participants, func(a, b siobroker.Participant) int {
		return strings.Compare(a.IIN+"/"+a.Part, b.IIN+"/"+b.Part)
	})
	r.Articles = slices.Clone(r.Articles)
	slices.Sort(r.Articles)
	return r
}
