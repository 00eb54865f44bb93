package reports

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// The columns of a report, in order; an export adds dataColumn.
var reportColumns = []string{"seq", "time", "kind", "request_id", "message_id", "signer_iin", "organisation", "service", "code"}

// dataColumn is the export's extra column: the record's raw bytes. For request and reply records
// these are the signed XML exactly as received or sent, for a refusal the fault, for an exchange
// its JSON details, for a late answer its JSON details with the answer. In JSON they are base64, so that a signature can be checked on the exact bytes;
// in CSV they are text, or "base64:" and the base64 when they are not text an XML document can
// carry.
const dataColumn = "data"

// base64Prefix marks a CSV data cell that had to be encoded.
const base64Prefix = "base64:"

// row is one journal record as a report shows it. The JSON shape is the same for every row: a
// service of 0 means none (request, reply and refusal records have none).
type row struct {
	Seq          int64  `json:"seq"`
	Time         string `json:"time"`
	Kind         string `json:"kind"`
	RequestID    string `json:"requestId"`
	MessageID    string `json:"messageId"`
	SignerIIN    string `json:"signerIin"`
	Organisation string `json:"organisation"`
	Service      int    `json:"service"`
	Code         string `json:"code"`
}

// exportRow is a row of an export: the report's columns and the raw bytes, base64 in JSON.
type exportRow struct {
	row
	Data []byte `json:"data"`
}

func newRow(r siobroker.JournalRecord) row {
	return row{
		Seq: r.Seq, Time: siobroker.FormatTime(r.At), Kind: xmlSafe(string(r.Kind)), RequestID: xmlSafe(r.RequestID),
		MessageID: xmlSafe(r.MessageID), SignerIIN: xmlSafe(r.SignerIIN), Organisation: xmlSafe(r.Organisation),
		Service: r.Service, Code: xmlSafe(r.Code),
	}
}

// render writes recs as CSV (with a header row) or as a JSON array of objects. Only an export
// (withData) carries the records' raw bytes. The output is always text an XML document can carry,
// since it travels as the content of q:report.
func render(format string, recs []siobroker.JournalRecord, withData bool) ([]byte, error) {
	var buf bytes.Buffer
	switch format {
	case soap.ReportCSV:
		w := csv.NewWriter(&buf)
		header := reportColumns
		if withData {
			header = append(append([]string(nil), reportColumns...), dataColumn)
		}
		if err := w.Write(header); err != nil {
			return nil, err
		}
		for _, r := range recs {
			x := newRow(r)
			service := ""
			if x.Service != 0 {
				service = strconv.Itoa(x.Service)
			}
			cells := []string{strconv.FormatInt(x.Seq, 10), x.Time, x.Kind, x.RequestID, x.MessageID, x.SignerIIN, x.Organisation, service, x.Code}
			if withData {
				cells = append(cells, dataCell(r.Data))
			}
			if err := w.Write(cells); err != nil {
				return nil, err
			}
		}
		w.Flush()
		if err := w.Error(); err != nil {
			return nil, fmt.Errorf("reports: write CSV: %w", err)
		}
	case soap.ReportJSON:
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		var v any
		if withData {
			rows := make([]exportRow, 0, len(recs))
			for _, r := range recs {
				rows = append(rows, exportRow{row: newRow(r), Data: r.Data})
			}
			v = rows
		} else {
			rows := make([]row, 0, len(recs))
			for _, r := range recs {
				rows = append(rows, newRow(r))
			}
			v = rows
		}
		if err := enc.Encode(v); err != nil {
			return nil, fmt.Errorf("reports: write JSON: %w", err)
		}
	default:
		return nil, siobroker.FieldError("format", "must be csv or json, got %q", format)
	}
	return buf.Bytes(), nil
}

// dataCell is the CSV form of raw bytes: as they are when they are text an XML document can
// carry, else base64Prefix and their base64.
func dataCell(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	s := string(b)
	if !strings.HasPrefix(s, base64Prefix) && isXMLText(s) {
		return s
	}
	return base64Prefix + base64.StdEncoding.EncodeToString(b)
}

// isXMLText reports whether s is valid UTF-8 made only of characters XML 1.0 allows.
func isXMLText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !xmlChar(r) {
			return false
		}
	}
	return true
}

// xmlSafe replaces what XML 1.0 cannot carry (invalid UTF-8, control characters, U+FFFE, U+FFFF)
// by U+FFFD. Journal fields are short identifiers; this only guards the report's transport.
func xmlSafe(s string) string {
	if isXMLText(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if xmlChar(r) {
			return r
		}
		return utf8.RuneError
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// xmlChar is the Char production of XML 1.0.
func xmlChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD ||
		(r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}
