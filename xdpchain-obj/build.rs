//! Compiles the unit tests' component (BPF C) with clang, so that no
//! compiled BPF object is ever committed. It needs the kernel's UAPI
//! headers only: this crate has nothing of libbpf.
use std::{env, path::PathBuf, process::Command};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let src = "bpf/testdata/component.bpf.c";
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-changed={src}");
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86") => "i386".to_string(),
        Ok(arch) => arch.to_string(),
        Err(_) => "x86_64".into(),
    };
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-I/usr/include/{arch}-linux-gnu"))
        .args(["-c", src, "-o"])
        .arg(out.join("test_component.bpf.o"))
        .status()
        .unwrap_or_else(|e| panic!("cannot run {clang} to build {src}: {e}"));
    assert!(status.success(), "{clang} failed on {src}");
}
