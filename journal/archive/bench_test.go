package archive

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

// The cost of sealing, per journal record, on records shaped as the broker journals a request
// with one service: the signed request (about 6 KB), the case check's and the service's exchange
// records and the signed reply (about 4 KB).
//
// BenchmarkSealMeasure is what the broker's minute-by-minute SealFull does while the pending
// records do not fill a segment: it reads, verifies and measures every pending record (a new
// Sealer has measured none). BenchmarkSeal seals them into one archive (SealNow): the same reading
// and verifying, the records' JSON lines through gzip, the manifest and its RSA signature, and the
// files synced.

// benchRecords is n records of requests as the broker journals them, chained.
func benchRecords(n int) []siobroker.JournalRecord {
	pad := make([]byte, 4<<10)
	for i := range pad {
		pad[i] = 'A' + byte(i%26)
	}
	base := time.Date(2026, 12, 1, 9, 0, 0, 0, siobroker.Astana)
	var out []siobroker.JournalRecord
	prev := ""
	for i := 0; len(out) < n; i++ {
		id := fmt.Sprintf("%08x-5d41-4c7a-9f16-2e8d7c5b4a39", i)
		request := []byte(`<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header><Security>` +
			string(pad) + `</Security></soapenv:Header><soapenv:Body>` + string(bytes.Repeat([]byte("<q:purpose>Установление имущества</q:purpose>"), 30)) + `</soapenv:Body></soapenv:Envelope>`)
		for _, k := range []struct {
			kind    siobroker.JournalKind
			service int
			code    string
			data    []byte
		}{
			{siobroker.JournalRequest, 0, "", request},
			{siobroker.JournalExchange, 0, "ok/OK", []byte(`{"times":{"received":"2026-12-01T09:00:00.000+05:00"},"status":"ok","records":1}`)},
			{siobroker.JournalExchange, 1, "ok/OK", []byte(`{"times":{"received":"2026-12-01T09:00:00.000+05:00"},"status":"ok","records":1}`)},
			{siobroker.JournalReply, 0, "", pad},
		} {
			r := siobroker.JournalRecord{Seq: int64(len(out) + 1), At: base.Add(time.Duration(len(out)) * 7 * time.Millisecond), Kind: k.kind,
				RequestID: id, MessageID: "7c9e6679-7425-40de-944b-" + id[:8], SignerIIN: "850202400123", Organisation: "ДП г. Астаны",
				Service: k.service, Code: k.code, Data: k.data, PrevHash: prev}
			r.Hash = r.ComputeHash()
			prev = r.Hash
			out = append(out, r)
		}
	}
	return out[:n]
}

const benchSealRecords = 4000

func BenchmarkSealMeasure(b *testing.B) {
	src := &memSource{recs: benchRecords(benchSealRecords)}
	dir := b.TempDir()
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		s, err := NewSealer(Config{Dir: dir, MaxRecords: benchSealRecords + 1}, src, pkiA.broker, sealClock)
		if err != nil {
			b.Fatal(err)
		}
		if ms, err := s.SealFull(ctx); err != nil || len(ms) != 0 {
			b.Fatalf("SealFull sealed %d archives: %v", len(ms), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchSealRecords), "ns/record")
}

func BenchmarkSeal(b *testing.B) {
	src := &memSource{recs: benchRecords(benchSealRecords)}
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		b.StartTimer()
		s, err := NewSealer(Config{Dir: dir, MaxRecords: benchSealRecords + 1}, src, pkiA.broker, sealClock)
		if err != nil {
			b.Fatal(err)
		}
		if ms, err := s.SealNow(ctx); err != nil || len(ms) != 1 {
			b.Fatalf("SealNow sealed %d archives: %v", len(ms), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchSealRecords), "ns/record")
}
