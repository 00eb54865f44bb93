# The two commands of the README: `make run` and `make test`; and `make deb`, the package for servers.
GO      ?= go
BIN     := bin/siobroker
PKGS    := ./...

.PHONY: all build run deb test vet fmt-check staticcheck test-short faults fuzz bench bench-go bench-soak clean

all: build

# The version and commit `siobroker version` prints, from git, for where the Go toolchain stamps
# none (GOFLAGS=-buildvcs=false, a git worktree); evaluated only by the targets that build.
VERSION_LDFLAGS = $(shell scripts/version.sh ldflags)

build:
	$(GO) build -ldflags "$(VERSION_LDFLAGS)" -o $(BIN) ./cmd/siobroker

# The Debian package for servers (README "Install on a server"), built with dpkg-deb from this
# checkout: the binary, the systemd units of deploy/systemd, configs/ as /etc/siobroker, the user
# siobroker and /var/lib/siobroker at 0700 (scripts/deb.sh). Prints the package's path.
deb:
	@scripts/deb.sh

# Starts the broker on its embedded default: in-process transport, demo adapters for all 93
# services, the SQLite store and, with --dev, a development PKI in ./data/pki (created on first
# start) with its demo users; serve without --dev refuses keys it would have to make up.
run: build
	./$(BIN) serve --dev

# vet, formatting, staticcheck and every test with the race detector. Tests that need xmlsec1,
# xmllint, promtool (the alert rules of deploy/prometheus: `promtool check rules` and `promtool
# test rules`, in deploy/deploy_test.go) or systemd-analyze (the units of deploy/systemd) fail
# under CI=true when the tool is missing; .ci/run installs them. The fault test's
# package (internal/faults: the short forms of the fault test and of the cluster test, and their
# accounting rules) runs last and verbose, so that their tables of counts are printed.
FAULTS_PKG := ./internal/faults
test: vet fmt-check staticcheck
	$(GO) test -race -count=1 $$($(GO) list $(PKGS) | grep -v '/internal/faults$$')
	$(GO) test -race -count=1 -v $(FAULTS_PKG)

# The fault tests in their long form: 20 requests/s on both channels through SIGKILL of
# the broker, of an adapter and of RabbitMQ, a locked journal and poison; prints per fault the
# requests sent, accepted and refused, the answers produced and journaled, and lost, duplicated
# and stuck, which must all be 0. Then the scale-out test of issue 20: a cluster of three
# RabbitMQ nodes, two brokers on one PostgreSQL journal and four adapters, 20 requests/s through
# SIGKILL of the node leading the queues; the same counts, and the time the service took to
# resume.
faults:
	$(GO) test -count=1 -v -timeout 60m -run '^(TestFaults|TestIntegrationClusterLeaderKilled)$$' $(FAULTS_PKG) -args -faults.long

# The fuzz targets of the untrusted-input path (issue 16; README "Fuzzing"), one after another,
# FUZZTIME each. An input that panics, hangs or breaks a target's bound is kept in the package's
# testdata/fuzz/<target>/, where every later `go test` replays it. On a shared machine:
# make fuzz FUZZFLAGS="-parallel 1".
FUZZTIME ?= 10m
FUZZFLAGS ?=
FUZZ_TARGETS := FuzzReadEnvelope:./schemas/soap FuzzParseQuery:./schemas/soap FuzzCanonicalize:./signing FuzzVerify:./signing FuzzJournaledQuery:./schemas/soap FuzzParseAsEtree:./internal/xmltree FuzzEncodeRecord:./journal/archive
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== $${t%%:*} $${t#*:} ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) $${t#*:}; \
	done

# staticcheck at a pinned version, fetched through the Go module proxy on first use: findings
# differ between versions, and a fresh machine has none installed.
STATICCHECK_VERSION ?= v0.8.2
staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

test-short:
	$(GO) test -count=1 $(PKGS)

# The load benchmark (scripts/bench.sh, docs/benchmarks.md): the embedded default of make run, then
# a broker on RabbitMQ with a separate demo adapter process, each loaded by `siobroker load` with 1
# and 10 services per request and three times for a minute at half the 1-service rate, against
# baselines measured in the same run (goxmldsig and our signing
# verifying the same request and signing a reply of its size on every core; raw amqp091-go round
# trips at the same concurrency; the journal's commit cost with synchronous=full against normal,
# BenchmarkJournalCommit); then reports over a request index of a million requests and its rebuild
# from the journal (BenchmarkReport, BenchmarkReindex). Its summary ends with the targets of issue
# 20, each met or not. BENCH_FLAGS passes flags, e.g. BENCH_FLAGS="--duration 30s --out bench.md".
BENCH_FLAGS ?=
bench:
	scripts/bench.sh $(BENCH_FLAGS)

# The Go micro-benchmarks alone: crypto, raw RabbitMQ, one request at a time end to end, and the
# journal's commit with synchronous=full and normal; then the CPU per KB of refusing hostile
# envelopes (issue 16; README "Limits"), 28 cases, with a shorter benchtime each.
bench-go:
	$(GO) test -run '^$$' -bench . -skip '^BenchmarkHostileEnvelopes$$' -benchtime 3s ./signing ./signing/gost ./routing/amqp ./internal/cli ./sqlite ./journal/archive
	$(GO) test -run '^$$' -bench '^BenchmarkHostileEnvelopes$$' -benchtime 1s ./signing

# Memory over a long load: samples the broker's VmRSS and Go heap every 10 s and reports the slope.
SOAK_DURATION ?= 10m
SOAK_RATE ?= 100
SOAK_FLAGS ?=
bench-soak:
	scripts/bench.sh soak --duration $(SOAK_DURATION) --rate $(SOAK_RATE) $(SOAK_FLAGS)

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin
