//! Helpers shared by the integration tests: BPF objects compiled from
//! tests/bpf/ with clang, test packets, and network namespaces that remove
//! themselves.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Whether the running kernel is at least MAJOR.MINOR. Tests of what older
/// kernels lack assert the library's refusal there instead of skipping.
pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut n = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|s| s.parse::<u32>().unwrap());
    (n.next().unwrap(), n.next().unwrap()) >= (major, minor)
}

fn out_dir() -> PathBuf {
    let d = repo().join("target/test-bpf");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Compiles tests/bpf/NAME.bpf.c with `flags` (e.g. -DX=1, or no -g) into
/// target/test-bpf/NAMEVARIANT.o, where `variant` stands for the flags, and
/// returns its path. An object newer than its source is reused; in the VM,
/// which has no clang, XDPCHAIN_TEST_PREBUILT says every object was built
/// beforehand (tests/vm/run.sh builds them).
pub fn compile(name: &str, variant: &str, flags: &[&str]) -> PathBuf {
    let src = repo().join(format!("tests/bpf/{name}.bpf.c"));
    let out = out_dir().join(format!("{name}{variant}.o"));
    if std::env::var_os("XDPCHAIN_TEST_PREBUILT").is_some() {
        assert!(
            out.exists(),
            "{} was not built before the VM started",
            out.display()
        );
        return out;
    }
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if matches!((mtime(&out), mtime(&src)), (Some(o), Some(s)) if o >= s) {
        return out;
    }
    let tmp = out.with_extension(format!(
        "{}.{:?}.tmp",
        std::process::id(),
        std::thread::current().id()
    ));
    clang(&src, &tmp, flags);
    // Tests run in parallel threads: publish the object whole.
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// Compiles the BPF C source `src` into `out`, with `flags`.
pub fn clang(src: &Path, out: &Path, flags: &[&str]) {
    let mut cmd = Command::new(std::env::var("CLANG").unwrap_or_else(|_| "clang".into()));
    cmd.args(["-O2", "-target", "bpf", "-Wall"])
        .arg(format!("-I{}", libbpf_include().display()))
        .arg(format!(
            "-I/usr/include/{}-linux-gnu",
            std::env::consts::ARCH
        ))
        .args(flags)
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(out);
    let st = cmd.status().expect("clang runs");
    assert!(st.success(), "clang failed on {}", src.display());
}

/// libbpf's headers, as libbpf-sys installed them for this build.
fn libbpf_include() -> PathBuf {
    if let Some(dir) = option_env!("XDPCHAIN_LIBBPF_INCLUDE") {
        return dir.into();
    }
    let build = repo().join("target/debug/build");
    std::fs::read_dir(&build)
        .expect("target/debug/build exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("out/include"))
        .find(|p| p.join("bpf/bpf_helpers.h").exists())
        .expect("libbpf-sys headers in target/")
}

/// compile() with debug info, the common case.
pub fn obj(name: &str) -> PathBuf {
    compile(name, "", &["-g"])
}

/// A small deterministic generator for randomized tests, seeded from
/// `$VAR` (to replay a failure) or the clock; the seed is printed.
pub struct Rng(u64);

impl Rng {
    pub fn seeded(var: &str, what: &str) -> Rng {
        let seed = std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{what} seed {seed} (replay with {var}={seed})");
        Rng(seed)
    }

    /// A number below `n`.
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// target/corpus/PACKAGE/: the BPF objects that Debian packages ship,
/// fetched by tests/corpus/fetch.sh (once; the guest harness brings them).
pub fn corpus() -> PathBuf {
    static FETCH: std::sync::Once = std::sync::Once::new();
    let dir = repo().join("target/corpus");
    FETCH.call_once(|| {
        if !dir.join(".complete").exists() {
            let fetch = repo().join("tests/corpus/fetch.sh");
            let ok = Command::new(&fetch).status().unwrap().success();
            assert!(ok, "{} failed", fetch.display());
        }
    });
    dir
}

/// One BPF_PROG_TEST_RUN of `prog` on `packet`: its verdict, and the packet
/// as it left the program.
pub fn run_packet(prog: std::os::fd::BorrowedFd<'_>, packet: &[u8]) -> (u32, Vec<u8>) {
    use std::os::fd::AsRawFd;
    let mut out = vec![0u8; packet.len() + 512];
    let mut opts = libbpf_sys::bpf_test_run_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
        data_in: packet.as_ptr().cast(),
        data_size_in: packet.len() as u32,
        data_out: out.as_mut_ptr().cast(),
        data_size_out: out.len() as u32,
        repeat: 1,
        ..Default::default()
    };
    let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) };
    assert_eq!(
        rc,
        0,
        "BPF_PROG_TEST_RUN: {}",
        std::io::Error::last_os_error()
    );
    out.truncate(opts.data_size_out as usize);
    (opts.retval, out)
}

/// Ethernet + IPv4 + UDP to `dport`, 64 bytes or more.
pub fn udp_packet(dport: u16) -> Vec<u8> {
    let mut p = vec![0u8; 14 + 20 + 8 + 22];
    p[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut p[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(20u16 + 8 + 22).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[198, 18, 0, 1]);
    ip[16..20].copy_from_slice(&[198, 18, 0, 2]);
    let udp = &mut p[34..42];
    udp[0..2].copy_from_slice(&1234u16.to_be_bytes());
    udp[2..4].copy_from_slice(&dport.to_be_bytes());
    udp[4..6].copy_from_slice(&(8u16 + 22).to_be_bytes());
    p
}

/// How many replies ping's summary says it received.
pub fn ping_received(out: &str) -> u64 {
    out.split(", ")
        .find_map(|p| p.strip_suffix(" received"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("ping output: {out}"))
}

pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `count` pings from namespace `ns` to 198.18.0.2, `interval` seconds
/// apart, in a thread: join it for ping's output.
pub fn ping_in_background(ns: &str, count: u32, interval: &str) -> std::thread::JoinHandle<String> {
    let cmd =
        format!("ip netns exec {ns} ping -q -c {count} -i {interval} -W 1 198.18.0.2 || true");
    std::thread::spawn(move || sh(&cmd))
}

/// Pings from namespace `ns` to 198.18.0.2, `interval` seconds apart, until
/// stopped: for tests that change a chain a number of times under traffic,
/// however long each change takes on a slow guest.
pub struct Pinger(Option<std::process::Child>);

impl Pinger {
    pub fn start(ns: &str, interval: &str) -> Pinger {
        // `ip netns exec` execs ping: the child is ping itself.
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "ping", "-q", "-i", interval])
            .args(["-W", "1", "198.18.0.2"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("ping runs");
        Pinger(Some(child))
    }

    /// Stops it as Ctrl-C would, and returns its summary.
    pub fn stop(mut self) -> String {
        let child = self.0.take().unwrap();
        // SAFETY: signals our own child, which has not been reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).into_owned()
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Two namespaces joined by a veth pair, 198.18.0.1 (a) and 198.18.0.2 (b),
/// named uniquely per test and removed on drop, also when the test fails;
/// without IPv6, whose neighbour discovery and multicast reports would add
/// packets to the counters that tests read.
pub struct VethPair {
    pub ns_a: String,
    pub ns_b: String,
    pub dev_a: String,
    pub dev_b: String,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl VethPair {
    pub fn new() -> VethPair {
        let tag = format!(
            "{}{}",
            std::process::id() % 100000,
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let v = VethPair {
            ns_a: format!("xdpc-a{tag}"),
            ns_b: format!("xdpc-b{tag}"),
            dev_a: format!("xca{tag}"),
            dev_b: format!("xcb{tag}"),
        };
        sh(&format!(
            "ip netns add {a} && ip netns add {b} && \
             ip link add {da} netns {a} type veth peer name {db} netns {b} && \
             ip -n {a} addr add 198.18.0.1/24 dev {da} && ip -n {b} addr add 198.18.0.2/24 dev {db} && \
             ip netns exec {a} sh -c 'echo 1 > /proc/sys/net/ipv6/conf/{da}/disable_ipv6' && \
             ip netns exec {b} sh -c 'echo 1 > /proc/sys/net/ipv6/conf/{db}/disable_ipv6' && \
             ip -n {a} link set {da} up && ip -n {b} link set {db} up && \
             ip -n {a} link set lo up && ip -n {b} link set lo up",
            a = v.ns_a, b = v.ns_b, da = v.dev_a, db = v.dev_b
        ));
        v
    }

    /// Makes each end's neighbour entry for the other permanent, so that
    /// no ARP crosses: known traffic is then exactly the packets sent.
    pub fn static_neighbours(&self) {
        let mac = |ns: &str, dev: &str| {
            let out = sh(&format!("ip -n {ns} -o link show dev {dev}"));
            let at = out.find("link/ether ").expect("an ethernet address") + 11;
            out[at..at + 17].to_string()
        };
        sh(&format!(
            "ip -n {a} neigh replace 198.18.0.2 lladdr {mb} dev {da} nud permanent && \
             ip -n {b} neigh replace 198.18.0.1 lladdr {ma} dev {db} nud permanent",
            a = self.ns_a,
            b = self.ns_b,
            da = self.dev_a,
            db = self.dev_b,
            ma = mac(&self.ns_a, &self.dev_a),
            mb = mac(&self.ns_b, &self.dev_b),
        ));
    }

    /// Runs `f` inside namespace b (where the chain is attached) on this thread.
    pub fn in_b<T>(&self, f: impl FnOnce() -> T) -> T {
        in_netns(&self.ns_b, f)
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.ns_a])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.ns_b])
            .status();
    }
}

/// Runs `f` with this thread in network namespace `ns`, then moves it back.
pub fn in_netns<T>(ns: &str, f: impl FnOnce() -> T) -> T {
    use std::os::fd::AsRawFd;
    let own = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
    let target = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    assert_eq!(
        unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) },
        0
    );
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    assert_eq!(
        unsafe { libc::setns(own.as_raw_fd(), libc::CLONE_NEWNET) },
        0
    );
    res.unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Reads element `key` of the map `fd` into `value` (its value size, per
/// CPU for per-CPU maps).
pub fn lookup<T: Copy>(fd: std::os::fd::BorrowedFd<'_>, key: u32, value: &mut [T]) {
    let rc = unsafe {
        libbpf_sys::bpf_map_lookup_elem(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            (&key as *const u32).cast(),
            value.as_mut_ptr().cast(),
        )
    };
    assert_eq!(rc, 0, "map lookup");
}

/// Reads element `key` of an array map with u64 (or u32) values.
pub fn read_u64(fd: std::os::fd::BorrowedFd<'_>, key: u32) -> u64 {
    let mut v = [0u8; 8];
    lookup(fd, key, &mut v);
    u64::from_le_bytes(v)
}

/// Element `key` of a per-CPU array map of u64, summed over CPUs.
pub fn read_percpu_sum(fd: std::os::fd::BorrowedFd<'_>, key: u32) -> u64 {
    let cpus = unsafe { libbpf_sys::libbpf_num_possible_cpus() };
    assert!(cpus > 0);
    let mut v = vec![0u64; cpus as usize];
    lookup(fd, key, &mut v);
    v.iter().sum()
}

pub fn write_bytes(fd: std::os::fd::BorrowedFd<'_>, key: u32, value: &[u8]) {
    let rc = unsafe {
        libbpf_sys::bpf_map_update_elem(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            (&key as *const u32).cast(),
            value.as_ptr().cast(),
            0,
        )
    };
    assert_eq!(rc, 0, "map update");
}

/// Opens a pinned BPF object.
pub fn pinned(path: &Path) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let fd = unsafe { libbpf_sys::bpf_obj_get(c.as_ptr()) };
    assert!(fd >= 0, "no pin at {}", path.display());
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// `args` as a command in network namespace `ns`, by nsenter: `ip netns
/// exec` remounts /sys and so hides bpffs, where chains are recorded.
pub fn in_ns(ns: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/run/netns/{ns}")).args(args);
    cmd
}

/// Runs `cmd`: (success, stdout, stderr).
pub fn output(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The xdpchain command `bin` in namespace `ns`, with `env` added.
pub fn xdpchain_in(
    bin: &str,
    ns: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (bool, String, String) {
    output(in_ns(ns, &[bin]).args(args).envs(env.iter().copied()))
}

/// As [`xdpchain_in`], for a command that must succeed: its stdout.
pub fn xdpchain_ok(bin: &str, ns: &str, args: &[&str]) -> String {
    let (ok, out, err) = xdpchain_in(bin, ns, args, &[]);
    assert!(ok, "xdpchain {args:?}: {err}");
    out
}

/// The record directory of the chain on `dev` in namespace `ns`, under `root`.
pub fn chain_dir(root: &str, ns: &str, dev: &str) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(format!("/run/netns/{ns}")).unwrap().ino();
    let index = sh(&format!("ip -n {ns} -o link show dev {dev}"));
    let index = index.split(':').next().unwrap().trim();
    Path::new(root).join(ino.to_string()).join(index)
}

/// A directory on bpffs of the test's own, removed with what is pinned in
/// it when dropped, also when the test fails.
pub struct PinDir(pub String);

impl PinDir {
    pub fn new(tag: &str) -> PinDir {
        let d = format!("/sys/fs/bpf/xdpc-{tag}-{}", std::process::id());
        std::fs::create_dir_all(&d).unwrap();
        PinDir(d)
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A directory of the test's own under the temporary directory, removed
/// with what it holds when dropped, also when the test fails.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("xdpc-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The kind of chain (static or dynamic) that the VM's settings make new
/// chains: dynamic in auto mode where freplace is expected. None where the
/// test cannot know (outside the VM).
pub fn expected_kind() -> Option<&'static str> {
    let mode = std::env::var("XDPCHAIN_MODE").unwrap_or_else(|_| "auto".into());
    match (
        std::env::var("XDPCHAIN_EXPECT_FREPLACE").as_deref(),
        mode.as_str(),
    ) {
        (_, "static") => Some("static"),
        (Ok("1"), _) => Some("dynamic"),
        _ => None,
    }
}
