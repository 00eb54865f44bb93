#!/usr/bin/env bash
# The load benchmark: builds siobroker and siobench, then siobench starts the broker on its embedded
# default (as make run does), and then a broker on the machine's RabbitMQ with a separate demo
# adapter process (127.0.0.1, a temporary data directory, a queue prefix of its own), and against
# each runs `siobroker load` with one and with ten services per request and three times at half the
# one-service rate, measures the goxmldsig, signing and raw RabbitMQ baselines in the
# same run, and the journal's commit cost with synchronous=full against normal (BenchmarkJournalCommit),
# then reports over a request index of a million requests and its rebuild (BenchmarkReport,
# BenchmarkReindex), stops everything and prints the summary, which ends with issue 20's targets,
# each met or not (docs/benchmarks.md explains it).
#
#   scripts/bench.sh [siobench flags]        e.g. --duration 30s --out bench.md --profile cpu.prof
#   scripts/bench.sh --transports amqp       one topology only (embedded, amqp; both by default)
#   scripts/bench.sh soak [soak flags]       e.g. --duration 10m --rate 100 --out soak.md [--transport embedded]
#   scripts/bench.sh --cluster --journal-dsn DSN [--cluster-brokers 1,2 --cluster-adapters 1,2,4]
#                                            brokers and adapters against throughput and CPU (issue 20)
#
# Needs RabbitMQ on 127.0.0.1:5672 (guest/guest). Figures are noisy on a shared machine: run it
# when nothing else runs, and read the ratios, which are measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."

go build -o bin/siobroker ./cmd/siobroker
go build -o bin/siobench ./cmd/siobench

# siobench stops the broker and adapter itself on SIGINT/SIGTERM (and they die with it); this
# passes an interrupt of the script on to it.
bench_pid=""
stop() {
	if [[ -n "$bench_pid" ]] && kill -0 "$bench_pid" 2>/dev/null; then
		kill -TERM "$bench_pid" 2>/dev/null || true
		wait "$bench_pid" 2>/dev/null || true
	fi
}
trap stop EXIT INT TERM

bin/siobench "$@" &
bench_pid=$!
status=0
wait "$bench_pid" || status=$?
bench_pid=""
exit "$status"
