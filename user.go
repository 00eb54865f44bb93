package siobroker

import (
	"errors"
	"fmt"
	"time"
)

// UserStatus is the state of a registered user (§12–16 of the Rules).
type UserStatus string

// The three states of an account.
const (
	UserActive  UserStatus = "active"
	UserBlocked UserStatus = "blocked"
	UserDeleted UserStatus = "deleted"
)

// InactivityLimit is the period without a request after which an account is blocked (§16).
const InactivityLimit = 60 * 24 * time.Hour

// User is one entry of the user registry: the fields of Appendix 5, the role of Appendix 1 and the
// state of the account. The role always comes from here, looked up by the IIN of the signing
// certificate, never from a request.
type User struct {
	IIN          string
	FullName     string
	Organisation string
	ERDRCode     string // the organisation's code in ЕРДР
	Department   string
	Position     string
	// The contact data of App. 5, each its own field so that each can be required and checked
	// (§43): the SMS code of §18 goes to MobilePhone, the notices to Email.
	WorkPhone   string
	MobilePhone string
	Email       string
	WorkAddress string
	// Contacts is the one free-text contacts field of registries made before the App. 5 fields
	// were separate: kept as it was (legacy), never required, never written by a new application.
	Contacts     string
	Role         int  // a row of Appendix 1
	ReportsRight bool // access to the "Reports" function (§10)
	// SanctionRight is access to the "Санкционирование" function, which App. 5 offers beside
	// "Отчеты" to the staff of the prosecutor's office.
	SanctionRight bool
	// OperatorRight is access to the operator's dashboard: service state, incidents, the
	// dead-letter queue and maintenance windows (§36, 39–42).
	OperatorRight bool
	Status        UserStatus
	ConsentAt     time.Time // when the consent (App. 6) was signed; zero = none recorded
	LastRequest   time.Time // zero = never
	RegisteredAt  time.Time
}

// ApplicationKind is the kind of an application (Заявка, App. 5).
type ApplicationKind string

// The five kinds of application of §12–15.
const (
	ApplyRegister ApplicationKind = "register"
	ApplyMove     ApplicationKind = "move"
	ApplyBlock    ApplicationKind = "block"
	ApplyDelete   ApplicationKind = "delete"
	ApplyUnblock  ApplicationKind = "unblock"
)

// Application is one application applied to the registry. Every application is kept, with its
// time and reason, whatever it changed.
type Application struct {
	ID     int64
	Kind   ApplicationKind
	IIN    string
	Reason string
	At     time.Time
	By     string // who applied it: an operator's name, "import", or "system" for §16
	User   User   // the user's fields after a register or move application
}

// CheckAccess returns the refusal a user gets, or nil when the user may make requests.
func (u User) CheckAccess() error {
	switch u.Status {
	case UserActive:
	case UserBlocked:
		return Errorf(CodeUserBlocked, "the account of user %s is blocked", u.IIN)
	case UserDeleted:
		return Errorf(CodeUserDeleted, "the account of user %s is deleted", u.IIN)
	default:
		return Errorf(CodeInternal, "user %s has an unknown status %q", u.IIN, u.Status)
	}
	if u.ConsentAt.IsZero() {
		return Errorf(CodeNoConsent, "user %s has no recorded consent (Appendix 6, §17 and §19 of the Rules)", u.IIN)
	}
	return nil
}

// Apply returns the user after application a, or an error when a is not allowed in the user's
// current state. exists reports whether the user was in the registry before.
func (a Application) Apply(current User, exists bool) (User, error) {
	if !exists && a.Kind != ApplyRegister {
		return User{}, fmt.Errorf("%s: user %s is not registered", a.Kind, a.IIN)
	}
	next := current
	switch a.Kind {
	case ApplyRegister:
		if exists && current.Status != UserDeleted {
			return User{}, fmt.Errorf("register: user %s is already registered (%s)", a.IIN, current.Status)
		}
		next = a.User
		next.IIN = a.IIN
		next.Status = UserActive
		next.RegisteredAt = a.At
		next.LastRequest = time.Time{}
	case ApplyMove:
		if current.Status == UserDeleted {
			return User{}, fmt.Errorf("move: user %s is deleted", a.IIN)
		}
		next = a.User
		next.IIN, next.Status, next.RegisteredAt, next.LastRequest = a.IIN, current.Status, current.RegisteredAt, current.LastRequest
		if next.ConsentAt.IsZero() {
			next.ConsentAt = current.ConsentAt
		}
	case ApplyBlock:
		if current.Status != UserActive {
			return User{}, fmt.Errorf("block: user %s is %s, not active", a.IIN, current.Status)
		}
		next.Status = UserBlocked
	case ApplyUnblock:
		if current.Status != UserBlocked {
			return User{}, fmt.Errorf("unblock: user %s is %s, not blocked", a.IIN, current.Status)
		}
		next.Status = UserActive
		// The 60-day clock restarts, or the account would be blocked again at once.
		next.LastRequest = a.At
	case ApplyDelete:
		if current.Status == UserDeleted {
			return User{}, fmt.Errorf("delete: user %s is already deleted", a.IIN)
		}
		next.Status = UserDeleted
	default:
		return User{}, fmt.Errorf("unknown application kind %q", a.Kind)
	}
	if a.Reason == "" {
		return User{}, fmt.Errorf("%s: a reason is required", a.Kind)
	}
	return next, nil
}

// Inactive reports whether an active user has made no request for InactivityLimit by now. A user
// who never made a request is measured from registration.
func (u User) Inactive(now time.Time) bool {
	if u.Status != UserActive {
		return false
	}
	since := u.LastRequest
	if since.IsZero() {
		since = u.RegisteredAt
	}
	return !since.IsZero() && now.Sub(since) > InactivityLimit
}

// CertificateSource says how the user registry came to hold a user's certificate.
type CertificateSource string

// The ways a certificate enters the registry.
const (
	// CertificateRegistered was given by an operator (`users register --cert`, `users
	// add-cert`), or is a demo user's certificate of the development PKI.
	CertificateRegistered CertificateSource = "registered"
	// CertificateLearnt was carried whole by one of the user's accepted requests.
	CertificateLearnt CertificateSource = "learnt"
)

// UserCertificate is a signing certificate the user registry holds for a user. WS-Security
// clients may name their certificate by an identifier only (a thumbprint, a subject key
// identifier, an issuer and serial number); such a request is verified against the certificates
// held here, and only these.
type UserCertificate struct {
	IIN            string
	DER            []byte
	ThumbprintSHA1 []byte // SHA-1 of DER
	SubjectKeyID   []byte // the extension, or the SHA-1 of the public key (RFC 5280 §4.2.1.2, method 1)
	SerialNumber   string // decimal
	Subject        string // for people
	NotAfter       time.Time
	Source         CertificateSource
	AddedAt        time.Time
	AddedBy        string
}

// ErrTransition marks an application that is not allowed in the user's current state (or fails
// its precondition). Such an application changes nothing and is not recorded. Every user store
// wraps it.
var ErrTransition = errors.New("application refused")

// CertificateLookup selects users' certificates by one identifier, as a WS-Security KeyInfo names
// one. Exactly one field is set.
type CertificateLookup struct {
	ThumbprintSHA1 []byte
	SubjectKeyID   []byte
	SerialNumber   string // decimal
}

// The states of a submitted application (§13).
const (
	SubmittedPending  = "pending"  // waiting for the operator's decision
	SubmittedApproved = "approved" // the operator approved it: it was applied
	SubmittedRefused  = "refused"  // the operator refused it with a motivated, signed refusal
)

// SubmittedApplication is an application (Заявка, App. 5) submitted to the operator and waiting
// for a decision, which §13 of the Rules gives the operator a day to take: approved, it is
// applied; refused, the refusal is motivated and signed with the operator's EDS. Kept forever.
type SubmittedApplication struct {
	ID          int64
	Application Application // Kind, IIN, Reason, User; At is when it was submitted, By who submitted it
	Deadline    time.Time   // when the operator's decision is due
	Status      string      // SubmittedPending, SubmittedApproved or SubmittedRefused
	DecidedAt   time.Time
	DecidedBy   string
	// Refusal is the signed refusal document (an XML-DSig enveloped document) and RefusalSigner
	// the IIN of the certificate that signed it; RefusalReason its motive.
	RefusalReason string
	Refusal       []byte
	RefusalSigner string
	// Form is the App. 5 document signed by the head of the applicant's organisation (users
	// application-form, §12), verified against the trusted roots when submitted; FormSignerIIN and
	// FormSigner are the IIN and subject of its signing certificate. An application the operator
	// entered himself has no Form: Signed reports which.
	Form          []byte
	FormSignerIIN string
	FormSigner    string
}

// Signed reports whether the application was submitted as an App. 5 document signed by the
// head of the organisation, rather than entered by the operator.
func (s SubmittedApplication) Signed() bool { return len(s.Form) > 0 }

// Overdue reports whether the application waits past its deadline at now.
func (s SubmittedApplication) Overdue(now time.Time) bool {
	return s.Status == SubmittedPending && now.After(s.Deadline)
}

// ErrNotPending is returned by a decision on an application that is not pending any more.
var ErrNotPending = errors.New("the application has been decided already")

// Consent is a consent of §17 (App. 6) the user signed with their own EDS, as recorded: the signed
// bytes, the date they state, who signed them, and when and by whom the broker recorded them.
type Consent struct {
	IIN        string
	SignedOn   time.Time // the date of the signed document, midnight Astana
	Document   []byte
	SHA256     string
	Signer     string // the subject of the signing certificate
	RecordedAt time.Time
	RecordedBy string
}
