#!/usr/bin/env bash
# Two C loaders (the example, installed by tests/c/install.sh) and the
# command, from separate processes, each add one program to one interface:
# one after another, then all at once. All stay, with their owners, in a
# chain of the kind asked for; another owner's program goes only by force;
# the chain leaves with the last one. Runs on the host and in the guest.
#
#   tests/c/shared.sh static|dynamic|counting
#
# dynamic: with their defaults, whichever comes first makes a chain in
# libxdp's layout, and the others join its dispatcher. counting: all ask
# for counters, so the chain is dynamic in our layout.
set -euo pipefail
kind=$1
repo=$(cd "$(dirname "$0")/../.." && pwd)
prefix=$repo/target/c-prefix
objs=$repo/target/test-bpf
cli=$repo/target/debug/xdpchain
tag=$$
ns_a=xdpc-sa$tag ns_b=xdpc-sb$tag ifc=xsb$tag
trap 'ip netns del "$ns_a" 2>/dev/null || true; ip netns del "$ns_b" 2>/dev/null || true' EXIT
ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add xsa$tag netns "$ns_a" type veth peer name $ifc netns "$ns_b"
ip -n "$ns_b" link set $ifc addrgenmode none up
ip -n "$ns_a" link set xsa$tag addrgenmode none up

case $kind in
  static) mode=static want_layout=xdpchain cli_opts=(--mode static) load_opts=() ;;
  dynamic) mode=dynamic want_layout="libxdp v" cli_opts=(--mode dynamic) load_opts=() ;;
  counting) mode=dynamic want_layout=xdpchain cli_opts=(--mode dynamic --counters) load_opts=(-c) ;;
  *) echo "usage: $0 static|dynamic|counting" >&2; exit 2 ;;
esac
load() { LD_LIBRARY_PATH=$prefix/lib "$prefix/bin/xdpchain-load" -k -m $mode "${load_opts[@]}" -n "$ns_b" "$@" >/dev/null; }
ops() { "$cli" -n "$ns_b" add $ifc "$objs/verdict.o" --owner ops "${cli_opts[@]}" >/dev/null; }
json() { "$cli" -n "$ns_b" status $ifc --json; }
field() { grep -o "\"$1\":\"[^\"]*\"" | cut -d'"' -f4 | sort | tr '\n' ' '; }

ok=1
fail() { echo "c-shared ($kind): $*"; ok=0; }
for round in sequential concurrent; do
  if [ $round = sequential ]; then
    ops && load -o fw $ifc "$objs/filter.o:xdpfilt_udp" && load -o probe $ifc "$objs/counter.o" ||
      fail "$round: an add failed"
  else
    pids=()
    ops & pids+=($!)
    load -o fw $ifc "$objs/filter.o:xdpfilt_udp" & pids+=($!)
    load -o probe $ifc "$objs/counter.o" & pids+=($!)
    for p in "${pids[@]}"; do wait "$p" || fail "$round: an add failed"; done
  fi
  st=$(json)
  [ "$(field owner <<<"$st")" = "fw ops probe " ] || fail "$round: owners $(field owner <<<"$st")"
  [ "$(field mode <<<"$st")" = "$mode " ] || fail "$round: mode $(field mode <<<"$st")"
  [[ "$(field layout <<<"$st")" == "$want_layout"* ]] || fail "$round: layout $(field layout <<<"$st")"
  ! "$cli" -n "$ns_b" remove $ifc xdpfilt_udp 2>/dev/null || fail "$round: removed fw's without force"
  "$cli" -n "$ns_b" detach $ifc --force || fail "$round: detach --force failed"
  ! ip -n "$ns_b" link show $ifc | grep -q prog/xdp || fail "$round: still attached"
done
[ $ok = 1 ] && echo "c-shared ($kind): passed"
