"""Type stubs of the extension module behind :mod:`xdpchain`."""

import os
from types import TracebackType
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple, Type, Union

MAX_COMPONENTS: int
__version__: str
"""The version of libxdpchain this module was built from."""

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
    """Stable while the component stays in the chain, never given to another
    one of it (a program id in libxdp's layout)."""
    slot: int
    name: str
    priority: int
    continue_on: FrozenSet[str]
    program_id: Optional[int]
    counters: Optional[Dict[str, int]]
    owner: Optional[str]
    """Who added it; None where no record says."""
    pid: Optional[int]
    """The process that added it (it may have exited since)."""
    own: bool
    """Whether the Chain object asked added it."""
    inlined: Optional[bool]
    """Whether a static chain runs it without a call (its code copied into
    a root generated for the chain); None for other chains."""
    function: Optional[str]
    """The function that runs it in program ``program_id``, which fentry
    and fexit programs attach to; None where it is inlined or not known."""
    run_time_ns: Optional[int]
    """Nanoseconds it took over the packets timed (see :func:`timing`);
    None with counting off."""
    run_cnt: Optional[int]
    """Packets timed."""

class ChainStatus:
    """The chain on one interface."""

    interface: Optional[str]
    ifindex: Optional[int]
    mode: Optional[str]
    kind: str
    layout: str
    counters_off: Optional[str]
    """Why the components show no counters, where they show none."""
    not_dynamic: Optional[str]
    """Why the chain is static where auto would have made it dynamic: the
    kernel refused a component as an extension program."""
    device_bound: bool
    """Loaded bound to its interface: a component reads RX metadata."""
    program_id: int
    components: List[Component]

class Chain:
    """The chain of an interface as one owner opened it (shared with every
    other process there), or without an interface a chain of this object's
    own to link into a file.

    Usable as a context manager: leaving it takes out what it added.
    """

    def __init__(
        self,
        ifname: Optional[str] = None,
        *,
        mode: Optional[str] = None,
        counters: Optional[bool] = None,
        pin_root: Optional[str] = None,
        owner: Optional[str] = None,
        netns: Optional[str] = None,
        skb: bool = False,
        force: bool = False,
        device_bound: bool = False,
    ) -> None: ...
    @staticmethod
    def open(
        ifname: Optional[str] = None,
        *,
        mode: Optional[str] = None,
        counters: Optional[bool] = None,
        pin_root: Optional[str] = None,
        owner: Optional[str] = None,
        netns: Optional[str] = None,
        skb: bool = False,
        force: bool = False,
        device_bound: bool = False,
    ) -> "Chain":
        """The chain of ``ifname`` (in ``netns``), as ``owner`` (default: the
        program's name); ``mode``, ``counters`` and ``skb`` apply to a chain
        this object creates (adding to a running chain that cannot follow
        them raises ValueError); ``force`` lets it change other owners'
        components. ``counters``: None counts where the kernel lets it: in
        xdpchain's layout, and in libxdp's (a dynamic chain of at most ten
        components, which xdp-loader and every libxdp user can join) the
        programs added through libxdpchain; True counts in xdpchain's
        layout, whose chains also time and dump; False leaves counting
        out."""
    def add_program(
        self,
        obj: Source,
        *,
        program: Optional[str] = None,
        priority: Optional[int] = None,
        continue_on: Optional[Iterable[str]] = None,
        rodata: Optional[Mapping[str, Union[int, bytes]]] = None,
        map_sizes: Optional[Mapping[str, int]] = None,
        traceable: bool = False,
    ) -> int:
        """Adds a component and returns its id; on an interface it runs
        once this returns (the chain is rebuilt and swapped atomically).
        ``rodata`` sets global variables and ``map_sizes`` map sizes before
        loading, as the program's own loader would. ``traceable`` keeps it
        a function of its own in a static chain, which fentry/fexit tools
        attach to by the name ``function`` shows in its status.
        ``last_changes`` then says what it did, with what force dropped."""
    def remove(self, id: int) -> List["Change"]:
        """Removes the component ``id`` (another owner's only with force);
        returns what changed."""
    @property
    def last_changes(self) -> List["Change"]:
        """What the last change through this object did to the interface."""
    def replace_slot(
        self,
        slot: int,
        obj: Source,
        *,
        program: Optional[str] = None,
        continue_on: Optional[Iterable[str]] = None,
        rodata: Optional[Mapping[str, Union[int, bytes]]] = None,
        map_sizes: Optional[Mapping[str, int]] = None,
    ) -> List["Change"]:
        """Puts another program in run-order position ``slot``, atomically;
        returns what changed."""
    def attach(self, *, skb: bool = False) -> None:
        """Checks that the interface's chain runs, in that attach mode."""
    def link_static(
        self,
        path: Optional[Union[str, "os.PathLike[str]"]] = None,
        *,
        skb: bool = False,
    ) -> None:
        """Without an interface: writes the linked chain to ``path``. On an
        interface: checks that its chain runs, linked."""
    def detach(self) -> List["Change"]:
        """Takes out what this object added; returns what changed."""
    @property
    def attached(self) -> bool: ...
    @property
    def ifname(self) -> Optional[str]: ...
    @property
    def owner(self) -> Optional[str]: ...
    @property
    def mode(self) -> str:
        """"static" or "dynamic" once it runs; before, the mode asked for."""
    @property
    def components(self) -> List[Component]:
        """The components in run order, of every owner."""
    def map_fd(self, id: int, name: str) -> int:
        """The fd of a component's map, by its name in the component's object."""
    def test_run(self, packet: bytes) -> int:
        """Runs the chain once on ``packet``; returns the verdict."""
    def close(self) -> None:
        """Takes out what this object added, if any runs."""
    def __enter__(self) -> "Chain": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

class Stats:
    """One component's statistics."""

    interface: Optional[str]
    ifindex: Optional[int]
    id: int
    name: str
    owner: Optional[str]
    packets: int
    verdicts: Dict[str, int]
    """Packets by verdict ("aborted", "drop", "pass", "tx", "redirect",
    "other")."""
    run_time_ns: int
    """Nanoseconds over the packets timed, while timing was on."""
    run_cnt: int
    """Packets timed."""
    ns_per_packet: Optional[float]
    """run_time_ns / run_cnt; None before any packet was timed."""

def stats(ifname: Optional[str] = None, *, netns: Optional[str] = None) -> List[Stats]:
    """The statistics of every component that counts, in the chains of this
    network namespace (or ``netns``), or of the chain on ``ifname``."""

class Timing:
    """Components timed while it lives; a context manager."""

    def stop(self) -> None:
        """Stops holding timing on; it stops at most 3 s later (idempotent)."""
    def __enter__(self) -> "Timing": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

def timing(ifname: Optional[str] = None, *, netns: Optional[str] = None) -> Timing:
    """Starts timing the chain on ``ifname`` (every chain of this network
    namespace, or of ``netns``, with None): ``with xdpchain.timing("eth0"):``.
    A chain that cannot time (in libxdp's layout, or without counters)
    raises OSError (EOPNOTSUPP)."""

class Packet:
    """One packet a dump took."""

    data: bytes
    """Its first bytes, up to the dump's snap length."""
    len: int
    """The packet's length."""
    verdict: Optional[int]
    """The component's verdict, in a dump at its exit; else None."""
    ktime_ns: int
    """CLOCK_MONOTONIC when it was taken, in nanoseconds."""

class Dump:
    """The packets one component sees: an iterator and a context manager."""

    lost: int
    """Packets the ring had no room for."""
    def __iter__(self) -> "Dump": ...
    def __next__(self) -> Packet: ...
    def close(self) -> None:
        """Ends the dump (idempotent)."""
    def __enter__(self) -> "Dump": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

def dump(
    ifname: str,
    component: Union[str, int],
    *,
    at: str = "entry",
    snaplen: int = 2048,
    count: Optional[int] = None,
    timeout: Optional[float] = None,
    netns: Optional[str] = None,
) -> Dump:
    """Dumps the packets that ``component`` (its id or program name) of the
    chain on ``ifname`` receives (``at="entry"``) or leaves with its verdict
    (``at="exit"``), their first ``snaplen`` bytes (at most 2048); iterating
    stops after ``count`` packets, or ``timeout`` seconds without one. One
    dump at a time per chain; the chain must count (xdpchain's layout)."""

def status(ifname: Optional[str] = None, *, netns: Optional[str] = None) -> List[ChainStatus]:
    """The chains of this network namespace (or ``netns``), or the one on
    ``ifname``, each component with its owner."""

class Change:
    """One program that a change through a Chain added, removed, replaced
    or dropped; ``str()`` gives the line ``xdpchain`` prints for it."""

    action: str
    """"added", "removed" (this owner's), "replaced", or "dropped" (another
    owner's, or another loader's program: only with force)."""
    interface: str
    id: Optional[int]
    """Its component id; None for another loader's program."""
    name: str
    owner: Optional[str]
    program_id: Optional[int]
    """The kernel's id of the program that runs it."""
    replaced_name: Optional[str]
    """For "replaced": what ran in its place."""
    replaced_program_id: Optional[int]

class ForeignProgram:
    """An XDP program of another loader: neither a chain nor libxdp's
    dispatcher."""

    interface: str
    ifindex: int
    mode: str
    """"native" or "skb"."""
    program_id: int
    name: str

def foreign(ifname: Optional[str] = None, *, netns: Optional[str] = None) -> List[ForeignProgram]:
    """The XDP programs of other loaders in this network namespace (or
    ``netns``), or on ``ifname``, which :func:`status` leaves out."""

def apply(
    path: Optional[Union[str, "os.PathLike[str]"]] = None,
    *,
    dry_run: bool = False,
    prune: bool = False,
    interface: Optional[str] = None,
    netns: Optional[str] = None,
) -> List[Tuple[str, Optional[str], Optional[List[Tuple[str, str]]]]]:
    """Brings the chains to what the chains file (or directory) ``path``
    declares (default /etc/xdpchain/chains.toml), as ``xdpchain apply``
    does: one swap per interface, only what differs. Returns, per declared
    interface, (interface, netns, changes), each change (verb, component)
    with verb "keep", "add", "replace", "remove" or "leave"; changes is None
    where the interface does not exist. ``dry_run`` changes nothing;
    ``prune`` also removes what the file does not own; ``interface`` applies
    only that interface's chain (and reads only its objects); ``netns``
    only the chains declared in that network namespace (with
    ``interface``: that interface there; without ``netns``, ``interface``
    names one of this process's namespace). Where interfaces fail, the others are
    applied and the first failure is raised."""
