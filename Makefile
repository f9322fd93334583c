# The two README commands: `make run` and `make test`. Both install what is
# missing (the embedded engine included) and need only Go, gcc and npm.
GO      ?= go
BIN     := bin/fleetscope
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
# Short fuzz runs in `make test`: a count of executions per target, not a
# duration — go1.26's coordinator can fail a duration-bounded run with a bare
# "context deadline exceeded" when its workers stall (go.dev/issue/75804);
# `make fuzz FUZZTIME=1000000x` (or a duration, by hand) runs longer.
FUZZTIME ?= 30000x
# Fuzzers whose every execution goes through the whole HTTP stack (about
# 100 executions/s here) run fewer executions in `make test`.
SLOW_FUZZ     := FuzzEveryAnswerIsJSON FuzzRequestBodies
SLOW_FUZZTIME ?= 2000x

.PHONY: run test engine browser prometheus build vet fuzz bench clean

## run: install the engine, build, and serve a demo fleet on the embedded engine
run: engine build
	./$(BIN) serve --demo

## engine: install the embedded ClickHouse engine (chDB) into ~/.cache/fleetscope
engine:
	@./scripts/install-engine.sh

## browser: install Chromium (Debian's package) for the dashboard's browser tests
browser:
	@./scripts/install-chromium.sh

## prometheus: install promtool and prometheus (Debian's package) for the
## operations tests when missing
prometheus:
	@./scripts/install-prometheus.sh

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/fleetscope

## vet: go vet, staticcheck (a tool pinned in go.mod), and a build without
## cgo (a deployment that only talks to a ClickHouse server needs none)
vet:
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	CGO_ENABLED=0 $(GO) build ./...
	CGO_ENABLED=0 $(GO) vet ./store/...

## test: install the engine, Chromium and Prometheus and run every test
## (engine, browser and Prometheus tests fail, never skip, without them)
test: engine browser prometheus vet
	FLEETSCOPE_REQUIRE_ENGINE=1 $(GO) test -count=1 -timeout 30m ./...
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
			t=$(FUZZTIME); case " $(SLOW_FUZZ) " in *" $$f "*) t=$(SLOW_FUZZTIME);; esac; \
			echo "fuzz $$pkg $$f ($$t)"; \
			FLEETSCOPE_REQUIRE_ENGINE=1 $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $$t $$pkg; \
		done; \
	done

## bench: Go benchmarks of every package (see README for `fleetscope bench`)
bench: engine
	FLEETSCOPE_REQUIRE_ENGINE=1 $(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
