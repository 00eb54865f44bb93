// Package incidents records the emergencies that delay message delivery by more than one hour
// (§39–41 and Appendix 7 of the Rules: the journal of emergencies, Журнал аварийных ситуаций).
//
// A Tracker in the broker process watches every message on the legs the broker is responsible
// for, opens an incident as soon as a message of one cause has waited longer than the threshold,
// keeps its count of affected messages up to date and closes it when delivery resumes. A Service
// carries the operator's actions (the measures taken, who was responsible, a manual close); it
// needs only the store, so the operator's command line, in another process, uses it too.
//
// Every change of an incident is kept in the store's append-only history, and opening,
// annotating and closing one each append a siobroker.JournalIncident record to the journal
// (§39: the cases are recorded in the Log journal). All times are Astana time (§28).
package incidents
