package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLoadCommand runs the load tool for a moment against the shared broker and reads its report.
func TestLoadCommand(t *testing.T) {
	e := sharedBroker(t)
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"load", "--url", e.url, "--pki", e.pki, "--subject", e.subject,
		"--duration", "1s", "--concurrency", "2", "--services", "3", "--pid", strconv.Itoa(os.Getpid())}, &out, &errb)
	if code != 0 {
		t.Fatalf("load exited %d\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"(3 services each)", "/s answered", "p50 ", "p99 ", "errors: none", "broker memory (VmRSS)",
		"broker CPU: ", "load tool CPU: ", "replies verified"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if code := Main(context.Background(), []string{"load", "--url", "http://10.0.0.1:8080/SyncChannel/v10"}, &out, &errb); code != 2 {
		t.Errorf("a load against another machine exited %d, want 2 (refused)", code)
	}
}

// TestLoadCommandCheap: the options that keep the load tool's own cost down (an ECDSA user,
// requests signed before the clock starts, replies not verified) still send requests the broker
// answers, and the JSON report and the saved request are what scripts/bench.sh reads.
func TestLoadCommandCheap(t *testing.T) {
	e := sharedBroker(t)
	dir := t.TempDir()
	report, request := filepath.Join(dir, "load.json"), filepath.Join(dir, "request.xml")
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"load", "--url", e.url, "--pki", e.pki, "--subject", e.subject,
		"--user", "900114302034", "--presign", "20", "--skip-verify", "--rate", "20", "--duration", "1500ms",
		"--services", "1", "--json", report, "--save-request", request}, &out, &errb)
	if code != 0 {
		t.Fatalf("load exited %d\n%s%s", code, out.String(), errb.String())
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep loadReport
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, data)
	}
	// 20/s for 1.5s: the open loop sends about 30, more than were pre-signed.
	if rep.Answered < 20 || rep.Answered != rep.Requests || len(rep.Errors) != 0 || rep.VerifiedReplies || rep.Presigned != 20 ||
		rep.Rate != 20 || rep.P99Ms <= 0 || rep.User != "900114302034" {
		t.Errorf("report = %+v", rep)
	}
	saved, err := os.ReadFile(request)
	if err != nil || !bytes.Contains(saved, []byte("SendMessage")) || !bytes.Contains(saved, []byte("ds:SignatureValue")) {
		t.Errorf("saved request (%v):\n%.300s", err, saved)
	}
}

// TestProcCPUSeconds reads this process's CPU time, which only grows.
func TestProcCPUSeconds(t *testing.T) {
	before := procCPUSeconds("self")
	for i := 0; procCPUSeconds("self") <= before && i < 1e8; i++ {
	}
	if after := procCPUSeconds("self"); after <= before {
		t.Errorf("CPU time %v then %v", before, after)
	}
	if procCPUSeconds("0") != 0 || procRSSKiB("0") != 0 {
		t.Error("pid 0 must read as unknown")
	}
}
