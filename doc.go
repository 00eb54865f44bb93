// Package siobroker holds the domain of the СИО ПСО integration broker: the query a state
// information system sends, the per-service results, the error codes every refusal carries, and the
// clock. It has no I/O; every other package points inward to it.
//
// The wiring lives in cmd/siobroker. Subpackages are named after what they implement: signing
// (XML-DSig and the trust store), soap (the SyncChannel v10 wire form), routing (watermill
// scatter-gather and the adapter runtime), adapters (the per-database backends), store (the
// embedded store), httpapi (the HTTP endpoint) and client (the send code path).
package siobroker
