# taobox: `make run` runs the main job, `make test` runs every test.

VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
FUZZTIME ?= 60s
GO       ?= go

.PHONY: build run test test-long test-race bench lint fuzz clean cuda device-bins cuda-toolchain ptx ptx-check train-tiny

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/taobox ./cmd/taobox

# The main job: a local devnet in one process (a chain with 1 s blocks, two
# subnets, 2 validators and 6 miners each over QUIC on 127.0.0.1, two of the
# miners cheating) that prints each subnet's table after its epochs and
# stops on its own after 5 epochs of each (about 50 s).
run: build
	bin/taobox devnet --epochs 5

test:
	$(GO) test -count=1 ./...

test-long:
	TAOBOX_LONG=1 $(GO) test -count=1 -timeout 60m ./...

# The packages whose goroutines meet the most (the task protocol, the miner
# and validator, the GPU runner's client) under the race detector (needs
# cgo and gcc); CI runs it after make cuda has made sure gcc is there.
RACE_PKGS = ./task/... ./miner/... ./validator/... ./gpu/runner/... ./internal/...
test-race:
	CGO_ENABLED=1 $(GO) test -count=1 -race $(RACE_PKGS)

# The Yuma table (engine beside the reference port, targets), then the Go
# benchmarks of the chain packages.
bench: build
	bin/taobox yuma bench
	$(GO) test -run='^$$' -bench=. -benchmem ./chain/...

lint:
	@files="$$(gofmt -l .)"; \
	if [ -n "$$files" ]; then echo "gofmt -l lists files that need gofmt -w:"; echo "$$files"; exit 1; fi
	$(GO) vet ./...
	GOOS=darwin $(GO) build ./... # the Linux-only files have their other-OS halves

# Every Fuzz* target of every package, one after the other, FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		list="$$($(GO) test -list '^Fuzz' $$pkg)"; \
		for target in $$(echo "$$list" | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) $$pkg; \
		done; \
	done

clean:
	rm -rf bin dist

# Retrains the embedded model, assets/tiny.gguf, from scratch (about 7
# minutes on 2 cores; bit-identical on the same machine). If the bytes
# change, put the SHA-256 it prints into assets.TinySHA256.
train-tiny: build
	bin/taobox model train-tiny --out assets/tiny.gguf --force

# ---- CUDA build (taobox-cuda); see scripts/cuda-toolchain.sh. Needs no GPU
# and no CUDA install: the pinned nvcc 11.8, headers and a generated libcuda
# link stub are fetched from Debian non-free into .cuda/ (cached, ignored).
CUDA      ?= $(CURDIR)/.cuda
NVCC      := $(CUDA)/usr/lib/nvidia-cuda-toolkit/bin/nvcc
PTXAS     := $(CUDA)/usr/bin/ptxas
NVCCFLAGS := -ccbin g++ -allow-unsupported-compiler -ptx
# NAME_sm90.cu targets compute_90 (Hopper-only PTX); every other kernel file compute_80.
ptxarch = $$(case "$(1)" in *_sm90) echo compute_90;; *) echo compute_80;; esac)
CUDA_ENV  := CGO_ENABLED=1 CGO_CFLAGS="-I$(CUDA)/usr/include" CGO_LDFLAGS="-L$(CUDA)/stub"

# bin/taobox-cuda: the committed PTX must be what nvcc makes of kernels/*.cu,
# the cuda-tagged code must vet, and the binary may need only libcuda.so.1
# and libc.so.6 (the GPU host has the driver, not the toolkit). Then package
# gpu's tests and the smoke selftest run against scripts/fakecuda, a CPU
# stand-in for libcuda.so.1 (in .cuda/fake; never ship it) that runs the
# kernels' own CUDA text compiled as C++ (block threads as fibers): the Go
# side of the GPU path and the LLaMA kernels, checked against the CPU engine
# (TestLlamaGPUvsCPU), on machines without a GPU.
cuda: ptx-check
	$(CUDA_ENV) $(GO) vet -tags cuda ./gpu/... ./kernels/... ./cmd/...
	$(CUDA_ENV) $(GO) build -trimpath -tags cuda -ldflags "-X main.version=$(VERSION)" -o bin/taobox-cuda ./cmd/taobox
	@needed="$$(readelf -d bin/taobox-cuda | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | LC_ALL=C sort | tr '\n' ' ')"; \
	if [ "$$needed" != "libc.so.6 libcuda.so.1 " ]; then \
		echo "bin/taobox-cuda needs $$needed; it may need only libc.so.6 and libcuda.so.1"; exit 1; fi; \
	echo "bin/taobox-cuda: NEEDED $$needed"
	@scripts/fakecuda/build.sh $(CUDA)/fake
	LD_LIBRARY_PATH=$(CUDA)/fake $(CUDA_ENV) $(GO) test -count=1 -tags cuda -run '^(TestDo|TestSelftests|TestLlamaGPUvsCPU|TestLlamaBenchTiny|TestLlamaPromptLong|TestLlamaFeed|TestYumaGPU|TestYumaRegions)$$' ./gpu/
	LD_LIBRARY_PATH=$(CUDA)/fake bin/taobox-cuda selftest --run smoke/ >/dev/null
	@# Every Yuma path of bench gpu, each checked against the CPU engine
	@# (about 10 s on 2 cores): in process, staged, through page-locked
	@# regions (nothing staged), and a runner process whose ready line says
	@# its shared region is page-locked, serving yuma.packed in place.
	@LD_LIBRARY_PATH=$(CUDA)/fake bin/taobox-cuda bench gpu --yuma-shapes 8x256 --no-llama --iters 1 --json >$(CUDA)/fake/bench.log 2>&1 && \
		grep -q '"regions_staged_bytes":0,' $(CUDA)/fake/bench.log && ! grep -q '"regions_error"' $(CUDA)/fake/bench.log && \
		grep -q 'shared region page-locked in place' $(CUDA)/fake/bench.log || \
		{ cat $(CUDA)/fake/bench.log; echo "bench gpu under fakecuda failed"; exit 1; }
	@echo "bench gpu under fakecuda: every Yuma path (in process, staged, page-locked regions, runner in place) agrees with the CPU engine"

# What a device machine (no Go there) runs from bin/: taobox-cuda, and the
# miner's test binary for scripts/gpu-check.sh's task-rate step.
device-bins: cuda
	$(GO) test -c -ldflags "-s -w" -o bin/miner.test ./miner # stripped: bin/ travels to the device (64 MiB in all)

cuda-toolchain:
	@scripts/cuda-toolchain.sh $(CUDA)

# Regenerates every kernels/*.ptx in a temporary folder, diffs it against the
# committed one and assembles it for sm_90 (H100/H200) with ptxas.
ptx-check: cuda-toolchain
	@tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; status=0; \
	for p in kernels/*.ptx; do \
		[ -f "$${p%.ptx}.cu" ] || { echo "$$p has no $${p%.ptx}.cu"; status=1; }; \
	done; \
	for src in kernels/*.cu; do \
		n="$$(basename "$$src" .cu)"; \
		$(NVCC) $(NVCCFLAGS) -arch=$(call ptxarch,$$n) "$$src" -o "$$tmp/$$n.ptx" || { status=1; continue; }; \
		if ! diff -u "kernels/$$n.ptx" "$$tmp/$$n.ptx"; then \
			echo "kernels/$$n.ptx is not what nvcc makes of $$src: run make ptx and commit it"; status=1; fi; \
		$(PTXAS) -arch=sm_90 "$$tmp/$$n.ptx" -o "$$tmp/$$n.cubin" || status=1; \
	done; \
	[ "$$status" = 0 ] && echo "ptx-check: kernels/*.ptx match kernels/*.cu and assemble for sm_90"; \
	exit $$status

# Regenerates kernels/*.ptx in place (commit them with their .cu).
ptx: cuda-toolchain
	@set -e; for src in kernels/*.cu; do \
		n="$$(basename "$$src" .cu)"; \
		$(NVCC) $(NVCCFLAGS) -arch=$(call ptxarch,$$n) "$$src" -o "kernels/$$n.ptx"; \
		echo "wrote kernels/$$n.ptx"; \
	done
