//! The store: the chains of interfaces, shared by every process through
//! their pinned state (pins.rs) or libxdp's (libxdp.rs), and the operations
//! on them. Each runs under the store's lock: it observes the interface,
//! settles what a killed operation left, plans the new chain, builds it,
//! swaps it in and records it.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::attach::{self, AttachOptions, Interface, Seen};
use crate::component::Component;
use crate::error::{Error, Result};
use crate::features;
use crate::inspect;
use crate::libxdp::{self, Planned};
use crate::loaded::{load_dynamic, load_static};
use crate::owner::{Actor, Stamp};
use crate::pins::{
    self, frozen_map, mkdirs, pinned_progs, read_libxdp_owners, read_record, remove_tree,
    reuse_from_pins, write_libxdp_owners, Running, CHUNK, LINK_PREFIX, OBJECT, PROG, STATE,
    STATE_NEW, STATS,
};
use crate::plan::{self, Build, ComponentId, Counting, Member, Mode};
use crate::record::{Entry, Record, Settings};
use crate::status::ChainStatus;
use crate::sys::{obj_get, pin};

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

/// Whose layout a new chain takes (`$XDPCHAIN_LAYOUT` changes the default).
/// Whatever the choice, a store joins the libxdp dispatcher it finds on an
/// interface, at that dispatcher's version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// libxdp's for a dynamic chain of at most ten components, so that
    /// xdp-loader and every libxdp user can join it, unless counters are
    /// asked for ([`crate::Counting::On`]), which libxdp's dispatcher has no
    /// room for; ours otherwise.
    #[default]
    Auto,
    /// Ours: counters, up to [`crate::MAX_COMPONENTS`] components, static
    /// or dynamic; libxdp users see a program that is not theirs.
    Xdpchain,
    /// libxdp's multiprog protocol at this version (2 or 3; None: that of
    /// the libxdp installed here, else 3): shared with xdp-loader and every
    /// libxdp user, dynamic, at most ten components, no counters.
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

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

/// Which components an operation takes out.
#[derive(Clone, Copy)]
pub(crate) enum Which<'a> {
    /// By id (as digits; a program id in libxdp's layout) or program name.
    Key(&'a str),
    /// Those the acting handle added.
    Own,
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
    /// keeps the way it was created with.
    pub fn with_mode(mut self, mode: Mode) -> Store {
        self.mode = Some(mode);
        self
    }

    /// Whose layout the chains this store creates take.
    pub fn with_layout(mut self, layout: Layout) -> Store {
        self.layout = Some(layout);
        self
    }

    /// The mode asked for new chains.
    pub(crate) fn new_mode(&self) -> Result<Mode> {
        self.mode.map_or_else(Mode::from_env, Ok)
    }

    fn new_layout(&self) -> Result<Layout> {
        self.layout.map_or_else(Layout::from_env, Ok)
    }

    /// Static or Dynamic, for a new chain of `members`.
    fn kind_for(&self, members: &[Member]) -> Result<Mode> {
        features::resolve(self.new_mode()?, members)
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
    ) -> Result<()> {
        let iface = Interface::resolve(iface)?;
        self.replace_all(
            &iface,
            components,
            opts,
            counting,
            &Actor::process(opts.force),
        )
        .map(drop)
    }

    /// Adds a component to the chain on `iface`, creating the chain (with
    /// `opts`) if there is none.
    pub fn add(
        &self,
        iface: &str,
        component: Component,
        opts: AttachOptions,
    ) -> Result<ComponentId> {
        let iface = Interface::resolve(iface)?;
        self.add_to(
            &iface,
            component,
            opts,
            Counting::Auto,
            &Actor::process(opts.force),
        )
    }

    /// Removes the component `key` (its id, or its program name) from the
    /// chain on `iface`, if this process's program added it; the chain goes
    /// with its last component.
    pub fn remove(&self, iface: &str, key: &str) -> Result<()> {
        let iface = Interface::resolve(iface)?;
        self.remove_from(&iface, Which::Key(key), &Actor::process(false))
            .map(drop)
    }

    /// Puts `component` in the place of component `key` (its id, or its
    /// program name) atomically, as [`crate::Chain::replace_slot`] does.
    pub fn replace_slot(&self, iface: &str, key: &str, component: Component) -> Result<()> {
        let iface = Interface::resolve(iface)?;
        self.replace_in(&iface, key, component, &Actor::process(false))
    }

    /// Detaches the chain on `iface` and unpins all it had; with `force`,
    /// also the components of other owners, or another loader's program.
    pub fn detach(&self, iface: &str, force: bool) -> Result<()> {
        let iface = Interface::resolve(iface)?;
        self.detach_all(&iface, &Actor::process(force))
    }

    /// What runs on `iface`: components in order, with their counters and
    /// owners.
    pub fn status(&self, iface: &str) -> Result<ChainStatus> {
        let iface = Interface::resolve(iface)?;
        let mut st = inspect::status(&iface)?;
        let stamps = self.stamps(&iface, &st)?;
        for c in st.components.iter_mut() {
            c.owner = stamps.get(&c.id).map(|s| s.owner.clone());
        }
        Ok(st)
    }

    /// The chains of this network namespace.
    pub fn list(&self) -> Result<Vec<ChainStatus>> {
        let mut out = Vec::new();
        for index in inspect::interfaces()? {
            match self.status(&index.to_string()) {
                Ok(st) => out.push(st),
                Err(Error::NoChain(_)) | Err(Error::UnknownInterface(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The owners of the components of `st`, the chain on `iface`, by the
    /// ids status shows. Read without the lock: the record is replaced
    /// whole, and names the program it describes.
    pub(crate) fn stamps(
        &self,
        iface: &Interface,
        st: &ChainStatus,
    ) -> Result<HashMap<u32, Stamp>> {
        let dir = pins::netns_dir(&self.dir)?.join(iface.index.to_string());
        if st.libxdp_version.is_some() {
            return Ok(read_libxdp_owners(&dir));
        }
        Ok(read_record(&dir.join(STATE))
            .ok()
            .filter(|r| r.prog_id == st.program_id)
            .map(|r| r.entries.into_iter().map(|e| (e.id, e.stamp)).collect())
            .unwrap_or_default())
    }

    /// Replaces the chain on `iface` with `components`, added by `actor`.
    pub(crate) fn replace_all(
        &self,
        iface: &Interface,
        components: Vec<Component>,
        opts: AttachOptions,
        counting: Counting,
        actor: &Actor,
    ) -> Result<Vec<ComponentId>> {
        let _lock = pins::lock(&self.dir)?;
        let seen = attach::observe(iface)?;
        let stamped = components
            .into_iter()
            .map(|c| (c, actor.stamp.clone()))
            .collect();
        self.replace_seen(iface, seen, stamped, opts, counting, actor)
    }

    /// [`Store::replace_all`] under the store's lock, with `seen` running
    /// on `iface`, and each component with its own stamp.
    pub(crate) fn replace_seen(
        &self,
        iface: &Interface,
        seen: Option<Seen>,
        components: Vec<(Component, Stamp)>,
        opts: AttachOptions,
        counting: Counting,
        actor: &Actor,
    ) -> Result<Vec<ComponentId>> {
        let (dir, old) = self.open_chain(iface, Running::of(seen.as_ref()))?;
        let mut next_tag = old.as_ref().map_or(0, |r| r.settings.next_tag);
        let mut members = Vec::new();
        let mut stamps = HashMap::new();
        for (c, stamp) in components {
            members = plan::with_added(&members, c, next_tag)?.0;
            stamps.insert(next_tag, stamp);
            next_tag += 1;
        }
        let kind = self.kind_for(&members)?;
        let running = libxdp_running(iface, seen.as_ref())?;
        match (&old, &running) {
            (Some(r), _) => actor.may_change(
                &iface.name,
                r.entries.iter().map(|e| (e.describe(), Some(&e.stamp))),
            )?,
            (None, Some((_, r))) => {
                let owners = read_libxdp_owners(&dir);
                actor.may_change(
                    &iface.name,
                    r.programs.iter().map(|p| described(p, &owners)),
                )?
            }
            (None, None) => self.refuse_unrecorded(iface, seen.as_ref(), actor)?,
        }
        // Replacing a libxdp dispatcher keeps its version unless told otherwise.
        let version = match (&running, self.new_layout()?) {
            (Some((_, r)), Layout::Auto) => Some(r.config.version),
            _ => self.libxdp_version(kind, counting, members.len())?,
        };
        if let Some(version) = version {
            let (_lock, running) = match running {
                Some((lock, r)) => (lock, Some(r)),
                None => (libxdp::lock()?, None),
            };
            let current = match running {
                Some(_) => None,
                None => inspect::replaceable(iface, seen, opts.force)?,
            };
            let planned: Vec<_> = members.iter().map(|m| Planned::New(&m.component)).collect();
            let target = libxdp::Target {
                iface,
                mode: opts.mode,
                version,
                old: running.as_ref(),
                replacing: running
                    .as_ref()
                    .map(|r| r.fd.as_fd())
                    .or(current.as_ref().map(|c| c.fd.as_fd())),
                pin_root: crate::ns::bpffs(),
            };
            let ids = libxdp::commit(&target, &planned)?;
            // The record of a chain of ours that ran there goes.
            remove_tree(&dir)?;
            write_libxdp_owners(
                &dir,
                ids.iter()
                    .zip(&members)
                    .map(|(id, m)| (*id, stamps[&m.tag].clone()))
                    .collect(),
            )?;
            return Ok(ids.into_iter().map(ComponentId).collect());
        }
        let settings = Settings {
            mode: opts.mode,
            kind,
            counting: counting != Counting::Off,
            next_tag,
        };
        let current = inspect::replaceable(iface, seen, opts.force)?;
        self.commit(
            &dir,
            iface,
            old.as_ref(),
            &members,
            settings,
            current,
            &stamps,
        )?;
        Ok(members.iter().map(|m| m.id).collect())
    }

    /// The libxdp version a new chain takes, if it takes libxdp's layout.
    fn libxdp_version(&self, kind: Mode, counting: Counting, count: usize) -> Result<Option<u8>> {
        match self.new_layout()? {
            Layout::Xdpchain => Ok(None),
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
                if counting == Counting::On {
                    return Err(Error::InvalidArgument(
                        "libxdp's layout has no counters: its dispatcher has no room for our \
                         counters map; count with xdpchain's layout, or share with libxdp \
                         without counters"
                            .into(),
                    ));
                }
                Ok(Some(version.unwrap_or_else(libxdp::default_version)))
            }
        }
    }

    /// Adds `component` for `actor` to the chain on `iface`, creating the
    /// chain (with `opts` and `counting`) if there is none.
    pub(crate) fn add_to(
        &self,
        iface: &Interface,
        component: Component,
        opts: AttachOptions,
        counting: Counting,
        actor: &Actor,
    ) -> Result<ComponentId> {
        let _lock = pins::lock(&self.dir)?;
        let seen = attach::observe(iface)?;
        if let Some((_lock, r)) = libxdp_running(iface, seen.as_ref())? {
            let mut planned: Vec<_> = r.programs.iter().map(Planned::Loaded).collect();
            planned.push(Planned::New(&component));
            let ids = libxdp::commit(&r.target(iface), &planned)?;
            let id = ids[ids.len() - 1];
            self.update_libxdp_owners(iface, &ids, Some((id, actor)))?;
            return Ok(ComponentId(id));
        }
        let (dir, old) = self.open_chain(iface, Running::of(seen.as_ref()))?;
        if old.is_none() {
            self.refuse_unrecorded(iface, seen.as_ref(), actor)?;
        }
        let current = inspect::replaceable(iface, seen, opts.force)?;
        if old.is_none() {
            let one = plan::with_added(&[], component.clone(), 0)?.0;
            if let Some(version) = self.libxdp_version(self.kind_for(&one)?, counting, 1)? {
                let _lock = libxdp::lock()?;
                let target = libxdp::Target {
                    iface,
                    mode: opts.mode,
                    version,
                    old: None,
                    replacing: current.as_ref().map(|c| c.fd.as_fd()),
                    pin_root: crate::ns::bpffs(),
                };
                let ids = libxdp::commit(&target, &[Planned::New(&component)])?;
                self.update_libxdp_owners(iface, &ids, Some((ids[0], actor)))?;
                return Ok(ComponentId(ids[0]));
            }
        }
        let (members, settings) = match &old {
            Some(r) => (pins::members(&dir, r)?, Some(r.settings)),
            None => (Vec::new(), None),
        };
        let next_tag = settings.map_or(0, |s| s.next_tag);
        let (members, id) = plan::with_added(&members, component, next_tag)?;
        let settings = Settings {
            next_tag: next_tag + 1,
            ..match settings {
                Some(s) => s,
                None => Settings {
                    mode: opts.mode,
                    kind: self.kind_for(&members)?,
                    counting: counting != Counting::Off,
                    next_tag,
                },
            }
        };
        let mut stamps = stamps_by_tag(old.as_ref());
        stamps.insert(next_tag, actor.stamp.clone());
        self.commit(
            &dir,
            iface,
            old.as_ref(),
            &members,
            settings,
            current,
            &stamps,
        )?;
        Ok(id)
    }

    /// Takes `which` components out of the chain on `iface`; the chain goes
    /// with its last component. Returns how many went.
    pub(crate) fn remove_from(
        &self,
        iface: &Interface,
        which: Which,
        actor: &Actor,
    ) -> Result<usize> {
        let _lock = pins::lock(&self.dir)?;
        let seen = attach::observe(iface)?;
        if let Some((_lock, r)) = libxdp_running(iface, seen.as_ref())? {
            let owners = self.libxdp_owners(iface)?;
            let gone: Vec<usize> = match which {
                Which::Key(key) => vec![r.find(key)?],
                Which::Own => (0..r.programs.len())
                    .filter(|&i| {
                        owners
                            .get(&r.programs[i].id)
                            .is_some_and(|s| s.token == actor.stamp.token)
                    })
                    .collect(),
            };
            if gone.is_empty() {
                return Err(Error::NotAttached);
            }
            actor.may_change(
                &iface.name,
                gone.iter().map(|&i| {
                    let p = &r.programs[i];
                    described(p, &owners)
                }),
            )?;
            if gone.len() == r.programs.len() {
                libxdp::detach(iface, &r)?;
                return Ok(gone.len());
            }
            let planned: Vec<_> = (0..r.programs.len())
                .filter(|i| !gone.contains(i))
                .map(|i| Planned::Loaded(&r.programs[i]))
                .collect();
            let ids = libxdp::commit(&r.target(iface), &planned)?;
            self.update_libxdp_owners(iface, &ids, None)?;
            return Ok(gone.len());
        }
        let (dir, old, members, current) = match self.open_recorded(iface, seen) {
            Err(Error::NoChain(_)) if matches!(which, Which::Own) => {
                return Err(Error::NotAttached)
            }
            other => other?,
        };
        let gone: Vec<&Entry> = match which {
            Which::Key(key) => {
                let id = plan::find_member(&members, key)?;
                old.entries.iter().filter(|e| e.id == id.0).collect()
            }
            Which::Own => old
                .entries
                .iter()
                .filter(|e| e.stamp.token == actor.stamp.token)
                .collect(),
        };
        if gone.is_empty() {
            return Err(Error::NotAttached);
        }
        actor.may_change(
            &iface.name,
            gone.iter().map(|e| (e.describe(), Some(&e.stamp))),
        )?;
        let gone_tags: HashSet<u64> = gone.iter().map(|e| e.tag).collect();
        let members: Vec<Member> = members
            .into_iter()
            .filter(|m| !gone_tags.contains(&m.tag))
            .collect();
        let stamps = stamps_by_tag(Some(&old));
        self.commit_or_detach(&dir, iface, &old, &members, old.settings, current, &stamps)?;
        Ok(gone_tags.len())
    }

    /// Puts `component` in the place of component `key` for `actor`.
    pub(crate) fn replace_in(
        &self,
        iface: &Interface,
        key: &str,
        component: Component,
        actor: &Actor,
    ) -> Result<()> {
        let _lock = pins::lock(&self.dir)?;
        let seen = attach::observe(iface)?;
        if let Some((_lock, r)) = libxdp_running(iface, seen.as_ref())? {
            let owners = self.libxdp_owners(iface)?;
            let at = r.find(key)?;
            let p = &r.programs[at];
            actor.may_change(&iface.name, [described(p, &owners)])?;
            let component = component.with_priority(p.priority());
            let planned: Vec<_> = r
                .programs
                .iter()
                .enumerate()
                .map(|(i, p)| match i == at {
                    true => Planned::New(&component),
                    false => Planned::Loaded(p),
                })
                .collect();
            let ids = libxdp::commit(&r.target(iface), &planned)?;
            return self.update_libxdp_owners(iface, &ids, Some((ids[at], actor)));
        }
        let (dir, old, members, current) = self.open_recorded(iface, seen)?;
        let mut settings = old.settings;
        let id = plan::find_member(&members, key)?;
        let entry = old
            .entries
            .iter()
            .find(|e| e.id == id.0)
            .expect("a recorded member");
        actor.may_change(&iface.name, [(entry.describe(), Some(&entry.stamp))])?;
        let (members, _) = plan::with_replaced(&members, id, component, settings.next_tag)?;
        let mut stamps = stamps_by_tag(Some(&old));
        stamps.insert(settings.next_tag, actor.stamp.clone());
        settings.next_tag += 1;
        self.commit(
            &dir,
            iface,
            Some(&old),
            &members,
            settings,
            current,
            &stamps,
        )
    }

    /// Detaches the chain on `iface` whole, for `actor`.
    pub(crate) fn detach_all(&self, iface: &Interface, actor: &Actor) -> Result<()> {
        let _lock = pins::lock(&self.dir)?;
        let seen = attach::observe(iface)?;
        if let Some((_lock, r)) = libxdp_running(iface, seen.as_ref())? {
            let owners = self.libxdp_owners(iface)?;
            actor.may_change(
                &iface.name,
                r.programs.iter().map(|p| described(p, &owners)),
            )?;
            libxdp::detach(iface, &r)?;
            let dir = pins::netns_dir(&self.dir)?.join(iface.index.to_string());
            return self.detach_locked(&dir, iface, None);
        }
        let (dir, old) = self.open_chain(iface, Running::of(seen.as_ref()))?;
        match &old {
            Some(r) => actor.may_change(
                &iface.name,
                r.entries.iter().map(|e| (e.describe(), Some(&e.stamp))),
            )?,
            None => self.refuse_unrecorded(iface, seen.as_ref(), actor)?,
        }
        let current = inspect::replaceable(iface, seen, actor.force)?;
        if current.is_none() {
            return Err(Error::NoChain(iface.name.clone()));
        }
        self.detach_locked(&dir, iface, current)
    }

    /// Removes the records of chains that no longer run: in this network
    /// namespace, those whose interface was deleted or detached by another
    /// tool (every operation does this too); and those of namespaces that no
    /// longer exist. Returns the directories removed.
    pub fn clean(&self) -> Result<Vec<PathBuf>> {
        let _lock = pins::lock(&self.dir)?;
        pins::sweep(&self.dir, None, true)
    }

    /// The recorded chain on `iface`, its members and what runs there.
    fn open_recorded(
        &self,
        iface: &Interface,
        seen: Option<Seen>,
    ) -> Result<(PathBuf, Record, Vec<Member>, Option<Seen>)> {
        let (dir, old) = self.open_chain(iface, Running::of(seen.as_ref()))?;
        let current = inspect::replaceable(iface, seen, false)?;
        let Some(old) = old else {
            if current.is_some() {
                return Err(Error::NoState {
                    iface: iface.name.clone(),
                    dir: self.dir.display().to_string(),
                });
            }
            return Err(Error::NoChain(iface.name.clone()));
        };
        let members = pins::members(&dir, &old)?;
        Ok((dir, old, members, current))
    }

    pub(crate) fn detach_locked(
        &self,
        dir: &Path,
        iface: &Interface,
        current: Option<Seen>,
    ) -> Result<()> {
        if let Some(c) = current {
            attach::replace(iface, c.mode, None, Some(c.fd.as_fd()))?;
        }
        remove_tree(dir)?;
        // The namespace's directory goes with its last chain.
        if let Some(ns) = dir.parent() {
            let _ = std::fs::remove_dir(ns);
        }
        Ok(())
    }

    /// A chain of ours without a record cannot be rebuilt (its objects are
    /// gone with the process that built it), and its components are not
    /// `actor`'s: only force replaces it.
    fn refuse_unrecorded(
        &self,
        iface: &Interface,
        seen: Option<&Seen>,
        actor: &Actor,
    ) -> Result<()> {
        let Some(seen) = seen else {
            return Ok(());
        };
        if inspect::config_of(seen.fd.as_fd())?.is_none() || actor.force {
            return Ok(());
        }
        Err(Error::NoState {
            iface: iface.name.clone(),
            dir: self.dir.display().to_string(),
        })
    }

    /// The map `name` (by its name in the component's object) of component
    /// `id` of the recorded chain on `iface`, from its pin.
    pub(crate) fn pinned_map(&self, iface: &Interface, id: u32, name: &str) -> Result<OwnedFd> {
        let st = inspect::status(iface)?;
        if st.libxdp_version.is_some() {
            return Err(Error::Unsupported(
                "the maps of programs in libxdp's layout are not pinned by libxdpchain".into(),
            ));
        }
        let dir = pins::netns_dir(&self.dir)?.join(iface.index.to_string());
        let record = read_record(&dir.join(STATE))
            .ok()
            .filter(|r| r.prog_id == st.program_id)
            .ok_or_else(|| Error::NoState {
                iface: iface.name.clone(),
                dir: self.dir.display().to_string(),
            })?;
        let e = record
            .entries
            .iter()
            .find(|e| e.id == id)
            .ok_or_else(|| Error::UnknownComponent(id.to_string()))?;
        let unknown = || Error::UnknownMap {
            component: e.program.clone(),
            map: name.to_string(),
        };
        // Only names a map can have: no path, none of our own pins.
        if name.is_empty()
            || name.contains('/')
            || [OBJECT, PROG].contains(&name)
            || name.starts_with(LINK_PREFIX)
        {
            return Err(unknown());
        }
        obj_get(&dir.join(format!("c{}", e.tag)).join(name.replace('.', "%")))
            .map_err(|_| unknown())
    }

    /// The owners recorded for the programs of the libxdp dispatcher on
    /// `iface`, by program id.
    pub(crate) fn libxdp_owners(&self, iface: &Interface) -> Result<HashMap<u32, Stamp>> {
        Ok(read_libxdp_owners(
            &pins::netns_dir(&self.dir)?.join(iface.index.to_string()),
        ))
    }

    /// Records the owners of a libxdp dispatcher that now runs programs
    /// `ids`: those known stay, and `new` is added.
    fn update_libxdp_owners(
        &self,
        iface: &Interface,
        ids: &[u32],
        new: Option<(u32, &Actor)>,
    ) -> Result<()> {
        let (dir, _) = self.open_chain(iface, Running::Libxdp)?;
        let mut owners = read_libxdp_owners(&dir);
        owners.retain(|id, _| ids.contains(id));
        if let Some((id, actor)) = new {
            owners.insert(id, actor.stamp.clone());
        }
        write_libxdp_owners(&dir, owners)
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
        let dir = pins::netns_dir(&self.dir)?.join(iface.index.to_string());
        pins::sweep(&self.dir, Some(&dir), false)?;
        mkdirs(&dir)?;
        let record = pins::recover(&dir, iface, running)?;
        Ok((dir, record))
    }

    /// What is left of the recorded chain `old`: `members` committed as
    /// [`Store::commit`] does, or, when none is left, the chain detached.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn commit_or_detach(
        &self,
        dir: &Path,
        iface: &Interface,
        old: &Record,
        members: &[Member],
        settings: Settings,
        current: Option<Seen>,
        stamps: &HashMap<u64, Stamp>,
    ) -> Result<()> {
        if members.is_empty() {
            return self.detach_locked(dir, iface, current);
        }
        self.commit(dir, iface, Some(old), members, settings, current, stamps)
    }

    /// Loads `members`, pins what is new, swaps the chain in for `current`
    /// and settles the record. On error, what this call pinned is unpinned
    /// and the interface keeps what it ran. `stamps` says who added each
    /// member, by tag.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn commit(
        &self,
        dir: &Path,
        iface: &Interface,
        old: Option<&Record>,
        members: &[Member],
        settings: Settings,
        current: Option<Seen>,
        stamps: &HashMap<u64, Stamp>,
    ) -> Result<()> {
        let old_tags: HashSet<u64> =
            old.map_or_else(HashSet::new, |r| r.entries.iter().map(|e| e.tag).collect());
        let reuse = reuse_from_pins(dir, members, &old_tags, settings.kind)?;
        let build = Build::new(settings.counting);
        let progs = pinned_progs(dir, &old_tags, settings.kind)?;
        log::debug!(
            "{}: loading a {} chain of {} components ({} new)",
            iface.name,
            settings.kind.name(),
            members.len(),
            members
                .iter()
                .filter(|m| !old_tags.contains(&m.tag))
                .count()
        );
        let (loaded, extensions) = match settings.kind {
            Mode::Dynamic => {
                let progs = progs.iter().map(|(tag, fd)| (*tag, fd.as_fd())).collect();
                load_dynamic(members, &build, &reuse, &progs)?
            }
            _ => (load_static(members, &build, &reuse)?, HashMap::new()),
        };
        let (_, prog_id, _) = crate::sys::prog_info(loaded.prog())?;
        let record = Record {
            prog_id,
            settings,
            entries: members
                .iter()
                .map(|m| Entry {
                    id: m.id.0,
                    tag: m.tag,
                    priority: m.component.priority(),
                    continue_on: m.component.continue_on(),
                    size: m.component.bytes.len(),
                    stamp: stamps
                        .get(&m.tag)
                        .cloned()
                        .expect("every member of a shared chain has an owner"),
                    program: m.component.program().to_string(),
                    source: m.component.source().to_string(),
                })
                .collect(),
        };
        let mut created = Vec::new();
        let res = (|| {
            for m in members.iter().filter(|m| !old_tags.contains(&m.tag)) {
                let cdir = dir.join(format!("c{}", m.tag));
                mkdirs(&cdir)?;
                created.push(cdir.clone());
                pin(
                    frozen_map("xdpc_object", &m.component.bytes, CHUNK)?.as_fd(),
                    &cdir.join(OBJECT),
                )?;
                for (name, fd) in loaded.maps_of(m) {
                    pin(fd, &cdir.join(name.replace('.', "%")))?;
                }
                if let Some(ext) = extensions.get(&m.tag) {
                    pin(ext.prog(), &cdir.join(PROG))?;
                    for (name, fd) in ext.maps() {
                        pin(fd, &cdir.join(name.replace('.', "%")))?;
                    }
                }
            }
            // Links keep the extensions in the new dispatcher once this
            // process is gone; recovery unpins those of other dispatchers.
            for (tag, link) in loaded.links() {
                let path = dir.join(format!("c{tag}/{LINK_PREFIX}{prog_id}"));
                pin(link, &path)?;
                created.push(path);
            }
            let stats = dir.join(STATS);
            if !stats.exists() {
                pin(loaded.stats(), &stats)?;
                created.push(stats);
            }
            let text = record.to_text();
            let new = dir.join(STATE_NEW);
            pin(
                frozen_map("xdpc_state", text.as_bytes(), text.len())?.as_fd(),
                &new,
            )?;
            created.push(new.clone());
            attach::replace(
                iface,
                settings.mode,
                Some(loaded.prog()),
                current.as_ref().map(|c| c.fd.as_fd()),
            )
            .map_err(|e| plan::name_frags(e, members))?;
            created.clear();
            std::fs::rename(&new, dir.join(STATE)).map_err(|e| Error::os("promote state", e))
        })();
        for path in created {
            // Best effort: the next operation's recovery removes what stays.
            let _ = remove_tree(&path);
        }
        res?;
        log::info!(
            "{}: chain prog id {prog_id} attached ({} mode): {}",
            iface.name,
            settings.mode.name(),
            plan::ordered(members)
                .iter()
                .map(|m| m.component.program())
                .collect::<Vec<_>>()
                .join(", ")
        );
        // What runs now is what this call attached.
        pins::recover(dir, iface, Running::Program(prog_id))?;
        Ok(())
    }
}

/// The libxdp dispatcher on `iface`, with libxdp's lock held, if `seen`
/// is one. Chains of ours never take libxdp's lock.
pub(crate) fn libxdp_running(
    iface: &Interface,
    seen: Option<&Seen>,
) -> Result<Option<(libxdp::Lock, libxdp::Running)>> {
    match seen {
        Some(s) if s.name == libxdp::PROG_NAME => libxdp::running(iface),
        _ => Ok(None),
    }
}

/// A libxdp program as ownership errors name it, with its recorded owner.
fn described<'a>(
    p: &libxdp::Program,
    owners: &'a HashMap<u32, Stamp>,
) -> (String, Option<&'a Stamp>) {
    (format!("{} (program {})", p.name, p.id), owners.get(&p.id))
}

/// Who added each member of the chain `record` describes, by tag.
pub(crate) fn stamps_by_tag(record: Option<&Record>) -> HashMap<u64, Stamp> {
    record.map_or_else(HashMap::new, |r| {
        r.entries.iter().map(|e| (e.tag, e.stamp.clone())).collect()
    })
}
