#!/usr/bin/env python3
"""Chains XDP programs on an interface and prints each one's counters.

    python3 chain_counters.py IFACE FILE[:PROG]... [--watch SECONDS]

The chain stays attached while the counters are watched (10 s by default),
and is detached on the way out, also on Ctrl-C.
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

    with xdpchain.Chain.open(args.iface) as chain:
        for spec in args.objects:
            path, _, prog = spec.partition(":")
            chain.add_program(path, program=prog or None)
        chain.attach()
        print(f"{len(chain.components)} programs on {args.iface}, {chain.mode} chain")
        deadline = time.monotonic() + args.watch
        while True:
            for c in chain.components:
                counts = " ".join(f"{k}={v}" for k, v in c.counters.items())
                print(f"  {c.slot} {c.name:<20} prio {c.priority:<4} {counts}")
            if time.monotonic() >= deadline:
                break
            time.sleep(1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
