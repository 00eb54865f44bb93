// Package amqp is the RabbitMQ transport of the broker: it replaces the embedded GoChannel when
// the configuration says `transport: amqp`, and gives the routing package a watermill Publisher
// and Subscriber with the same topic names (schemas.ServiceTopic, schemas.RegistryTopic,
// routing.ReplyTopicPrefix+instance).
//
// Addressing is queue-per-topic: publishing to topic T puts the message on the queue named
// Prefix+T, and subscribing to T consumes that queue. Requests and case checks go through the
// default exchange; answers through the reply exchange (ReplyExchange, each broker's reply queue
// bound to it under its name) and dead letters through the dead-letter exchange, so that a
// RabbitMQ user of an adapter needs write permission on those two exchanges only. Nothing is
// declared on publish or subscribe: Declare creates the service, registry and dead-letter
// topology at start-up, NewBrokerTransport the broker instance's reply queue. A publish to a queue
// that does not exist is an error (ErrUnroutable), never a silent loss.
//
// The Publisher is written here on amqp091-go rather than taken from watermill-amqp: the
// library's publisher waits for a confirm without a time limit and ignores basic.return, so a
// mandatory publish to a missing queue returned nil and the message was gone. This one publishes
// persistent, mandatory messages on a pool of confirm-mode channels and returns only once the
// server has confirmed (ack) the message; a nack, a return, a closed channel or no confirm within
// Config.ConfirmTimeout is an error.
//
// The Subscriber is written here on amqp091-go too: watermill-amqp's subscriber raced (go test
// -race) on its reconnect path. It consumes on its own connection (RabbitMQ advises separate
// connections for publishing and consuming, because flow control blocks publishing
// connections). Every Subscribe opens Config.Concurrency consumers on the queue, each handing
// over one message at a time and settling it (ack, or nack to requeue) as the handler says, and
// merges them: the routing package registers one handler per topic and still gets Concurrency
// messages in flight, and several processes on one queue compete for its messages (each message
// goes to one consumer). When a consumer's channel is lost (RabbitMQ restarted, the connection
// dropped, the server cancelled the consumer) it waits for the connection to come back and
// consumes again; the messages it had not acknowledged are delivered again by RabbitMQ.
//
// Config.URL may name every node of a RabbitMQ cluster, comma-separated (nodes.go): a
// connection goes to one node and, when it is lost, straight on to the next node that accepts.
//
// Both connections reconnect by themselves with back-off (Config.ReconnectMin..ReconnectMax).
// While the publishing connection is down a publish fails at once with ErrNotConnected, which
// wraps routing.ErrTransportUnavailable: the routing package then retries within the service's
// time limit.
//
// Headers: quorum queues add x-delivery-count (a number) on redelivery and dead-lettering adds
// x-death (a table). watermill-amqp's default marshaler rejects every non-string header, which
// turned one nack into an endless redelivery loop; here numbers, booleans and times become
// decimal/RFC 3339 strings and the other kinds (tables, arrays, bytes) are dropped, so
// Metadata.Get(MetaDeliveryCount) gives the delivery count as a string.
package amqp

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is the RabbitMQ transport's configuration.
type Config struct {
	// URL is the AMQP URI, e.g. amqp://user:pass@host:5672/vhost, or the URIs of the nodes of a
	// RabbitMQ cluster separated by commas: connections go to one node and move on to the next
	// when it is lost (see SplitURLs).
	URL string
	// Instance is this broker or adapter instance's id. A broker's reply queue is
	// "sio.reply.<Instance>": keep it stable across restarts (a host or pod name), see
	// NewBrokerTransport.
	Instance string
	// Services and Registries name the queues Declare creates ("sio.service.NNN",
	// "sio.registry.NAME").
	Services   []int
	Registries []string
	// Queues are further work queues Declare creates: the shared queues of the routing table
	// (package routes), by topic name.
	Queues []string

	// Prefix is put in front of every queue and exchange name (tests use it to keep parallel
	// runs apart). Default "".
	Prefix string

	// Prefetch is the consumer prefetch (Qos.PrefetchCount) of each consumer channel. Default 1.
	// A consumer hands its messages over one at a time, so the messages prefetched beyond the
	// first only wait in this process, where competing processes cannot take them; and when
	// the channel is lost (RabbitMQ restarts, the connection drops, the process dies) each of
	// them goes back to the queue, which RabbitMQ 3 counts toward a quorum queue's delivery
	// limit as it counts a failure: a message prefetched through a few outages was dead-lettered
	// (delivery_limit) though nothing was wrong with it. With 1, a consumer holds only the
	// message in its handler. Parallelism comes from Concurrency.
	Prefetch int
	// Concurrency is the number of consumers, hence of messages handled at once, per Subscribe
	// (per queue). Default 4.
	Concurrency int
	// ChannelPoolSize is the number of confirm-mode channels publishes share. Default 8.
	ChannelPoolSize int
	// ConfirmTimeout bounds the wait for a publisher confirm. Default 5s.
	ConfirmTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the exponential back-off between connection attempts.
	// Defaults 500ms and 30s.
	ReconnectMin, ReconnectMax time.Duration

	// ClassicQueues declares classic durable queues instead of quorum queues. The default
	// (false) is quorum queues, with a fall-back to classic durable queues when the server
	// refuses a quorum queue (an old server, or a queue that already exists as classic).
	// (A bool whose zero value is the default, rather than a `Quorum bool` defaulting to true,
	// which a zero value could not express.)
	ClassicQueues bool

	// DeliveryLimit, when above 0, sets x-delivery-limit on the quorum service and registry
	// queues: a message redelivered more often is dead-lettered to DeadLetterQueue instead of
	// looping. Default 0: no limit (RabbitMQ 3.x then redelivers without end; 4.x applies its
	// own default of 20). Changing it on an existing queue makes Declare fail with
	// PRECONDITION_FAILED; a RabbitMQ policy (delivery-limit) is the way to change it later.
	// Classic queues have no delivery limit.
	DeliveryLimit int

	// DeadLetterExchange (fanout) and DeadLetterQueue receive the messages the queues
	// dead-letter. Defaults "sio.dlx" and "sio.dlq".
	DeadLetterExchange string
	DeadLetterQueue    string
}

// Defaults.
const (
	DefaultPrefetch           = 1
	DefaultConcurrency        = 4
	DefaultChannelPoolSize    = 8
	DefaultConfirmTimeout     = 5 * time.Second
	DefaultReconnectMin       = 500 * time.Millisecond
	DefaultReconnectMax       = 30 * time.Second
	DefaultDeadLetterExchange = "sio.dlx"
	DefaultDeadLetterQueue    = "sio.dlq"
)

func (c *Config) setDefaults() {
	if c.Prefetch == 0 {
		c.Prefetch = DefaultPrefetch
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.ChannelPoolSize == 0 {
		c.ChannelPoolSize = DefaultChannelPoolSize
	}
	if c.ConfirmTimeout == 0 {
		c.ConfirmTimeout = DefaultConfirmTimeout
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = DefaultReconnectMin
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = DefaultReconnectMax
	}
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = c.ReconnectMin
	}
	if c.DeadLetterExchange == "" {
		c.DeadLetterExchange = DefaultDeadLetterExchange
	}
	if c.DeadLetterQueue == "" {
		c.DeadLetterQueue = DefaultDeadLetterQueue
	}
}

// Validate reports what is wrong with c once its defaults are applied.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if err := validateURLs(c.URL); err != nil {
		errs = append(errs, err)
	}
	if c.Instance != "" && !validName(c.Instance) {
		errs = append(errs, fmt.Errorf("amqp: instance %q: only letters, digits, '.', '_' and '-'", c.Instance))
	}
	if c.Prefix != "" && !validName(c.Prefix) {
		errs = append(errs, fmt.Errorf("amqp: prefix %q: only letters, digits, '.', '_' and '-'", c.Prefix))
	}
	for _, n := range c.Services {
		if n < 1 || n > 999 {
			errs = append(errs, fmt.Errorf("amqp: service %d out of 1..999", n))
		}
	}
	for _, r := range c.Registries {
		if !validName(r) {
			errs = append(errs, fmt.Errorf("amqp: registry %q: only letters, digits, '.', '_' and '-'", r))
		}
	}
	for _, q := range c.Queues {
		if !validName(q) {
			errs = append(errs, fmt.Errorf("amqp: queue %q: only letters, digits, '.', '_' and '-'", q))
		}
	}
	if c.Prefetch < 0 || c.Prefetch > 65535 {
		errs = append(errs, fmt.Errorf("amqp: prefetch %d out of 0..65535", c.Prefetch))
	}
	if c.Concurrency < 1 || c.Concurrency > 256 {
		errs = append(errs, fmt.Errorf("amqp: concurrency %d out of 1..256", c.Concurrency))
	}
	if c.ChannelPoolSize < 1 || c.ChannelPoolSize > 1024 {
		errs = append(errs, fmt.Errorf("amqp: channel pool size %d out of 1..1024", c.ChannelPoolSize))
	}
	if c.DeliveryLimit < 0 {
		errs = append(errs, fmt.Errorf("amqp: delivery limit %d is negative", c.DeliveryLimit))
	}
	if c.ConfirmTimeout < 0 || c.ReconnectMin < 0 {
		errs = append(errs, errors.New("amqp: negative duration"))
	}
	if !validName(c.DeadLetterExchange) || !validName(c.DeadLetterQueue) {
		errs = append(errs, errors.New("amqp: dead-letter exchange and queue: only letters, digits, '.', '_' and '-'"))
	}
	return errors.Join(errs...)
}

func validName(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) < 0
}
