# FaultMaven — one binary. `make run` serves on 127.0.0.1:8090, `make test` runs every test.
GO        ?= go
GOBIN     := $(shell $(GO) env GOPATH)/bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
STATICCHECK_VERSION := v0.8.2
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOS    := $(shell find . -name '*.proto' -not -path './.git/*')

.PHONY: all build run test lint fmt bench bench-ws soak proto proto-check tools clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/faultmaven ./cmd/faultmaven

run: build
	./bin/faultmaven serve --addr 127.0.0.1:8090 --data ./data --log-format console

# The loghub samples live in the shared/ folder beside the repository.
export FM_LOGHUB ?= $(firstword $(wildcard $(abspath ../shared/data/loghub)) /work/shared/data/loghub)

# Every test, race detector on. The end-to-end tests build their own binary.
test:
	$(GO) test -race -count=1 -timeout 25m ./...

lint: tools
	@unformatted="$$(gofmt -l $$(git ls-files '*.go'))"; \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# Benchmarks; results are recorded by hand in docs/benchmarks.md.
bench: bench-ws
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 60m ./actors/ | tee bench-actors.out
	FM_BENCH_EF=64,256,512,1024 $(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 60m ./embed/index/ | tee bench-index.out
	FM_BENCH=1 $(GO) test -run '^$$' -bench AnalyzeLarge -benchtime 1x -timeout 30m ./actors/evidence/loginsight/ | tee bench-logs.out

# Live sessions over WebSocket: the server against a minimal relay (floor), same workload.
bench-ws: build
	$(GO) run ./cmd/fmload --bin ./bin/faultmaven --sessions 100,250,500,1000 --duration 20s --ttft 300ms --tps 50 --reply-tokens 40 --out bench-ws.json | tee bench-ws.out

# Long crash-recovery soak: many more kill -9 points than CI runs.
soak:
	FM_CRASH_ROUNDS=200 $(GO) test -run 'TestKill9' -count 1 -timeout 120m -v ./e2e/

proto: tools
	PATH="$(GOBIN):$$PATH" protoc --go_out=. --go_opt=paths=source_relative $(PROTOS)

# Fails when committed generated code differs from what the .proto files give.
proto-check: proto
	@git diff --exit-code -- '*.pb.go' || (echo "generated protobuf code is stale: run make proto and commit"; exit 1)

tools:
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@test -x $(GOBIN)/protoc-gen-go || $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

clean:
	rm -rf bin
