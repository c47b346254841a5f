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

/// xdp-loader, one at a time: two that start together race on its PID
/// lockfile ("Unable to read PID from lockfile: File exists"), as the
/// tests of this binary, run in parallel, would make them.
fn loader(ns: &str, args: &[&str]) -> (bool, String, String) {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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
    // Whatever our defaults, a libxdp dispatcher is joined at its version;
    // a layout asked for that it cannot follow is refused.
    let err = fails(ns, &["add", dev, p(&o.tx_b), "--layout", "xdpchain"]);
    assert!(
        err.contains("cannot take xdpchain's layout (it follows libxdp's)"),
        "{err}"
    );
    let env = [("XDPCHAIN_LAYOUT", "xdpchain")];
    let (ok, _, err) = xdpchain_in(BIN, ns, &["add", dev, p(&o.tx_b)], &env);
    assert!(ok, "{err}");
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
    // counted unless --no-counters; ours with --counters, whose roots also
    // time and dump; libxdp's, counted, when it is asked for as well.
    for (extra, layout, counted) in [
        (&[][..], "libxdp v2", true),
        (&["--no-counters"], "libxdp v2", false),
        (&["--counters"], "xdpchain", true),
        (&["--counters", "--layout", "libxdp"], "libxdp v2", true),
    ] {
        let args = [
            &["attach", dev, p(&o.pass_a), "--mode", "dynamic"][..],
            extra,
        ]
        .concat();
        run(ns, &args);
        let st = in_netns(ns, || xdpchain::status(dev).unwrap());
        assert_eq!(st.layout(), layout, "{extra:?}");
        assert_eq!(st.components[0].counters.is_some(), counted, "{extra:?}");
        assert_eq!(st.counters_off().is_none(), counted, "{extra:?}");
        run(ns, &["detach", dev]);
    }
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
    // Before 5.18 no XDP program may run there, and the error says why.
    if !kernel_at_least(5, 18) {
        let err = fails(ns, &attach);
        assert!(err.contains("no multi-buffer XDP (Linux 5.18"), "{err}");
        assert!(no_xdp(ns, dev));
        return;
    }
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
/// can share it (a dynamic chain), counted, and status says why
/// xdp-loader's program has no counters.
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
        assert!(st.components[0].counters.is_some() && st.counters_off().is_none());
        loader_ok(ns, &["load", dev, p(&o.tx_b)]);
        assert_eq!(names(ns, dev), ["xdp_pass_a", "xdp_tx_b"]);
        assert_eq!(verdict(ns, dev), TX);
        let st = in_netns(ns, || xdpchain::status(dev).unwrap());
        let why = st.counters_off().unwrap();
        assert!(why.contains("libxdp users"), "{why}");
        let table = run(ns, &["status", dev]);
        assert!(table.contains(&format!("counters off: {why}")), "{table}");
        let json = run(ns, &["status", dev, "--json"]);
        assert!(
            json.contains("\"counters_off\":\"in libxdp's layout"),
            "{json}"
        );
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

/// In libxdp's layout each program we add counts its packets and verdicts
/// (an fexit program on its extension), exactly, with real traffic. The
/// counts follow it when xdp-loader rebuilds the dispatcher; xdp-loader's
/// own programs are not counted, and status says so; a program removed
/// takes its counter with it and is unloaded, and detach leaves nothing.
#[test]
fn our_programs_in_libxdps_layout_are_counted() {
    const PINGS: u64 = 20;
    let o = objects();
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    let attach = [
        "attach",
        dev,
        p(&o.pass_a),
        p(&o.pass_d),
        "--layout",
        "libxdp",
        "--mode",
        "dynamic",
        "--counters",
    ];
    if !freplace() {
        let err = fails(ns, &attach);
        assert!(err.contains("freplace"), "{err}");
        assert!(no_xdp(ns, dev));
        return;
    }
    net.static_neighbours();
    run(ns, &attach);
    let counted = || {
        let st = in_netns(ns, || xdpchain::status(dev).unwrap());
        assert_eq!(st.layout(), "libxdp v2");
        st.components
            .iter()
            .map(|c| (c.name.clone(), c.id, c.counters))
            .collect::<Vec<_>>()
    };
    let start = counted();
    assert!(
        start.iter().all(|(_, _, c)| c == &Some(Default::default())),
        "{start:?}"
    );
    let out = ping_in_background(&net.ns_a, PINGS as u32, "0.02")
        .join()
        .unwrap();
    assert_eq!(ping_received(&out), PINGS, "{out}");
    let after = counted();
    for (name, _, c) in &after {
        let c = c.unwrap();
        assert_eq!(
            (c.packets(), c.verdict(xdpchain::Verdict::Pass)),
            (PINGS, PINGS),
            "{name}"
        );
    }
    let table = run(ns, &["status", dev]);
    assert!(!table.contains("counters off"), "{table}");

    // xdp-loader rebuilds the dispatcher around a program of its own, which
    // returns TX before xdp_pass_d runs: ours count on, its own is not
    // counted.
    loader_ok(ns, &["load", dev, p(&o.tx_b)]);
    assert_eq!(verdict(ns, dev), TX);
    let now = counted();
    let names: Vec<&str> = now.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["xdp_pass_a", "xdp_tx_b", "xdp_pass_d"]);
    let packets = |i: usize| {
        now[i]
            .2
            .map(|c| (c.packets(), c.verdict(xdpchain::Verdict::Pass)))
    };
    assert_eq!(packets(0), Some((PINGS + 1, PINGS + 1)));
    assert_eq!(packets(1), None);
    assert_eq!(packets(2), Some((PINGS, PINGS)));
    let why = in_netns(ns, || xdpchain::status(dev).unwrap())
        .counters_off()
        .unwrap();
    assert!(why.contains("libxdp users"), "{why}");

    // A program removed is unloaded: its counter does not hold it.
    let dir = chain_dir(xdpchain::DEFAULT_PIN_DIR, ns, dev);
    let id_a = now[0].1;
    assert!(dir.join(format!("xcount-{id_a}")).exists());
    run(ns, &["remove", dev, "xdp_pass_a"]);
    assert!(!dir.join(format!("xcount-{id_a}")).exists());
    let left = counted();
    assert_eq!(left.len(), 2);
    assert_eq!(left[1].2, now[2].2, "the counts of those that stay stay");
    assert!(
        unloaded(id_a),
        "program {id_a} of a removed component is still loaded"
    );
    let id_d = now[2].1;
    run(ns, &["detach", dev, "--force"]);
    assert!(no_xdp(ns, dev));
    assert!(!dir.exists(), "{}", dir.display());
    assert!(
        unloaded(id_d),
        "program {id_d} of a detached chain is still loaded"
    );
}

/// Whether program `id` is gone from the kernel within a second (the last
/// references may go in deferred work).
fn unloaded(id: u32) -> bool {
    (0..20).any(|_| {
        let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
        if fd < 0 {
            return true;
        }
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
        std::thread::sleep(std::time::Duration::from_millis(50));
        false
    })
}
