# Build, test and run edema. `make demo` and `make test` do all set-up on a
# fresh Debian machine (see README.md).
#
# TORCH_PREFIX points CMake at another libtorch (an official download, or
# pip PyTorch's torch.utils.cmake_prefix_path); empty means the system's.

export PATH := /usr/local/go/bin:$(PATH)

TORCH_PREFIX ?=
BUILD        ?= build
GO           ?= go
# Fuzzing budgets are counts of executions, not durations: Go's fuzzing
# coordinator can fail a run with "context deadline exceeded" when a
# duration ends while a worker is busy (go.dev/issue/75804). The counts
# are about 10 s for FuzzLoad and 4 s for each decoder of the data path on
# the 2 cores of docs/BENCHMARKS.md; each committed seed corpus also runs
# as plain tests.
FUZZTIME     ?= 100000x
DATA_FUZZ    := ./oct:FuzzDecodeSlice:12000x ./oct:FuzzDecodeLabel:12000x ./oct:FuzzDecodeStack:40000x \
                ./internal/npyheader:FuzzNewReader:40000x ./cmd/edema:FuzzReadInputNPY:1500x
# Each demo run writes a new folder, so earlier results are never overwritten.
DEMO_OUT     ?= result/demo-$(shell date +%Y%m%d-%H%M%S)

SHIM := $(BUILD)/libedema_torch.so

# make install puts the shim, its header and its pkg-config file under
# PREFIX, for programs in other modules (go build -tags edema_pkgconfig).
PREFIX       ?= /usr/local
# make test installs it here to build and test examples/ against it.
EXAMPLES_PREFIX ?= $(BUILD)/examples-prefix

.PHONY: all deps shim build test test-libtorch2 demo bench clean gpu-binaries install examples

all: build

deps:
	scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(if $(TORCH_PREFIX),-DCMAKE_PREFIX_PATH=$(TORCH_PREFIX))

$(SHIM): $(BUILD)/CMakeCache.txt $(wildcard torch/shim/*) torch/edema_torch.h torch/edema_c10d.h
	@mkdir -p $(BUILD)
	flock $(BUILD)/.lock cmake --build $(BUILD) -j $$(nproc)

shim: $(SHIM)

build: deps $(SHIM)
	$(GO) build -o bin/edema ./cmd/edema

test: deps $(SHIM)
	$(GO) mod tidy -diff
	test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: the files above are not formatted"; exit 1; }
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	$(GO) test -race -count=1 -run '^(TestConcurrentPredictions|TestPipelinedBatches|TestBatchesInFlight)$$' ./inference
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./torch/pth
	for t in $(DATA_FUZZ); do \
	  pkg=$${t%%:*}; rest=$${t#*:}; target=$${rest%%:*}; budget=$${rest#*:}; \
	  $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime "$$budget" "$$pkg" || exit 1; \
	done
	$(MAKE) --no-print-directory examples

# The tests again, against libtorch 2.6 and PyTorch 2.6, in a Debian trixie
# chroot (see the script).
test-libtorch2:
	scripts/test-libtorch2.sh

install: $(SHIM)
	cmake --install $(BUILD) --prefix $(PREFIX)

# The examples module, outside the main one, built and tested against an
# installed shim: what a program of its own does.
examples: $(SHIM)
	cmake --install $(BUILD) --prefix $(abspath $(EXAMPLES_PREFIX)) >/dev/null
	cd examples && export PKG_CONFIG_PATH=$(abspath $(EXAMPLES_PREFIX))/lib/pkgconfig && \
	  $(GO) mod tidy -diff && $(GO) vet -tags edema_pkgconfig ./... && $(GO) test -count=1 -tags edema_pkgconfig ./...

demo: build
	bin/edema demo --out $(DEMO_OUT)

bench: deps $(SHIM)
	scripts/bench.sh

# Test binaries for scripts/gpu-check.sh, which runs them on a GPU machine
# without Go: those of every package whose tests mention CUDA.
GPU_PKGS ?= $(sort $(dir $(shell grep -l CUDA $$(find . -name '*_test.go'))))

gpu-binaries: $(SHIM)
	rm -rf .gpu && mkdir -p .gpu
	for d in $(patsubst ./%/,%,$(GPU_PKGS)); do \
	  n=$$(echo $$d | tr / _); \
	  $(GO) test -c -ldflags='-s -w' -o .gpu/$$n.test ./$$d || exit 1; \
	  echo "$$d $$n.test" >>.gpu/manifest; \
	done

clean:
	rm -rf $(BUILD) bin .gpu
