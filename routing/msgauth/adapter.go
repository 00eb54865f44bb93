package msgauth

import (
	"crypto/hmac"
	"errors"
	"strings"
	"time"

	"github.com/sio-pso/siobroker/schemas"
)

// AdapterConfig is what an Adapter is built from.
type AdapterConfig struct {
	// Key is the adapter's key. Required.
	Key Key
	// Previous is the adapter's key before a rotation, accepted on service messages until
	// PreviousUntil (required with Previous). It must belong to the same adapter. Zero: none.
	Previous      Key
	PreviousUntil time.Time
}

// Adapter is an adapter's side: it checks the service messages it gets and authenticates its
// answers. It is safe for concurrent use.
type Adapter struct {
	key, previous Key
	until         time.Time
}

// NewAdapter returns the adapter's side of cfg.
func NewAdapter(cfg AdapterConfig) (*Adapter, error) {
	var errs []error
	if cfg.Key.IsZero() {
		errs = append(errs, errors.New("msgauth: AdapterConfig.Key is required"))
	}
	if !cfg.Previous.IsZero() {
		if cfg.PreviousUntil.IsZero() {
			errs = append(errs, errors.New("msgauth: AdapterConfig.PreviousUntil is required with Previous"))
		}
		if cfg.Previous.adapter != cfg.Key.adapter {
			errs = append(errs, errors.New("msgauth: the previous key is adapter "+quote(cfg.Previous.adapter)+
				"'s, the key adapter "+quote(cfg.Key.adapter)+"'s; both must be the same adapter's"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Adapter{key: cfg.Key, previous: cfg.Previous, until: cfg.PreviousUntil}, nil
}

// Name is the adapter whose keys these are: the adapter name of the routing table.
func (a *Adapter) Name() string { return a.key.adapter }

// CheckRequest returns the key that authenticates meta and payload, a service message, at now:
// a MAC made for this adapter with its key (or its previous key, until PreviousUntil), not
// expired. Otherwise it returns an *Error. The cheap checks come first; the MAC is computed only
// for a message that names this adapter and a key it holds.
func (a *Adapter) CheckRequest(meta map[string]string, payload []byte, now time.Time) (Key, error) {
	return a.check(kindRequest, requestFields(meta), meta, payload, now)
}

// CheckCaseCheck is CheckRequest for a case check (§5) taken from the topic of registry: the
// broker made it for this adapter and for that registry, so that a check the broker sent to one
// registry cannot be put on another's queue and answered there.
func (a *Adapter) CheckCaseCheck(registry string, meta map[string]string, payload []byte, now time.Time) (Key, error) {
	if got := meta[schemas.MetaRegistry]; got != registry {
		if _, rerr := received(meta); rerr != nil {
			return Key{}, rerr
		}
		return Key{}, refuse(ReasonWrongRegistry, "the case check was made for registry %s, and this is registry %s", quote(got), registry)
	}
	return a.check(kindCaseCheck, caseCheckFields(meta), meta, payload, now)
}

// check is CheckRequest and CheckCaseCheck over a message of kind whose MAC covers fields.
func (a *Adapter) check(kind string, fields []string, meta map[string]string, payload []byte, now time.Time) (Key, error) {
	sum, rerr := received(meta)
	if rerr != nil {
		return Key{}, rerr
	}
	if to := meta[schemas.MetaAuthAdapter]; to != a.key.adapter {
		return Key{}, refuse(ReasonWrongAdapter, "the message was made for adapter %s, and this is adapter %s", quote(to), a.key.adapter)
	}
	k, rerr := a.keyOf(meta[schemas.MetaAuthKey], now)
	if rerr != nil {
		return Key{}, rerr
	}
	if !equalMAC(sum, mac(k.secret, kind, fields, payload)) {
		return Key{}, refuse(ReasonMismatch, "the message's authenticator does not match it: it was altered, or made with another key")
	}
	expires, err := time.Parse(time.RFC3339, meta[schemas.MetaAuthExpires])
	if err != nil {
		// Authentic, so the broker wrote it: a broker of another version.
		return Key{}, refuse(ReasonMalformed, "the message's expiry %s cannot be read", quote(meta[schemas.MetaAuthExpires]))
	}
	if now.After(expires) {
		return Key{}, refuse(ReasonExpired, "the message expired at %s", expires.UTC().Format(time.RFC3339))
	}
	return k, nil
}

// keyOf returns the key named id, if the adapter holds it at now.
func (a *Adapter) keyOf(id string, now time.Time) (Key, *Error) {
	switch {
	case id == a.key.ID():
		return a.key, nil
	case !a.previous.IsZero() && id == a.previous.ID():
		if now.After(a.until) {
			return Key{}, refuse(ReasonUnknownKey, "the message was made with this adapter's previous key %s, accepted until %s only",
				id, a.until.UTC().Format(time.RFC3339))
		}
		return a.previous, nil
	}
	held := []string{"current " + a.key.ID()}
	if !a.previous.IsZero() && !now.After(a.until) {
		held = append(held, "previous "+a.previous.ID())
	}
	return Key{}, refuse(ReasonUnknownKey, "the message was made with key %s, which this adapter does not hold (%s)", quote(id), strings.Join(held, ", "))
}

// SignAnswer authenticates an answer with k, the key that authenticated its request (so that
// during a rotation a broker that has not taken the new key yet can check it): it sets the
// schemas.MetaAuth* keys of meta, whose correlation key is set already.
func (a *Adapter) SignAnswer(k Key, meta map[string]string, payload []byte) {
	a.sign(k, kindAnswer, meta, payload)
}

// SignCaseAnswer is SignAnswer for the answer of registry to a case check: it sets
// schemas.MetaRegistry too, which the MAC covers, so that the broker knows whose key to check it
// with and that the answer is the registry's it asked.
func (a *Adapter) SignCaseAnswer(k Key, registry string, meta map[string]string, payload []byte) {
	meta[schemas.MetaRegistry] = registry
	a.sign(k, kindCaseAnswer, meta, payload)
}

func (a *Adapter) sign(k Key, kind string, meta map[string]string, payload []byte) {
	if k.IsZero() {
		k = a.key
	}
	meta[schemas.MetaAuthAdapter] = k.adapter
	meta[schemas.MetaAuthKey] = k.ID()
	delete(meta, schemas.MetaAuthExpires) // answers do not expire: a copy is recognised by its key
	meta[schemas.MetaAuthMAC] = encodeMAC(mac(k.secret, kind, answerFieldsOf(kind, meta), payload))
}

// equalMAC compares two MACs in constant time.
func equalMAC(a, b []byte) bool { return hmac.Equal(a, b) }
