//! Chains shared with libxdp: xdp-loader (Debian's xdp-tools 1.3.1, in the
//! VM) lists, adds beside and removes from chains of ours in libxdp's
//! layout, and we from its own. libxdp's dispatcher needs freplace, which
//! this machine's kernel refuses: here the tests check the refusal.
mod common;

use common::*;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

const BIN: &str = env!("CARGO_BIN_EXE_xdpchain");

/// Programs that return one verdict each, with libxdp run configs: a chain
/// of them returns the verdict of the first that does not pass.
struct Objects {
    pass_a: PathBuf,
    drop_c: PathBuf,
    tx_b: PathBuf,
    pass_d: PathBuf,
}

fn objects() -> Objects {
    let ret = |name: &str, verdict: &str, prio: u32| {
        compile(
            "ret",
            &format!("_{name}"),
            &[
                "-g",
                &format!("-DNAME=xdp_{name}"),
                &format!("-DRET=XDP_{verdict}"),
                &format!("-DPRIO={prio}"),
            ],
        )
    };
    Objects {
        pass_a: ret("pass_a", "PASS", 10),
        drop_c: ret("drop_c", "DROP", 20),
        tx_b: ret("tx_b", "TX", 30),
        pass_d: ret("pass_d", "PASS", 40),
    }
}

fn p(path: &std::path::Path) -> &str {
    path.to_str().unwrap()
}

fn freplace() -> bool {
    let f = xdpchain::features().unwrap().freplace;
    if let Ok(expect) = std::env::var("XDPCHAIN_EXPECT_FREPLACE") {
        assert_eq!(f, expect == "1", "the freplace probe disagrees with the VM");
    }
    f
}

fn run(ns: &str, args: &[&str]) -> String {
    xdpchain_ok(BIN, ns, args)
}

fn fails(ns: &str, args: &[&str]) -> String {
    let (ok, _, err) = xdpchain_in(BIN, ns, args, &[]);
    assert!(!ok, "xdpchain {args:?} should fail");
    err
}

fn loader(ns: &str, args: &[&str]) -> (bool, String, String) {
    output(in_ns(ns, &["xdp-loader"]).args(args))
}

fn loader_ok(ns: &str, args: &[&str]) -> String {
    let (ok, out, err) = loader(ns, args);
    assert!(ok, "xdp-loader {args:?}: {out}{err}");
    out
}

/// (priority, name) of each program xdp-loader lists on `dev`, in order.
fn loader_list(ns: &str, dev: &str) -> Vec<(u32, String)> {
    loader_ok(ns, &["status", dev])
        .lines()
        .filter_map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            (t.first() == Some(&"=>")).then(|| (t[1].parse().unwrap(), t[2].to_string()))
        })
        .collect()
}

/// What our status says of `dev`: its layout, and (id, name) in run order.
fn ours(ns: &str, dev: &str) -> (String, Vec<(u32, String)>) {
    let st = in_netns(ns, || xdpchain::status(dev).unwrap());
    let comps = st
        .components
        .iter()
        .map(|c| (c.id, c.name.clone()))
        .collect();
    (st.layout(), comps)
}

fn names(ns: &str, dev: &str) -> Vec<String> {
    ours(ns, dev).1.into_iter().map(|(_, n)| n).collect()
}

/// The verdict of the program attached to `dev` on a UDP packet.
fn verdict(ns: &str, dev: &str) -> u32 {
    in_netns(ns, || {
        let id = xdpchain::status(dev).unwrap().program_id;
        let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
        assert!(fd >= 0);
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        xdpchain::test_run(fd.as_fd(), &udp_packet(9), 1).unwrap().0
    })
}

const DROP: u32 = 1;
const TX: u32 = 3;

/// libxdp's pin directory of the dispatcher on `dev`. Equal ifindexes of
/// other namespaces share the prefix: the dispatcher's id tells them apart.
fn dispatch_dir(ns: &str, dev: &str) -> PathBuf {
    let index = sh(&format!("ip -n {ns} -o link show dev {dev}"));
    let index = index.split(':').next().unwrap().trim().to_string();
    let id = in_netns(ns, || xdpchain::status(dev).unwrap().program_id);
    PathBuf::from(format!("/sys/fs/bpf/xdp/dispatch-{index}-{id}"))
}

fn no_xdp(ns: &str, dev: &str) -> bool {
    !sh(&format!("ip -n {ns} link show dev {dev}")).contains("prog/xdp")
}

#[test]
fn xdp_loader_lists_and_changes_a_chain_of_ours() {
    let o = objects();
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    if !freplace() {
        let err = fails(
            ns,
            &[
                "attach",
                dev,
                p(&o.pass_a),
                "--layout",
                "libxdp",
                "--mode",
                "auto",
            ],
        );
        assert!(err.contains("freplace"), "{err}");
        assert!(no_xdp(ns, dev));
        return;
    }
    let attach = [
        "attach",
        dev,
        p(&o.pass_a),
        p(&o.tx_b),
        "--layout",
        "libxdp",
    ];
    run(ns, &[&attach[..], &["--mode", "dynamic"]].concat());
    // The installed libxdp (Debian's 1.3.1) speaks version 2.
    assert_eq!(ours(ns, dev).0, "libxdp v2");
    assert_eq!(verdict(ns, dev), TX);
    let status = run(ns, &["status", dev]);
    assert!(status.contains("libxdp v2 layout"), "{status}");
    // The owners of what we added, kept beside libxdp's pins.
    assert!(status.contains("xdpchain["), "{status}");
    let dir = dispatch_dir(ns, dev);
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    for pin in ["prog0-prog", "prog0-link", "prog1-prog", "prog1-link"] {
        assert!(dir.join(pin).exists(), "{pin}");
    }

    // xdp-loader lists ours, with their priorities, and adds beside them.
    assert_eq!(
        loader_list(ns, dev),
        [(10, "xdp_pass_a".into()), (30, "xdp_tx_b".into())]
    );
    loader_ok(ns, &["load", dev, p(&o.drop_c)]);
    assert_eq!(names(ns, dev), ["xdp_pass_a", "xdp_drop_c", "xdp_tx_b"]);
    assert_eq!(verdict(ns, dev), DROP);
    assert!(!dir.exists(), "the old dispatcher's pins go with it");

    // It removes one of ours; we remove its own.
    let (_, list) = ours(ns, dev);
    let id_a = list[0].0.to_string();
    loader_ok(ns, &["unload", dev, "--id", &id_a]);
    assert_eq!(names(ns, dev), ["xdp_drop_c", "xdp_tx_b"]);
    // Its program has no owner of ours: removing it takes force.
    let err = fails(ns, &["remove", dev, "xdp_drop_c"]);
    assert!(err.contains("unknown owner"), "{err}");
    run(ns, &["remove", dev, "xdp_drop_c", "--force"]);
    assert_eq!(names(ns, dev), ["xdp_tx_b"]);
    assert_eq!(loader_list(ns, dev), [(30, "xdp_tx_b".into())]);
    assert_eq!(verdict(ns, dev), TX);

    let dir = dispatch_dir(ns, dev);
    assert!(dir.exists());
    run(ns, &["detach", dev]);
    assert!(no_xdp(ns, dev));
    assert!(!dir.exists());
}

#[test]
fn we_join_and_change_a_chain_xdp_loader_made() {
    let o = objects();
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    if !freplace() {
        return;
    }
    loader_ok(ns, &["load", dev, p(&o.drop_c)]);
    let made = dispatch_dir(ns, dev);
    assert!(made.join("prog0-prog").exists());
    // An in-memory chain cannot take it over, even by force: its programs
    // live in libxdp's pins.
    let err = in_netns(ns, || {
        let mut chain = xdpchain::Chain::new();
        chain
            .add(xdpchain::Component::from_file(&o.tx_b, None).unwrap())
            .unwrap();
        let force = xdpchain::AttachOptions {
            force: true,
            ..Default::default()
        };
        chain.attach(dev, force).unwrap_err()
    });
    assert!(
        matches!(err, xdpchain::Error::LibxdpDispatcher { .. }),
        "{err}"
    );
    // Whatever our defaults, a libxdp dispatcher is joined at its version.
    run(ns, &["add", dev, p(&o.tx_b), "--layout", "xdpchain"]);
    run(ns, &["add", dev, p(&o.pass_a)]);
    assert_eq!(ours(ns, dev).0, "libxdp v2");
    assert_eq!(names(ns, dev), ["xdp_pass_a", "xdp_drop_c", "xdp_tx_b"]);
    assert_eq!(verdict(ns, dev), DROP);

    // Replacing xdp-loader's program keeps its place (priority 20).
    run(ns, &["replace", dev, "xdp_drop_c", p(&o.pass_d), "--force"]);
    assert_eq!(
        loader_list(ns, dev),
        [
            (10, "xdp_pass_a".into()),
            (20, "xdp_pass_d".into()),
            (30, "xdp_tx_b".into())
        ]
    );
    assert_eq!(verdict(ns, dev), TX);
    assert!(!made.exists(), "the first dispatcher's pins go with it");

    let dir = dispatch_dir(ns, dev);
    loader_ok(ns, &["unload", dev, "--all"]);
    assert!(no_xdp(ns, dev));
    assert!(!dir.exists());
    let err = fails(ns, &["status", dev]);
    assert!(err.contains("no chain"), "{err}");
}

#[test]
fn versions_limits_and_the_default_layout() {
    let o = objects();
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    if !freplace() {
        return;
    }
    // Version 3 on request, which libxdp 1.3.1 refuses to touch.
    run(
        ns,
        &[
            "attach",
            dev,
            p(&o.pass_a),
            "--layout",
            "libxdp:3",
            "--mode",
            "dynamic",
        ],
    );
    let before = ours(ns, dev);
    assert_eq!(before.0, "libxdp v3");
    let (ok, _, _) = loader(ns, &["load", dev, p(&o.drop_c)]);
    assert!(!ok, "xdp-loader 1.3.1 must refuse a version 3 dispatcher");
    assert_eq!(ours(ns, dev), before);
    run(ns, &["add", dev, p(&o.tx_b)]);
    assert_eq!(ours(ns, dev).0, "libxdp v3");
    assert_eq!(verdict(ns, dev), TX);

    // Unsigned priorities and ten programs at most; a refusal changes nothing.
    let two = ours(ns, dev);
    let err = fails(ns, &["add", dev, p(&o.pass_d), "--priority", "-1"]);
    assert!(err.contains("unsigned"), "{err}");
    assert_eq!(ours(ns, dev), two);
    for _ in 2..xdpchain::LIBXDP_MAX_PROGRAMS {
        run(ns, &["add", dev, p(&o.pass_d)]);
    }
    let full = ours(ns, dev);
    assert_eq!(full.1.len(), 10);
    let err = fails(ns, &["add", dev, p(&o.pass_d)]);
    assert!(err.contains("at most 10"), "{err}");
    assert_eq!(ours(ns, dev), full);
    let err = fails(ns, &["attach", dev, p(&o.pass_a), "--layout", "libxdp:7"]);
    assert!(err.contains("version 7"), "{err}");
    assert_eq!(ours(ns, dev), full);
    let dir = dispatch_dir(ns, dev);
    run(ns, &["detach", dev]);
    assert!(!dir.exists());

    // Auto: libxdp's layout (the installed version) for a dynamic chain,
    // with or without --no-counters; ours when counters are asked for,
    // which libxdp's layout cannot have.
    for extra in [&[][..], &["--no-counters"]] {
        let args = [
            &["attach", dev, p(&o.pass_a), "--mode", "dynamic"][..],
            extra,
        ]
        .concat();
        run(ns, &args);
        assert_eq!(ours(ns, dev).0, "libxdp v2");
        run(ns, &["detach", dev]);
    }
    run(
        ns,
        &[
            "attach",
            dev,
            p(&o.pass_a),
            "--mode",
            "dynamic",
            "--counters",
        ],
    );
    let st = in_netns(ns, || xdpchain::status(dev).unwrap());
    assert_eq!(st.layout(), "xdpchain");
    assert!(st.components[0].counters.is_some() && st.counters_off().is_none());
    run(ns, &["detach", dev]);
    let err = fails(
        ns,
        &[
            "attach",
            dev,
            p(&o.pass_a),
            "--layout",
            "libxdp",
            "--mode",
            "dynamic",
            "--counters",
        ],
    );
    assert!(err.contains("libxdp's layout has no counters"), "{err}");
    assert!(no_xdp(ns, dev));
}

/// On an interface with jumbo frames, a chain in libxdp's layout is
/// multi-buffer aware when all its programs are (the dispatcher says so in
/// its config, as libxdp's does), stays so as programs join, and refuses a
/// program that is not, naming it, without a change.
#[test]
fn jumbo_frames_in_libxdps_layout() {
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    let frags = obj("frags");
    let attach = [
        "attach",
        dev,
        p(&frags),
        "--layout",
        "libxdp",
        "--mode",
        "dynamic",
    ];
    if !freplace() {
        let err = fails(ns, &attach);
        assert!(err.contains("freplace"), "{err}");
        return;
    }
    sh(&format!(
        "ip -n {} link set {} mtu 9000",
        net.ns_a, net.dev_a
    ));
    sh(&format!("ip -n {ns} link set {dev} mtu 9000"));
    run(ns, &attach);
    run(ns, &["add", dev, p(&frags), "--priority", "60"]);
    let before = ours(ns, dev);
    assert_eq!(before.0, "libxdp v2");
    assert_eq!(before.1.len(), 2);
    let ping = sh(&format!(
        "ip netns exec {} ping -c 3 -i 0.05 -W 2 -s 8000 198.18.0.2",
        net.ns_a
    ));
    assert!(ping.contains("3 received"), "{ping}");
    let err = fails(ns, &["add", dev, p(&obj("counter"))]);
    assert!(
        err.contains("counter.o:xdp_count") && !err.contains("frags.o"),
        "{err}"
    );
    assert_eq!(ours(ns, dev), before);
    run(ns, &["detach", dev]);
    assert!(no_xdp(ns, dev));
}

/// With every default, a chain is one that xdp-loader joins wherever libxdp
/// can share it (a dynamic chain), and status says why it has no counters.
/// A static chain (this machine's kernel, or XDPCHAIN_MODE=static) is ours
/// and counted; xdp-loader cannot join it, and changes nothing.
#[test]
fn with_every_default_xdp_loader_joins_the_chain() {
    let o = objects();
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    run(ns, &["attach", dev, p(&o.pass_a)]);
    let st = in_netns(ns, || xdpchain::status(dev).unwrap());
    if st.kind == xdpchain::Mode::Dynamic {
        assert!(freplace());
        assert_eq!(st.layout(), "libxdp v2");
        let why = st.counters_off().unwrap();
        assert!(why.contains("libxdp's dispatcher"), "{why}");
        let table = run(ns, &["status", dev]);
        assert!(table.contains(&format!("counters off: {why}")), "{table}");
        let json = run(ns, &["status", dev, "--json"]);
        assert!(json.contains("\"counters_off\":\"libxdp's"), "{json}");
        loader_ok(ns, &["load", dev, p(&o.tx_b)]);
        assert_eq!(names(ns, dev), ["xdp_pass_a", "xdp_tx_b"]);
        assert_eq!(verdict(ns, dev), TX);
    } else {
        assert_ne!(
            expected_kind(),
            Some("dynamic"),
            "a static chain where dynamic was due"
        );
        assert_eq!(st.layout(), "xdpchain");
        assert!(st.components[0].counters.is_some() && st.counters_off().is_none());
        let before = ours(ns, dev);
        let (ok, _, _) = loader(ns, &["load", dev, p(&o.tx_b)]);
        assert!(!ok, "xdp-loader cannot join a static chain");
        assert_eq!(ours(ns, dev), before);
    }
    run(ns, &["detach", dev, "--force"]);
    assert!(no_xdp(ns, dev));
}
