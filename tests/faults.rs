//! Fault injection: operations killed with SIGKILL at random moments. The
//! interface must run a chain at every instant, the next operation must
//! settle what was left, and once detached nothing may remain in the kernel.
//! Alone in its test binary, so that kernel object counts are its own.
mod common;

use common::*;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_xdpchain");
const OPS: u32 = 120;

/// Programs, maps and links in the kernel.
fn kernel_objects() -> (u32, u32, u32) {
    let count = |next: unsafe extern "C" fn(u32, *mut u32) -> i32| {
        let (mut id, mut n) = (0u32, 0u32);
        while unsafe { next(id, &mut id) } == 0 {
            n += 1;
        }
        n
    };
    (
        count(libbpf_sys::bpf_prog_get_next_id),
        count(libbpf_sys::bpf_map_get_next_id),
        count(libbpf_sys::bpf_link_get_next_id),
    )
}

/// The programs and maps in the kernel by name, and the links by type: what
/// a failure names, so that a leak says where it comes from.
fn kernel_objects_named() -> String {
    fn names<I: Default>(
        next: unsafe extern "C" fn(u32, *mut u32) -> i32,
        open: unsafe extern "C" fn(u32) -> i32,
        info: unsafe extern "C" fn(i32, *mut I, *mut u32) -> i32,
        name: impl Fn(&I) -> String,
    ) -> Vec<String> {
        let (mut id, mut out) = (0u32, Vec::new());
        while unsafe { next(id, &mut id) } == 0 {
            let fd = unsafe { open(id) };
            if fd < 0 {
                continue;
            }
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let mut i = I::default();
            let mut len = std::mem::size_of::<I>() as u32;
            if unsafe { info(fd.as_raw_fd(), &mut i, &mut len) } == 0 {
                out.push(format!("{id}:{}", name(&i)));
            }
        }
        out
    }
    let c = |s: &[std::ffi::c_char]| {
        let b: Vec<u8> = s
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    let progs = names(
        libbpf_sys::bpf_prog_get_next_id,
        libbpf_sys::bpf_prog_get_fd_by_id,
        libbpf_sys::bpf_prog_get_info_by_fd,
        |i: &libbpf_sys::bpf_prog_info| format!("{} (type {})", c(&i.name), i.type_),
    );
    let maps = names(
        libbpf_sys::bpf_map_get_next_id,
        libbpf_sys::bpf_map_get_fd_by_id,
        libbpf_sys::bpf_map_get_info_by_fd,
        |i: &libbpf_sys::bpf_map_info| c(&i.name),
    );
    let links = names(
        libbpf_sys::bpf_link_get_next_id,
        libbpf_sys::bpf_link_get_fd_by_id,
        libbpf_sys::bpf_link_get_info_by_fd,
        |i: &libbpf_sys::bpf_link_info| format!("type {} of program {}", i.type_, i.prog_id),
    );
    format!("programs {progs:?}, maps {maps:?}, links {links:?}")
}

/// kernel_objects() once it stays the same for half a second (or 20 s pass).
fn settled_kernel_objects() -> (u32, u32, u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = kernel_objects();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = kernel_objects();
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Ids of the components named `name` in `xdpchain status --json` output.
fn ids_named(json: &str, name: &str) -> Vec<u32> {
    json.split("{\"id\":")
        .skip(1)
        .filter(|c| c.contains(&format!("\"name\":\"{name}\"")))
        .filter_map(|c| c.split(',').next()?.parse().ok())
        .collect()
}

#[test]
fn killed_operations_leave_a_chain_running_and_nothing_behind() {
    // Earlier tests' namespaces may still be on their way out (the kernel
    // tears them down asynchronously): start from a settled count.
    let before = settled_kernel_objects();
    let mut rng = Rng::seeded("XDPCHAIN_FAULT_SEED", "fault injection");
    let verdict = obj("verdict");
    let counter = obj("counter");
    {
        let net = VethPair::new();
        let (ns, dev) = (net.ns_b.clone(), net.dev_b.clone());
        // Our layout, whose record in bpffs recovery settles (libxdp's
        // keeps its own state; see tests/libxdp.rs).
        let (ok, _, err) = xdpchain_in(
            BIN,
            &ns,
            &[
                "attach",
                &dev,
                counter.to_str().unwrap(),
                "--layout",
                "xdpchain",
            ],
            &[],
        );
        assert!(ok, "{err}");

        // Watches the interface the whole time: a root program must be
        // attached, and must pass a packet, at every look.
        let stop = Arc::new(AtomicBool::new(false));
        let looks = Arc::new(AtomicU64::new(0));
        let checker = {
            let (stop, looks, ns, dev) = (stop.clone(), looks.clone(), ns.clone(), dev.clone());
            std::thread::spawn(move || {
                in_netns(&ns, || {
                    let index = xdpchain::Interface::resolve(&dev).unwrap().index;
                    let mut failures = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let mut id = 0u32;
                        let rc = unsafe { libbpf_sys::bpf_xdp_query_id(index as i32, 0, &mut id) };
                        if rc != 0 || id == 0 {
                            failures.push(format!("no program attached (rc {rc})"));
                            continue;
                        }
                        let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
                        if fd < 0 {
                            continue; // replaced and freed between the two calls
                        }
                        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                        let mut info = libbpf_sys::bpf_prog_info::default();
                        let mut len = std::mem::size_of_val(&info) as u32;
                        unsafe {
                            libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len)
                        };
                        let name: Vec<u8> = info
                            .name
                            .iter()
                            .take_while(|&&c| c != 0)
                            .map(|&c| c as u8)
                            .collect();
                        // The static root or the dynamic dispatcher.
                        if name != b"xdpchain_root" && name != b"xdpchain_dyn" {
                            failures.push(format!(
                                "program {id} is {}",
                                String::from_utf8_lossy(&name)
                            ));
                        }
                        match xdpchain::test_run(std::os::fd::AsFd::as_fd(&fd), &udp_packet(1), 1) {
                            Ok((2, _)) => {}
                            other => failures.push(format!("test run: {other:?}")),
                        }
                        looks.fetch_add(1, Ordering::Relaxed);
                    }
                    failures
                })
            })
        };

        let mut killed = 0;
        let start = Instant::now();
        for i in 0..OPS {
            // Add a component while there is none of it, else remove one
            // (by id: an interrupted remove may leave two).
            let (ok, json, err) = xdpchain_in(BIN, &ns, &["status", &dev, "--json"], &[]);
            assert!(ok, "operation {i}: {err}");
            let ids = ids_named(&json, "xdp_verdict");
            let id = ids.first().map(u32::to_string);
            let args: Vec<&str> = match &id {
                None => vec!["add", &dev, verdict.to_str().unwrap(), "--priority", "60"],
                Some(id) => vec!["remove", &dev, id],
            };
            let mut child = in_ns(&ns, &[BIN])
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_micros(rng.next(60_000)));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                killed += 1;
            }
            child.wait().unwrap();
        }
        eprintln!("{OPS} operations in {:?}, {killed} killed", start.elapsed());
        assert!(
            killed >= OPS / 4,
            "too few operations were interrupted ({killed}) to test anything"
        );

        // The next operation completes, on a consistent record.
        let (ok, _, err) = xdpchain_in(
            BIN,
            &ns,
            &["add", &dev, counter.to_str().unwrap(), "--priority", "90"],
            &[],
        );
        assert!(ok, "{err}");
        let (ok, json, err) = xdpchain_in(BIN, &ns, &["status", &dev, "--json"], &[]);
        assert!(
            ok && json.matches("\"name\":\"xdp_count\"").count() == 2,
            "{err}{json}"
        );
        if let Some(kind) = expected_kind() {
            assert!(json.contains(&format!("\"mode\":\"{kind}\"")), "{json}");
        }

        stop.store(true, Ordering::Relaxed);
        let failures = checker.join().unwrap();
        let looks = looks.load(Ordering::Relaxed);
        assert!(
            failures.is_empty(),
            "{} bad looks of {looks}: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        assert!(looks > 1000, "only {looks} looks at the interface");
        eprintln!("{looks} looks at the interface, all found a chain");

        let dir = chain_dir(xdpchain::DEFAULT_PIN_DIR, &ns, &dev);
        let (ok, _, err) = xdpchain_in(BIN, &ns, &["detach", &dev], &[]);
        assert!(ok, "{err}");
        assert!(!dir.exists(), "detach leaves no pins");
        assert!(
            !dir.parent().unwrap().exists(),
            "nor the namespace's directory"
        );
    }
    // The kernel frees programs and maps shortly after their last
    // reference, and tears namespaces down in a worker that a guest sharing
    // its cores with others runs late.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut after = kernel_objects();
    while after != before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        after = kernel_objects();
    }
    assert_eq!(
        after,
        before,
        "(programs, maps, links) before and after; left: {}; pinned: {}",
        kernel_objects_named(),
        sh("find /sys/fs/bpf -mindepth 1 2>&1 | head -20")
    );
}
