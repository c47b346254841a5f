//! A chain built and held by one process: components added to it are
//! linked or plugged in by either engine, reloaded with the maps of the
//! previous build reused, and swapped atomically onto the interface. For
//! the chain an interface shares between processes, see `pins` (`Store`);
//! this one also writes linked objects to files.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use crate::attach::{self, AttachMode, AttachOptions, Interface};
use crate::component::{Component, Verdict, Verdicts};
use crate::counters;
use crate::dynamic::{self, Extension};
use crate::error::{Error, Result};
use crate::features;
use crate::inspect;
use crate::linked::{self, Linked};
use crate::loaded::{load_dynamic, load_static, Body, Loaded};
use crate::plan::{
    self, find_member, ordered, spare_rows, with_added, with_replaced, without, Build, ComponentId,
    ComponentKey, Member, Mode, Reuse,
};
use crate::root::{self, MAX_COMPONENTS};
use crate::status::{ChainStatus, ComponentStatus, Counters};
use crate::sys::{dup, test_run};

/// Where libbpf pins maps that their object pins by name.
pub const DEFAULT_PIN_ROOT: &str = crate::ns::BPFFS;

/// A chain of XDP components. Building it needs no privileges; loading and
/// attaching do. Dropping a `Chain` leaves an attached chain running (as the
/// kernel keeps XDP programs attached by netlink): call [`Chain::detach`].
pub struct Chain {
    members: Vec<Member>,
    next_tag: u64,
    build: Build,
    /// None: `$XDPCHAIN_MODE`, else auto.
    mode: Option<Mode>,
    loaded: Option<Loaded>,
    /// Extension programs of a dynamic chain, by member tag.
    extensions: HashMap<u64, Extension>,
    /// Extension programs in slots of an open static chain, with their
    /// links, by member tag; until the next rebuild links them in.
    plugged: HashMap<u64, (Extension, OwnedFd)>,
    attachment: Option<(Interface, AttachMode)>,
    /// Why a chain in auto mode was built static: the kernel refused one of
    /// its components as an extension program.
    not_dynamic: Option<String>,
    /// The interface the loaded chain is bound to: some component reads RX
    /// metadata through kfuncs.
    bound: Option<Interface>,
}

impl Default for Chain {
    fn default() -> Self {
        Chain::new()
    }
}

impl Chain {
    pub fn new() -> Self {
        Chain {
            members: Vec::new(),
            next_tag: 0,
            build: Build::new(true, crate::ns::bpffs().into()),
            mode: None,
            loaded: None,
            extensions: HashMap::new(),
            plugged: HashMap::new(),
            attachment: None,
            not_dynamic: None,
            bound: None,
        }
    }

    /// How components are joined (by default [`Mode::Auto`], or
    /// `$XDPCHAIN_MODE`). Applies when the chain is first loaded.
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = Some(mode);
    }

    /// Static or Dynamic once loaded; before, the mode asked for.
    pub fn mode(&self) -> Mode {
        match &self.loaded {
            Some(Loaded {
                body: Body::Static(_),
                ..
            }) => Mode::Static,
            Some(Loaded {
                body: Body::Dynamic(_),
                ..
            }) => Mode::Dynamic,
            None => self.mode.unwrap_or_default(),
        }
    }

    /// Per-component counters (on by default). With counting off, the root
    /// program carries no counting code at all. Applies at the next build.
    pub fn set_counting(&mut self, on: bool) {
        self.build.counting = on;
    }

    /// Whether a sealed static chain runs a root generated for it, with its
    /// components' code copied in where that is safe (on by default;
    /// `$XDPCHAIN_INLINE=0` changes the default): the cost of chaining
    /// mostly goes. A chain whose generated root the kernel refuses runs
    /// its compiled root, as with this off. Applies at the next build.
    pub fn set_inlining(&mut self, on: bool) {
        self.build.inline = on;
    }

    /// For `make bench` only: a generated root without the code that times
    /// components and dumps packets on request, as roots were before it, to
    /// measure its cost.
    #[cfg(feature = "bench")]
    #[doc(hidden)]
    pub fn set_timing_code(&mut self, on: bool) {
        self.build.timing_code = on;
    }

    /// Makes static chains open (`Some(n)`): every component is linked as a
    /// global function, which [`Chain::replace_slot`] replaces in place with
    /// an extension program (freplace), atomically and without relinking,
    /// and `n` spare slots follow the components, which [`Chain::plug`]
    /// fills the same way. Open chains need BTF in every component, and
    /// verify each component on its own, as a global function. `None` (the
    /// default): sealed. Applies at the next build.
    pub fn set_spare_slots(&mut self, spare: Option<usize>) {
        self.build.spare = spare;
    }

    /// Where maps that their object pins by name are pinned (by default
    /// [`DEFAULT_PIN_ROOT`], as libbpf does). Applies at the next build.
    pub fn set_pin_root(&mut self, dir: impl Into<String>) {
        self.build.pin_root = dir.into();
    }

    /// Adds a component. If the chain is loaded, it is rebuilt at once (and
    /// swapped in if attached); on failure the component is not added.
    pub fn add(&mut self, component: Component) -> Result<ComponentId> {
        let (members, id) = with_added(&self.members, component, self.next_tag)?;
        self.commit(members)?;
        self.next_tag += 1;
        Ok(id)
    }

    /// Removes the component `key`; rebuilds as [`Chain::add`] does.
    pub fn remove(&mut self, key: impl Into<ComponentKey>) -> Result<Component> {
        let id = self.find(key)?;
        let (members, gone) = without(&self.members, id)?;
        self.commit(members)?;
        Ok(gone.component)
    }

    /// Puts `component` in the place of component `key`, atomically: every
    /// packet sees the old component or the new one. The new one takes the
    /// old one's id and priority, so its place in the run order (among
    /// components of equal priority, program names decide); its maps and
    /// counters start afresh. Returns the old component.
    ///
    /// In a loaded open static chain ([`Chain::set_spare_slots`]) where the
    /// kernel has freplace, a linked component is replaced in place by an
    /// extension program, if the new one has the same continue set (the
    /// chain's config is frozen); otherwise the chain is rebuilt.
    pub fn replace(
        &mut self,
        key: impl Into<ComponentKey>,
        component: Component,
    ) -> Result<Component> {
        let id = self.find(key)?;
        let (members, old) = with_replaced(&self.members, id, component, self.next_tag)?;
        let new = members.last().expect("with_replaced pushes the new one");
        match self.open_slot_of(&old)? {
            Some(slot) if new.component.continue_on() == old.component.continue_on() => {
                self.fill_slot(slot, new)?
            }
            _ => self.commit(members.clone())?,
        }
        self.members = members;
        self.next_tag += 1;
        Ok(old.component)
    }

    /// Fills the first free spare slot of the loaded open static chain with
    /// `component`, as an extension program (freplace): nothing is relinked
    /// or verified again, and every packet sees the slot empty or filled.
    /// Spare slots go on after XDP_PASS only, so the component must ask for
    /// that continue set. It runs after the linked components until a
    /// rebuild ([`Chain::add`], [`Chain::remove`]) links it in by priority.
    pub fn plug(&mut self, component: Component) -> Result<ComponentId> {
        let loaded = self.loaded.as_ref().ok_or(Error::NotLoaded)?;
        let Body::Static(Linked {
            spare: Some(spare), ..
        }) = &loaded.body
        else {
            return Err(Error::InvalidArgument(
                "plug fills a spare slot of an open static chain (set_spare_slots before loading)"
                    .into(),
            ));
        };
        let want = Verdicts::empty().with(Verdict::Pass);
        if component.continue_on() != want {
            return Err(Error::InvalidArgument(format!(
                "{}: spare slots go on after {want} only, not {}",
                component.program(),
                component.continue_on()
            )));
        }
        let linked = ordered(&loaded.members);
        let (k, row) = spare_rows(&linked, *spare)
            .into_iter()
            .enumerate()
            .find(|(_, row)| !self.members.iter().any(|m| m.row == *row))
            .ok_or_else(|| Error::TooManyComponents {
                count: linked.len() + spare + 1,
                max: linked.len() + spare,
            })?;
        let id = ComponentId(u32::try_from(self.next_tag).map_err(|_| {
            Error::Unsupported("this chain has given out all 2^32 component ids".into())
        })?);
        let member = Member {
            id,
            row,
            tag: self.next_tag,
            component,
        };
        self.fill_slot(linked.len() + k, &member)?;
        self.members.push(member);
        self.next_tag += 1;
        Ok(id)
    }

    /// The extension program that runs member `tag`, if one does.
    fn extension_of(&self, tag: u64) -> Option<BorrowedFd<'_>> {
        self.extensions
            .get(&tag)
            .or_else(|| self.plugged.get(&tag).map(|(e, _)| e))
            .map(Extension::prog)
    }

    /// The slot of `member` in the loaded chain, if it is an open static
    /// chain that runs it linked in (a slot holds one extension at most) on
    /// a kernel with freplace.
    fn open_slot_of(&self, member: &Member) -> Result<Option<usize>> {
        let Some(loaded) = &self.loaded else {
            return Ok(None);
        };
        Ok(match &loaded.body {
            Body::Static(Linked { spare: Some(_), .. })
                if !self.plugged.contains_key(&member.tag) && features::features()?.freplace =>
            {
                ordered(&loaded.members)
                    .iter()
                    .position(|m| m.tag == member.tag)
            }
            _ => None,
        })
    }

    /// Loads `member` as an extension of `slot` of the loaded static chain
    /// and attaches it there; its counters start afresh.
    fn fill_slot(&mut self, slot: usize, member: &Member) -> Result<()> {
        if !features::features()?.freplace {
            return Err(Error::Unsupported(
                "filling a slot of a linked chain needs freplace (BPF_PROG_TYPE_EXT), which this kernel refuses"
                    .into(),
            ));
        }
        let loaded = self.loaded.as_ref().expect("checked by the callers");
        let Body::Static(Linked { object, .. }) = &loaded.body else {
            unreachable!("checked by the callers");
        };
        let slot_fn = root::slot_function(slot);
        let ext = Extension::load(
            &member.component,
            loaded.prog(),
            &slot_fn,
            &self.build.pin_root,
        )?;
        counters::clear(loaded.stats(), member.row)?;
        let link = dynamic::attach(ext.prog(), object, root::PROG_NAME, &slot_fn)?;
        self.plugged.insert(member.tag, (ext, link));
        Ok(())
    }

    /// [`Chain::replace`] under its old name.
    #[deprecated(
        since = "0.1.0",
        note = "the verb is replace, as in SharedChain and Store"
    )]
    pub fn replace_slot(&mut self, id: ComponentId, component: Component) -> Result<Component> {
        self.replace(id, component)
    }

    /// The id of the component `key`.
    pub fn find(&self, key: impl Into<ComponentKey>) -> Result<ComponentId> {
        find_member(&self.members, &key.into())
    }

    /// The component at position `slot` of the run order.
    pub fn at_slot(&self, slot: usize) -> Result<ComponentId> {
        let order = ordered(&self.members);
        order.get(slot).map(|m| m.id).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "slot {slot} is out of range (the chain has {} components)",
                order.len()
            ))
        })
    }

    /// The components in run order.
    pub fn components(&self) -> Vec<(ComponentId, &Component)> {
        ordered(&self.members)
            .into_iter()
            .map(|m| (m.id, &m.component))
            .collect()
    }

    /// The linked chain as one ELF object, loadable by any libbpf-based
    /// loader (bpftool, iproute2): one XDP program, `xdpchain_root`, a root
    /// generated for the chain (its components copied in) unless the chain
    /// is open or inlining is off.
    pub fn link(&self) -> Result<Vec<u8>> {
        linked::link(&self.members, &self.build)
    }

    /// Writes [`Chain::link`]'s object to `path`.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = self.link()?;
        std::fs::write(path, bytes).map_err(|e| Error::os(format!("write {}", path.display()), e))
    }

    /// Loads the chain into the kernel (without attaching it).
    pub fn load(&mut self) -> Result<()> {
        let members = self.members.clone();
        self.commit_loaded(members, None, false)
    }

    /// Attaches the chain to `iface` (a name, or an index as digits). A
    /// chain already there (and every component in it, whoever added them)
    /// or a program of another loader is replaced atomically, only with
    /// `force`: to add to the chain of an interface, open it with
    /// [`crate::Store::open`] instead.
    pub fn attach(&mut self, iface: &str, opts: AttachOptions) -> Result<()> {
        if let Some((cur, _)) = &self.attachment {
            return Err(Error::InvalidArgument(format!(
                "chain already attached to {}",
                cur.name
            )));
        }
        let iface = Interface::resolve(iface)?;
        match &self.bound {
            _ if self.loaded.is_none() => {
                self.commit_loaded(self.members.clone(), Some(&iface), opts.device_bound)?
            }
            None if opts.device_bound => {
                return Err(Error::InvalidArgument(format!(
                    "the chain was loaded unbound: it cannot be bound to {} now; ask for binding at its first attach, which loads it",
                    iface.name
                )));
            }
            Some(bound) if *bound != iface => {
                let why = "a component reads RX metadata";
                return Err(Error::InvalidArgument(format!(
                    "the chain is bound to {} ({why}): it cannot move to {}",
                    bound.name, iface.name
                )));
            }
            _ => {}
        }
        let loaded = self.loaded.as_ref().expect("loaded above");
        let old = inspect::replaceable(&iface, attach::observe(&iface)?, opts.force)?;
        if let Some(c) = &old {
            if !opts.force && inspect::config_of(c.fd.as_fd())?.is_some() {
                return Err(Error::NotOwner {
                    iface: iface.name.clone(),
                    owner: "this chain".into(),
                    others: format!("the chain there (program {}) with all its components", c.id),
                });
            }
        }
        attach::replace(
            &iface,
            opts.mode,
            Some(loaded.prog()),
            old.as_ref().map(|c| c.fd.as_fd()),
        )
        .map_err(|e| plan::name_frags(e, &loaded.members))?;
        self.attachment = Some((iface, opts.mode));
        Ok(())
    }

    /// Removes the chain from its interface, if it still runs there.
    pub fn detach(&mut self) -> Result<()> {
        let (iface, mode) = self.attachment.clone().ok_or(Error::NotAttached)?;
        let loaded = self.loaded.as_ref().expect("an attached chain is loaded");
        attach::replace(&iface, mode, None, Some(loaded.prog()))?;
        self.attachment = None;
        Ok(())
    }

    /// The interface the chain is attached to.
    pub fn interface(&self) -> Option<&Interface> {
        self.attachment.as_ref().map(|(i, _)| i)
    }

    /// The loaded root program's fd.
    pub fn program_fd(&self) -> Option<BorrowedFd<'_>> {
        self.loaded.as_ref().map(Loaded::prog)
    }

    /// What the kernel runs: components in order, with their counters.
    pub fn status(&self) -> Result<ChainStatus> {
        let loaded = self.loaded.as_ref().ok_or(Error::NotLoaded)?;
        let mut st = inspect::status_of(loaded.prog())?.expect("our own root program");
        st.not_dynamic = self.not_dynamic.clone();
        st.device_bound = self.bound.is_some();
        // The frozen config names what was linked; extensions in its slots
        // are known here only.
        for c in st.components.iter_mut() {
            if let Some(m) = self.members.iter().find(|m| m.id.0 == c.id) {
                c.name = m.component.program().to_string();
                c.priority = m.component.priority();
                c.continue_on = m.component.continue_on();
                if let Some(fd) = self.extension_of(m.tag) {
                    c.program_id = Some(crate::sys::prog_info(fd)?.1);
                    c.function = Some(c.name.clone());
                }
            }
        }
        if let Body::Static(Linked {
            spare: Some(spare), ..
        }) = &loaded.body
        {
            let linked = ordered(&loaded.members);
            for (k, row) in spare_rows(&linked, *spare).into_iter().enumerate() {
                let Some(m) = self.members.iter().find(|m| m.row == row) else {
                    continue;
                };
                st.components.push(ComponentStatus {
                    id: m.id.0,
                    slot: linked.len() + k,
                    name: m.component.program().to_string(),
                    priority: m.component.priority(),
                    continue_on: m.component.continue_on(),
                    counters: match self.build.counting {
                        true => Some(counters::read(loaded.stats(), row)?),
                        false => None,
                    },
                    program_id: match self.extension_of(m.tag) {
                        Some(fd) => Some(crate::sys::prog_info(fd)?.1),
                        None => None,
                    },
                    owner: None,
                    inlined: None,
                    function: self
                        .extension_of(m.tag)
                        .map(|_| m.component.program().to_string()),
                });
            }
        }
        if let Some((iface, mode)) = &self.attachment {
            st.interface = Some(iface.clone());
            st.mode = Some(*mode);
        }
        Ok(st)
    }

    /// Counters of one component (zero with counting off).
    pub fn counters(&self, id: ComponentId) -> Result<Counters> {
        let st = self.status()?;
        let c = st
            .components
            .iter()
            .find(|c| c.id == id.0)
            .ok_or_else(|| Error::UnknownComponent(id.0.to_string()))?;
        Ok(c.counters.unwrap_or_default())
    }

    /// A component's map by the name it has in the component's own object:
    /// a map's name, or a data section (".data", ".bss", ".rodata.foo"...).
    pub fn map_fd(&self, id: ComponentId, name: &str) -> Result<BorrowedFd<'_>> {
        let loaded = self.loaded.as_ref().ok_or(Error::NotLoaded)?;
        // Ours, not the loaded ones: extensions may fill slots since.
        let member = self
            .members
            .iter()
            .find(|m| m.id == id)
            .ok_or_else(|| Error::UnknownComponent(id.0.to_string()))?;
        let unknown = || Error::UnknownMap {
            component: member.component.program().to_string(),
            map: name.to_string(),
        };
        if let Some((ext, _)) = self.plugged.get(&member.tag) {
            return ext.map(name).ok_or_else(unknown);
        }
        match &loaded.body {
            Body::Static(Linked { object, maps, .. }) => maps[&id]
                .iter()
                .find(|cm| cm.orig == name)
                .and_then(|cm| object.map_at(cm.index)?.fd())
                .ok_or_else(unknown),
            Body::Dynamic(_) => self.extensions[&member.tag].map(name).ok_or_else(unknown),
        }
    }

    /// Runs the loaded chain once on `packet` (BPF_PROG_TEST_RUN) and
    /// returns its verdict.
    pub fn test_run(&self, packet: &[u8], repeat: u32) -> Result<(u32, u32)> {
        let loaded = self.loaded.as_ref().ok_or(Error::NotLoaded)?;
        test_run(loaded.prog(), packet, repeat)
    }

    /// Makes `members` the chain: rebuilt, reloaded and swapped in if the
    /// chain is loaded; only recorded otherwise. On error nothing changes.
    fn commit(&mut self, members: Vec<Member>) -> Result<()> {
        if members.len() > MAX_COMPONENTS {
            return Err(Error::TooManyComponents {
                count: members.len(),
                max: MAX_COMPONENTS,
            });
        }
        if self.loaded.is_some() {
            self.commit_loaded(members, None, false)
        } else {
            self.members = members;
            Ok(())
        }
    }

    /// Loads `members` (for the interface `at` it is about to attach to, if
    /// not attached; bound to it if `bind`) and swaps them in where the
    /// chain runs.
    fn commit_loaded(
        &mut self,
        members: Vec<Member>,
        at: Option<&Interface>,
        bind: bool,
    ) -> Result<()> {
        // A device-bound chain loads for the interface it runs on, and
        // stays bound: its extensions can run nowhere else.
        let bound = match bind || plan::device_bound(&members) || self.bound.is_some() {
            false => None,
            true => match at
                .or(self.attachment.as_ref().map(|(i, _)| i))
                .or(self.bound.as_ref())
            {
                Some(iface) => Some(iface.clone()),
                None => {
                    let m = members.iter().find(|m| m.component.device_bound());
                    return Err(Error::InvalidArgument(format!(
                        "component {} reads RX metadata through kfuncs, which binds the chain to its interface: attach the chain, which loads it there",
                        m.expect("a device-bound member").component.label()
                    )));
                }
            },
        };
        if let (Some(iface), None, Some(Body::Dynamic(_))) =
            (&bound, &self.bound, self.loaded.as_ref().map(|l| &l.body))
        {
            if let Some(m) = members
                .iter()
                .find(|m| self.extensions.contains_key(&m.tag))
            {
                return Err(dynamic::unbound_extension(
                    &iface.name,
                    m.component.program(),
                ));
            }
        }
        let build = Build {
            device: bound.as_ref().map(|i| i.index),
            ..self.build.clone()
        };
        let mut reuse = match &self.loaded {
            Some(l) => l.reuse()?,
            None => Reuse::default(),
        };
        // Extensions in slots keep their maps when linked in, found by the
        // names they have in their objects.
        for (tag, (ext, _)) in &self.plugged {
            let maps = ext
                .maps()
                .map(|(n, fd)| Ok((n.to_string(), dup(fd)?)))
                .collect::<Result<_>>()?;
            reuse.maps.insert(*tag, maps);
        }
        let asked = self.mode.map_or_else(Mode::from_env, Ok)?;
        let mode = match (self.mode(), &self.loaded) {
            (m, Some(_)) => m,
            (_, None) => features::resolve(asked, &members)?,
        };
        let linked = || Ok((load_static(&members, &build, &reuse)?, HashMap::new()));
        let built = match mode {
            Mode::Dynamic => {
                let loaded = self
                    .extensions
                    .iter()
                    .map(|(tag, e)| (*tag, e.prog()))
                    .collect();
                load_dynamic(&members, &build, &reuse, &loaded)
            }
            _ => linked(),
        };
        // As a shared chain does, auto builds the chain static where the
        // kernel refuses a component as an extension program.
        let mut not_dynamic = None;
        let (loaded, new_extensions) = match built {
            Err(refused) if self.loaded.is_none() && asked == Mode::Auto => {
                let Some(why) = features::not_dynamic(&refused) else {
                    return Err(refused);
                };
                log::info!("a static chain: {why}");
                not_dynamic = Some(why);
                linked().map_err(|_: Error| refused)?
            }
            built => built?,
        };
        if let (Some((iface, mode)), Some(old)) = (&self.attachment, &self.loaded) {
            attach::replace(iface, *mode, Some(loaded.prog()), Some(old.prog()))
                .map_err(|e| plan::name_frags(e, &members))?;
        }
        self.extensions.extend(new_extensions);
        // A rebuild links in what was plugged.
        self.plugged.clear();
        self.extensions
            .retain(|tag, _| members.iter().any(|m| m.tag == *tag));
        self.members = members;
        self.loaded = Some(loaded);
        self.not_dynamic = not_dynamic.or(self.not_dynamic.take());
        self.bound = bound;
        Ok(())
    }
}
