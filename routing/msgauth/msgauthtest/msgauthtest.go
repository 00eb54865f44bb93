// Package msgauthtest gives tests the keys of package msgauth, all made from one fixed master
// key, so that a test's broker and adapters authenticate each other without key files.
package msgauthtest

import (
	"time"

	"github.com/sio-pso/siobroker/routing/msgauth"
)

// Adapter is the adapter name the keys of Broker and AdapterKeys are for, when a test gives none.
const Adapter = "test-adapter"

// Master is the fixed master key of the tests: the bytes 0x00 to 0x1f.
func Master() msgauth.Master {
	secret := make([]byte, msgauth.KeySize)
	for i := range secret {
		secret[i] = byte(i)
	}
	m, err := msgauth.MasterFromBytes(secret)
	if err != nil {
		panic(err) // the size is right by construction
	}
	return m
}

// Broker is the broker's side over Master, with the default validity.
func Broker() *msgauth.Broker {
	b, err := msgauth.NewBroker(msgauth.BrokerConfig{Master: Master()})
	if err != nil {
		panic(err)
	}
	return b
}

// AdapterKeys is adapter's side over Master.
func AdapterKeys(adapter string) *msgauth.Adapter {
	k, err := Master().Derive(adapter)
	if err != nil {
		panic(err)
	}
	a, err := msgauth.NewAdapter(msgauth.AdapterConfig{Key: k})
	if err != nil {
		panic(err)
	}
	return a
}

// AllTo routes every service to adapter: a routing.DispatcherConfig.AdapterOf.
func AllTo(adapter string) func(service int) string {
	return func(int) string { return adapter }
}

// SignRequest authenticates a service message, its metadata meta and payload, as the tests'
// broker does for Adapter, accepted until an hour after now: for a test that publishes service
// messages itself.
func SignRequest(meta map[string]string, payload []byte) {
	if err := Broker().SignRequest(Adapter, meta, payload, time.Now()); err != nil {
		panic(err)
	}
}

// AllRegistriesTo routes every case registry to adapter: a routing.DispatcherConfig.RegistryAdapterOf.
func AllRegistriesTo(adapter string) func(registry string) string {
	return func(string) string { return adapter }
}
