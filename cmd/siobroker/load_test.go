package main

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestLoadCommand runs the load tool for a moment against the shared broker and reads its report.
func TestLoadCommand(t *testing.T) {
	e := sharedBroker(t)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"load", "--url", e.url, "--pki", e.pki, "--subject", e.subject,
		"--duration", "1s", "--concurrency", "2", "--services", "3", "--pid", strconv.Itoa(os.Getpid())}, &out, &errb)
	if code != 0 {
		t.Fatalf("load exited %d\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"(3 services each)", "/s answered", "p50 ", "p99 ", "errors: none", "broker memory (VmRSS)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if code := run(context.Background(), []string{"load", "--url", "http://10.0.0.1:8080/SyncChannel/v10"}, &out, &errb); code != 2 {
		t.Errorf("a load against another machine exited %d, want 2 (refused)", code)
	}
}
