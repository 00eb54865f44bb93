package incidents

import (
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/sio-pso/siobroker"
)

// Register is the journal of emergencies of a period in the form of Appendix 7 (Журнал аварийных
// ситуаций): a table of actions for each of the six kinds, each emergency with the date and time
// of its onset, its causes and the measures taken (§41); then, beyond the form's six tables, the
// incidents the broker recorded by itself (§39: delays of delivery over an hour, and the failures
// of its transport, journal and signer, and the maintenance announced as an emergency), with their
// measures, since §41 asks for every emergency.
type Register struct {
	From, To time.Time // the period: incidents whose onset is in [From, To); a zero bound is open
	At       time.Time // when it was made: an action still running is measured to it
	Sections []RegisterSection
}

// RegisterSection is one table of the register.
type RegisterSection struct {
	No        int    // 1–6 as in Appendix 7; 7 for the incidents the broker recorded
	Title     string // the heading of Appendix 7
	Incidents []siobroker.Incident
}

// BrokerSectionTitle is the heading of the register's seventh table, which Appendix 7 does not
// have: the incidents the broker recorded by itself.
const BrokerSectionTitle = "Иные аварийные ситуации, зафиксированные брокером (п. 39–41 Правил): задержка отправки сообщений " +
	"более одного часа, отказ транспорта сообщений, Log-журнала, подписи ответов, аварийные технические работы"

// NewRegister arranges the incidents all (as the store lists them) whose onset is in [from, to)
// into the register, at at. Every section is present, empty or not, as the form has them.
func NewRegister(all []siobroker.Incident, from, to, at time.Time) Register {
	r := Register{From: from, To: to, At: at}
	for _, kind := range siobroker.EmergencyKinds() {
		r.Sections = append(r.Sections, RegisterSection{No: kind.Section(), Title: kind.Title()})
	}
	r.Sections = append(r.Sections, RegisterSection{No: len(r.Sections) + 1, Title: BrokerSectionTitle})
	for _, inc := range all {
		if (!from.IsZero() && inc.StartedAt.Before(from)) || (!to.IsZero() && !inc.StartedAt.Before(to)) {
			continue
		}
		n := len(r.Sections) - 1
		if kind, ok := inc.EmergencyKind(); ok {
			n = kind.Section() - 1
		}
		r.Sections[n].Incidents = append(r.Sections[n].Incidents, inc)
	}
	return r
}

// Describe is the cause of inc in words, as the register gives it.
func Describe(inc siobroker.Incident) string {
	if inc.Reason != "" {
		return inc.Reason
	}
	if inc.Type == siobroker.IncidentEmergencyMaintenance {
		return "аварийные технические работы: " + inc.LastError
	}
	if inc.Type == siobroker.IncidentDeliveryDelay {
		s := fmt.Sprintf("задержка отправки сообщений более одного часа: сервис %d, очередь %s", inc.Cause.Service, inc.Cause.Queue)
		if inc.Cause.Adapter != "" {
			s += ", адаптер " + inc.Cause.Adapter
		}
		return s
	}
	return inc.Type + ": " + inc.Cause.String()
}

// FormatMax writes a maximum time as the form's column reads: "1 ч 30 мин".
func FormatMax(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	d = d.Round(time.Second)
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	var parts []string
	if h > 0 {
		parts = append(parts, strconv.Itoa(h)+" ч")
	}
	if m > 0 {
		parts = append(parts, strconv.Itoa(m)+" мин")
	}
	if s > 0 || len(parts) == 0 {
		parts = append(parts, strconv.Itoa(s)+" с")
	}
	return strings.Join(parts, " ")
}

// printLayout is how the printed register writes a time: the date as read in Kazakhstan, with the
// offset written out (§28).
const printLayout = "02.01.2006 15:04 -07:00"

func printTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(siobroker.Astana).Format(printLayout)
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return siobroker.FormatTime(t)
}

// overdueText says by how much an action went past its maximum time; "" when it did not.
func overdueText(a siobroker.IncidentAction, at time.Time) string {
	if !a.Overdue(at) {
		return ""
	}
	over := FormatMax(a.Elapsed(at) - a.Max)
	if a.EndedAt.IsZero() {
		return "превышено на " + over + " (не окончено)"
	}
	return "превышено на " + over
}

// registerColumns are the CSV's columns: the incident's, then those of Appendix 7's table.
var registerColumns = []string{"Раздел", "Вид аварийной ситуации", "№ ситуации", "Статус", "Дата и время наступления", "Дата и время записи",
	"Причины", "Принятые меры", "Ответственный за меры", "Дата и время окончания ситуации", "Затронуто сообщений",
	"№ п/п", "Действия", "Необходимое время (max)", "Ответственный", "Дата и время начала", "Дата и время окончания", "Превышение"}

// WriteCSV writes the register as CSV: one row per action of an emergency, one row for an
// emergency without actions or an incident the broker recorded, times in Astana time with their
// offset (RFC 3339).
func (r Register) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(registerColumns); err != nil {
		return fmt.Errorf("write the register: %w", err)
	}
	for _, s := range r.Sections {
		for _, inc := range s.Incidents {
			head := []string{strconv.Itoa(s.No), s.Title, strconv.FormatInt(inc.Number, 10), statusText(inc.Status),
				csvTime(inc.StartedAt), csvTime(inc.OpenedAt), Describe(inc), inc.Measures, inc.Responsible, csvTime(inc.ClosedAt),
				strconv.Itoa(inc.Affected)}
			if len(inc.Actions) == 0 {
				if err := cw.Write(append(head, "", "", "", "", "", "", "")); err != nil {
					return fmt.Errorf("write the register: %w", err)
				}
				continue
			}
			for _, a := range inc.Actions {
				row := append(append([]string(nil), head...), strconv.Itoa(a.No), a.Action, FormatMax(a.Max), a.Responsible,
					csvTime(a.StartedAt), csvTime(a.EndedAt), overdueText(a, r.At))
				if err := cw.Write(row); err != nil {
					return fmt.Errorf("write the register: %w", err)
				}
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write the register: %w", err)
	}
	return nil
}

func statusText(s siobroker.IncidentStatus) string {
	if s == siobroker.IncidentOpen {
		return "открыта"
	}
	return "закрыта"
}

// RegisterCSS is the style of the printed register: A4 landscape, the tables of the form ruled,
// nothing but the register printed.
const RegisterCSS = `@page { size: A4 landscape; margin: 12mm; }
body { font-family: "Times New Roman", serif; font-size: 11pt; color: #000; margin: 0 auto; max-width: 1100px; }
h1 { font-size: 14pt; text-align: center; margin: 0 0 4pt; }
.form-ref { text-align: right; font-size: 9pt; margin: 0 0 8pt; }
.period { text-align: center; margin: 0 0 12pt; }
h2 { font-size: 12pt; margin: 14pt 0 4pt; }
.emergency { margin: 6pt 0 2pt; }
.none { font-style: italic; margin: 2pt 0 8pt; }
table { border-collapse: collapse; width: 100%; margin: 0 0 8pt; page-break-inside: auto; }
th, td { border: 1px solid #000; padding: 2pt 4pt; vertical-align: top; text-align: left; }
th { font-weight: bold; text-align: center; }
td.no { text-align: center; width: 3em; }
tr.overdue td { font-weight: bold; }
tr { page-break-inside: avoid; }
.printed { font-size: 9pt; margin-top: 12pt; }
@media screen { body { padding: 16px; } }
`

// HTMLOptions adjust the HTML of the register.
type HTMLOptions struct {
	// Stylesheet is the URL of RegisterCSS, for a page served under a Content-Security-Policy
	// that forbids inline styles (the dashboard); "" puts the style in the page, for a file
	// opened in a browser.
	Stylesheet string
}

var registerTemplate = template.Must(template.New("register").Funcs(template.FuncMap{
	"time":     printTime,
	"maxTime":  FormatMax,
	"describe": Describe,
	"status":   statusText,
	"overdue":  overdueText,
	"css":      func() template.CSS { return template.CSS(RegisterCSS) },
}).Parse(`<!DOCTYPE html>
<html lang="ru"><head><meta charset="utf-8"><title>Журнал аварийных ситуаций</title>
{{if .Stylesheet}}<link rel="stylesheet" href="{{.Stylesheet}}">{{else}}<style>{{css}}</style>{{end}}
</head><body>
<p class="form-ref">Приложение 7 к Правилам формирования, доступа, использования, хранения, защиты и уничтожения сведений
из системы информационного обмена правоохранительных, специальных государственных и иных органов<br>форма</p>
<h1>Журнал аварийных ситуаций</h1>
<p class="period">{{if or (not .R.From.IsZero) (not .R.To.IsZero)}}за период {{if not .R.From.IsZero}}с {{time .R.From}} {{end}}{{if not .R.To.IsZero}}по {{time .R.To}}{{end}}{{else}}за все время{{end}}</p>
{{$at := .R.At}}{{range .R.Sections}}
<h2 id="section-{{.No}}">{{.No}}. {{.Title}}:</h2>
{{if not .Incidents}}<p class="none">Аварийные ситуации не зафиксированы.</p>{{end}}
{{range .Incidents}}
<p class="emergency" id="incident-{{.Number}}"><b>Аварийная ситуация № {{.Number}}</b> ({{status .Status}}).
Дата и время наступления: {{time .StartedAt}}; записана: {{time .OpenedAt}}; окончание: {{time .ClosedAt}}.
Причины: {{describe .}}.{{if .Affected}} Затронуто сообщений: {{.Affected}}.{{end}}{{if .LastError}} Последняя ошибка: {{.LastError}}.{{end}}
Принятые меры: {{if .Measures}}{{.Measures}}{{else}}—{{end}}{{if .Responsible}} (ответственный: {{.Responsible}}){{end}}.{{if .CloseNote}} Закрыта: {{.CloseNote}}.{{end}}</p>
<table>
<thead><tr><th>№ п/п</th><th>Действия</th><th>Необходимое время (max)</th><th>Ответственный</th><th>Дата и время начала</th><th>Дата и время окончания</th></tr></thead>
<tbody>
{{range .Actions}}{{$over := overdue . $at}}<tr{{if $over}} class="overdue"{{end}}><td class="no">{{.No}}</td><td>{{.Action}}</td><td>{{maxTime .Max}}{{if $over}}<br>{{$over}}{{end}}</td><td>{{.Responsible}}</td><td>{{time .StartedAt}}</td><td>{{time .EndedAt}}</td></tr>
{{else}}<tr><td class="no">—</td><td>{{if .Measures}}{{.Measures}}{{else}}—{{end}}</td><td>—</td><td>{{if .Responsible}}{{.Responsible}}{{else}}—{{end}}</td><td>{{time .StartedAt}}</td><td>{{time .ClosedAt}}</td></tr>
{{end}}</tbody></table>
{{end}}{{end}}
<p class="printed">Сформирован {{time .R.At}} (время Астаны).</p>
</body></html>
`))

// WriteHTML writes the register as an HTML page in the form of Appendix 7, meant for the
// browser's print (A4 landscape).
func (r Register) WriteHTML(w io.Writer, opts HTMLOptions) error {
	if err := registerTemplate.Execute(w, struct {
		R          Register
		Stylesheet string
	}{r, opts.Stylesheet}); err != nil {
		return fmt.Errorf("write the register: %w", err)
	}
	return nil
}
