package reports

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// A report of the request index is written row by row as it is read (sheet): CSV and JSON go to
// the writer as they come, so a report of a year holds a few rows in memory whatever its size. An
// XLSX workbook is a zip of XML parts that can only be closed once every row is in: excelize's
// StreamWriter keeps the rows in memory up to 16 MB and then in a temporary file (Config.TempDir),
// and the workbook is zipped straight to the writer at the end (xlsxSheet.close).

// requestColumns are the columns of a report of requests, in order (requestRow.cells).
var requestColumns = []string{"time", "request_id", "signer_iin", "signer_name", "organisation", "erdr_code", "department",
	"basis", "basis_name", "case", "article", "subject_kind", "subject", "services", "purpose", "outcome", "code",
	"service_outcomes", "replied_at", "message_id", "seq", "note"}

// summaryColumns are the columns of the monthly summary, in order (summaryRow.cells).
var summaryColumns = []string{"month", "erdr_code", "organisation", "department", "requests", "answered", "partial", "denied",
	"failed", "refused", "pending"}

// requestRow is one request as a report shows it; its JSON is a row of a JSON report.
type requestRow struct {
	Time            string           `json:"time"`
	RequestID       string           `json:"requestId"`
	SignerIIN       string           `json:"signerIin"`
	SignerName      string           `json:"signerName"`
	Organisation    string           `json:"organisation"`
	ERDRCode        string           `json:"erdrCode"`
	Department      string           `json:"department"`
	Basis           int              `json:"basis"` // 0: the query could not be read (note)
	BasisName       string           `json:"basisName"`
	Case            string           `json:"case"`
	Article         string           `json:"article"`
	SubjectKind     string           `json:"subjectKind"` // iin, bin, or "" when unknown
	Subject         string           `json:"subject"`
	Services        []int            `json:"services"`
	Purpose         string           `json:"purpose"`
	Outcome         string           `json:"outcome"`
	Code            string           `json:"code"`
	ServiceOutcomes []serviceOutcome `json:"serviceOutcomes"`
	RepliedAt       string           `json:"repliedAt"`
	MessageID       string           `json:"messageId"`
	Seq             int64            `json:"seq"`
	Note            string           `json:"note"`
}

type serviceOutcome struct {
	Service int    `json:"service"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
}

// withheld is the note of a row whose subject and purpose a report does not show (see
// newRequestRow).
const withheld = "subject and purpose withheld: a request of another organisation (§44 of the Rules)"

// newRequestRow is the row of e. own is false for a request of another organisation than the
// caller's, which only an oversight role sees: its subject is masked to its last four digits
// and its purpose left out. They are a third person's data (§44: the operator does not spread
// what users asked about), which the organisation's own control needs to judge a request against
// its case, and an oversight across organisations does not: it sees who asked what, under which
// case, how often and with what outcome; the details of one request are the organisation's, or
// the prosecutor's under §51–53 through the export.
func newRequestRow(e siobroker.RequestEntry, own bool) requestRow {
	r := requestRow{
		Time: siobroker.FormatTime(e.At), RequestID: e.RequestID, SignerIIN: e.SignerIIN, SignerName: e.SignerName,
		Organisation: e.Organisation, ERDRCode: e.ERDRCode, Department: e.Department, Basis: int(e.Basis),
		BasisName: e.Basis.Name(), Case: e.Case, Article: e.Article, Services: e.Services, Purpose: e.Purpose,
		Outcome: string(e.Outcome), Code: e.Code, MessageID: e.MessageID, Seq: e.Seq, Note: e.Note,
	}
	switch {
	case e.Subject.IIN != "":
		r.SubjectKind, r.Subject = "iin", e.Subject.IIN
	case e.Subject.BIN != "":
		r.SubjectKind, r.Subject = "bin", e.Subject.BIN
	}
	if !own {
		r.Subject, r.Purpose = mask(r.Subject), ""
		r.Note = strings.TrimPrefix(strings.Join([]string{r.Note, withheld}, "; "), "; ")
	}
	if r.Services == nil {
		r.Services = []int{}
	}
	r.ServiceOutcomes = make([]serviceOutcome, len(e.ServiceOutcomes))
	for i, o := range e.ServiceOutcomes {
		r.ServiceOutcomes[i] = serviceOutcome{Service: o.Service, Status: string(o.Status), Reason: o.Reason}
	}
	if !e.RepliedAt.IsZero() {
		r.RepliedAt = siobroker.FormatTime(e.RepliedAt)
	}
	return r
}

// mask keeps the last four characters of an identifier.
func mask(id string) string {
	if len(id) <= 4 {
		return id
	}
	return strings.Repeat("*", len(id)-4) + id[len(id)-4:]
}

// cells are the values of r in the order of requestColumns.
func (r requestRow) cells() []any {
	services := make([]string, len(r.Services))
	for i, s := range r.Services {
		services[i] = strconv.Itoa(s)
	}
	outcomes := make([]string, len(r.ServiceOutcomes))
	for i, o := range r.ServiceOutcomes {
		outcomes[i] = strconv.Itoa(o.Service) + ":" + o.Status + "/" + o.Reason
	}
	var basis any = ""
	if r.Basis != 0 {
		basis = r.Basis
	}
	return []any{r.Time, r.RequestID, r.SignerIIN, r.SignerName, r.Organisation, r.ERDRCode, r.Department, basis, r.BasisName,
		r.Case, r.Article, r.SubjectKind, r.Subject, strings.Join(services, " "), r.Purpose, r.Outcome, r.Code,
		strings.Join(outcomes, " "), r.RepliedAt, r.MessageID, r.Seq, r.Note}
}

// summaryRow is one row of the monthly summary.
type summaryRow struct {
	Month        string `json:"month"`
	ERDRCode     string `json:"erdrCode"`
	Organisation string `json:"organisation"`
	Department   string `json:"department"`
	Requests     int    `json:"requests"`
	Answered     int    `json:"answered"`
	Partial      int    `json:"partial"`
	Denied       int    `json:"denied"`
	Failed       int    `json:"failed"`
	Refused      int    `json:"refused"`
	Pending      int    `json:"pending"`
}

func newSummaryRow(s siobroker.RequestSummary) summaryRow {
	return summaryRow{Month: s.Month, ERDRCode: s.ERDRCode, Organisation: s.Organisation, Department: s.Department,
		Requests: s.Requests, Answered: s.Answered, Partial: s.Partial, Denied: s.Denied, Failed: s.Failed,
		Refused: s.Refused, Pending: s.Pending}
}

func (r summaryRow) cells() []any {
	return []any{r.Month, r.ERDRCode, r.Organisation, r.Department, r.Requests, r.Answered, r.Partial, r.Denied,
		r.Failed, r.Refused, r.Pending}
}

// sheet writes a report's rows in one format.
type sheet interface {
	// row writes one row; v is a requestRow or a summaryRow, cells its values in column order.
	row(v any, cells []any) error
	// close ends the report: the rest of the document, and everything flushed to the writer.
	close() error
}

// newSheet starts a report in format with columns on w. name names the XLSX worksheet. Every text
// it writes is text an XML document can carry (xmlSafe): a report travels in q:report too.
func newSheet(format, name string, columns []string, w io.Writer, tempDir string) (sheet, error) {
	switch format {
	case soap.ReportCSV:
		s := &csvSheet{w: csv.NewWriter(w)}
		return s, s.w.Write(columns)
	case soap.ReportJSON:
		s := &jsonSheet{w: bufio.NewWriterSize(w, 32<<10)}
		s.enc = json.NewEncoder(&s.buf)
		s.enc.SetEscapeHTML(false)
		_, err := s.w.WriteString("[")
		return s, err
	case soap.ReportXLSX:
		return newXLSXSheet(name, columns, w, tempDir)
	}
	return nil, siobroker.FieldError("format", "must be csv, json or xlsx, got %q", format)
}

// csvSheet writes RFC 4180 CSV with a header row.
type csvSheet struct {
	w      *csv.Writer
	record []string
}

func (s *csvSheet) row(_ any, cells []any) error {
	s.record = s.record[:0]
	for _, c := range cells {
		switch v := c.(type) {
		case string:
			s.record = append(s.record, csvText(xmlSafe(v)))
		case int:
			s.record = append(s.record, strconv.Itoa(v))
		case int64:
			s.record = append(s.record, strconv.FormatInt(v, 10))
		default:
			return fmt.Errorf("reports: a CSV cell of type %T", c)
		}
	}
	return s.w.Write(s.record)
}

func (s *csvSheet) close() error {
	s.w.Flush()
	if err := s.w.Error(); err != nil {
		return fmt.Errorf("reports: write CSV: %w", err)
	}
	return nil
}

// csvText guards a text cell against being read as a formula by a spreadsheet that opens the CSV
// (CSV injection): a text starting with =, +, -, @, a tab or a carriage return, which a user can
// put in a request's purpose, is written after an apostrophe, which spreadsheets show as text.
// Nothing the broker itself writes (times, identifiers, numbers, codes) starts so.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// jsonSheet writes a JSON array of objects, one a line.
type jsonSheet struct {
	w   *bufio.Writer
	buf bytes.Buffer
	enc *json.Encoder
	n   int
}

func (s *jsonSheet) row(v any, _ []any) error {
	s.buf.Reset()
	switch r := v.(type) {
	case requestRow:
		v = safeRequestRow(r)
	case summaryRow:
		v = safeSummaryRow(r)
	}
	if err := s.enc.Encode(v); err != nil {
		return fmt.Errorf("reports: write JSON: %w", err)
	}
	sep := ",\n"
	if s.n == 0 {
		sep = "\n"
	}
	s.n++
	if _, err := s.w.WriteString(sep); err != nil {
		return err
	}
	_, err := s.w.Write(bytes.TrimSuffix(s.buf.Bytes(), []byte("\n")))
	return err
}

func (s *jsonSheet) close() error {
	if _, err := s.w.WriteString("\n]\n"); err != nil {
		return err
	}
	return s.w.Flush()
}

// safeRequestRow is r with every text xmlSafe.
func safeRequestRow(r requestRow) requestRow {
	for _, p := range []*string{&r.Time, &r.RequestID, &r.SignerIIN, &r.SignerName, &r.Organisation, &r.ERDRCode, &r.Department,
		&r.BasisName, &r.Case, &r.Article, &r.SubjectKind, &r.Subject, &r.Purpose, &r.Outcome, &r.Code, &r.RepliedAt,
		&r.MessageID, &r.Note} {
		*p = xmlSafe(*p)
	}
	for i := range r.ServiceOutcomes {
		r.ServiceOutcomes[i].Status, r.ServiceOutcomes[i].Reason = xmlSafe(r.ServiceOutcomes[i].Status), xmlSafe(r.ServiceOutcomes[i].Reason)
	}
	return r
}

func safeSummaryRow(r summaryRow) summaryRow {
	r.Month, r.ERDRCode, r.Organisation, r.Department = xmlSafe(r.Month), xmlSafe(r.ERDRCode), xmlSafe(r.Organisation), xmlSafe(r.Department)
	return r
}

// xlsxSheet writes an XLSX workbook through excelize's StreamWriter: one worksheet, and another
// ("name 2", ...) each time one is full (Excel's 1,048,576 rows).
type xlsxSheet struct {
	f       *excelize.File
	w       io.Writer
	sw      *excelize.StreamWriter
	name    string
	columns []string
	bold    int
	sheets  int
	last    int // the last row written in the current worksheet
	cells   []any
}

// xlsxMaxRow is the last row of a worksheet.
const xlsxMaxRow = excelize.TotalRows

func newXLSXSheet(name string, columns []string, w io.Writer, tempDir string) (*xlsxSheet, error) {
	f := excelize.NewFile(excelize.Options{TmpDir: tempDir})
	s := &xlsxSheet{f: f, w: w, name: name, columns: columns}
	var err error
	if s.bold, err = f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}}); err != nil {
		f.Close()
		return nil, fmt.Errorf("reports: XLSX style: %w", err)
	}
	if err := s.next(); err != nil {
		f.Close()
		return nil, err
	}
	// NewFile made "Sheet1"; the report's worksheets replace it.
	if err := f.DeleteSheet("Sheet1"); err != nil {
		f.Close()
		return nil, fmt.Errorf("reports: XLSX: %w", err)
	}
	return s, nil
}

// next starts the next worksheet with the header row.
func (s *xlsxSheet) next() error {
	if s.sw != nil {
		if err := s.sw.Flush(); err != nil {
			return fmt.Errorf("reports: XLSX: %w", err)
		}
	}
	s.sheets++
	name := s.name
	if s.sheets > 1 {
		name = fmt.Sprintf("%s %d", s.name, s.sheets)
	}
	if _, err := s.f.NewSheet(name); err != nil {
		return fmt.Errorf("reports: XLSX: %w", err)
	}
	sw, err := s.f.NewStreamWriter(name)
	if err != nil {
		return fmt.Errorf("reports: XLSX: %w", err)
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return fmt.Errorf("reports: XLSX: %w", err)
	}
	header := make([]any, len(s.columns))
	for i, c := range s.columns {
		header[i] = excelize.Cell{StyleID: s.bold, Value: c}
	}
	if err := sw.SetRow("A1", header); err != nil {
		return fmt.Errorf("reports: XLSX: %w", err)
	}
	s.sw, s.last = sw, 1
	return nil
}

func (s *xlsxSheet) row(_ any, cells []any) error {
	if s.last == xlsxMaxRow {
		if err := s.next(); err != nil {
			return err
		}
	}
	s.last++
	s.cells = s.cells[:0]
	for _, c := range cells {
		if v, ok := c.(string); ok {
			c = xmlSafe(v)
		}
		s.cells = append(s.cells, c)
	}
	cell, err := excelize.CoordinatesToCellName(1, s.last)
	if err != nil {
		return fmt.Errorf("reports: XLSX: %w", err)
	}
	if err := s.sw.SetRow(cell, s.cells); err != nil {
		return fmt.Errorf("reports: XLSX row %d: %w", s.last, err)
	}
	return nil
}

func (s *xlsxSheet) close() error {
	defer s.f.Close() // removes the temporary files
	if err := s.sw.Flush(); err != nil {
		return fmt.Errorf("reports: XLSX: %w", err)
	}
	s.f.SetActiveSheet(0)
	// excelize's WriteTo zips the whole workbook into a buffer before writing it out, which would
	// hold a large report's workbook in memory whole; its zip writer, given here, writes to s.w
	// instead, and the buffer stays empty. (WriteTo's only use of the buffer besides is marking
	// parts over 4 GB as ZIP64 in their local headers: a worksheet of 1,048,576 rows of a report
	// is far below that.)
	s.f.SetZipWriter(func(io.Writer) excelize.ZipWriter { return zip.NewWriter(s.w) })
	if _, err := s.f.WriteTo(io.Discard); err != nil {
		return fmt.Errorf("reports: write XLSX: %w", err)
	}
	return nil
}
