// Package faults is the fault test of issue 15: a private RabbitMQ node, a broker process and two
// adapter processes sharing a ledger in PostgreSQL run a steady load on both channels while the
// test kills the broker, an adapter and RabbitMQ with SIGKILL, locks the journal and puts poison
// on a service queue and on the reply queue; it then accounts for every request from the journal,
// the ledger, the dead-letter queue and its own log of what it sent and got back.
//
// `make test` runs it in a short form; `make faults` runs the long one
// (go test ./internal/faults -run TestFaults -args -faults.long). Both print a table of counts
// per fault: lost, duplicated and stuck must all be 0. The code is all in the test files.
package faults
