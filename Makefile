# logmesh — see README.md.
SHELL     := /bin/bash
GO        ?= go
PKGS      := ./...
FUZZTIME  ?= 60s
BIN       := bin/logmesh
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/logmesh/logmesh/peer.Version=$(VERSION)

.PHONY: all build docker demo test test-short test-ci-faults test-faults test-docker mutations lint fuzz bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/logmesh

# The image of Dockerfile (FROM scratch around the static binary).
docker: build
	docker build -t logmesh:latest .

# The README's run command: a local cluster fed with sample logs.
demo:
	$(GO) run ./cmd/logmesh demo

# The README's test command: formatting, vet, and every test with the race
# detector (fuzz targets run their seed corpora); then, without it, the tests
# that collect Badger's value log beside writes (Badger reads a memtable's
# newest version unlocked during a collection, which the detector reports)
# and the moves under faults that take minutes under the detector (there
# they skip, or run a few of their variants). The index package takes
# about 25 minutes under the detector on two cores: its timeout leaves room.
NORACE    := TestValueLogCollection|TestCopiesAgainSpanningTransactionsAreExact|TestACopyAgainThatFailsHalfwayLeavesNothingWrong|TestASwitchCarriesEveryKindOfChange|TestAFaultInAnyTransactionOfASwitchLeavesNothingWrong|TestACrashBetweenTheDeltaAndTheMarkerLeavesNothingWrong|TestRandomChangesBesideAMoveReadExactly|TestEdgeChangesOfMovedBlocks|TestMovesBesideCutsWritesAndDeletesReadExactly
test: lint
	$(GO) test -race -timeout 50m -count=1 $(PKGS)
	$(GO) test -timeout 10m -count=1 -run '$(NORACE)' ./index

# What CI runs after make test: every fault scenario on real processes in
# network namespaces (root), two seeded random schedules, the Docker level's
# CI scenarios and the Compose file (where an engine answers), and a power
# cut after the store's first digest checkpoint (root), ending with a table
# of what passed, failed and was skipped, and why.
test-ci-faults:
	set -o pipefail; { \
	  LOGMESH_FAULTS=ci $(GO) test -count=1 -timeout 45m -v \
	    -run 'TestScenariosNetns|TestRandomSchedulesNetns|TestScenariosDocker|TestDockerCompose' ./chaos; a=$$?; \
	  LOGMESH_FAULTS=ci $(GO) test -count=1 -timeout 10m -v -run 'TestPowerCut' ./peer; b=$$?; \
	  exit $$((a | b)); } 2>&1 | $(GO) run ./testutil/testsummary

# The long campaign: every fault scenario and ten random schedules on real
# processes in network namespaces, cut by nftables, and the power-cut
# campaign on loop disks (root; see docs/testing.md). LOGMESH_SEED=N replays
# one seed, LOGMESH_RANDOM_SEEDS=N runs N random schedules.
test-faults:
	set -o pipefail; LOGMESH_FAULTS=1 $(GO) test -count=1 -timeout 90m -v \
	  -run 'TestScenariosNetns|TestRandomSchedulesNetns' ./chaos 2>&1 | $(GO) run ./testutil/testsummary
	LOGMESH_FAULTS=1 $(GO) test -count=1 -timeout 30m -v -run 'TestPowerCut' ./peer

# Each mutation of docs/testing.md breaks what a safety test guards and
# fails unless that test fails.
mutations:
	$(GO) run ./testutil/mutate

# Every fault scenario on peer containers, and the Compose file (Docker, root).
test-docker:
	set -o pipefail; LOGMESH_FAULTS=1 $(GO) test -count=1 -timeout 90m -v -run 'TestScenariosDocker|TestDockerCompose' ./chaos 2>&1 | \
	  $(GO) run ./testutil/testsummary

test-short: lint
	$(GO) test -short -count=1 $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# Each fuzz target for FUZZTIME (go test runs one target per invocation).
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

# Benchmarks: figures are ratios against baselines measured in the same run.
bench: build
	$(BIN) bench
	$(BIN) bench --cluster --messages 500000
	$(BIN) bench --anti-entropy

clean:
	rm -rf bin
