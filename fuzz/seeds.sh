#!/bin/bash
# The seed corpus, built from the test programs (never checked in: they are
# compiled objects): each target's inputs under DIR (default corpus/).
set -euo pipefail
cd "$(dirname "$0")"
dir=${1:-corpus}
inc=$(ls -d target/*/release/build/libbpf-sys-*/out/include 2>/dev/null | head -1)
[ -n "$inc" ] || { echo "seeds.sh: build the targets first (libbpf's headers)" >&2; exit 1; }
mkdir -p "$dir"/{component,link,rewrite,btf,btf_ext,inline}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for src in ../tests/bpf/*.bpf.c ../libxdpchain/bpf/testdata/*.bpf.c; do
  name=$(basename "$src" .bpf.c)
  for flags in "-g" ""; do
    o="$tmp/$name${flags:+-g}.o"
    clang -O2 -target bpf $flags -I"$inc" -I/usr/include/"$(uname -m)"-linux-gnu \
      -c "$src" -o "$o" 2>/dev/null || continue
    for t in component link rewrite; do cp "$o" "$dir/$t/"; done
    if llvm-objcopy --dump-section .BTF="$tmp/btf" --dump-section .BTF.ext="$tmp/ext" "$o" /dev/null 2>/dev/null; then
      cp "$tmp/btf" "$dir/btf/$name"
      len=$(stat -c %s "$tmp/btf")
      printf "%08x" "$len" | sed 's/\(..\)\(..\)\(..\)\(..\)/\\x\4\\x\3\\x\2\\x\1/' |
        xargs -0 printf > "$dir/btf_ext/$name"
      cat "$tmp/btf" "$tmp/ext" >> "$dir/btf_ext/$name"
    fi
    for sec in xdp .text; do
      llvm-objcopy --dump-section "$sec=$dir/inline/$name${sec//./_}" "$o" /dev/null 2>/dev/null || true
    done
  done
done
find "$dir" -type f -empty -delete
