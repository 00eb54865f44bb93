// Package siobroker holds the domain of the СИО ПСО integration broker: the query a state
// information system sends, the per-service results, the error codes every refusal carries, and the
// clock. It has no I/O; every other package points inward to it.
//
// The wiring lives in internal/app, the commands in internal/cli; docs/architecture.md draws the
// layout and the path of one request.
package siobroker
