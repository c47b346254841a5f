//! The `xdpchain` command, and the linked object in other loaders' hands.
mod common;

use common::*;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_xdpchain");

fn xdpchain(args: &[&str]) -> (bool, String, String) {
    output(Command::new(BIN).args(args))
}

/// The exit status of `cmd`, and its stderr.
fn exit(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into();
    (out.status.code().expect("exited"), err)
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// The verdict of the chain on `net`'s second end for a UDP packet.
fn verdict_on(net: &VethPair) -> u32 {
    in_netns(&net.ns_b, || {
        xdpchain::Store::new()
            .open(&net.dev_b, xdpchain::OpenOptions::default())
            .and_then(|c| c.test_run(&udp_packet(53), 1))
            .unwrap()
            .0
    })
}

#[test]
fn linked_object_loads_in_bpftool_and_iproute2() {
    let a = compile("filter", "_c1", &["-g", "-DFILTER_PORT=1"]);
    let b = compile("filter", "_c2", &["-g", "-DFILTER_PORT=2"]);
    let out = repo().join(format!("target/test-bpf/chain.{}.o", std::process::id()));
    let (ok, _, err) = xdpchain(&[
        "link",
        "-o",
        path(&out),
        path(&a),
        &format!("{}:xdpfilt_udp", path(&b)),
        path(&obj("counter")),
    ]);
    assert!(ok, "{err}");
    let pin = format!("/sys/fs/bpf/xdpchain-test-{}", std::process::id());
    sh(&format!("bpftool prog load {} {pin} && bpftool prog show pinned {pin} | grep -q xdpchain_root; rc=$?; rm -f {pin}; exit $rc", out.display()));
    let net = VethPair::new();
    sh(&format!(
        "ip -n {} link set dev {} xdp obj {} sec xdp",
        net.ns_b,
        net.dev_b,
        out.display()
    ));
    let st = xdpchain_ok(BIN, &net.ns_b, &["status", &net.dev_b, "--json"]);
    assert!(
        st.contains("\"name\":\"xdp_count\"") && st.contains("\"mode\":\"static\""),
        "{st}"
    );
    let ping = sh(&format!(
        "ip netns exec {} ping -c 2 -i 0.05 198.18.0.2",
        net.ns_a
    ));
    assert!(ping.contains("2 received"), "{ping}");
    std::fs::remove_file(&out).unwrap();
}

/// Maps pinned by name keep their names in a linked file, and components
/// that pin the same name share one map there, as loaded one by one.
#[test]
fn linked_files_keep_the_names_of_pinned_maps() {
    let pinned = compile("pinned", "_lk", &["-g", "-DPIN_NAME=xdpc_lk_hits"]);
    let out = repo().join(format!("target/test-bpf/pinned.{}.o", std::process::id()));
    let (ok, _, err) = xdpchain(&["link", "-o", path(&out), path(&pinned), path(&pinned)]);
    assert!(ok, "{err}");
    let prog = format!("/sys/fs/bpf/xdpchain-test-lk-{}", std::process::id());
    let map = "/sys/fs/bpf/xdpc_lk_hits";
    let maps = sh(&format!(
        "rm -f {map}; bpftool prog load {} {prog} && test -e {map} && bpftool -j prog show pinned {prog}; rc=$?; rm -f {prog} {map}; exit $rc",
        out.display()
    ));
    // The chain's program uses its config, its counters, its control word,
    // its dump ring and one shared map.
    let ids = maps
        .split("\"map_ids\":[")
        .nth(1)
        .and_then(|s| s.split(']').next());
    assert_eq!(ids.map(|s| s.split(',').count()), Some(5), "{maps}");
}

#[test]
fn attach_status_detach() {
    let net = VethPair::new();
    let counter = obj("counter");
    let out = xdpchain_ok(
        BIN,
        &net.ns_b,
        &["attach", &net.dev_b, path(&counter), path(&obj("verdict"))],
    );
    assert!(
        out.contains("xdp_count") && out.contains("xdp_verdict"),
        "{out}"
    );
    sh(&format!(
        "ip netns exec {} ping -c 3 -i 0.05 198.18.0.2",
        net.ns_a
    ));
    let st = xdpchain_ok(BIN, &net.ns_b, &["status"]);
    assert!(st.contains(&net.dev_b), "{st}");
    let json = xdpchain_ok(BIN, &net.ns_b, &["status", &net.dev_b, "--json"]);
    assert!(
        json.contains("\"continue_on\":[\"drop\",\"pass\"]"),
        "{json}"
    );
    // Static: copied into a root generated for the chain; dynamic: unknown.
    assert!(
        json.contains("\"inlined\":true") || json.contains("\"mode\":\"dynamic\""),
        "{json}"
    );
    xdpchain_ok(BIN, &net.ns_b, &["detach", &net.dev_b]);
    assert_eq!(
        xdpchain_ok(BIN, &net.ns_b, &["status"]).trim(),
        "no chains attached"
    );
}

#[test]
fn errors_are_one_line_and_specific() {
    let (code, err) =
        exit(Command::new(BIN).args(["attach", "xdpc-nosuchdev", path(&obj("counter"))]));
    assert!(
        code == 66 && err.trim() == "xdpchain: no such interface: xdpc-nosuchdev",
        "{err}"
    );
    let text = repo().join("target/test-bpf/not-elf.txt");
    std::fs::write(&text, "just text\n").unwrap();
    let (code, err) = exit(Command::new(BIN).args(["link", "-o", "/dev/null", path(&text)]));
    assert!(
        code == 65 && err.contains("not an ELF file") && err.lines().count() == 1,
        "{err}"
    );
    let (ok, _, err) = xdpchain(&[
        "link",
        "-o",
        "/dev/null",
        &format!("{}:nope", path(&obj("counter"))),
    ]);
    assert!(!ok && err.contains("no XDP program named 'nope'"), "{err}");
    let (ok, _, err) = xdpchain(&["link", "-o", "/dev/null", path(&obj("tc"))]);
    assert!(!ok && err.contains("no XDP program in the object"), "{err}");
    // Inputs that are no object files are refused at once, on one line:
    // nothing read without end, nothing blocked on, a path of any bytes.
    let tmp = TempDir::new("cli");
    let dir = tmp.0.clone();
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(path(&fifo)).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let sparse = dir.join("large.o");
    let mut f = std::fs::File::create(&sparse).unwrap();
    std::io::Write::write_all(&mut f, b"\x7fELF").unwrap();
    f.set_len(200 << 20).unwrap();
    for (input, says) in [
        (
            std::path::Path::new("/dev/zero"),
            "a device, not an object file",
        ),
        (&fifo, "a FIFO, not an object file"),
        (&dir, "a directory, not an object file"),
        (&sparse, "its size in bytes passes the limit of 67108864"),
    ] {
        let (code, err) = exit(
            Command::new(BIN)
                .args(["link", "-o", "/dev/null"])
                .arg(input),
        );
        assert!(
            code == 65 && err.contains(says) && err.lines().count() == 1,
            "{err}"
        );
    }
    let odd = dir.join(std::ffi::OsStr::from_bytes(b"\xff.o"));
    std::fs::copy(obj("counter"), &odd).unwrap();
    let (code, err) = exit(
        Command::new(BIN)
            .args(["link", "-o", "/dev/null"])
            .arg(&odd),
    );
    assert_eq!(code, 0, "{err}");
    let (code, err) = exit(Command::new(BIN).arg("frobnicate"));
    assert!(
        code == 2 && err.contains("unrecognized subcommand 'frobnicate'"),
        "{err}"
    );
    // The verifier's rejection: one line naming the component and the
    // verifier's last words, then the end of its log, indented, once.
    let net = VethPair::new();
    let (code, err) = exit(in_ns(&net.ns_b, &[BIN, "attach", &net.dev_b]).arg(obj("bad")));
    let first = err.lines().next().unwrap();
    assert!(
        code == 65
            && first.starts_with("xdpchain: component ")
            && first.ends_with(
                "bad.o:xdp_unchecked: rejected by the verifier: invalid access to packet, \
                 off=100 size=1, R1(id=0,off=100,r=0); R1 offset is outside of the packet"
            ),
        "{err}"
    );
    let log: Vec<&str> = err.lines().skip(1).collect();
    assert!(
        log[0].starts_with("  the verifier's log")
            && log.iter().all(|l| l.starts_with("  "))
            && log.len() <= 21
            && log.last().unwrap().starts_with("  processed "),
        "{err}"
    );
    assert!(!err.contains("os error"), "{err}");
    // With -v the whole log, still once: libbpf's copy of it is left out.
    let (code, err) = exit(in_ns(&net.ns_b, &[BIN, "-v", "attach", &net.dev_b]).arg(obj("bad")));
    assert!(
        code == 65
            && err.matches("  processed ").count() == 1
            && err.contains("\n  the verifier's log:\n"),
        "{err}"
    );
    // With -vv, libbpf's messages go to stderr through the log facade,
    // before the error.
    let (code, err) = exit(in_ns(&net.ns_b, &[BIN, "-vv", "attach", &net.dev_b]).arg(obj("bad")));
    assert!(
        code == 65 && err.contains("debug: libbpf: ") && err.lines().count() > 10,
        "{err}"
    );
}

#[test]
fn version_help_and_usage() {
    let (ok, out, _) = xdpchain(&["--version"]);
    assert!(
        ok && out.trim() == format!("xdpchain {}", env!("CARGO_PKG_VERSION")),
        "{out}"
    );
    let (ok, out, _) = xdpchain(&["attach", "--help"]);
    for opt in [
        "--skb",
        "--force",
        "--no-counters",
        "--mode",
        "--layout",
        "--owner",
        "--netns",
    ] {
        assert!(ok && out.contains(opt), "attach --help lacks {opt}: {out}");
    }
    let (ok, out, _) = xdpchain(&["--help"]);
    assert!(
        ok && out.contains("Exit status") && out.contains("detach"),
        "{out}"
    );
    // A usage error says what is missing, on one line, and exits 2.
    let (code, err) = exit(Command::new(BIN).arg("add"));
    assert!(
        code == 2 && err.contains("<IFACE>") && err.lines().count() == 1,
        "{err}"
    );
    let (code, err) = exit(Command::new(BIN).args(["add", "lo", "x.o", "--continue-on", "maybe"]));
    assert!(code == 2 && err.contains("maybe"), "{err}");
}

#[test]
fn missing_privileges() {
    let net = VethPair::new();
    let counter = obj("counter");
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        BIN,
        "attach",
        &net.dev_b,
    ];
    let (code, err) = exit(in_ns(&net.ns_b, &nobody).arg(&counter));
    assert!(code == 77 && err.contains("permission denied"), "{err}");
    // Under ip netns exec too, which hides the bpffs of a parent that is
    // not this user's: privileges are what is missing.
    let (code, err) = exit(
        Command::new("ip")
            .args(["netns", "exec", &net.ns_b])
            .args(nobody)
            .arg(&counter),
    );
    assert!(
        code == 77 && err.contains("permission denied (needs root"),
        "{err}"
    );
    assert!(!sh(&format!("ip -n {} link show {}", net.ns_b, net.dev_b)).contains("prog/xdp"));
}

#[test]
fn bpffs_not_mounted() {
    let net = VethPair::new();
    // A private mount namespace where /sys/fs/bpf is a plain tmpfs, and
    // the store named there (else the parent's bpffs is found).
    let script = format!(
        "mount -t tmpfs none /sys/fs/bpf && XDPCHAIN_PIN_DIR=/sys/fs/bpf/xdpchain exec {BIN} attach {} {}",
        net.dev_b,
        obj("pinned").display()
    );
    let (code, err) = exit(&mut in_ns(
        &net.ns_b,
        &["unshare", "-m", "sh", "-c", &script],
    ));
    assert!(
        code == 69 && err.contains("bpffs is not mounted at /sys/fs/bpf"),
        "{err}"
    );
}

#[test]
fn add_configures_the_program_first() {
    let net = VethPair::new();
    let configured = obj("configured");
    let add = |extra: &[&str]| {
        let mut args = vec![BIN, "add", &net.dev_b];
        let path = path(&configured);
        args.push(path);
        args.extend_from_slice(extra);
        exit(&mut in_ns(&net.ns_b, &args))
    };
    // Unconfigured, its map has no size: refused before libbpf tries,
    // naming the map as the object does; nothing attached.
    let (code, err) = add(&[]);
    assert!(
        code == 65
            && err.lines().count() == 1
            && err.contains("configured.o:")
            && err.contains(": map 'hits' has no size (max_entries 0)")
            && !err.contains("libbpf"),
        "{err}"
    );
    let (code, err) = add(&["--set", "cfg_verdict=0x10000000000", "--map-size", "hits=4"]);
    assert!(code == 65 && err.contains("does not fit"), "{err}");
    let (code, err) = add(&["--set", "cfg_verdict", "--map-size", "hits=4"]);
    assert!(code == 2 && err.contains("NAME=VALUE"), "{err}");
    let (code, err) = add(&[
        "--set",
        "cfg_verdict=1",
        "--set",
        "cfg_slot=hex:0300",
        "--map-size",
        "hits=4",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(verdict_on(&net), xdpchain::Verdict::Drop as u32);
    xdpchain_ok(BIN, &net.ns_b, &["detach", &net.dev_b]);
}

/// With several programs, link and attach configure each that an
/// assignment names (PROG:NAME=VALUE); one naming no program, or none of
/// those given, is refused before anything loads.
#[test]
fn link_and_attach_configure_each_program() {
    let (counter, configured) = (obj("counter"), obj("configured"));
    let programs = [path(&counter), path(&configured)];
    let set = [
        "--set",
        "xdp_configured:cfg_verdict=1",
        "--map-size",
        "xdp_configured:hits=4",
    ];
    let out = repo().join(format!(
        "target/test-bpf/configured-link.{}.o",
        std::process::id()
    ));
    let (ok, _, err) = xdpchain(&[&["link", "-o", path(&out)][..], &programs, &set].concat());
    assert!(ok, "{err}");
    // The file runs configured: the second program drops.
    let mut linked = xdpchain::Chain::new();
    linked
        .add(xdpchain::Component::from_file(&out, None).unwrap())
        .unwrap();
    linked.load().unwrap();
    assert_eq!(
        linked.test_run(&udp_packet(53), 1).unwrap().0,
        xdpchain::Verdict::Drop as u32
    );
    std::fs::remove_file(&out).unwrap();

    let net = VethPair::new();
    let attach = [&["attach", &net.dev_b][..], &programs].concat();
    for (extra, code, want) in [
        (
            &["--set", "cfg_verdict=1"][..],
            65,
            "name one, as PROG:cfg_verdict=",
        ),
        (&["--map-size", "nope:hits=4"][..], 65, "no program nope"),
        (&["--set", ":cfg_verdict=1"][..], 2, "[PROG:]NAME=VALUE"),
    ] {
        let (got, err) = exit(&mut in_ns(
            &net.ns_b,
            &[&[BIN][..], &attach, extra].concat(),
        ));
        assert!(got == code && err.contains(want), "{extra:?}: {got} {err}");
    }
    assert!(!sh(&format!("ip -n {} link show {}", net.ns_b, net.dev_b)).contains("prog/xdp"));
    xdpchain_ok(BIN, &net.ns_b, &[&attach[..], &set].concat());
    assert_eq!(verdict_on(&net), xdpchain::Verdict::Drop as u32);
    xdpchain_ok(BIN, &net.ns_b, &["detach", &net.dev_b]);
}

/// Old section names link as XDP; a GPL-only helper beside a non-GPL
/// licence does not, naming both, and writes nothing.
#[test]
fn old_section_names_and_licences_through_the_command() {
    let dir = repo().join("target/test-bpf");
    let out = dir.join(format!("oldsec-link.{}.o", std::process::id()));
    let (ok, _, err) = xdpchain(&["link", "-o", path(&out), path(&obj("oldsec"))]);
    assert!(ok, "{err}");
    let linked = xdpchain::Component::from_file(&out, None).unwrap();
    assert_eq!(linked.program(), "xdpchain_root");
    let mut chain = xdpchain::Chain::new();
    chain.add(linked).unwrap();
    chain.load().unwrap();
    assert_eq!(
        chain.test_run(&udp_packet(53), 1).unwrap().0,
        xdpchain::Verdict::Tx as u32
    );
    std::fs::remove_file(&out).unwrap();
    let (code, err) = exit(Command::new(BIN).args([
        "link",
        "-o",
        path(&out),
        path(&obj("gplonly")),
        path(&obj("proprietary")),
    ]));
    assert_eq!(code, 69, "{err}");
    assert!(
        err.contains("gplonly.o:xdp_printk") && err.contains("proprietary.o:xdp_prop"),
        "{err}"
    );
    assert!(!out.exists());
}

/// The sum of run_cnt over the components of the chain on `dev`.
fn timed_runs(net: &VethPair) -> u64 {
    let json = xdpchain_ok(BIN, &net.ns_b, &["status", &net.dev_b, "--json"]);
    let st: serde_json::Value = serde_json::from_str(&json).unwrap();
    st[0]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["counters"]["run_cnt"].as_u64().expect("counters"))
        .sum()
}

/// A chain that counts (xdpchain's layout) of the test objects `names` on
/// the second end of `net`.
fn attach_counting(net: &VethPair, names: &[&str]) {
    let objs: Vec<_> = names.iter().map(|n| obj(n)).collect();
    let mut args = vec!["attach", &net.dev_b, "--counters"];
    args.extend(objs.iter().map(|o| path(o)));
    xdpchain_ok(BIN, &net.ns_b, &args);
}

fn top(net: &VethPair, args: &[&str]) -> Command {
    let mut cmd = in_ns(&net.ns_b, &[BIN, "top", &net.dev_b]);
    cmd.args(args);
    cmd
}

#[test]
fn top_shows_rates_and_time_per_component() {
    let net = VethPair::new();
    attach_counting(&net, &["counter", "verdict"]);
    let ping = ping_in_background(&net.ns_a, 100, "0.01");
    let (ok, out, err) = output(&mut top(&net, &["--once", "--json", "--interval", "0.5"]));
    ping.join().unwrap();
    assert!(ok, "{err}");
    let chains: serde_json::Value = serde_json::from_str(&out).unwrap();
    let components = chains[0]["components"].as_array().unwrap();
    let names: Vec<&str> = components
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["xdp_count", "xdp_verdict"]);
    let mut share = 0.0;
    for c in components {
        assert!(c["packets_per_s"].as_f64().unwrap() > 0.0, "{c}");
        assert!(c["verdicts_per_s"]["pass"].as_f64().unwrap() > 0.0, "{c}");
        assert!(c["ns_per_packet"].as_f64().unwrap() > 0.0, "{c}");
        share += c["time_share"].as_f64().unwrap();
    }
    assert!((share - 1.0).abs() < 1e-6, "{out}");

    // Without a terminal: one line per component and sample.
    let (ok, out, err) = output(&mut top(&net, &["--once", "--interval", "0.1"]));
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.contains("name=xdp_count") && out.contains("ns/pkt="),
        "{out}"
    );

    // In a terminal: the table, redrawn.
    let (mut master, mut slave) = (0, 0);
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0);
    let (master, slave) = unsafe {
        use std::os::fd::FromRawFd;
        (
            std::fs::File::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    };
    let mut child = top(&net, &["--interval", "0.2"])
        .stdout(slave)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    let mut screen = Vec::new();
    // Read until the terminal's other end is gone (EIO).
    let _ = std::io::Read::read_to_end(&mut &master, &mut screen);
    let screen = String::from_utf8_lossy(&screen);
    assert!(screen.matches("\x1b[H\x1b[2J").count() >= 2, "{screen:?}");
    assert!(
        screen.contains("pkts/s") && screen.contains("xdp_verdict"),
        "{screen:?}"
    );

    let (ok, _, err) = output(&mut top(&net, &["--interval", "0"]));
    assert!(!ok && err.contains("is not a number of seconds"), "{err}");
    xdpchain_ok(BIN, &net.ns_b, &["detach", &net.dev_b]);
}

/// Timing runs while a reader runs, two at once too, and stops a lease
/// after the last one is killed.
#[test]
fn timing_stops_when_the_last_reader_is_killed() {
    let net = VethPair::new();
    attach_counting(&net, &["counter"]);
    let pings = |n| {
        let out = ping_in_background(&net.ns_a, n, "0.02").join().unwrap();
        assert!(ping_received(&out) > 0, "{out}");
    };
    let quiet = |cmd: &mut Command| cmd.stdout(std::process::Stdio::null()).spawn().unwrap();
    let mut one = quiet(&mut top(&net, &["--interval", "0.2"]));
    let mut two = quiet(&mut top(&net, &["--interval", "0.2", "--json"]));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let before = timed_runs(&net);
    pings(10);
    let with_two = timed_runs(&net);
    assert!(with_two >= before + 10, "{before} -> {with_two}");
    one.kill().unwrap();
    one.wait().unwrap();
    pings(10);
    let with_one = timed_runs(&net);
    assert!(with_one >= with_two + 10, "{with_two} -> {with_one}");
    two.kill().unwrap();
    two.wait().unwrap();
    std::thread::sleep(xdpchain::TIMING_LEASE + std::time::Duration::from_millis(500));
    let after_lease = timed_runs(&net);
    pings(10);
    assert_eq!(timed_runs(&net), after_lease);
    xdpchain_ok(BIN, &net.ns_b, &["detach", &net.dev_b]);
}

/// The packets of a pcap file (or stream): (original length, bytes).
/// Raw records: pcap-file's checked ones refuse an original length past
/// the snap length, which is what a snap length makes.
fn pcap_packets(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut r = pcap_file::pcap::PcapReader::new(bytes).expect("a pcap header");
    let snaplen = r.header().snaplen;
    let mut out = Vec::new();
    while let Some(p) = r.next_raw_packet() {
        let p = p.expect("a whole packet");
        assert!(p.incl_len as usize == p.data.len() && p.incl_len <= snaplen.min(p.orig_len));
        out.push((p.orig_len, p.data.into_owned()));
    }
    out
}

/// An echo request from a to b, as ping -p ab makes it: its payload (past
/// ping's timestamp) is 0xab bytes.
fn is_echo_request(frame: &[u8]) -> bool {
    frame.len() == 98
        && frame[12..14] == [8, 0]
        && frame[23] == 1
        && frame[26..30] == [198, 18, 0, 1]
        && frame[30..34] == [198, 18, 0, 2]
        && frame[34] == 8
        && frame[58..].iter().all(|&b| b == 0xab)
}

#[test]
fn dump_writes_what_a_component_sees_as_pcap() {
    let net = VethPair::new();
    net.static_neighbours();
    attach_counting(&net, &["counter", "verdict"]);
    let pings = |n: u32| {
        sh(&format!(
            "ip netns exec {} ping -q -c {n} -i 0.05 -p ab 198.18.0.2",
            net.ns_a
        ))
    };
    let dump = |args: &[&str]| {
        let mut cmd = in_ns(&net.ns_b, &[BIN, "dump", &net.dev_b]);
        cmd.args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        // Packets are captured from the line that says so on (the line
        // alone is read: the rest stays for wait_with_output).
        let mut err = child.stderr.take().unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8];
        while byte != *b"\n" && std::io::Read::read(&mut err, &mut byte).unwrap() == 1 {
            line.push(byte[0]);
        }
        let line = String::from_utf8_lossy(&line);
        assert!(
            line.starts_with(&format!("dumping on {}", net.dev_b)),
            "{line}"
        );
        child.stderr = Some(err);
        child
    };
    let tmp = TempDir::new("dump");

    // Before bpf_xdp_load_bytes (5.18): refused with what is missing, and
    // no file written.
    if !kernel_at_least(5, 18) {
        let file = tmp.0.join("refused.pcap");
        let (code, err) = exit(&mut in_ns(
            &net.ns_b,
            &[BIN, "dump", &net.dev_b, "xdp_verdict", "-w", path(&file)],
        ));
        assert_eq!(code, 69, "{err}");
        assert!(err.contains("bpf_xdp_load_bytes"), "{err}");
        assert!(!file.exists());
        xdpchain_ok(BIN, &net.ns_b, &["detach", &net.dev_b]);
        return;
    }

    // -c: that many packets, each as sent, whole.
    let file = tmp.0.join("count.pcap");
    let child = dump(&["xdp_verdict", "-c", "4", "-w", path(&file)]);
    pings(4);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("4 packets captured, 0 lost"));
    let got = pcap_packets(&std::fs::read(&file).unwrap());
    assert_eq!(got.len(), 4);
    assert!(
        got.iter().all(|(len, f)| *len == 98 && is_echo_request(f)),
        "{got:?}"
    );

    // Ctrl-C leaves a valid file; -s cuts packets, not their length.
    let file = tmp.0.join("sigint.pcap");
    let child = dump(&["0", "--at", "exit", "-s", "40", "-w", path(&file)]);
    pings(3);
    std::thread::sleep(std::time::Duration::from_millis(300));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = pcap_packets(&std::fs::read(&file).unwrap());
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got.iter().all(|(len, f)| *len == 98 && f.len() == 40),
        "{got:?}"
    );

    // To standard output.
    let child = dump(&["xdp_count", "-c", "2", "-w", "-"]);
    pings(2);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let got = pcap_packets(&out.stdout);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|(_, f)| is_echo_request(f)));

    // Errors: one line each, with the exit status of the cause.
    let (code, err) = exit(&mut in_ns(
        &net.ns_b,
        &[BIN, "dump", &net.dev_b, "nosuch", "-w", "-"],
    ));
    assert_eq!(code, 66, "{err}");
    let (code, err) = exit(&mut in_ns(
        &net.ns_b,
        &[BIN, "dump", &net.dev_b, "0", "-s", "4096", "-w", "-"],
    ));
    assert_eq!(code, 65, "{err}");
    assert!(err.contains("snap length 4096"), "{err}");
    xdpchain_ok(BIN, &net.ns_b, &["detach", &net.dev_b]);
}

/// `--traceable PROG` keeps one program of a static chain a function of its
/// own, which status names; the record keeps it so when another process
/// rebuilds the chain. Options that name no program given are refused.
#[test]
fn traceable_components_through_the_command() {
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    let (counter, verdict) = (obj("counter"), obj("verdict"));
    let functions = || {
        let json = xdpchain_ok(BIN, ns, &["status", dev, "--json"]);
        let st: serde_json::Value = serde_json::from_str(&json).unwrap();
        st[0]["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let f = c["function"].as_str().map(str::to_string);
                (
                    c["name"].as_str().unwrap().to_string(),
                    f,
                    c["slot"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let attach = |extra: &[&str]| {
        let mut args = vec!["-n", ns, "attach", dev, path(&counter), path(&verdict)];
        args.extend(["--mode", "static"].iter().chain(extra));
        xdpchain(&args)
    };
    let (ok, _, err) = attach(&["--traceable"]);
    assert!(
        !ok && err.contains("--traceable: several programs are given"),
        "{err}"
    );
    let (ok, _, err) = attach(&["--traceable", "xdp_nosuch"]);
    assert!(
        !ok && err.contains("--traceable xdp_nosuch: no program xdp_nosuch"),
        "{err}"
    );
    let (ok, _, err) = attach(&["--traceable", "xdp_verdict"]);
    assert!(ok, "{err}");
    let check = |fs: Vec<(String, Option<String>, serde_json::Value)>| {
        for (name, f, slot) in fs {
            let want = (name == "xdp_verdict").then(|| format!("xdpchain_slot_{slot}"));
            assert_eq!(f, want, "{name}");
        }
    };
    check(functions());
    let table = xdpchain_ok(BIN, ns, &["status", dev]);
    assert!(table.contains("xdpchain_slot_"), "{table}");
    // Another process rebuilds the chain from its record: still traceable.
    xdpchain_ok(BIN, ns, &["add", dev, path(&obj("core"))]);
    let now = functions();
    assert_eq!(now.len(), 3);
    check(now);
    xdpchain_ok(BIN, ns, &["detach", dev]);
}

/// A component's id is never given to another: after one leaves and
/// another joins, the old id finds nothing (exit 66, "no component") and
/// the chain is unchanged.
#[test]
fn ids_are_never_reused() {
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    let add = |name: &str| {
        let out = xdpchain_ok(BIN, ns, &["add", dev, path(&obj(name))]);
        let id = out.split("added component ").nth(1).unwrap();
        id.split(':').next().unwrap().to_string()
    };
    let first = add("counter");
    let second = add("verdict");
    xdpchain_ok(BIN, ns, &["remove", dev, &second]);
    let third = add("core");
    assert!(
        third != second && third != first,
        "{first} {second} {third}"
    );
    let before = xdpchain_ok(BIN, ns, &["status", dev, "--json"]);
    let (code, err) = exit(&mut in_ns(ns, &[BIN, "remove", dev, &second]));
    assert_eq!(code, 66, "{err}");
    assert!(
        err.contains(&format!("no component named '{second}'")),
        "{err}"
    );
    assert_eq!(xdpchain_ok(BIN, ns, &["status", dev, "--json"]), before);
    xdpchain_ok(BIN, ns, &["detach", dev]);
}

/// Every change says what it did, one line per program: what it added,
/// replaced and removed, and what force dropped of other owners and of
/// another loader.
#[test]
fn every_change_says_what_it_did() {
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    let lines = |out: String| -> Vec<String> {
        out.lines()
            .map(|l| {
                l.strip_prefix(&format!("{dev}: "))
                    .unwrap_or_else(|| panic!("{out}"))
                    .to_string()
            })
            .collect()
    };
    // What fails leaves no directory behind.
    let dir = chain_dir(xdpchain::DEFAULT_PIN_DIR, ns, dev);
    let (code, _) = exit(&mut in_ns(ns, &[BIN, "remove", dev, "3"]));
    assert_eq!(code, 66);
    let (code, _) = exit(&mut in_ns(ns, &[BIN, "add", dev, path(&obj("bad"))]));
    assert_eq!(code, 65);
    assert!(!dir.parent().unwrap().exists(), "{}", dir.display());
    // Over iproute2's program: force drops it, and says so.
    sh(&format!(
        "ip -n {ns} link set dev {dev} xdpgeneric obj {} sec xdp",
        path(&obj("verdict"))
    ));
    let foreign = sh(&format!("ip -n {ns} -j link show dev {dev}"));
    let foreign: serde_json::Value = serde_json::from_str(&foreign).unwrap();
    let foreign = foreign[0]["xdp"]["prog"]["id"].as_u64().unwrap();
    let (code, err) = exit(&mut in_ns(
        ns,
        &[BIN, "add", dev, path(&obj("counter")), "--skb"],
    ));
    assert_eq!(code, 75, "{err}");
    let out = lines(xdpchain_ok(
        BIN,
        ns,
        &[
            "add",
            dev,
            path(&obj("counter")),
            "-m",
            "skb",
            "--force",
            "--owner",
            "fw",
        ],
    ));
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(
        out[0],
        format!("dropped xdp_verdict (program {foreign}, another loader's)")
    );
    // Ids are the chain's own, or program ids in libxdp's layout.
    let id = |line: &str| -> String {
        let rest = line.split("component ").nth(1).unwrap();
        rest.split(':').next().unwrap().to_string()
    };
    assert!(
        out[1].starts_with("added component ")
            && out[1].contains(": xdp_count (program ")
            && out[1].ends_with(", owner fw)"),
        "{out:?}"
    );
    let first = id(&out[1]);
    // xdp-loader's -m skb took, and the JSON says it in the flags' words.
    let json = xdpchain_ok(BIN, ns, &["status", dev, "--json"]);
    let st: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(st[0]["attach_mode"], "skb", "{json}");
    assert!(
        st[0]["mode"] == "static" || st[0]["mode"] == "dynamic",
        "{json}"
    );
    let (code, err) = exit(&mut in_ns(
        ns,
        &[BIN, "add", dev, path(&obj("core")), "-m", "hw"],
    ));
    assert!(
        code == 2 && err.contains("hw (offload to the NIC) is not supported"),
        "{err}"
    );
    let out = lines(xdpchain_ok(
        BIN,
        ns,
        &["add", dev, path(&obj("core")), "--owner", "probe"],
    ));
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(
        out[0].starts_with("added component ") && out[0].ends_with(", owner probe)"),
        "{out:?}"
    );
    let second = id(&out[0]);
    let out = lines(xdpchain_ok(
        BIN,
        ns,
        &[
            "replace",
            dev,
            &first,
            path(&obj("verdict")),
            "--owner",
            "fw",
        ],
    ));
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(
        out[0].starts_with("replaced component ")
            && out[0].contains(": xdp_count (program ")
            && out[0].contains(") with xdp_verdict (program ")
            && out[0].ends_with(", owner fw)"),
        "{out:?}"
    );
    let replaced = id(&out[0]);
    // Another owner's components go only with force, and are dropped.
    let mut out = lines(xdpchain_ok(
        BIN,
        ns,
        &["detach", dev, "--owner", "probe", "--force"],
    ));
    out.sort();
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        out[0].starts_with(&format!("dropped component {replaced}: xdp_verdict ("))
            && out[0].ends_with(", owner fw)"),
        "{out:?}"
    );
    assert!(
        out[1].starts_with(&format!("removed component {second}: "))
            && out[1].ends_with(", owner probe)"),
        "{out:?}"
    );
    let out = xdpchain_ok(BIN, ns, &["link", "-o", "/dev/null", path(&obj("counter"))]);
    assert_eq!(out, "linked 1 components into /dev/null\n");
}

/// Maps that objects pin by name (xdp-filter's, as Debian ships them) are
/// pinned in the chain's own directory, shared there by its components,
/// and go with the chain: after detach nothing of it is left in bpffs.
#[test]
fn maps_pinned_by_name_go_with_the_chain() {
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    let started = std::time::SystemTime::now();
    let filter = |f: &str| corpus().join("libxdp1").join(f);
    let (udp, all) = (filter("xdpfilt_dny_udp.o"), filter("xdpfilt_alw_all.o"));
    xdpchain_ok(BIN, ns, &["attach", dev, path(&udp), path(&all)]);
    let dir = chain_dir(xdpchain::DEFAULT_PIN_DIR, ns, dev);
    let maps = dir.join("maps");
    for m in ["filter_ports", "filter_ipv4", "xdp_stats_map"] {
        assert!(maps.join(m).exists(), "{}", maps.join(m).display());
        let root = std::path::Path::new("/sys/fs/bpf").join(m);
        let ours = std::fs::metadata(&root)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= started);
        assert!(!ours, "{} pinned outside the chain", root.display());
    }
    xdpchain_ok(BIN, ns, &["detach", dev]);
    assert!(!dir.exists(), "{}", dir.display());
    assert!(!dir.parent().unwrap().exists(), "{}", dir.display());
}

/// An interface that this namespace lacks, where a namespace with a chain
/// has one, is named with a hint of where.
#[test]
fn a_missing_interface_points_to_its_namespace() {
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    let (code, err) = exit(Command::new(BIN).args(["status", dev]));
    assert!(
        code == 66 && err.trim() == format!("xdpchain: no such interface: {dev}"),
        "{err}"
    );
    xdpchain_ok(BIN, ns, &["add", dev, path(&obj("counter"))]);
    let (code, err) = exit(Command::new(BIN).args(["status", dev]));
    assert!(
        code == 66
            && err.trim()
                == format!(
                    "xdpchain: no such interface: {dev} (network namespace {ns} has one: -n {ns})"
                ),
        "{err}"
    );
    xdpchain_ok(BIN, ns, &["detach", dev]);
}

/// status shows what else runs: another loader's program (here iproute2's)
/// as such, with its program id, name and mode, with or without IFACE;
/// and owners whose process has exited (the command's own) as exited.
#[test]
fn status_shows_foreign_programs_and_exited_owners() {
    let net = VethPair::new();
    let other = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    sh(&format!(
        "ip -n {ns} link set dev {dev} xdpgeneric obj {} sec xdp",
        path(&obj("verdict"))
    ));
    let line = xdpchain_ok(BIN, ns, &["status", dev]);
    assert!(
        line.contains(&format!("{dev} (ifindex "))
            && line.contains("program xdp_verdict (prog id ")
            && line.contains("of another loader, skb mode; no chain"),
        "{line}"
    );
    let json = xdpchain_ok(BIN, ns, &["status", dev, "--json"]);
    let st: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(st[0]["layout"], "foreign", "{json}");
    assert_eq!(st[0]["name"], "xdp_verdict", "{json}");
    assert!(st[0]["program_id"].as_u64().unwrap() > 0, "{json}");

    // Beside a chain of ours, in the same namespace: the command that
    // added it has exited.
    let ns_b = other.ns_b.as_str();
    sh(&format!(
        "ip -n {ns_b} link set dev {} netns {ns}",
        other.dev_b
    ));
    xdpchain_ok(BIN, ns, &["add", &other.dev_b, path(&obj("counter"))]);
    let all = xdpchain_ok(BIN, ns, &["status"]);
    assert!(all.contains("program xdp_verdict"), "{all}");
    assert!(
        all.contains("xdp_count") && all.contains(" exited"),
        "{all}"
    );
    let json = xdpchain_ok(BIN, ns, &["status", "--json"]);
    let st: serde_json::Value = serde_json::from_str(&json).unwrap();
    let layouts: Vec<&str> = st
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["layout"].as_str().unwrap())
        .collect();
    assert_eq!(layouts.len(), 2, "{json}");
    assert_eq!(layouts[1], "foreign", "{json}");
    assert_eq!(st[0]["components"][0]["owner_running"], false, "{json}");
    // From the host's namespace, every namespace with a chain of ours.
    let (ok, out, err) = output(Command::new(BIN).args(["status", "--all-namespaces", "--json"]));
    assert!(ok, "{err}");
    let all: serde_json::Value = serde_json::from_str(&out).unwrap();
    let here: Vec<&serde_json::Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["netns"] == ns)
        .collect();
    assert_eq!(here.len(), 2, "{out}");
    assert_eq!(here[0]["components"][0]["name"], "xdp_count", "{out}");
    assert_eq!(here[1]["layout"], "foreign", "{out}");
    let (ok, table, _) = output(Command::new(BIN).args(["status", "-A"]));
    assert!(
        ok && table.contains(&format!("network namespace {ns}:\n")),
        "{table}"
    );
    xdpchain_ok(BIN, ns, &["detach", &other.dev_b]);
    sh(&format!("ip -n {ns} link set dev {dev} xdpgeneric off"));
    let (code, _) = exit(&mut in_ns(ns, &[BIN, "status", dev]));
    assert_eq!(code, 66);
}

/// Values are checked against the object before anything loads, naming the
/// user's names: a map of size 0, a negative value for an unsigned global.
#[test]
fn values_are_checked_before_loading() {
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    let fails = |args: &[&str]| {
        let (code, err) = exit(&mut in_ns(ns, &[&[BIN][..], args].concat()));
        assert_eq!(code, 65, "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        err
    };
    let counter = obj("counter");
    let err = fails(&["add", dev, path(&counter), "--map-size", "echo_requests=0"]);
    assert!(err.contains("map 'echo_requests': a size of 0"), "{err}");
    assert!(!err.contains("libbpf") && !err.contains("EINVAL"), "{err}");
    let verdict = obj("verdict");
    let err = fails(&["add", dev, path(&verdict), "--set", "verdict=-1"]);
    assert!(
        err.contains("-1 does not fit 'verdict' (a 4-byte unsigned integer)"),
        "{err}"
    );
    let (_, out, _) = output(&mut in_ns(ns, &["ip", "link", "show", "dev", dev]));
    assert!(!out.contains("prog/xdp"), "nothing was attached: {out}");
}

/// Options that a running chain cannot take are refused, naming what runs,
/// and change nothing; left out, the same add joins the chain.
#[test]
fn options_a_running_chain_cannot_take_are_refused() {
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    let counter = obj("counter");
    xdpchain_ok(
        BIN,
        ns,
        &["attach", dev, path(&counter), "--mode", "static"],
    );
    let before = xdpchain_ok(BIN, ns, &["status", dev, "--json"]);
    let verdict = obj("verdict");
    for (extra, what) in [
        (&["--skb"][..], "skb mode (it runs in native mode)"),
        (&["--mode", "dynamic"], "a dynamic chain (it is static)"),
        (
            &["--layout", "libxdp"],
            "libxdp's layout (it follows xdpchain's)",
        ),
        (&["--no-counters"], "no counters (it was made with them)"),
    ] {
        let args = [&["add", dev, path(&verdict)][..], extra].concat();
        let (code, err) = exit(&mut in_ns(ns, &[&[BIN][..], &args].concat()));
        assert_eq!(code, 65, "{extra:?}: {err}");
        assert!(err.contains(&format!("cannot take {what}")), "{err}");
        assert_eq!(xdpchain_ok(BIN, ns, &["status", dev, "--json"]), before);
    }
    xdpchain_ok(BIN, ns, &["add", dev, path(&verdict), "--mode", "static"]);
    xdpchain_ok(BIN, ns, &["detach", dev]);
}

/// A device-bound chain through the command: status says so, in text and
/// JSON; `link -o` says how its file must be loaded; a kernel without RX
/// metadata kfuncs (before 6.3) refuses it, naming what it lacks.
#[test]
fn device_bound_chains_through_the_command() {
    let net = VethPair::new();
    let (ns, dev) = (net.ns_b.as_str(), net.dev_b.as_str());
    let (rxhash, counter) = (obj("rxhash"), obj("counter"));
    let attach = [BIN, "attach", dev, path(&rxhash), path(&counter)];
    if !kernel_at_least(6, 3) {
        let (code, err) = exit(&mut in_ns(ns, &attach));
        assert_eq!(code, 69, "{err}");
        assert!(err.contains("calls bpf_xdp_metadata_rx_hash"), "{err}");
        return;
    }
    let (ok, _, err) = output(&mut in_ns(ns, &attach));
    assert!(ok, "{err}");
    let text = xdpchain_ok(BIN, ns, &["status", dev]);
    assert!(
        text.contains("device-bound: a component reads RX metadata"),
        "{text}"
    );
    let json = xdpchain_ok(BIN, ns, &["status", dev, "--json"]);
    let st: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(st[0]["device_bound"], true, "{json}");
    xdpchain_ok(BIN, ns, &["detach", dev]);
    let tmp = TempDir::new("devbound");
    let file = tmp.0.join("chain.o");
    let out = xdpchain_ok(
        BIN,
        ns,
        &["link", "-o", path(&file), path(&rxhash), path(&counter)],
    );
    assert!(
        out.contains("xdp_rxhash reads RX metadata") && out.contains("bound"),
        "{out}"
    );
    // Asked for, before any program needs it.
    xdpchain_ok(BIN, ns, &["attach", dev, path(&counter), "--device-bound"]);
    let text = xdpchain_ok(BIN, ns, &["status", dev]);
    assert!(text.contains("device-bound"), "{text}");
    xdpchain_ok(BIN, ns, &["add", dev, path(&rxhash)]);
    xdpchain_ok(BIN, ns, &["detach", dev]);
}
