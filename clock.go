package siobroker

import "time"

// Astana is the zone every recorded time is written in (§28 of the Rules). Kazakhstan moved to a
// single UTC+5 zone on 2024-03-01; a fixed zone keeps the offset explicit and independent of the
// machine's tzdata.
var Astana = time.FixedZone("Asia/Almaty", 5*60*60)

// Clock is injected wherever time matters, so that tests can move it.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time in Astana time.
func (SystemClock) Now() time.Time { return time.Now().In(Astana) }

// TimeLayout is how times are written on the wire and in the journal: RFC 3339 with milliseconds
// and the offset written out, never "Z".
const TimeLayout = "2006-01-02T15:04:05.000-07:00"

// FormatTime writes t in Astana time with its +05:00 offset.
func FormatTime(t time.Time) string { return t.In(Astana).Format(TimeLayout) }
