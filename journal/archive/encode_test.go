package archive

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

// encodeRecordWhole is how records were encoded before the line was built around the data: the
// whole record through json.Marshal, read back and hashed again. The archives must not change, so
// encodeRecord, the measured length and the streamed line are checked against it.
func encodeRecordWhole(r siobroker.JournalRecord) ([]byte, error) {
	line, err := json.Marshal(recordLine{
		Seq: r.Seq, At: siobroker.FormatTime(r.At), Kind: string(r.Kind), RequestID: r.RequestID, MessageID: r.MessageID,
		SignerIIN: r.SignerIIN, Organisation: r.Organisation, Service: r.Service, Code: r.Code,
		Data: base64.StdEncoding.EncodeToString(r.Data), PrevHash: r.PrevHash, Hash: r.Hash,
	})
	if err != nil {
		return nil, fmt.Errorf("record %d: %w", r.Seq, err)
	}
	back, err := decodeRecord(line)
	if err != nil || back.ComputeHash() != r.Hash {
		return nil, fmt.Errorf("record %d does not survive encoding (a field that is not valid UTF-8?)", r.Seq)
	}
	return append(line, '\n'), nil
}

// oddRecords are records whose fields test the encoding: JSON's escapes, HTML characters, the
// text of the data field inside other fields, strings that are not UTF-8, data of every length
// around base64's groups and around writeLine's pieces, times JSON or the layout do not keep.
func oddRecords() []siobroker.JournalRecord {
	base := siobroker.JournalRecord{Seq: 7, At: time.Date(2026, 12, 7, 10, 30, 0, 123e6, siobroker.Astana), Kind: siobroker.JournalRequest,
		RequestID: "r", MessageID: "m", SignerIIN: "850202400123", Organisation: "ДП г. Астаны", Service: 3, Code: "ok/OK",
		Data: []byte("<x/>"), PrevHash: strings.Repeat("ab", 32)}
	var out []siobroker.JournalRecord
	with := func(f func(r *siobroker.JournalRecord)) {
		r := base
		f(&r)
		r.Hash = r.ComputeHash()
		out = append(out, r)
	}
	for _, s := range []string{
		"", `"`, `\`, `\"`, `","data":"`, `,"data":""`, `"data":"AAAA"`, "<script>&amp;</script>", "\x00\x01\x1f\x7f",
		"\b\f\n\r\t", "\u2028\u2029", "\ufeff", "😀 emoji", "\xff", "a\xc3", "\xed\xa0\x80", "\xef\xbf\xbd", strings.Repeat("я", 300),
	} {
		with(func(r *siobroker.JournalRecord) { r.Code = s })
		with(func(r *siobroker.JournalRecord) { r.Organisation = s })
		with(func(r *siobroker.JournalRecord) { r.Kind = siobroker.JournalKind(s) })
		with(func(r *siobroker.JournalRecord) { r.RequestID, r.MessageID, r.SignerIIN = s, s, s })
		with(func(r *siobroker.JournalRecord) { r.PrevHash = s })
		with(func(r *siobroker.JournalRecord) { r.Data = []byte(s) })
	}
	for _, n := range []int{0, 1, 2, 3, 4, 5, 3071, 3072, 3073, 6143, 6144, 6145, 100_000} {
		with(func(r *siobroker.JournalRecord) {
			r.Data = make([]byte, n)
			for i := range r.Data {
				r.Data[i] = byte(i * 7)
			}
		})
	}
	for _, at := range []time.Time{
		{}, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999e6, siobroker.Astana),
		time.Date(10000, 1, 1, 0, 0, 0, 0, siobroker.Astana), time.Date(-1, 1, 1, 0, 0, 0, 0, siobroker.Astana),
		time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(2026, 6, 1, 0, 0, 0, 0, time.FixedZone("", 3*3600+1800)),
	} {
		with(func(r *siobroker.JournalRecord) { r.At = at })
	}
	for _, n := range []int64{0, -1, 1 << 62} {
		with(func(r *siobroker.JournalRecord) { r.Seq, r.Service = n, int(n) })
	}
	return out
}

func TestEncodeRecordAsWhole(t *testing.T) {
	recs := append(append(oddRecords(), chained(nil, 60)...), benchRecords(16)...)
	refused := 0
	var buf []byte
	for i, r := range recs {
		want, wantErr := encodeRecordWhole(r)
		got, err := encodeRecord(r)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("record %d (%+q): encodeRecord = %q, %v; encoded whole: %q, %v", i, r.Code, got, err, want, wantErr)
		}
		l, err := newLine(r)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("record %d: newLine: %v; encoded whole: %v", i, err, wantErr)
		}
		if wantErr != nil {
			if err.Error() != wantErr.Error() {
				t.Errorf("record %d: newLine refuses with %q, encoding whole with %q", i, err, wantErr)
			}
			refused++
			continue
		}
		if l.len() != len(want) {
			t.Errorf("record %d: measured %d bytes, the line has %d", i, l.len(), len(want))
		}
		var w bytes.Buffer
		if buf, err = writeLine(&w, l, r.Data, buf); err != nil || !bytes.Equal(w.Bytes(), want) {
			t.Fatalf("record %d: writeLine wrote %q, %v; want %q", i, w.Bytes(), err, want)
		}
	}
	// Refused: the three strings that are not UTF-8 in each of five kinds of field, and the two
	// years the layout cannot write.
	if refused != 17 {
		t.Errorf("%d of the odd records were refused, want 17", refused)
	}
}

// TestSealedFileAsWhole checks an archive's file byte for byte against the gzip of the records'
// lines encoded whole, as they were written before.
func TestSealedFileAsWhole(t *testing.T) {
	ctx, dir := ctxT(t), t.TempDir()
	recs := benchRecords(40)
	src := &memSource{recs: recs}
	ms, err := newSealer(t, dir, 0, 1<<40, src, pkiA.broker).SealNow(ctx)
	if err != nil || len(ms) != 1 {
		t.Fatalf("SealNow: %d archives, %v", len(ms), err)
	}
	var want bytes.Buffer
	zw, err := gzip.NewWriterLevel(&want, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		line, err := encodeRecordWhole(r)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(line)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, ms[0].File))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("the sealed file (%d bytes) differs from the gzip of the lines encoded whole (%d bytes)", len(got), want.Len())
	}
	verifyOK(t, dir)
}

// FuzzEncodeRecord compares encodeRecord, the measured length and the streamed line with the
// record encoded whole, on records of any strings, data, time and numbers.
func FuzzEncodeRecord(f *testing.F) {
	for _, r := range oddRecords() {
		f.Add(r.Seq, r.At.UnixMilli(), string(r.Kind), r.RequestID, r.Organisation, r.Code, r.PrevHash, r.Service, r.Data)
	}
	f.Fuzz(func(t *testing.T, seq, ms int64, kind, id, org, code, prev string, service int, data []byte) {
		r := siobroker.JournalRecord{Seq: seq, At: time.UnixMilli(ms).In(siobroker.Astana), Kind: siobroker.JournalKind(kind),
			RequestID: id, MessageID: id + code, SignerIIN: org + id, Organisation: org, Service: service, Code: code, Data: data, PrevHash: prev}
		r.Hash = r.ComputeHash()
		want, wantErr := encodeRecordWhole(r)
		got, err := encodeRecord(r)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) || (err != nil && err.Error() != wantErr.Error()) {
			t.Fatalf("encodeRecord = %q, %v; encoded whole: %q, %v", got, err, want, wantErr)
		}
		if err != nil {
			return
		}
		l, err := newLine(r)
		if err != nil || l.len() != len(want) {
			t.Fatalf("newLine: %d bytes, %v; the line has %d", l.len(), err, len(want))
		}
		var w bytes.Buffer
		if _, err := writeLine(&w, l, data, nil); err != nil || !bytes.Equal(w.Bytes(), want) {
			t.Fatalf("writeLine wrote %q, %v; want %q", w.Bytes(), err, want)
		}
	})
}
