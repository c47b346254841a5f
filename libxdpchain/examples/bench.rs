//! `make bench`: per-packet cost (BPF_PROG_TEST_RUN, 64-byte packet) of a
//! linked chain of K components against one program with the K bodies
//! inlined and a tail-call chain of them; and the time to link, load and
//! attach a chain of 10. Prints a table and writes it under bench/results/.

use std::ffi::CString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use libbpf_sys as sys;
use std::os::fd::BorrowedFd;
use xdpchain::{AttachOptions, Chain, Component};

const REPEAT: u32 = 2_000_000;
const RUNS: usize = 5;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .into()
}

fn compile(flags: &[&str], out: &Path) {
    let st = Command::new("clang")
        .args(["-O2", "-g", "-target", "bpf"])
        .arg(format!("-I{}", env!("XDPCHAIN_LIBBPF_INCLUDE")))
        .arg(format!(
            "-I/usr/include/{}-linux-gnu",
            std::env::consts::ARCH
        ))
        .args(flags)
        .arg("-c")
        .arg(repo().join("bench/bpf/component.bpf.c"))
        .arg("-o")
        .arg(out)
        .status()
        .expect("clang");
    assert!(st.success());
}

fn packet() -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    p
}

/// Best of RUNS mean ns/packet.
fn cost(fd: BorrowedFd<'_>) -> u32 {
    (0..RUNS)
        .map(|_| xdpchain::test_run(fd, &packet(), REPEAT).unwrap().1)
        .min()
        .unwrap()
}

/// Loads a plain object with libbpf; returns it and the fd of `entry`.
fn load_plain(path: &Path, entry: &str) -> (*mut sys::bpf_object, i32) {
    let p = CString::new(path.to_str().unwrap()).unwrap();
    unsafe {
        let obj = sys::bpf_object__open(p.as_ptr());
        assert!(!obj.is_null());
        assert_eq!(sys::bpf_object__load(obj), 0);
        let e = CString::new(entry).unwrap();
        let prog = sys::bpf_object__find_program_by_name(obj, e.as_ptr());
        (obj, sys::bpf_program__fd(prog))
    }
}

fn main() {
    let dir = repo().join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let comp_obj = dir.join("component.o");
    compile(&[], &comp_obj);
    let mut table = String::new();
    writeln!(
        table,
        "per-packet cost, ns (BPF_PROG_TEST_RUN, 64 B, best of {RUNS} x {REPEAT}), one run"
    )
    .unwrap();
    writeln!(
        table,
        "{:>3} {:>9} {:>9} {:>9} {:>14} {:>12}",
        "K", "inlined", "tailcall", "chain", "chain-inlined", "per comp"
    )
    .unwrap();
    for k in [1usize, 5, 10] {
        let inl = dir.join(format!("inline{k}.o"));
        compile(&[&format!("-DINLINE={k}")], &inl);
        let (o1, fd1) = load_plain(&inl, "bench_inline");
        let inlined = cost(unsafe { BorrowedFd::borrow_raw(fd1) });

        let tail = dir.join("tail.o");
        compile(&["-DTAIL=10"], &tail);
        let (o2, fd2) = load_plain(&tail, "bench_tail_0");
        unsafe {
            let m = sys::bpf_object__find_map_by_name(o2, c"next".as_ptr());
            let mfd = sys::bpf_map__fd(m);
            for i in 1..k as u32 {
                let name = CString::new(format!("bench_tail_{i}")).unwrap();
                let pfd =
                    sys::bpf_program__fd(sys::bpf_object__find_program_by_name(o2, name.as_ptr()));
                assert_eq!(
                    sys::bpf_map_update_elem(
                        mfd,
                        (&i as *const u32).cast(),
                        (&pfd as *const i32).cast(),
                        0
                    ),
                    0
                );
            }
        }
        let tailcall = cost(unsafe { BorrowedFd::borrow_raw(fd2) });

        let mut chain = Chain::new();
        chain.set_counting(false);
        for _ in 0..k {
            chain
                .add(Component::from_file(&comp_obj, None).unwrap())
                .unwrap();
        }
        chain.load().unwrap();
        let linked = cost(chain.program_fd().unwrap());
        let per = (linked as f64 - inlined as f64) / k as f64;
        writeln!(
            table,
            "{k:>3} {inlined:>9} {tailcall:>9} {linked:>9} {:>14.2} {per:>12.2}",
            linked as f64 / inlined as f64
        )
        .unwrap();
        unsafe {
            sys::bpf_object__close(o1);
            sys::bpf_object__close(o2);
        }
    }

    // Link, load and attach a chain of 10 (on a veth in a namespace of our own).
    let ns = format!("xdpc-bench{}", std::process::id());
    let sh = |c: &str| {
        assert!(
            Command::new("sh")
                .arg("-c")
                .arg(c)
                .status()
                .unwrap()
                .success(),
            "{c}"
        )
    };
    sh(&format!("ip netns add {ns} && ip -n {ns} link add xb0 type veth peer name xb1 && ip -n {ns} link set xb0 up && ip -n {ns} link set xb1 up"));
    let t0 = Instant::now();
    let mut chain = Chain::new();
    for _ in 0..10 {
        chain
            .add(Component::from_file(&comp_obj, None).unwrap())
            .unwrap();
    }
    let bytes = chain.link().unwrap();
    let t_link = t0.elapsed();
    let t1 = Instant::now();
    chain.load().unwrap();
    let t_load = t1.elapsed();
    let netns = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&netns), libc::CLONE_NEWNET) };
    let t2 = Instant::now();
    chain.attach("xb0", AttachOptions::default()).unwrap();
    let t_attach = t2.elapsed();
    chain.detach().unwrap();
    sh(&format!("ip netns del {ns}"));
    writeln!(
        table,
        "\nchain of 10: link {:.1} ms ({} byte object), load {:.1} ms, attach {:.2} ms",
        t_link.as_secs_f64() * 1e3,
        bytes.len(),
        t_load.as_secs_f64() * 1e3,
        t_attach.as_secs_f64() * 1e3
    )
    .unwrap();
    print!("{table}");
    let results = repo().join("bench/results");
    std::fs::create_dir_all(&results).unwrap();
    std::fs::write(results.join("static.txt"), &table).unwrap();
}
