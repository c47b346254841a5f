"""Run several unchanged XDP programs on one interface, one after another.

    import xdpchain

    with xdpchain.Chain.open("eth0", owner="firewall") as chain:
        fw = chain.add_program("fw.o", program="xdp_fw", priority=10,
                               continue_on={"pass"})
        for c in chain.components:
            print(c.slot, c.name, c.owner, c.counters)

``Chain.open`` joins the chain that every process shares on the interface:
what ``add_program`` adds runs beside the programs of other owners, and
leaving the ``with`` block takes out only what this object added.
``xdpchain.status()`` lists the chains, each component with its owner;
``xdpchain.stats()`` each component's counts and run time, which grows
while ``with xdpchain.timing("eth0"):`` holds timing on;
``xdpchain.dump("eth0", "xdp_fw")`` iterates over the packets one
component receives (or leaves, ``at="exit"``);
``xdpchain.apply()`` brings them to what a chains file declares, as
``xdpchain apply`` does. Errors are Python's own
exceptions where one fits (PermissionError, FileNotFoundError, ValueError,
LookupError), else :class:`Error` (an OSError with ``errno``);
:class:`VerifierError` carries the verifier's ``log``.
"""

from ._xdpchain import (
    MAX_COMPONENTS,
    __version__,
    Chain,
    ChainStatus,
    Change,
    Component,
    Dump,
    Error,
    ForeignProgram,
    Packet,
    Stats,
    Timing,
    VerifierError,
    apply,
    dump,
    foreign,
    stats,
    status,
    timing,
)
from ._report import status_report

__all__ = [
    "MAX_COMPONENTS",
    "__version__",
    "Chain",
    "ChainStatus",
    "Change",
    "Component",
    "Dump",
    "Error",
    "ForeignProgram",
    "Packet",
    "Stats",
    "Timing",
    "VerifierError",
    "apply",
    "dump",
    "foreign",
    "stats",
    "status",
    "timing",
    "status_report",
]
