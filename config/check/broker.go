package check

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/hrfeed"
	"github.com/sio-pso/siobroker/adapters/adapterconfig"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/operator/incidents"
	"github.com/sio-pso/siobroker/operator/maintenance"
	"github.com/sio-pso/siobroker/operator/notify"
	"github.com/sio-pso/siobroker/routing/routes"
	"github.com/sio-pso/siobroker/signing"
)

// schemas are the keys of each kind of file, from the types their packages decode them into.
var keySchemas = map[Kind]*schema{
	KindBroker:      schemaOf(reflect.TypeOf(config.Broker{}), "mapstructure", true),
	KindRoutes:      schemaOf(reflect.TypeOf(routes.File{}), "yaml", false),
	KindRights:      schemaOf(reflect.TypeOf(rightsLayout{}), "yaml", false),
	KindAdapter:     schemaOf(reflect.TypeOf(adapterconfig.Config{}), "yaml", false),
	KindMaintenance: schemaOf(reflect.TypeOf(maintenance.File{}), "yaml", false),
	KindEmergencies: schemaOf(reflect.TypeOf(incidents.PlansFile{}), "yaml", false),
}

// brokerInfo is what the other checks need of the broker file.
type brokerInfo struct {
	doc  *doc // nil for Options.Broker
	cfg  config.Broker
	keys *masterKeys // the master keys of its transport messages; nil for Options.Broker
}

// line is the line of key in the broker file, or 0 without one.
func (b *brokerInfo) line(key string) int {
	if b.doc == nil {
		return 0
	}
	return lineOf(b.doc.root, key, true)
}

// where names the broker file and line of key, for messages about other files.
func (b *brokerInfo) where(key string) string {
	if b.doc == nil {
		return "the broker configuration"
	}
	return fmt.Sprintf("%s:%d", b.doc.Path, b.line(key))
}

// viperKey is the key a viper decoding error quotes: 'http.max_body_bytes' cannot parse ...
var viperKey = regexp.MustCompile(`(?:^|: )'([^']*)' (.*)$`)

// checkBroker checks a broker file: its keys, what config.Broker.Validate says (at the line of
// the key it names), and the certificates, keys and CRLs it names.
func (c *checker) checkBroker(d *doc) {
	unknown := unknownKeys(d.root, keySchemas[KindBroker], "", true)
	c.reportUnknown(d.Path, unknown)
	content := clean(d, len(unknown) > 0)
	cfg, err := config.Decode(d.Path, content.data)
	if err != nil {
		// Values viper cannot convert: each is quoted by its key.
		for _, line := range flatten(err) {
			m := viperKey.FindStringSubmatch(strings.TrimSpace(line))
			if m == nil || m[1] == "" {
				continue // the header, or the unknown keys reported above
			}
			c.errorf(d.Path, lineOf(d.root, m[1], true), viperFix(m[1], m[2]), "%s: %s", m[1], m[2])
		}
		return
	}
	info := &brokerInfo{doc: d, cfg: cfg}
	if c.broker == nil {
		c.broker = info
	}
	exists := func(key string) bool { return lineOf(d.root, key, true) > 0 }
	for _, msg := range flatten(cfg.Validate()) {
		key := keyOf(msg, exists)
		text, fix := splitFix(msg, key)
		c.errorf(d.Path, lineOf(d.root, key, true), fix, "%s", text)
	}
	if cfg.Transport == "amqp" && cfg.AMQP.Prefetch > 1 && cfg.AMQP.DeliveryLimit > 0 {
		// RabbitMQ 3 counts every return toward a quorum queue's delivery limit, a lost
		// channel's included, and a consumer hands over one message at a time.
		c.warnf(d.Path, lineOf(d.root, "amqp.prefetch", true), "set amqp.prefetch to 1 (the default)",
			"amqp.prefetch %d with amqp.delivery_limit %d: each message prefetched beyond the one in hand is counted toward the delivery "+
				"limit whenever its channel is lost (a RabbitMQ restart), and may be dead-lettered though nothing was wrong with it",
			cfg.AMQP.Prefetch, cfg.AMQP.DeliveryLimit)
	}
	c.checkCredentials(d, cfg)
	info.keys = c.checkBrokerMessageKeys(d, cfg)
	c.checkNotify(d, cfg)
	c.checkHR(d, cfg)
}

// checkHR reads the HR systems' keys and the feed's folder as the broker does at start: a key
// that does not load would otherwise stop the broker, and a folder everyone may write is refused.
func (c *checker) checkHR(d *doc, cfg config.Broker) {
	at := func(key string) int { return lineOf(d.root, key, true) }
	if cfg.HR.KeysFile != "" {
		if _, err := hrfeed.LoadSystems(cfg.HR.KeysFile); err != nil {
			c.errorf(d.Path, at("hr.keys_file"), "correct the file (systems: {NAME: HEXKEY}, chmod 600), or the path", "hr.keys_file: %v", err)
		}
	}
	if cfg.HR.Dir != "" {
		fi, err := os.Stat(cfg.HR.Dir)
		switch {
		case err != nil:
			c.errorf(d.Path, at("hr.dir"), "create the folder, or correct the path", "hr.dir: %v", err)
		case !fi.IsDir() || fi.Mode().Perm()&0o002 != 0:
			c.errorf(d.Path, at("hr.dir"), "make it a folder of the HR system's and the broker's alone (chmod o-w)",
				"hr.dir: %s is not a folder, or everyone may write it (%s)", cfg.HR.Dir, fi.Mode())
		}
	}
}

// checkNotify checks the recipients file of the notices and the mail server's files: a notice
// that cannot be delivered is found out only when a user is blocked for a violation (§45).
func (c *checker) checkNotify(d *doc, cfg config.Broker) {
	at := func(key string) int { return lineOf(d.root, key, true) }
	n := cfg.Notify
	if n.RecipientsFile != "" {
		if _, err := notify.LoadRecipients(n.RecipientsFile); err != nil {
			c.errorf(d.Path, at("notify.recipients_file"), "correct the file, or the path (relative to the broker's working directory)",
				"notify.recipients_file: %v", err)
		}
		if n.SMTP.Addr == "" {
			c.warnf(d.Path, at("notify.recipients_file"), "set notify.smtp.addr and notify.smtp.from",
				"notify.recipients_file is set but notify.smtp.addr is not: e-mail notices wait in the outbox, undelivered")
		}
	}
	for _, f := range []struct{ key, path string }{
		{"notify.smtp.password_file", n.SMTP.PasswordFile}, {"notify.smtp.ca_file", n.SMTP.CAFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			c.errorf(d.Path, at(f.key), "install the file there, or correct the path", "%s: %v", f.key, err)
		}
	}
}

// viperFix says what to write instead of a value viper could not convert.
func viperFix(key, msg string) string {
	switch {
	case strings.Contains(msg, "time: "):
		return "write a duration with its unit, e.g. 30s, 5m or 1h"
	case strings.Contains(msg, "as 'int") || strings.Contains(msg, "as 'uint"):
		return "write a whole number"
	case strings.Contains(msg, "as 'bool'"):
		return "write true or false"
	case strings.Contains(msg, "expected type 'string'"):
		return "write a single text value"
	case strings.Contains(msg, "expected a map"):
		return "write a mapping of keys"
	}
	return "write a value of the type " + key + " takes, as configs/broker.yaml shows"
}

// checkCredentials checks every certificate, key and CRL the broker file names.
func (c *checker) checkCredentials(d *doc, cfg config.Broker) {
	at := func(key string) int { return lineOf(d.root, key, true) }
	var roots []*x509.Certificate
	rootsOK := true
	for i, path := range cfg.Trust.Roots {
		key := fmt.Sprintf("trust.roots[%d]", i)
		certs, ok := c.readCertificates(d.Path, at(key), key, path, "trusted root")
		rootsOK = rootsOK && ok
		roots = append(roots, certs...)
	}
	for i, path := range cfg.Trust.Intermediates {
		key := fmt.Sprintf("trust.intermediates[%d]", i)
		c.readCertificates(d.Path, at(key), key, path, "intermediate CA certificate")
	}
	var crls []*x509.RevocationList
	crlLines := []int{}
	for i, path := range cfg.Trust.CRLs {
		key := fmt.Sprintf("trust.crls[%d]", i)
		list, ok := c.readCRLs(d.Path, at(key), key, path, cfg.Trust.StaleGrace())
		for range list {
			crlLines = append(crlLines, at(key))
		}
		if ok {
			crls = append(crls, list...)
		}
	}
	if len(roots) > 0 && rootsOK {
		// The broker builds its trust store so: a CRL of one of the roots must verify against it.
		for i, crl := range crls {
			if _, err := signing.NewTrustStore(roots, []*x509.RevocationList{crl}); err != nil {
				c.errorf(d.Path, crlLines[i], "install the CRL the root in trust.roots issued, or the root that issued this CRL",
					"%s", strings.TrimPrefix(err.Error(), "trust store: "))
			}
		}
	}
	if cfg.Signing.CertFile != "" && cfg.Signing.KeyFile != "" {
		_, certOK := c.readCertificates(d.Path, at("signing.cert_file"), "signing.cert_file", cfg.Signing.CertFile, "broker's signing certificate")
		if certOK {
			if _, err := signing.LoadSigner(cfg.Signing.CertFile, cfg.Signing.KeyFile); err != nil {
				c.keyProblem(d.Path, at("signing.key_file"), "signing.key_file", cfg.Signing.KeyFile, strings.TrimPrefix(err.Error(), "signer: "))
			}
		}
	}
	tlsCfg := cfg.HTTP.TLS
	if tlsCfg.CertFile != "" && tlsCfg.KeyFile != "" {
		_, certOK := c.readCertificates(d.Path, at("http.tls.cert_file"), "http.tls.cert_file", tlsCfg.CertFile, "HTTPS certificate")
		if certOK {
			if _, err := tls.LoadX509KeyPair(tlsCfg.CertFile, tlsCfg.KeyFile); err != nil {
				c.keyProblem(d.Path, at("http.tls.key_file"), "http.tls.key_file", tlsCfg.KeyFile, err.Error())
			}
		}
	}
}

// keyProblem reports a private key that cannot be read, or does not match its certificate.
func (c *checker) keyProblem(file string, line int, key, path, problem string) {
	if _, err := os.Stat(path); err != nil {
		c.errorf(file, line, "correct the path (relative to the working directory) or install the key", "%s: cannot read %s: %s", key, path, describeReadError(err))
		return
	}
	if strings.Contains(problem, "does not belong") || strings.Contains(problem, "does not match") {
		c.errorf(file, line, "give the private key the certificate was issued for, or the certificate of this key",
			"%s: the key in %s does not match its certificate", key, path)
		return
	}
	c.errorf(file, line, "give an unencrypted PEM private key (PKCS#8, PKCS#1 or SEC1)", "%s: %s", key, problem)
}

// readCertificates reads and checks the certificates of a PEM file named at key. ok is false
// when the file cannot be used.
func (c *checker) readCertificates(file string, line int, key, path, what string) ([]*x509.Certificate, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		c.errorf(file, line, "correct the path (relative to the working directory) or install the file", "%s: cannot read %s: %s", key, path, describeReadError(err))
		return nil, false
	}
	certs, err := signing.ParseCertificates(data)
	if err != nil {
		c.errorf(file, line, "give a PEM file of CERTIFICATE blocks (openssl x509 -inform der -in CERT -out CERT.pem converts a DER one)",
			"%s: %s holds no usable certificate: %s", key, path, err)
		return nil, false
	}
	ok := true
	for _, cert := range certs {
		ok = c.checkValidity(file, line, fmt.Sprintf("%s: the %s %q in %s", key, what, cert.Subject.String(), path), cert.NotBefore, cert.NotAfter) && ok
	}
	return certs, ok
}

// checkValidity reports a validity period that is over, not begun, or ends within the warning
// horizon. It is false when the period is over or not begun.
func (c *checker) checkValidity(file string, line int, subject string, notBefore, notAfter time.Time) bool {
	switch {
	case c.now.After(notAfter):
		c.errorf(file, line, "install a renewed certificate", "%s expired at %s", subject, astana(notAfter))
		return false
	case c.now.Before(notBefore):
		c.errorf(file, line, "install a certificate valid now, or wait until it is", "%s is not valid before %s", subject, astana(notBefore))
		return false
	case notAfter.Sub(c.now) < c.opts.ExpiryWarning:
		c.warnf(file, line, "renew it before "+astana(notAfter), "%s expires at %s, in %s", subject, astana(notAfter), days(notAfter.Sub(c.now)))
	}
	return true
}

// readCRLs reads and checks the CRLs of a file named at key: PEM X509 CRL blocks, or one DER
// CRL, as the broker reads them. grace is the broker's trust.crl_stale grace (config.Trust.StaleGrace):
// a CRL past its nextUpdate is an error only where the broker refuses its issuer's signers, at
// nextUpdate under "refuse" or once the grace is over; within the grace the broker still answers,
// so it is a warning, with the time it stops.
func (c *checker) readCRLs(file string, line int, key, path string, grace time.Duration) ([]*x509.RevocationList, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		c.errorf(file, line, "correct the path (relative to the working directory) or install the file", "%s: cannot read %s: %s", key, path, describeReadError(err))
		return nil, false
	}
	crls, err := signing.ParseCRLs(data)
	if err != nil {
		c.errorf(file, line, "install the CRL as its issuer published it (PEM X509 CRL or DER)", "%s: %s: %s", key, path, err)
		return nil, false
	}
	ok := true
	for _, crl := range crls {
		what := fmt.Sprintf("%s: the CRL of %q in %s", key, crl.Issuer.String(), path)
		// The same comparisons as the trust store's (signing.crlSet.checkRevocation): in force up
		// to and including nextUpdate + grace.
		end := crl.NextUpdate.Add(grace)
		switch {
		case crl.NextUpdate.IsZero():
		case c.now.After(end) && grace == 0:
			c.errorf(file, line, "install the issuer's current CRL (and keep it fetched before each next update)",
				"%s is out of date since %s: the broker refuses every signer its issuer certified", what, astana(crl.NextUpdate))
			ok = false
		case c.now.After(end):
			c.errorf(file, line, "install the issuer's current CRL (and keep it fetched before each next update)",
				"%s is out of date since %s and its grace (trust.crl_stale_grace, %s) ended at %s: the broker refuses every signer its issuer certified",
				what, astana(crl.NextUpdate), grace, astana(end))
			ok = false
		case c.now.After(crl.NextUpdate):
			c.warnf(file, line, "install the issuer's current CRL before "+astana(end),
				"%s is past its next update (due %s); the broker keeps it in force for its grace (trust.crl_stale_grace, %s), until %s, in %s, and then refuses every signer its issuer certified",
				what, astana(crl.NextUpdate), grace, astana(end), days(end.Sub(c.now)))
		case crl.NextUpdate.Sub(c.now) < c.opts.ExpiryWarning:
			after := "after that the broker refuses every signer its issuer certified"
			if grace > 0 {
				after = fmt.Sprintf("the broker refuses every signer its issuer certified %s after that (trust.crl_stale_grace)", grace)
			}
			c.warnf(file, line, "install the issuer's next CRL before "+astana(crl.NextUpdate),
				"%s is due for its next update at %s, in %s; %s", what, astana(crl.NextUpdate), days(crl.NextUpdate.Sub(c.now)), after)
		}
	}
	return crls, ok
}

func astana(t time.Time) string { return t.In(siobroker.Astana).Format(time.RFC3339) }

// days writes a duration in whole days, or hours when less than two days.
func days(d time.Duration) string {
	if d < 48*time.Hour {
		return fmt.Sprintf("%d hours", int(math.Ceil(d.Hours())))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
