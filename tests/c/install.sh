#!/usr/bin/env bash
# Installs the C library (debug build) into target/c-prefix as `make
# install` does for users, and builds the example loader against it, found
# through pkg-config, as target/c-prefix/bin/xdpchain-load.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
prefix=$repo/target/c-prefix
rm -rf "$prefix"
make -s install PREFIX="$prefix" PROFILE=debug
mkdir -p "$prefix/bin"
PKG_CONFIG_PATH=$prefix/lib/pkgconfig make -s -C examples/c OUT="$prefix/bin/xdpchain-load"
