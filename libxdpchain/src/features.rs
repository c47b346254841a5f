//! What the running kernel can do for chains, probed once per process on
//! the first chain that needs to know.

use std::sync::OnceLock;

use crate::chain::{self, ComponentId, Member, Reuse};
use crate::component::{Component, Verdict, Verdicts};
use crate::dynamic;
use crate::error::{Error, Result};

static PROBE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/probe_tailcall.bpf.o"));

/// Kernel capabilities that change what a chain can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// The chain goes on after a component that made a tail call. Linux 6.1
    /// returns from the whole chain instead.
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
    let f = Features {
        tail_calls_in_components: probe_tail_calls()?,
        freplace: dynamic::probe(&probe_member(0, "probe_marker")?)?,
    };
    Ok(*CACHE.get_or_init(|| f))
}

/// Chains [probe_caller, probe_marker]: the marker's XDP_TX comes back only
/// if the chain went on after the caller's tail call.
fn probe_tail_calls() -> Result<bool> {
    let members = [
        probe_member(0, "probe_caller")?,
        probe_member(1, "probe_marker")?,
    ];
    let build = chain::Build {
        counting: false,
        ..Default::default()
    };
    let loaded = crate::linked::load_unchecked(&members, &build, &Reuse::default())?;
    let (verdict, _) = chain::test_run(loaded.prog(), &[0u8; 64], 1)?;
    Ok(verdict == Verdict::Tx as u32)
}

/// A component of the probe object, chained at position `id`.
fn probe_member(id: u32, program: &str) -> Result<Member> {
    let component = Component::from_bytes(PROBE, "kernel probe", Some(program))?
        .with_priority(id as i32)
        .with_continue_on(Verdicts::empty().with(Verdict::Pass));
    Ok(Member {
        id: ComponentId(id),
        tag: id as u64,
        component,
    })
}

/// Refuses what this kernel would run wrongly.
pub(crate) fn check(members: &[Member]) -> Result<()> {
    if let Some(m) = members.iter().find(|m| m.component.tail_calls) {
        if !features()?.tail_calls_in_components {
            return Err(Error::Unsupported(format!(
                "component {}:{} makes tail calls, and this kernel does not return to the chain after a tail call made inside a component (Linux 6.1 does not)",
                m.component.source(),
                m.component.program()
            )));
        }
    }
    Ok(())
}
