# Sluice: build, run the fraud example, test, benchmark, lint.
# GNU make. `make help` lists the targets.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO ?= go
BIN := bin/sluice
# make bench NAME=x runs the benchmarks whose package path or name matches x.
NAME ?=

# In CI a test that lacks a part (kcat, clickhouse-server) fails instead of
# skipping.
ifeq ($(CI),true)
export SLUICE_REQUIRE_ALL := 1
endif

RACE_PKGS := ./ingest/... ./stream/... ./serve/... ./featurestore/...

.PHONY: help build fraud run deps test vet lint bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 10

build: ## build bin/sluice
	$(GO) build -o $(BIN) ./cmd/sluice

fraud: ## build the fraud example's event generator and feature watcher
	$(GO) build -o bin/fraud-gen ./examples/fraud/gen
	$(GO) build -o bin/fraud-watch ./examples/fraud/watch

run: build fraud ## run the fraud example: a node, live events, features printed every 5 s
	bash scripts/run.sh

deps: ## install what the tests need (kcat, clickhouse-server, pandas) when missing
	bash scripts/deps.sh

test: deps vet ## vet, all tests, the race detector on the concurrent packages, then DuckDB reading the Parquet store
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -count=1 -race -timeout 20m $(RACE_PKGS)
	cd bench && $(GO) test -count=1 -timeout 20m ./...

vet: ## go vet
	$(GO) vet ./...

lint: ## gofmt check, then go vet
	@files="$$(gofmt -l .)"; \
	if [ -n "$$files" ]; then \
		echo "gofmt: these files need formatting (run gofmt -w on them):" >&2; \
		echo "$$files" >&2; \
		exit 1; \
	fi
	$(GO) vet ./...

bench: ## run the benchmarks (NAME=x to pick some)
	NAME='$(NAME)' GO='$(GO)' bash scripts/bench.sh

clean: ## remove built binaries, run data and coverage files
	rm -rf bin .data coverage.out coverage.html cover.out *.test
