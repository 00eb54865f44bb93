package app

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/sio-pso/siobroker/config"
)

// CheckStart returns why serve must not start on cfg, before anything is created or bound: a
// plain-HTTP listener on an address other than loopback without http.insecure_listen, or keys
// left to the development PKI, or the transport's master key to the data directory, without
// --dev. Both were silent before issue 16: a broker on
// 0.0.0.0 in clear, or one trusting a CA whose key lies in its own data directory and seeding
// demo users with operator rights, started without a word. Each message names the fixes.
// StartWith checks it too; serve calls it first to tell a configuration it will not run from a
// broker that failed.
func CheckStart(cfg config.Broker) error {
	var errs []error
	if exposed := cfg.PlainListeners(); len(exposed) > 0 && !cfg.HTTP.InsecureListen {
		errs = append(errs, plainListenersError(exposed))
	}
	if cfg.AMQP.MessageKeyFile == "" && !cfg.Dev {
		errs = append(errs, fmt.Errorf("amqp.message_key_file not configured: the master key that authenticates the messages to and from "+
			"the adapters; fix: write one with `siobroker transport-key new --out FILE` and name it in amqp.message_key_file, "+
			"or pass --dev to use a development key in %s (created on first start; not for production)", cfg.MessageKeyPath()))
	}
	if missing := devPKIFor(cfg); len(missing) > 0 && !cfg.Dev {
		errs = append(errs, fmt.Errorf("%s not configured, and the development PKI is used only when asked for; "+
			"fix: configure trust.roots (with trust.crls) and signing.cert_file and signing.key_file with the national PKI's files, "+
			"or pass --dev to use the development PKI in %s (created on first start, with demo users; not for production)",
			strings.Join(missing, " and "), filepath.Join(cfg.DataDir, "pki")))
	}
	return errors.Join(errs...)
}

// plainListenersError names the exposed plain-HTTP listeners and the fixes of each.
func plainListenersError(exposed []string) error {
	var fixes []string
	for _, l := range exposed {
		if strings.HasPrefix(l, "operator.listen ") {
			fixes = append(fixes, "put operator.listen on loopback (the default "+config.DefaultOperatorListen+")")
		} else {
			fixes = append(fixes, "turn on http.tls (cert_file, key_file), or listen on loopback (127.0.0.1) behind a TLS-terminating proxy")
		}
	}
	return fmt.Errorf("plain HTTP on an address other than loopback (%s): signed requests, replies and operators' sessions would cross the network in clear; "+
		"fix: %s; or, to accept it (a private segment behind a TLS proxy), pass --insecure-listen or set http.insecure_listen: true",
		strings.Join(exposed, ", "), strings.Join(fixes, "; "))
}

// devPKIFor names what cfg leaves to the development PKI: trust.roots, signing.cert_file, both
// or nothing.
func devPKIFor(cfg config.Broker) []string {
	var missing []string
	if len(cfg.Trust.Roots) == 0 {
		missing = append(missing, "trust.roots")
	}
	if cfg.Signing.CertFile == "" {
		missing = append(missing, "signing.cert_file")
	}
	return missing
}
