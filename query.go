package siobroker

import (
	"fmt"
	"time"
)

// Basis is the kind of case a request is made under: the columns of Appendices 1 and 2.
type Basis int

// The six bases of the Rules, in the order of the appendices' columns.
const (
	BasisCriminal       Basis = 1 // criminal case (ЕРДР), with the §22 sub-forms
	BasisCourtAdmin     Basis = 2 // administrative or administrative-offence case in court
	BasisAdminOffence   Basis = 3 // administrative-offence case registered in КПСиСУ
	BasisCourtCivil     Basis = 4 // civil case in court
	BasisEnforcement    Basis = 5 // enforcement proceedings (АИС ОИП)
	BasisSearch         Basis = 6 // search case
	FirstBasis                = BasisCriminal
	LastBasis                 = BasisSearch
	FirstService              = 1
	LastService               = 93 // Appendix 2 has 93 rows
	MaxServicesPerQuery       = LastService
)

// The bases §1 (as amended on 23.02.2026) adds by reference to the Law "О государственной правовой
// статистике и специальных учетах": the Law, not the Rules, defines them, and the Rules give them
// no column in Appendices 1 and 2, so their rights are configuration (rights.yaml, law_bases),
// closed until the operator opens them.
const (
	BasisOtherBodies   Basis = 7 // иные органы: art. 16-1 p. 1 of the Law
	BasisCovert        Basis = 8 // covert investigative actions and operational-search activity, incl. military intelligence: art. 16-2 p. 3
	BasisFinMonitoring Basis = 9 // financial monitoring against money laundering and the financing of terrorism: art. 16-2 p. 5
	FirstLawBasis            = BasisOtherBodies
	LastLawBasis             = BasisFinMonitoring
)

// Valid reports whether b is one of the six bases of the Rules' appendices.
func (b Basis) Valid() bool { return b >= FirstBasis && b <= LastBasis }

// OfLaw reports whether b is one of the bases of the Law that §1 refers to (7, 8, 9).
func (b Basis) OfLaw() bool { return b >= FirstLawBasis && b <= LastLawBasis }

// Known reports whether b is a basis at all: one of the appendices' or of the Law's.
func (b Basis) Known() bool { return b.Valid() || b.OfLaw() }

// lawReferences are the provisions of the Law that define the bases of §1.
var lawReferences = map[Basis]string{
	BasisOtherBodies:   "п. 1 ст. 16-1 Закона РК «О государственной правовой статистике и специальных учетах»",
	BasisCovert:        "п. 3 ст. 16-2 Закона РК «О государственной правовой статистике и специальных учетах»",
	BasisFinMonitoring: "п. 5 ст. 16-2 Закона РК «О государственной правовой статистике и специальных учетах»",
}

// LegalReference is the provision that defines b: the Law's article for a basis of the Law, ""
// for the bases of the Rules' own appendices.
func (b Basis) LegalReference() string { return lawReferences[b] }

// basisNames are the English names of the columns of Appendices 1 and 2, and of the Law's bases.
var basisNames = map[Basis]string{
	BasisCriminal:     "criminal case",
	BasisCourtAdmin:   "administrative or administrative-offence case, court",
	BasisAdminOffence: "administrative-offence case, КПСиСУ",
	BasisCourtCivil:   "civil case, court",
	BasisEnforcement:  "enforcement proceedings",
	BasisSearch:       "search case",

	BasisOtherBodies:   "other bodies' tasks (Law, art. 16-1 p. 1)",
	BasisCovert:        "covert investigative actions and operational-search activity (Law, art. 16-2 p. 3)",
	BasisFinMonitoring: "financial monitoring (Law, art. 16-2 p. 5)",
}

// Name returns the English name of b, or "" for an invalid basis.
func (b Basis) Name() string { return basisNames[b] }

// CaseRef carries the case reference fields. Which of them a basis needs is the business of the
// case-number rules; the wire form fills only those the sender gave.
type CaseRef struct {
	Number string // ЕРДР number, administrative-offence, enforcement or search case number, or court case number

	// §22 sub-forms of the criminal basis.
	InstructionNo    string // outgoing number of an investigative or prosecutor's instruction
	RequestingBody   string // international legal assistance: the requesting body
	CoveringLetterNo string // international legal assistance: outgoing number of the covering letter

	// §25 court form (bases 2 and 4).
	Year  string // accounting year
	Court string
}

// Subject is the person (IIN) or organisation (BIN) asked about. Exactly one is set.
type Subject struct {
	IIN string
	BIN string
}

// ID returns whichever identifier is set.
func (s Subject) ID() string {
	if s.IIN != "" {
		return s.IIN
	}
	return s.BIN
}

// Query is what a signed request asks: the content of requestData/data, after the signature has
// been verified. Nothing in it identifies the user; that comes from the certificate.
type Query struct {
	Basis    Basis
	Case     CaseRef
	Article  string // Criminal Code article the request names: a hint, checked against CaseArticles
	Subject  Subject
	Services []int
	Purpose  string

	// CaseArticles is the case's qualification as its case registry answered the check of §5:
	// set by the broker once the check passed, never read from the request (a client leaves it
	// empty, and the request's XML has no place for it). It is stored with an admitted request,
	// so that services decided later (the asynchronous worker, a resumed request) are decided on
	// the same facts. Nil: no registry said (basis 3 is not checked, §23).
	CaseArticles []string
}

// Qualification is what the footnote-2 decision of Appendix 2 knows of q's case.
func (q Query) Qualification() Qualification {
	return Qualification{Articles: q.CaseArticles, Hint: q.Article}
}

// Qualification is a case's qualification as the footnote-2 decision (App. 2 fn. 2) sees it: the
// КГД services are available "по статьям главы 8 Уголовного кодекса", which is a fact of the case
// the registry holds, not something the user declares.
type Qualification struct {
	// Articles are the Criminal Code articles of the case, as its case registry gave them (§5):
	// article numbers such as "216" or "217-1". Nil: no registry said.
	Articles []string
	// Hint is the article the request named (query/article), "" for none. It is at most a hint:
	// it must be one of Articles, and then it is the article the request is made for.
	Hint string
}

// Participant is a person in a case's proceedings as a case registry lists them (§5): their IIN
// and their part in the proceedings (investigator, group_member, supervising_prosecutor, judge,
// bailiff...), in the registry's words, lower-cased. Which part puts a case "in the proceedings"
// of a user of which role is the broker's configuration, not the registry's.
type Participant struct {
	IIN  string `json:"iin"`
	Part string `json:"part"`
}

// CaseFacts are what a case registry holds of a case it found (§5): its status in the registry's
// words, lower-cased ("open", "suspended", "closed"...), the people in its proceedings, and its
// qualification (Criminal Code articles; none for a civil case or enforcement proceedings).
type CaseFacts struct {
	Status       string
	Participants []Participant
	Articles     []string
}

// PartsOf returns the parts iin has in the case, in the order the registry listed them.
func (f CaseFacts) PartsOf(iin string) []string {
	var parts []string
	for _, p := range f.Participants {
		if p.IIN == iin {
			parts = append(parts, p.Part)
		}
	}
	return parts
}

// RequestInfo is the envelope part of a SyncChannel request.
type RequestInfo struct {
	MessageID     string
	CorrelationID string
	ServiceID     string
	MessageDate   time.Time
	RouteID       string
	SenderID      string
	Properties    []Property
	SessionID     string
}

// Property is a key/value pair of requestInfo.
type Property struct {
	Key   string
	Value string
}

// ResultStatus is the outcome of one requested service.
type ResultStatus string

// The four outcomes a reply can carry per service.
const (
	StatusOK      ResultStatus = "ok"
	StatusDenied  ResultStatus = "denied"
	StatusError   ResultStatus = "error"
	StatusTimeout ResultStatus = "timeout"
)

// Reason codes of a per-service result. Like Code, they are part of the wire contract.
const (
	ReasonOK            = "OK"
	ReasonNoData        = "NO_DATA"
	ReasonDeniedBasis   = "DENIED_BASIS"   // the service is not available under this basis (App. 2)
	ReasonDeniedArticle = "DENIED_ARTICLE" // a КГД service without a Chapter 8 article
	ReasonAdapterError  = "ADAPTER_ERROR"  // the source system answered with an error
	ReasonUnavailable   = "UNAVAILABLE"    // the service could not be dispatched
	ReasonTimeout       = "TIMEOUT"        // no answer within the service's timeout
	ReasonMaintenance   = "MAINTENANCE"    // the service is in an announced maintenance window (§36, 42); the message names it
)

// Field is one named value of a result record.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Record is one row of a service's answer: a person, a vehicle, a property title and so on.
type Record struct {
	Type   string  `json:"type"`
	Fields []Field `json:"fields"`
}

// ServiceResult is the answer for one requested service.
type ServiceResult struct {
	Service int          `json:"service"`
	Status  ResultStatus `json:"status"`
	Reason  string       `json:"reason"`
	Message string       `json:"message,omitempty"`
	Records []Record     `json:"records,omitempty"`
}

// ValidateIIN checks a 12-digit IIN or BIN and its check digit. Both use the same algorithm: the
// weighted sum of the first eleven digits modulo 11, with a second set of weights when the first
// gives 10; a second 10 means the number is never issued.
func ValidateIIN(id string) error {
	if len(id) != 12 {
		return fmt.Errorf("must be 12 digits, got %d characters", len(id))
	}
	var d [12]int
	for i := range 12 {
		c := id[i]
		if c < '0' || c > '9' {
			return fmt.Errorf("must be 12 digits, found %q at position %d", c, i+1)
		}
		d[i] = int(c - '0')
	}
	check := iinCheckDigit(d)
	if check < 0 {
		return fmt.Errorf("no valid check digit exists for this number")
	}
	if check != d[11] {
		return fmt.Errorf("check digit is %d, expected %d", d[11], check)
	}
	return nil
}

func iinCheckDigit(d [12]int) int {
	sum := 0
	for i := range 11 {
		sum += (i + 1) * d[i]
	}
	if c := sum % 11; c != 10 {
		return c
	}
	sum = 0
	for i := range 11 {
		sum += ((i+2)%11 + 1) * d[i]
	}
	if c := sum % 11; c != 10 {
		return c
	}
	return -1
}

// CompleteIIN appends the check digit to an 11-digit prefix. It returns false when the prefix has
// no valid check digit. Demo data and the development PKI use it to make valid numbers.
func CompleteIIN(prefix string) (string, bool) {
	if len(prefix) != 11 {
		return "", false
	}
	var d [12]int
	for i := range 11 {
		if prefix[i] < '0' || prefix[i] > '9' {
			return "", false
		}
		d[i] = int(prefix[i] - '0')
	}
	c := iinCheckDigit(d)
	if c < 0 {
		return "", false
	}
	return prefix + string(rune('0'+c)), true
}
