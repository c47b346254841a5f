#!/usr/bin/env bash
# The unit tests of the object layer (xdpchain-obj: ELF rewriter, BTF
# editor, instructions, config layouts) and of the library (the plan of a
# chain, the store's decisions, what it links with libbpf) as an ordinary
# user without capabilities: none of them may need the kernel's privileges.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
for pkg in xdpchain-obj libxdpchain; do
  bin=$(cargo test -q -p "$pkg" --lib --no-run --message-format=json 2>/dev/null |
    grep '"kind":\["lib"\]' | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | tail -1)
  [ -x "$bin" ] || { echo "unprivileged: no unit test binary of $pkg" >&2; exit 1; }
  setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
    "$bin" --test-threads=2
done
