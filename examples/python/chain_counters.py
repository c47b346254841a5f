#!/usr/bin/env python3
"""Adds XDP programs to the chain of an interface and prints the counters of
every program in it, ours and those of other owners, with the time each
takes per packet (timed while watched).

    python3 chain_counters.py IFACE FILE[:PROG]... [--watch SECONDS]

Our programs stay while the counters are watched (10 s by default), and go
on the way out, also on Ctrl-C; those of other owners stay.
"""

import argparse
import time

import xdpchain


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("iface")
    parser.add_argument("objects", nargs="+", metavar="FILE[:PROG]")
    parser.add_argument("--watch", type=float, default=10, metavar="SECONDS")
    args = parser.parse_args()

    with xdpchain.Chain.open(args.iface, counters=True) as chain:
        for spec in args.objects:
            path, _, prog = spec.partition(":")
            chain.add_program(path, program=prog or None)
        chain.attach()
        print(f"{len(chain.components)} programs on {args.iface}, {chain.mode} chain")
        deadline = time.monotonic() + args.watch
        with xdpchain.timing(args.iface):
            while True:
                for c in chain.components:
                    counts = " ".join(f"{k}={v}" for k, v in (c.counters or {}).items())
                    if c.run_cnt:
                        counts += f" ns/packet={c.run_time_ns / c.run_cnt:.1f}"
                    print(f"  {c.slot} {c.name:<20} prio {c.priority:<4} {c.owner}[{c.pid}] {counts}")
                if time.monotonic() >= deadline:
                    break
                time.sleep(1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
