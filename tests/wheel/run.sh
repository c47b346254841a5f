#!/usr/bin/env bash
# The wheel as users install it: `make wheel`, then into a fresh virtual
# environment of the system's Python, on a PATH without cargo or rustc and
# without a network index (so nothing can be built from source), where the
# example program runs a chain on a veth.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
tests/wheel/build.sh >target/wheel-build.log 2>&1 || { tail -40 target/wheel-build.log; exit 1; }
wheel=$(ls "$repo"/target/wheels/xdpchain-*.whl)
sdist=$(ls "$repo"/target/wheels/xdpchain-*.tar.gz)
listing=$(tar -tzf "$sdist")
for f in pyproject.toml Cargo.toml Cargo.lock xdpchain-obj/src/lib.rs xdpchain-obj/bpf/testdata/component.bpf.c \
         libxdpchain/src/lib.rs bindings/python/src/lib.rs; do
  grep -qx "xdpchain-[0-9.]*/$f" <<<"$listing" || { echo "wheel: the sdist lacks $f" >&2; exit 1; }
done

tag=$$
work=$(mktemp -d)
ns=xdpc-whl$tag
trap 'ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"' EXIT
bare() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work" "$@"; }
if bare sh -c 'command -v cargo || command -v rustc'; then
  echo "wheel: the bare environment still has a Rust toolchain" >&2; exit 1
fi
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || apt-get install -y -qq python3-venv >/dev/null
bare /usr/bin/python3 -m venv "$work/venv"
bare "$work/venv/bin/pip" install -q --disable-pip-version-check --no-index --only-binary :all: "$wheel"

objs=$repo/target/test-bpf
tests/bpf/build.sh "$objs" counter
ip netns add "$ns"
ip -n "$ns" link add xwhl$tag type veth peer name xwhl${tag}p
ip -n "$ns" link set xwhl$tag up
ip -n "$ns" link set xwhl${tag}p up
# nsenter, not `ip netns exec`, which remounts /sys and hides bpffs.
out=$(bare nsenter --net=/run/netns/"$ns" "$work/venv/bin/python" examples/python/chain_counters.py \
        xwhl$tag "$objs/counter.o" --watch 0)
echo "$out"
grep -q "^1 programs on xwhl$tag" <<<"$out" && grep -q "xdp_count .* prio 10" <<<"$out" ||
  { echo "wheel: the example did not run its chain" >&2; exit 1; }
# The example took its program out on the way out.
if nsenter --net=/run/netns/"$ns" ip link show xwhl$tag | grep -q xdp; then
  echo "wheel: the example left its chain attached" >&2; exit 1
fi
echo "wheel: $(basename "$wheel") installs without cargo and runs the example; sdist $(basename "$sdist")"
