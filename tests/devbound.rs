//! Device-bound chains: a component that reads XDP RX metadata through
//! kfuncs (tests/bpf/rxhash.bpf.c: it passes a packet only when the driver
//! answers its RX hash) binds the chain to its interface, in every mode and
//! layout. Real traffic through a veth pair, whose driver answers; 6.1 has
//! no metadata kfuncs, and the error says so.
mod common;

use common::*;
use xdpchain::{AttachOptions, Chain, Component, Error, Layout, Store};

fn comp(name: &str) -> Component {
    Component::from_file(obj(name), None).unwrap()
}

/// Metadata kfuncs came in Linux 6.3.
fn has_metadata_kfuncs() -> bool {
    kernel_at_least(6, 3)
}

fn ping(net: &VethPair, n: u32) {
    let out = sh(&format!(
        "ip netns exec {} ping -c {n} -i 0.05 -W 2 198.18.0.2",
        net.ns_a
    ));
    assert!(out.contains(&format!("{n} received")), "{out}");
}

/// The RX hash component's counts of packets it hashed and could not.
fn hashes(bss: std::os::fd::BorrowedFd<'_>) -> (u64, u64) {
    let mut v = [0u8; 16];
    lookup(bss, 0, &mut v);
    let at = |i: usize| u64::from_le_bytes(v[i..i + 8].try_into().unwrap());
    (at(0), at(8))
}

fn no_xdp(net: &VethPair) -> bool {
    !sh(&format!("ip -n {} link show {}", net.ns_b, net.dev_b)).contains("prog/xdp")
}

#[test]
fn a_component_that_reads_rx_metadata_binds_the_chain() {
    let rxhash = comp("rxhash");
    assert!(rxhash.device_bound() && !comp("counter").device_bound());
    let net = VethPair::new();
    let mut chain = Chain::new();
    let hash = chain.add(rxhash).unwrap();
    let counter = chain.add(comp("counter")).unwrap();
    chain.add(comp("verdict")).unwrap();
    let attach = |chain: &mut Chain, net: &VethPair| {
        net.in_b(|| chain.attach(&net.dev_b, AttachOptions::default()))
    };
    if !has_metadata_kfuncs() {
        match attach(&mut chain, &net) {
            Err(e @ Error::Unsupported(_)) => {
                let e = e.to_string();
                assert!(
                    e.contains("rxhash.o:xdp_rxhash calls bpf_xdp_metadata_rx_hash")
                        && e.contains("Linux 6.3"),
                    "{e}"
                );
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }
        assert!(no_xdp(&net));
        return;
    }
    // Bound to what it attaches to: it cannot load for no interface.
    let err = chain.load().unwrap_err().to_string();
    assert!(err.contains("attach the chain"), "{err}");
    attach(&mut chain, &net).unwrap();
    ping(&net, 5);
    let bss = || chain.map_fd(hash, ".bss").unwrap();
    assert_eq!(hashes(bss()).1, 0, "the driver answered every packet");
    assert!(hashes(bss()).0 >= 5);
    // Every component ran on every packet.
    let ran = |chain: &Chain| -> Vec<u64> {
        let st = chain.status().unwrap();
        st.components
            .iter()
            .map(|c| c.counters.unwrap().packets())
            .collect()
    };
    assert!(ran(&chain).iter().all(|&n| n >= 5), "{:?}", ran(&chain));
    assert!(chain.status().unwrap().device_bound);

    // Adding and removing keep the binding (in the interface's namespace,
    // where the kernel looks its index up).
    let filter = net.in_b(|| chain.add(comp("filter"))).unwrap();
    net.in_b(|| chain.remove(counter)).unwrap();
    ping(&net, 3);
    assert!(hashes(chain.map_fd(hash, ".bss").unwrap()).0 >= 8);
    net.in_b(|| chain.remove(filter)).unwrap();
    // It stays bound once the RX hash component is gone too.
    net.in_b(|| chain.remove(hash)).unwrap();
    ping(&net, 3);
    assert!(chain.status().unwrap().device_bound);

    // It cannot move to another interface.
    net.in_b(|| chain.detach()).unwrap();
    let other = VethPair::new();
    let err = other
        .in_b(|| chain.attach(&other.dev_b, AttachOptions::default()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("bound to {}", net.dev_b)) && err.contains(&other.dev_b),
        "{err}"
    );
    assert!(no_xdp(&other));

    // A dynamic chain attached unbound cannot take the component (its
    // extensions were loaded unbound); a static one is rebuilt bound.
    let mut unbound = Chain::new();
    unbound.add(comp("counter")).unwrap();
    attach(&mut unbound, &other).unwrap();
    match other.in_b(|| unbound.add(comp("rxhash"))) {
        Err(e) if unbound.mode() == xdpchain::Mode::Dynamic => {
            let e = e.to_string();
            assert!(
                e.contains("xdp_count") && e.contains("loaded unbound"),
                "{e}"
            );
            assert_eq!(unbound.components().len(), 1);
        }
        other => {
            assert_eq!(unbound.mode(), xdpchain::Mode::Static, "{other:?}");
            other.unwrap();
        }
    }
    ping(&other, 3);
    other.in_b(|| unbound.detach()).unwrap();
}

/// Chains that the store keeps, in every layout: libxdp's (the default for a
/// dynamic chain, and asked for) is version 3 and device-bound, and counts
/// its bound extensions from outside, as ours counts inside.
#[test]
fn shared_chains_bind_in_every_layout() {
    // libxdp's layout needs a dynamic chain.
    let dynamic = xdpchain::features().unwrap().freplace
        && std::env::var("XDPCHAIN_MODE").map_or(true, |m| m != "static");
    let layouts = [Layout::Auto, Layout::Xdpchain, Layout::Libxdp(None)];
    for layout in layouts
        .into_iter()
        .filter(|l| dynamic || *l != Layout::Libxdp(None))
    {
        let net = VethPair::new();
        let root = PinDir::new("devbound");
        let store = Store::at(format!("{}/store", root.0)).with_layout(layout);
        let add = |c: Component| net.in_b(|| store.add(&net.dev_b, c, Default::default()));
        if !has_metadata_kfuncs() {
            let err = add(comp("rxhash")).unwrap_err().to_string();
            assert!(err.contains("bpf_xdp_metadata_rx_hash"), "{err}");
            assert!(no_xdp(&net));
            continue;
        }
        for name in ["rxhash", "counter", "verdict"] {
            add(comp(name)).unwrap();
        }
        ping(&net, 4);
        let st = net.in_b(|| store.status(&net.dev_b)).unwrap();
        let ran: Vec<_> = st
            .components
            .iter()
            .map(|c| (c.name.clone(), c.counters.map(|k| k.packets())))
            .collect();
        assert!(st.device_bound, "{layout:?}");
        let libxdp = layout == Layout::Libxdp(None)
            || (layout == Layout::Auto && st.kind == xdpchain::Mode::Dynamic);
        let expected = if libxdp { "libxdp v3" } else { "xdpchain" };
        assert_eq!(st.layout(), expected, "{layout:?}");
        assert!(
            ran.iter().all(|(_, n)| n.is_some_and(|n| n >= 4)),
            "{layout:?}: {ran:?}"
        );
        // Changes keep the binding, also once the RX hash component is
        // gone: the kfunc still answers, then the others run on.
        add(comp("filter")).unwrap();
        net.in_b(|| store.remove(&net.dev_b, "xdp_count")).unwrap();
        ping(&net, 3);
        net.in_b(|| store.remove(&net.dev_b, "xdp_rxhash")).unwrap();
        ping(&net, 3);
        let st = net.in_b(|| store.status(&net.dev_b)).unwrap();
        assert!(st.device_bound, "{layout:?}");
        net.in_b(|| store.detach(&net.dev_b, false)).unwrap();
        assert!(no_xdp(&net));

        // A dynamic chain that runs unbound cannot take it (its extensions
        // were loaded unbound); a static one is rebuilt bound.
        add(comp("counter")).unwrap();
        let kind = net.in_b(|| store.status(&net.dev_b)).unwrap().kind;
        match add(comp("rxhash")) {
            Err(e) if kind == xdpchain::Mode::Dynamic => {
                let e = e.to_string();
                assert!(
                    e.contains("xdp_count") && e.contains("loaded unbound"),
                    "{e}"
                );
                let st = net.in_b(|| store.status(&net.dev_b)).unwrap();
                assert_eq!(st.components.len(), 1);
            }
            other => {
                assert_eq!(kind, xdpchain::Mode::Static, "{other:?}");
                other.unwrap();
            }
        }
        ping(&net, 3);
        net.in_b(|| store.detach(&net.dev_b, false)).unwrap();
    }
}

/// Asked for, binding comes before any component that needs it, so that
/// one joins a dynamic chain later; asked of a chain that runs unbound, it
/// is refused and nothing changes; a kernel without the kfuncs refuses it.
#[test]
fn binding_asked_for_comes_first() {
    let bind = AttachOptions {
        device_bound: true,
        ..Default::default()
    };
    let net = VethPair::new();
    let root = PinDir::new("devbound-asked");
    let store = Store::at(format!("{}/store", root.0));
    let add = |c: Component, opts| net.in_b(|| store.add(&net.dev_b, c, opts));
    if !has_metadata_kfuncs() {
        let err = add(comp("counter"), bind).unwrap_err().to_string();
        assert!(
            err.contains("device-bound") && err.contains("Linux 6.3"),
            "{err}"
        );
        assert!(no_xdp(&net));
        return;
    }
    add(comp("counter"), bind).unwrap();
    assert!(net.in_b(|| store.status(&net.dev_b)).unwrap().device_bound);
    add(comp("rxhash"), Default::default()).unwrap();
    ping(&net, 3);
    net.in_b(|| store.detach(&net.dev_b, false)).unwrap();

    add(comp("counter"), Default::default()).unwrap();
    let err = add(comp("verdict"), bind).unwrap_err().to_string();
    assert!(
        err.contains("binding to the device (it runs unbound)"),
        "{err}"
    );
    let st = net.in_b(|| store.status(&net.dev_b)).unwrap();
    assert_eq!((st.components.len(), st.device_bound), (1, false));
    net.in_b(|| store.detach(&net.dev_b, false)).unwrap();

    // A process's own chain: at its first attach.
    let mut chain = Chain::new();
    chain.add(comp("counter")).unwrap();
    net.in_b(|| chain.attach(&net.dev_b, bind)).unwrap();
    net.in_b(|| chain.add(comp("rxhash"))).unwrap();
    ping(&net, 3);
    assert!(chain.status().unwrap().device_bound);
    net.in_b(|| chain.detach()).unwrap();
}
