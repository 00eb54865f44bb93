// Package faults is the fault test of issue 15: a private RabbitMQ node, a broker process and two
// adapter processes sharing a ledger in PostgreSQL run a steady load on both channels while the
// test kills the broker, an adapter and RabbitMQ with SIGKILL, locks the journal and puts poison
// on a service queue and on the reply queue; it then accounts for every request from the journal,
// the ledger, the dead-letter queue and its own log of what it sent and got back.
//
// TestIntegrationClusterLeaderKilled is the scale-out test of issue 20: a cluster of three
// private RabbitMQ nodes (quorum queues on all three), two broker processes journaling into one
// PostgreSQL journal, four adapter processes, every process given the three nodes' URLs; under
// load on both brokers it kills the node leading the service queues, accounts for every request
// by the same rules, and reports how long the service took to resume.
//
// `make test` runs both in a short form; `make faults` runs the long ones
// (go test ./internal/faults -run 'TestFaults|TestIntegrationClusterLeaderKilled' -args
// -faults.long). They print a table of counts: lost, duplicated and stuck must all be 0. The
// code is all in the test files.
package faults
