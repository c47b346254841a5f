//! Dumps of one component's packets: the exact bytes it receives, and
//! those it leaves with its verdict, in generated, compiled and dynamic
//! roots (in the guests), from test runs and from real traffic.
mod common;

use std::time::Duration;

use common::*;
use xdpchain::{
    AttachOptions, Chain, Component, ComponentId, Dump, DumpPoint, Error, Mode, Verdict,
};

/// counter (passes), rewrite (flips byte 63), verdict (passes), attached
/// on b's end.
fn chain_on(v: &VethPair, configure: impl FnOnce(&mut Chain)) -> Chain {
    let mut chain = Chain::new();
    configure(&mut chain);
    for name in ["counter", "rewrite", "verdict"] {
        chain
            .add(Component::from_file(obj(name), None).unwrap())
            .unwrap();
    }
    v.in_b(|| chain.attach(&v.dev_b, AttachOptions::default()))
        .unwrap();
    chain
}

fn packet() -> Vec<u8> {
    let mut p = udp_packet(4242);
    p.resize(80, 0);
    for (i, b) in p.iter_mut().enumerate().skip(42) {
        *b = i as u8;
    }
    p
}

fn next(d: &mut Dump) -> xdpchain::Packet {
    d.next(Duration::from_secs(5))
        .unwrap()
        .expect("a packet dumped")
}

/// Dumps copy packets with bpf_xdp_load_bytes (Linux 5.18): before it, a
/// dump is refused and names what is missing, and the chain runs on.
fn refused_before_5_18(v: &VethPair, chain: &mut Chain) -> bool {
    if kernel_at_least(5, 18) {
        return false;
    }
    let err = v
        .in_b(|| Dump::start(&v.dev_b, ComponentId(0), DumpPoint::Entry, 64))
        .err();
    assert!(
        matches!(&err, Some(Error::Unsupported(m)) if m.contains("bpf_xdp_load_bytes")),
        "{err:?}"
    );
    assert_eq!(
        chain.test_run(&packet(), 1).unwrap().0,
        Verdict::Pass as u32
    );
    v.in_b(|| chain.detach()).unwrap();
    true
}

fn dumps(configure: impl FnOnce(&mut Chain)) {
    let v = VethPair::new();
    let mut chain = chain_on(&v, configure);
    if refused_before_5_18(&v, &mut chain) {
        return;
    }
    let sent = packet();
    let mut rewritten = sent.clone();
    rewritten[63] ^= 0xff;

    // What rewrite receives is what was sent; what it leaves, rewritten,
    // with its verdict; so is what verdict receives.
    for (component, at, want, verdict) in [
        ("xdp_rewrite", DumpPoint::Entry, &sent, None),
        (
            "xdp_rewrite",
            DumpPoint::Exit,
            &rewritten,
            Some(Verdict::Pass as u32),
        ),
        ("xdp_verdict", DumpPoint::Entry, &rewritten, None),
        ("xdp_count", DumpPoint::Entry, &sent, None),
    ] {
        let mut d = v
            .in_b(|| Dump::start(&v.dev_b, component, at, 2048))
            .unwrap();
        for _ in 0..3 {
            assert_eq!(chain.test_run(&sent, 1).unwrap().0, Verdict::Pass as u32);
        }
        for _ in 0..3 {
            let p = next(&mut d);
            assert_eq!(
                (&p.data, p.len, p.verdict),
                (want, 80, verdict),
                "{component} {at:?}"
            );
        }
        assert_eq!(d.next(Duration::from_millis(100)).unwrap(), None);
        // One dump at a time.
        let err = v
            .in_b(|| Dump::start(&v.dev_b, "xdp_count", DumpPoint::Entry, 64))
            .err();
        assert!(matches!(err, Some(Error::DumpBusy { .. })), "{err:?}");
        drop(d);
    }

    // Real traffic, cut to a snap length: echo requests as counter gets
    // them (rewrite spoils their checksums: no replies come).
    let mut d = v
        .in_b(|| Dump::start(&v.dev_b, ComponentId(0), DumpPoint::Entry, 34))
        .unwrap();
    ping_in_background(&v.ns_a, 5, "0.02").join().unwrap();
    let mut echoes = 0;
    let mut seen = Vec::new();
    while let Some(p) = d.next(Duration::from_millis(500)).unwrap() {
        seen.push(p.clone());
        assert_eq!(p.data.len(), 34.min(p.len as usize));
        // IPv4, ICMP
        if p.data[12..14] == [8, 0] && p.data[23] == 1 {
            echoes += 1;
        }
    }
    assert_eq!(echoes, 5, "{seen:?}");
    assert_eq!(d.lost(), 0);
    drop(d);

    // Nothing dumped once the dump is gone.
    chain.test_run(&sent, 1).unwrap();
    let err = v
        .in_b(|| Dump::start(&v.dev_b, "no_such", DumpPoint::Entry, 64))
        .err();
    assert!(matches!(err, Some(Error::UnknownComponent(_))), "{err:?}");
    let err = v
        .in_b(|| Dump::start(&v.dev_b, ComponentId(0), DumpPoint::Entry, 0))
        .err();
    assert!(matches!(err, Some(Error::InvalidArgument(_))), "{err:?}");
    v.in_b(|| chain.detach()).unwrap();
}

#[test]
fn dumps_in_the_default_mode() {
    dumps(|_| {});
}

#[test]
fn dumps_in_a_generated_static_root() {
    dumps(|c| {
        c.set_mode(Mode::Static);
        c.set_inlining(true);
    });
}

/// The generated root keeps its components inlined with dumps in it.
#[test]
fn a_generated_root_that_dumps_still_inlines() {
    let v = VethPair::new();
    let mut chain = chain_on(&v, |c| c.set_mode(Mode::Static));
    let st = chain.status().unwrap();
    assert!(
        st.components.iter().all(|c| c.inlined == Some(true)),
        "{st:?}"
    );
    v.in_b(|| chain.detach()).unwrap();
}

#[test]
fn dumps_in_a_compiled_static_root() {
    dumps(|c| {
        c.set_mode(Mode::Static);
        c.set_inlining(false);
    });
}

#[test]
fn a_chain_without_counters_cannot_dump() {
    let v = VethPair::new();
    let mut chain = chain_on(&v, |c| c.set_counting(false));
    if refused_before_5_18(&v, &mut chain) {
        return;
    }
    let err = v
        .in_b(|| Dump::start(&v.dev_b, ComponentId(0), DumpPoint::Entry, 64))
        .err();
    assert!(matches!(err, Some(Error::NotCounting { .. })), "{err:?}");
    v.in_b(|| chain.detach()).unwrap();
}
