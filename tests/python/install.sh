#!/usr/bin/env bash
# `pip install .` as users do, into a fresh virtual environment at
# target/py-venv, with pytest beside it, for the Python tests on the host
# and in the guest.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
python=${PYTHON:-python3}
"$python" -c 'import venv, ensurepip' 2>/dev/null || {
  apt-get install -y -qq python3-venv >/dev/null
}
venv=$repo/target/py-venv
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check pytest prometheus-client
"$venv/bin/pip" install -q --disable-pip-version-check .
