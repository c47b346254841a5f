//! Static chains on the machine's own kernel: the rewriter on tricky objects,
//! verdict semantics through BPF_PROG_TEST_RUN, state kept across rebuilds,
//! licenses, and each error a user can cause.
mod common;

use common::*;
use xdpchain::{Chain, Component, Error, Mode, Verdict, Verdicts};

fn comp(path: &std::path::Path, prog: Option<&str>) -> Component {
    Component::from_file(path, prog).unwrap()
}

/// The chain's verdict on one packet (BPF_PROG_TEST_RUN).
fn verdict(chain: &Chain, packet: &[u8]) -> u32 {
    chain.test_run(packet, 1).unwrap().0
}

fn ipv6_packet() -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    p
}

#[test]
fn two_filters_with_clashing_names_link_and_run() {
    // Same global map, function and variable names in both objects.
    let a = compile("filter", "_p1", &["-g", "-DFILTER_PORT=1111"]);
    let b = compile("filter", "_p2", &["-g", "-DFILTER_PORT=2222"]);
    let mut chain = Chain::new();
    let ia = chain.add(comp(&a, None)).unwrap();
    let ib = chain.add(comp(&b, None)).unwrap();
    chain.load().unwrap();
    assert_eq!(verdict(&chain, &udp_packet(1111)), Verdict::Drop as u32);
    assert_eq!(verdict(&chain, &udp_packet(2222)), Verdict::Drop as u32);
    assert_eq!(verdict(&chain, &udp_packet(3333)), Verdict::Pass as u32);
    // Each keeps its own maps and globals, found by their original names.
    let stats_a = chain.map_fd(ia, "xdp_stats_map").unwrap();
    let stats_b = chain.map_fd(ib, "xdp_stats_map").unwrap();
    let drops = |fd| read_percpu_sum(fd, Verdict::Drop as u32);
    // Component a ran on all three packets and dropped one; b ran on the
    // two that a passed and dropped one.
    assert_eq!((drops(stats_a), drops(stats_b)), (1, 1));
    assert_eq!(read_u64(chain.map_fd(ia, ".bss").unwrap(), 0), 3);
    assert_eq!(read_u64(chain.map_fd(ib, ".bss").unwrap(), 0), 2);
    assert_eq!(read_u64(chain.map_fd(ia, ".data").unwrap(), 0) as u32, 1111);
    assert!(matches!(
        chain.map_fd(ia, "nope"),
        Err(Error::UnknownMap { .. })
    ));
    // Run order and counters as the kernel sees them.
    let st = chain.status().unwrap();
    let names: Vec<_> = st
        .components
        .iter()
        .map(|c| (c.id, c.counters.unwrap().packets()))
        .collect();
    assert_eq!(names, vec![(ia.0, 3), (ib.0, 2)]);
}

/// xdp-tools' own filter objects, as Debian ships them: every variant
/// defines the same global maps and functions. Chained, they must give the
/// verdict that running each alone (as its own loader would) predicts.
#[test]
fn real_xdp_filter_objects_chain() {
    let dir = corpus().join("libxdp1");
    let files = [
        "xdpfilt_dny_udp.o",
        "xdpfilt_dny_tcp.o",
        "xdpfilt_alw_all.o",
    ];
    let packets = [udp_packet(53), ipv6_packet()];
    // Their maps are pinned by name: under a directory of this test's own,
    // not where a real xdp-filter keeps them.
    let pin_dir = PinDir::new("xf");
    let pins = pin_dir.0.clone();
    let alone: Vec<Vec<u32>> = files
        .iter()
        .map(|f| {
            packets
                .iter()
                .map(|p| run_alone(&dir.join(f), None, p, &pins).0)
                .collect()
        })
        .collect();
    let mut chain = Chain::new();
    chain.set_pin_root(&pins);
    let ids: Vec<_> = files
        .iter()
        .map(|f| chain.add(comp(&dir.join(f), None)).unwrap())
        .collect();
    chain.load().unwrap();
    for (i, p) in packets.iter().enumerate() {
        // Each continues on PASS only (their XDP_RUN_CONFIG), in this order.
        let expect = alone
            .iter()
            .map(|v| v[i])
            .find(|&v| v != Verdict::Pass as u32)
            .unwrap_or(Verdict::Pass as u32);
        assert_eq!(verdict(&chain, p), expect, "packet {i}, alone: {alone:?}");
    }
    // The variants share their maps as their objects ask: through pins.
    let a = chain.map_fd(ids[0], "filter_ports").unwrap();
    let b = chain.map_fd(ids[1], "filter_ports").unwrap();
    assert_eq!(map_id(a), map_id(b));
    assert!(std::path::Path::new(&pins).join("filter_ports").exists());
}

/// An object in the shape of bpf-examples' pping (a tc and an XDP program,
/// each with a global function that takes its own context) chains its XDP
/// program in every mode, with the verdicts it gives alone; the tc program
/// and its function stay out of the chain's load (the verifier would check
/// the function as XDP code, and refuse it).
#[test]
fn objects_with_programs_of_other_types_chain_their_xdp_program() {
    let mixed = obj("mixed");
    let packets = [udp_packet(53), vec![0u8; 30]];
    let pins = PinDir::new("mixed");
    let mut chain = Chain::new();
    chain.set_pin_root(&pins.0);
    let m = chain.add(comp(&mixed, None)).unwrap();
    chain.add(comp(&obj("counter"), None)).unwrap();
    chain.load().unwrap();
    assert_eq!(chain.status().unwrap().components[1].name, "xdp_mixed");
    for (i, p) in packets.iter().enumerate() {
        let alone = run_alone(&mixed, Some("xdp_mixed"), p, &pins.0).0;
        assert_eq!(
            verdict(&chain, p),
            alone,
            "packet {i} in {:?}",
            chain.mode()
        );
    }
    assert_eq!(
        (verdict(&chain, &packets[0]), verdict(&chain, &packets[1])),
        (Verdict::Pass as u32, Verdict::Drop as u32)
    );
    // Four runs of xdp_mixed, none of tc_mixed (in either order in .bss).
    let mut bss = [0u8; 16];
    lookup(chain.map_fd(m, ".bss").unwrap(), 0, &mut bss);
    let mut runs = [0, 8].map(|at| u64::from_le_bytes(bss[at..at + 8].try_into().unwrap()));
    runs.sort();
    assert_eq!(runs, [0, 4]);
    let progs = sh("bpftool prog show");
    assert!(!progs.contains("tc_mixed"), "{progs}");
}

/// The verdict and output packet of the object's program `prog` (None:
/// its first), loaded alone by libbpf as its own loader would.
fn run_alone(
    path: &std::path::Path,
    prog: Option<&str>,
    packet: &[u8],
    pin_root: &str,
) -> (u32, Vec<u8>) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let root = std::ffi::CString::new(pin_root).unwrap();
    let opts = libbpf_sys::bpf_object_open_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_object_open_opts>() as _,
        pin_root_path: root.as_ptr(),
        ..Default::default()
    };
    unsafe {
        let obj = libbpf_sys::bpf_object__open_file(c.as_ptr(), &opts);
        assert!(!obj.is_null());
        assert_eq!(libbpf_sys::bpf_object__load(obj), 0, "{}", path.display());
        let p = match prog {
            Some(name) => {
                let name = std::ffi::CString::new(name).unwrap();
                libbpf_sys::bpf_object__find_program_by_name(obj, name.as_ptr())
            }
            None => libbpf_sys::bpf_object__next_program(obj, std::ptr::null_mut()),
        };
        assert!(!p.is_null(), "{} has no program {prog:?}", path.display());
        let fd = std::os::fd::BorrowedFd::borrow_raw(libbpf_sys::bpf_program__fd(p));
        let out = run_packet(fd, packet);
        libbpf_sys::bpf_object__close(obj);
        out
    }
}

fn map_id(fd: std::os::fd::BorrowedFd<'_>) -> u32 {
    let mut info = libbpf_sys::bpf_map_info::default();
    let mut len = std::mem::size_of_val(&info) as u32;
    let rc = unsafe {
        libbpf_sys::bpf_map_get_info_by_fd(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &mut info,
            &mut len,
        )
    };
    assert_eq!(rc, 0);
    info.id
}

/// Every combination of three verdicts, under 125 combinations of continue
/// sets, against a model of the semantics.
#[test]
fn verdict_matrix() {
    let obj = obj("verdict");
    let sets = [
        Verdicts::empty(),
        Verdicts::empty().with(Verdict::Pass),
        Verdicts::empty().with(Verdict::Drop),
        [Verdict::Pass, Verdict::Tx].into_iter().collect(),
        Verdict::ALL.into_iter().collect(),
    ];
    let pkt = udp_packet(1);
    let mut checked = 0;
    for c0 in sets {
        for c1 in sets {
            for c2 in sets {
                let conts = [c0, c1, c2];
                let mut chain = Chain::new();
                let ids: Vec<_> = (0..3)
                    .map(|i| {
                        chain
                            .add(
                                comp(&obj, None)
                                    .with_priority(i)
                                    .with_continue_on(conts[i as usize]),
                            )
                            .unwrap()
                    })
                    .collect();
                chain.load().unwrap();
                for v0 in Verdict::ALL {
                    for v1 in Verdict::ALL {
                        for v2 in Verdict::ALL {
                            let vs = [v0, v1, v2];
                            for (i, id) in ids.iter().enumerate() {
                                write_bytes(
                                    chain.map_fd(*id, ".data").unwrap(),
                                    0,
                                    &(vs[i] as u32).to_le_bytes(),
                                );
                            }
                            let expect = vs
                                .iter()
                                .zip(conts)
                                .find(|(v, c)| !c.contains(**v))
                                .map_or(Verdict::Pass, |(v, _)| *v);
                            let got = verdict(&chain, &pkt);
                            assert_eq!(
                                got, expect as u32,
                                "verdicts {vs:?} continue sets {conts:?}"
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 125 * 125);
}

#[test]
fn order_is_priority_then_name_and_run_config_is_read() {
    // counter.o declares priority 10 and continue on pass,drop in XDP_RUN_CONFIG.
    let counter = comp(&obj("counter"), None);
    assert_eq!(
        (
            counter.priority(),
            counter.continue_on().to_string().as_str()
        ),
        (10, "drop,pass")
    );
    let filter = comp(&obj("filter"), None);
    assert_eq!(
        (filter.priority(), filter.continue_on()),
        (50, Verdicts::empty().with(Verdict::Pass))
    );
    let mut chain = Chain::new();
    chain.add(filter.clone().with_priority(5)).unwrap();
    chain.add(counter).unwrap();
    chain
        .add(comp(&obj("verdict"), None).with_priority(5))
        .unwrap();
    let order: Vec<_> = chain
        .components()
        .iter()
        .map(|(_, c)| c.program().to_string())
        .collect();
    assert_eq!(order, ["xdp_verdict", "xdpfilt_udp", "xdp_count"]);
}

#[test]
fn maps_and_globals_survive_rebuilds() {
    let mut chain = Chain::new();
    let a = chain.add(comp(&obj("counter"), None)).unwrap();
    let b = chain
        .add(comp(
            &compile("filter", "_s", &["-g", "-DFILTER_PORT=1111"]),
            None,
        ))
        .unwrap();
    chain.load().unwrap();
    // A block list entry put in by the firewall's operator.
    write_bytes(
        chain.map_fd(b, "filter_ports").unwrap(),
        4444,
        &1u32.to_le_bytes(),
    );
    for _ in 0..5 {
        chain.test_run(&udp_packet(4444), 1).unwrap();
    }
    assert_eq!(read_u64(chain.map_fd(a, ".bss").unwrap(), 0), 5);
    let before_b = read_u64(chain.map_fd(b, ".bss").unwrap(), 0);
    assert_eq!(before_b, 5);

    // A, B -> A, B, C: nothing lost, and the block list still blocks.
    let c = chain
        .add(comp(&obj("verdict"), None).with_priority(90))
        .unwrap();
    assert_eq!(read_u64(chain.map_fd(a, ".bss").unwrap(), 0), 5);
    assert_eq!(read_u64(chain.map_fd(b, ".bss").unwrap(), 0), 5);
    assert_eq!(verdict(&chain, &udp_packet(4444)), Verdict::Drop as u32);
    assert_eq!(chain.counters(a).unwrap().packets(), 6);
    assert_eq!(
        chain.counters(c).unwrap().packets(),
        0,
        "a new component starts at zero"
    );

    // A, B, C -> A, C.
    chain.remove(b).unwrap();
    assert_eq!(read_u64(chain.map_fd(a, ".bss").unwrap(), 0), 6);
    assert_eq!(verdict(&chain, &udp_packet(4444)), Verdict::Pass as u32);
    assert_eq!(read_u64(chain.map_fd(a, ".bss").unwrap(), 0), 7);
    assert_eq!(chain.counters(a).unwrap().packets(), 7);
    assert_eq!(chain.counters(c).unwrap().packets(), 1);

    // A removed and re-added is a new component: fresh state.
    chain.remove(a).unwrap();
    let a2 = chain.add(comp(&obj("counter"), None)).unwrap();
    assert_eq!(read_u64(chain.map_fd(a2, ".bss").unwrap(), 0), 0);
    assert_eq!(chain.counters(a2).unwrap().packets(), 0);
}

#[test]
fn several_programs_tail_call_and_subprograms() {
    let multi = obj("multi");
    match Component::from_file(&multi, None) {
        Err(Error::AmbiguousProgram { available, .. }) => {
            assert_eq!(available.len(), 3, "{available:?}");
            assert!(available.iter().any(|p| p == "xdp_entry"));
        }
        other => panic!("expected AmbiguousProgram, got {other:?}"),
    }
    let mut chain = Chain::new();
    let m = chain.add(comp(&multi, Some("xdp_entry"))).unwrap();
    chain
        .add(comp(
            &compile("filter", "_t", &["-g", "-DFILTER_PORT=1111"]),
            None,
        ))
        .unwrap();
    chain.load().unwrap();
    assert_eq!(
        verdict(&chain, &udp_packet(7777)),
        Verdict::Drop as u32,
        "dropped by the tail-called program"
    );
    assert_eq!(
        verdict(&chain, &udp_packet(1111)),
        Verdict::Drop as u32,
        "dropped by the next component"
    );
    assert_eq!(verdict(&chain, &udp_packet(80)), Verdict::Pass as u32);
    assert_eq!(
        read_u64(chain.map_fd(m, ".bss").unwrap(), 0),
        3,
        "the tail call ran each time"
    );
}

#[test]
fn core_relocations_against_kernel_types() {
    let mut chain = Chain::new();
    chain.add(comp(&obj("core"), None)).unwrap();
    chain.add(comp(&obj("counter"), None)).unwrap();
    chain.load().unwrap();
    assert_eq!(verdict(&chain, &ipv6_packet()), Verdict::Drop as u32);
    assert_eq!(verdict(&chain, &udp_packet(1)), Verdict::Pass as u32);
}

#[test]
fn objects_without_debug_info_chain_with_others() {
    let plain = compile("verdict", "_nog", &[]);
    let mut chain = Chain::new();
    let v = chain.add(comp(&plain, None).with_priority(1)).unwrap();
    let f = chain
        .add(comp(
            &compile("filter", "_g", &["-g", "-DFILTER_PORT=1111"]),
            None,
        ))
        .unwrap();
    let v2 = chain.add(comp(&plain, None).with_priority(99)).unwrap();
    chain.load().unwrap();
    assert_eq!(verdict(&chain, &udp_packet(1111)), Verdict::Drop as u32);
    write_bytes(
        chain.map_fd(v, ".data").unwrap(),
        0,
        &(Verdict::Tx as u32).to_le_bytes(),
    );
    assert_eq!(verdict(&chain, &udp_packet(5)), Verdict::Tx as u32);
    assert_eq!(
        read_u64(chain.map_fd(f, ".bss").unwrap(), 0),
        1,
        "the filter did not run after TX"
    );
    assert_eq!(read_u64(chain.map_fd(v2, ".bss").unwrap(), 0), 0);
}

#[test]
fn linked_object_has_one_xdp_program_and_honest_license() {
    use object::{Object, ObjectSection, ObjectSymbol};
    let gpl = compile("filter", "_l", &["-g"]);
    let mut chain = Chain::new();
    chain.add(comp(&gpl, None)).unwrap();
    chain.add(comp(&obj("counter"), None)).unwrap();
    let bytes = chain.link().unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    let progs: Vec<_> = file
        .symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text)
        .filter(|s| {
            s.section_index()
                .and_then(|i| file.section_by_index(i).ok())
                .is_some_and(|sec| sec.name().unwrap().starts_with("xdp"))
        })
        .map(|s| s.name().unwrap().to_string())
        .collect();
    assert_eq!(progs, vec!["xdpchain_root"]);
    let license = |bytes: &[u8]| {
        let f = object::File::parse(bytes).unwrap();
        let d = f
            .section_by_name("license")
            .unwrap()
            .data()
            .unwrap()
            .to_vec();
        String::from_utf8(d.split(|&c| c == 0).next().unwrap().to_vec()).unwrap()
    };
    assert_eq!(
        license(&bytes),
        "GPL",
        "GPL and Dual BSD/GPL together are GPL"
    );

    chain.add(comp(&obj("proprietary"), None)).unwrap();
    let bytes = chain.link().unwrap();
    assert_eq!(
        license(&bytes),
        "Proprietary",
        "one non-GPL component makes the chain non-GPL"
    );
    chain.load().unwrap();
}

#[test]
fn counting_off_has_no_counting_code() {
    let xlated = |mode: Mode, counting: bool| {
        let mut chain = Chain::new();
        chain.set_mode(mode);
        chain.set_counting(counting);
        chain.add(comp(&obj("verdict"), None)).unwrap();
        chain.load().unwrap();
        let mut info = libbpf_sys::bpf_prog_info::default();
        let mut len = std::mem::size_of_val(&info) as u32;
        let fd = chain.program_fd().unwrap();
        assert_eq!(
            unsafe {
                libbpf_sys::bpf_prog_get_info_by_fd(
                    std::os::fd::AsRawFd::as_raw_fd(&fd),
                    &mut info,
                    &mut len,
                )
            },
            0
        );
        let st = chain.status().unwrap();
        assert_eq!(st.components[0].counters.is_some(), counting);
        info.xlated_prog_len
    };
    for mode in [Mode::Static, Mode::Auto] {
        let (on, off) = (xlated(mode, true), xlated(mode, false));
        assert!(
            off < on,
            "{mode:?}: counting off: {off} bytes, on: {on} bytes"
        );
    }
    // A static root and this tiny component together: a config load, one
    // call, the continue check and the component's own few instructions.
    // (A dispatcher also keeps its 64 slot functions, off the packet path.)
    let off = xlated(Mode::Static, false);
    assert!(off <= 40 * 8, "root plus one tiny component is {off} bytes");
}

#[test]
fn not_elf_not_bpf_no_xdp_unknown_program() {
    let dir = repo().join("target/test-bpf");
    let text = dir.join(format!("notelf.{}.o", std::process::id()));
    std::fs::write(&text, b"just text\n").unwrap();
    assert!(matches!(
        Component::from_file(&text, None),
        Err(Error::NotElf { .. })
    ));
    let host = std::env::current_exe().unwrap();
    match Component::from_file(&host, None) {
        Err(e @ Error::NotBpf { .. }) => assert!(e.to_string().contains("not BPF"), "{e}"),
        other => panic!("expected NotBpf, got {other:?}"),
    }
    match Component::from_file(obj("tc"), None) {
        Err(e @ Error::NoXdpProgram { .. }) => {
            assert!(e.to_string().contains("no XDP program"), "{e}")
        }
        other => panic!("expected NoXdpProgram, got {other:?}"),
    }
    match Component::from_file(obj("filter"), Some("nope")) {
        Err(e @ Error::UnknownProgram { .. }) => {
            assert!(
                e.to_string()
                    .contains("no XDP program named 'nope' (has: xdpfilt_udp)"),
                "{e}"
            )
        }
        other => panic!("expected UnknownProgram, got {other:?}"),
    }
    assert!(matches!(
        Component::from_file(dir.join("missing.o"), None),
        Err(Error::Os { .. })
    ));
}

#[test]
fn verifier_rejection_names_the_component_and_changes_nothing() {
    let mut chain = Chain::new();
    let good = chain.add(comp(&obj("counter"), None)).unwrap();
    chain.load().unwrap();
    chain.test_run(&udp_packet(1), 1).unwrap();
    let err = chain.add(comp(&obj("bad"), None)).unwrap_err();
    match &err {
        Error::Verifier { component, log, .. } => {
            assert!(
                component.contains("bad") && component.ends_with(":xdp_unchecked"),
                "{component}"
            );
            assert!(log.contains("invalid access to packet"), "{log}");
        }
        other => panic!("expected Verifier, got {other:?}"),
    }
    // The chain as it was: one component, still loaded, state intact.
    assert_eq!(chain.components().len(), 1);
    assert_eq!(read_u64(chain.map_fd(good, ".bss").unwrap(), 0), 1);
    assert_eq!(verdict(&chain, &udp_packet(1)), Verdict::Pass as u32);
}

#[test]
fn unknown_interface() {
    let mut chain = Chain::new();
    chain.add(comp(&obj("counter"), None)).unwrap();
    let err = chain
        .attach("xdpc-nonexistent", Default::default())
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownInterface(ref n) if n == "xdpc-nonexistent"),
        "{err:?}"
    );
    assert!(matches!(
        xdpchain::status("999999"),
        Err(Error::UnknownInterface(_))
    ));
}

#[test]
fn too_many_components() {
    // A component without maps: the kernel allows a program 64 maps in all.
    let o = obj("proprietary");
    let mut chain = Chain::new();
    for _ in 0..xdpchain::MAX_COMPONENTS {
        chain.add(comp(&o, None)).unwrap();
    }
    assert!(matches!(
        chain.add(comp(&o, None)),
        Err(Error::TooManyComponents { .. })
    ));
    chain.load().unwrap();
    assert_eq!(verdict(&chain, &udp_packet(1)), Verdict::Pass as u32);
    assert_eq!(chain.status().unwrap().components.len(), 64);
}

#[test]
fn old_section_names_load_as_xdp() {
    // One program in a section libbpf 1.x no longer types: it is the one.
    let one = comp(&obj("oldsec"), None);
    assert_eq!(one.program(), "xdp_patch_ports_prog");
    // Two: named, either runs; unnamed, the choice is the user's.
    let two = compile("oldsec", "_two", &["-g", "-DTWO"]);
    match Component::from_file(&two, None) {
        Err(Error::AmbiguousProgram { mut available, .. }) => {
            available.sort();
            assert_eq!(available, ["xdp_patch_ports_prog", "xdp_prog_simple"]);
        }
        other => panic!(
            "expected AmbiguousProgram, got {:?}",
            other.map(|c| c.program().to_string())
        ),
    }
    // After a counter, in this test's mode: TX from the old-style program;
    // the other program of its object, in a section of its own, stays out.
    let mut chain = Chain::new();
    chain.add(comp(&obj("counter"), None)).unwrap();
    let ports = chain.add(comp(&two, Some("xdp_patch_ports_prog"))).unwrap();
    chain.load().unwrap();
    assert_eq!(verdict(&chain, &udp_packet(53)), Verdict::Tx as u32);
    assert_eq!(read_u64(chain.map_fd(ports, ".bss").unwrap(), 0), 1);
    let mut alone = Chain::new();
    alone.add(comp(&two, Some("xdp_prog_simple"))).unwrap();
    alone.load().unwrap();
    assert_eq!(verdict(&alone, &udp_packet(53)), Verdict::Drop as u32);
}

#[test]
fn version_sections_of_old_sources_do_not_clash() {
    // libbpf's linker takes one `version` text across its inputs: two
    // components built for different kernels failed to link.
    let mut chain = Chain::new();
    for (variant, version) in [("_v5", "0x050a00"), ("_v6", "0x060100")] {
        let flags = ["-g".to_string(), format!("-DVERSION={version}")];
        let o = compile("oldsec", variant, &[&flags[0], &flags[1]]);
        chain.add(comp(&o, None)).unwrap();
    }
    chain.load().unwrap();
    assert_eq!(verdict(&chain, &udp_packet(53)), Verdict::Tx as u32);
}

#[test]
fn objects_are_configured_before_loading() {
    let path = obj("configured");
    // As shipped, its map has no size: the kernel refuses it.
    let mut raw = Chain::new();
    raw.add(comp(&path, None)).unwrap();
    assert!(raw.load().is_err());
    // Configured as its loader would: a verdict, a slot, a size.
    let c = comp(&path, None)
        .with_global_int("cfg_verdict", Verdict::Drop as i128)
        .unwrap()
        .with_global("cfg_slot", &3u16.to_le_bytes())
        .unwrap()
        .with_map_size("hits", 4)
        .unwrap();
    let mut chain = Chain::new();
    let id = chain.add(c).unwrap();
    chain.load().unwrap();
    assert_eq!(verdict(&chain, &udp_packet(53)), Verdict::Drop as u32);
    assert_eq!(read_u64(chain.map_fd(id, "hits").unwrap(), 3), 1);
    // What does not fit is refused, naming the component.
    let c = comp(&path, None);
    let err = c
        .clone()
        .with_global_int("cfg_slot", 70000)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("configured.o:xdp_configured") && err.contains("does not fit"),
        "{err}"
    );
    let err = c
        .clone()
        .with_global("cfg_verdict", &[1])
        .unwrap_err()
        .to_string();
    assert!(err.contains("4 bytes"), "{err}");
    let err = c.clone().with_map_size("nope", 1).unwrap_err().to_string();
    assert!(err.contains("no map 'nope'"), "{err}");
    let err = c.with_global_int("nope", 1).unwrap_err().to_string();
    assert!(err.contains("no global variable 'nope'"), "{err}");
}

#[test]
fn tail_calls_return_to_the_chain() {
    // [jumper: goes on after DROP only, which its tail call returns; TX].
    let jumper = || {
        comp(&obj("tailcall"), Some("xdp_jumper"))
            .with_continue_on(Verdicts::empty().with(Verdict::Drop))
    };
    let tx = |path: &std::path::Path| {
        comp(path, None)
            .with_global_int("verdict", Verdict::Tx as i128)
            .unwrap()
            .with_priority(90)
    };
    let mut chain = Chain::new();
    let j = chain.add(jumper()).unwrap();
    chain.add(tx(&obj("verdict"))).unwrap();
    chain.load().unwrap();
    assert_eq!(
        verdict(&chain, &udp_packet(53)),
        Verdict::Tx as u32,
        "{:?}",
        chain.mode()
    );
    // Before 6.1 the kernel refuses the jumper's prog array to an extension
    // (it holds XDP programs): auto builds the chain static, and says why.
    let why = chain.status().unwrap().not_dynamic;
    let auto = std::env::var("XDPCHAIN_MODE").map_or(true, |m| m == "auto");
    if !kernel_at_least(6, 1) && auto && xdpchain::features().unwrap().freplace {
        assert_eq!(chain.mode(), Mode::Static);
        assert!(
            why.as_deref()
                .is_some_and(|w| w.contains("tailcall.o:xdp_jumper")),
            "{why:?}"
        );
    } else {
        assert_eq!(why, None);
    }
    assert_eq!(read_u64(chain.map_fd(j, ".bss").unwrap(), 0), 1);

    // Beside a component without BTF func info, none keeps its own, and
    // the kernel allows tail calls in subprograms only with it: refused up
    // front, naming both (such a chain can only be static).
    let mut chain = Chain::new();
    chain.add(jumper()).unwrap();
    chain.add(tx(&compile("verdict", "_nobtf", &[]))).unwrap();
    match chain.load() {
        Err(e @ Error::Unsupported(_)) => {
            let e = e.to_string();
            assert!(
                e.contains(":xdp_jumper makes tail calls") && e.contains("verdict_nobtf.o"),
                "{e}"
            )
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn a_gpl_only_helper_and_a_non_gpl_licence_do_not_link() {
    let gpl = || comp(&obj("gplonly"), None);
    let prop = || comp(&obj("proprietary"), None);
    // Linked, the chain has one licence, Proprietary: refused before the
    // kernel sees it, naming both components and the way out.
    let mut chain = Chain::new();
    chain.set_mode(Mode::Static);
    chain.add(gpl()).unwrap();
    chain.add(prop()).unwrap();
    match chain.link() {
        Err(e @ Error::Unsupported(_)) => {
            let e = e.to_string();
            for part in [
                "gplonly.o:xdp_printk",
                "bpf_trace_printk",
                "proprietary.o:xdp_prop",
                "dynamic",
            ] {
                assert!(e.contains(part), "{part} not in: {e}");
            }
        }
        other => panic!("expected Unsupported, got {:?}", other.map(|b| b.len())),
    }
    // Each alone links and runs; a dynamic chain keeps each licence.
    let mut alone = Chain::new();
    alone.set_mode(Mode::Static);
    alone.add(gpl()).unwrap();
    alone.load().unwrap();
    assert_eq!(verdict(&alone, &udp_packet(53)), Verdict::Pass as u32);
    if xdpchain::features().unwrap().freplace {
        let mut dynamic = Chain::new();
        dynamic.set_mode(Mode::Dynamic);
        dynamic.add(gpl()).unwrap();
        dynamic.add(prop()).unwrap();
        dynamic.load().unwrap();
        assert_eq!(verdict(&dynamic, &udp_packet(53)), Verdict::Pass as u32);
    }
}

/// Every XDP program in the objects that Debian's packages ship (libxdp1:
/// xdp-filter's, xdpdump's, AF_XDP's default program; xdp-tests: its test
/// programs), fetched by tests/corpus/fetch.sh, each chained between two
/// counters: on every test packet it gives the verdict and leaves the
/// packet that it gives and leaves alone, as its own loader would run it.
/// The two objects that cannot be chained say why.
#[test]
fn debian_shipped_programs_chain_as_they_run_alone() {
    let pin_dir = PinDir::new("corpus");
    let mut tcp = udp_packet(80);
    tcp[23] = 6;
    let mut arp = udp_packet(0);
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let packets = [udp_packet(53), udp_packet(7777), tcp, arp, ipv6_packet()];
    let mut chained = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(corpus())
        .unwrap()
        .flatten()
        .filter(|d| d.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let programs = match (name.as_str(), Component::from_file(&path, None)) {
            // libxdp's own dispatcher: its programs are the protocol's, not
            // a component (we speak its protocol instead; see libxdp.rs).
            ("xdp-dispatcher.o", Err(Error::AmbiguousProgram { .. })) => continue,
            // xdpdump's tracing programs (fentry/fexit), no XDP program.
            ("xdpdump_bpf.o", Err(Error::NoXdpProgram { .. })) => continue,
            (_, Ok(c)) => vec![c.program().to_string()],
            (_, Err(Error::AmbiguousProgram { available, .. })) => available,
            (_, Err(e)) => panic!("{name}: {e}"),
        };
        for prog in programs {
            let mut chain = Chain::new();
            chain.set_pin_root(&pin_dir.0);
            chain.add(comp(&obj("counter"), None)).unwrap();
            let c = Component::from_file(&path, Some(&prog)).unwrap();
            chain.add(c.with_priority(50)).unwrap();
            chain
                .add(comp(&obj("counter"), None).with_priority(90))
                .unwrap();
            chain
                .load()
                .unwrap_or_else(|e| panic!("{name}:{prog} does not chain: {e}"));
            let fd = chain.program_fd().unwrap();
            for (i, p) in packets.iter().enumerate() {
                let alone = run_alone(&path, Some(&prog), p, &pin_dir.0);
                let (verdict, out) = run_packet(fd, p);
                // A pass goes on to the last counter, which passes too.
                assert_eq!(verdict, alone.0, "{name}:{prog}, packet {i}");
                assert_eq!(out, alone.1, "{name}:{prog}, packet {i}");
            }
            chained.push(format!("{name}:{prog}"));
        }
    }
    assert!(
        chained.len() >= 16,
        "only {} programs found: {chained:?}",
        chained.len()
    );
}
