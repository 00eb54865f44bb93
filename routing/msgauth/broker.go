package msgauth

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sio-pso/siobroker/schemas"
)

// DefaultValidity is BrokerConfig.Validity when it is left zero.
const DefaultValidity = time.Hour

// BrokerConfig is what a Broker is built from.
type BrokerConfig struct {
	// Master is the key service messages are made with. Required.
	Master Master
	// Previous is the master key before a rotation, whose adapters' keys are still accepted on
	// answers until PreviousUntil (required with Previous). Zero: none.
	Previous      Master
	PreviousUntil time.Time
	// Validity is how long after its deadline a service message is accepted by its adapter:
	// short enough that a captured message soon stops working. A request sent back from the
	// dead-letter queue later than that is renewed first (Renew). Default DefaultValidity.
	Validity time.Duration
}

// Broker is the broker's side: it authenticates the service messages it sends and checks the
// answers it gets. It is safe for concurrent use.
type Broker struct {
	master, previous *derivedKeys
	until            time.Time
	validity         time.Duration
}

// derivedKeys derives adapters' keys from one master key, keeping those it has derived: every
// service message signed and every answer checked needs its adapter's key, and HKDF made each
// one afresh, with its key id, about 3 KB and a dozen SHA-256 blocks a message (issue 20).
// Adapters are the routing table's, a few dozen at most; past maxDerivedKeys (a name read from a
// message, say Renew's) a key is derived and not kept.
type derivedKeys struct {
	master Master
	mu     sync.RWMutex
	keys   map[string]Key
}

// maxDerivedKeys bounds the keys a derivedKeys keeps.
const maxDerivedKeys = 256

func newDerivedKeys(m Master) *derivedKeys {
	return &derivedKeys{master: m, keys: make(map[string]Key)}
}

// IsZero reports whether there is no master key.
func (d *derivedKeys) IsZero() bool { return d.master.IsZero() }

// Derive is Master.Derive, with the key's id computed once.
func (d *derivedKeys) Derive(adapter string) (Key, error) {
	d.mu.RLock()
	k, ok := d.keys[adapter]
	d.mu.RUnlock()
	if ok {
		return k, nil
	}
	k, err := d.master.Derive(adapter)
	if err != nil {
		return Key{}, err
	}
	k.id = k.ID()
	d.mu.Lock()
	if len(d.keys) < maxDerivedKeys {
		d.keys[adapter] = k
	}
	d.mu.Unlock()
	return k, nil
}

// NewBroker returns the broker's side of cfg.
func NewBroker(cfg BrokerConfig) (*Broker, error) {
	var errs []error
	if cfg.Master.IsZero() {
		errs = append(errs, errors.New("msgauth: BrokerConfig.Master is required"))
	}
	if !cfg.Previous.IsZero() && cfg.PreviousUntil.IsZero() {
		errs = append(errs, errors.New("msgauth: BrokerConfig.PreviousUntil is required with Previous"))
	}
	if cfg.Validity < 0 {
		errs = append(errs, fmt.Errorf("msgauth: BrokerConfig.Validity must not be negative, got %s", cfg.Validity))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Validity == 0 {
		cfg.Validity = DefaultValidity
	}
	return &Broker{master: newDerivedKeys(cfg.Master), previous: newDerivedKeys(cfg.Previous), until: cfg.PreviousUntil,
		validity: cfg.Validity}, nil
}

// Validity is how long after its deadline a service message is accepted.
func (b *Broker) Validity() time.Duration { return b.validity }

// KeyOf returns adapter's current key: what `siobroker transport-key derive` writes, and what an
// in-process adapter is given.
func (b *Broker) KeyOf(adapter string) (Key, error) { return b.master.Derive(adapter) }

// SignRequest authenticates a service message for adapter, whose metadata meta already holds its
// request id, service and reply topic: it sets the schemas.MetaAuth* keys, the expiry being the
// message's deadline (zero: now) plus the validity.
func (b *Broker) SignRequest(adapter string, meta map[string]string, payload []byte, deadline time.Time) error {
	return b.sign(adapter, kindRequest, requestFields, meta, payload, deadline)
}

// SignCaseCheck is SignRequest for a case check (§5) to registry, served by adapter: it sets
// schemas.MetaRegistry too, which the MAC covers.
func (b *Broker) SignCaseCheck(adapter, registry string, meta map[string]string, payload []byte, deadline time.Time) error {
	meta[schemas.MetaRegistry] = registry
	return b.sign(adapter, kindCaseCheck, caseCheckFields, meta, payload, deadline)
}

func (b *Broker) sign(adapter, kind string, fields func(map[string]string) []string, meta map[string]string, payload []byte, deadline time.Time) error {
	k, err := b.master.Derive(adapter)
	if err != nil {
		return err
	}
	if deadline.IsZero() {
		deadline = time.Now()
	}
	meta[schemas.MetaAuthAdapter] = k.adapter
	meta[schemas.MetaAuthKey] = k.ID()
	meta[schemas.MetaAuthExpires] = deadline.Add(b.validity).UTC().Format(time.RFC3339)
	meta[schemas.MetaAuthMAC] = encodeMAC(mac(k.secret, kind, fields(meta), payload))
	return nil
}

// CheckAnswer returns an *Error unless meta and payload, an answer, carry a MAC made with the key
// of adapter, the adapter its service is routed to: its current key, or the previous master's
// until PreviousUntil (now is when the answer is checked).
func (b *Broker) CheckAnswer(adapter string, meta map[string]string, payload []byte, now time.Time) error {
	return b.check(adapter, kindAnswer, meta, payload, now)
}

// CheckCaseAnswer is CheckAnswer for the answer to a case check: made by adapter, the adapter
// registry is routed to, for registry (schemas.MetaRegistry).
func (b *Broker) CheckCaseAnswer(adapter, registry string, meta map[string]string, payload []byte, now time.Time) error {
	if got := meta[schemas.MetaRegistry]; got != registry {
		if _, rerr := received(meta); rerr != nil {
			return rerr
		}
		return refuse(ReasonWrongRegistry, "the answer names registry %s, but the case check went to registry %s", quote(got), quote(registry))
	}
	return b.check(adapter, kindCaseAnswer, meta, payload, now)
}

func (b *Broker) check(adapter, kind string, meta map[string]string, payload []byte, now time.Time) error {
	sum, rerr := received(meta)
	if rerr != nil {
		return rerr
	}
	if by := meta[schemas.MetaAuthAdapter]; by != adapter {
		return refuse(ReasonWrongAdapter, "the answer was made by adapter %s, but the service is routed to adapter %s", quote(by), quote(adapter))
	}
	id := meta[schemas.MetaAuthKey]
	k, err := b.master.Derive(adapter)
	if err != nil {
		return refuse(ReasonWrongAdapter, "%v", err)
	}
	if id != k.ID() {
		k, rerr = b.previousKey(adapter, id, now)
		if rerr != nil {
			return rerr
		}
	}
	if !equalMAC(sum, mac(k.secret, kind, answerFieldsOf(kind, meta), payload)) {
		return refuse(ReasonMismatch, "the answer's authenticator does not match it: it was altered, or made with another key than adapter %s's", adapter)
	}
	return nil
}

// previousKey returns adapter's key of the previous master key when id names it and it is still
// accepted at now.
func (b *Broker) previousKey(adapter, id string, now time.Time) (Key, *Error) {
	current, _ := b.master.Derive(adapter)
	if !b.previous.IsZero() {
		k, err := b.previous.Derive(adapter)
		if err == nil && k.ID() == id {
			if now.After(b.until) {
				return Key{}, refuse(ReasonUnknownKey, "the answer was made with adapter %s's previous key %s, accepted until %s only",
					adapter, id, b.until.UTC().Format(time.RFC3339))
			}
			return k, nil
		}
	}
	return Key{}, refuse(ReasonUnknownKey, "the answer was made with key %s, which is not adapter %s's (%s)", quote(id), adapter,
		strings.Join(b.ids(current, adapter, now), ", "))
}

// ids lists the ids of adapter's keys the broker accepts at now, for a refusal.
func (b *Broker) ids(current Key, adapter string, now time.Time) []string {
	out := []string{"current " + current.ID()}
	if !b.previous.IsZero() && !now.After(b.until) {
		if k, err := b.previous.Derive(adapter); err == nil {
			out = append(out, "previous "+k.ID())
		}
	}
	return out
}

// Renew gives a service message or a case check that this broker made (meta and payload, as the
// dead-letter queue kept them) a new expiry, Validity from now, and a new MAC made with the current
// key of its adapter: so that `dlq replay` can send back a request its adapter gave up on longer
// ago than the validity, which the adapter would otherwise refuse as expired. Only a message whose
// MAC verifies, with its adapter's key of the current master or of the previous one while that is
// accepted, is renewed: a forged or altered message keeps the authenticator it has, and is
// refused again where it is sent back. The expiry is not checked: it is what is renewed. renewed
// is false, with the reason in err, for a message that is not renewed; a message with no
// authenticator at all (an answer, say) is left alone with a nil error.
func (b *Broker) Renew(meta map[string]string, payload []byte, now time.Time) (renewed bool, err error) {
	sum, rerr := received(meta)
	if rerr != nil {
		if rerr.Reason == ReasonMissing {
			return false, nil
		}
		return false, rerr
	}
	kind, fields := kindRequest, requestFields
	if _, ok := meta[schemas.MetaRegistry]; ok {
		kind, fields = kindCaseCheck, caseCheckFields
	}
	adapter := meta[schemas.MetaAuthAdapter]
	current, err := b.master.Derive(adapter)
	if err != nil {
		return false, refuse(ReasonWrongAdapter, "%v", err)
	}
	k := current
	if id := meta[schemas.MetaAuthKey]; id != current.ID() {
		if k, rerr = b.previousKey(adapter, id, now); rerr != nil {
			return false, rerr
		}
	}
	if !equalMAC(sum, mac(k.secret, kind, fields(meta), payload)) {
		return false, refuse(ReasonMismatch, "the message's authenticator does not match it: it was altered, or not made by this broker")
	}
	meta[schemas.MetaAuthKey] = current.ID()
	meta[schemas.MetaAuthExpires] = now.Add(b.validity).UTC().Format(time.RFC3339)
	meta[schemas.MetaAuthMAC] = encodeMAC(mac(current.secret, kind, fields(meta), payload))
	return true, nil
}
