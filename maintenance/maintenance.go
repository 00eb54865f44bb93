// Package maintenance holds the planned maintenance windows of the broker's services (§36, 42 of
// the Rules): the service is available around the clock except in emergencies and in maintenance
// announced in advance. A window is announced by an operator (dashboard or command line) or
// configured in a file; while one is open, requests for its services get an answer that names it.
package maintenance

import "time"

// Window is one announced maintenance window.
type Window struct {
	ID int64 `json:"id"` // 0 for a window from the file
	// Services are the services of Appendix 2 the window affects; empty means every service.
	Services    []int     `json:"services,omitempty"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Reason      string    `json:"reason"`
	AnnouncedBy string    `json:"announcedBy"`
	AnnouncedAt time.Time `json:"announcedAt"`
	// Source is "announced" (operator, kept in the store) or "file" (configuration, reloaded).
	Source    string    `json:"source"`
	Cancelled time.Time `json:"cancelled,omitzero"` // zero while in force
}
