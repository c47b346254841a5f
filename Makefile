# libxdpchain: `make test` and `make demo` install what they lack (as root).
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DESTDIR ?=
# Everything goes under PREFIX (and DESTDIR), but for what only works at
# the system's own paths, which install-cli installs only with SYSTEM=1:
# the systemd units (UNITDIR), the udev rule (UDEVDIR) and the chains file
# the command reads by default (/etc/xdpchain/chains.toml).
SYSTEM ?=
UNITDIR ?= $(or $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null),/lib/systemd/system)
UDEVDIR ?= $(or $(shell pkg-config --variable=udevdir udev 2>/dev/null),/lib/udev)
# The Python module (install-python): PREFIX's directory of the system's
# Python 3 (dist-packages where the system's Python names it so).
PYTHONDIR ?= $(shell python3 -c 'import sys, sysconfig; \
    print("$(PREFIX)/lib/python%d.%d/%s" % (*sys.version_info[:2], sysconfig.get_path("platlib").rstrip("/").rsplit("/", 1)[1]))')
# release, or debug (what the tests install: cargo test built it already)
PROFILE ?= release
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
MAJOR := $(firstword $(subst ., ,$(VERSION)))
PROFILE_FLAG := $(if $(filter release,$(PROFILE)),--release,)

.PHONY: all deps build lib cli python-module install install-cli install-python uninstall uninstall-cli \
	header check test demo bench fuzz deb wheel clean

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

cli:
	$(CARGO) build $(PROFILE_FLAG) -p xdpchain-cli

# The command and its man page; with SYSTEM=1 also the systemd units and
# udev rule that apply /etc/xdpchain/chains.toml at boot and for interfaces
# that appear, and that file (commented out; kept if there is one).
install-cli: cli
	install -D -m 0755 target/$(PROFILE)/xdpchain $(DESTDIR)$(BINDIR)/xdpchain
	install -D -m 0644 cli/xdpchain.1 $(DESTDIR)$(MANDIR)/man1/xdpchain.1
ifeq ($(SYSTEM),1)
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(UDEVDIR)/rules.d $(DESTDIR)/etc/xdpchain
	for unit in xdpchain.service xdpchain@.service; do \
	    sed 's|/usr/bin/xdpchain|$(BINDIR)/xdpchain|' cli/systemd/$$unit > $(DESTDIR)$(UNITDIR)/$$unit; \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$$unit; done
	install -m 0644 cli/systemd/99-xdpchain.rules $(DESTDIR)$(UDEVDIR)/rules.d/99-xdpchain.rules
	[ -e $(DESTDIR)/etc/xdpchain/chains.toml ] || install -m 0644 cli/chains.toml $(DESTDIR)/etc/xdpchain/chains.toml
endif

# The extension module as the stable ABI's (one for every CPython 3.8+).
python-module:
	$(CARGO) build $(PROFILE_FLAG) -p xdpchain-python --features pyo3/extension-module

install-python: python-module
	install -d $(DESTDIR)$(PYTHONDIR)/xdpchain
	install -m 0644 bindings/python/python/xdpchain/*.py bindings/python/python/xdpchain/*.pyi \
	    bindings/python/python/xdpchain/py.typed $(DESTDIR)$(PYTHONDIR)/xdpchain/
	install -m 0644 target/$(PROFILE)/lib_xdpchain.so $(DESTDIR)$(PYTHONDIR)/xdpchain/_xdpchain.abi3.so
	@# Metadata, so that importlib.metadata and pip know the module (no
	@# RECORD: pip leaves its removal to whoever installed it).
	install -d $(DESTDIR)$(PYTHONDIR)/xdpchain-$(VERSION).dist-info
	printf 'Metadata-Version: 2.1\nName: xdpchain\nVersion: %s\nSummary: %s\nRequires-Python: >=3.8\n' \
	    $(VERSION) "$$(sed -n 's/^description = "\(.*\)"/\1/p' pyproject.toml)" \
	    >$(DESTDIR)$(PYTHONDIR)/xdpchain-$(VERSION).dist-info/METADATA
	echo make >$(DESTDIR)$(PYTHONDIR)/xdpchain-$(VERSION).dist-info/INSTALLER

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libxdpchain.so $(DESTDIR)$(LIBDIR)/libxdpchain.so.$(MAJOR) \
	      $(DESTDIR)$(LIBDIR)/libxdpchain.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libxdpchain.a \
	      $(DESTDIR)$(INCLUDEDIR)/xdpchain.h $(DESTDIR)$(LIBDIR)/pkgconfig/xdpchain.pc

# What install-cli put there, but for /etc/xdpchain (the operator's).
uninstall-cli:
	rm -f $(DESTDIR)$(BINDIR)/xdpchain $(DESTDIR)$(MANDIR)/man1/xdpchain.1 \
	      $(DESTDIR)$(UNITDIR)/xdpchain.service $(DESTDIR)$(UNITDIR)/xdpchain@.service \
	      $(DESTDIR)$(UDEVDIR)/rules.d/99-xdpchain.rules

# Debian packages (libxdpchain0, libxdpchain-dev, xdpchain,
# python3-xdpchain) in target/deb, with debhelper; cargo from PATH, so the
# build dependencies are not checked (-d).
deb: deps
	rm -rf target/deb && mkdir -p target/deb
	dpkg-buildpackage -b -us -uc -d \
	    --buildinfo-file=target/deb/xdpchain.buildinfo --buildinfo-option=-utarget/deb \
	    --changes-file=target/deb/xdpchain.changes --changes-option=-utarget/deb
	debian/rules clean

# The manylinux abi3 wheel and the sdist in target/wheels (maturin, checked
# and repaired by auditwheel).
wheel: deps
	tests/wheel/build.sh

# Regenerates include/xdpchain.h with cbindgen (the tests fail while it is stale).
header:
	XDPCHAIN_WRITE_HEADER=1 $(CARGO) test -p xdpchain-c --test header

# The host part, for contributors (a few minutes): every test on this
# machine's kernel (Rust, both crates' unit tests again as an unprivileged
# user, C, Python) and make install as users run it.
check: deps
	$(CARGO) test --workspace
	$(CARGO) check -q -p libxdpchain --features bench --lib --examples
	tests/unprivileged.sh
	tests/c/run.sh
	tests/install.sh
	tests/python/run.sh

# Everything (CI): the host part, the Debian packages and the wheel as
# users install them, then every test again in qemu guests running
# Debian's 5.10, 6.1 and 6.12 kernels side by side (which have freplace;
# tests/vm/run.sh), and a Debian system booting on 6.1 and 6.12 with the
# packaged unit (tests/vm/boot.sh).
test: check
	tests/deb/run.sh
	tests/wheel/run.sh
	tests/vm/run.sh
	tests/vm/boot.sh

demo: build
	examples/demo.sh target/release/xdpchain

# On this machine's kernel, then in the VM (dynamic chains, libxdp).
bench: deps
	$(CARGO) run --release -p libxdpchain --features bench --example bench
	tests/vm/run.sh --bench

# A fuzzing campaign: FUZZ_SECONDS (default 60) over each target in fuzz/
# (nightly, cargo-fuzz, ASan over our code and libbpf's); see fuzz/run.sh.
fuzz:
	fuzz/run.sh $(or $(FUZZ_SECONDS),60)

clean:
	$(CARGO) clean
