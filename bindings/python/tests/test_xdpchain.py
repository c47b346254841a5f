"""The Python bindings against the real kernel, in network namespaces these
tests make and remove. Run by tests/python/run.sh, which installs the
package into a fresh virtual environment; XDPCHAIN_TEST_OBJECTS names the
directory of the test BPF objects, XDPCHAIN_CLI the xdpchain command."""

import ctypes
import errno
import logging
import os
import random
import struct
import subprocess
import sys
import threading
import time

import pytest

import xdpchain

OBJECTS = os.environ["XDPCHAIN_TEST_OBJECTS"]
CLI = os.environ["XDPCHAIN_CLI"]

XDP_DROP, XDP_PASS, XDP_TX = 1, 2, 3
CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def setns(fd):
    """os.setns, which Python has only from 3.12 on."""
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


def obj(name):
    return os.path.join(OBJECTS, name + ".o")


def kernel_at_least(major, minor):
    """Tests of what older kernels lack assert the refusal there instead."""
    release = tuple(int(n) for n in os.uname().release.split("-")[0].split(".")[:2])
    return release >= (major, minor)


def udp_packet(port):
    """An Ethernet/IPv4/UDP packet to `port`."""
    eth = b"\0" * 12 + b"\x08\x00"
    ip = bytes([0x45, 0, 0, 50, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2])
    udp = struct.pack("!HHHH", 12345, port, 30, 0)
    return (eth + ip + udp).ljust(64, b"\0")


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


class Namespace:
    """A network namespace holding one end of a veth pair, entered by this
    thread (setns) while the test runs."""

    def __init__(self, tag):
        pid = os.getpid() % 100000
        self.name = f"xdpc-py{tag}{pid}"
        self.peer = f"xdpc-pz{tag}{pid}"
        self.dev = f"xpy{tag}{pid}"

    def __enter__(self):
        self.own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            sh("ip", "netns", "add", self.name)
            sh("ip", "netns", "add", self.peer)
            sh("ip", "link", "add", self.dev, "netns", self.name, "type", "veth",
               "peer", "name", self.dev + "p", "netns", self.peer)
            # No IPv6 on the pair: its neighbour discovery and multicast
            # reports would add packets to the counters the tests read.
            for ns, dev in ((self.name, self.dev), (self.peer, self.dev + "p")):
                sh("ip", "netns", "exec", ns, "sh", "-c",
                   f"echo 1 > /proc/sys/net/ipv6/conf/{dev}/disable_ipv6")
                sh("ip", "-n", ns, "link", "set", dev, "up")
            target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
            setns(target)
            os.close(target)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        setns(self.own)
        os.close(self.own)
        for ns in (self.name, self.peer):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def xdp_attached(self):
        out = subprocess.run(["ip", "link", "show", "dev", self.dev],
                             check=True, capture_output=True, text=True).stdout
        return "prog/xdp" in out


@pytest.fixture
def ns(request):
    tag = str(abs(hash(request.node.name)) % 1000)
    with Namespace(tag) as n:
        yield n


def test_context_manager_attaches_and_detaches(ns):
    with xdpchain.Chain.open(ns.dev, skb=True) as chain:
        assert chain.ifname == ns.dev and not chain.attached
        chain.add_program(obj("counter"))
        chain.attach(skb=True)
        assert chain.attached and ns.xdp_attached()
        with pytest.raises(ValueError, match="skb mode"):
            chain.attach()
    assert not ns.xdp_attached()
    # Also when the block ends with an exception.
    with pytest.raises(KeyError):
        with xdpchain.Chain.open(ns.dev) as chain:
            chain.add_program(obj("counter"))
            chain.attach()
            raise KeyError("boom")
    assert not ns.xdp_attached()


def test_components_and_counters(ns):
    chain = xdpchain.Chain.open(ns.dev, mode="static", owner="tester")
    assert chain.components == [] and chain.owner == "tester"
    counter = chain.add_program(obj("counter"))
    with open(obj("filter"), "rb") as f:
        fw = chain.add_program(f.read(), program="xdpfilt_udp", priority=60,
                               continue_on={"pass", "TX"})
    before = chain.components
    assert [c.name for c in before] == ["xdp_count", "xdpfilt_udp"]
    assert [(c.owner, c.pid, c.own) for c in before] == [("tester", os.getpid(), True)] * 2
    chain.link_static()
    assert chain.mode == "static"
    assert chain.test_run(udp_packet(9999)) == XDP_DROP
    assert chain.test_run(udp_packet(53)) == XDP_PASS
    a, b = chain.components
    assert (a.id, a.slot, a.priority, a.continue_on) == (counter, 0, 10, frozenset({"pass", "drop"}))
    assert (b.id, b.slot, b.priority, b.continue_on) == (fw, 1, 60, frozenset({"pass", "tx"}))
    assert a.program_id == b.program_id and a.program_id > 0
    assert a.counters["pass"] == 2 and a.counters["other"] == 0
    # A static chain runs them copied into a root generated for it.
    assert a.inlined is True and b.inlined is True
    assert b.counters == {"aborted": 0, "drop": 1, "pass": 1, "tx": 0, "redirect": 0, "other": 0}
    # Its global variables, read through the map's fd.
    fd = chain.map_fd(counter, ".bss")
    assert isinstance(fd, int) and fd >= 0
    with pytest.raises(LookupError):
        chain.map_fd(counter, "no_such_map")
    assert [(c.action, c.id) for c in chain.detach()] == [("removed", counter), ("removed", fw)]
    assert not ns.xdp_attached()


def test_a_traceable_component_is_named_for_tracers(ns):
    """traceable=True keeps a component of a static chain a function of its
    own, which fentry/fexit tools attach to by the name status shows."""
    chain = xdpchain.Chain.open(ns.dev, mode="static")
    chain.add_program(obj("counter"))
    chain.add_program(obj("verdict"), traceable=True)
    a, b = chain.components
    assert (a.inlined, a.function) == (True, None)
    assert (b.inlined, b.function) == (False, f"xdpchain_slot_{b.slot}")
    assert chain.test_run(udp_packet(9)) == XDP_PASS
    assert chain.components[1].counters["pass"] == 1
    chain.detach()
    assert not ns.xdp_attached()


def test_replace_remove_and_link_to_a_file(ns, tmp_path):
    # With counters, in our layout, ids stay with their slots.
    chain = xdpchain.Chain.open(ns.dev, counters=True)
    chain.add_program(obj("counter"))
    fw = chain.add_program(obj("filter"), priority=60)
    chain.attach()
    assert chain.test_run(udp_packet(9999)) == XDP_DROP
    chain.replace_slot(1, obj("verdict"))
    assert chain.test_run(udp_packet(9999)) == XDP_PASS
    assert [c.name for c in chain.components] == ["xdp_count", "xdp_verdict"]
    assert chain.components[1].id == fw
    with pytest.raises(ValueError, match="out of range"):
        chain.replace_slot(5, obj("verdict"))
    chain.remove(fw)
    assert [c.name for c in chain.components] == ["xdp_count"]
    with pytest.raises(LookupError):
        chain.remove(fw)
    chain.close()
    assert not ns.xdp_attached()

    out = tmp_path / "linked.o"
    unattached = xdpchain.Chain()
    unattached.add_program(obj("counter"))
    unattached.link_static(out)
    assert out.read_bytes()[:4] == b"\x7fELF"
    with pytest.raises(ValueError, match="without an interface"):
        unattached.attach()


def test_errors_map_onto_python_exceptions(ns, tmp_path):
    chain = xdpchain.Chain.open(ns.dev)
    with pytest.raises(FileNotFoundError) as e:
        chain.add_program(tmp_path / "missing.o")
    assert e.value.errno == errno.ENOENT
    junk = tmp_path / "junk.o"
    junk.write_bytes(b"not an object")
    with pytest.raises(ValueError, match="not an ELF"):
        chain.add_program(junk)
    with pytest.raises(LookupError, match="no_such_prog"):
        chain.add_program(obj("counter"), program="no_such_prog")
    with pytest.raises(ValueError, match="unknown verdict"):
        chain.add_program(obj("counter"), continue_on={"maybe"})
    with pytest.raises(ValueError, match="collection of verdict names"):
        chain.add_program(obj("counter"), continue_on="pass")
    with pytest.raises(ValueError, match="unknown mode"):
        xdpchain.Chain.open(ns.dev, mode="sideways")
    with pytest.raises(OSError) as e:
        xdpchain.Chain.open("xdpc-none0")
    assert e.value.errno == errno.ENODEV and isinstance(e.value, xdpchain.Error)

    chain.add_program(obj("counter"))
    chain.attach()
    with pytest.raises(xdpchain.VerifierError) as e:
        chain.add_program(obj("bad"))
    err = e.value
    assert isinstance(err, OSError) and err.errno in (errno.EACCES, errno.EINVAL)
    assert "bad.o" in err.component and "processed" in err.log
    # Nothing changed.
    assert [c.name for c in chain.components] == ["xdp_count"]
    assert chain.test_run(udp_packet(1)) == XDP_PASS
    chain.close()


def section_header(data, name):
    """Offset of the 64-byte header of section `name` in an ELF object."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shnum, shstrndx = struct.unpack_from("<HH", data, 0x3C)
    names, = struct.unpack_from("<Q", data, shoff + shstrndx * 64 + 24)
    for i in range(shnum):
        at = shoff + i * 64
        off = names + struct.unpack_from("<I", data, at)[0]
        if data[off:data.index(b"\0", off)] == name.encode():
            return at
    raise KeyError(name)


def test_hostile_objects_are_errors(ns, tmp_path):
    # As tests/hostile.rs: an error each, nothing added, no crash.
    chain = xdpchain.Chain.open(ns.dev)
    with open(obj("counter"), "rb") as f:
        good = f.read()
    with pytest.raises(ValueError, match="malformed"):
        chain.add_program(good[:100])
    bad = bytearray(good)
    struct.pack_into("<Q", bad, section_header(bad, "xdp") + 48, 1 << 40)
    with pytest.raises(xdpchain.Error, match="alignment") as e:
        chain.add_program(bytes(bad))
    assert e.value.errno == errno.EFBIG
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, says in [(fifo, "FIFO"), ("/dev/zero", "device"), (tmp_path, "directory")]:
        with pytest.raises(ValueError, match=says):
            chain.add_program(path)
    assert chain.components == []
    chain.close()


def test_permission_error_without_privileges(ns):
    code = (
        "import xdpchain, sys\n"
        f"c = xdpchain.Chain.open({ns.dev!r})\n"
        "try:\n"
        f"    c.add_program({obj('verdict')!r})\n"
        "except PermissionError as e:\n"
        "    print('denied', e.errno)\n"
    )
    out = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-c", code],
        capture_output=True, text=True, check=True,
    ).stdout
    assert out.strip() == f"denied {errno.EPERM}"
    assert not ns.xdp_attached()


def test_programs_are_configured_before_loading(ns):
    with xdpchain.Chain.open(ns.dev, owner="configured") as chain:
        # As shipped its map has no size, which the kernel would refuse.
        with pytest.raises(ValueError, match="map 'hits' has no size"):
            chain.add_program(obj("configured"))
        with pytest.raises(ValueError, match="does not fit"):
            chain.add_program(obj("configured"), rodata={"cfg_slot": 1 << 16},
                              map_sizes={"hits": 2})
        with pytest.raises(ValueError, match="no map 'nope'"):
            chain.add_program(obj("configured"), map_sizes={"nope": 2})
        assert chain.components == []
        chain.add_program(obj("configured"),
                          rodata={"cfg_verdict": XDP_DROP, "cfg_slot": b"\x01\x00"},
                          map_sizes={"hits": 2})
        assert chain.test_run(udp_packet(53)) == XDP_DROP
    assert not ns.xdp_attached()


def test_messages_go_to_logging(ns, caplog):
    chain = xdpchain.Chain.open(ns.dev, owner="logger")
    # Below the logger's level, nothing is even queued.
    with caplog.at_level(logging.WARNING, logger="xdpchain"):
        chain.add_program(obj("counter"))
    assert not [r for r in caplog.records if r.name.startswith("xdpchain")]
    with caplog.at_level(logging.DEBUG, logger="xdpchain"):
        chain.add_program(obj("filter"), priority=60)
        with pytest.raises(xdpchain.VerifierError):
            chain.add_program(obj("bad"))
    records = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert any(n == "xdpchain" and lv == logging.INFO and "attached" in m
               for n, lv, m in records), records
    assert any(n == "xdpchain.libbpf" and lv == logging.DEBUG for n, lv, _ in records)
    assert any(n == "xdpchain.libbpf" and lv == logging.WARNING and "BEGIN PROG LOAD LOG" in m
               for n, lv, m in records)
    chain.close()


def test_probing_the_kernel_warns_of_nothing(ns):
    # The first chain of a process probes the kernel (once, hence a new
    # process); what the kernel refuses then is an answer, not a warning.
    code = (
        "import logging, xdpchain\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        f"c = xdpchain.Chain.open({ns.dev!r}, owner='probed')\n"
        f"c.add_program({obj('counter')!r})\n"
        "print(c.mode)\n"
        "c.detach()\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert run.stderr == ""
    assert run.stdout.strip() in ("static", "dynamic")
    assert not ns.xdp_attached()


def test_the_gil_is_released_while_loading(ns):
    chain = xdpchain.Chain.open(ns.dev, mode="static")
    for i in range(11):
        chain.add_program(obj("filter"), priority=i)
    started = threading.Event()
    spins = 0

    def load():
        started.set()
        chain.add_program(obj("filter"), priority=11)

    worker = threading.Thread(target=load)
    worker.start()
    started.wait()
    busy = 0
    while worker.is_alive():
        spins += 1
        if spins % 100 == 0:
            # Another thread's call on the chain meanwhile is refused, not
            # left waiting (which could deadlock with the GIL).
            try:
                chain.mode
            except RuntimeError as e:
                assert "in use by another thread" in str(e)
                busy += 1
    worker.join()
    assert chain.attached
    # Holding the GIL through the load would have left no room to spin.
    assert spins > 1000 and busy > 0, (spins, busy)
    chain.close()


def test_apply_brings_chains_to_a_chains_file_as_the_command_does(ns, tmp_path):
    counter = obj("counter")
    path = tmp_path / "chains.toml"
    path.write_text(
        f'[[interface]]\nname = "{ns.dev}"\nattach = "skb"\n'
        f'[[interface.component]]\npath = "{counter}"\nowner = "mon"\n'
        f'[[interface]]\nname = "xdpc-none0"\n'
        f'[[interface.component]]\npath = "{counter}"\n')
    what = f"{path}:4: component {counter}:xdp_count"
    assert xdpchain.apply(path, dry_run=True) == [
        (ns.dev, None, [("add", what)]), ("xdpc-none0", None, None)]
    assert not ns.xdp_attached()
    assert xdpchain.apply(path) == [
        (ns.dev, None, [("add", what)]), ("xdpc-none0", None, None)]
    (st,) = xdpchain.status(ns.dev)
    assert [(c.name, c.owner) for c in st.components] == [("xdp_count", "mon")]
    program = st.program_id
    ((_, _, changes),) = xdpchain.apply(path, interface=ns.dev)
    assert [verb for verb, _ in changes] == ["keep"]
    assert xdpchain.status(ns.dev)[0].program_id == program
    # A bad file: the error names the file and the line, and nothing changes.
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[[interface]]\nname = "{ns.dev}"\ncolour = "red"\n')
    with pytest.raises(ValueError, match=f"{bad}:3: unknown field `colour`"):
        xdpchain.apply(bad)
    missing = tmp_path / "missing.toml"
    missing.write_text(f'[[interface]]\nname = "{ns.dev}"\n'
                       f'[[interface.component]]\npath = "/nonexistent/fw.o"\n')
    with pytest.raises(FileNotFoundError, match=f"{missing}:3: component /nonexistent/fw.o"):
        xdpchain.apply(missing)
    assert xdpchain.status(ns.dev)[0].program_id == program
    # With netns, the chains declared there: none in this file.
    assert xdpchain.apply(path, netns=ns.name) == []
    # Declared with no component, the file's component goes, with the chain.
    path.write_text(f'[[interface]]\nname = "{ns.dev}"\n')
    ((_, _, changes),) = xdpchain.apply(path)
    assert [verb for verb, _ in changes] == ["remove"]
    assert not ns.xdp_attached()


def test_python_m_xdpchain_status_prints_what_the_command_prints(ns):
    chain = xdpchain.Chain.open(ns.dev)
    chain.add_program(obj("counter"))
    chain.add_program(obj("filter"), priority=60)
    chain.attach()
    chain.test_run(udp_packet(9999))
    for args in ([ns.dev], [ns.dev, "--json"], []):
        ours = subprocess.run([sys.executable, "-m", "xdpchain", "status", *args],
                              capture_output=True, text=True, check=True).stdout
        theirs = subprocess.run([CLI, "status", *args],
                                capture_output=True, text=True, check=True).stdout
        assert ours == theirs
    assert "xdpfilt_udp" in ours
    # From the namespace the test came from, with -n as the command takes it.
    host = ["nsenter", f"--net=/proc/self/fd/{ns.own}"]
    ours = subprocess.run(host + [sys.executable, "-m", "xdpchain", "-n", ns.name, "status",
                                  ns.dev], capture_output=True, text=True, check=True,
                          pass_fds=(ns.own,)).stdout
    theirs = subprocess.run(host + [CLI, "-n", ns.name, "status", ns.dev], pass_fds=(ns.own,),
                            capture_output=True, text=True, check=True).stdout
    assert ours == theirs and "xdpfilt_udp" in ours
    assert xdpchain.__version__ == subprocess.run(
        [CLI, "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
    bad = subprocess.run([sys.executable, "-m", "xdpchain", "status", "xdpc-none0"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "no such interface" in bad.stderr
    chain.close()
    # Another loader's program, shown as such by both.
    subprocess.run(["ip", "link", "set", "dev", ns.dev, "xdpgeneric", "obj", obj("verdict"),
                    "sec", "xdp"], check=True)
    [p] = xdpchain.foreign(ns.dev)
    assert (p.interface, p.name, p.mode) == (ns.dev, "xdp_verdict", "skb") and p.program_id > 0
    assert xdpchain.status() == []
    for args in ([ns.dev], [ns.dev, "--json"], []):
        ours = subprocess.run([sys.executable, "-m", "xdpchain", "status", *args],
                              capture_output=True, text=True, check=True).stdout
        theirs = subprocess.run([CLI, "status", *args],
                                capture_output=True, text=True, check=True).stdout
        assert ours == theirs and "xdp_verdict" in ours
    subprocess.run(["ip", "link", "set", "dev", ns.dev, "xdpgeneric", "off"], check=True)


def test_example_prints_the_counters(ns):
    example = os.path.join(os.path.dirname(__file__), "../../../examples/python/chain_counters.py")
    out = subprocess.run(
        [sys.executable, example, ns.dev, obj("counter"), obj("filter"), "--watch", "0"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert out.startswith(f"2 programs on {ns.dev}")
    assert "xdp_count" in out and "xdpfilt_udp" in out and "drop=0" in out
    assert not ns.xdp_attached()


def test_programs_as_their_loaders_ship_them(ns, tmp_path):
    """An old section name loads as XDP; a GPL-only helper beside a non-GPL
    licence does not link, and the error names both; on jumbo frames a chain
    is multi-buffer aware when all its programs are, and a program that is
    not is named and changes nothing."""
    with xdpchain.Chain.open(ns.dev, owner="shipped") as chain:
        chain.add_program(obj("oldsec"))
        assert [c.name for c in chain.components] == ["xdp_patch_ports_prog"]
        assert chain.test_run(udp_packet(53)) == XDP_TX
    assert not ns.xdp_attached()

    linked = xdpchain.Chain(mode="static")
    linked.add_program(obj("gplonly"))
    linked.add_program(obj("proprietary"))
    with pytest.raises(xdpchain.Error) as e:
        linked.link_static(tmp_path / "chain.o")
    assert e.value.errno == errno.EOPNOTSUPP
    for part in ("gplonly.o:xdp_printk", "proprietary.o:xdp_prop", "dynamic"):
        assert part in str(e.value)
    assert not (tmp_path / "chain.o").exists()

    for netns, dev in ((ns.name, ns.dev), (ns.peer, ns.dev + "p")):
        sh("ip", "-n", netns, "link", "set", dev, "mtu", "9000")
    with xdpchain.Chain.open(ns.dev) as chain:
        if not kernel_at_least(5, 18):
            # No XDP program runs there before multi-buffer XDP, and the
            # error says why.
            with pytest.raises(xdpchain.Error) as e:
                chain.add_program(obj("frags"))
            assert e.value.errno == errno.EOPNOTSUPP
            assert "no multi-buffer XDP (Linux 5.18" in str(e.value)
            assert chain.components == []
        else:
            chain.add_program(obj("frags"))
            with pytest.raises(xdpchain.Error) as e:
                chain.add_program(obj("counter"))
            assert e.value.errno == errno.ERANGE and "counter.o:xdp_count" in str(e.value)
            assert [c.name for c in chain.components] == ["xdp_frags"]
    assert not ns.xdp_attached()


def test_a_chain_can_be_bound_to_its_device_before_it_needs_to(ns):
    """device_bound=True binds a new chain to its interface (XDP RX metadata
    kfuncs, Linux 6.3); a kernel without them refuses, saying so."""
    chain = xdpchain.Chain.open(ns.dev, device_bound=True)
    if not kernel_at_least(6, 3):
        with pytest.raises(xdpchain.Error) as e:
            chain.add_program(obj("counter"))
        assert e.value.errno == errno.EOPNOTSUPP and "Linux 6.3" in str(e.value)
        assert not ns.xdp_attached()
        return
    chain.add_program(obj("counter"))
    chain.add_program(obj("rxhash"))
    [st] = xdpchain.status(ns.dev)
    assert st.device_bound
    assert sorted(c.name for c in st.components) == ["xdp_count", "xdp_rxhash"]
    chain.close()
    assert not ns.xdp_attached()


def test_the_default_chain_is_one_xdp_loader_joins(ns):
    """With every default, a dynamic chain takes libxdp's layout, which
    xdp-loader joins; ours is counted there, xdp-loader's is not, and status
    says why; a static chain (where the kernel has no freplace) is ours,
    counted, and xdp-loader leaves it be."""
    chain = xdpchain.Chain.open(ns.dev)
    chain.add_program(obj("counter"))
    [st] = xdpchain.status(ns.dev)
    # nsenter, not ip netns exec, which hides bpffs from xdp-loader.
    load = subprocess.run(["nsenter", f"--net=/run/netns/{ns.name}", "xdp-loader", "load",
                           ns.dev, obj("verdict")], capture_output=True, text=True)
    [now] = xdpchain.status(ns.dev)
    after = [c.name for c in now.components]
    if st.kind == "dynamic":
        assert st.layout.startswith("libxdp v") and st.counters_off is None
        assert st.components[0].counters is not None
        assert load.returncode == 0, load.stderr
        assert after == ["xdp_count", "xdp_verdict"]
        assert [c.counters is None for c in now.components] == [False, True]
        assert "libxdp users" in now.counters_off
    else:
        assert st.layout == "xdpchain" and st.counters_off is None
        assert st.components[0].counters is not None
        assert load.returncode != 0 and after == ["xdp_count"]
    chain.close()
    subprocess.run([CLI, "detach", ns.dev, "--force"], capture_output=True)
    assert not ns.xdp_attached()


def test_a_with_block_removes_only_its_own_component(ns):
    subprocess.run([CLI, "add", ns.dev, obj("verdict"), "--owner", "ops"], check=True,
                   capture_output=True)
    with xdpchain.Chain.open(ns.dev, owner="py") as chain:
        mine = chain.add_program(obj("counter"))
        got = [(c.name, c.owner, c.own) for c in chain.components]
        assert got == [("xdp_count", "py", True), ("xdp_verdict", "ops", False)]
        # Another owner's component is not ours to take out, but by force.
        ops = chain.components[1].id
        with pytest.raises(xdpchain.Error) as e:
            chain.remove(ops)
        assert e.value.errno == errno.EBUSY and "force" in str(e.value)
    [st] = xdpchain.status(ns.dev)
    assert [(c.name, c.owner) for c in st.components] == [("xdp_verdict", "ops")]
    assert st.interface == ns.dev and st.kind in ("static", "dynamic")
    assert all(c.id != mine or c.name == "xdp_verdict" for c in st.components)
    subprocess.run([CLI, "detach", ns.dev, "--force"], check=True, capture_output=True)
    assert not ns.xdp_attached()
    assert xdpchain.status() == []


def test_a_stale_id_finds_nothing(ns):
    """A with block adds fw and leaves; the next component added gets a new
    id, so removing through the stale one fails with ENOENT and leaves the
    other owner's component be (ids used to be reused)."""
    probe = xdpchain.Chain.open(ns.dev, owner="probe")
    probe.add_program(obj("counter"))
    with xdpchain.Chain.open(ns.dev, owner="probe") as chain:
        fw = chain.add_program(obj("filter"), program="xdpfilt_udp", priority=60)
    other = xdpchain.Chain.open(ns.dev, owner="probe")
    verdict = other.add_program(obj("verdict"), priority=70)
    assert verdict != fw
    with pytest.raises(LookupError, match=f"no component named '{fw}'"):
        probe.remove(fw)
    [st] = xdpchain.status(ns.dev)
    assert [c.name for c in st.components] == ["xdp_count", "xdp_verdict"]
    other.close()
    probe.close()
    assert not ns.xdp_attached()


def test_every_change_says_what_it_did(ns):
    """Changes return what they did (remove, replace_slot, detach), and
    last_changes holds it for add_program: what force dropped of another
    loader and of other owners too, as the command prints it."""
    sh("ip", "link", "set", "dev", ns.dev, "xdpgeneric", "obj", obj("verdict"), "sec", "xdp")
    [foreign] = xdpchain.foreign(ns.dev)
    fw = xdpchain.Chain.open(ns.dev, owner="fw", skb=True, force=True)
    first = fw.add_program(obj("counter"))
    dropped, added = fw.last_changes
    assert (dropped.action, dropped.id, dropped.name, dropped.owner, dropped.program_id) == (
        "dropped", None, "xdp_verdict", None, foreign.program_id)
    assert str(dropped) == f"dropped xdp_verdict (program {foreign.program_id}, another loader's)"
    assert (added.action, added.id, added.name, added.owner) == ("added", first, "xdp_count", "fw")
    assert added.interface == ns.dev and added.program_id > 0
    probe = xdpchain.Chain.open(ns.dev, owner="probe", force=True)
    second = probe.add_program(obj("core"))
    [replaced] = probe.replace_slot(0, obj("verdict"))
    # In libxdp's layout, the id is the new program's.
    assert replaced.id in (first, replaced.program_id)
    assert (replaced.action, replaced.name) == ("replaced", "xdp_verdict")
    assert (replaced.replaced_name, replaced.owner) == ("xdp_count", "probe")
    assert str(replaced).startswith(f"replaced component {replaced.id}: xdp_count (program ")
    [gone] = fw.remove(second)
    assert (gone.action, gone.id, gone.owner) == ("dropped", second, "probe")
    assert [(c.action, c.id) for c in probe.detach()] == [("removed", replaced.id)]
    assert probe.last_changes[0].action == "removed"
    assert not ns.xdp_attached()


LOADER = os.path.join(os.environ.get("XDPCHAIN_C_PREFIX", ""), "bin/xdpchain-load")

PY_ADD = (
    "import sys, xdpchain\n"
    "c = xdpchain.Chain.open(sys.argv[1], owner=sys.argv[2], netns=sys.argv[3])\n"
    "c.add_program(sys.argv[4], priority=int(sys.argv[5]))\n"
)


def front_ends(ns, dev):
    """The commands by which each front end adds one program to `dev`, from
    a process of its own: a C loader, a Python script, the command."""
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(os.environ["XDPCHAIN_C_PREFIX"], "lib"))
    return env, [
        [LOADER, "-k", "-o", "fw", "-n", ns, dev, obj("filter")],
        [sys.executable, "-c", PY_ADD, dev, "probe", ns, obj("counter"), "10"],
        [CLI, "-n", ns, "add", dev, obj("verdict"), "--owner", "ops"],
    ]


def test_every_front_end_adds_to_one_chain(ns):
    env, commands = front_ends(ns.name, ns.dev)
    for together in (False, True):
        if together:
            procs = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL) for c in commands]
            assert [p.wait() for p in procs] == [0, 0, 0]
        else:
            for c in commands:
                subprocess.run(c, env=env, check=True, capture_output=True)
        [st] = xdpchain.status(ns.dev)
        got = sorted((c.name, c.owner) for c in st.components)
        assert got == [("xdp_count", "probe"), ("xdp_verdict", "ops"), ("xdpfilt_udp", "fw")]
        # Run order: the counter (10), the verdict (50), the filter (60).
        assert [c.name for c in st.components] == ["xdp_count", "xdp_verdict", "xdpfilt_udp"]
        chain = xdpchain.Chain.open(ns.dev)
        assert chain.test_run(udp_packet(9999)) == XDP_DROP
        assert chain.test_run(udp_packet(53)) == XDP_PASS
        # The same chain, seen from every way of entering the namespace.
        views = [
            [CLI, "-n", ns.name, "status", ns.dev, "--json"],
            ["ip", "netns", "exec", ns.name, CLI, "status", ns.dev, "--json"],
            ["nsenter", f"--net=/run/netns/{ns.name}", CLI, "status", ns.dev, "--json"],
        ]
        seen = {subprocess.run(v, check=True, capture_output=True, text=True).stdout for v in views}
        assert len(seen) == 1 and '"owner":"fw"' in seen.pop()
        subprocess.run([CLI, "detach", ns.dev, "--force"], check=True, capture_output=True)
        assert not ns.xdp_attached()


def kernel_objects():
    """(programs, maps, links) in the kernel, by BPF_*_GET_NEXT_ID."""
    def count(cmd):
        n, start = 0, 0
        while True:
            attr = struct.pack("=II", start, 0).ljust(128, b"\0")
            buf = ctypes.create_string_buffer(attr, len(attr))
            if libc.syscall(321, cmd, buf, len(attr)) != 0:
                return n
            start = struct.unpack_from("=I", buf.raw, 4)[0]
            n += 1
    return count(11), count(12), count(31)


def settled_objects():
    last = kernel_objects()
    for _ in range(40):
        time.sleep(0.5)
        now = kernel_objects()
        if now == last:
            return now
        last = now
    return last


def test_killed_c_and_python_front_ends_leave_a_chain_and_nothing_behind(ns):
    """Fault injection through the C API and the Python module: adds killed
    with SIGKILL at random moments. The interface runs a chain at every
    look, the next operation settles what was left, and once detached
    nothing remains in the kernel."""
    before = settled_objects()
    seed = int(os.environ.get("XDPCHAIN_FAULT_SEED", time.time_ns()))
    print(f"fault injection seed {seed}")
    rng = random.Random(seed)
    env, (c_add, py_add, cli_add) = front_ends(ns.name, ns.dev)
    # Our layout, whose record in bpffs the next operation settles.
    subprocess.run(cli_add + ["--layout", "xdpchain"], env=env, check=True, capture_output=True)
    chain = xdpchain.Chain.open(ns.dev)
    stop, failures, looks = threading.Event(), [], [0]

    def watch():
        while not stop.is_set():
            try:
                v = chain.test_run(udp_packet(1))
                if v != XDP_PASS:
                    failures.append(f"verdict {v}")
            except OSError as e:
                failures.append(str(e))
            looks[0] += 1

    watcher = threading.Thread(target=watch)
    watcher.start()
    killed = 0
    try:
        for i in range(40):
            cmd = c_add if i % 2 else py_add
            p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0, 0.08))
            if p.poll() is None:
                p.kill()
                killed += 1
            p.wait()
            # Keep the chain short: what got in goes again (by force).
            subprocess.run([CLI, "remove", ns.dev, "xdp_count", "--force"], capture_output=True)
            subprocess.run([CLI, "remove", ns.dev, "xdpfilt_udp", "--force"], capture_output=True)
    finally:
        stop.set()
        watcher.join()
    assert killed >= 8, f"only {killed} adds were interrupted"
    assert not failures and looks[0] > 100, (failures[:5], looks[0])
    # The next operation completes on a consistent record.
    subprocess.run(c_add, env=env, check=True, capture_output=True)
    [st] = xdpchain.status(ns.dev)
    assert sorted(c.owner for c in st.components) == ["fw", "ops"]
    subprocess.run([CLI, "detach", ns.dev, "--force"], check=True, capture_output=True)
    assert not ns.xdp_attached()
    deadline = time.monotonic() + 10
    while kernel_objects() != before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert kernel_objects() == before


def test_stats_and_timing(ns):
    chain = xdpchain.Chain.open(ns.dev, counters=True)
    chain.add_program(obj("counter"))
    chain.add_program(obj("filter"), priority=60)
    chain.attach()
    for _ in range(5):
        chain.test_run(udp_packet(9999))
    before = {s.name: s for s in xdpchain.stats(ns.dev)}
    assert sorted(before) == ["xdp_count", "xdpfilt_udp"]
    assert before["xdp_count"].verdicts["pass"] == 5
    assert before["xdpfilt_udp"].packets == 5 and before["xdpfilt_udp"].verdicts["drop"] == 5
    assert all(s.run_cnt == 0 and s.ns_per_packet is None for s in before.values())
    # Timed while held, with the same counts.
    with xdpchain.timing(ns.dev) as t:
        assert isinstance(t, xdpchain.Timing)
        for _ in range(5):
            chain.test_run(udp_packet(9999))
    after = {s.name: s for s in xdpchain.stats(ns.dev)}
    for name, s in after.items():
        assert s.packets == 10 and s.run_cnt == 5, s
        assert s.run_time_ns > 0 and s.ns_per_packet > 0, s
    assert after["xdpfilt_udp"].verdicts["drop"] == 10
    # The components show the same.
    assert [c.run_cnt for c in chain.components] == [5, 5]
    chain.close()
    # Nothing to time: no chain, or one without counters.
    with pytest.raises(xdpchain.Error) as e:
        xdpchain.timing(ns.dev)
    assert e.value.errno == errno.ENOENT
    bare = xdpchain.Chain.open(ns.dev, counters=False)
    bare.add_program(obj("counter"))
    bare.attach()
    with pytest.raises(OSError) as e:
        xdpchain.timing(ns.dev)
    assert e.value.errno == errno.EOPNOTSUPP and "counters on" in str(e.value)
    bare.close()


def _samples(text):
    """The samples of an OpenMetrics exposition, by (name, labels)."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_print_and_serve_the_counters(ns):
    import socket
    import urllib.request

    chain = xdpchain.Chain.open(ns.dev, counters=True, owner="metered")
    chain.add_program(obj("counter"))
    chain.add_program(obj("filter"), priority=60)
    chain.attach()
    for _ in range(3):
        chain.test_run(udp_packet(9999))
    with xdpchain.timing(ns.dev):
        chain.test_run(udp_packet(9999))
    labels = lambda comp, **more: tuple(sorted(
        {"interface": ns.dev, "netns": ns.name, "component": comp, "owner": "metered", **more}.items()))

    def check(text):
        got = _samples(text)
        for comp in ("xdp_count", "xdpfilt_udp"):
            assert got[("xdpchain_packets_total", labels(comp))] == 4
            assert got[("xdpchain_run_packets_total", labels(comp))] == 1
            assert got[("xdpchain_run_time_seconds_total", labels(comp))] > 0
        assert got[("xdpchain_verdicts_total", labels("xdpfilt_udp", verdict="drop"))] == 4
        assert got[("xdpchain_verdicts_total", labels("xdp_count", verdict="pass"))] == 4

    printed = subprocess.run([CLI, "metrics"], capture_output=True, text=True, check=True).stdout
    assert printed.endswith("# EOF\n")
    check(printed)

    # Served over HTTP, on loopback.
    sh("ip", "link", "set", "lo", "up")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([CLI, "metrics", "--listen", f"127.0.0.1:{port}"],
                              stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    assert r.headers["Content-Type"].startswith("application/openmetrics-text")
                    check(r.read().decode())
                    break
            except urllib.error.URLError:
                assert server.poll() is None, server.stderr.read()
                time.sleep(0.05)
        else:
            raise AssertionError("metrics were never served")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
        assert e.value.code == 404
    finally:
        server.terminate()
        server.wait()
    chain.close()


def test_dump_yields_what_a_component_receives_and_leaves(ns):
    chain = xdpchain.Chain.open(ns.dev, counters=True)
    chain.add_program(obj("counter"))
    chain.add_program(obj("rewrite"), priority=60)
    chain.attach()
    sent = udp_packet(4242)
    rewritten = bytearray(sent)
    rewritten[63] ^= 0xFF
    if not kernel_at_least(5, 18):
        # Dumps copy packets with a helper of 5.18: refused before, and the
        # chain runs on.
        with pytest.raises(xdpchain.Error) as e:
            xdpchain.dump(ns.dev, "xdp_rewrite")
        assert e.value.errno == errno.EOPNOTSUPP and "bpf_xdp_load_bytes" in str(e.value)
        assert chain.test_run(sent) == XDP_PASS
        chain.close()
        return
    with xdpchain.dump(ns.dev, "xdp_rewrite", at="exit", count=2) as d:
        assert isinstance(d, xdpchain.Dump)
        chain.test_run(sent)
        chain.test_run(sent)
        got = list(d)
    assert [(p.data, p.len, p.verdict) for p in got] == [(bytes(rewritten), 64, 2)] * 2
    with xdpchain.dump(ns.dev, 0, snaplen=20, timeout=0.3) as d:
        chain.test_run(sent)
        got = list(d)
        assert d.lost == 0
    assert [(p.data, p.len, p.verdict) for p in got] == [(sent[:20], 64, None)]
    with pytest.raises(LookupError):
        xdpchain.dump(ns.dev, "nosuch")
    with pytest.raises(ValueError):
        xdpchain.dump(ns.dev, 0, at="middle")
    # An id is an int, a program's name a str: "0" names a program.
    with pytest.raises(LookupError):
        xdpchain.dump(ns.dev, "0")
    with pytest.raises(TypeError):
        xdpchain.dump(ns.dev, 0.5)
    chain.close()
