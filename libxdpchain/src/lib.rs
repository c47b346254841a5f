//! libxdpchain: run several unchanged XDP programs on one interface, one
//! after another, each with a priority and a set of verdicts on which the
//! chain goes on.
//!
//! ```no_run
//! use xdpchain::{AttachOptions, Chain, Component};
//! let mut chain = Chain::new();
//! chain.add(Component::from_file("counter.o", None)?)?;
//! chain.add(Component::from_file("firewall.o", Some("xdp_fw"))?.with_priority(10))?;
//! chain.attach("eth0", AttachOptions::default())?;
//! # Ok::<(), xdpchain::Error>(())
//! ```

// Only the kernel layer (sys) may use `unsafe`, each block with the reason
// it is sound.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod apply;
mod attach;
mod chain;
mod component;
mod counters;
mod declared;
mod dump;
mod dynamic;
mod error;
mod ext_counters;
mod features;
mod handle;
mod inspect;
mod libxdp;
pub mod limits;
mod linked;
mod loaded;
mod ns;
mod owner;
mod pins;
mod plan;
mod record;
mod report;
mod root;
mod shared;
mod status;
mod store;
#[allow(unsafe_code)]
mod sys;
mod timing;

pub use apply::{Applied, ApplyOptions, Change, Outcome};
pub use attach::{AttachMode, AttachOptions, Interface};
pub use chain::{Chain, DEFAULT_PIN_ROOT};
pub use component::{Component, Verdict, Verdicts, DEFAULT_PRIORITY};
pub use declared::{
    default_owner, parse_chains, read_chains, DeclaredChain, DeclaredComponent, Location,
    Selection, DEFAULT_CHAINS_FILE,
};
pub use dump::{Dump, DumpPoint, Packet};
pub use error::{Error, Result};
pub use features::{features, Features};
pub use handle::{ChainHandle, Listed};
pub use libxdp::{MAX_PROGRAMS as LIBXDP_MAX_PROGRAMS, VERSIONS as LIBXDP_VERSIONS};
pub use ns::{bpffs, Netns};
pub use owner::{Owner, MAX_OWNER_NAME};
pub use plan::{ComponentId, ComponentKey, Counting, Mode};
pub use report::{Action, Changed, Report, ReportedProgram};
pub use root::{MAX_COMPONENTS, SNAP_MAX};
pub use shared::{OpenOptions, SharedChain};
pub use status::{ChainStatus, ComponentStatus, Counters, ForeignProgram};
pub use store::{Layout, Store, DEFAULT_PIN_DIR, PIN_DIR_ENV};
pub use sys::test_run;
pub use timing::{Timing, TIMING_LEASE};

/// The chain attached to `iface`, with the owners [`Store::new`]'s records
/// name.
pub fn status(iface: &str) -> Result<ChainStatus> {
    Store::new().status(iface)
}

/// The chains of this network namespace, as [`status`] shows them.
pub fn list() -> Result<Vec<ChainStatus>> {
    Store::new().list()
}

/// The XDP programs of other loaders in this network namespace.
pub fn foreign() -> Result<Vec<ForeignProgram>> {
    Store::new().foreign()
}
