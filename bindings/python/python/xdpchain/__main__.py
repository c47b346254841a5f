"""python -m xdpchain [-n NETNS] status [IFACE] [--json]: what `xdpchain
status` prints."""

import argparse
import sys

from . import status_report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xdpchain")
    parser.add_argument("-n", "--netns", help="in this network namespace, as ip -n")
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="the chains attached, and their counters")
    status.add_argument("iface", nargs="?", help="one interface (default: all)")
    status.add_argument("--json", action="store_true", help="as JSON")
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(status_report(args.iface, args.json, netns=args.netns))
    except OSError as e:
        print(f"xdpchain: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
