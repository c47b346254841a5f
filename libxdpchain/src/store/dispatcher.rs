//! Chains in libxdp's layout: a libxdp dispatcher (libxdp.rs), changed
//! under libxdp's lock, with the owners and counters of the programs we
//! add kept beside it in the interface's record directory (pins.rs,
//! ext_counters.rs). How each change of the store is carried out on one.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::change::Present;
use super::Store;
use crate::attach::{AttachMode, Interface, Seen};
use crate::component::Component;
use crate::error::Result;
use crate::ext_counters;
use crate::libxdp::{self, Planned};
use crate::owner::{Actor, Stamp};
use crate::pins::{self, read_libxdp_owners, write_libxdp_owners, Running};
use crate::plan::Counting;

/// A libxdp dispatcher that runs on an interface, with libxdp's lock held.
pub(crate) struct Dispatcher {
    _lock: libxdp::Lock,
    running: libxdp::Running,
    /// The interface's record directory, and the owners it records.
    dir: PathBuf,
    owners: HashMap<u32, Stamp>,
}

impl Dispatcher {
    /// The dispatcher on `iface` if `seen` is one, with its lock held.
    /// Chains of ours never take libxdp's lock.
    pub fn of(store: &Store, iface: &Interface, seen: Option<&Seen>) -> Result<Option<Dispatcher>> {
        let running = match seen {
            Some(s) if s.name == libxdp::PROG_NAME => libxdp::running(iface)?,
            _ => None,
        };
        let Some((lock, running)) = running else {
            return Ok(None);
        };
        let dir = store.iface_dir(iface)?;
        Ok(Some(Dispatcher {
            _lock: lock,
            owners: read_libxdp_owners(&dir),
            running,
            dir,
        }))
    }

    /// Its programs, in run order.
    pub fn present(&self) -> Vec<Present> {
        self.running
            .programs
            .iter()
            .map(|p| Present {
                id: p.id,
                name: p.name.clone(),
                stamp: self.owners.get(&p.id).cloned(),
                what: format!("{} (program {})", p.name, p.id),
                source: None,
            })
            .collect()
    }

    /// Its attach mode and protocol version.
    pub fn mode(&self) -> AttachMode {
        self.running.mode
    }

    pub fn version(&self) -> u8 {
        self.running.config.version
    }

    /// Loaded bound to its interface.
    pub fn device_bound(&self) -> bool {
        self.running.config.devbound
    }

    /// The dispatcher's program id.
    pub fn id(&self) -> u32 {
        self.running.id
    }

    /// A new dispatcher in place of this one of `planned` programs, and
    /// the programs it runs.
    fn commit(
        &self,
        iface: &Interface,
        planned: &[Planned],
        counts: Option<&mut ext_counters::Counting>,
    ) -> Result<Vec<u32>> {
        let maps = pins::maps_dir(&self.dir);
        libxdp::commit(&self.running.target(iface, &maps), planned, counts)
    }

    /// The programs at `keep` (of [`Dispatcher::present`]) and `new` ones
    /// after them, in a new dispatcher in this one's place; the dispatcher
    /// goes when none is left. The new ones are counted as `counting` says.
    pub fn change(
        self,
        store: &Store,
        iface: &Interface,
        keep: &[usize],
        new: Vec<(Component, Stamp)>,
        counting: Counting,
    ) -> Result<()> {
        if keep.is_empty() && new.is_empty() {
            return self.detach(store, iface);
        }
        let mut planned: Vec<_> = keep
            .iter()
            .map(|&i| Planned::Loaded(&self.running.programs[i]))
            .collect();
        let kept = planned.len();
        planned.extend(new.iter().map(|(c, _)| Planned::New(c)));
        let mut counts = ext_counters::Counting::asked(counting);
        let ids = self.commit(iface, &planned, counts.as_mut())?;
        let owners = ids[kept..]
            .iter()
            .zip(new)
            .map(|(id, (_, stamp))| (*id, stamp))
            .collect();
        store.record_libxdp(iface, &ids, owners, counts)
    }

    /// Puts `component` in the place of the program at `at`, with its
    /// priority, counted as it was; returns the new program's id.
    pub fn replace(
        self,
        store: &Store,
        iface: &Interface,
        at: usize,
        component: Component,
        actor: &Actor,
    ) -> Result<u32> {
        let p = &self.running.programs[at];
        let component = component.with_priority(p.priority());
        let planned: Vec<_> = self
            .running
            .programs
            .iter()
            .enumerate()
            .map(|(i, p)| match i == at {
                true => Planned::New(&component),
                false => Planned::Loaded(p),
            })
            .collect();
        let mut counts =
            ext_counters::Counting::asked(match ext_counters::is_counted(&self.dir, p.id) {
                true => Counting::Auto,
                false => Counting::Off,
            });
        let ids = self.commit(iface, &planned, counts.as_mut())?;
        store.record_libxdp(iface, &ids, vec![(ids[at], actor.stamp.clone())], counts)?;
        Ok(ids[at])
    }

    /// Replaces its programs with `components` in a dispatcher of
    /// `version`, attached in `mode`.
    pub fn replace_all(self, store: &Store, iface: &Interface, new: New) -> Result<()> {
        let maps = pins::maps_dir(&self.dir);
        let target = libxdp::Target {
            iface,
            mode: new.mode,
            version: new.version,
            bind: new.device_bound,
            old: Some(&self.running),
            replacing: Some(self.running.fd.as_fd()),
            pin_root: &maps,
        };
        new.commit(store, &target)
    }

    pub fn detach(self, store: &Store, iface: &Interface) -> Result<()> {
        libxdp::detach(iface, &self.running)?;
        store.detach_locked(&self.dir, iface, None)
    }
}

/// A new dispatcher's programs and how it runs them.
pub(crate) struct New {
    pub version: u8,
    pub mode: AttachMode,
    /// Bound to the interface though no component asks it.
    pub device_bound: bool,
    pub components: Vec<(Component, Stamp)>,
    pub counting: Counting,
}

impl New {
    /// Makes the dispatcher `target` describes, of these components, and
    /// records their owners and counters.
    fn commit(self, store: &Store, target: &libxdp::Target) -> Result<()> {
        let planned: Vec<_> = self
            .components
            .iter()
            .map(|(c, _)| Planned::New(c))
            .collect();
        let mut counts = ext_counters::Counting::asked(self.counting);
        let ids = libxdp::commit(target, &planned, counts.as_mut())?;
        let owners = ids
            .iter()
            .zip(self.components)
            .map(|(id, (_, stamp))| (*id, stamp))
            .collect();
        store.record_libxdp(target.iface, &ids, owners, counts)
    }

    /// Makes the dispatcher in place of `current` (if anything runs),
    /// taking libxdp's lock.
    pub fn create(
        self,
        store: &Store,
        iface: &Interface,
        dir: &Path,
        current: Option<&Seen>,
    ) -> Result<()> {
        let _lock = libxdp::lock()?;
        let maps = pins::maps_dir(dir);
        let target = libxdp::Target {
            iface,
            mode: self.mode,
            version: self.version,
            bind: self.device_bound,
            old: None,
            replacing: current.map(|c| c.fd.as_fd()),
            pin_root: &maps,
        };
        self.commit(store, &target)
    }
}

impl Store {
    /// Records the owners and counters of a libxdp dispatcher that now runs
    /// programs `ids`: those known stay, `new` are added, and so are the
    /// counters `counts` attached. What a chain of ours left there goes.
    pub(crate) fn record_libxdp(
        &self,
        iface: &Interface,
        ids: &[u32],
        new: Vec<(u32, Stamp)>,
        counts: Option<ext_counters::Counting>,
    ) -> Result<()> {
        let (dir, _) = self.open_chain(iface, Running::Libxdp)?;
        let mut owners = read_libxdp_owners(&dir);
        owners.retain(|id, _| ids.contains(id));
        owners.extend(new);
        write_libxdp_owners(&dir, owners)?;
        record_counts(&dir, ids, counts)
    }
}

/// Records the counters that a change of the libxdp dispatcher now running
/// `ids` attached, and drops those of programs that left.
pub(crate) fn record_counts(
    dir: &Path,
    ids: &[u32],
    counts: Option<ext_counters::Counting>,
) -> Result<()> {
    match counts {
        Some(c) => c.record(dir, ids),
        None => ext_counters::sweep(dir, ids),
    }
}
