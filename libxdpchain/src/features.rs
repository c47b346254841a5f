//! What the running kernel can do for chains, probed once per process on
//! the first chain that needs to know.

use std::sync::OnceLock;

use crate::component::{Component, Verdict, Verdicts};
use crate::dynamic;
use crate::error::{Error, Result};
use crate::linked;
use crate::plan::{Build, ComponentId, Member, Mode, Reuse};
use crate::sys::test_run;

static PROBE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/probe_tailcall.bpf.o"));

/// Kernel capabilities that change what a chain can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// The verifier keeps the chain going after a component linked as a
    /// static subprogram makes a tail call. Before Linux commit
    /// e3245f899043 ("bpf: properly verify tail call behavior"; 6.1 and
    /// 6.12 lack it) it takes such a subprogram to return its fall-through
    /// value and drops the rest of the chain. Static chains therefore link
    /// tail-calling components as global functions on every kernel; the
    /// kernel itself returns to the chain after a tail call either way.
    pub tail_calls_in_components: bool,
    /// Extension programs (freplace) can fill a dispatcher's slots, as
    /// dynamic chains need. Some kernels (locked down, or whose JIT lacks
    /// BPF trampolines) refuse them.
    pub freplace: bool,
}

/// Probes the running kernel (needs the privileges of loading a chain).
pub fn features() -> Result<Features> {
    static CACHE: OnceLock<Features> = OnceLock::new();
    if let Some(f) = CACHE.get() {
        return Ok(*f);
    }
    let f = crate::sys::probing(|| {
        Ok::<_, Error>(Features {
            tail_calls_in_components: probe_tail_calls()?,
            freplace: dynamic::probe(&probe_member(0, "probe_marker")?)?,
        })
    })?;
    log::debug!("kernel features: {f:?}");
    Ok(*CACHE.get_or_init(|| f))
}

/// Chains [probe_caller, probe_marker]: the marker's XDP_TX comes back only
/// if the chain went on after the caller's tail call.
fn probe_tail_calls() -> Result<bool> {
    let members = [
        probe_member(0, "probe_caller")?,
        probe_member(1, "probe_marker")?,
    ];
    // The probe pins no maps, and asks the verifier about the compiled
    // root's calls.
    let build = Build {
        static_tail_callers: true,
        inline: false,
        ..Build::new(false, String::new())
    };
    let linked = linked::load(&members, &build, &Reuse::default())?;
    let (verdict, _) = test_run(linked.prog(), &[0u8; 64], 1)?;
    Ok(verdict == Verdict::Tx as u32)
}

/// A component of the probe object, chained at position `id`.
fn probe_member(id: u32, program: &str) -> Result<Member> {
    let component = Component::from_bytes(PROBE, "kernel probe", Some(program))?
        .with_priority(id as i32)
        .with_continue_on(Verdicts::empty().with(Verdict::Pass));
    Ok(Member {
        id: ComponentId(id),
        row: id,
        tag: id as u64,
        component,
    })
}

/// Refuses a static chain that no kernel loads: a tail-calling component
/// beside one without BTF func info (built without -g). Then no component
/// keeps its func info, and the kernel allows tail calls in subprograms only
/// with it ("tail_call is not allowed in subprogs without BTF").
pub(crate) fn check_static(members: &[Member]) -> Result<()> {
    let bare = members.iter().find(|m| !m.component.has_func_info);
    let caller = members.iter().find(|m| m.component.tail_calls);
    if let (Some(bare), Some(caller)) = (bare, caller) {
        return Err(Error::Unsupported(format!(
            "component {}:{} makes tail calls, which the kernel allows in a linked chain only with BTF func info in every component, and {}:{} has none (built without -g); build it with -g, or use a dynamic chain",
            caller.component.source(),
            caller.component.program(),
            bare.component.source(),
            bare.component.program()
        )));
    }
    Ok(())
}

/// Why a chain in auto mode is static after all, if `e` is the kernel's
/// refusal of a component as an extension program: 5.10, for one, refuses
/// global functions that take the context there, and prog arrays shared
/// with XDP programs. The caller then builds the chain static, and keeps
/// `e` if the kernel refuses that too.
pub(crate) fn not_dynamic(e: &Error) -> Option<String> {
    match e {
        Error::Verifier {
            component,
            errno,
            log,
        } => Some(format!(
            "the kernel refused {component} as an extension program: {}",
            crate::error::refusal(log, errno)
        )),
        _ => None,
    }
}

/// Refuses a chain whose components call XDP RX metadata kfuncs that this
/// kernel lacks (they came in Linux 6.3), naming the first, or that is to
/// be `bound` where the kernel has none, rather than leaving it to libbpf's
/// and the verifier's words.
pub(crate) fn check_device_bound<'a>(
    components: impl IntoIterator<Item = &'a Component>,
    bound: bool,
) -> Result<()> {
    for c in components {
        for kfunc in &c.metadata_kfuncs {
            if !crate::sys::kernel_has_func(kfunc)? {
                return Err(Error::Unsupported(format!(
                    "component {} calls {kfunc}, an XDP RX metadata kfunc this kernel lacks (Linux 6.3 has them)",
                    c.label()
                )));
            }
        }
    }
    if bound && !crate::sys::kernel_has_func("bpf_xdp_metadata_rx_timestamp")? {
        return Err(Error::Unsupported(
            "device-bound XDP programs need the XDP RX metadata kfuncs, which this kernel lacks (Linux 6.3 has them)".into(),
        ));
    }
    Ok(())
}

/// Static or Dynamic for `mode` and `members`, on this kernel.
pub(crate) fn resolve(mode: Mode, members: &[Member]) -> Result<Mode> {
    match mode {
        Mode::Static => Ok(Mode::Static),
        Mode::Dynamic if features()?.freplace => Ok(Mode::Dynamic),
        Mode::Dynamic => Err(Error::Unsupported(
            "dynamic chains need freplace (BPF_PROG_TYPE_EXT), which this kernel refuses".into(),
        )),
        Mode::Auto => Ok(
            if members.iter().all(|m| m.component.has_func_info) && features()?.freplace {
                Mode::Dynamic
            } else {
                Mode::Static
            },
        ),
    }
}
