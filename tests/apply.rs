//! Declared chains: `xdpchain apply` on a veth in a namespace of the
//! test's own, from nothing, again, after a change, a removal, a reboot's
//! loss of every chain and pin, and with bad files; in whatever kind of
//! chain the run asks for ($XDPCHAIN_MODE: static here, dynamic and
//! libxdp's layout in the guests).
mod common;

use common::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_xdpchain");

struct Setup {
    net: VethPair,
    /// Holds the store, which makes its own directory (0700).
    _pins: PinDir,
    store: String,
    dir: TempDir,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        let pins = PinDir::new(tag);
        Setup {
            net: VethPair::new(),
            store: format!("{}/store", pins.0),
            _pins: pins,
            dir: TempDir::new(tag),
        }
    }

    fn xdpchain(&self, args: &[&str]) -> (bool, String, String) {
        xdpchain_in(
            BIN,
            &self.net.ns_b,
            args,
            &[("XDPCHAIN_PIN_DIR", &self.store)],
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.xdpchain(args);
        assert!(ok, "xdpchain {args:?}: {err}");
        out
    }

    /// Writes the chains file `name` (in the test's directory) declaring
    /// `components` on the veth, and returns its path.
    fn file(&self, name: &str, components: &str) -> String {
        let path = self.dir.0.join(name);
        let text = format!(
            "# the chain of the test's veth\n[[interface]]\nname = \"{}\"\nattach = \"skb\"\n{components}",
            self.net.dev_b
        );
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    }

    fn apply(&self, file: &str, extra: &[&str]) -> String {
        let mut args = vec!["apply", file];
        args.extend(extra);
        self.ok(&args)
    }

    fn status(&self) -> Value {
        let json = self.ok(&["status", &self.net.dev_b, "--json"]);
        serde_json::from_str::<Value>(&json).unwrap()[0].clone()
    }

    fn ping(&self, n: u32) {
        let out = sh(&format!(
            "ip netns exec {} ping -c {n} -i 0.05 -W 2 198.18.0.2",
            self.net.ns_a
        ));
        assert!(out.contains(&format!("{n} received")), "{out}");
    }
}

/// What identifies the running chain: its program and each component's
/// name, owner and program (in order).
fn ids(st: &Value) -> Vec<String> {
    let mut v = vec![st["program_id"].to_string()];
    for c in st["components"].as_array().unwrap() {
        v.push(format!("{} {} {}", c["name"], c["owner"], c["program_id"]));
    }
    v
}

fn component<'a>(st: &'a Value, name: &str) -> &'a Value {
    st["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {st}"))
}

fn names(st: &Value) -> Vec<String> {
    st["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

/// The id and first u64 of the map `map` of the program that runs
/// component `name` (the chain's own for a linked one).
fn map_of(st: &Value, name: &str, map: &str) -> (u64, u64) {
    let prog = component(st, name)["program_id"]
        .as_u64()
        .or(st["program_id"].as_u64())
        .unwrap();
    let info: Value =
        serde_json::from_str(&sh(&format!("bpftool -j prog show id {prog}"))).unwrap();
    for id in info["map_ids"].as_array().unwrap() {
        let m: Value = serde_json::from_str(&sh(&format!("bpftool -j map show id {id}"))).unwrap();
        if kernel_name_of(m["name"].as_str().unwrap(), map) {
            let v: Value =
                serde_json::from_str(&sh(&format!("bpftool -j map lookup id {id} key 0 0 0 0")))
                    .unwrap();
            let bytes: Vec<u8> = v["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| {
                    u8::from_str_radix(b.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
                })
                .collect();
            return (
                id.as_u64().unwrap(),
                u64::from_le_bytes(bytes[..8].try_into().unwrap()),
            );
        }
    }
    panic!("program {prog} of {name} has no map {map}");
}

/// Whether the kernel's `name` of a map is `map`: linked chains name a
/// component's maps `c<tag>_<map>`, cut at 15 characters.
fn kernel_name_of(name: &str, map: &str) -> bool {
    let linked = name
        .strip_prefix('c')
        .and_then(|r| r.split_once('_'))
        .filter(|(tag, _)| tag.bytes().all(|b| b.is_ascii_digit()))
        .is_some_and(|(_, rest)| map.starts_with(rest));
    name == map || linked
}

fn decl(path: &Path, extra: &str) -> String {
    format!(
        "[[interface.component]]\npath = \"{}\"\n{extra}\n",
        path.display()
    )
}

#[test]
fn apply_brings_the_chain_to_its_declaration_and_changes_only_what_differs() {
    let s = Setup::new("apply");
    let (counter, filter, configured) = (obj("counter"), obj("filter"), obj("configured"));
    let counter_d = decl(&counter, "owner = \"mon\"");
    let filter_d = decl(&filter, "owner = \"fw\"\npriority = 30");
    let configured_d = |slot: u32| {
        decl(
            &configured,
            &format!("priority = 20\nglobals = {{ cfg_verdict = 2, cfg_slot = {slot} }}\nmap-sizes = {{ hits = 4 }}"),
        )
    };
    let all = s.file(
        "chains.toml",
        &(counter_d.clone() + &filter_d + &configured_d(0)),
    );

    // From nothing: the plan, then the chain.
    let plan = s.apply(&all, &["--dry-run"]);
    assert_eq!(plan.matches("would add").count(), 3, "{plan}");
    let (ok, _, err) = s.xdpchain(&["status", &s.net.dev_b]);
    assert!(!ok, "a dry run attached a chain: {err}");
    let out = s.apply(&all, &[]);
    assert_eq!(out.matches(": add ").count(), 3, "{out}");
    let first = s.status();
    assert_eq!(
        names(&first),
        ["xdp_count", "xdp_configured", "xdpfilt_udp"]
    );
    assert_eq!(component(&first, "xdp_count")["owner"], "mon");
    assert_eq!(component(&first, "xdpfilt_udp")["owner"], "fw");
    // Declared without an owner: the file's, by its name.
    assert_eq!(component(&first, "xdp_configured")["owner"], "chains.toml");
    if let Some(kind) = expected_kind() {
        assert_eq!(first["mode"], kind);
    }
    s.ping(3);
    let (echo_map, echoes) = map_of(&first, "xdp_count", "echo_requests");
    assert_eq!(echoes, 3);

    // Again: nothing changes, down to the program ids.
    let out = s.apply(&all, &[]);
    assert_eq!(out.trim(), format!("{}: unchanged", s.net.dev_b));
    assert_eq!(ids(&s.status()), ids(&first));

    // One changed: only it is replaced; the others keep their programs
    // (dynamic) and their maps with what they counted.
    let changed = s.file(
        "chains.toml",
        &(counter_d.clone() + &filter_d + &configured_d(1)),
    );
    let plan = s.apply(&changed, &["--dry-run"]);
    assert!(plan.contains("would replace xdp_configured"), "{plan}");
    assert_eq!(ids(&s.status()), ids(&first), "a dry run changed the chain");
    let out = s.apply(&changed, &[]);
    assert!(out.contains("replace xdp_configured"), "{out}");
    assert!(
        out.contains("keep xdp_count") && out.contains("keep xdpfilt_udp"),
        "{out}"
    );
    let second = s.status();
    assert_eq!(names(&second), names(&first));
    if second["mode"] == "dynamic" {
        for n in ["xdp_count", "xdpfilt_udp"] {
            assert_eq!(
                component(&second, n)["program_id"],
                component(&first, n)["program_id"]
            );
        }
        assert_ne!(
            component(&second, "xdp_configured")["program_id"],
            component(&first, "xdp_configured")["program_id"]
        );
    }
    assert_eq!(map_of(&second, "xdp_count", "echo_requests"), (echo_map, 3));
    s.ping(2);
    assert_eq!(map_of(&s.status(), "xdp_count", "echo_requests").1, 5);

    // A component added by hand (under the command's own owner name)
    // is not the file's: it stays, unless pruned.
    let multi = obj("multi");
    s.ok(&[
        "add",
        &s.net.dev_b,
        &format!("{}:xdp_other", multi.display()),
    ]);
    assert_eq!(component(&s.status(), "xdp_other")["owner"], "xdpchain");
    let out = s.apply(&changed, &[]);
    assert_eq!(out.trim(), format!("{}: unchanged", s.net.dev_b));
    assert!(names(&s.status()).contains(&"xdp_other".to_string()));

    // One removed: it goes, with a swap that keeps the rest.
    let fewer = s.file("chains.toml", &(counter_d.clone() + &configured_d(1)));
    let out = s.apply(&fewer, &[]);
    assert!(out.contains("remove xdpfilt_udp"), "{out}");
    assert!(out.contains("leave xdp_other"), "{out}");
    let third = s.status();
    assert_eq!(names(&third), ["xdp_count", "xdp_configured", "xdp_other"]);
    assert_eq!(map_of(&third, "xdp_count", "echo_requests"), (echo_map, 5));
    let out = s.apply(&fewer, &["--prune"]);
    assert!(out.contains("remove xdp_other"), "{out}");
    assert_eq!(names(&s.status()), ["xdp_count", "xdp_configured"]);

    // Bad files: a clear error naming file, line and component; nothing
    // changed.
    let before = ids(&s.status());
    let bad = s.file("bad.toml", &(counter_d.clone() + "colour = \"red\"\n"));
    let (ok, _, err) = s.xdpchain(&["apply", &bad]);
    assert!(!ok);
    assert!(err.contains("bad.toml:8: unknown field `colour`"), "{err}");
    let missing = s.file(
        "missing.toml",
        &(counter_d.clone() + &decl(Path::new("/nonexistent/fw.o"), "")),
    );
    let (ok, _, err) = s.xdpchain(&["apply", &missing]);
    assert!(!ok);
    assert!(
        err.contains("missing.toml:8: component /nonexistent/fw.o:")
            && err.contains("No such file"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let not_xdp = s.file(
        "verdict.toml",
        &(counter_d.clone() + &decl(&counter, "continue-on = [\"sideways\"]")),
    );
    let (ok, _, err) = s.xdpchain(&["apply", &not_xdp]);
    assert!(
        !ok && err.contains("verdict.toml:8: component") && err.contains("sideways"),
        "{err}"
    );
    let loose = s.file("loose.toml", &counter_d);
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (ok, _, err) = s.xdpchain(&["apply", &loose]);
    assert!(
        !ok && err.contains(&format!("refusing {}: owned by uid 0", loose))
            && err.contains("mode 666: other users could change what root loads"),
        "{err}"
    );
    // So is an object that others could change, or one in a directory
    // where others could put another in its place.
    let open_dir = s.dir.0.join("open");
    std::fs::create_dir(&open_dir).unwrap();
    let loose_obj = open_dir.join("counter.o");
    std::fs::copy(&counter, &loose_obj).unwrap();
    let loose_decl = s.file(
        "loose-obj.toml",
        &(counter_d.clone() + &decl(&loose_obj, "")),
    );
    for (obj_mode, dir_mode, refused) in [(0o646, 0o755, &loose_obj), (0o644, 0o777, &open_dir)] {
        std::fs::set_permissions(&loose_obj, std::fs::Permissions::from_mode(obj_mode)).unwrap();
        std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(dir_mode)).unwrap();
        let (ok, _, err) = s.xdpchain(&["apply", &loose_decl]);
        assert!(
            !ok && err.contains(&format!(
                "loose-obj.toml:8: component {}: refusing {}: owned by uid 0",
                loose_obj.display(),
                refused.display()
            )),
            "{err}"
        );
    }
    let fifo = s.dir.0.join("fifo.toml");
    sh(&format!("mkfifo {}", fifo.display()));
    let (ok, _, err) = s.xdpchain(&["apply", fifo.to_str().unwrap()]);
    assert!(!ok && err.contains("a FIFO, not a chains file"), "{err}");
    std::fs::remove_file(&fifo).unwrap();
    assert_eq!(ids(&s.status()), before);

    // After a reboot: no chain, no pin. Everything comes back, from a
    // directory of chains files.
    s.ok(&["detach", &s.net.dev_b, "--force"]);
    std::fs::remove_dir_all(&s.store).unwrap();
    let etc = s.dir.0.join("chains.d");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::rename(&fewer, etc.join("10-veth.toml")).unwrap();
    let out = s.apply(etc.to_str().unwrap(), &[]);
    assert_eq!(out.matches(": add ").count(), 2, "{out}");
    let back = s.status();
    assert_eq!(names(&back), ["xdp_count", "xdp_configured"]);
    s.ping(1);
    assert_eq!(map_of(&s.status(), "xdp_count", "echo_requests").1, 1);
    let out = s.apply(etc.to_str().unwrap(), &[]);
    assert_eq!(out.trim(), format!("{}: unchanged", s.net.dev_b));
    s.ok(&["detach", &s.net.dev_b, "--force"]);
}

#[test]
fn apply_skips_interfaces_that_do_not_exist_and_can_take_one_interface() {
    let s = Setup::new("apply-one");
    let counter = decl(&obj("counter"), "");
    let path = s.dir.0.join("two.toml");
    let text = format!(
        "[[interface]]\nname = \"xdpc-none0\"\n{counter}\n[[interface]]\nname = \"{}\"\nattach = \"skb\"\n{counter}",
        s.net.dev_b
    );
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap();
    let out = s.apply(path, &["--interface", "xdpc-none0"]);
    assert!(
        out.contains("xdpc-none0: no such interface; skipped"),
        "{out}"
    );
    let (ok, _, _) = s.xdpchain(&["status", &s.net.dev_b]);
    assert!(!ok, "--interface applied another interface");
    let out = s.apply(path, &["--interface", &s.net.dev_b]);
    assert!(out.contains(": add "), "{out}");
    assert_eq!(names(&s.status()), ["xdp_count"]);
    let out = s.apply(path, &[]);
    assert!(
        out.contains(&format!("{}: unchanged", s.net.dev_b)),
        "{out}"
    );

    // A broken declaration of another interface holds up the whole file,
    // but not the chain of one interface (udev's hook). (The same name
    // in another directory: the owner of what a file declares is its name.)
    std::fs::create_dir(s.dir.0.join("broken")).unwrap();
    let broken = s.dir.0.join("broken/two.toml");
    let missing = decl(Path::new("/nonexistent/fw.o"), "");
    std::fs::write(
        &broken,
        std::fs::read_to_string(path).unwrap()
            + &format!("\n[[interface]]\nname = \"xdpc-none1\"\n{missing}"),
    )
    .unwrap();
    let broken = broken.to_str().unwrap();
    let (ok, _, err) = s.xdpchain(&["apply", broken]);
    assert!(!ok && err.contains("component /nonexistent/fw.o"), "{err}");
    let out = s.apply(broken, &["--interface", &s.net.dev_b]);
    assert_eq!(out.trim(), format!("{}: unchanged", s.net.dev_b));
    s.ok(&["detach", &s.net.dev_b, "--force"]);
}

#[test]
fn apply_in_a_namespace_takes_the_chains_declared_there() {
    let s = Setup::new("apply-netns");
    // The same interface name declared in the test's namespace and in the
    // host's, each with another program.
    let path = s.dir.0.join("netns.toml");
    let iface = |netns: &str, obj: &str| {
        format!(
            "[[interface]]\nname = \"{}\"\n{netns}attach = \"skb\"\n{}",
            s.net.dev_b,
            decl(&common::obj(obj), "")
        )
    };
    let text = iface(&format!("netns = \"{}\"\n", s.net.ns_b), "counter") + &iface("", "verdict");
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap();
    let on_host = |args: &[&str]| {
        let (ok, out, err) = output(
            std::process::Command::new(BIN)
                .args(args)
                .env("XDPCHAIN_PIN_DIR", &s.store),
        );
        assert!(ok, "xdpchain {args:?}: {err}");
        out
    };
    // From the host, -n picks the namespace's declaration.
    let out = on_host(&[
        "-n",
        &s.net.ns_b,
        "apply",
        path,
        "--interface",
        &s.net.dev_b,
    ]);
    assert!(
        out.contains(": add ") && out.contains("counter.o:xdp_count"),
        "{out}"
    );
    assert_eq!(names(&s.status()), ["xdp_count"]);
    // Without it, --interface names the host's interface, which is not
    // there.
    let out = on_host(&["apply", path, "--interface", &s.net.dev_b]);
    assert_eq!(
        out.trim(),
        format!(
            "{}: no such interface; skipped (applied when it appears)",
            s.net.dev_b
        )
    );
    // A namespace by path is the same namespace.
    let by_path = format!("/run/netns/{}", s.net.ns_b);
    let out = on_host(&["-n", &by_path, "apply", path]);
    assert_eq!(
        out.trim(),
        format!("{} (netns {}): unchanged", s.net.dev_b, s.net.ns_b)
    );
    assert_eq!(names(&s.status()), ["xdp_count"]);
    s.ok(&["detach", &s.net.dev_b, "--force"]);
}
