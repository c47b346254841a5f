#!/usr/bin/env bash
# Fetches the BPF objects that Debian packages ship, programs that others
# wrote, into target/corpus/PACKAGE/ with `apt-get download` (as the guest
# harness fetches its kernels), for tests/chain.rs. Of xdp-tools' own
# packages, libxdp1 ships the objects (xdp-filter's, xdpdump's, AF_XDP's
# default program, the dispatcher) and xdp-tests its test programs;
# xdp-tools ships none: its tools embed their programs.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$repo/target/corpus
packages=(libxdp1 xdp-tests)
[ -e "$out/.complete" ] && exit 0
tmp=$(mktemp -d /tmp/xdpchain-corpus.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # apt-get download writes as _apt where it can
(cd "$tmp" && { apt-get download -qq "${packages[@]}" 2>/dev/null ||
  { apt-get update -qq && apt-get download -qq "${packages[@]}"; }; })
rm -rf "$out.new"
for deb in "$tmp"/*.deb; do
  pkg=$(dpkg-deb -f "$deb" Package)
  dpkg-deb -x "$deb" "$tmp/$pkg"
  mkdir -p "$out.new/$pkg"
  find "$tmp/$pkg" -name '*.o' -type f -exec cp {} "$out.new/$pkg/" \;
done
touch "$out.new/.complete"
rm -rf "$out"
mv "$out.new" "$out"
