package siobroker

import "time"

// Notification is one notice to one recipient, kept in the store's outbox until it is delivered:
// the notices §45 of the Rules requires when a user is blocked for a violation (to the prosecutor
// and the user's management), and those of the deadlines of applications (§12–15). The notifier
// (operator/notify) delivers it by e-mail or webhook and retries it until it is delivered.
type Notification struct {
	ID           int64
	CreatedAt    time.Time
	Kind         string // what it is about, e.g. NoticeUserBlocked
	Organisation string // the organisation it concerns, whose recipients got it
	Channel      string // NoticeEmail or NoticeWebhook
	Recipient    string // an e-mail address or a webhook URL
	Subject      string
	Body         string
	Attempts     int
	NextAttempt  time.Time
	LastError    string
	DeliveredAt  time.Time // zero until delivered
}

// The channels of a notification.
const (
	NoticeEmail   = "email"
	NoticeWebhook = "webhook"
)

// The kinds of notification.
const (
	NoticeUserBlocked = "user-blocked" // §45: a user blocked for a violation
)

// JournalNotification is the kind of the journal records of notifications: one when a notice is
// written to the outbox (to whom, about what), one when it is delivered.
const JournalNotification JournalKind = "notification"

// The kinds of the notices of applications (§12–15).
const (
	NoticeApplicationSubmitted = "application-submitted" // to the operator: an application to decide by its deadline
	NoticeApplicationOverdue   = "application-overdue"   // to the operator: an application past its deadline undecided
	NoticeApplicationDecided   = "application-decided"   // to the applicant's organisation: approved, or refused with the motive
)

// The events of a submitted application that are each told once.
const (
	ApplicationEventSubmitted = "submitted"
	ApplicationEventOverdue   = "overdue"
	ApplicationEventDecided   = "decided"
)

// ApplicationNoticeDue is an event of a submitted application whose notice has not been written.
type ApplicationNoticeDue struct {
	Application SubmittedApplication
	Event       string // ApplicationEventSubmitted, ApplicationEventOverdue or ApplicationEventDecided
}
