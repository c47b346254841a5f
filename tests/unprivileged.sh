#!/usr/bin/env bash
# The library's unit tests (the object layer: ELF rewriter, BTF editor,
# instructions, config layouts, the plan of a chain) as an ordinary user
# without capabilities: none of them may need the kernel's privileges.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bin=$(cargo test -q -p libxdpchain --lib --no-run --message-format=json 2>/dev/null |
  grep '"kind":\["lib"\]' | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | tail -1)
[ -x "$bin" ] || { echo "unprivileged: no unit test binary" >&2; exit 1; }
setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
  "$bin" --test-threads=2
