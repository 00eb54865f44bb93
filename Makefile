# The two commands of the README: `make run` and `make test`.
GO      ?= go
BIN     := bin/siobroker
PKGS    := ./...

.PHONY: all build run test vet fmt-check test-short bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/siobroker

# Starts the broker on its embedded default: in-process transport, demo adapters for all 93
# services, the SQLite store and a development PKI in ./data (created on first start).
run: build
	./$(BIN) serve

# vet, formatting and every test with the race detector. Tests that need xmlsec1 or xmllint fail
# under CI=true when the tool is missing; .ci/run installs them.
test: vet fmt-check
	$(GO) test -race -count=1 $(PKGS)

test-short:
	$(GO) test -count=1 $(PKGS)

# Benchmarks report ns/op and, because the machines are noisy, ratios to a baseline measured in
# the same run (x-raw-crypto: a whole signed request over HTTP against its four RSA operations;
# BenchmarkVerifyAndSign and BenchmarkRawRoundTrip are the crypto and RabbitMQ baselines).
# docs/benchmarks.md records the figures.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3s ./signing ./transport/amqp ./cmd/siobroker

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin
