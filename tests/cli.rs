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
        st.contains("\"name\":\"xdp_count\"") && st.contains("\"kind\":\"static\""),
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
        json.contains("\"inlined\":true") || json.contains("\"kind\":\"dynamic\""),
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
    // The verifier's rejection comes back on one line, naming the component.
    let net = VethPair::new();
    let (code, err) = exit(in_ns(&net.ns_b, &[BIN, "attach", &net.dev_b]).arg(obj("bad")));
    assert!(
        code == 65
            && err.contains("xdp_unchecked: rejected by the verifier")
            && err.lines().count() == 1,
        "{err}"
    );
    // With -vv, libbpf's messages (the verifier's log among them) go to
    // stderr through the log facade, before the one-line error.
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
    // Unconfigured, its map has no size: refused, nothing attached.
    let (code, err) = add(&[]);
    assert!(code != 0 && err.lines().count() == 1, "{err}");
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
        let child = cmd.spawn().unwrap();
        // The dump runs once it has asked the root for packets.
        std::thread::sleep(std::time::Duration::from_millis(500));
        child
    };
    let tmp = TempDir::new("dump");

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
