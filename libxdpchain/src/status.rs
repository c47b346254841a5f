//! What a chain runs, as plain data: the chain on an interface, its
//! components in run order, their owners and counters. Front ends format it.

use crate::attach::{AttachMode, Interface};
use crate::component::{Verdict, Verdicts};
use crate::owner::Owner;
use crate::plan::Mode;

/// Packets a component ran on, by the verdict it returned, and the time it
/// took on those that ran while timing was on ([`crate::Timing`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Indexed by verdict code (aborted, drop, pass, tx, redirect).
    pub verdicts: [u64; 5],
    /// Return values that are no XDP verdict.
    pub other: u64,
    /// Nanoseconds from the end of the previous component (or the chain's
    /// start) to this one's end, summed over the packets timed: the
    /// component, its call and its counting, and one clock read.
    pub run_time_ns: u64,
    /// Packets timed (as the kernel's `run_cnt` counts runs while its own
    /// statistics are on).
    pub run_cnt: u64,
}

impl Counters {
    pub fn packets(&self) -> u64 {
        self.verdicts.iter().sum::<u64>() + self.other
    }
    pub fn verdict(&self, v: Verdict) -> u64 {
        self.verdicts[v as usize]
    }
    /// Mean nanoseconds per packet timed, if any was.
    pub fn ns_per_packet(&self) -> Option<f64> {
        (self.run_cnt > 0).then(|| self.run_time_ns as f64 / self.run_cnt as f64)
    }
    /// Packets by verdict name ("aborted" ... "redirect"), then "other".
    pub fn by_name(&self) -> [(&'static str, u64); 6] {
        let mut out = [("other", self.other); 6];
        for (o, v) in out.iter_mut().zip(Verdict::ALL) {
            *o = (v.name(), self.verdict(v));
        }
        out
    }
    /// What was counted from `earlier` (a read of the same counters) to
    /// these.
    pub fn since(&self, earlier: &Counters) -> Counters {
        let mut d = Counters {
            other: self.other.saturating_sub(earlier.other),
            run_time_ns: self.run_time_ns.saturating_sub(earlier.run_time_ns),
            run_cnt: self.run_cnt.saturating_sub(earlier.run_cnt),
            ..Counters::default()
        };
        for (d, (now, was)) in d
            .verdicts
            .iter_mut()
            .zip(self.verdicts.iter().zip(earlier.verdicts))
        {
            *d = now.saturating_sub(was);
        }
        d
    }
}

/// One component as the kernel runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentStatus {
    /// Stable while the component stays in the chain; `xdpchain status` shows it.
    pub id: u32,
    /// Position in run order.
    pub slot: usize,
    pub name: String,
    pub priority: i32,
    pub continue_on: Verdicts,
    /// None when the chain was built with counting off.
    pub counters: Option<Counters>,
    /// The program that runs the component: the chain's own for a linked
    /// one, its extension program otherwise. None where this process cannot
    /// tell (the extensions of a dynamic chain that another process built).
    pub program_id: Option<u32>,
    /// Who added it to a shared chain; None where no record says (a chain
    /// built in one process, programs that xdp-loader added).
    pub owner: Option<Owner>,
    /// Whether a static chain runs it without a call: its code copied into
    /// a root generated for the chain ([`crate::Chain::set_inlining`]), or
    /// left out where no verdict lets the chain reach it. None for other
    /// chains, and where the kernel does not tell.
    pub inlined: Option<bool>,
}

#[derive(Clone, Debug)]
pub struct ChainStatus {
    pub interface: Option<Interface>,
    pub mode: Option<AttachMode>,
    /// Static or Dynamic.
    pub kind: Mode,
    /// Set when the chain is a libxdp dispatcher (libxdp's layout, this
    /// version of its protocol), whose components are extension programs
    /// known by their program ids, without counters.
    pub libxdp_version: Option<u8>,
    pub program_id: u32,
    pub components: Vec<ComponentStatus>,
}

impl ChainStatus {
    /// Whose layout the chain follows: `xdpchain`, or `libxdp vN`.
    pub fn layout(&self) -> String {
        match self.libxdp_version {
            Some(v) => format!("libxdp v{v}"),
            None => "xdpchain".into(),
        }
    }

    /// Why its components show no counters, where they show none.
    pub fn counters_off(&self) -> Option<&'static str> {
        if self.libxdp_version.is_some() {
            Some(
                "libxdp's dispatcher has no room for counters; \
                 a chain in xdpchain's layout counts (attach with counters on)",
            )
        } else if self.components.iter().any(|c| c.counters.is_none()) {
            Some("the chain was made with counting off")
        } else {
            None
        }
    }
}
