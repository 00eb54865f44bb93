// Package demo answers all 93 services of Appendix 2 of the Rules from a generated world, so that
// the broker can be demonstrated and tested end to end without any state database.
//
// Generate builds the world from a seed: people in households (IINs that encode birth date and
// gender, with valid check digits), organisations headed and founded by those people (valid
// BINs), their employment, vehicles, real estate, land and weapons, and the facts several services
// must agree on (a conviction, a search, a debt). NewBackend and NewBackends wrap the world in
// adapters.Backend values, one per service; the catalogue of services, with each one's holder and
// the subjects it covers, is Services.
//
// Everything is deterministic: the same seed gives the same answers byte for byte, whatever the
// order or concurrency of the questions, because each answer is computed from the immutable world
// and a random source seeded by (seed, service, subject). Dates are relative to the fixed AsOf,
// not the wall clock. Names come from small built-in lists and are combined at random, so no
// answer describes a real person.
//
// As a source system would, a backend answers NO_DATA, not an error, for an unknown subject, for a
// subject of a kind the service does not cover, and for a subject it has nothing about.
package demo
