//! Static chains on the machine's own kernel: linking, loading, verdicts.
mod common;

use common::*;
use xdpchain::{Chain, Component, Verdict, Verdicts};

#[test]
fn two_filters_with_clashing_names_link_and_run() {
    let a = compile("filter", "_p1", &["-g", "-DFILTER_PORT=1111"]);
    let b = compile("filter", "_p2", &["-g", "-DFILTER_PORT=2222"]);
    let mut chain = Chain::new();
    let ia = chain.add(Component::from_file(&a, None).unwrap()).unwrap();
    let ib = chain.add(Component::from_file(&b, None).unwrap()).unwrap();
    chain.load().unwrap();
    assert_eq!(
        chain.test_run(&udp_packet(1111), 1).unwrap().0,
        Verdict::Drop as u32
    );
    assert_eq!(
        chain.test_run(&udp_packet(2222), 1).unwrap().0,
        Verdict::Drop as u32
    );
    assert_eq!(
        chain.test_run(&udp_packet(3333), 1).unwrap().0,
        Verdict::Pass as u32
    );
    let _ = (ia, ib, Verdicts::empty());
}
