# libxdpchain: `make test` and `make demo` install what they lack (as root).
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DESTDIR ?=
# release, or debug (what the tests install: cargo test built it already)
PROFILE ?= release
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
MAJOR := $(firstword $(subst ., ,$(VERSION)))
PROFILE_FLAG := $(if $(filter release,$(PROFILE)),--release,)

.PHONY: all deps build lib install uninstall header test demo bench fuzz clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(CARGO) build --release --workspace

# The C library: libxdpchain.so.MAJOR (soname), libxdpchain.a, xdpchain.h
# and xdpchain.pc.
lib:
	$(CARGO) build $(PROFILE_FLAG) -p xdpchain-c

install: lib
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 0755 target/$(PROFILE)/libxdpchain_c.so $(DESTDIR)$(LIBDIR)/libxdpchain.so.$(VERSION)
	ln -sf libxdpchain.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libxdpchain.so.$(MAJOR)
	ln -sf libxdpchain.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libxdpchain.so
	install -m 0644 target/$(PROFILE)/libxdpchain_c.a $(DESTDIR)$(LIBDIR)/libxdpchain.a
	install -m 0644 include/xdpchain.h $(DESTDIR)$(INCLUDEDIR)/xdpchain.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    pkgconfig/xdpchain.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/xdpchain.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libxdpchain.so $(DESTDIR)$(LIBDIR)/libxdpchain.so.$(MAJOR) \
	      $(DESTDIR)$(LIBDIR)/libxdpchain.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libxdpchain.a \
	      $(DESTDIR)$(INCLUDEDIR)/xdpchain.h $(DESTDIR)$(LIBDIR)/pkgconfig/xdpchain.pc

# Regenerates include/xdpchain.h with cbindgen (the tests fail while it is stale).
header:
	XDPCHAIN_WRITE_HEADER=1 $(CARGO) test -p xdpchain-c --test header

# Every test on this machine's kernel (Rust, the library's unit tests again
# as an unprivileged user, C, Python), then every test again in qemu guests
# running Debian's 6.1 and 6.12 kernels (which have freplace); see
# tests/vm/run.sh.
test: deps
	$(CARGO) test --workspace
	$(CARGO) check -q -p libxdpchain --features fuzzing
	tests/unprivileged.sh
	tests/c/run.sh
	tests/python/run.sh
	tests/vm/run.sh

demo: build
	examples/demo.sh target/release/xdpchain

# On this machine's kernel, then in the VM (dynamic chains, libxdp).
bench: deps
	$(CARGO) run --release -p libxdpchain --example bench
	tests/vm/run.sh --bench

# A fuzzing campaign: FUZZ_SECONDS (default 60) over each target in fuzz/
# (nightly, cargo-fuzz, ASan over our code and libbpf's); see fuzz/run.sh.
fuzz:
	fuzz/run.sh $(or $(FUZZ_SECONDS),60)

clean:
	$(CARGO) clean
