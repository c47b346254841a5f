//! Attached chains with real traffic through a veth pair in namespaces the
//! tests create and remove: counters, atomic replacement, other loaders.
mod common;

use common::*;
use xdpchain::{AttachOptions, Chain, Component, Error, Verdict};

fn comp(name: &str) -> Component {
    Component::from_file(obj(name), None).unwrap()
}

#[test]
fn real_traffic_runs_through_the_chain() {
    let net = VethPair::new();
    let mut chain = Chain::new();
    let counter = chain.add(comp("counter")).unwrap();
    let filter = chain
        .add(
            Component::from_file(compile("filter", "_v", &["-g", "-DFILTER_PORT=9999"]), None)
                .unwrap(),
        )
        .unwrap();
    net.in_b(|| chain.attach(&net.dev_b, AttachOptions::default()))
        .unwrap();

    let ping = sh(&format!(
        "ip netns exec {} ping -c 5 -i 0.05 -W 2 198.18.0.2",
        net.ns_a
    ));
    assert!(ping.contains("5 received"), "{ping}");
    for port in [9999, 9999, 9999, 5000] {
        sh(&format!(
            "ip netns exec {} bash -c 'echo x > /dev/udp/198.18.0.2/{port}'",
            net.ns_a
        ));
    }
    assert_eq!(
        read_u64(chain.map_fd(counter, "echo_requests").unwrap(), 0),
        5
    );
    let f = chain.counters(filter).unwrap();
    assert_eq!(f.verdict(Verdict::Drop), 3, "{f:?}");
    let c = chain.counters(counter).unwrap();
    assert!(c.packets() >= 9, "the counter saw pings and UDP: {c:?}");

    // Another process's view, from the kernel alone.
    let st = net.in_b(|| xdpchain::status(&net.dev_b)).unwrap();
    assert_eq!(
        st.components
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["xdp_count", "xdpfilt_udp"]
    );
    assert_eq!(st.components[1].counters.unwrap().verdict(Verdict::Drop), 3);

    net.in_b(|| chain.detach()).unwrap();
    assert!(matches!(
        net.in_b(|| xdpchain::status(&net.dev_b)),
        Err(Error::NoChain(_))
    ));
}

/// Rebuilds swap the chain while pings flow: every echo request that got a
/// reply was counted by the counter, whose map every rebuild reuses, so at
/// no instant did the interface run nothing.
#[test]
fn replacement_is_atomic_under_traffic() {
    const SWAPS: u64 = 12;
    let net = VethPair::new();
    let mut chain = Chain::new();
    let counter = chain.add(comp("counter")).unwrap();
    net.in_b(|| chain.attach(&net.dev_b, AttachOptions::default()))
        .unwrap();
    let requests = |chain: &Chain| read_u64(chain.map_fd(counter, "echo_requests").unwrap(), 0);
    let pinger = Pinger::start(&net.ns_a, "0.002");
    while requests(&chain) == 0 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let first = requests(&chain);
    let verdict = obj("verdict");
    for _ in 0..SWAPS / 2 {
        // Netlink talks to the namespace of the calling thread.
        net.in_b(|| {
            let id = chain
                .add(
                    Component::from_file(&verdict, None)
                        .unwrap()
                        .with_priority(60),
                )
                .unwrap();
            chain.remove(id).unwrap();
        });
    }
    let during = requests(&chain) - first;
    let out = pinger.stop();
    let received = ping_received(&out);
    // A rebuild loads and verifies a program: many 2 ms pings long.
    assert!(during >= SWAPS, "{during} requests during {SWAPS} swaps");
    let counted = requests(&chain);
    assert!(
        counted >= received,
        "{counted} counted, {received} answered, over {SWAPS} swaps"
    );
    net.in_b(|| chain.detach()).unwrap();
}

#[test]
fn replacing_and_foreign_programs() {
    let net = VethPair::new();
    let mut first = Chain::new();
    first.add(comp("counter")).unwrap();
    net.in_b(|| first.attach(&net.dev_b, AttachOptions::default()))
        .unwrap();

    // A second chain replaces the first (and all in it) only with force...
    let mut second = Chain::new();
    second.add(comp("verdict")).unwrap();
    match net.in_b(|| second.attach(&net.dev_b, AttachOptions::default())) {
        Err(e @ Error::NotOwner { .. }) => assert!(e.to_string().contains("force"), "{e}"),
        other => panic!("expected NotOwner, got {other:?}"),
    }
    let force = AttachOptions {
        force: true,
        ..Default::default()
    };
    net.in_b(|| second.attach(&net.dev_b, force)).unwrap();
    // ...after which the first may no longer remove what now runs there.
    assert!(matches!(
        net.in_b(|| first.detach()),
        Err(Error::Raced { .. })
    ));
    let st = net.in_b(|| xdpchain::status(&net.dev_b)).unwrap();
    assert_eq!(st.components[0].name, "xdp_verdict");
    net.in_b(|| second.detach()).unwrap();

    // A program of another loader is refused, and kept, unless forced.
    let plain = obj("proprietary");
    sh(&format!(
        "ip -n {} link set dev {} xdpdrv obj {} sec xdp",
        net.ns_b,
        net.dev_b,
        plain.display()
    ));
    let mut third = Chain::new();
    third.add(comp("counter")).unwrap();
    match net.in_b(|| third.attach(&net.dev_b, AttachOptions::default())) {
        Err(e @ Error::ForeignProgram { .. }) => assert!(e.to_string().contains("xdp_prop"), "{e}"),
        other => panic!("expected ForeignProgram, got {other:?}"),
    }
    assert!(sh(&format!("ip -n {} link show {}", net.ns_b, net.dev_b)).contains("xdp_prop"));
    assert!(matches!(
        net.in_b(|| xdpchain::Store::new().detach(&net.dev_b, false)),
        Err(Error::ForeignProgram { .. })
    ));
    net.in_b(|| {
        third.attach(
            &net.dev_b,
            AttachOptions {
                force: true,
                ..Default::default()
            },
        )
    })
    .unwrap();
    let st = net.in_b(|| xdpchain::status(&net.dev_b)).unwrap();
    assert_eq!(st.components[0].name, "xdp_count");
    // No record says whose that chain is: the store detaches it by force only.
    assert!(matches!(
        net.in_b(|| xdpchain::Store::new().detach(&net.dev_b, false)),
        Err(Error::NoState { .. })
    ));
    net.in_b(|| xdpchain::Store::new().detach(&net.dev_b, true))
        .unwrap();
}

#[test]
fn skb_mode() {
    let net = VethPair::new();
    let mut chain = Chain::new();
    chain.add(comp("counter")).unwrap();
    let opts = AttachOptions {
        mode: xdpchain::AttachMode::Skb,
        ..Default::default()
    };
    net.in_b(|| chain.attach(&net.dev_b, opts)).unwrap();
    let st = net.in_b(|| xdpchain::status(&net.dev_b)).unwrap();
    assert_eq!(st.mode, Some(xdpchain::AttachMode::Skb));
    assert!(sh(&format!("ip -n {} link show {}", net.ns_b, net.dev_b)).contains("xdpgeneric"));
    net.in_b(|| chain.detach()).unwrap();
}

#[test]
fn jumbo_frames_need_multi_buffer_components() {
    let net = VethPair::new();
    // veth takes a program without multi-buffer support only while its
    // peer's MTU keeps packets within a page.
    sh(&format!(
        "ip -n {} link set {} mtu 9000",
        net.ns_a, net.dev_a
    ));
    sh(&format!(
        "ip -n {} link set {} mtu 9000",
        net.ns_b, net.dev_b
    ));
    let frags = || Component::from_file(obj("frags"), None).unwrap();
    // Before 5.18 no XDP program may run there, and the error says why.
    let multi_buffer = kernel_at_least(5, 18);
    let no_multi_buffer = |e: Error| {
        let e = e.to_string();
        assert!(e.contains("no multi-buffer XDP (Linux 5.18"), "{e}");
    };

    let mut mixed = Chain::new();
    mixed.add(frags()).unwrap();
    mixed.add(comp("counter")).unwrap();
    match net.in_b(|| mixed.attach(&net.dev_b, AttachOptions::default())) {
        Err(e @ Error::NeedsFrags { .. }) if multi_buffer => {
            let e = e.to_string();
            assert!(
                e.contains("counter.o:xdp_count") && !e.contains("xdp_frags"),
                "{e}"
            );
        }
        Err(e @ Error::Unsupported(_)) if !multi_buffer => no_multi_buffer(e),
        other => panic!("expected NeedsFrags, got {other:?}"),
    }
    let unattached =
        || !sh(&format!("ip -n {} link show {}", net.ns_b, net.dev_b)).contains("prog/xdp");
    assert!(unattached());

    // All multi-buffer aware: the chain is too, and sees jumbo frames; before
    // 5.18 it is an ordinary chain, which runs within a page.
    let mut chain = Chain::new();
    let a = chain.add(frags()).unwrap();
    chain.add(frags().with_priority(60)).unwrap();
    let mut size = 8000;
    if !multi_buffer {
        no_multi_buffer(
            net.in_b(|| chain.attach(&net.dev_b, AttachOptions::default()))
                .unwrap_err(),
        );
        assert!(unattached());
        for (ns, dev) in [(&net.ns_a, &net.dev_a), (&net.ns_b, &net.dev_b)] {
            sh(&format!("ip -n {ns} link set {dev} mtu 1500"));
        }
        size = 1400;
    }
    net.in_b(|| chain.attach(&net.dev_b, AttachOptions::default()))
        .unwrap();
    let ping = sh(&format!(
        "ip netns exec {} ping -c 3 -i 0.05 -W 2 -s {size} 198.18.0.2",
        net.ns_a
    ));
    assert!(ping.contains("3 received"), "{ping}");
    assert!(read_u64(chain.map_fd(a, ".bss").unwrap(), 0) >= 3);
    net.in_b(|| chain.detach()).unwrap();
}
