//! `make bench`: per-packet cost (BPF_PROG_TEST_RUN, 64-byte packet) and
//! the cost of changing a chain, measured in one run:
//! - K = 1, 5, 10, 32 components: a static chain (its generated root, the
//!   default) and the same chain as linked (its compiled root, inlining
//!   off) against one program with the K bodies inlined by clang (the
//!   floor) and a tail-call chain of them; where the kernel has freplace
//!   (the VM), also a dynamic chain, libxdp's dispatcher (xdp-loader,
//!   K <= 10), and our chain in libxdp's layout without and with its
//!   counters (fexit programs on the extensions);
//! - what timing and dumps cost (xdpchain::Timing, xdpchain::Dump): a
//!   counting static chain without their code, with it and both off, with
//!   timing on, and with a dump of its last component running (a thread
//!   draining the ring; what it has no room for is lost, and counted);
//! - the time to add one component to a chain of K, static, dynamic and
//!   with xdp-loader where it can (K < 10);
//! - the time to link, load and attach a chain of 10.
//!
//! Prints a table and writes it to bench/results/ (`make bench` runs it on
//! this machine, then in the VM with tests/vm/run.sh --bench). Objects come
//! from clang, or prebuilt when XDPCHAIN_BENCH_PREBUILT is set (the VM has
//! no clang); XDPCHAIN_BENCH_BUILD_ONLY builds them and stops.

use std::ffi::CString;
use std::fmt::Write as _;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use libbpf_sys as sys;
use xdpchain::{
    AttachOptions, Chain, Component, ComponentId, Counting, Dump, DumpPoint, Layout, Mode, Store,
    Timing,
};

const REPEAT: u32 = 200_000;
const KS: [usize; 4] = [1, 5, 10, 32];
const RUNS: usize = 25;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .into()
}

fn objects() -> PathBuf {
    repo().join("target/bench")
}

/// The benchmark's objects: one component, the inlined programs, the
/// tail-call chain.
fn build_objects() {
    std::fs::create_dir_all(objects()).unwrap();
    let mut variants: Vec<(String, Vec<String>)> = vec![
        ("component".into(), vec![]),
        ("nomap".into(), vec!["-DNOMAP".into()]),
        ("tail".into(), vec!["-DTAIL=32".into()]),
    ];
    for k in KS {
        variants.push((format!("inline{k}"), vec![format!("-DINLINE={k}")]));
    }
    for (name, flags) in variants {
        let st = Command::new("clang")
            .args(["-O2", "-g", "-target", "bpf"])
            .arg(format!("-I{}", env!("XDPCHAIN_LIBBPF_INCLUDE")))
            .arg(format!(
                "-I/usr/include/{}-linux-gnu",
                std::env::consts::ARCH
            ))
            .args(&flags)
            .arg("-c")
            .arg(repo().join("bench/bpf/component.bpf.c"))
            .arg("-o")
            .arg(objects().join(format!("{name}.o")))
            .status()
            .expect("clang");
        assert!(st.success());
    }
}

fn packet() -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    p
}

/// Best of RUNS mean ns/packet.
fn cost(fd: BorrowedFd<'_>) -> u32 {
    costs(&[fd])[0]
}

/// Best of RUNS mean ns/packet of each program, measured in turn round after
/// round, so that what else the machine does weighs on all alike.
fn costs(fds: &[BorrowedFd<'_>]) -> Vec<u32> {
    let mut best = vec![u32::MAX; fds.len()];
    for _ in 0..RUNS {
        for (b, fd) in best.iter_mut().zip(fds) {
            *b = (*b).min(xdpchain::test_run(*fd, &packet(), REPEAT).unwrap().1);
        }
    }
    best
}

/// Loads a plain object with libbpf; returns it and the fd of `entry`.
fn load_plain(path: &Path, entry: &str) -> (*mut sys::bpf_object, i32) {
    let p = CString::new(path.to_str().unwrap()).unwrap();
    unsafe {
        let obj = sys::bpf_object__open(p.as_ptr());
        assert!(!obj.is_null());
        assert_eq!(sys::bpf_object__load(obj), 0);
        let e = CString::new(entry).unwrap();
        let prog = sys::bpf_object__find_program_by_name(obj, e.as_ptr());
        (obj, sys::bpf_program__fd(prog))
    }
}

fn component() -> Component {
    Component::from_file(objects().join("component.o"), None).unwrap()
}

fn mapless() -> Component {
    Component::from_file(objects().join("nomap.o"), None).unwrap()
}

fn chain(mode: Mode, k: usize, inline: bool) -> Chain {
    chain_of(mode, k, component, inline)
}

fn chain_of(mode: Mode, k: usize, make: fn() -> Component, inline: bool) -> Chain {
    let mut chain = Chain::new();
    chain.set_mode(mode);
    chain.set_counting(false);
    chain.set_inlining(inline);
    let chain = fill(chain, k, make);
    assert_eq!(chain.mode(), mode);
    chain
}

fn fill(mut chain: Chain, k: usize, make: fn() -> Component) -> Chain {
    for _ in 0..k {
        chain.add(make()).unwrap();
    }
    chain.load().unwrap();
    chain
}

/// A counting static chain of `k` components, with or without the code
/// that times them.
fn counting_chain(k: usize, timing_code: bool) -> Chain {
    let mut chain = Chain::new();
    chain.set_mode(Mode::Static);
    chain.set_timing_code(timing_code);
    fill(chain, k, component)
}

/// Timing's cost per packet, in a network namespace of its own where the
/// timed chain is attached (timing is asked for per interface).
fn timing_table(table: &mut String) {
    writeln!(
        table,
        "\nns per packet of a counting static chain (generated root): without timing and dump code, with it and both off, timing on, a dump of the last component running"
    )
    .unwrap();
    writeln!(
        table,
        "{:>3} {:>8} {:>8} {:>8} {:>8} {:>15} {:>14} {:>8}",
        "K", "untimed", "off", "timing", "dump", "(off-untimed)/K", "(on-untimed)/K", "lost%"
    )
    .unwrap();
    let own = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
    let ns = format!("xdpc-bencht{}", std::process::id());
    sh(&format!("ip netns add {ns} && ip -n {ns} link add xt0 type veth peer name xt1 && ip -n {ns} link set xt0 up && ip -n {ns} link set xt1 up"));
    let enter = |f: &std::fs::File| {
        assert_eq!(
            unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(f), libc::CLONE_NEWNET) },
            0
        )
    };
    enter(&std::fs::File::open(format!("/run/netns/{ns}")).unwrap());
    for k in KS {
        let untimed = counting_chain(k, false);
        let off = counting_chain(k, true);
        let mut on = counting_chain(k, true);
        on.attach("xt0", AttachOptions::default()).unwrap();
        let timing = Timing::start(Some("xt0")).unwrap();
        let [u, f, n] = costs(&[
            untimed.program_fd().unwrap(),
            off.program_fd().unwrap(),
            on.program_fd().unwrap(),
        ])[..] else {
            unreachable!("three programs")
        };
        let timed = on.status().unwrap().components[0].counters.unwrap().run_cnt;
        assert!(timed > 0, "the timed chain was not timed");
        drop(timing);
        // Timing stops once its deadline has passed.
        std::thread::sleep(xdpchain::TIMING_LEASE);
        // A dump, drained by a thread as fast as it can.
        let mut dump = Dump::start("xt0", ComponentId(k as u32 - 1), DumpPoint::Entry, 64).unwrap();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let drain = {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut taken = 0u64;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    taken += u64::from(dump.next(Duration::from_millis(10)).unwrap().is_some());
                }
                (taken, dump.lost())
            })
        };
        let d = costs(&[on.program_fd().unwrap()])[0];
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let (taken, lost) = drain.join().unwrap();
        on.detach().unwrap();
        let per = |x: u32| (x as f64 - u as f64) / k as f64;
        writeln!(
            table,
            "{k:>3} {u:>8} {f:>8} {n:>8} {d:>8} {:>15.2} {:>14.2} {:>8.1}",
            per(f),
            per(n),
            100.0 * lost as f64 / (taken + lost).max(1) as f64
        )
        .unwrap();
    }
    enter(&own);
    sh(&format!("ip netns del {ns}"));
}

fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd}");
}

/// A veth device for loaders that need an interface, removed on drop.
struct Veth(String);

impl Veth {
    fn new() -> Veth {
        let name = format!("xbench{}", std::process::id() % 10000);
        sh(&format!("ip link add {name} type veth peer name {name}p && ip link set {name} up && ip link set {name}p up"));
        Veth(name)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).output();
    }
}

/// xdp-loader with `k` copies of the object `name` on `dev`: (the
/// dispatcher's fd, time the last `xdp-loader load` of one program took).
fn xdp_loader(dev: &str, k: usize, name: &str) -> (OwnedFd, Duration) {
    let _ = Command::new("xdp-loader")
        .args(["unload", dev, "--all"])
        .output();
    let mut last = Duration::ZERO;
    for i in 0..k {
        let copy = objects().join(format!("libxdp{i}.o"));
        std::fs::copy(objects().join(format!("{name}.o")), &copy).unwrap();
        let t = Instant::now();
        let out = Command::new("xdp-loader")
            .args(["load", "-m", "native", dev])
            .arg(&copy)
            .output()
            .unwrap();
        last = t.elapsed();
        assert!(
            out.status.success(),
            "xdp-loader: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let index = CString::new(dev).unwrap();
    let ifindex = unsafe { libc::if_nametoindex(index.as_ptr()) } as i32;
    let mut id = 0u32;
    assert_eq!(unsafe { sys::bpf_xdp_query_id(ifindex, 0, &mut id) }, 0);
    let fd = unsafe { sys::bpf_prog_get_fd_by_id(id) };
    assert!(fd >= 0);
    (unsafe { OwnedFd::from_raw_fd(fd) }, last)
}

/// The cost of our chain of `k` components in libxdp's layout on `dev`,
/// counted or not.
fn ours_in_libxdps_layout(dev: &str, k: usize, counting: Counting) -> u32 {
    let store = Store::at("/sys/fs/bpf/xdpchain-bench")
        .with_mode(Mode::Dynamic)
        .with_layout(Layout::Libxdp(None));
    let opts = AttachOptions {
        force: true,
        ..AttachOptions::default()
    };
    store
        .attach(dev, (0..k).map(|_| component()).collect(), opts, counting)
        .unwrap();
    let st = store.status(dev).unwrap();
    assert_eq!(
        st.components.iter().all(|c| c.counters.is_some()),
        counting == Counting::On
    );
    let fd = unsafe { sys::bpf_prog_get_fd_by_id(st.program_id) };
    assert!(fd >= 0);
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // Measured while attached: detached, its slots are empty again.
    let ns = cost(std::os::fd::AsFd::as_fd(&fd));
    store.detach(dev, true).unwrap();
    let _ = std::fs::remove_dir(store.dir());
    ns
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    if std::env::var_os("XDPCHAIN_BENCH_PREBUILT").is_none() {
        build_objects();
    }
    if std::env::var_os("XDPCHAIN_BENCH_BUILD_ONLY").is_some() {
        return;
    }
    let features = xdpchain::features().unwrap();
    let libxdp = features.freplace && Command::new("xdp-loader").arg("help").output().is_ok();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut table = String::new();
    writeln!(table, "kernel {}, one run; ns per packet (BPF_PROG_TEST_RUN, 64 B, best of {RUNS} interleaved rounds of {REPEAT}), counters off", kernel.trim()).unwrap();
    write!(
        table,
        "{:>3} {:>8} {:>9} {:>7} {:>7}",
        "K", "floor", "tailcall", "static", "linked"
    )
    .unwrap();
    if features.freplace {
        write!(table, " {:>8}", "dynamic").unwrap();
    }
    if libxdp {
        write!(table, " {:>7} {:>7} {:>8}", "libxdp", "lx-ours", "lx-count").unwrap();
    }
    writeln!(
        table,
        " {:>12} {:>12} {:>14} {:>14}",
        "static/floor", "linked/floor", "tailcall/floor", "(static-fl)/K"
    )
    .unwrap();
    let veth = libxdp.then(Veth::new);
    for k in KS {
        let (o1, fd1) = load_plain(&objects().join(format!("inline{k}.o")), "bench_inline");
        let (o2, fd2) = load_plain(&objects().join("tail.o"), "bench_tail_0");
        unsafe {
            let m = sys::bpf_object__find_map_by_name(o2, c"next".as_ptr());
            for i in 1..k as u32 {
                let name = CString::new(format!("bench_tail_{i}")).unwrap();
                let pfd =
                    sys::bpf_program__fd(sys::bpf_object__find_program_by_name(o2, name.as_ptr()));
                assert_eq!(
                    sys::bpf_map_update_elem(
                        sys::bpf_map__fd(m),
                        (&i as *const u32).cast(),
                        (&pfd as *const i32).cast(),
                        0
                    ),
                    0
                );
            }
        }
        let generated = chain(Mode::Static, k, true);
        let st = generated.status().unwrap();
        assert!(st.components.iter().all(|c| c.inlined == Some(true)));
        let compiled = chain(Mode::Static, k, false);
        let [inlined, tailcall, stat, linked] = costs(&[
            unsafe { BorrowedFd::borrow_raw(fd1) },
            unsafe { BorrowedFd::borrow_raw(fd2) },
            generated.program_fd().unwrap(),
            compiled.program_fd().unwrap(),
        ])[..] else {
            unreachable!("four programs")
        };
        write!(
            table,
            "{k:>3} {inlined:>8} {tailcall:>9} {stat:>7} {linked:>7}"
        )
        .unwrap();
        if features.freplace {
            let dynamic = cost(chain(Mode::Dynamic, k, false).program_fd().unwrap());
            write!(table, " {dynamic:>8}").unwrap();
        }
        match &veth {
            Some(v) if k <= 10 => {
                let (fd, _) = xdp_loader(&v.0, k, "component");
                write!(table, " {:>7}", cost(std::os::fd::AsFd::as_fd(&fd))).unwrap();
                drop(fd);
                let _ = Command::new("xdp-loader")
                    .args(["unload", &v.0, "--all"])
                    .output();
                let off = ours_in_libxdps_layout(&v.0, k, Counting::Off);
                let on = ours_in_libxdps_layout(&v.0, k, Counting::On);
                write!(table, " {off:>7} {on:>8}").unwrap();
            }
            Some(_) => write!(table, " {:>7} {:>7} {:>8}", "-", "-", "-").unwrap(),
            None => {}
        }
        let ratio = |x: u32| x as f64 / inlined as f64;
        writeln!(
            table,
            " {:>12.2} {:>12.2} {:>14.2} {:>14.2}",
            ratio(stat),
            ratio(linked),
            ratio(tailcall),
            (stat as f64 - inlined as f64) / k as f64
        )
        .unwrap();
        unsafe {
            sys::bpf_object__close(o1);
            sys::bpf_object__close(o2);
        }
    }

    timing_table(&mut table);

    writeln!(
        table,
        "\nms to add one component to a chain of K (map-less components; load and swap included; xdp-loader: the whole command)"
    )
    .unwrap();
    write!(table, "{:>3} {:>8}", "K", "static").unwrap();
    if features.freplace {
        write!(table, " {:>8}", "dynamic").unwrap();
    }
    if libxdp {
        write!(table, " {:>10}", "xdp-loader").unwrap();
    }
    writeln!(table).unwrap();
    for k in [1usize, 2, 4, 8, 9, 16, 32, 63] {
        let add = |mode| {
            let mut c = chain_of(mode, k, mapless, true);
            let t = Instant::now();
            c.add(mapless()).unwrap();
            ms(t.elapsed())
        };
        write!(table, "{k:>3} {:>8.1}", add(Mode::Static)).unwrap();
        if features.freplace {
            write!(table, " {:>8.1}", add(Mode::Dynamic)).unwrap();
        }
        match &veth {
            Some(v) if k < 10 => {
                write!(table, " {:>10.1}", ms(xdp_loader(&v.0, k + 1, "nomap").1)).unwrap()
            }
            Some(_) => write!(table, " {:>10}", "-").unwrap(),
            None => {}
        }
        writeln!(table).unwrap();
    }
    if let Some(v) = &veth {
        let _ = Command::new("xdp-loader")
            .args(["unload", &v.0, "--all"])
            .output();
    }

    // Link, load and attach a chain of 10 (on a veth in a namespace of our own).
    let ns = format!("xdpc-bench{}", std::process::id());
    sh(&format!("ip netns add {ns} && ip -n {ns} link add xb0 type veth peer name xb1 && ip -n {ns} link set xb0 up && ip -n {ns} link set xb1 up"));
    let t0 = Instant::now();
    let mut chain = Chain::new();
    chain.set_mode(Mode::Static);
    for _ in 0..10 {
        chain.add(component()).unwrap();
    }
    let bytes = chain.link().unwrap();
    let t_link = t0.elapsed();
    let t1 = Instant::now();
    chain.load().unwrap();
    let t_load = t1.elapsed();
    let netns = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&netns), libc::CLONE_NEWNET) };
    let t2 = Instant::now();
    chain.attach("xb0", AttachOptions::default()).unwrap();
    let t_attach = t2.elapsed();
    chain.detach().unwrap();
    sh(&format!("ip netns del {ns}"));
    writeln!(
        table,
        "\nstatic chain of 10: link {:.1} ms ({} byte object), load {:.1} ms, attach {:.2} ms",
        ms(t_link),
        bytes.len(),
        ms(t_load),
        ms(t_attach)
    )
    .unwrap();
    print!("{table}");
    let name = if features.freplace {
        "vm.txt"
    } else {
        "host.txt"
    };
    let results = repo().join("bench/results");
    if std::fs::create_dir_all(&results).is_ok() {
        let _ = std::fs::write(results.join(name), &table);
    }
}
