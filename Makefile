# libxdpchain: `make test` and `make demo` install what they lack (as root).
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: all deps build test demo bench clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(CARGO) build --release --workspace

# Every test on this machine's kernel, then every test again in a qemu guest
# running Debian's 6.1 kernel (which has freplace); see tests/vm/run.sh.
test: deps
	$(CARGO) test --workspace
	tests/vm/run.sh

demo: build
	examples/demo.sh target/release/xdpchain

# On this machine's kernel, then in the VM (dynamic chains, libxdp).
bench: deps
	$(CARGO) run --release -p libxdpchain --example bench
	tests/vm/run.sh --bench

clean:
	$(CARGO) clean
