package app

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sio-pso/siobroker/config"
)

// CheckStart returns why serve must not start on cfg, before anything is created or bound: a
// plain-HTTP listener on an address other than loopback without http.insecure_listen. That was
// silent before issue 16: a broker on 0.0.0.0 in clear started without a word. The message names
// the fixes.
// StartWith checks it too; serve calls it first to tell a configuration it will not run from a
// broker that failed.
func CheckStart(cfg config.Broker) error {
	var errs []error
	if exposed := cfg.PlainListeners(); len(exposed) > 0 && !cfg.HTTP.InsecureListen {
		errs = append(errs, plainListenersError(exposed))
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
