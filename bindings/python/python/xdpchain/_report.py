"""What ``xdpchain status`` prints, made from :func:`xdpchain.status`'s
objects: a table per chain, or one JSON array in the command's fields."""

import json as _json
from typing import Optional

from ._xdpchain import status

VERDICTS = ("aborted", "drop", "pass", "tx", "redirect")
_ROW = "  {:>3} {:>4} {:<24} {:<24} {:>8} {:<22} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}"


def _continue_on(component):
    return [v for v in VERDICTS if v in component.continue_on]


def _table(chain):
    iface = f"{chain.interface} (ifindex {chain.ifindex})" if chain.interface else "-"
    lines = [
        f"{iface}: chain prog id {chain.program_id}, {chain.mode or '-'} mode, "
        f"{chain.kind}, {chain.layout} layout, {len(chain.components)} components",
        *([f"  counters off: {chain.counters_off}"] if chain.counters_off else []),
        _ROW.format("id", "slot", "name", "owner", "priority", "continue on", "packets",
                    *VERDICTS, "other"),
    ]
    for c in chain.components:
        k = c.counters
        counts = ([sum(k.values())] + [k[v] for v in VERDICTS] + [k["other"]]
                  if k is not None else ["-"] * 7)
        owner = f"{c.owner}[{c.pid}]" if c.owner is not None else "-"
        lines.append(_ROW.format(c.id, c.slot, c.name, owner, c.priority,
                                 ",".join(_continue_on(c)), *counts))
    return "".join(line + "\n" for line in lines)


def _as_dict(chain):
    return {
        "interface": chain.interface,
        "ifindex": chain.ifindex,
        "mode": chain.mode,
        "kind": chain.kind,
        "layout": chain.layout,
        "counters_off": chain.counters_off,
        "program_id": chain.program_id,
        "components": [
            {
                "id": c.id,
                "slot": c.slot,
                "name": c.name,
                "owner": c.owner,
                "owner_pid": c.pid,
                "priority": c.priority,
                "continue_on": _continue_on(c),
                "inlined": c.inlined,
                "counters": None if c.counters is None else {
                    "packets": sum(c.counters.values()),
                    **{v: c.counters[v] for v in VERDICTS},
                    "other": c.counters["other"],
                    "run_time_ns": c.run_time_ns,
                    "run_cnt": c.run_cnt,
                },
                "program_id": c.program_id,
            }
            for c in chain.components
        ],
    }


def status_report(ifname: Optional[str] = None, json: bool = False, *,
                  netns: Optional[str] = None) -> str:
    """What ``xdpchain status [IFACE] [--json]`` prints."""
    chains = status(ifname, netns=netns)
    if json:
        return _json.dumps([_as_dict(c) for c in chains], separators=(",", ":"),
                           ensure_ascii=False) + "\n"
    if not chains:
        return "no chains attached\n"
    return "".join(_table(c) for c in chains)
