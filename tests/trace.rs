//! Traceable components (Component::with_traceable): a static chain keeps
//! one a function of its own, named by status, while the others are copied
//! into its generated root; a dynamic chain's components are their own
//! extension programs. Where the kernel has trampolines (the guests), an
//! fentry program attached by that name sees every packet the component
//! runs on; this machine's kernel refuses the attachment.
mod common;

use common::*;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use xdpchain::{Chain, Component, Mode};

const RUNS: u64 = 25;

/// tests/bpf/fentry_count.bpf.c attached to function `func` of `prog`.
struct Tracer {
    obj: *mut libbpf_sys::bpf_object,
    link: *mut libbpf_sys::bpf_link,
}

impl Tracer {
    /// The tracer, or the kernel's refusal (negative errno).
    fn attach(prog: BorrowedFd<'_>, func: &str) -> Result<Tracer, i64> {
        let path = CString::new(obj("fentry_count").to_str().unwrap()).unwrap();
        let func = CString::new(func).unwrap();
        unsafe {
            let obj = libbpf_sys::bpf_object__open_file(path.as_ptr(), std::ptr::null());
            assert!(!obj.is_null());
            let p = libbpf_sys::bpf_object__find_program_by_name(obj, c"count_calls".as_ptr());
            assert!(!p.is_null());
            let mut t = Tracer {
                obj,
                link: std::ptr::null_mut(),
            };
            let err =
                libbpf_sys::bpf_program__set_attach_target(p, prog.as_raw_fd(), func.as_ptr());
            if err != 0 {
                return Err(err.into());
            }
            let err = libbpf_sys::bpf_object__load(obj);
            if err != 0 {
                return Err(err.into());
            }
            t.link = libbpf_sys::bpf_program__attach(p);
            if t.link.is_null() {
                return Err(libbpf_sys::libbpf_get_error(t.link as *const _));
            }
            Ok(t)
        }
    }

    fn calls(&self) -> u64 {
        let map = unsafe { libbpf_sys::bpf_object__find_map_by_name(self.obj, c".bss".as_ptr()) };
        assert!(!map.is_null());
        let fd = unsafe { BorrowedFd::borrow_raw(libbpf_sys::bpf_map__fd(map)) };
        read_u64(fd, 0)
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        unsafe {
            if !self.link.is_null() {
                libbpf_sys::bpf_link__destroy(self.link);
            }
            libbpf_sys::bpf_object__close(self.obj);
        }
    }
}

fn trampolines() -> bool {
    let f = xdpchain::features().unwrap().freplace;
    if let Ok(expect) = std::env::var("XDPCHAIN_EXPECT_FREPLACE") {
        assert_eq!(f, expect == "1", "the freplace probe disagrees with the VM");
    }
    f
}

/// Runs RUNS packets through `prog`, every one passed by each component.
fn run_packets(prog: BorrowedFd<'_>) {
    for _ in 0..RUNS {
        assert_eq!(run_packet(prog, &udp_packet(9)).0, 2, "XDP_PASS");
    }
}

fn chain(mode: Mode) -> Chain {
    let mut chain = Chain::new();
    chain.set_mode(mode);
    chain.set_inlining(true);
    for (name, traceable) in [("counter", false), ("verdict", true), ("core", false)] {
        chain
            .add(
                Component::from_file(obj(name), None)
                    .unwrap()
                    .with_traceable(traceable),
            )
            .unwrap();
    }
    chain.load().unwrap();
    chain
}

#[test]
fn a_traceable_component_stays_a_function_of_a_static_chain() {
    let chain = chain(Mode::Static);
    let st = chain.status().unwrap();
    for c in &st.components {
        let traceable = c.name == "xdp_verdict";
        assert_eq!(c.inlined, Some(!traceable), "{}", c.name);
        let want = traceable.then(|| format!("xdpchain_slot_{}", c.slot));
        assert_eq!(c.function, want, "{}", c.name);
    }
    let func = st
        .components
        .iter()
        .find_map(|c| c.function.clone())
        .unwrap();
    let prog = chain.program_fd().unwrap();
    match Tracer::attach(prog, &func) {
        Ok(tracer) => {
            assert!(trampolines(), "fentry attached where freplace is refused");
            run_packets(prog);
            assert_eq!(tracer.calls(), RUNS);
        }
        Err(e) => {
            assert!(!trampolines(), "fentry on {func} refused: {e}");
            run_packets(prog);
        }
    }
    let st = chain.status().unwrap();
    for c in &st.components {
        assert_eq!(c.counters.unwrap().packets(), RUNS, "{}", c.name);
    }
}

#[test]
fn a_dynamic_chains_components_are_traced_by_their_own_names() {
    if !trampolines() {
        let mut chain = Chain::new();
        chain.set_mode(Mode::Dynamic);
        chain
            .add(Component::from_file(obj("verdict"), None).unwrap())
            .unwrap();
        let err = chain.load().err().unwrap();
        assert!(err.to_string().contains("freplace"), "{err}");
        return;
    }
    let chain = chain(Mode::Dynamic);
    let st = chain.status().unwrap();
    let c = st
        .components
        .iter()
        .find(|c| c.name == "xdp_count")
        .unwrap();
    assert_eq!(c.function.as_deref(), Some("xdp_count"));
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(c.program_id.unwrap()) };
    assert!(fd >= 0);
    let ext = unsafe { OwnedFd::from_raw_fd(fd) };
    let tracer = Tracer::attach(ext.as_fd(), "xdp_count").unwrap();
    run_packets(chain.program_fd().unwrap());
    assert_eq!(tracer.calls(), RUNS);
}
