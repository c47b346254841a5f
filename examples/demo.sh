#!/usr/bin/env bash
# The main job, end to end: two namespaces joined by a veth pair, three
# example programs chained on one end, real traffic across, the counters.
# Everything it creates is removed on exit, also when a step fails.
set -euo pipefail
XDPCHAIN=${1:-target/release/xdpchain}
XDPCHAIN=$(realpath "$XDPCHAIN")
cd "$(dirname "$0")/.."
tag=$$
A=xdpdemo-a$tag B=xdpdemo-b$tag DA=xda$tag DB=xdb$tag
work=$(mktemp -d)
cleanup() { ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

inc=$(ls -d target/release/build/libbpf-sys-*/out/include | head -1)
for p in pktcount udpblock ttlguard; do
  clang -O2 -g -target bpf -I"$inc" -I/usr/include/"$(uname -m)"-linux-gnu \
    -c examples/bpf/$p.bpf.c -o "$work/$p.o"
done

ip netns add "$A"; ip netns add "$B"
ip link add "$DA" netns "$A" type veth peer name "$DB" netns "$B"
ip -n "$A" addr add 198.18.0.1/24 dev "$DA"; ip -n "$B" addr add 198.18.0.2/24 dev "$DB"
ip -n "$A" link set "$DA" up; ip -n "$B" link set "$DB" up
# nsenter, not `ip netns exec`: the latter remounts /sys and hides bpffs,
# where xdpchain records its chains.

echo "== chaining pktcount, udpblock and ttlguard on $DB"
nsenter --net=/run/netns/"$B" "$XDPCHAIN" attach "$DB" "$work/pktcount.o" "$work/udpblock.o" "$work/ttlguard.o" >/dev/null

echo "== traffic: 5 pings, 3 UDP datagrams to port 7777 (blocked), 2 to 5000, 2 pings with TTL 1"
ip netns exec "$A" ping -q -c 5 -i 0.1 198.18.0.2 | tail -2
for p in 7777 7777 7777 5000 5000; do
  ip netns exec "$A" bash -c "echo hello > /dev/udp/198.18.0.2/$p"
done
ip netns exec "$A" ping -q -c 2 -i 0.1 -W 1 -t 1 198.18.0.2 | tail -2 || true

echo "== per-component counters"
nsenter --net=/run/netns/"$B" "$XDPCHAIN" status "$DB"
nsenter --net=/run/netns/"$B" "$XDPCHAIN" detach "$DB"
echo "== detached; cleaning up"
