"""Run several unchanged XDP programs on one interface, one after another.

    import xdpchain

    with xdpchain.Chain.open("eth0") as chain:
        fw = chain.add_program("fw.o", program="xdp_fw", priority=10,
                               continue_on={"pass"})
        chain.add_program("probe.o")
        chain.attach()
        for c in chain.components:
            print(c.slot, c.name, c.counters)

Leaving the ``with`` block detaches the chain. Errors are Python's own
exceptions where one fits (PermissionError, FileNotFoundError, ValueError,
LookupError), else :class:`Error` (an OSError with ``errno``);
:class:`VerifierError` carries the verifier's ``log``.
"""

from ._xdpchain import (
    MAX_COMPONENTS,
    Chain,
    Component,
    Error,
    VerifierError,
    status_report,
)

__all__ = [
    "MAX_COMPONENTS",
    "Chain",
    "Component",
    "Error",
    "VerifierError",
    "status_report",
]
