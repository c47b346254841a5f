#!/usr/bin/env bash
# The C library as its users get it: installed (make install) into a
# temporary prefix, found through pkg-config, used by C programs built with
# -Wall -Wextra -Werror. Runs tests/c/api.c on this kernel, plainly, linked
# statically, and under AddressSanitizer with leak checking; builds and runs
# the example; checks the soname, the exported symbols against
# debian/libxdpchain0.symbols, and that make uninstall removes what make install
# put; then two loaders built from the example share an interface with the
# command (tests/c/shared.sh). Needs the test objects and the command that
# `cargo test` builds. Leaves the installed library and the example loader
# (tests/c/install.sh) in target/c-prefix for the Python tests.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
tmp=$(mktemp -d /tmp/xdpchain-c.XXXXXX)
tag=$$
ns_a=xdpc-ca$tag ns_b=xdpc-cb$tag
cleanup() {
  # A pinger left by a failure.
  kill $(jobs -p) 2>/dev/null || true
  ip netns del "$ns_a" 2>/dev/null || true
  ip netns del "$ns_b" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

objs=$repo/target/test-bpf
for o in counter filter verdict bad configured oldsec gplonly proprietary; do
  [ -e "$objs/$o.o" ] || { echo "c: $objs/$o.o missing (run cargo test first)" >&2; exit 1; }
done

# Installed under a prefix, and staged with DESTDIR then uninstalled.
tests/c/install.sh
prefix=$repo/target/c-prefix
make -s install PREFIX=/usr DESTDIR="$tmp/stage" PROFILE=debug
staged=$(cd "$tmp/stage" && find . ! -type d | sort | tr '\n' ' ')
want="./usr/include/xdpchain.h ./usr/lib/libxdpchain.a ./usr/lib/libxdpchain.so ./usr/lib/libxdpchain.so.0 ./usr/lib/libxdpchain.so.0.1.0 ./usr/lib/pkgconfig/xdpchain.pc "
[ "$staged" = "$want" ] || { echo "c: make install put: $staged; want: $want" >&2; exit 1; }
grep -qx 'libdir=/usr/lib' "$tmp/stage/usr/lib/pkgconfig/xdpchain.pc"
make -s uninstall PREFIX=/usr DESTDIR="$tmp/stage"
left=$(cd "$tmp/stage" && find . ! -type d)
[ -z "$left" ] || { echo "c: make uninstall left: $left" >&2; exit 1; }

lib=$prefix/lib/libxdpchain.so
readelf -d "$lib" | grep -q 'SONAME.*\[libxdpchain\.so\.0\]' || { echo "c: wrong soname" >&2; exit 1; }
if ! diff -u <(sed -n 's/^ \([^@]*\)@Base .*/\1/p' debian/libxdpchain0.symbols | LC_ALL=C sort) \
             <(nm -D --defined-only "$lib" | awk '{print $3}' | LC_ALL=C sort); then
  echo "c: the exported symbols differ from debian/libxdpchain0.symbols (an ABI change must be deliberate)" >&2
  exit 1
fi

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cflags="-O1 -g -Wall -Wextra -Werror"
cc $cflags -o "$tmp/api" tests/c/api.c $(pkg-config --cflags --libs xdpchain)
cc $cflags -fsanitize=address -fno-omit-frame-pointer -o "$tmp/api-asan" tests/c/api.c \
  $(pkg-config --cflags --libs xdpchain)
cc $cflags -static-libgcc -o "$tmp/api-static" tests/c/api.c $(pkg-config --cflags xdpchain) \
  "$prefix/lib/libxdpchain.a" $(pkg-config --static --libs xdpchain | sed 's/-lxdpchain//')
! ldd "$tmp/api-static" | grep -q libxdpchain || { echo "c: the static build links the shared library" >&2; exit 1; }

ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add xca$tag netns "$ns_a" type veth peer name xcb$tag netns "$ns_b"
# No IPv6 link-local addresses: their neighbour discovery would add packets
# to the counters.
ip -n "$ns_b" link set xcb$tag addrgenmode none up
ip -n "$ns_a" link set xca$tag addrgenmode none up
inb() { nsenter --net=/run/netns/"$ns_b" "$@"; }

fail=0
for t in api api-static api-asan; do
  if ASAN_OPTIONS=detect_leaks=1 LD_LIBRARY_PATH=$prefix/lib \
       inb "$tmp/$t" "$objs" xcb$tag "$tmp" >"$tmp/$t.out" 2>&1; then
    echo "c: $t: $(tail -1 "$tmp/$t.out")"
  else
    echo "c: $t FAILED:"; cat "$tmp/$t.out"; fail=1
  fi
done
grep -q "ERROR: AddressSanitizer\|LeakSanitizer" "$tmp/api-asan.out" && { echo "c: ASan reported errors" >&2; fail=1; }

out=$(inb env LD_LIBRARY_PATH=$prefix/lib "$prefix/bin/xdpchain-load" xcb$tag "$objs/counter.o" "$objs/filter.o:xdpfilt_udp" </dev/null)
if grep -q "2 components" <<<"$out" && grep -q "xdpfilt_udp" <<<"$out" &&
   ! ip -n "$ns_b" link show xcb$tag | grep -q prog/xdp; then
  echo "c: example passed"
else
  echo "c: example FAILED: $out"; fail=1
fi
# ...and with -t, the components' packets and time per packet, under pings.
ip -n "$ns_a" addr add 198.18.9.1/24 dev xca$tag
ip -n "$ns_b" addr add 198.18.9.2/24 dev xcb$tag
# Pings until the loader is done, however long a busy machine takes it to
# start.
ip netns exec "$ns_a" ping -q -i 0.05 198.18.9.2 >/dev/null 2>&1 &
pinger=$!
out=$(inb env LD_LIBRARY_PATH=$prefix/lib "$prefix/bin/xdpchain-load" -c -t 1 xcb$tag "$objs/counter.o" "$objs/filter.o:xdpfilt_udp" </dev/null)
kill "$pinger"
wait "$pinger" || true
if [ "$(grep -c 'packets, [0-9.]* ns/packet' <<<"$out")" = 2 ]; then
  echo "c: example timed the components"
else
  echo "c: example FAILED to time: $out"; fail=1
fi
# Two C loaders and the command share the interface (static chains: this
# kernel has no freplace; the guest runs the dynamic and libxdp rounds).
tests/c/shared.sh static || fail=1
[ $fail = 0 ] && echo "c: 6 passed, 0 failed" || exit 1
