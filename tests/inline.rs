//! Inlined static chains (Chain::set_inlining): random chains of the test
//! components run with a generated root and with the compiled one, side by
//! side, and must agree on every packet's verdict and output, on every
//! component's maps and on the counters.
mod common;

use common::*;
use std::os::fd::{AsRawFd, BorrowedFd};
use xdpchain::{Chain, Component, Error, Mode, Verdict, Verdicts};

/// The library's messages on stderr, which the test harness shows when a
/// test fails: why a root was not generated, or a slot stays a call.
struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.target().starts_with("xdpchain") && m.level() <= log::Level::Debug
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            eprintln!("{}: {}", r.target(), r.args());
        }
    }
    fn flush(&self) {}
}

fn show_log() {
    static LOGGER: Stderr = Stderr;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}

/// (object, program, maps to compare by their names in the object)
fn pool() -> Vec<(
    std::path::PathBuf,
    Option<&'static str>,
    &'static [&'static str],
)> {
    let inliner = obj("inliner");
    let mut pool = vec![
        (obj("counter"), None, &["echo_requests", ".bss"][..]),
        (obj("filter"), None, &["xdp_stats_map", ".bss", ".data"][..]),
        (obj("verdict"), None, &[".bss", ".data"][..]),
        (obj("adjust"), None, &[][..]),
        (obj("core"), None, &[][..]),
        (inliner.clone(), Some("xdp_stack"), &[".bss"][..]),
        (inliner.clone(), Some("xdp_meta"), &[][..]),
        (obj("tailcall"), Some("xdp_jumper"), &[".bss"][..]),
    ];
    // bpf_loop came in Linux 5.17: before it the verifier refuses xdp_loop
    // in every form, and its error reaches the user.
    if kernel_at_least(5, 17) {
        pool.push((inliner, Some("xdp_loop"), &[".bss"][..]));
    } else {
        let mut chain = Chain::new();
        chain.set_mode(Mode::Static);
        chain
            .add(Component::from_file(&inliner, Some("xdp_loop")).unwrap())
            .unwrap();
        let err = chain.load().unwrap_err();
        assert!(
            matches!(&err, Error::Verifier { component, .. } if component.ends_with("inliner.o:xdp_loop")),
            "{err:?}"
        );
    }
    // XDP's dynptr kfuncs came in Linux 6.5: the 6.1 guest runs without.
    let btf = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
    if btf.windows(20).any(|w| w == b"bpf_dynptr_from_xdp\0") {
        pool.push((obj("kfunc"), None, &[".bss"][..]));
    } else {
        eprintln!("no bpf_dynptr_from_xdp in this kernel: no kfunc component");
    }
    pool
}

/// Every element of the map `fd`: its keys are u32 from 0 (arrays).
fn dump(fd: BorrowedFd<'_>) -> Vec<u8> {
    let mut info = libbpf_sys::bpf_map_info::default();
    let mut len = std::mem::size_of_val(&info) as u32;
    let rc = unsafe {
        libbpf_sys::bpf_map_get_info_by_fd(
            fd.as_raw_fd(),
            (&mut info as *mut libbpf_sys::bpf_map_info).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0);
    let per_cpu = info.type_ == libbpf_sys::BPF_MAP_TYPE_PERCPU_ARRAY;
    let cpus = unsafe { libbpf_sys::libbpf_num_possible_cpus() } as usize;
    let size = match per_cpu {
        true => (info.value_size as usize).next_multiple_of(8) * cpus,
        false => info.value_size as usize,
    };
    let mut out = vec![0u8; size * info.max_entries as usize];
    for (key, v) in out.chunks_mut(size.max(1)).enumerate() {
        lookup(fd, key as u32, v);
    }
    out
}

/// An object that `Chain::link` wrote, loaded by libbpf as any other
/// loader would: its root, and each map's contents by name (prog arrays,
/// which hold fds, left out).
struct Loaded(*mut libbpf_sys::bpf_object);

impl Loaded {
    fn new(bytes: &[u8], pins: &str) -> Loaded {
        let root = std::ffi::CString::new(pins).unwrap();
        let opts = libbpf_sys::bpf_object_open_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_object_open_opts>() as _,
            object_name: c"chain".as_ptr(),
            pin_root_path: root.as_ptr(),
            ..Default::default()
        };
        unsafe {
            let obj =
                libbpf_sys::bpf_object__open_mem(bytes.as_ptr().cast(), bytes.len() as _, &opts);
            assert!(!obj.is_null(), "libbpf opens the linked object");
            let loaded = Loaded(obj);
            assert_eq!(
                libbpf_sys::bpf_object__load(obj),
                0,
                "libbpf loads the linked object"
            );
            loaded
        }
    }

    fn root(&self) -> BorrowedFd<'_> {
        let name = std::ffi::CString::new("xdpchain_root").unwrap();
        unsafe {
            let p = libbpf_sys::bpf_object__find_program_by_name(self.0, name.as_ptr());
            BorrowedFd::borrow_raw(libbpf_sys::bpf_program__fd(p))
        }
    }

    fn maps(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut m = std::ptr::null_mut();
        loop {
            m = unsafe { libbpf_sys::bpf_object__next_map(self.0, m) };
            if m.is_null() {
                return out;
            }
            let name = unsafe { std::ffi::CStr::from_ptr(libbpf_sys::bpf_map__name(m)) };
            if unsafe { libbpf_sys::bpf_map__type(m) } != libbpf_sys::BPF_MAP_TYPE_PROG_ARRAY {
                let fd = unsafe { BorrowedFd::borrow_raw(libbpf_sys::bpf_map__fd(m)) };
                out.push((name.to_string_lossy().into_owned(), dump(fd)));
            }
        }
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        unsafe { libbpf_sys::bpf_object__close(self.0) }
    }
}

/// How many functions the program `fd` has (its func_info records).
fn functions(fd: BorrowedFd<'_>) -> u32 {
    let mut info = libbpf_sys::bpf_prog_info::default();
    let mut len = std::mem::size_of_val(&info) as u32;
    let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
    assert_eq!(rc, 0);
    info.nr_func_info
}

fn packets() -> Vec<Vec<u8>> {
    let mut out = vec![
        udp_packet(53),
        udp_packet(9999),
        udp_packet(7777),
        vec![0u8; 14],
    ];
    let mut tcp = udp_packet(80);
    tcp[23] = 6;
    out.push(tcp);
    let mut arp = udp_packet(0);
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    out.push(arp);
    let mut v6 = vec![0u8; 90];
    v6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    out.push(v6);
    let mut long = udp_packet(1234);
    long.resize(700, 0xab);
    out.push(long);
    out
}

#[test]
fn inlined_chains_run_as_linked_ones() {
    show_log();
    let mut rng = Rng::seeded("XDPCHAIN_INLINE_SEED", "inline differential");
    let pool = pool();
    let packets = packets();
    let pins = PinDir::new("inline");
    for round in 0..16 {
        // A random subset in a random order, random continue sets (empty
        // and all among them), counting on or off.
        let count = 1 + rng.next(pool.len() as u64) as usize;
        let mut picks: Vec<usize> = (0..pool.len()).collect();
        for i in (1..picks.len()).rev() {
            picks.swap(i, rng.next(i as u64 + 1) as usize);
        }
        picks.truncate(count);
        let sets: Vec<Verdicts> = picks
            .iter()
            .map(|_| match rng.next(4) {
                0 => Verdicts::default(),
                1 => Verdicts::parse("aborted,drop,pass,tx,redirect").unwrap(),
                _ => Verdict::ALL
                    .iter()
                    .filter(|_| rng.next(2) == 1)
                    .fold(Verdicts::default(), |s, v| s.with(*v)),
            })
            .collect();
        let counting = rng.next(2) == 1;
        let what = format!("round {round}: {picks:?} {sets:?} counting {counting}");
        let build = |inline: bool| {
            let mut chain = Chain::new();
            chain.set_mode(Mode::Static);
            chain.set_counting(counting);
            chain.set_inlining(inline);
            chain.set_pin_root(&pins.0);
            let ids: Vec<_> = picks
                .iter()
                .zip(&sets)
                .enumerate()
                .map(|(i, (&p, set))| {
                    let (path, prog, _) = &pool[p];
                    let c = Component::from_file(path, *prog).unwrap();
                    chain
                        .add(c.with_priority(i as i32).with_continue_on(*set))
                        .unwrap()
                })
                .collect();
            chain.load().unwrap_or_else(|e| panic!("{what}: {e}"));
            (chain, ids)
        };
        let (inlined, ids) = build(true);
        let (linked, _) = build(false);
        // Every component runs without a call but the tail caller, and
        // frames too deep to share the root's with what it calls, such as
        // the kfunc's dynptr beside a called 480-byte frame (those may
        // too, where the verifier finds that no verdict reaches them).
        // The compiled root calls at least its first.
        let st = inlined.status().unwrap();
        for (c, &p) in st.components.iter().zip(&picks) {
            let called = matches!(pool[p].1, Some("xdp_jumper" | "xdp_stack" | "xdp_loop"))
                || pool[p].0 == obj("kfunc");
            assert!(c.inlined.is_some(), "{what}: {}", c.name);
            assert!(c.inlined == Some(true) || called, "{what}: {}", c.name);
        }
        assert_eq!(linked.status().unwrap().components[0].inlined, Some(false));
        let (fa, fb) = (inlined.program_fd().unwrap(), linked.program_fd().unwrap());
        let mut results = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            results.push(run_packet(fa, p));
            assert_eq!(results[i], run_packet(fb, p), "{what}, packet {i}");
        }
        // The objects they write, as libbpf loads them: the same again,
        // and copied in as the library's own root is.
        let file_a = Loaded::new(&inlined.link().unwrap(), &pins.0);
        let file_b = Loaded::new(&linked.link().unwrap(), &pins.0);
        let copied = functions(fa) < functions(fb);
        assert_eq!(
            functions(file_a.root()) < functions(file_b.root()),
            copied,
            "{what}"
        );
        for (i, p) in packets.iter().enumerate() {
            let a = run_packet(file_a.root(), p);
            assert_eq!(
                a,
                run_packet(file_b.root(), p),
                "{what}, object, packet {i}"
            );
            assert_eq!(a, results[i], "{what}, object and chain, packet {i}");
        }
        let (maps_a, maps_b) = (file_a.maps(), file_b.maps());
        assert_eq!(maps_a.len(), maps_b.len(), "{what}");
        for ((name, a), (other, b)) in maps_a.iter().zip(&maps_b) {
            assert!(name == other && a == b, "{what}: the objects' map {name}");
        }
        for (id, &p) in ids.iter().zip(&picks) {
            for map in pool[p].2 {
                assert_eq!(
                    dump(inlined.map_fd(*id, map).unwrap()),
                    dump(linked.map_fd(*id, map).unwrap()),
                    "{what}: map {map} of {:?}",
                    pool[p].1
                );
            }
            assert_eq!(
                inlined.counters(*id).unwrap(),
                linked.counters(*id).unwrap(),
                "{what}: counters of {:?}",
                pool[p].1
            );
        }
    }
}

/// Adding, replacing and removing components rebuild an inlined chain:
/// the components that stay keep their maps and counters, and run copied in.
#[test]
fn rebuilds_keep_maps_and_counters() {
    show_log();
    let mut chain = Chain::new();
    chain.set_mode(Mode::Static);
    let counter = chain
        .add(Component::from_file(obj("counter"), None).unwrap())
        .unwrap();
    chain.load().unwrap();
    let fd = chain.program_fd().unwrap();
    for _ in 0..3 {
        run_packet(fd, &udp_packet(53));
    }
    let packets = |c: &Chain| read_u64(c.map_fd(counter, ".bss").unwrap(), 0);
    assert_eq!(packets(&chain), 3);
    let verdict = chain
        .add(
            Component::from_file(obj("verdict"), None)
                .unwrap()
                .with_priority(60),
        )
        .unwrap();
    chain
        .replace(verdict, Component::from_file(obj("adjust"), None).unwrap())
        .unwrap();
    run_packet(chain.program_fd().unwrap(), &udp_packet(53));
    assert_eq!(packets(&chain), 4);
    assert_eq!(chain.counters(counter).unwrap().packets(), 4);
    chain.remove(verdict).unwrap();
    run_packet(chain.program_fd().unwrap(), &udp_packet(53));
    assert_eq!(packets(&chain), 5);
    assert_eq!(chain.counters(counter).unwrap().packets(), 5);
    let st = chain.status().unwrap();
    assert_eq!(st.components.len(), 1);
    assert_eq!(st.components[0].inlined, Some(true));
}
