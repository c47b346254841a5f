#!/usr/bin/env bash
# The Debian packages as users get them: `make deb`, lintian (no errors),
# then installed on this machine with apt: a C program built against them
# through pkg-config (no rpath) loads a chain, the command from the package
# shows it, the system's Python imports the module and links a chain into
# a file; the units pass systemd-analyze. Purged, they leave no file
# behind. tests/vm/boot.sh boots a guest with the command's package.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
pkgs=(libxdpchain0 libxdpchain-dev xdpchain python3-xdpchain)
export DEBIAN_FRONTEND=noninteractive

make -s deb >target/deb-build.log 2>&1 || { tail -40 target/deb-build.log; exit 1; }
version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
debs=()
for p in "${pkgs[@]}"; do debs+=("$repo/target/deb/${p}_${version}_${arch}.deb"); done
# Errors fail (lintian's default); warnings are shown.
lintian --fail-on error target/deb/xdpchain.changes 2>&1 | grep -v 'running with root privileges' || true
lintian --fail-on error target/deb/xdpchain.changes >/dev/null 2>&1 || { echo "deb: lintian finds errors" >&2; exit 1; }

tag=$$
work=$(mktemp -d)
ns=xdpc-deb$tag
cleanup() {
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
  apt-get purge -y -qq "${pkgs[@]}" >/dev/null 2>&1 || true
}
trap cleanup EXIT
# A previous run's packages, if one stopped half-way.
apt-get purge -y -qq "${pkgs[@]}" >/dev/null 2>&1 || true
files=$(for d in "${debs[@]}"; do dpkg-deb -c "$d"; done | awk '$1 !~ /^d/ {print substr($6, 2)}' | sort -u)
for f in $files; do
  if [ -e "$f" ] || [ -L "$f" ]; then echo "deb: $f exists before the packages are installed" >&2; exit 1; fi
done

apt-get install -y -qq "${debs[@]}" >/dev/null
for p in "${pkgs[@]}"; do
  [ "$(dpkg-query -W -f '${db:Status-Status}' "$p")" = installed ] || { echo "deb: $p not installed" >&2; exit 1; }
done

# The C library through pkg-config, at its system path, without rpath.
cflags=$(pkg-config --cflags --libs xdpchain)
cc -O2 -Wall -Werror -o "$work/xdpchain-load" examples/c/xdpchain-load.c $cflags
if readelf -d "$work/xdpchain-load" | grep -qE 'RPATH|RUNPATH'; then echo "deb: the loader has an rpath" >&2; exit 1; fi
ldd "$work/xdpchain-load" | grep -qE "libxdpchain.so.0 => (/usr)?/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/libxdpchain.so.0 " ||
  { ldd "$work/xdpchain-load"; echo "deb: not linked with the packaged library" >&2; exit 1; }
# Static linking, as the .pc file says.
cc -O2 -o "$work/xdpchain-load-static" examples/c/xdpchain-load.c \
  $(pkg-config --cflags xdpchain) /usr/lib/*/libxdpchain.a $(pkg-config --static --libs-only-l xdpchain | sed 's/-lxdpchain//')

/usr/bin/xdpchain --version | grep -qx "xdpchain $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
dpkg -L xdpchain | grep -q "/man1/xdpchain.1.gz$"

# The loader from the package's library attaches; the packaged command
# sees the chain, with the loader as its owner.
ip netns add "$ns"
ip -n "$ns" link add xdeb$tag type veth peer name xdeb${tag}p
ip -n "$ns" link set xdeb$tag up
ip -n "$ns" link set xdeb${tag}p up
objs=$repo/target/test-bpf
tests/bpf/build.sh "$objs" counter
for loader in xdpchain-load xdpchain-load-static; do
  out=$(echo | "$work/$loader" -o deb-test -n "$ns" -m static xdeb$tag "$objs/counter.o")
  grep -q "xdp_count .*owner deb-test" <<<"$out" || { echo "$out"; echo "deb: $loader made no chain" >&2; exit 1; }
done
echo | "$work/xdpchain-load" -k -o deb-test -n "$ns" -m static xdeb$tag "$objs/counter.o" >/dev/null
/usr/bin/xdpchain -n "$ns" status xdeb$tag | grep -q "xdp_count .*deb-test" ||
  { echo "deb: the packaged command does not see the chain" >&2; exit 1; }
/usr/bin/xdpchain -n "$ns" detach xdeb$tag --force

# The system's Python, with the packaged module: a chain of its own,
# linked into a file.
/usr/bin/python3 -c "
import importlib.metadata, xdpchain
assert xdpchain.__file__.startswith('/usr/lib/python3/dist-packages/'), xdpchain.__file__
assert importlib.metadata.version('xdpchain') == '$version', importlib.metadata.version('xdpchain')
chain = xdpchain.Chain()
chain.add_program('$objs/counter.o')
chain.link_static('$work/linked.o')
"
[ -s "$work/linked.o" ] || { echo "deb: the Python module linked nothing" >&2; exit 1; }

# The units as systemd reads them.
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)
complaints=$(systemd-analyze verify "$unitdir/xdpchain.service" "$unitdir/xdpchain@.service" 2>&1) ||
  { echo "$complaints"; echo "deb: systemd-analyze verify fails" >&2; exit 1; }
[ -z "$complaints" ] || { echo "$complaints"; echo "deb: systemd-analyze verify complains" >&2; exit 1; }

apt-get purge -y -qq "${pkgs[@]}" >/dev/null
left=()
for f in $files /etc/xdpchain; do
  if [ -e "$f" ] || [ -L "$f" ]; then left+=("$f"); fi
done
left+=($(find /etc/systemd /var/lib/systemd/deb-systemd-helper-enabled /usr/lib/python3/dist-packages \
           -name '*xdpchain*' 2>/dev/null))
[ ${#left[@]} = 0 ] || { echo "deb: left behind: ${left[*]}" >&2; exit 1; }
echo "deb: ${pkgs[*]} built, lintian-clean, installed, used, purged without a trace"
