//! How the store makes new chains (their kind and layout, from what it is
//! told or the environment), and what a running chain cannot take.

use super::Store;
use crate::attach::{AttachMode, AttachOptions, Interface};
use crate::error::{Error, Result};
use crate::features;
use crate::libxdp;
use crate::plan::{Counting, Member, Mode};

/// Whose layout a new chain takes (`$XDPCHAIN_LAYOUT` changes the default).
/// Whatever the choice, a store joins the libxdp dispatcher it finds on an
/// interface, at that dispatcher's version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// libxdp's for a dynamic chain of at most ten components, so that
    /// xdp-loader and every libxdp user can join it, unless counters are
    /// asked for ([`crate::Counting::On`]), which our roots keep along with
    /// timing and dumps; ours otherwise.
    #[default]
    Auto,
    /// Ours: counters, up to [`crate::MAX_COMPONENTS`] components, static
    /// or dynamic; libxdp users see a program that is not theirs.
    Xdpchain,
    /// libxdp's multiprog protocol at this version (2 or 3; None: that of
    /// the libxdp installed here, else 3): shared with xdp-loader and every
    /// libxdp user, dynamic, at most ten components, counted from outside
    /// the dispatcher (no timing, no dumps).
    Libxdp(Option<u8>),
}

impl Layout {
    /// `auto`, `xdpchain`, `libxdp`, or `libxdp:VERSION`.
    pub fn parse(s: &str) -> Result<Layout> {
        let bad = || {
            Error::InvalidArgument(format!(
                "unknown layout '{s}' (auto, xdpchain, libxdp, libxdp:VERSION)"
            ))
        };
        match s.split_once(':') {
            None if s == "auto" => Ok(Layout::Auto),
            None if s == "xdpchain" => Ok(Layout::Xdpchain),
            None if s == "libxdp" => Ok(Layout::Libxdp(None)),
            Some(("libxdp", v)) => Ok(Layout::Libxdp(Some(v.parse().map_err(|_| bad())?))),
            _ => Err(bad()),
        }
    }

    fn from_env() -> Result<Layout> {
        std::env::var("XDPCHAIN_LAYOUT").map_or(Ok(Layout::Auto), |l| Layout::parse(&l))
    }
}

/// What a chain that runs already was made with, which an option given to
/// join it must not contradict.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunningChain {
    pub mode: AttachMode,
    pub kind: Mode,
    /// Counting in our layout (None: libxdp's, which counts from outside).
    pub counts: Option<bool>,
    pub device_bound: bool,
}

impl Store {
    /// The mode asked for new chains.
    pub(crate) fn new_mode(&self) -> Result<Mode> {
        self.mode.map_or_else(Mode::from_env, Ok)
    }

    pub(super) fn new_layout(&self) -> Result<Layout> {
        self.layout.map_or_else(Layout::from_env, Ok)
    }

    /// Static or Dynamic, for a new chain of `members`.
    pub(super) fn kind_for(&self, members: &[Member]) -> Result<Mode> {
        features::resolve(self.new_mode()?, members)
    }

    /// The libxdp version a new chain of `count` components takes, if it
    /// takes libxdp's layout.
    pub(super) fn libxdp_version(
        &self,
        kind: Mode,
        counting: Counting,
        count: usize,
    ) -> Result<Option<u8>> {
        match self.new_layout()? {
            Layout::Xdpchain => Ok(None),
            // Counting asked for takes our layout, whose roots also time
            // and dump.
            Layout::Auto => Ok((kind == Mode::Dynamic
                && counting != Counting::On
                && count <= libxdp::MAX_PROGRAMS)
                .then(libxdp::default_version)),
            Layout::Libxdp(version) => {
                if let Some(v) = version.filter(|v| !libxdp::VERSIONS.contains(v)) {
                    return Err(Error::InvalidArgument(format!(
                        "libxdp dispatcher version {v}; known: {:?}",
                        libxdp::VERSIONS
                    )));
                }
                if kind != Mode::Dynamic {
                    return Err(Error::Unsupported(
                        "libxdp's layout needs a dynamic chain (freplace), not a static one".into(),
                    ));
                }
                Ok(Some(version.unwrap_or_else(libxdp::default_version)))
            }
        }
    }

    /// Refuses what a caller asked of a new chain that the chain running on
    /// `iface` — (attach mode, kind, whether it counts in our layout; None
    /// for libxdp's) — would ignore: skb mode, a kind or layout given to
    /// this store, counting on or off. Defaults and what the environment
    /// sets are not asked for, and join any chain.
    pub(super) fn refuse_ignored(
        &self,
        iface: &Interface,
        running: RunningChain,
        opts: AttachOptions,
        counting: Counting,
    ) -> Result<()> {
        let RunningChain {
            mode,
            kind,
            counts,
            device_bound,
        } = running;
        let layout = match counts {
            None => "libxdp's",
            Some(_) => "xdpchain's",
        };
        let conflict = if opts.mode == AttachMode::Skb && mode != AttachMode::Skb {
            Some(format!("skb mode (it runs in {} mode)", mode.name()))
        } else if opts.device_bound && !device_bound {
            Some("binding to the device (it runs unbound)".into())
        } else if let Some(m) = self.mode.filter(|m| *m != Mode::Auto && *m != kind) {
            Some(format!("a {} chain (it is {})", m.name(), kind.name()))
        } else if let Some(asked) = match self.layout {
            Some(Layout::Xdpchain) if counts.is_none() => Some("xdpchain's"),
            Some(Layout::Libxdp(_)) if counts.is_some() => Some("libxdp's"),
            _ => None,
        } {
            Some(format!("{asked} layout (it follows {layout})"))
        } else {
            match (counting, counts) {
                (Counting::On, Some(false)) => Some("counters (it was made without)".into()),
                (Counting::Off, Some(true)) => Some("no counters (it was made with them)".into()),
                _ => None,
            }
        };
        match conflict {
            Some(what) => Err(Error::InvalidArgument(format!(
                "{}: a chain runs there already, which cannot take {what}; \
                 leave the option out to join it, or detach it first",
                iface.name
            ))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_parse_by_name_and_version() {
        assert_eq!(Layout::parse("auto").unwrap(), Layout::Auto);
        assert_eq!(Layout::parse("xdpchain").unwrap(), Layout::Xdpchain);
        assert_eq!(Layout::parse("libxdp").unwrap(), Layout::Libxdp(None));
        assert_eq!(Layout::parse("libxdp:2").unwrap(), Layout::Libxdp(Some(2)));
        for bad in ["", "libxdp:", "libxdp:x", "ours", "xdpchain:1"] {
            assert!(Layout::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_running_chain_refuses_what_it_would_ignore_and_takes_defaults() {
        let iface = Interface {
            name: "eth0".into(),
            index: 2,
        };
        let store = Store::at("/nonexistent");
        let native = AttachOptions::default();
        let skb = AttachOptions {
            mode: AttachMode::Skb,
            ..native
        };
        let ours = RunningChain {
            mode: AttachMode::Native,
            kind: Mode::Static,
            counts: Some(true),
            device_bound: false,
        };
        let libxdp = RunningChain {
            kind: Mode::Dynamic,
            counts: None,
            ..ours
        };
        // Defaults join anything.
        for running in [ours, libxdp] {
            assert!(store
                .refuse_ignored(&iface, running, native, Counting::Auto)
                .is_ok());
        }
        let refused = |store: &Store, running, opts, counting| {
            store
                .refuse_ignored(&iface, running, opts, counting)
                .unwrap_err()
                .to_string()
        };
        assert!(refused(&store, ours, skb, Counting::Auto)
            .contains("skb mode (it runs in native mode)"));
        let dynamic = Store::at("/nonexistent").with_mode(Mode::Dynamic);
        assert!(refused(&dynamic, ours, native, Counting::Auto)
            .contains("a dynamic chain (it is static)"));
        let libxdp_asked = Store::at("/nonexistent").with_layout(Layout::Libxdp(None));
        assert!(refused(&libxdp_asked, ours, native, Counting::Auto)
            .contains("libxdp's layout (it follows xdpchain's)"));
        let uncounted = RunningChain {
            counts: Some(false),
            ..ours
        };
        assert!(refused(&store, uncounted, native, Counting::On)
            .contains("counters (it was made without)"));
        let bind = AttachOptions {
            device_bound: true,
            ..native
        };
        assert!(refused(&store, libxdp, bind, Counting::Auto)
            .contains("binding to the device (it runs unbound)"));
        let bound = RunningChain {
            device_bound: true,
            ..ours
        };
        assert!(store
            .refuse_ignored(&iface, bound, bind, Counting::Auto)
            .is_ok());
        // libxdp's layout counts from outside: either counting joins it.
        assert!(store
            .refuse_ignored(&iface, libxdp, native, Counting::Off)
            .is_ok());
    }
}
