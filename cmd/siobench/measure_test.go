package main

import (
	"math"
	"os"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

func TestSlope(t *testing.T) {
	xs := []float64{0, 1, 2, 3, 4}
	tests := map[string]struct {
		ys   []float64
		want float64
	}{
		"flat":       {[]float64{5, 5, 5, 5, 5}, 0},
		"rising":     {[]float64{1, 3, 5, 7, 9}, 2},
		"falling":    {[]float64{9, 7, 5, 3, 1}, -2},
		"noisy flat": {[]float64{4, 6, 4, 6, 5}, 0.2},
	}
	for name, tt := range tests {
		if got := slope(xs, tt.ys); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: slope = %v, want %v", name, got, tt.want)
		}
	}
	if slope([]float64{1}, []float64{2}) != 0 || slope([]float64{1, 1}, []float64{1, 2}) != 0 {
		t.Error("one point, or no spread in x, must give 0")
	}
}

func TestParseOpsPerSecond(t *testing.T) {
	out := `goos: linux
BenchmarkGoxmldsigVerifyAndSign-2   	    1252	   2020183 ns/op	   1.74 MB/s	       495.0 ops/s
BenchmarkVerifyAndSignParallel-2    	    1252	   1940427 ns/op	   1.92 MB/s	       515.4 ops/s
BenchmarkRawRoundTrip   	    5576	    418803 ns/op	      2405 ops/s
BenchmarkOther-2 10 100 ns/op
PASS`
	got := parseOpsPerSecond(out)
	want := map[string]float64{"BenchmarkGoxmldsigVerifyAndSign": 495, "BenchmarkVerifyAndSignParallel": 515.4, "BenchmarkRawRoundTrip": 2405}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestLineWatcher(t *testing.T) {
	w := &lineWatcher{prefix: "sending for ", seen: make(chan struct{})}
	for _, chunk := range []string{"building\nsend", "ing for 5s (0 requests pre-signed)\n", "more\n"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-w.seen:
	default:
		t.Fatal("a line split across two writes was not seen")
	}
}

// TestProcReaders reads this process's own figures, which must be there and plausible.
func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	if rss := rssKiB(pid); rss <= 0 {
		t.Errorf("rssKiB(self) = %d", rss)
	}
	before := cpuSeconds(pid)
	for i, deadline := 0, time.Now().Add(5*time.Second); cpuSeconds(pid) <= before && time.Now().Before(deadline); i++ {
	}
	if cpuSeconds(pid) <= before {
		t.Error("cpuSeconds(self) did not grow while spinning")
	}
	if machineBusy() <= 0 {
		t.Error("machineBusy() = 0")
	}
	if cpuSeconds(-1) != 0 || rssKiB(-1) != 0 {
		t.Error("a missing process must read as 0")
	}
}

// TestRabbitPIDs finds the machine's RabbitMQ by its listening port, and nothing on a port
// nobody uses.
func TestRabbitPIDs(t *testing.T) {
	if pids := rabbitPIDs("amqp://guest:guest@127.0.0.1:1/"); len(pids) != 0 {
		t.Errorf("rabbitPIDs on port 1 = %v", pids)
	}
	const url = "amqp://guest:guest@127.0.0.1:5672/"
	conn, err := amqp091.DialConfig(url, amqp091.Config{Dial: amqp091.DefaultDial(5 * time.Second)})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("RabbitMQ at 127.0.0.1:5672: %v", err)
		}
		t.Skipf("RabbitMQ not reachable (%v); CI=true makes this a failure", err)
	}
	conn.Close()
	if pids := rabbitPIDs(url); len(pids) != 1 || cpuSeconds(pids[0]) <= 0 {
		t.Errorf("rabbitPIDs(%s) = %v, want the one server listening there", url, pids)
	}
}

func TestPresignCount(t *testing.T) {
	if n := presignCount(400, 20*time.Second); n != 12000 {
		t.Errorf("presignCount(400/s, 20s) = %d, want 12000", n)
	}
	if n := presignCount(1, time.Second); n != 1000 {
		t.Errorf("presignCount floor = %d, want 1000", n)
	}
	if n := presignCount(1e6, time.Hour); n != 200000 {
		t.Errorf("presignCount cap = %d, want 200000", n)
	}
}

// TestSoakSlopes: the slopes are per minute, over the samples under load from the given time on,
// without the last sample (the broker at rest).
func TestSoakSlopes(t *testing.T) {
	r := &soakResult{}
	for i := range 7 {
		r.Samples = append(r.Samples, soakSample{At: time.Duration(i) * time.Minute, RSSKiB: int64(1000 + 10*i), HeapLive: uint64(2048 * 1024)})
	}
	r.Samples = append(r.Samples, soakSample{At: 7 * time.Minute, RSSKiB: 1, HeapLive: 1})
	rss, live, n := r.slopes(0)
	if n != 7 || math.Abs(rss-10) > 1e-9 || live != 0 {
		t.Errorf("slopes(0) = %v KiB/min, %v KiB/min, %d samples; want 10, 0, 7", rss, live, n)
	}
	if _, _, n := r.slopes(3 * time.Minute); n != 4 {
		t.Errorf("slopes(3m) used %d samples, want 4", n)
	}
}
