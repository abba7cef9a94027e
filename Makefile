# FaultMaven — one binary. `make run` serves on 127.0.0.1:8090, `make test` runs every test.
GO        ?= go
GOBIN     := $(shell $(GO) env GOPATH)/bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
STATICCHECK_VERSION := v0.8.2
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOS    := $(shell find . -name '*.proto' -not -path './.git/*')

.PHONY: all build run test lint fmt bench bench-ws bench-embed soak proto proto-check tools clean ort testmodel testmodel-minilm

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/faultmaven ./cmd/faultmaven

run: build
	./bin/faultmaven serve --addr 127.0.0.1:8090 --data ./data --log-format console

# The loghub samples live in the shared/ folder beside the repository.
export FM_LOGHUB ?= $(firstword $(wildcard $(abspath ../shared/data/loghub)) /work/shared/data/loghub)

# Every test, race detector on. The end-to-end tests build their own binary.
test: ort
	$(GO) test -race -count=1 -timeout 25m ./...

lint: tools
	@unformatted="$$(gofmt -l $$(git ls-files '*.go'))"; \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# Benchmarks; results are recorded by hand in docs/benchmarks.md.
bench: ort bench-ws bench-embed
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 60m ./actors/ | tee bench-actors.out
	FM_BENCH_EF=64,256,512,1024 $(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 60m ./embed/index/ | tee bench-index.out
	FM_BENCH=1 $(GO) test -run '^$$' -bench AnalyzeLarge -benchtime 1x -timeout 30m ./actors/evidence/loginsight/ | tee bench-logs.out
	$(GO) test -run '^$$' -bench PDF -benchtime 5x -count 3 -timeout 30m ./embed/ | tee bench-pdf.out

# Live sessions over WebSocket: the server against a minimal relay (floor) and the same relay
# syncing each user message and answer to a group-committed log (floor-durable), same workload.
bench-ws: build
	$(GO) run ./cmd/fmload --bin ./bin/faultmaven --sessions 100,250,500,1000 --duration 20s --ttft 300ms --tps 50 --reply-tokens 40 --targets server,floor,floor-durable --out bench-ws.json | tee bench-ws.out

# Embeddings (issue 4): the hugot and ort backends and Node's onnxruntime-node
# on the same texts and the same MiniLM-shaped model, each in its own process,
# then ingestion throughput. EMBED_RUNS=3 gives medians of three runs (about
# 7 minutes a run). The report is printed last and kept in
# .cache/bench-embed/report.md, which is only written when every step passed.
EMBED_RUNS ?= 1
bench-embed: ort testmodel-minilm
	@rm -f .cache/bench-embed/report.md
	$(GO) build -o bin/fmembedbench ./cmd/fmembedbench
	./bin/fmembedbench all -runs $(EMBED_RUNS) -model .cache/testmodel/minilm -corpus testdata/kb/runbooks \
	  -ort-node $(ORT_DIR)/node_modules/onnxruntime-node -out .cache/bench-embed | tee bench-embed.out
	@test -f .cache/bench-embed/report.md

# Long crash-recovery soak: many more kill -9 points than CI runs.
soak:
	FM_CRASH_ROUNDS=200 $(GO) test -run 'TestKill9' -count 1 -timeout 120m -v ./e2e/

proto: tools
	PATH="$(GOBIN):$$PATH" protoc --go_out=. --go_opt=paths=source_relative $(PROTOS)

# Fails when committed generated code differs from what the .proto files give.
proto-check: proto
	@git diff --exit-code -- '*.pb.go' || (echo "generated protobuf code is stale: run make proto and commit"; exit 1)

# ONNX Runtime's shared library for the embedding tests and benchmarks, taken
# from the onnxruntime-node package on the npm registry (npm pack runs no
# install script). The tarballs are pinned by sha256 and kept, so a second run
# only re-hashes them. The unpacked packages stay under .cache/ort/node_modules
# so that Node can require('onnxruntime-node') without npm install.
ORT_VERSION        := 1.30.0
ORT_NODE_SHA256    := 6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75
ORT_COMMON_SHA256  := 7906c439e0d3e0f4048caa23b64cdfadc0f455c377f579ce1ab2a4b778f07d5f
ORT_DIR            := .cache/ort
export FM_ORT_LIB  ?= $(abspath $(ORT_DIR)/libonnxruntime.so.1)

# $(call ort_fetch,package,sha256,file it leaves,command run after unpacking):
# npm pack the package at ORT_VERSION unless its tarball is already here with
# the pinned hash and the file it leaves exists, then unpack it into
# node_modules/package.
define ort_fetch
	@set -e; mkdir -p $(ORT_DIR)/node_modules; cd $(ORT_DIR); \
	tgz=$(1)-$(ORT_VERSION).tgz; \
	if [ -f $$tgz ] && [ -e $(3) ] && echo "$(2)  $$tgz" | sha256sum -c --status; then exit 0; fi; \
	rm -f $(3); \
	if [ ! -f $$tgz ] || ! echo "$(2)  $$tgz" | sha256sum -c --status; then \
	  rm -f $$tgz; echo "fetching $(1)@$(ORT_VERSION) with npm pack"; \
	  npm pack --silent $(1)@$(ORT_VERSION) >/dev/null; \
	fi; \
	if ! echo "$(2)  $$tgz" | sha256sum -c --status; then \
	  echo "$$tgz: sha256 $$(sha256sum $$tgz | cut -d' ' -f1), want $(2)"; rm -f $$tgz; exit 1; fi; \
	rm -rf node_modules/$(1) node_modules/$(1).tmp; mkdir node_modules/$(1).tmp; \
	tar -xzf $$tgz -C node_modules/$(1).tmp --strip-components=1 --no-same-owner; \
	mv node_modules/$(1).tmp node_modules/$(1); \
	$(4)
endef

ORT_LIB_IN_PACKAGE := node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1

ort:
	$(call ort_fetch,onnxruntime-common,$(ORT_COMMON_SHA256),node_modules/onnxruntime-common/package.json,true)
	$(call ort_fetch,onnxruntime-node,$(ORT_NODE_SHA256),libonnxruntime.so.1,cp $(ORT_LIB_IN_PACKAGE) libonnxruntime.so.1.tmp && mv libonnxruntime.so.1.tmp libonnxruntime.so.1)

# A random-weight BERT model plus the real all-MiniLM-L6-v2 tokenizer, for
# tests (tiny) and benchmarks (minilm: the compute of all-MiniLM-L6-v2).
testmodel:
	$(GO) run ./embed/testmodel/cmd/genmodel -preset tiny -out .cache/testmodel/tiny

testmodel-minilm:
	$(GO) run ./embed/testmodel/cmd/genmodel -preset minilm -out .cache/testmodel/minilm

tools:
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@test -x $(GOBIN)/protoc-gen-go || $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

clean:
	rm -rf bin
