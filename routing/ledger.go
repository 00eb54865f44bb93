package routing

import (
	"github.com/sio-pso/siobroker"
)

// WithLedger makes the runtime claim every request in l before asking its source (see Ledger,
// and middleware.Ledger for what it does with each state of a request).
// Call it before AddHandlers.
func (a *AdapterRuntime) WithLedger(l siobroker.Ledger) *AdapterRuntime {
	a.ledger = l
	return a
}
