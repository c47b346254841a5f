"""What ``xdpchain status`` prints, made from :func:`xdpchain.status`'s
objects: a table per chain, or one JSON array in the command's fields."""

import errno
import json as _json
import os
from typing import Optional

from ._xdpchain import Error, foreign, status

VERDICTS = ("aborted", "drop", "pass", "tx", "redirect")
_ROW = "  {:>3} {:>4} {:>8} {:<24} {:<24} {:>8} {:<22} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}  {}"


def _continue_on(component):
    return [v for v in VERDICTS if v in component.continue_on]


def _table(chain):
    iface = f"{chain.interface} (ifindex {chain.ifindex})" if chain.interface else "-"
    lines = [
        f"{iface}: chain prog id {chain.program_id}, {chain.mode or '-'} mode, "
        f"{chain.kind}, {chain.layout} layout, {len(chain.components)} components",
        *([f"  counters off: {chain.counters_off}"] if chain.counters_off else []),
        *([f"  static, not dynamic: {chain.not_dynamic}"] if chain.not_dynamic else []),
        *(["  device-bound: a component reads RX metadata"] if chain.device_bound else []),
        _ROW.format("id", "slot", "prog id", "name", "owner", "priority", "continue on", "packets",
                    *VERDICTS, "other", "function"),
    ]
    for c in chain.components:
        k = c.counters
        counts = ([sum(k.values())] + [k[v] for v in VERDICTS] + [k["other"]]
                  if k is not None else ["-"] * 7)
        owner = "-"
        if c.owner is not None:
            owner = f"{c.owner}[{c.pid}]"
            if not _running(c.pid):
                owner += " exited"
        lines.append(_ROW.format(c.id, c.slot,
                                 "-" if c.program_id is None else c.program_id, c.name, owner, c.priority,
                                 ",".join(_continue_on(c)), *counts, c.function or "-"))
    return "".join(line + "\n" for line in lines)


def _running(pid):
    """Whether the owner's process still runs, as the command tells."""
    return os.path.exists(f"/proc/{pid}")


def _foreign_line(p):
    return (f"{p.interface} (ifindex {p.ifindex}): program {p.name} (prog id "
            f"{p.program_id}) of another loader, {p.mode} mode; no chain\n")


def _foreign_dict(p):
    return {
        "interface": p.interface,
        "ifindex": p.ifindex,
        "attach_mode": p.mode,
        "layout": "foreign",
        "name": p.name,
        "program_id": p.program_id,
        "components": [],
    }


def _as_dict(chain):
    return {
        "interface": chain.interface,
        "ifindex": chain.ifindex,
        "attach_mode": chain.mode,
        "mode": chain.kind,
        "layout": chain.layout,
        "counters_off": chain.counters_off,
        "not_dynamic": chain.not_dynamic,
        "device_bound": chain.device_bound,
        "program_id": chain.program_id,
        "components": [
            {
                "id": c.id,
                "slot": c.slot,
                "name": c.name,
                "owner": c.owner,
                "owner_pid": c.pid,
                "owner_running": None if c.pid is None else _running(c.pid),
                "priority": c.priority,
                "continue_on": _continue_on(c),
                "inlined": c.inlined,
                "function": c.function,
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
    try:
        chains = status(ifname, netns=netns)
        others = foreign(netns=netns) if ifname is None else []
    except Error as e:
        # No chain on ifname: what runs there instead, if anything.
        others = foreign(ifname, netns=netns) if e.errno == errno.ENOENT else []
        if not others:
            raise
        chains = []
    if json:
        return _json.dumps([_as_dict(c) for c in chains] + [_foreign_dict(p) for p in others],
                           separators=(",", ":"), ensure_ascii=False) + "\n"
    if not chains and not others:
        return "no chains attached\n"
    return "".join(_table(c) for c in chains) + "".join(_foreign_line(p) for p in others)
