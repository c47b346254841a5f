//! Compiles the chain's root program, the kernel probes and the unit tests'
//! component (BPF C) with clang, so that no compiled BPF object is ever
//! committed, and hands the libbpf headers to the tests.
use std::{env, path::PathBuf, process::Command};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let include = env::var("DEP_BPF_INCLUDE").expect("libbpf-sys exports its headers");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-changed=bpf/chain.h");
    println!("cargo:rerun-if-changed=bpf/slot.h");
    println!("cargo:rerun-if-changed=bpf/stats.h");
    // (object, source, defines): libxdp's dispatcher once per protocol version.
    let builds = [
        ("root", "root", None),
        ("root_open", "root", Some("-DXDPCHAIN_OPEN")),
        ("dynamic", "dynamic", None),
        ("probe_tailcall", "probe_tailcall", None),
        ("count_exit", "count_exit", None),
        ("libxdp_v2", "libxdp", Some("-DLIBXDP_VERSION=2")),
        ("libxdp_v3", "libxdp", Some("-DLIBXDP_VERSION=3")),
        // The object layer's test component, for the unit tests here that
        // link it with libbpf.
        (
            "test_component",
            "../../xdpchain-obj/bpf/testdata/component",
            None,
        ),
    ];
    for (name, source, define) in builds {
        let src = format!("bpf/{source}.bpf.c");
        println!("cargo:rerun-if-changed={src}");
        let status = Command::new(&clang)
            .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
            .args(define)
            .arg(format!("-I{include}"))
            .arg(format!("-I/usr/include/{}-linux-gnu", target_multiarch()))
            .args(["-c", &src, "-o"])
            .arg(out.join(format!("{name}.bpf.o")))
            .status()
            .unwrap_or_else(|e| panic!("cannot run {clang} to build {src}: {e}"));
        assert!(status.success(), "{clang} failed on {src}");
    }
    println!("cargo:rustc-env=XDPCHAIN_LIBBPF_INCLUDE={include}");
}

fn target_multiarch() -> String {
    match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86") => "i386".into(),
        Ok(arch) => arch.into(),
        Err(_) => "x86_64".into(),
    }
}
