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
    /// Stable while the component stays in the chain, and never given to
    /// another component of it (a replacement keeps it); `xdpchain status`
    /// shows it.
    pub id: u32,
    /// Position in run order.
    pub slot: usize,
    pub name: String,
    pub priority: i32,
    pub continue_on: Verdicts,
    /// None when the chain was built with counting off, and for programs
    /// of a libxdp dispatcher that we do not count
    /// ([`ChainStatus::counters_off`] says why).
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
    /// The function that runs the component in program `program_id`, by
    /// which fentry and fexit programs attach to it where the kernel has
    /// trampolines: `xdpchain_slot_N` in a static chain that calls it (see
    /// [`crate::Component::with_traceable`]), its own name in an extension
    /// program. None where it is copied into a generated root, and where
    /// the kernel does not tell.
    pub function: Option<String>,
}

/// An XDP program of another loader, which is neither a chain of ours nor
/// a libxdp dispatcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignProgram {
    pub interface: Interface,
    pub mode: AttachMode,
    pub program_id: u32,
    /// Its function's name (the kernel's name, cut at 15 characters, where
    /// it has no BTF).
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct ChainStatus {
    pub interface: Option<Interface>,
    pub mode: Option<AttachMode>,
    /// Static or Dynamic.
    pub kind: Mode,
    /// Set when the chain is a libxdp dispatcher (libxdp's layout, this
    /// version of its protocol), whose components are extension programs
    /// known by their program ids.
    pub libxdp_version: Option<u8>,
    pub program_id: u32,
    pub components: Vec<ComponentStatus>,
    /// Why the chain is static where the mode asked for (auto) would have
    /// made it dynamic: the kernel refused a component as an extension
    /// program. Known from a store's record.
    pub not_dynamic: Option<String>,
    /// Loaded bound to its interface, as a component that reads RX metadata
    /// through kfuncs needs. Known from a store's record, a libxdp
    /// dispatcher's config or the [`crate::Chain`] itself (the kernel does
    /// not say).
    pub device_bound: bool,
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
        if !self.components.iter().any(|c| c.counters.is_none()) {
            None
        } else if self.libxdp_version.is_some() {
            Some(
                "in libxdp's layout only the programs libxdpchain adds with counting on are \
                 counted (by fexit programs); the others were added by libxdp users, with \
                 counting off, or where the kernel refused to trace them",
            )
        } else {
            Some("the chain was made with counting off")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(verdicts: [u64; 5], other: u64, ns: u64, cnt: u64) -> Counters {
        Counters {
            verdicts,
            other,
            run_time_ns: ns,
            run_cnt: cnt,
        }
    }

    /// What `top` shows: packets and verdicts over an interval, and time
    /// per packet only where packets were timed.
    #[test]
    fn counters_over_an_interval() {
        let before = counted([1, 2, 3, 0, 0], 1, 100, 2);
        let after = counted([1, 5, 13, 0, 2], 1, 1100, 12);
        let d = after.since(&before);
        assert_eq!((d.packets(), d.verdict(Verdict::Pass)), (15, 10));
        assert_eq!(d.ns_per_packet(), Some(100.0));
        assert_eq!(d.by_name()[1], ("drop", 3));
        assert_eq!(d.by_name()[5], ("other", 0));
        // Counters that went back (a rebuilt chain) give none, not wraps.
        assert_eq!(before.since(&after).packets(), 0);
        assert_eq!(Counters::default().ns_per_packet(), None);
    }

    #[test]
    fn a_chain_says_why_it_counts_nothing() {
        let component = |counters| ComponentStatus {
            id: 0,
            slot: 0,
            name: "xdp_fw".into(),
            priority: 50,
            continue_on: Verdicts::empty(),
            counters,
            program_id: None,
            owner: None,
            inlined: None,
            function: None,
        };
        let mut chain = ChainStatus {
            interface: None,
            mode: None,
            kind: Mode::Static,
            libxdp_version: None,
            program_id: 1,
            components: vec![component(Some(Counters::default()))],
            not_dynamic: None,
            device_bound: false,
        };
        assert_eq!(
            (chain.layout().as_str(), chain.counters_off()),
            ("xdpchain", None)
        );
        chain.components.push(component(None));
        assert_eq!(
            chain.counters_off(),
            Some("the chain was made with counting off")
        );
        chain.libxdp_version = Some(2);
        assert_eq!(chain.layout(), "libxdp v2");
        assert!(chain.counters_off().unwrap().contains("fexit"));
    }
}
