//! Dynamic chains: components as extension programs in a dispatcher's
//! slots. The machine's kernel refuses freplace, so here these tests check
//! the refusal; in the VM (tests/vm/run.sh, Linux 6.1) they check the chains.
mod common;

use common::*;
use xdpchain::{Chain, Component, Error, Mode, Verdict};

fn comp(name: &str) -> Component {
    Component::from_file(obj(name), None).unwrap()
}

/// Tests here count the kernel's extension programs: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The kernel's verdict on freplace, which the VM states it expects.
fn freplace() -> bool {
    let f = xdpchain::features().unwrap().freplace;
    if let Ok(expect) = std::env::var("XDPCHAIN_EXPECT_FREPLACE") {
        assert_eq!(
            f,
            expect == "1",
            "the freplace probe disagrees with XDPCHAIN_EXPECT_FREPLACE"
        );
    }
    f
}

/// Ids of the loaded extension programs (BPF_PROG_TYPE_EXT).
fn extension_ids() -> Vec<u32> {
    let mut ids = Vec::new();
    let mut id = 0u32;
    while unsafe { libbpf_sys::bpf_prog_get_next_id(id, &mut id) } == 0 {
        let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
        if fd < 0 {
            continue;
        }
        let mut info = libbpf_sys::bpf_prog_info::default();
        let mut len = std::mem::size_of_val(&info) as u32;
        unsafe {
            libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len);
            libc::close(fd);
        }
        if info.type_ == libbpf_sys::BPF_PROG_TYPE_EXT {
            ids.push(id);
        }
    }
    ids
}

/// Without freplace: dynamic chains are refused, auto ones static.
fn refused_here() {
    let mut chain = Chain::new();
    chain.set_mode(Mode::Dynamic);
    chain.add(comp("counter")).unwrap();
    match chain.load() {
        Err(e @ Error::Unsupported(_)) => assert!(e.to_string().contains("freplace"), "{e}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    let mut auto = Chain::new();
    auto.set_mode(Mode::Auto);
    auto.add(comp("counter")).unwrap();
    auto.load().unwrap();
    assert_eq!(auto.mode(), Mode::Static);
}

#[test]
fn modes_follow_the_kernel() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !freplace() {
        return refused_here();
    }
    let mut chain = Chain::new();
    chain.set_mode(Mode::Dynamic);
    chain.add(comp("counter")).unwrap();
    chain.load().unwrap();
    assert_eq!(chain.mode(), Mode::Dynamic);
    assert_eq!(chain.status().unwrap().kind, Mode::Dynamic);
    // Auto is dynamic where it can be, static for a component without BTF.
    let mut auto = Chain::new();
    auto.set_mode(Mode::Auto);
    auto.add(comp("counter")).unwrap();
    auto.load().unwrap();
    assert_eq!(auto.mode(), Mode::Dynamic);
    let plain = Component::from_file(compile("verdict", "_nog", &[]), None).unwrap();
    let mut auto = Chain::new();
    auto.set_mode(Mode::Auto);
    auto.add(plain.clone()).unwrap();
    auto.load().unwrap();
    assert_eq!(auto.mode(), Mode::Static);
    // Asked for dynamic, such a component is refused, and the chain stays.
    match chain.add(plain) {
        Err(e @ Error::Unsupported(_)) => assert!(e.to_string().contains("no BTF"), "{e}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert_eq!(chain.components().len(), 1);
}

#[test]
fn components_load_once_and_keep_their_state() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !freplace() {
        return refused_here();
    }
    let mut chain = Chain::new();
    chain.set_mode(Mode::Dynamic);
    let a = chain.add(comp("counter")).unwrap();
    chain.load().unwrap();
    for _ in 0..3 {
        chain.test_run(&udp_packet(1), 1).unwrap();
    }
    let before = extension_ids();
    // Adding a component loads (and verifies) only it; the other extension
    // program is the same kernel object, with its state.
    let b = chain.add(comp("filter").with_priority(60)).unwrap();
    let after = extension_ids();
    assert!(
        before.iter().all(|id| after.contains(id)),
        "{before:?} -> {after:?}"
    );
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(read_u64(chain.map_fd(a, ".bss").unwrap(), 0), 3);
    write_bytes(
        chain.map_fd(b, "filter_ports").unwrap(),
        4444,
        &1u32.to_le_bytes(),
    );
    assert_eq!(
        chain.test_run(&udp_packet(4444), 1).unwrap().0,
        Verdict::Drop as u32
    );
    assert_eq!(read_u64(chain.map_fd(a, ".bss").unwrap(), 0), 4);
    assert_eq!(chain.counters(a).unwrap().packets(), 4);
    // Removing one unloads it alone.
    chain.remove(a).unwrap();
    let left = extension_ids();
    assert_eq!(left.len(), before.len());
    assert_eq!(
        chain.test_run(&udp_packet(4444), 1).unwrap().0,
        Verdict::Drop as u32,
        "b's block list stays"
    );
}

#[test]
fn replace_slot_under_traffic() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !freplace() {
        return refused_here();
    }
    let net = VethPair::new();
    let mut chain = Chain::new();
    chain.set_mode(Mode::Dynamic);
    let counter = chain.add(comp("counter")).unwrap();
    let slot = chain.add(comp("verdict").with_priority(60)).unwrap();
    net.in_b(|| chain.attach(&net.dev_b, Default::default()))
        .unwrap();
    const SWAPS: u64 = 8;
    let requests = |chain: &Chain| read_u64(chain.map_fd(counter, "echo_requests").unwrap(), 0);
    let pinger = Pinger::start(&net.ns_a, "0.002");
    while requests(&chain) == 0 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let first = requests(&chain);
    // Swap the second slot back and forth while pings flow: the counter in
    // the first slot, never replaced, sees every request.
    for swap in 0..SWAPS {
        let next = if swap % 2 == 0 {
            comp("adjust")
        } else {
            comp("verdict")
        };
        net.in_b(|| chain.replace(slot, next)).unwrap();
    }
    let during = requests(&chain) - first;
    let received = ping_received(&pinger.stop());
    // A replacement loads and verifies an extension: many 2 ms pings long.
    assert!(during >= SWAPS, "{during} requests during {SWAPS} swaps");
    let counted = requests(&chain);
    assert!(
        counted >= received,
        "{counted} counted, {received} answered"
    );
    let st = chain.status().unwrap();
    assert_eq!(st.components.len(), 2);
    assert_eq!(st.components[1].id, slot.0);
    net.in_b(|| chain.detach()).unwrap();
}

#[test]
fn sixty_four_components() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !freplace() {
        return refused_here();
    }
    let o = obj("proprietary");
    let mut chain = Chain::new();
    chain.set_mode(Mode::Dynamic);
    for i in 0..xdpchain::MAX_COMPONENTS {
        chain
            .add(
                Component::from_file(&o, None)
                    .unwrap()
                    .with_priority(i as i32),
            )
            .unwrap();
    }
    chain.load().unwrap();
    assert_eq!(
        chain.test_run(&udp_packet(1), 1).unwrap().0,
        Verdict::Pass as u32
    );
    let st = chain.status().unwrap();
    assert_eq!(st.components.len(), 64);
    assert!(st
        .components
        .iter()
        .all(|c| c.counters.unwrap().packets() == 1));
}

/// Returns XDP_TX, goes on after XDP_PASS (as libxdp.rs builds it).
fn tx() -> Component {
    let o = compile(
        "ret",
        "_tx_b",
        &["-g", "-DNAME=xdp_tx_b", "-DRET=XDP_TX", "-DPRIO=30"],
    );
    Component::from_file(o, None).unwrap()
}

#[test]
fn open_static_chains_take_extensions_in_place() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let net = VethPair::new();
    let mut chain = Chain::new();
    chain.set_mode(Mode::Static);
    chain.set_spare_slots(Some(2));
    let counter = chain.add(comp("counter")).unwrap();
    let verdict = chain.add(comp("verdict")).unwrap();
    net.in_b(|| chain.attach(&net.dev_b, Default::default()))
        .unwrap();
    let run = |chain: &Chain, port| chain.test_run(&udp_packet(port), 1).unwrap().0;
    let prog = |chain: &Chain| chain.status().unwrap().program_id;
    let names = |chain: &Chain| -> Vec<String> {
        let st = chain.status().unwrap();
        st.components.iter().map(|c| c.name.clone()).collect()
    };
    // Empty spare slots go on; status does not list them.
    assert_eq!(run(&chain, 9999), Verdict::Pass as u32);
    assert_eq!(names(&chain), ["xdp_count", "xdp_verdict"]);
    let linked = prog(&chain);
    let ping = |n: u32| {
        let out = sh(&format!(
            "ip netns exec {} ping -q -c {n} -i 0.05 -W 2 198.18.0.2",
            net.ns_a
        ));
        assert_eq!(ping_received(&out), n as u64, "{out}");
    };
    ping(2);
    if !freplace() {
        // Without freplace nothing is plugged, and replace_slot relinks.
        match chain.plug(comp("filter")) {
            Err(e @ Error::Unsupported(_)) => assert!(e.to_string().contains("freplace"), "{e}"),
            other => panic!("expected Unsupported, got {other:?}"),
        }
        assert_eq!(prog(&chain), linked);
        net.in_b(|| chain.replace(verdict, tx())).unwrap();
        assert_ne!(prog(&chain), linked);
        assert_eq!(run(&chain, 1), Verdict::Tx as u32);
        net.in_b(|| chain.detach()).unwrap();
        return;
    }

    // A firewall plugged into a spare slot: same program, nothing relinked.
    let fw = chain.plug(comp("filter")).unwrap();
    assert_eq!(prog(&chain), linked);
    assert_eq!(run(&chain, 9999), Verdict::Drop as u32);
    assert_eq!(run(&chain, 1), Verdict::Pass as u32);
    assert_eq!(names(&chain), ["xdp_count", "xdp_verdict", "xdpfilt_udp"]);
    assert_eq!(chain.counters(fw).unwrap().packets(), 2);
    // Linked components run in the chain's program, the firewall in its own.
    let st = chain.status().unwrap();
    assert_eq!(st.components[0].program_id, Some(st.program_id));
    assert!(st.components[2]
        .program_id
        .is_some_and(|id| id != st.program_id));
    ping(3);
    assert_eq!(
        read_u64(chain.map_fd(counter, "echo_requests").unwrap(), 0),
        5
    );
    // Spare slots go on after XDP_PASS only.
    let err = chain.plug(comp("counter")).unwrap_err();
    assert!(err.to_string().contains("spare slots go on"), "{err}");

    // A linked component replaced in place by an extension.
    net.in_b(|| chain.replace(verdict, tx())).unwrap();
    assert_eq!(prog(&chain), linked);
    assert_eq!(run(&chain, 1), Verdict::Tx as u32);
    assert_eq!(names(&chain), ["xdp_count", "xdp_tx_b", "xdpfilt_udp"]);

    // The firewall's block list, in its extension, survives the rebuild
    // that a second replacement of the same slot takes.
    write_bytes(
        chain.map_fd(fw, "filter_ports").unwrap(),
        4444,
        &1u32.to_le_bytes(),
    );
    net.in_b(|| chain.replace(verdict, comp("verdict")))
        .unwrap();
    assert_ne!(prog(&chain), linked);
    assert_eq!(run(&chain, 4444), Verdict::Drop as u32);
    assert_eq!(run(&chain, 1), Verdict::Pass as u32);
    assert_eq!(
        read_u64(chain.map_fd(counter, "echo_requests").unwrap(), 0),
        5
    );
    // Linked in, the firewall runs by priority; two spare slots again.
    assert_eq!(names(&chain), ["xdp_count", "xdp_verdict", "xdpfilt_udp"]);
    chain.plug(comp("filter")).unwrap();
    chain.plug(comp("filter")).unwrap();
    let err = chain.plug(comp("filter")).unwrap_err();
    assert!(matches!(err, Error::TooManyComponents { .. }), "{err}");
    ping(2);
    net.in_b(|| chain.detach()).unwrap();
}
