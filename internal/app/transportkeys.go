package app

import (
	"fmt"
	"log/slog"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	amqptransport "github.com/sio-pso/siobroker/routing/amqp"
	"github.com/sio-pso/siobroker/routing/msgauth"
)

// loadTransportKeys returns the broker's side of the authentication of its transport messages
// (routing/msgauth): the master key of amqp.message_key_file, or, with --dev and none configured,
// the data directory's, made on the first start (0600) as the development PKI is, so that `make
// run` needs no configuration. Without either, CheckStart has refused to start. The previous
// master key of a rotation is read too, and its end warned about once it has passed.
func loadTransportKeys(cfg config.Broker, clock siobroker.Clock, logger *slog.Logger) (*msgauth.Broker, error) {
	path := cfg.MessageKeyPath()
	var master msgauth.Master
	var err error
	if cfg.AMQP.MessageKeyFile == "" {
		if !cfg.Dev { // never fall back silently
			return nil, CheckStart(cfg)
		}
		var created bool
		if master, created, err = msgauth.LoadOrCreateMaster(path); err != nil {
			return nil, fmt.Errorf("transport master key (amqp.message_key_file empty: %s): %w", path, err)
		}
		if created {
			logger.Warn("--dev: created a development transport master key: NOT FOR PRODUCTION; set amqp.message_key_file",
				"file", path, "key_id", master.ID())
		}
	} else if master, err = msgauth.ReadMaster(path); err != nil {
		return nil, fmt.Errorf("amqp.message_key_file: %w", err)
	}
	bcfg, err := brokerKeysConfig(cfg, master)
	if err != nil {
		return nil, err
	}
	if !bcfg.Previous.IsZero() && clock.Now().After(bcfg.PreviousUntil) {
		logger.Warn("the previous transport master key is no longer accepted; remove amqp.previous_message_key_file",
			"until", bcfg.PreviousUntil)
	}
	keys, err := msgauth.NewBroker(bcfg)
	if err != nil {
		return nil, err
	}
	logger.Info("transport messages are authenticated", "master_key", path, "key_id", master.ID(), "validity", keys.Validity())
	return keys, nil
}

// inProcessAdapterKeys is the keys of an adapter the broker runs in its own process: derived from
// its master key, as `siobroker transport-key derive` derives them for adapter processes.
func inProcessAdapterKeys(keys *msgauth.Broker, adapter string) (*msgauth.Adapter, error) {
	k, err := keys.KeyOf(adapter)
	if err != nil {
		return nil, err
	}
	return msgauth.NewAdapter(msgauth.AdapterConfig{Key: k})
}

// renewerOf renews, with the broker's keys, the authenticators of the dead letters `dlq replay`
// sends back (msgauth.Broker.Renew): a request an adapter gave up on may wait in the dead-letter
// queue longer than its validity, and would otherwise be refused as expired when sent back.
func renewerOf(keys *msgauth.Broker, clock siobroker.Clock) amqptransport.Renewer {
	return func(meta map[string]string, body []byte) (bool, error) {
		return keys.Renew(meta, body, clock.Now())
	}
}

// TransportKeys reads the broker's transport keys of cfg without making any: amqp.message_key_file,
// or with none the data directory's development key, which must exist. For the commands that work
// beside a broker (dlq replay).
func TransportKeys(cfg config.Broker) (*msgauth.Broker, error) {
	master, err := msgauth.ReadMaster(cfg.MessageKeyPath())
	if err != nil {
		return nil, fmt.Errorf("the broker's transport master key (amqp.message_key_file, default DATA/transport.key): %w", err)
	}
	bcfg, err := brokerKeysConfig(cfg, master)
	if err != nil {
		return nil, err
	}
	return msgauth.NewBroker(bcfg)
}

// brokerKeysConfig is the msgauth.BrokerConfig of cfg over master: its validity, and the previous
// master key of a rotation, read from its file.
func brokerKeysConfig(cfg config.Broker, master msgauth.Master) (msgauth.BrokerConfig, error) {
	bcfg := msgauth.BrokerConfig{Master: master, Validity: cfg.AMQP.MessageValidity}
	if file := cfg.AMQP.PreviousMessageKeyFile; file != "" {
		var err error
		if bcfg.Previous, err = msgauth.ReadMaster(file); err != nil {
			return bcfg, fmt.Errorf("amqp.previous_message_key_file: %w", err)
		}
		if bcfg.PreviousUntil, err = cfg.AMQP.PreviousKeyUntil(); err != nil {
			return bcfg, err
		}
	}
	return bcfg, nil
}

// Renewer is renewerOf for a command: the broker's keys of cfg (TransportKeys) on clock.
func Renewer(cfg config.Broker, clock siobroker.Clock) (amqptransport.Renewer, error) {
	keys, err := TransportKeys(cfg)
	if err != nil {
		return nil, err
	}
	return renewerOf(keys, clock), nil
}
