#!/usr/bin/env bash
# Compiles test programs, tests/bpf/NAME.bpf.c, into OUTDIR/NAME.o, as the
# Rust tests' common::compile does (their plain variant); every one without
# NAMEs. An object newer than its source stays. Needs libbpf's headers from a
# cargo build (libbpf-sys).
#
#   tests/bpf/build.sh OUTDIR [NAME...]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
shift
inc=$(ls -d "$repo"/target/*/build/libbpf-sys-*/out/include 2>/dev/null | head -1)
[ -n "$inc" ] || { echo "tests/bpf/build.sh: no libbpf headers (build the workspace first)" >&2; exit 1; }
[ $# -gt 0 ] || set -- $(cd "$repo/tests/bpf" && ls *.bpf.c | sed 's/\.bpf\.c$//')
mkdir -p "$out"
for name in "$@"; do
  src=$repo/tests/bpf/$name.bpf.c
  [ "$out/$name.o" -nt "$src" ] ||
    clang -O2 -g -target bpf -Wall -I"$inc" -I/usr/include/"$(uname -m)"-linux-gnu \
      -c "$src" -o "$out/$name.o"
done
