# taobox: `make run` runs the main job, `make test` runs every test.

VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
FUZZTIME ?= 60s
GO       ?= go

.PHONY: build run test test-long bench lint fuzz clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/taobox ./cmd/taobox

# The main job: a local devnet in one process (a chain with 1 s blocks, two
# subnets, scripted validators and miners) that prints each subnet's
# metagraph after its epochs and stops on its own after 3 epochs of each.
run: build
	bin/taobox devnet --epochs 3

test:
	$(GO) test -count=1 ./...

test-long:
	TAOBOX_LONG=1 $(GO) test -count=1 -timeout 60m ./...

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./chain/...

lint:
	@files="$$(gofmt -l .)"; \
	if [ -n "$$files" ]; then echo "gofmt -l lists files that need gofmt -w:"; echo "$$files"; exit 1; fi
	$(GO) vet ./...

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
