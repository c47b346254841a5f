//! A chain as a front end holds it: one this process builds (to link into
//! a file, or to load and attach itself), or an owner's handle on an
//! interface's shared chain. The C API and the Python bindings hold one of
//! these, so each verb means the same in both and is written once.

use std::os::fd::BorrowedFd;

use crate::chain::Chain;
use crate::component::Component;
use crate::error::{Error, Result};
use crate::owner::Owner;
use crate::plan::{ComponentId, ComponentKey, Mode};
use crate::report::Report;
use crate::shared::SharedChain;
use crate::status::ComponentStatus;

/// One chain, whichever way a front end opened it.
pub enum ChainHandle {
    /// Built in this process.
    Local(Chain),
    /// The shared chain of an interface, as one owner opened it.
    Shared(SharedChain),
}

/// A component as a handle lists it.
#[derive(Clone, Debug)]
pub struct Listed {
    /// What a local chain knows of it before loading (its id, slot, name,
    /// priority and continue set), or what runs on the interface.
    pub status: ComponentStatus,
    /// Added through this handle (every component of a local chain).
    pub own: bool,
}

impl ChainHandle {
    /// Adds `component`; on an interface, also what the change did there.
    pub fn add(&mut self, component: Component) -> Result<(ComponentId, Option<Report>)> {
        match self {
            ChainHandle::Local(chain) => chain.add(component).map(|id| (id, None)),
            ChainHandle::Shared(shared) => {
                let report = shared.add(component)?;
                Ok((report.added()[0], Some(report)))
            }
        }
    }

    /// Removes the component `key`.
    pub fn remove(&mut self, key: impl Into<ComponentKey>) -> Result<Option<Report>> {
        match self {
            ChainHandle::Local(chain) => chain.remove(key).map(|_| None),
            ChainHandle::Shared(shared) => shared.remove(key).map(Some),
        }
    }

    /// Puts `component` in the place of component `key`, atomically.
    pub fn replace(
        &mut self,
        key: impl Into<ComponentKey>,
        component: Component,
    ) -> Result<Option<Report>> {
        match self {
            ChainHandle::Local(chain) => chain.replace(key, component).map(|_| None),
            ChainHandle::Shared(shared) => shared.replace(key, component).map(Some),
        }
    }

    /// The component at position `slot` of the run order.
    pub fn at_slot(&self, slot: usize) -> Result<ComponentId> {
        match self {
            ChainHandle::Local(chain) => chain.at_slot(slot),
            ChainHandle::Shared(shared) => {
                let components = running(shared)?;
                let c = components.get(slot).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "slot {slot} is out of range (the chain has {} components)",
                        components.len()
                    ))
                })?;
                Ok(ComponentId(c.id))
            }
        }
    }

    /// The components in run order (on an interface, of every owner; none
    /// while no chain runs there).
    pub fn components(&self) -> Result<Vec<Listed>> {
        match self {
            ChainHandle::Local(chain) => Ok(chain
                .components()
                .into_iter()
                .enumerate()
                .map(|(slot, (id, c))| Listed {
                    status: ComponentStatus {
                        id: id.0,
                        slot,
                        name: c.program().to_string(),
                        priority: c.priority(),
                        continue_on: c.continue_on(),
                        counters: None,
                        program_id: None,
                        owner: None,
                        inlined: None,
                        function: None,
                    },
                    own: true,
                })
                .collect()),
            ChainHandle::Shared(shared) => {
                let components = running(shared)?;
                if components.is_empty() {
                    return Ok(Vec::new());
                }
                let own = shared.own()?;
                Ok(components
                    .into_iter()
                    .map(|status| Listed {
                        own: own.contains(&status.id),
                        status,
                    })
                    .collect())
            }
        }
    }

    /// A component's map by the name it has in the component's own object.
    pub fn map_fd(&mut self, id: ComponentId, name: &str) -> Result<BorrowedFd<'_>> {
        match self {
            ChainHandle::Local(chain) => chain.map_fd(id, name),
            ChainHandle::Shared(shared) => shared.map_fd(id, name),
        }
    }

    /// Runs the chain `repeat` times on `packet` (BPF_PROG_TEST_RUN):
    /// (verdict, mean duration in ns).
    pub fn test_run(&self, packet: &[u8], repeat: u32) -> Result<(u32, u32)> {
        match self {
            ChainHandle::Local(chain) => chain.test_run(packet, repeat),
            ChainHandle::Shared(shared) => shared.test_run(packet, repeat),
        }
    }

    /// Static or Dynamic (on an interface while no chain runs: the mode a
    /// new one takes).
    pub fn mode(&self) -> Result<Mode> {
        match self {
            ChainHandle::Local(chain) => Ok(chain.mode()),
            ChainHandle::Shared(shared) => shared.mode(),
        }
    }

    /// The owner of what this handle adds on an interface.
    pub fn owner(&self) -> Option<&Owner> {
        match self {
            ChainHandle::Local(_) => None,
            ChainHandle::Shared(shared) => Some(shared.owner()),
        }
    }
}

/// The components that run on a shared chain's interface: none while no
/// chain runs there.
fn running(shared: &SharedChain) -> Result<Vec<ComponentStatus>> {
    match shared.status() {
        Err(Error::NoChain(_)) => Ok(Vec::new()),
        other => Ok(other?.components),
    }
}
