package revocation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
	"golang.org/x/sync/singleflight"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/gostx509"
)

// The results of a question to an OCSP responder, the values of the label of
// siobroker_ocsp_responses_total. Answers taken from the cache are not counted.
const (
	OCSPResultGood    = "good"
	OCSPResultRevoked = "revoked"
	OCSPResultUnknown = "unknown"
	OCSPResultFailed  = "failed" // no usable answer: unreachable, out of time, an error status, or a response that does not verify or is out of date
)

// OCSPResults are every result, for metrics that export each from the start.
var OCSPResults = []string{OCSPResultGood, OCSPResultRevoked, OCSPResultUnknown, OCSPResultFailed}

const (
	// maxOCSPBytes bounds a response. One about a single certificate, with a responder
	// certificate, is 2 to 3 KB with RSA keys.
	maxOCSPBytes = 64 << 10
	// responderBackoff is how long a responder that failed is not asked again: while it is down,
	// requests go straight to the policy's fallback instead of each waiting out the timeout.
	responderBackoff = 30 * time.Second
	// ocspClockSkew is how far in the future a response's thisUpdate may be, for a responder
	// whose clock is a little ahead of the broker's.
	ocspClockSkew = 5 * time.Minute
	// maxCachedAnswers bounds the cache; past it, answers out of date are dropped, then all.
	maxCachedAnswers = 100_000
)

// OCSPConfig configures an OCSP checker.
type OCSPConfig struct {
	// Timeout bounds one question to one responder (trust.ocsp_timeout).
	Timeout time.Duration
	// Cache is the longest an answer is reused; an answer is never used past its nextUpdate
	// (trust.ocsp_cache). Zero asks every time.
	Cache time.Duration
	// Clock tells the time responses are checked and cached at; default the system clock.
	Clock siobroker.Clock
	// Logger; default discards.
	Logger *slog.Logger
	// Client asks; default a client with Timeout that follows no redirects (a responder answers
	// a POST itself), through the proxy of the environment.
	Client *http.Client
}

// OCSP asks OCSP responders about certificates (signing.OCSPChecker). It is safe for concurrent
// use; concurrent questions about one certificate share one request.
type OCSP struct {
	cfg    OCSPConfig
	flight singleflight.Group
	counts *tally // by OCSPResults

	mu    sync.Mutex
	cache map[string]cachedAnswer // by issuer key and serial (answerKey)
	down  map[string]time.Time    // responder URL → not asked again before
}

// cachedAnswer is an answer and the time it may be used until.
type cachedAnswer struct {
	answer  signing.OCSPAnswer
	expires time.Time
}

// NewOCSP returns an OCSP checker.
func NewOCSP(cfg OCSPConfig) (*OCSP, error) {
	if cfg.Timeout <= 0 || cfg.Cache < 0 {
		return nil, fmt.Errorf("revocation: OCSP needs a positive timeout and a cache time not negative (timeout %s, cache %s)", cfg.Timeout, cfg.Cache)
	}
	if cfg.Clock == nil {
		cfg.Clock = siobroker.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout:       cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &OCSP{cfg: cfg, counts: newTally(OCSPResults), cache: map[string]cachedAnswer{}, down: map[string]time.Time{}}, nil
}

// Counts returns how many questions to responders had each result of OCSPResults, for the
// metrics (siobroker_ocsp_responses_total). Answers from the cache are not questions.
func (o *OCSP) Counts() map[string]uint64 { return o.counts.read() }

// answerKey names cert of issuer in the cache: a serial number is unique only under one key.
func answerKey(cert, issuer *x509.Certificate) string {
	sum := sha256.Sum256(issuer.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:]) + ":" + cert.SerialNumber.Text(16)
}

// CheckOCSP returns the verified answer about cert from the cache, or from the first of its
// responders that gives one (signing.OCSPChecker).
func (o *OCSP) CheckOCSP(ctx context.Context, cert, issuer *x509.Certificate) (signing.OCSPAnswer, error) {
	key := answerKey(cert, issuer)
	if a, ok := o.cached(key); ok {
		return a, nil
	}
	// Shared by every request about this certificate now; bounded by the timeout, not by the
	// first caller's context, whose end must not fail the others.
	ch := o.flight.DoChan(key, func() (any, error) {
		if a, ok := o.cached(key); ok {
			return a, nil
		}
		return o.ask(context.WithoutCancel(ctx), key, cert, issuer)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return signing.OCSPAnswer{}, r.Err
		}
		return r.Val.(signing.OCSPAnswer), nil
	case <-ctx.Done():
		return signing.OCSPAnswer{}, fmt.Errorf("OCSP question about serial %X: %w", cert.SerialNumber, ctx.Err())
	}
}

// cached returns the answer about key while it may be used.
func (o *OCSP) cached(key string) (signing.OCSPAnswer, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c, ok := o.cache[key]
	if !ok || !o.cfg.Clock.Now().Before(c.expires) {
		return signing.OCSPAnswer{}, false
	}
	return c.answer, true
}

// ask asks cert's responders in turn, skipping those that failed within responderBackoff, and
// caches the first verified answer.
func (o *OCSP) ask(ctx context.Context, key string, cert, issuer *x509.Certificate) (signing.OCSPAnswer, error) {
	var errs []error
	for _, url := range signing.OCSPResponders(cert) {
		now := o.cfg.Clock.Now()
		o.mu.Lock()
		until, isDown := o.down[url]
		o.mu.Unlock()
		if isDown && now.Before(until) {
			errs = append(errs, fmt.Errorf("OCSP responder %s failed and is not asked again before %s", url, siobroker.FormatTime(until)))
			continue
		}
		resp, err := o.query(ctx, url, cert, issuer)
		if err != nil {
			o.counts.add(OCSPResultFailed)
			o.mu.Lock()
			o.down[url] = o.cfg.Clock.Now().Add(responderBackoff)
			o.mu.Unlock()
			o.cfg.Logger.Warn("OCSP responder gave no answer; it is not asked again for a while, and trust.ocsp decides meanwhile",
				"responder", url, "serial", fmt.Sprintf("%X", cert.SerialNumber), "error", err, "backoff", responderBackoff)
			errs = append(errs, err)
			continue
		}
		answer := signing.OCSPAnswer{Responder: url}
		switch resp.Status {
		case ocsp.Good:
			answer.Status = signing.OCSPGood
			o.counts.add(OCSPResultGood)
		case ocsp.Revoked:
			answer.Status, answer.RevokedAt = signing.OCSPRevoked, resp.RevokedAt
			o.counts.add(OCSPResultRevoked)
		default:
			answer.Status = signing.OCSPUnknown
			o.counts.add(OCSPResultUnknown)
		}
		o.store(key, answer, resp)
		return answer, nil
	}
	if len(errs) == 0 {
		return signing.OCSPAnswer{}, errors.New("the certificate names no http or https OCSP responder")
	}
	return signing.OCSPAnswer{}, errors.Join(errs...)
}

// store caches answer until the response's nextUpdate, and at most Cache.
func (o *OCSP) store(key string, answer signing.OCSPAnswer, resp *ocsp.Response) {
	if o.cfg.Cache <= 0 {
		return
	}
	now := o.cfg.Clock.Now()
	expires := now.Add(o.cfg.Cache)
	if !resp.NextUpdate.IsZero() {
		expires = minTime(expires, resp.NextUpdate)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.cache) >= maxCachedAnswers {
		for k, c := range o.cache {
			if !now.Before(c.expires) {
				delete(o.cache, k)
			}
		}
		if len(o.cache) >= maxCachedAnswers {
			clear(o.cache)
		}
	}
	o.cache[key] = cachedAnswer{answer: answer, expires: expires}
}

// query asks the responder at url about cert (one POST, RFC 6960 appendix A.1) and returns its
// response once verified (verifyResponse).
func (o *OCSP) query(ctx context.Context, url string, cert, issuer *x509.Certificate) (*ocsp.Response, error) {
	// The certificate is identified by SHA-1 hashes of its issuer's name and key, the default of
	// x/crypto/ocsp: the lightweight profile most responders implement requires SHA-1 there
	// (RFC 5019, section 2.1.1). It names the certificate, it is not a signature.
	reqDER, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return nil, fmt.Errorf("OCSP request for serial %X: %w", cert.SerialNumber, err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(reqDER))
	if err != nil {
		return nil, fmt.Errorf("OCSP responder %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	req.Header.Set("Accept", "application/ocsp-response")
	httpResp, err := o.cfg.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("OCSP responder %s: %w", url, err)
	}
	defer httpResp.Body.Close()
	if httpResp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("OCSP responder %s: HTTP %s", url, httpResp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(httpResp.Body, maxOCSPBytes+1))
	if err != nil {
		return nil, fmt.Errorf("OCSP responder %s: read: %w", url, err)
	}
	if len(body) > maxOCSPBytes {
		return nil, fmt.Errorf("OCSP responder %s: a response of more than %d bytes", url, maxOCSPBytes)
	}
	resp, err := verifyResponse(body, cert, issuer, o.cfg.Clock.Now())
	if err != nil {
		return nil, fmt.Errorf("OCSP responder %s: %w", url, err)
	}
	return resp, nil
}

// verifyResponse parses an OCSP response about cert, which issuer issued, and checks what
// x/crypto/ocsp leaves to its caller (RFC 6960, section 3.2): that it is about this certificate
// of this issuer (the CertID's hashes, not the serial number alone), that its signer is the
// issuer or a responder the issuer certified with the OCSPSigning extended key usage, valid
// now, and that it is current at now. A response signed with GOST is parsed and its signatures
// verified here (gostocsp.go), any other by x/crypto/ocsp; the checks are the same.
func verifyResponse(der []byte, cert, issuer *x509.Certificate, now time.Time) (*ocsp.Response, error) {
	var (
		resp *ocsp.Response
		// signedBy checks the response's signature with the key of a certificate.
		signedBy func(*x509.Certificate) error
	)
	if _, isGOST := gostResponseSignature(der); isGOST {
		r, sigAlg, err := parseGOSTResponse(der, cert)
		if err != nil {
			return nil, fmt.Errorf("the GOST-signed response does not parse or is an error: %w", err)
		}
		resp = r
		signedBy = func(signer *x509.Certificate) error {
			return gostx509.CheckSignature(signer, sigAlg, r.TBSResponseData, r.Signature)
		}
	} else {
		// No issuer given: the library would check an embedded responder certificate against it
		// without its extended key usage, and would refuse an issuer that embeds its own
		// certificate. The signer is checked below.
		r, err := ocsp.ParseResponseForCert(der, cert, nil)
		if err != nil {
			return nil, fmt.Errorf("the response does not parse or is an error: %w", err)
		}
		resp, signedBy = r, r.CheckSignatureFrom
	}
	if err := checkCertID(der, cert, issuer); err != nil {
		return nil, err
	}
	switch signer := resp.Certificate; {
	case signer == nil || signer.Equal(issuer):
		if err := signedBy(issuer); err != nil {
			return nil, fmt.Errorf("the response is not signed by the certificate's issuer: %w", err)
		}
	default:
		// RFC 6960, section 4.2.2.2: a delegated responder's certificate is issued directly by
		// the CA and carries id-kp-OCSPSigning. Its signature is GOST or not as the CA's is
		// (gostx509 defers to crypto/x509 for any other).
		if err := gostx509.CheckCertificateSignature(signer, issuer); err != nil {
			return nil, fmt.Errorf("the responder's certificate %q is not issued by the certificate's issuer: %w", signer.Subject, err)
		}
		if !slices.Contains(signer.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
			return nil, fmt.Errorf("the responder's certificate %q is not authorised to sign OCSP responses (no OCSPSigning extended key usage)", signer.Subject)
		}
		if now.Before(signer.NotBefore) || now.After(signer.NotAfter) {
			return nil, fmt.Errorf("the responder's certificate %q is not valid at %s", signer.Subject, siobroker.FormatTime(now))
		}
		if err := signedBy(signer); err != nil {
			return nil, fmt.Errorf("the response is not signed by its responder's certificate: %w", err)
		}
	}
	if resp.ThisUpdate.After(now.Add(ocspClockSkew)) {
		return nil, fmt.Errorf("the response is from the future (thisUpdate %s)", siobroker.FormatTime(resp.ThisUpdate))
	}
	if !resp.NextUpdate.IsZero() && !now.Before(resp.NextUpdate) {
		return nil, fmt.Errorf("the response is out of date (nextUpdate %s)", siobroker.FormatTime(resp.NextUpdate))
	}
	return resp, nil
}

// The parts of an OCSP response (RFC 6960, section 4.2.1) that x/crypto/ocsp does not return:
// the CertID of each single response. encoding/asn1 allows a SEQUENCE to have fields past those a
// struct names, so only the leading fields are declared.
type (
	basicResponseASN1 struct {
		TBSResponseData struct {
			Version     int `asn1:"optional,default:0,explicit,tag:0"`
			ResponderID asn1.RawValue
			ProducedAt  asn1.RawValue
			Responses   []struct {
				CertID certIDASN1
			}
		}
	}
	subjectPublicKeyInfo struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
)

// checkCertID checks that the single response chosen for cert (the first with its serial
// number, in x/crypto/ocsp and in parseGOSTResponse) names cert's issuer: the hash of the
// issuer's name and of its public key (the BIT STRING's value, RFC 6960 section 4.1.1), with the
// hash the CertID names (certIDHashes). A response about the same serial number under another
// CA must not answer for this certificate.
func checkCertID(der []byte, cert, issuer *x509.Certificate) error {
	var outer responseASN1
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		return fmt.Errorf("the response does not parse: %w", err)
	}
	var basic basicResponseASN1
	if _, err := asn1.Unmarshal(outer.Response.Response, &basic); err != nil {
		return fmt.Errorf("the basic response does not parse: %w", err)
	}
	// The issuer's key is read from the raw certificate: crypto/x509 parses no GOST key.
	var spki subjectPublicKeyInfo
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return fmt.Errorf("the issuer's public key does not parse: %w", err)
	}
	for _, r := range basic.TBSResponseData.Responses {
		if r.CertID.SerialNumber == nil || r.CertID.SerialNumber.Cmp(cert.SerialNumber) != 0 {
			continue
		}
		newHash, ok := certIDHashes[r.CertID.HashAlgorithm.Algorithm.String()]
		if !ok {
			return fmt.Errorf("the response's CertID hash %s is not one known here", r.CertID.HashAlgorithm.Algorithm)
		}
		h := newHash()
		h.Write(issuer.RawSubject)
		nameHash := h.Sum(nil)
		h.Reset()
		h.Write(spki.PublicKey.RightAlign())
		keyHash := h.Sum(nil)
		if !bytes.Equal(r.CertID.IssuerNameHash, nameHash) || !bytes.Equal(r.CertID.IssuerKeyHash, keyHash) {
			return fmt.Errorf("the response about serial %X names another issuer", cert.SerialNumber)
		}
		return nil
	}
	return fmt.Errorf("the response says nothing about serial %X", cert.SerialNumber)
}
