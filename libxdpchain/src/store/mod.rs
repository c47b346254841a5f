//! The store: the chains of interfaces, shared by every process through
//! their pinned state (pins.rs) or libxdp's (libxdp.rs), and the operations
//! on them. Each runs one way, under the store's lock: observe what runs
//! (a [`Backend`]: a chain of ours, recorded.rs, or a libxdp dispatcher,
//! dispatcher.rs), decide what goes and whose it is (change.rs, without
//! the kernel), check the owners, and commit through the backend, which
//! builds the new chain, swaps it in and records it.

mod change;
mod dispatcher;
mod layout;
mod recorded;
mod view;

use std::path::{Path, PathBuf};

pub(crate) use change::Which;
pub use layout::Layout;
use layout::RunningChain;

use crate::attach::{self, AttachOptions, Interface, Seen};
use crate::component::Component;
use crate::error::{Error, Result};
use crate::features;
use crate::inspect;
use crate::owner::{Actor, Stamp};
use crate::pins::{self, mkdirs, Running};
use crate::plan::{self, ComponentKey, Counting, Member, Mode};
use crate::record::Record;
use crate::report::{self, Report};
use change::Present;
use dispatcher::{Dispatcher, New};
use recorded::{Fresh, Recorded};

/// Where chains are recorded unless told otherwise, under the shared bpffs
/// ([`crate::ns::bpffs`]).
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/xdpchain";
/// Environment variable that moves the default.
pub const PIN_DIR_ENV: &str = "XDPCHAIN_PIN_DIR";

/// Chains recorded under one bpffs directory, and libxdp's chains: where
/// they are kept, and how new ones are made. [`Store::open`] opens the chain
/// of an interface as one owner; the other methods act once, as this
/// process under its program name.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
    /// For new chains; None: `$XDPCHAIN_MODE`, else auto.
    mode: Option<Mode>,
    /// For new chains; None: `$XDPCHAIN_LAYOUT`, else auto.
    layout: Option<Layout>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

/// What runs on an interface, as a change finds it under the store's lock.
pub(crate) enum Backend {
    /// A libxdp dispatcher, with libxdp's lock held.
    Libxdp(Dispatcher),
    /// A chain of ours, or nothing of ours.
    Recorded(Recorded),
}

impl Backend {
    /// The components that run, in the order that [`Backend::change`]'s
    /// indexes follow.
    pub(crate) fn present(&self) -> Vec<Present> {
        match self {
            Backend::Libxdp(d) => d.present(),
            Backend::Recorded(r) => r.present(),
        }
    }

    /// Keeps the components at `keep`, adds `new` after them (counted as
    /// `counting` says, in libxdp's layout) and swaps the chain in, or
    /// detaches it when none is left.
    pub(crate) fn change(
        self,
        store: &Store,
        iface: &Interface,
        keep: &[usize],
        new: Vec<(Component, Stamp)>,
        counting: Counting,
    ) -> Result<()> {
        match self {
            Backend::Libxdp(d) => d.change(store, iface, keep, new, counting),
            Backend::Recorded(r) => r.change(store, iface, keep, new, None),
        }
    }
}

impl Store {
    /// The directory `$XDPCHAIN_PIN_DIR`, else `xdpchain` in the shared bpffs.
    pub fn new() -> Store {
        let dir = std::env::var_os(PIN_DIR_ENV).map_or_else(
            || Path::new(crate::ns::bpffs()).join("xdpchain"),
            PathBuf::from,
        );
        Store::at(dir)
    }

    /// Chains recorded under `dir`, which must be on bpffs.
    pub fn at(dir: impl Into<PathBuf>) -> Store {
        Store {
            dir: dir.into(),
            mode: None,
            layout: None,
        }
    }

    /// How the chains this store creates join their components; a chain
    /// keeps the way it was created with, and adding to one of another
    /// kind through this store is refused.
    pub fn with_mode(mut self, mode: Mode) -> Store {
        self.mode = Some(mode);
        self
    }

    /// Whose layout the chains this store creates take.
    pub fn with_layout(mut self, layout: Layout) -> Store {
        self.layout = Some(layout);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Replaces whatever chain runs on `iface` with `components`; the
    /// components of other owners there only with `opts.force`.
    pub fn attach(
        &self,
        iface: &str,
        components: Vec<Component>,
        opts: AttachOptions,
        counting: Counting,
    ) -> Result<Report> {
        let iface = Interface::resolve(iface)?;
        let actor = Actor::process(opts.force);
        self.changing(&iface, &actor, || {
            self.replace_all(&iface, components, opts, counting, &actor)
                .map(|_| None)
        })
    }

    /// Adds a component to the chain on `iface`, creating the chain (with
    /// `opts`) if there is none.
    pub fn add(&self, iface: &str, component: Component, opts: AttachOptions) -> Result<Report> {
        let iface = Interface::resolve(iface)?;
        let actor = Actor::process(opts.force);
        self.changing(&iface, &actor, || {
            self.add_to(&iface, component, opts, Counting::Auto, &actor)
                .map(|_| None)
        })
    }

    /// Removes the component `key` from the chain on `iface`, if this
    /// process's program added it; the chain goes with its last component.
    pub fn remove(&self, iface: &str, key: impl Into<ComponentKey>) -> Result<Report> {
        let iface = Interface::resolve(iface)?;
        let actor = Actor::process(false);
        let key = key.into();
        self.changing(&iface, &actor, || {
            self.remove_from(&iface, Which::Key(&key), &actor)
                .map(|_| None)
        })
    }

    /// Puts `component` in the place of component `key` atomically, as
    /// [`crate::Chain::replace`] does.
    pub fn replace(
        &self,
        iface: &str,
        key: impl Into<ComponentKey>,
        component: Component,
    ) -> Result<Report> {
        let iface = Interface::resolve(iface)?;
        let actor = Actor::process(false);
        self.changing(&iface, &actor, || {
            self.replace_in(&iface, &key.into(), component, &actor)
                .map(Some)
        })
    }

    /// [`Store::replace`] under its old name, `key` as a person types it
    /// (digits are an id).
    #[deprecated(
        since = "0.1.0",
        note = "the verb is replace, as in Chain and SharedChain"
    )]
    pub fn replace_slot(&self, iface: &str, key: &str, component: Component) -> Result<Report> {
        let Ok(key) = key.parse::<ComponentKey>();
        self.replace(iface, key, component)
    }

    /// Detaches the chain on `iface` and unpins all it had; with `force`,
    /// also the components of other owners, or another loader's program.
    pub fn detach(&self, iface: &str, force: bool) -> Result<Report> {
        let iface = Interface::resolve(iface)?;
        let actor = Actor::process(force);
        self.changing(&iface, &actor, || {
            self.detach_all(&iface, &actor).map(|_| None)
        })
    }

    /// Runs `op`, a change of `iface` by `actor`, under the store's lock,
    /// and reports what it changed there. `op` returns the id it put a new
    /// program in, if it replaced one.
    pub(crate) fn changing(
        &self,
        iface: &Interface,
        actor: &Actor,
        op: impl FnOnce() -> Result<Option<u32>>,
    ) -> Result<Report> {
        let _lock = pins::lock(&self.dir)?;
        let (before, was_static_because) = self.programs(iface)?;
        let replaced = op();
        // A change that failed, or found nothing to change, leaves no
        // directory behind.
        pins::remove_if_empty(&self.iface_dir(iface)?);
        let replaced = replaced?;
        let (after, static_because) = self.programs(iface)?;
        let mut report = Report::between(&iface.name, &actor.stamp.owner, before, &after, replaced);
        if was_static_because.is_none() {
            report.not_dynamic = static_because;
        }
        Ok(report)
    }

    /// What runs on `iface`: the components of a chain, or another
    /// loader's program; and why the chain is not dynamic, if it says.
    fn programs(
        &self,
        iface: &Interface,
    ) -> Result<(Vec<report::ReportedProgram>, Option<String>)> {
        match self.status_at(iface) {
            Ok(st) => Ok((
                st.components
                    .into_iter()
                    .map(|c| report::ReportedProgram {
                        id: Some(c.id),
                        name: c.name,
                        owner: c.owner,
                        program_id: c.program_id,
                    })
                    .collect(),
                st.not_dynamic,
            )),
            Err(Error::NoChain(_)) => Ok((
                inspect::foreign(iface)?
                    .into_iter()
                    .map(|f| report::ReportedProgram {
                        id: None,
                        name: f.name,
                        owner: None,
                        program_id: Some(f.program_id),
                    })
                    .collect(),
                None,
            )),
            Err(e) => Err(e),
        }
    }

    /// What runs on `iface`, observed under the store's lock; what is not a
    /// libxdp dispatcher is taken as replaceable with `force`.
    pub(crate) fn backend(&self, iface: &Interface, force: bool) -> Result<Backend> {
        self.backend_of(iface, attach::observe(iface)?, force)
    }

    /// [`Store::backend`] of `seen`, what runs on `iface`.
    pub(crate) fn backend_of(
        &self,
        iface: &Interface,
        seen: Option<Seen>,
        force: bool,
    ) -> Result<Backend> {
        if let Some(d) = Dispatcher::of(self, iface, seen.as_ref())? {
            return Ok(Backend::Libxdp(d));
        }
        Ok(Backend::Recorded(self.recorded(iface, seen, force)?))
    }

    /// Replaces the chain on `iface` with `components`, added by `actor`,
    /// under the store's lock.
    pub(crate) fn replace_all(
        &self,
        iface: &Interface,
        components: Vec<Component>,
        opts: AttachOptions,
        counting: Counting,
        actor: &Actor,
    ) -> Result<()> {
        let stamped = components
            .into_iter()
            .map(|c| (c, actor.stamp.clone()))
            .collect();
        self.replace_seen(
            iface,
            attach::observe(iface)?,
            stamped,
            opts,
            counting,
            actor,
        )
    }

    /// [`Store::replace_all`] with `seen` running on `iface`, and each
    /// component with its own stamp.
    pub(crate) fn replace_seen(
        &self,
        iface: &Interface,
        seen: Option<Seen>,
        components: Vec<(Component, Stamp)>,
        opts: AttachOptions,
        counting: Counting,
        actor: &Actor,
    ) -> Result<()> {
        let backend = self.backend_of(iface, seen, opts.force)?;
        self.replace_with(iface, backend, components, opts, counting, actor)
    }

    /// [`Store::replace_seen`] of what `backend` found.
    pub(crate) fn replace_with(
        &self,
        iface: &Interface,
        backend: Backend,
        components: Vec<(Component, Stamp)>,
        opts: AttachOptions,
        counting: Counting,
        actor: &Actor,
    ) -> Result<()> {
        let present = backend.present();
        actor.may_change(&iface.name, present.iter().map(Present::owned))?;
        if let Backend::Recorded(r) = &backend {
            r.refuse_unrecorded(self, iface, actor)?;
        }
        let d = match backend {
            Backend::Recorded(r) => return self.create(iface, r, opts, counting, components),
            Backend::Libxdp(d) => d,
        };
        let members = members_of(&components)?;
        // Replacing a libxdp dispatcher keeps its version unless told otherwise.
        let version = match self.new_layout()? {
            Layout::Auto => Some(d.version()),
            _ => self.libxdp_version(self.kind_for(&members)?, counting, members.len())?,
        };
        let Some(version) = version else {
            return Err(Error::LibxdpDispatcher {
                iface: iface.name.clone(),
                prog_id: d.id(),
            });
        };
        let new = New {
            version,
            mode: opts.mode,
            device_bound: opts.device_bound,
            components,
            counting,
        };
        d.replace_all(self, iface, new)
    }

    /// Makes a new chain of `components` (stamped) on `iface`,
    /// where `r` found none of ours, in the layout and kind it takes. Where
    /// the mode asked for is auto, a component of a dynamic chain that the
    /// kernel refuses as an extension program (5.10 refuses global
    /// functions that take the context there, for one) makes the chain
    /// static, with the reason recorded, if the kernel takes it so; else
    /// the refusal stands.
    fn create(
        &self,
        iface: &Interface,
        r: Recorded,
        opts: AttachOptions,
        counting: Counting,
        components: Vec<(Component, Stamp)>,
    ) -> Result<()> {
        let members = members_of(&components)?;
        let make = |r: Recorded, kind: Mode, not_dynamic: Option<String>| {
            let components = components.clone();
            match self.libxdp_version(kind, counting, members.len())? {
                Some(version) => New {
                    version,
                    mode: opts.mode,
                    device_bound: opts.device_bound,
                    components,
                    counting,
                }
                .create(self, iface, &r.dir, r.current.as_ref()),
                None => {
                    let fresh = Fresh {
                        mode: opts.mode,
                        counting,
                        kind,
                        not_dynamic,
                        device_bound: opts.device_bound,
                    };
                    r.change(self, iface, &[], components, Some(fresh))
                }
            }
        };
        let kind = self.kind_for(&members)?;
        let auto = kind == Mode::Dynamic && self.new_mode()? == Mode::Auto;
        match make(r, kind, None) {
            Err(refused) if auto => {
                let Some(why) = features::not_dynamic(&refused) else {
                    return Err(refused);
                };
                log::info!("{}: a static chain: {why}", iface.name);
                // Nothing changed: what runs is what ran.
                let r = self.recorded(iface, attach::observe(iface)?, opts.force)?;
                make(r, Mode::Static, Some(why)).map_err(|_| refused)
            }
            other => other,
        }
    }

    /// Adds `component` for `actor` to the chain on `iface`, creating the
    /// chain (with `opts` and `counting`) if there is none, under the
    /// store's lock.
    pub(crate) fn add_to(
        &self,
        iface: &Interface,
        component: Component,
        opts: AttachOptions,
        counting: Counting,
        actor: &Actor,
    ) -> Result<()> {
        let backend = self.backend(iface, opts.force)?;
        let new = vec![(component, actor.stamp.clone())];
        let running = match &backend {
            Backend::Libxdp(d) => Some(RunningChain {
                mode: d.mode(),
                kind: Mode::Dynamic,
                counts: None,
                device_bound: d.device_bound(),
            }),
            Backend::Recorded(r) => r.running(),
        };
        if let Some(running) = running {
            self.refuse_ignored(iface, running, opts, counting)?;
            let all: Vec<usize> = (0..backend.present().len()).collect();
            return backend.change(self, iface, &all, new, counting);
        }
        // Nothing of ours runs: a new chain, in the layout it takes.
        let Backend::Recorded(r) = backend else {
            unreachable!("a libxdp dispatcher runs a chain")
        };
        r.refuse_unrecorded(self, iface, actor)?;
        self.create(iface, r, opts, counting, new)
    }

    /// Takes `which` components out of the chain on `iface`, under the
    /// store's lock; the chain goes with its last component.
    pub(crate) fn remove_from(&self, iface: &Interface, which: Which, actor: &Actor) -> Result<()> {
        let backend = self.backend(iface, false)?;
        if let Backend::Recorded(r) = &backend {
            match (r.required(self, iface), which) {
                (Err(Error::NoChain(_)), Which::Own(_)) => return Err(Error::NotAttached),
                (other, _) => drop(other?),
            }
        }
        let present = backend.present();
        let gone = change::select(&present, which)?;
        actor.may_change(&iface.name, gone.iter().map(|&i| present[i].owned()))?;
        let keep: Vec<usize> = (0..present.len()).filter(|i| !gone.contains(i)).collect();
        backend.change(self, iface, &keep, Vec::new(), Counting::Off)
    }

    /// Puts `component` in the place of component `key` for `actor`, under
    /// the store's lock; returns the id it now has.
    pub(crate) fn replace_in(
        &self,
        iface: &Interface,
        key: &ComponentKey,
        component: Component,
        actor: &Actor,
    ) -> Result<u32> {
        let backend = self.backend(iface, false)?;
        if let Backend::Recorded(r) = &backend {
            r.required(self, iface)?;
        }
        let present = backend.present();
        let at = change::select(&present, Which::Key(key))?[0];
        actor.may_change(&iface.name, [present[at].owned()])?;
        match backend {
            Backend::Libxdp(d) => d.replace(self, iface, at, component, actor),
            Backend::Recorded(r) => r.replace(self, iface, at, component, actor),
        }
    }

    /// Detaches the chain on `iface` whole, for `actor`, under the store's
    /// lock.
    pub(crate) fn detach_all(&self, iface: &Interface, actor: &Actor) -> Result<()> {
        let backend = self.backend(iface, actor.force)?;
        let present = backend.present();
        actor.may_change(&iface.name, present.iter().map(Present::owned))?;
        match backend {
            Backend::Libxdp(d) => d.detach(self, iface),
            Backend::Recorded(r) => {
                r.refuse_unrecorded(self, iface, actor)?;
                r.detach(self, iface)
            }
        }
    }

    /// The error for a chain of ours on `iface` of which no record says.
    fn no_state(&self, iface: &Interface) -> Error {
        Error::NoState {
            iface: iface.name.clone(),
            dir: self.dir.display().to_string(),
        }
    }

    /// Removes the records of chains that no longer run: in this network
    /// namespace, those whose interface was deleted or detached by another
    /// tool (every operation does this too); and those of namespaces that no
    /// longer exist. Returns the directories removed.
    pub fn clean(&self) -> Result<Vec<PathBuf>> {
        let _lock = pins::lock(&self.dir)?;
        pins::sweep(&self.dir, None, true)
    }

    /// The record directory of `iface`.
    pub(crate) fn iface_dir(&self, iface: &Interface) -> Result<PathBuf> {
        Ok(pins::netns_dir(&self.dir)?.join(iface.index.to_string()))
    }

    /// The interface's directory, created (0700) if missing, and its record
    /// once whatever a killed operation left is settled, by what `running`
    /// there. Sweeps the stale records of this namespace's other interfaces
    /// on the way.
    pub(crate) fn open_chain(
        &self,
        iface: &Interface,
        running: Running,
    ) -> Result<(PathBuf, Option<Record>)> {
        let dir = self.iface_dir(iface)?;
        pins::sweep(&self.dir, Some(&dir), false)?;
        mkdirs(&dir)?;
        let record = pins::recover(&dir, iface, running)?;
        Ok((dir, record))
    }
}

/// The members `components` make as a new chain, tagged from 0.
fn members_of(components: &[(Component, Stamp)]) -> Result<Vec<Member>> {
    let mut members = Vec::new();
    for (tag, (c, _)) in (0..).zip(components) {
        members = plan::with_added(&members, c.clone(), tag)?.0;
    }
    Ok(members)
}
