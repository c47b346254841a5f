//! Timing components on request, with real traffic through a veth pair:
//! counts stay exact whether timing is on or off, every component is timed
//! while a reader holds timing on, and timing stops on its own once the
//! last reader has gone. Static chains (generated and compiled roots) on
//! any kernel; in the guests also dynamic ones, as the default mode makes.
mod common;

use common::*;
use xdpchain::{AttachOptions, Chain, Component, Counters, Mode, Timing, TIMING_LEASE};

const PINGS: u64 = 20;

/// Each component's counters.
fn counters(chain: &Chain) -> Vec<Counters> {
    chain
        .status()
        .unwrap()
        .components
        .iter()
        .map(|c| c.counters.expect("the chain counts"))
        .collect()
}

/// Sends PINGS echo requests to b, each one packet on b's interface: the
/// neighbours are static, IPv6 is off, so nothing else crosses.
fn ping(v: &VethPair) {
    let out = ping_in_background(&v.ns_a, PINGS as u32, "0.02")
        .join()
        .unwrap();
    assert_eq!(ping_received(&out), PINGS, "{out}");
}

/// What each component counted between `before` and `after`.
fn delta(before: &[Counters], after: &[Counters]) -> Vec<Counters> {
    before.iter().zip(after).map(|(b, a)| a.since(b)).collect()
}

fn timed_chain(configure: impl FnOnce(&mut Chain)) {
    let v = VethPair::new();
    v.static_neighbours();
    let mut chain = Chain::new();
    configure(&mut chain);
    for name in ["counter", "filter", "verdict"] {
        chain
            .add(Component::from_file(obj(name), None).unwrap())
            .unwrap();
    }
    v.in_b(|| chain.attach(&v.dev_b, AttachOptions::default()))
        .unwrap();
    let pass_only = |d: &[Counters]| {
        for c in d {
            assert_eq!(c.packets(), PINGS, "{d:?}");
            assert_eq!(c.verdict(xdpchain::Verdict::Pass), PINGS, "{d:?}");
        }
    };

    // Nobody reads: nothing is timed.
    let start = counters(&chain);
    ping(&v);
    let off = delta(&start, &counters(&chain));
    pass_only(&off);
    assert!(
        off.iter().all(|c| c.run_cnt == 0 && c.run_time_ns == 0),
        "{off:?}"
    );

    // Two readers: every component is timed, on every packet, and counts
    // as before. Dropping one leaves timing on.
    let (one, two) = v.in_b(|| {
        (
            Timing::start(Some(&v.dev_b)).unwrap(),
            Timing::start(None).unwrap(),
        )
    });
    let before = counters(&chain);
    ping(&v);
    let on = delta(&before, &counters(&chain));
    pass_only(&on);
    for c in &on {
        assert_eq!(c.run_cnt, PINGS, "{on:?}");
        assert!(c.run_time_ns > 0, "{on:?}");
    }
    drop(one);
    let before = counters(&chain);
    ping(&v);
    let still = delta(&before, &counters(&chain));
    assert!(still.iter().all(|c| c.run_cnt == PINGS), "{still:?}");

    // The last reader gone, timing stops once its lease has passed.
    drop(two);
    std::thread::sleep(TIMING_LEASE + std::time::Duration::from_millis(500));
    let before = counters(&chain);
    ping(&v);
    let after = delta(&before, &counters(&chain));
    pass_only(&after);
    assert!(after.iter().all(|c| c.run_cnt == 0), "{after:?}");
    v.in_b(|| chain.detach()).unwrap();
}

#[test]
fn components_are_timed_while_read_in_the_default_mode() {
    timed_chain(|_| {});
}

#[test]
fn components_are_timed_in_a_generated_static_root() {
    timed_chain(|c| {
        c.set_mode(Mode::Static);
        c.set_inlining(true);
    });
}

#[test]
fn components_are_timed_in_a_compiled_static_root() {
    timed_chain(|c| {
        c.set_mode(Mode::Static);
        c.set_inlining(false);
    });
}

#[test]
fn a_chain_that_cannot_time_says_why() {
    let v = VethPair::new();
    let mut chain = Chain::new();
    chain.set_counting(false);
    chain
        .add(Component::from_file(obj("counter"), None).unwrap())
        .unwrap();
    v.in_b(|| chain.attach(&v.dev_b, AttachOptions::default()))
        .unwrap();
    let err = v.in_b(|| Timing::start(Some(&v.dev_b))).err().unwrap();
    assert!(matches!(err, xdpchain::Error::NotCounting { .. }), "{err}");
    assert!(err.to_string().contains("counters on"), "{err}");
    let err = v.in_b(|| Timing::start(Some("nosuchdev0"))).err().unwrap();
    assert!(matches!(err, xdpchain::Error::UnknownInterface(_)), "{err}");
    v.in_b(|| chain.detach()).unwrap();
}
