package health

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing"
)

// CheckStatus is the result of one readiness check.
type CheckStatus string

// The results of a check. A warning does not make the broker unready.
const (
	CheckOK   CheckStatus = "ok"
	CheckWarn CheckStatus = "warn"
	CheckFail CheckStatus = "fail"
)

// CheckResult is one check's result, as /readyz shows it. Detail is public: it never holds a
// secret or the path of a key file.
type CheckResult struct {
	Name   string      `json:"name"`
	Status CheckStatus `json:"status"`
	Detail string      `json:"detail,omitempty"`
	cause  error       // for the log only
}

// Check is one named readiness check. Run must be safe for concurrent use and return soon after
// ctx ends.
type Check struct {
	Name string
	Run  func(ctx context.Context) CheckResult
}

// Report is the answer of /readyz: "ok" when no check failed, else "fail".
type Report struct {
	Status string        `json:"status"`
	Checks []CheckResult `json:"checks"`
}

// Ready reports whether no check failed.
func (r Report) Ready() bool { return r.Status == "ok" }

// Readiness runs the readiness checks. It logs each check's change of status (not every probe),
// with the cause, which /readyz does not show.
type Readiness struct {
	checks  []Check
	timeout time.Duration
	logger  *slog.Logger

	mu   sync.Mutex
	last map[string]CheckStatus
}

// DefaultCheckTimeout is ReadinessConfig.Timeout when none is configured.
const DefaultCheckTimeout = 5 * time.Second

// ReadinessConfig says what a Readiness checks. Every check needs its Run; a zero Timeout takes
// the default, a negative one is refused.
type ReadinessConfig struct {
	// Timeout bounds one run of the checks, which run at once; default DefaultCheckTimeout.
	Timeout time.Duration
	// Logger is told each check's change of status; nil discards.
	Logger *slog.Logger
	// Checks are run in this order and reported in it.
	Checks []Check
}

func (c *ReadinessConfig) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultCheckTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports what is wrong with c once its defaults are applied: a negative Timeout, and
// every check without a Run.
func (c ReadinessConfig) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("health: ReadinessConfig.Timeout must not be negative, got %s", c.Timeout))
	}
	for i, ch := range c.Checks {
		if ch.Run == nil {
			errs = append(errs, fmt.Errorf("health: ReadinessConfig.Checks[%d].Run is required (check %q)", i, ch.Name))
		}
	}
	return errors.Join(errs...)
}

// NewReadiness returns a Readiness over cfg.Checks. It applies the defaults of cfg and returns an
// error naming every field of cfg that is invalid.
func NewReadiness(cfg ReadinessConfig) (*Readiness, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Readiness{checks: cfg.Checks, timeout: cfg.Timeout, logger: cfg.Logger, last: make(map[string]CheckStatus)}, nil
}

// Check runs every check, at once, and reports them in their order.
func (r *Readiness) Check(ctx context.Context) Report {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	results := make([]CheckResult, len(r.checks))
	var wg sync.WaitGroup
	for i, c := range r.checks {
		wg.Go(func() {
			res := c.Run(ctx)
			res.Name = c.Name
			if res.Status == "" {
				res.Status = CheckOK
			}
			results[i] = res
		})
	}
	wg.Wait()
	rep := Report{Status: "ok", Checks: results}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, res := range results {
		if res.Status == CheckFail {
			rep.Status = "fail"
		}
		if prev, ok := r.last[res.Name]; ok && prev != res.Status || !ok && res.Status != CheckOK {
			log := r.logger.Info
			if res.Status != CheckOK {
				log = r.logger.Warn
			}
			attrs := []any{"check", res.Name, "status", string(res.Status), "detail", res.Detail}
			if res.cause != nil {
				attrs = append(attrs, "error", res.cause)
			}
			log("readiness check changed", attrs...)
		}
		r.last[res.Name] = res.Status
	}
	return rep
}

// ServeHTTP answers /readyz: the report as JSON, with 200 when ready and 503 when not.
func (r *Readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rep := r.Check(req.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !rep.Ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(rep)
}

// FuncCheck is a check that fails when probe returns an error. /readyz says detail and the text
// of a Public error in the chain; the whole error goes to the log when the check starts failing.
func FuncCheck(name, detail string, probe func(ctx context.Context) error) Check {
	return Check{Name: name, Run: func(ctx context.Context) CheckResult {
		if err := probe(ctx); err != nil {
			return CheckResult{Status: CheckFail, Detail: detail + ": " + publicCause(err), cause: err}
		}
		return CheckResult{Status: CheckOK}
	}}
}

// Public is an error whose text may be shown on /readyz as it is; Err, if any, is logged only.
type Public struct {
	Text string
	Err  error
}

func (p *Public) Error() string {
	if p.Err != nil {
		return p.Text + ": " + p.Err.Error()
	}
	return p.Text
}

func (p *Public) Unwrap() error { return p.Err }

// publicCause is the text of the first Public error in err's chain, or a fixed text: other
// errors may name files or addresses.
func publicCause(err error) string {
	var p *Public
	if errors.As(err, &p) {
		return p.Text
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	return "the cause is in the broker's log"
}

// KeySigner is the broker's signing key (*signing.Signer).
type KeySigner interface {
	SignDetached(data []byte) ([]byte, error)
	Certificate() *x509.Certificate
}

// probeData is what the signing key check signs.
var probeData = []byte("siobroker readiness probe")

// SigningKeyCheck checks that the broker's key can sign: a detached signature of a fixed text,
// verified with the certificate's public key. Its result is reused for ttl on clock, so that
// frequent probes do not spend a private-key operation each (or a round trip to an HSM).
func SigningKeyCheck(s KeySigner, clock siobroker.Clock, ttl time.Duration) Check {
	var mu sync.Mutex
	var at time.Time
	var last CheckResult
	return Check{Name: "signing_key", Run: func(context.Context) CheckResult {
		mu.Lock()
		defer mu.Unlock()
		now := clock.Now()
		if !at.IsZero() && now.Sub(at) < ttl && !now.Before(at) {
			return last
		}
		last = CheckResult{Status: CheckOK}
		sig, err := s.SignDetached(probeData)
		if err == nil {
			err = signing.VerifyDetached(s.Certificate(), probeData, sig)
		}
		if err != nil {
			last = CheckResult{Status: CheckFail, Detail: "the broker's key cannot sign, or does not match its certificate", cause: err}
		}
		at = now
		return last
	}}
}

// CertificateWarnBefore is how long before its expiry the broker's certificate is warned about.
const CertificateWarnBefore = 30 * 24 * time.Hour

// CertificateCheck judges the broker's own signing certificate on clock: not yet valid or
// expired fails; within CertificateWarnBefore of its expiry passes with a warning naming the date.
func CertificateCheck(cert *x509.Certificate, clock siobroker.Clock) Check {
	return Check{Name: "certificate", Run: func(context.Context) CheckResult {
		return CertificateState(cert, clock.Now())
	}}
}

// CertificateState is the certificate check's result at now.
func CertificateState(cert *x509.Certificate, now time.Time) CheckResult {
	res := CheckResult{Name: "certificate", Status: CheckOK}
	switch left := cert.NotAfter.Sub(now); {
	case now.Before(cert.NotBefore):
		res.Status = CheckFail
		res.Detail = "the broker's signing certificate is not valid until " + siobroker.FormatTime(cert.NotBefore)
	case left < 0:
		res.Status = CheckFail
		res.Detail = "the broker's signing certificate expired on " + siobroker.FormatTime(cert.NotAfter)
	case left < CertificateWarnBefore:
		res.Status = CheckWarn
		res.Detail = fmt.Sprintf("the broker's signing certificate expires on %s, in %d days: renew it",
			siobroker.FormatTime(cert.NotAfter), int(left/(24*time.Hour)))
	default:
		res.Detail = "valid until " + siobroker.FormatTime(cert.NotAfter)
	}
	return res
}

// WarnCertificate logs a warning when cert is within CertificateWarnBefore of its expiry, and an
// error when it is expired or not yet valid, at clock's now.
func WarnCertificate(cert *x509.Certificate, clock siobroker.Clock, logger *slog.Logger) {
	res := CertificateState(cert, clock.Now())
	attrs := []any{"subject", cert.Subject.String(), "not_after", siobroker.FormatTime(cert.NotAfter), "detail", res.Detail}
	switch res.Status {
	case CheckWarn:
		logger.Warn("the broker's signing certificate expires soon", attrs...)
	case CheckFail:
		logger.Error("the broker's signing certificate is not valid", attrs...)
	}
}
