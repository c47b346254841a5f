#!/usr/bin/env bash
# make install, install-cli and install-python as a user runs them, with
# PREFIX and no DESTDIR: every file lands under PREFIX, none elsewhere. They
# run in a mount namespace of their own whose root filesystem is read-only
# but for PREFIX and what the build itself writes (target/, cargo's home), so
# a write anywhere else fails the install (a scan of the filesystem for new
# files would also see whatever else runs on the machine meanwhile).
# install-cli's system files (units, udev rule, /etc/xdpchain) come only with
# SYSTEM=1, staged here under DESTDIR.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
tmp=$(mktemp -d /tmp/xdpchain-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
make -s lib cli python-module PROFILE=debug >/dev/null
mkdir "$tmp/prefix"
cargo_home=${CARGO_HOME:-$HOME/.cargo}
# shellcheck disable=SC2016 # expanded by the inner shell
unshare -m --propagation private sh -euc '
  for dir in "$@"; do mount --bind "$dir" "$dir"; done
  mount -o remount,bind,ro /
  make -s install install-cli install-python PREFIX="$1" PROFILE=debug >/dev/null
' install "$tmp/prefix" "$repo/target" "$cargo_home" ||
  { echo "install: failed, or wrote outside PREFIX (read-only file system above)" >&2; exit 1; }
for f in bin/xdpchain share/man/man1/xdpchain.1 lib/libxdpchain.so include/xdpchain.h \
         lib/pkgconfig/xdpchain.pc; do
  [ -e "$tmp/prefix/$f" ] || { echo "install: no $f under PREFIX" >&2; exit 1; }
done
ls "$tmp"/prefix/lib/python3.*/*-packages/xdpchain/_xdpchain.abi3.so >/dev/null
[ -z "$(find "$tmp/prefix" -name '*.service' -o -name '*.rules' -o -name chains.toml)" ] ||
  { echo "install: system files without SYSTEM=1" >&2; exit 1; }
make -s install-cli PREFIX=/usr DESTDIR="$tmp/stage" PROFILE=debug SYSTEM=1 >/dev/null
for f in usr/bin/xdpchain etc/xdpchain/chains.toml; do
  [ -e "$tmp/stage/$f" ] || { echo "install: SYSTEM=1 did not stage $f" >&2; exit 1; }
done
[ -n "$(find "$tmp/stage" -name xdpchain.service)" ] && [ -n "$(find "$tmp/stage" -name 99-xdpchain.rules)" ] ||
  { echo "install: SYSTEM=1 staged no unit or udev rule" >&2; exit 1; }
echo "install: passed"
