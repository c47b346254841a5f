#!/usr/bin/env bash
# The Python bindings as users get them: `pip install .` into a fresh
# virtual environment (tests/python/install.sh), then the pytest suite
# (bindings/python/tests) as root against this kernel; tests/vm/run.sh runs
# it in the guest too. Needs the test objects and the xdpchain command
# that `cargo test` builds, and the C library and example loader that
# tests/c/run.sh installs in target/c-prefix.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
tests/python/install.sh
tmp=$(mktemp -d /tmp/xdpchain-py.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"   # not the repository: the installed package is the one imported
XDPCHAIN_TEST_OBJECTS=$repo/target/test-bpf XDPCHAIN_CLI=$repo/target/debug/xdpchain \
XDPCHAIN_C_PREFIX=$repo/target/c-prefix \
  "$repo/target/py-venv/bin/python" -m pytest -q -p no:cacheprovider "$repo/bindings/python/tests"
