package siobroker

// The access rights of Appendices 1 and 2 of the Rules: what one cell of Appendix 2 allows, and the
// decision on one service of a request. The rights package loads the tables and decides.

// Access is what a cell of Appendix 2 grants. The empty Access means the service is not available
// under that basis.
type Access string

// The values a cell of Appendix 2 can hold.
const (
	// AccessNone: the cell is empty; the service is not available under the basis.
	AccessNone Access = ""
	// AccessFull: "+".
	AccessFull Access = "full"
	// AccessTruncated: "+усеченный" (footnote 1). The reply is given without the fields listed
	// for the service under truncation (for service 11, the contribution amounts).
	AccessTruncated Access = "truncated"
	// AccessEconomicArticles: "только по определенным статьям" (footnote 2). The КГД services are
	// available only when the criminal case is under an article of Chapter 8 of the Criminal Code.
	AccessEconomicArticles Access = "economic-articles-only"
)

// Valid reports whether a is one of the non-empty access values.
func (a Access) Valid() bool {
	switch a {
	case AccessFull, AccessTruncated, AccessEconomicArticles:
		return true
	}
	return false
}

// Decision is the outcome of checking one service of a request against the tables.
type Decision struct {
	Allowed bool
	// Access is the cell of Appendix 2 that applied; AccessNone when the request was refused
	// before the cell mattered (role, basis or service unknown, or the cell is empty).
	Access Access
	// Reason is ReasonOK, ReasonDeniedBasis or ReasonDeniedArticle.
	Reason string
	// Explanation is one English sentence naming the role (where known), basis, service and rule.
	Explanation string
}
