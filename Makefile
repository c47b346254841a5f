# libxdpchain: `make test` and `make demo` install what they lack (as root).
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all deps build test demo bench clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(CARGO) build --release --workspace

# Unit tests, then the real-kernel tests (netns, veth, BPF_PROG_TEST_RUN).
test: deps
	$(CARGO) test --workspace

demo: build
	examples/demo.sh target/release/xdpchain

bench: deps
	$(CARGO) run --release -p libxdpchain --example bench

clean:
	$(CARGO) clean
