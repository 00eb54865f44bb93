package app

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// TestServeDebug: off by default; when on, the profiles and the heap figures are served on their
// own loopback listener, and stop with it.
func TestServeDebug(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if bound, stop, err := serveDebug("", logger); err != nil || bound != "" {
		t.Fatalf(`serveDebug("") = %q, %v; want nothing started`, bound, err)
	} else {
		stop()
	}
	bound, stop, err := serveDebug("127.0.0.1:0", logger)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + bound + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/debug/pprof/heap?debug=1"); code != http.StatusOK || !strings.Contains(body, "HeapAlloc") {
		t.Errorf("heap profile: HTTP %d %.200s", code, body)
	}
	var vars struct {
		MemStats struct{ HeapAlloc uint64 } `json:"memstats"`
		LiveHeap uint64                     `json:"heap_live_bytes"`
	}
	runtime.GC() // the live heap is what the last collection found
	code, body := get("/debug/vars")
	if code != http.StatusOK || json.Unmarshal([]byte(body), &vars) != nil || vars.MemStats.HeapAlloc == 0 || vars.LiveHeap == 0 {
		t.Errorf("/debug/vars: HTTP %d, heap %d, live heap %d: %.200s", code, vars.MemStats.HeapAlloc, vars.LiveHeap, body)
	}
	stop()
	if _, err := http.Get("http://" + bound + "/debug/vars"); err == nil {
		t.Error("the debug listener still answers after stop")
	}
}
