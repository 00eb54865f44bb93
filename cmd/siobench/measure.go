package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// cpuSeconds reads a process's user and system CPU time from /proc; 0 when it is gone. The
// kernel reports clock ticks, 100 per second to user space on Linux.
func cpuSeconds(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(data), ')') // the command name may hold spaces
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100
}

// rssKiB reads a process's resident memory (VmRSS) from /proc; 0 when it is gone.
func rssKiB(pid int) int64 {
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// rabbitPIDs finds the RabbitMQ server that listens on the port of amqpURL (an Erlang VM,
// beam.smp), to account for its CPU time: it shares the cores with the broker. Other RabbitMQ
// servers on the machine (tests start their own) are not counted.
func rabbitPIDs(amqpURL string) []int {
	port := 5672
	if u, err := url.Parse(amqpURL); err == nil && u.Port() != "" {
		port, _ = strconv.Atoi(u.Port())
	}
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			f := strings.Fields(line)
			// local_address is HEX_IP:HEX_PORT, st 0A is LISTEN, the inode is the tenth field.
			if len(f) < 10 || f[3] != "0A" || !strings.HasSuffix(f[1], fmt.Sprintf(":%04X", port)) {
				continue
			}
			inodes["socket:["+f[9]+"]"] = true
		}
	}
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "beam.smp" {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", e.Name(), "fd"))
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join("/proc", e.Name(), "fd", fd.Name())); err == nil && inodes[target] {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// cpuMeter takes the CPU time of a set of processes at two moments.
type cpuMeter struct {
	pids  map[string][]int
	start map[string]float64
}

func newCPUMeter(pids map[string][]int) *cpuMeter {
	m := &cpuMeter{pids: pids, start: map[string]float64{}}
	for name, ps := range pids {
		for _, p := range ps {
			m.start[name] += cpuSeconds(p)
		}
	}
	return m
}

// used returns each set's CPU seconds since the meter was made.
func (m *cpuMeter) used() map[string]float64 {
	out := map[string]float64{}
	for name, ps := range m.pids {
		total := 0.0
		for _, p := range ps {
			total += cpuSeconds(p)
		}
		out[name] = total - m.start[name]
	}
	return out
}

// machineBusy returns the machine's busy CPU seconds (all but idle and iowait) from /proc/stat,
// so that a report can say how much of the machine others used during a load.
func machineBusy() float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	busy := 0.0
	for i, v := range f[1:8] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseFloat(v, 64)
		busy += n
	}
	return busy / 100
}

// heapStats are the Go runtime's memory figures of the broker, read from its expvar listener.
type heapStats struct {
	HeapAlloc  uint64 `json:"HeapAlloc"`
	TotalAlloc uint64 `json:"TotalAlloc"` // cumulative: what was allocated since the start
	HeapInuse  uint64 `json:"HeapInuse"`
	Sys        uint64 `json:"Sys"`
	NumGC      uint32 `json:"NumGC"`
	Live       uint64 `json:"-"` // what the last collection found live
	Goroutines int    `json:"-"`
}

// readHeap reads runtime.MemStats from /debug/vars and the goroutine count from pprof.
func readHeap(ctx context.Context, debugAddr string) (heapStats, error) {
	var h heapStats
	get := func(path string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+debugAddr+path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	}
	data, err := get("/debug/vars")
	if err != nil {
		return h, err
	}
	var vars struct {
		MemStats heapStats `json:"memstats"`
		Live     uint64    `json:"heap_live_bytes"`
	}
	if err := json.Unmarshal(data, &vars); err != nil {
		return h, fmt.Errorf("/debug/vars: %w", err)
	}
	h = vars.MemStats
	h.Live = vars.Live
	if data, err = get("/debug/pprof/goroutine?debug=1"); err == nil {
		if m := goroutineTotal.FindSubmatch(data); m != nil {
			h.Goroutines, _ = strconv.Atoi(string(m[1]))
		}
	}
	return h, nil
}

var goroutineTotal = regexp.MustCompile(`goroutine profile: total (\d+)`)

// benchLine matches a Go benchmark result with our ops/s metric.
var benchLine = regexp.MustCompile(`^(Benchmark\w+)(?:-\d+)?\s+\d+\s+.*?([0-9.]+) ops/s`)

// parseOpsPerSecond returns the ops/s of each benchmark in go test -bench output.
func parseOpsPerSecond(out string) map[string]float64 {
	res := map[string]float64{}
	for line := range strings.SplitSeq(out, "\n") {
		if m := benchLine.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			v, err := strconv.ParseFloat(m[2], 64)
			if err == nil {
				res[m[1]] = v
			}
		}
	}
	return res
}

// benchResultLine matches a Go benchmark's result line: its name and the rest of the line.
var benchResultLine = regexp.MustCompile(`^(Benchmark\w+)(?:-\d+)?\s+\d+\s+(.*)$`)

// parseBenchMetric returns each benchmark's value of the metric unit ("cpu-ms/op") in go test
// -bench output; benchmarks that do not report it are left out.
func parseBenchMetric(out, unit string) map[string]float64 {
	res := map[string]float64{}
	for line := range strings.SplitSeq(out, "\n") {
		if m := benchResultLine.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			if v, ok := parseMetrics(m[2])[unit]; ok {
				res[m[1]] = v
			}
		}
	}
	return res
}

// slope fits y = a + b·x by least squares and returns b; 0 with fewer than two points.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if len(xs) < 2 || len(xs) != len(ys) {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}
