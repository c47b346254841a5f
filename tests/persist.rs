//! Persistent chains: one interface's chain changed by separate processes,
//! at once, in several namespaces, with its record in bpffs.
mod common;

use common::*;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_xdpchain");
const ROOT: &str = xdpchain::DEFAULT_PIN_DIR;

/// These tests are about our record in bpffs: their chains take our layout,
/// not libxdp's (the default for dynamic chains; see tests/libxdp.rs).
const OURS: (&str, &str) = ("XDPCHAIN_LAYOUT", "xdpchain");

/// Held by the test that deletes a namespace under its chain and by the one
/// that looks for records under the default root: the kernel reuses a dead
/// namespace's inode number, and so the path of its record, for the next.
static NAMESPACE_INODES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(ns: &str, args: &[&str]) -> String {
    let (ok, out, err) = xdpchain_in(BIN, ns, args, &[OURS]);
    assert!(ok, "xdpchain {args:?}: {err}");
    out
}

fn fails(ns: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let env: Vec<_> = env.iter().copied().chain([OURS]).collect();
    let (ok, _, err) = xdpchain_in(BIN, ns, args, &env);
    assert!(!ok, "xdpchain {args:?} should fail");
    // One line; a verifier's log below it is indented.
    assert_eq!(
        err.lines().filter(|l| !l.starts_with("  ")).count(),
        1,
        "{err}"
    );
    err
}

fn ping(net: &VethPair, n: u32) {
    let out = sh(&format!(
        "ip netns exec {} ping -c {n} -i 0.05 -W 2 198.18.0.2",
        net.ns_a
    ));
    assert!(out.contains(&format!("{n} received")), "{out}");
}

fn names(ns: &str, dev: &str) -> Vec<String> {
    let json = run(ns, &["status", dev, "--json"]);
    json.split("\"name\":\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn separate_processes_change_one_chain_and_keep_its_state() {
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    let counter = obj("counter");
    let filter = compile("filter", "_ps", &["-g", "-DFILTER_PORT=9999"]);
    run(ns, &["attach", dev, p(&counter)]);
    ping(&net, 3);
    let dir = chain_dir(ROOT, ns, dev);
    let json = run(ns, &["status", dev, "--json"]);
    if let Some(kind) = expected_kind() {
        assert!(json.contains(&format!("\"mode\":\"{kind}\"")), "{json}");
    }
    // Where a component's map is pinned: by its name in its object.
    let map_pin = |tag: &str, name: &str| dir.join(tag).join(name);
    let echo = map_pin("c0", "echo_requests");
    assert_eq!(read_u64(pinned(&echo).as_fd(), 0), 3);

    // Another process adds a firewall: the counter's map keeps counting.
    run(ns, &["add", dev, p(&filter), "--priority", "60"]);
    assert_eq!(names(ns, dev), ["xdp_count", "xdpfilt_udp"]);
    ping(&net, 2);
    assert_eq!(read_u64(pinned(&echo).as_fd(), 0), 5);
    for _ in 0..2 {
        sh(&format!(
            "ip netns exec {} bash -c 'echo x > /dev/udp/198.18.0.2/9999'",
            net.ns_a
        ));
    }
    let drops = || read_percpu_sum(pinned(&map_pin("c1", "xdp_stats_map")).as_fd(), 1);
    assert_eq!(drops(), 2);

    // A third removes the counter by name: the firewall's state stays.
    run(ns, &["remove", dev, "xdp_count"]);
    assert_eq!(names(ns, dev), ["xdpfilt_udp"]);
    assert!(
        !dir.join("c0").exists(),
        "the removed component's pins are gone"
    );
    sh(&format!(
        "ip netns exec {} bash -c 'echo x > /dev/udp/198.18.0.2/9999'",
        net.ns_a
    ));
    assert_eq!(drops(), 3);

    // Re-added, the counter is a new component with fresh state, by id.
    run(ns, &["add", dev, p(&counter)]);
    let tag = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with('c') && n != "c1")
        .unwrap();
    assert_eq!(
        read_u64(pinned(&map_pin(&tag, "echo_requests")).as_fd(), 0),
        0
    );

    // Tight permissions: directories 0700, pins 0600.
    for path in [ROOT.into(), dir.clone(), dir.join("c1")] {
        assert_eq!(
            std::fs::metadata(&path).unwrap().mode() & 0o777,
            0o700,
            "{}",
            path.display()
        );
    }
    for pin in [
        dir.join("state"),
        dir.join("stats"),
        dir.join("c1/object"),
        map_pin("c1", "filter_ports"),
    ] {
        assert_eq!(
            std::fs::metadata(&pin).unwrap().mode() & 0o777,
            0o600,
            "{}",
            pin.display()
        );
    }

    run(ns, &["remove", dev, "1"]);
    run(ns, &["detach", dev]);
    assert!(!dir.exists(), "detach unpins everything");
    assert!(!sh(&format!("ip -n {ns} link show {dev}")).contains("prog/xdp"));
}

#[test]
fn eight_processes_add_at_once_and_none_is_lost() {
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    run(ns, &["attach", dev, p(&obj("counter"))]);
    let verdict = obj("verdict");
    // Eight processes started together, each adding its own component.
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (ns, dev, verdict) = (ns.to_string(), dev.to_string(), verdict.clone());
            std::thread::spawn(move || {
                xdpchain_in(
                    BIN,
                    &ns,
                    &[
                        "add",
                        &dev,
                        p(&verdict),
                        "--priority",
                        &(20 + i).to_string(),
                    ],
                    &[OURS],
                )
            })
        })
        .collect();
    for h in handles {
        let (ok, _, err) = h.join().unwrap();
        assert!(ok, "{err}");
    }
    let n = names(ns, dev);
    assert_eq!(n.len(), 9, "{n:?}");
    assert_eq!(n.iter().filter(|x| *x == "xdp_verdict").count(), 8);
    run(ns, &["detach", dev]);
}

#[test]
fn equal_ifindexes_in_two_namespaces_do_not_collide() {
    let (x, y) = (VethPair::new(), VethPair::new());
    // Fresh devices made inside each namespace get the same index there.
    for ns in [&x.ns_b, &y.ns_b] {
        sh(&format!("ip -n {ns} link add xcoll0 type veth peer name xcoll1 && ip -n {ns} link set xcoll0 up && ip -n {ns} link set xcoll1 up"));
    }
    let (dx, dy) = (
        chain_dir(ROOT, &x.ns_b, "xcoll0"),
        chain_dir(ROOT, &y.ns_b, "xcoll0"),
    );
    assert_eq!(dx.file_name(), dy.file_name(), "same ifindex");
    run(&x.ns_b, &["attach", "xcoll0", p(&obj("counter"))]);
    run(&y.ns_b, &["attach", "xcoll0", p(&obj("verdict"))]);
    assert_ne!(dx, dy);
    assert!(dx.join("state").exists() && dy.join("state").exists());
    assert_eq!(names(&x.ns_b, "xcoll0"), ["xdp_count"]);
    assert_eq!(names(&y.ns_b, "xcoll0"), ["xdp_verdict"]);
    run(&x.ns_b, &["add", "xcoll0", p(&obj("proprietary"))]);
    run(&x.ns_b, &["detach", "xcoll0"]);
    assert_eq!(names(&y.ns_b, "xcoll0"), ["xdp_verdict"]);
    run(&y.ns_b, &["detach", "xcoll0"]);
}

#[test]
fn stale_records_are_removed() {
    let _inodes = NAMESPACE_INODES.lock().unwrap_or_else(|e| e.into_inner());
    // An interface deleted under its chain: the next operation removes the record.
    let net = VethPair::new();
    let ns = net.ns_b.as_str();
    sh(&format!(
        "ip -n {ns} link add xstale0 type veth peer name xstale1 && ip -n {ns} link set xstale0 up"
    ));
    run(ns, &["attach", "xstale0", p(&obj("counter"))]);
    let dir = chain_dir(ROOT, ns, "xstale0");
    assert!(dir.exists());
    sh(&format!("ip -n {ns} link del xstale0"));
    run(ns, &["attach", &net.dev_b, p(&obj("verdict"))]);
    assert!(!dir.exists(), "swept by the next operation");

    // A chain detached by another tool: `clean` removes its record.
    let dir = chain_dir(ROOT, ns, &net.dev_b);
    sh(&format!("ip -n {ns} link set dev {} xdp off", net.dev_b));
    let out = run(ns, &["clean"]);
    assert!(out.contains(dir.to_str().unwrap()), "{out}");
    assert!(!dir.exists());

    // A namespace deleted under its chain: `clean` from anywhere removes it.
    let gone = VethPair::new();
    run(&gone.ns_b, &["attach", &gone.dev_b, p(&obj("counter"))]);
    let dir = chain_dir(ROOT, &gone.ns_b, &gone.dev_b);
    drop(gone);
    assert!(dir.exists());
    let out = run(ns, &["clean"]);
    assert!(
        out.contains(dir.parent().unwrap().to_str().unwrap()),
        "{out}"
    );
    assert!(!dir.exists());
}

#[test]
fn errors() {
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    let counter = obj("counter");

    // A program named like libxdp's dispatcher that does not follow its
    // protocol is left alone, with or without force.
    sh(&format!(
        "ip -n {ns} link set dev {dev} xdpdrv obj {} sec xdp",
        obj("dispatcher").display()
    ));
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["add", dev, p(&counter)];
        args.extend(extra);
        let err = fails(ns, &args, &[]);
        assert!(err.contains("no libxdp config"), "{err}");
    }
    assert!(sh(&format!("ip -n {ns} link show {dev}")).contains("xdp_dispatcher"));
    sh(&format!("ip -n {ns} link set dev {dev} xdpdrv off"));

    // A chain attached by a process that keeps no record cannot be changed.
    let mut chain = xdpchain::Chain::new();
    chain
        .add(xdpchain::Component::from_file(&counter, None).unwrap())
        .unwrap();
    net.in_b(|| chain.attach(dev, Default::default())).unwrap();
    let err = fails(ns, &["add", dev, p(&obj("verdict"))], &[]);
    assert!(err.contains("holds no record"), "{err}");
    let err = fails(ns, &["remove", dev, "xdp_count"], &[]);
    assert!(err.contains("holds no record"), "{err}");
    net.in_b(|| chain.detach()).unwrap();

    // Nothing there, and no such component.
    let err = fails(ns, &["remove", dev, "xdp_count"], &[]);
    assert!(err.contains("runs no chain"), "{err}");
    run(ns, &["attach", dev, p(&counter)]);
    let err = fails(ns, &["remove", dev, "nope"], &[]);
    assert!(err.contains("no component named 'nope'"), "{err}");
    let err = fails(ns, &["add", dev, p(&obj("bad"))], &[]);
    assert!(err.contains("rejected by the verifier"), "{err}");
    assert_eq!(
        names(ns, dev),
        ["xdp_count"],
        "a failed add changes nothing"
    );
    run(ns, &["detach", dev]);

    // Pin directories that are not ours alone, or not on bpffs.
    let open = format!("/sys/fs/bpf/xdpc-open-{}", std::process::id());
    std::fs::create_dir_all(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = fails(
        ns,
        &["add", dev, p(&counter)],
        &[("XDPCHAIN_PIN_DIR", &open)],
    );
    assert!(
        err.contains("refusing pin directory") && err.contains("mode 777"),
        "{err}"
    );
    std::fs::remove_dir(&open).unwrap();
    let link = format!("/sys/fs/bpf/xdpc-link-{}", std::process::id());
    std::os::unix::fs::symlink(ROOT, &link).unwrap();
    let err = fails(
        ns,
        &["add", dev, p(&counter)],
        &[("XDPCHAIN_PIN_DIR", &link)],
    );
    std::fs::remove_file(&link).unwrap();
    assert!(
        err.contains("refusing pin directory") && err.contains("symlink"),
        "{err}"
    );
    let tmp = format!("/tmp/xdpc-notbpffs-{}", std::process::id());
    let err = fails(
        ns,
        &["add", dev, p(&counter)],
        &[("XDPCHAIN_PIN_DIR", &tmp)],
    );
    assert!(err.contains("bpffs is not mounted at /tmp"), "{err}");
    assert!(!Path::new(&tmp).exists(), "nothing created off bpffs");
    assert!(!sh(&format!("ip -n {ns} link show {dev}")).contains("prog/xdp"));
}

#[test]
fn the_store_api_and_a_directory_of_ones_own() {
    let _inodes = NAMESPACE_INODES.lock().unwrap_or_else(|e| e.into_inner());
    let net = VethPair::new();
    let root_dir = PinDir::new("api");
    let root = format!("{}/store", root_dir.0);
    let store = xdpchain::Store::at(&root).with_layout(xdpchain::Layout::Xdpchain);
    let counter = xdpchain::Component::from_file(obj("counter"), None).unwrap();
    let verdict = xdpchain::Component::from_file(obj("verdict"), None).unwrap();
    net.in_b(|| {
        let a = store.add(&net.dev_b, counter, Default::default()).unwrap();
        let b = store
            .add(&net.dev_b, verdict.with_priority(70), Default::default())
            .unwrap();
        assert_eq!(
            (a.added(), b.added()),
            (
                vec![xdpchain::ComponentId(0)],
                vec![xdpchain::ComponentId(1)]
            )
        );
        assert_eq!(a.changes[0].action, xdpchain::Action::Added);
        assert_eq!(a.changes[0].program.name, "xdp_count");
        let st = xdpchain::status(&net.dev_b).unwrap();
        assert_eq!(
            st.components.iter().map(|c| c.id).collect::<Vec<_>>(),
            [0, 1]
        );
        store.remove(&net.dev_b, "xdp_count").unwrap();
        // Ids stay with their components.
        assert_eq!(xdpchain::status(&net.dev_b).unwrap().components[0].id, 1);
    });
    let dir = chain_dir(&root, &net.ns_b, &net.dev_b);
    assert!(dir.join("state").exists(), "recorded under {root}");
    assert!(!Path::new(ROOT)
        .join(dir.strip_prefix(&root).unwrap())
        .exists());
    net.in_b(|| store.detach(&net.dev_b, false)).unwrap();
    assert!(!dir.exists());
}

#[test]
fn another_process_replaces_a_slot() {
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    run(ns, &["attach", dev, p(&obj("counter"))]);
    run(ns, &["add", dev, p(&obj("verdict")), "--priority", "60"]);
    ping(&net, 2);
    let before = run(ns, &["status", dev, "--json"]);
    run(ns, &["replace", dev, "xdp_verdict", p(&obj("adjust"))]);
    assert_eq!(names(ns, dev), ["xdp_count", "xdp_adjust"]);
    let after = run(ns, &["status", dev, "--json"]);
    // Same ids; the counter, untouched, goes on counting from where it was.
    let ids = |json: &str| -> Vec<String> {
        json.split("{\"id\":")
            .skip(1)
            .map(|c| c.split(',').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&before), ids(&after));
    ping(&net, 3);
    let json = run(ns, &["status", dev, "--json"]);
    let first = json.split("\"packets\":").nth(1).unwrap();
    let packets: u64 = first.split(',').next().unwrap().parse().unwrap();
    assert!(packets >= 5, "{json}");
    let err = fails(ns, &["replace", dev, "nope", p(&obj("verdict"))], &[]);
    assert!(err.contains("no component named 'nope'"), "{err}");
    run(ns, &["detach", dev]);
}

/// With the default mode (auto), a chain is dynamic where the kernel has
/// freplace; where the kernel refuses a component as an extension program
/// that it takes linked (5.10 refuses a global function that takes the
/// context there), the chain is static instead, and says why. Asked for
/// explicitly, a dynamic chain still fails with the verifier's words.
#[test]
fn auto_chains_stay_static_where_the_kernel_refuses_an_extension() {
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    let ctx = obj("ctxglobal");
    let ctx = p(&ctx);
    // The mode of a command that names none, whatever the suite's default.
    let auto = [("XDPCHAIN_MODE", "auto")];
    let default = |args: &[&str]| {
        let (ok, out, err) = xdpchain_in(BIN, ns, args, &auto);
        assert!(ok, "xdpchain {args:?}: {err}");
        out
    };
    let status = || -> serde_json::Value {
        let json = default(&["status", dev, "--json"]);
        serde_json::from_str::<serde_json::Value>(&json).unwrap()[0].clone()
    };
    let freplace = xdpchain::features().unwrap().freplace;
    let (dynamic_ok, _, err) = xdpchain_in(BIN, ns, &["add", dev, ctx, "--mode", "dynamic"], &auto);
    match (freplace, dynamic_ok) {
        (false, _) => assert!(err.contains("freplace"), "{err}"),
        (true, true) => {
            assert_eq!(status()["mode"], "dynamic");
            default(&["detach", dev]);
        }
        (true, false) => {
            let first = err.lines().next().unwrap();
            assert!(
                first.contains("component") && first.contains("rejected by the verifier"),
                "{err}"
            );
            let (ok, _, _) = xdpchain_in(BIN, ns, &["status", dev], &auto);
            assert!(!ok, "the refused chain left something on {dev}");
        }
    }
    let (counter, verdict) = (obj("counter"), obj("verdict"));
    let said = default(&["attach", dev, ctx, p(&counter), p(&verdict)]);
    let st = status();
    if freplace && !dynamic_ok {
        assert!(
            said.contains(&format!(
                "{dev}: the chain is static: the kernel refused {ctx}:xdp_ctx_global as an extension program: "
            )),
            "{said}"
        );
        assert_eq!(st["mode"], "static");
        let why = st["not_dynamic"].as_str().unwrap();
        assert!(why.contains("as an extension program"), "{st}");
        let text = default(&["status", dev]);
        assert!(
            text.contains("static, not dynamic: the kernel refused"),
            "{text}"
        );
    } else {
        assert_eq!(st["mode"], if freplace { "dynamic" } else { "static" });
        assert!(st["not_dynamic"].is_null(), "{st}");
    }
    ping(&net, 3);
    // The chain keeps its kind, and why, as it changes: here a program as
    // its loader ships it joins, Debian's xdp-filter with a policy of deny
    // and no rule, which drops what the others pass.
    let udp = corpus().join("libxdp1").join("xdpfilt_dny_udp.o");
    default(&["add", dev, p(&udp)]);
    let lost = sh(&format!(
        "ip netns exec {} ping -c 3 -i 0.05 -W 1 198.18.0.2 || true",
        net.ns_a
    ));
    assert!(lost.contains(" 0 received"), "{lost}");
    let later = status();
    assert_eq!(
        (&later["mode"], &later["not_dynamic"]),
        (&st["mode"], &st["not_dynamic"])
    );
    let components = later["components"].as_array().unwrap();
    let mut names: Vec<_> = components
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "xdp_count",
            "xdp_ctx_global",
            "xdp_verdict",
            "xdpfilt_dny_udp"
        ],
        "{later}"
    );
    let filter = components.iter().find(|c| c["name"] == "xdpfilt_dny_udp");
    let dropped = filter.and_then(|c| c["counters"]["drop"].as_u64());
    assert!(dropped.is_some_and(|n| n >= 3), "{later}");
    default(&["detach", dev]);
    assert!(!chain_dir(ROOT, ns, dev).exists());
    let link = sh(&format!("ip -n {ns} link show {dev}"));
    assert!(!link.contains("prog/xdp"), "{link}");
}
