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

mod attach;
mod btf;
mod chain;
mod component;
mod dynamic;
mod error;
mod features;
mod inspect;
mod libxdp;
mod link;
mod linked;
mod pins;
mod report;
mod rewrite;
mod root;
mod sys;

pub use attach::{AttachMode, Interface};
pub use chain::{test_run, AttachOptions, Chain, ComponentId, Mode, DEFAULT_PIN_ROOT};
pub use component::{Component, Verdict, Verdicts, DEFAULT_PRIORITY};
pub use error::{Error, Result};
pub use features::{features, Features};
pub use inspect::{list, status, ChainStatus, ComponentStatus, Counters};
pub use libxdp::{MAX_PROGRAMS as LIBXDP_MAX_PROGRAMS, VERSIONS as LIBXDP_VERSIONS};
pub use pins::{Layout, Store, DEFAULT_PIN_DIR, PIN_DIR_ENV};
pub use report::status_report;
pub use root::MAX_COMPONENTS;
