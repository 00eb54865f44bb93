// Package health gathers what operators watch: the state of every service's route (queue
// depth, messages in flight, the age of the oldest undelivered message, errors), read from the
// dispatcher, the delay tracker and the transport. The metrics endpoint, the dashboard and the
// command line read the same snapshot, so that they never disagree.
package health

import "time"

// ServiceState is one service's state at one moment.
type ServiceState struct {
	Service int    `json:"service"`
	Queue   string `json:"queue"`
	// QueueDepth is the number of messages ready in the service's queue; -1 when the transport
	// cannot tell (the in-process GoChannel).
	QueueDepth int64 `json:"queueDepth"`
	// DeadLetters is the number of this service's messages in the dead-letter queue; -1 when
	// the transport has none.
	DeadLetters int64 `json:"deadLetters"`
	// InFlight is the number of messages sent to the service and not yet answered.
	InFlight int `json:"inFlight"`
	// OldestAge is how long the oldest undelivered message of the service has waited; zero
	// when none is waiting.
	OldestAge time.Duration `json:"oldestAge"`
	// Totals since the broker started. Every message dispatched ends one way: answered within
	// the service's time limit with a result (ok, NO_DATA or the source's error), a dispatch
	// error, or a timeout (no result within the limit, the adapter's TIMEOUT answer included; a
	// message still waited for past its limit is a timeout from then on, and Overdue). Errors
	// counts the error answers and the dispatch errors.
	Dispatched     uint64 `json:"dispatched"`
	Answered       uint64 `json:"answered"`
	NoData         uint64 `json:"noData"` // of Answered, ok without records (NO_DATA)
	Errors         uint64 `json:"errors"`
	Timeouts       uint64 `json:"timeouts"`
	ErrorAnswers   uint64 `json:"errorAnswers"`   // answers with status error
	DispatchErrors uint64 `json:"dispatchErrors"` // messages not sent, or whose answer could not be read
	// Overdue is how many of the Timeouts are still waited for in the background, past their
	// limit (routing.async_timeout).
	Overdue int `json:"overdue"`
	// LateAnswers counts the answers that came after their message's limit (it was counted a
	// timeout): in the background wait, or after it (journaled as late records), or after a
	// restart; they stand apart from the totals above. So do RefusedAnswers, the answers refused
	// as not made by the service's adapter, and Denied and Maintenance, the results given without
	// dispatching: refused by the access rights, or in a maintenance window.
	LateAnswers    uint64 `json:"lateAnswers"`
	RefusedAnswers uint64 `json:"refusedAnswers"`
	Denied         uint64 `json:"denied"`
	Maintenance    uint64 `json:"maintenance"`
	// ErrorRate is (Errors+Timeouts)/Dispatched over the messages that ended in the recent past
	// (routing.RecentWindow, five minutes); zero when none ended.
	ErrorRate float64 `json:"errorRate"`
}
