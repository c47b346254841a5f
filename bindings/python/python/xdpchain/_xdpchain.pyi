"""Type stubs of the extension module behind :mod:`xdpchain`."""

import os
from types import TracebackType
from typing import Dict, FrozenSet, Iterable, List, Optional, Type, Union

MAX_COMPONENTS: int

Source = Union[str, "os.PathLike[str]", bytes]
"""A BPF object: a path to its file, or its bytes."""

class Error(OSError):
    """A failure of libxdpchain or of the kernel; ``errno`` says which."""

class VerifierError(Error):
    """The kernel refused a program."""

    log: str
    """The verifier's log."""
    component: Optional[str]
    """The refused component, or None for the chain as a whole."""

class Component:
    """One component of a chain, in run order."""

    id: int
    slot: int
    name: str
    priority: int
    continue_on: FrozenSet[str]
    program_id: Optional[int]
    counters: Optional[Dict[str, int]]

class Chain:
    """A chain of XDP programs for one interface (or for a file).

    Usable as a context manager: leaving it detaches what it attached.
    """

    def __init__(
        self,
        ifname: Optional[str] = None,
        *,
        mode: str = "auto",
        counters: bool = True,
        pin_root: Optional[str] = None,
    ) -> None: ...
    @staticmethod
    def open(
        ifname: Optional[str] = None,
        *,
        mode: str = "auto",
        counters: bool = True,
        pin_root: Optional[str] = None,
    ) -> "Chain":
        """A chain for ``ifname``; ``mode`` is "auto", "static" or "dynamic"."""
    def add_program(
        self,
        obj: Source,
        *,
        program: Optional[str] = None,
        priority: Optional[int] = None,
        continue_on: Optional[Iterable[str]] = None,
    ) -> int:
        """Adds a component and returns its id; a loaded chain is rebuilt
        and swapped in atomically."""
    def remove(self, id: int) -> None:
        """Removes the component ``id``."""
    def replace_slot(
        self,
        slot: int,
        obj: Source,
        *,
        program: Optional[str] = None,
        continue_on: Optional[Iterable[str]] = None,
    ) -> None:
        """Puts another program in run-order position ``slot``, atomically."""
    def attach(self, *, skb: bool = False, force: bool = False) -> None:
        """Loads the chain and attaches it to its interface."""
    def link_static(
        self,
        path: Optional[Union[str, "os.PathLike[str]"]] = None,
        *,
        skb: bool = False,
        force: bool = False,
    ) -> None:
        """Links the chain into one program: written to ``path``, or loaded
        and attached."""
    def detach(self) -> None:
        """Detaches the chain from its interface."""
    @property
    def attached(self) -> bool: ...
    @property
    def ifname(self) -> Optional[str]: ...
    @property
    def mode(self) -> str:
        """"static" or "dynamic" once loaded; before, the mode asked for."""
    @property
    def components(self) -> List[Component]:
        """The components in run order."""
    def map_fd(self, id: int, name: str) -> int:
        """The fd of a component's map, by its name in the component's object."""
    def test_run(self, packet: bytes) -> int:
        """Runs the loaded chain once on ``packet``; returns the verdict."""
    def close(self) -> None:
        """Detaches the chain if this object attached it."""
    def __enter__(self) -> "Chain": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

def status_report(ifname: Optional[str] = None, json: bool = False) -> str:
    """What ``xdpchain status [IFACE] [--json]`` prints."""
