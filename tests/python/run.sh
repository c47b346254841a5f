#!/usr/bin/env bash
# The Python bindings as users get them: `pip install .` into a fresh
# virtual environment, then the pytest suite (bindings/python/tests) as
# root against this kernel. Needs the test objects and the xdpchain command
# that `cargo test` builds, and the C library and example loader that
# tests/c/run.sh installs in target/c-prefix.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
python=${PYTHON:-python3}
"$python" -c 'import venv, ensurepip' 2>/dev/null || {
  apt-get install -y -qq python3-venv >/dev/null
}
tmp=$(mktemp -d /tmp/xdpchain-py.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# Readable by the unprivileged user one test runs Python as.
chmod 0755 "$tmp"
"$python" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q --disable-pip-version-check pytest
"$tmp/venv/bin/pip" install -q --disable-pip-version-check .
cd "$tmp"   # not the repository: the installed package is the one imported
XDPCHAIN_TEST_OBJECTS=$repo/target/test-bpf XDPCHAIN_CLI=$repo/target/debug/xdpchain \
XDPCHAIN_C_PREFIX=$repo/target/c-prefix \
  "$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider "$repo/bindings/python/tests"
