//! A static chain: components ordered by priority, linked under the root
//! program, loaded with the maps of the previous build reused, and swapped
//! atomically onto the interface.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use libbpf_sys as sys;

use crate::attach::{self, AttachMode, Interface};
use crate::component::{Component, Verdict, Verdicts};
use crate::dynamic::{self, Dispatcher, Extension};
use crate::error::{Error, Result};
use crate::features;
use crate::inspect::{self, ChainStatus, ComponentStatus, Counters};
use crate::linked;
use crate::root::{self, Config, SlotConfig, MAX_COMPONENTS};
use crate::sys::{check, dup, Object};

/// Identifies a component while it is in its chain: its row in the
/// counters, shown by status. Freed ids are given to later components.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentId(pub u32);

#[derive(Clone, Copy, Debug, Default)]
pub struct AttachOptions {
    pub mode: AttachMode,
    /// Replace a program of another loader.
    pub force: bool,
}

/// Where libbpf pins maps that their object pins by name.
pub const DEFAULT_PIN_ROOT: &str = crate::ns::BPFFS;

/// How a chain is built, besides its members.
#[derive(Clone, Debug)]
pub(crate) struct Build {
    pub counting: bool,
    /// Maps that their object pins by name (LIBBPF_PIN_BY_NAME) are pinned
    /// here, under the name their object gave them, and shared through it.
    pub pin_root: String,
    /// Static chains: None, sealed; Some(n), open, with n spare slots.
    pub spare: Option<usize>,
}

impl Default for Build {
    fn default() -> Self {
        Build {
            counting: true,
            pin_root: crate::ns::bpffs().into(),
            spare: None,
        }
    }
}
#[derive(Clone)]
pub(crate) struct Member {
    pub id: ComponentId,
    /// Tags the component's renamed globals; never reused within a chain, so
    /// a rebuild cannot hand one component's maps to another.
    pub tag: u64,
    pub component: Component,
}

pub(crate) struct Loaded {
    pub members: Vec<Member>,
    pub body: Body,
}

pub(crate) enum Body {
    /// One linked program, and each component's maps in it.
    Static {
        object: Object,
        maps: HashMap<ComponentId, Vec<linked::ComponentMap>>,
        /// Spare slots of an open chain (None: sealed).
        spare: Option<usize>,
    },
    /// A dispatcher with the components' extension programs attached.
    Dynamic(Dispatcher),
}

impl Loaded {
    fn root(&self) -> (&Object, &str) {
        match &self.body {
            Body::Static { object, .. } => (object, root::PROG_NAME),
            Body::Dynamic(d) => (d.object(), dynamic::PROG_NAME),
        }
    }

    pub(crate) fn prog(&self) -> BorrowedFd<'_> {
        let (object, name) = self.root();
        object
            .program(name)
            .and_then(|p| p.fd())
            .expect("a loaded chain has its root program")
    }

    pub(crate) fn stats(&self) -> BorrowedFd<'_> {
        self.root()
            .0
            .map(root::STATS_MAP)
            .and_then(|m| m.fd())
            .expect("a loaded chain has its counters")
    }

    /// A member's maps in a static chain, by their names in the member's
    /// object (those of a dynamic chain stay with its extension programs).
    pub(crate) fn maps_of(&self, m: &Member) -> Vec<(String, BorrowedFd<'_>)> {
        let Body::Static { object, maps, .. } = &self.body else {
            return Vec::new();
        };
        maps[&m.id]
            .iter()
            .filter_map(|cm| Some((cm.orig.clone(), object.map_at(cm.index)?.fd()?)))
            .collect()
    }

    /// Each member's freplace link in a dynamic chain, by tag.
    pub(crate) fn links(&self) -> Vec<(u64, BorrowedFd<'_>)> {
        match &self.body {
            Body::Dynamic(d) => d.links().collect(),
            Body::Static { .. } => Vec::new(),
        }
    }

    /// What a rebuild of this chain takes over.
    fn reuse(&self) -> Result<Reuse> {
        let mut out = Reuse {
            stats: Some(dup(self.stats())?),
            ..Default::default()
        };
        for m in &self.members {
            let maps = self
                .maps_of(m)
                .into_iter()
                .map(|(n, fd)| Ok((n, dup(fd)?)))
                .collect::<Result<_>>()?;
            out.maps.insert(m.tag, maps);
        }
        Ok(out)
    }
}

/// How components are joined: linked into one program, or attached as
/// extension programs to a dispatcher's slots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Dynamic where the kernel supports freplace and every component has
    /// BTF, static otherwise. `$XDPCHAIN_MODE` (auto, static, dynamic)
    /// changes the default of new chains.
    #[default]
    Auto,
    Static,
    Dynamic,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Static => "static",
            Mode::Dynamic => "dynamic",
        }
    }

    pub fn parse(s: &str) -> Result<Mode> {
        [Mode::Auto, Mode::Static, Mode::Dynamic]
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                Error::InvalidArgument(format!("unknown mode '{s}' (auto, static, dynamic)"))
            })
    }

    pub(crate) fn from_env() -> Result<Mode> {
        std::env::var("XDPCHAIN_MODE").map_or(Ok(Mode::Auto), |m| Mode::parse(&m))
    }

    /// Static or Dynamic, for `members` on this kernel.
    pub(crate) fn resolve(self, members: &[Member]) -> Result<Mode> {
        match self {
            Mode::Static => Ok(Mode::Static),
            Mode::Dynamic if features::features()?.freplace => Ok(Mode::Dynamic),
            Mode::Dynamic => Err(Error::Unsupported(
                "dynamic chains need freplace (BPF_PROG_TYPE_EXT), which this kernel refuses"
                    .into(),
            )),
            Mode::Auto => Ok(
                if members.iter().all(|m| m.component.has_func_info)
                    && features::features()?.freplace
                {
                    Mode::Dynamic
                } else {
                    Mode::Static
                },
            ),
        }
    }
}

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
            build: Build::default(),
            mode: None,
            loaded: None,
            extensions: HashMap::new(),
            plugged: HashMap::new(),
            attachment: None,
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
                body: Body::Static { .. },
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

    /// Removes a component; rebuilds as [`Chain::add`] does.
    pub fn remove(&mut self, id: ComponentId) -> Result<Component> {
        let (members, gone) = without(&self.members, id)?;
        self.commit(members)?;
        Ok(gone.component)
    }

    /// Puts `component` in the slot of component `id`, atomically: every
    /// packet sees the old component or the new one. The new one takes the
    /// old one's id and priority, so its place in the run order (among
    /// components of equal priority, program names decide); its maps and
    /// counters start afresh. Returns the old component.
    ///
    /// In a loaded open static chain ([`Chain::set_spare_slots`]) where the
    /// kernel has freplace, a linked component is replaced in place by an
    /// extension program, if the new one has the same continue set (the
    /// chain's config is frozen); otherwise the chain is rebuilt.
    pub fn replace_slot(&mut self, id: ComponentId, component: Component) -> Result<Component> {
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
        let Body::Static {
            spare: Some(spare), ..
        } = &loaded.body
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
        let (k, id) = spare_ids(&linked, *spare)
            .into_iter()
            .enumerate()
            .find(|(_, id)| !self.members.iter().any(|m| m.id.0 == *id))
            .ok_or_else(|| Error::TooManyComponents {
                count: linked.len() + spare + 1,
                max: linked.len() + spare,
            })?;
        let member = Member {
            id: ComponentId(id),
            tag: self.next_tag,
            component,
        };
        self.fill_slot(linked.len() + k, &member)?;
        self.members.push(member);
        self.next_tag += 1;
        Ok(ComponentId(id))
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
            Body::Static { spare: Some(_), .. }
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
        features::check(std::slice::from_ref(member))?;
        let loaded = self.loaded.as_ref().expect("checked by the callers");
        let Body::Static { object, .. } = &loaded.body else {
            unreachable!("checked by the callers");
        };
        let slot_fn = root::slot_function(slot);
        let ext = Extension::load(
            &member.component,
            loaded.prog(),
            &slot_fn,
            &self.build.pin_root,
        )?;
        inspect::clear_counters(loaded.stats(), member.id.0)?;
        let link = dynamic::attach(ext.prog(), object, root::PROG_NAME, &slot_fn)?;
        self.plugged.insert(member.tag, (ext, link));
        Ok(())
    }

    /// Finds a component by id (as digits) or by program name.
    pub fn find(&self, key: &str) -> Result<ComponentId> {
        find_member(&self.members, key)
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
    /// loader (bpftool, iproute2): one XDP program, `xdpchain_root`.
    pub fn link(&self) -> Result<Vec<u8>> {
        Ok(linked::build(&self.members, &self.build)?.0)
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
        self.commit_loaded(members)
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
        if self.loaded.is_none() {
            self.load()?;
        }
        let loaded = self.loaded.as_ref().expect("loaded above");
        let old = inspect::current(&iface, opts.force)?;
        if let Some(c) = &old {
            if !opts.force && inspect::config_of(c.fd.as_fd())?.is_some() {
                return Err(Error::NotOwner {
                    iface: iface.name.clone(),
                    owner: "this chain".into(),
                    others: format!(
                        "the chain there (program {}) with all its components",
                        attach::prog_info(c.fd.as_fd())?.1
                    ),
                });
            }
        }
        attach::replace(
            &iface,
            opts.mode,
            Some(loaded.prog()),
            old.as_ref().map(|c| c.fd.as_fd()),
        )?;
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
        // The frozen config names what was linked; extensions in its slots
        // are known here only.
        for c in st.components.iter_mut() {
            if let Some(m) = self.members.iter().find(|m| m.id.0 == c.id) {
                c.name = m.component.program().to_string();
                c.priority = m.component.priority();
                c.continue_on = m.component.continue_on();
                if let Some(fd) = self.extension_of(m.tag) {
                    c.program_id = Some(attach::prog_info(fd)?.1);
                }
            }
        }
        if let Body::Static {
            spare: Some(spare), ..
        } = &loaded.body
        {
            let linked = ordered(&loaded.members);
            for (k, id) in spare_ids(&linked, *spare).into_iter().enumerate() {
                let Some(m) = self.members.iter().find(|m| m.id.0 == id) else {
                    continue;
                };
                st.components.push(ComponentStatus {
                    id,
                    slot: linked.len() + k,
                    name: m.component.program().to_string(),
                    priority: m.component.priority(),
                    continue_on: m.component.continue_on(),
                    counters: match self.build.counting {
                        true => Some(inspect::read_counters(loaded.stats(), id)?),
                        false => None,
                    },
                    program_id: match self.extension_of(m.tag) {
                        Some(fd) => Some(attach::prog_info(fd)?.1),
                        None => None,
                    },
                    owner: None,
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
            Body::Static { object, maps, .. } => maps[&id]
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
            self.commit_loaded(members)
        } else {
            self.members = members;
            Ok(())
        }
    }

    fn commit_loaded(&mut self, members: Vec<Member>) -> Result<()> {
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
        let mode = match (self.mode(), &self.loaded) {
            (m, Some(_)) => m,
            (_, None) => self
                .mode
                .map_or_else(Mode::from_env, Ok)?
                .resolve(&members)?,
        };
        let (loaded, new_extensions) = match mode {
            Mode::Dynamic => {
                let loaded = self
                    .extensions
                    .iter()
                    .map(|(tag, e)| (*tag, e.prog()))
                    .collect();
                load_dynamic(&members, &self.build, &reuse, &loaded)?
            }
            _ => (linked::load(&members, &self.build, &reuse)?, HashMap::new()),
        };
        if let (Some((iface, mode)), Some(old)) = (&self.attachment, &self.loaded) {
            attach::replace(iface, *mode, Some(loaded.prog()), Some(old.prog()))?;
        }
        self.extensions.extend(new_extensions);
        // A rebuild links in what was plugged.
        self.plugged.clear();
        self.extensions
            .retain(|tag, _| members.iter().any(|m| m.tag == *tag));
        self.members = members;
        self.loaded = Some(loaded);
        Ok(())
    }
}

/// `members` and `component`, under the lowest free id and `tag`.
pub(crate) fn with_added(
    members: &[Member],
    component: Component,
    tag: u64,
) -> Result<(Vec<Member>, ComponentId)> {
    if members.len() >= MAX_COMPONENTS {
        return Err(Error::TooManyComponents {
            count: members.len() + 1,
            max: MAX_COMPONENTS,
        });
    }
    let used: HashSet<u32> = members.iter().map(|m| m.id.0).collect();
    let id = ComponentId(
        (0..)
            .find(|i| !used.contains(i))
            .expect("fewer than 2^32 components"),
    );
    let mut out = members.to_vec();
    out.push(Member { id, tag, component });
    Ok((out, id))
}

/// `members` without `id`, and the one taken out.
pub(crate) fn without(members: &[Member], id: ComponentId) -> Result<(Vec<Member>, Member)> {
    let pos = members
        .iter()
        .position(|m| m.id == id)
        .ok_or_else(|| Error::UnknownComponent(id.0.to_string()))?;
    let mut out = members.to_vec();
    let gone = out.remove(pos);
    Ok((out, gone))
}

/// `members` with `component` in the place of `id`, under `tag`: it takes
/// the old one's id and priority. Returns the old one too.
pub(crate) fn with_replaced(
    members: &[Member],
    id: ComponentId,
    component: Component,
    tag: u64,
) -> Result<(Vec<Member>, Member)> {
    let (mut members, old) = without(members, id)?;
    let component = component.with_priority(old.component.priority());
    members.push(Member { id, tag, component });
    Ok((members, old))
}

/// The component named by `key`: its id as digits, or its program name.
pub(crate) fn find_member(members: &[Member], key: &str) -> Result<ComponentId> {
    let by_id = key
        .parse::<u32>()
        .ok()
        .and_then(|n| members.iter().find(|m| m.id.0 == n));
    let mut by_name = members.iter().filter(|m| m.component.program() == key);
    match (by_id, by_name.next(), by_name.next()) {
        (Some(m), _, _) | (None, Some(m), None) => Ok(m.id),
        (None, Some(_), Some(_)) => Err(Error::InvalidArgument(format!(
            "several components are named '{key}'; use the id"
        ))),
        (None, None, _) => Err(Error::UnknownComponent(key.to_string())),
    }
}

/// Run order: priority, then program name, then the order of adding.
pub(crate) fn ordered(members: &[Member]) -> Vec<&Member> {
    let mut v: Vec<&Member> = members.iter().collect();
    v.sort_by(|a, b| {
        (a.component.priority(), a.component.program(), a.tag).cmp(&(
            b.component.priority(),
            b.component.program(),
            b.tag,
        ))
    });
    v
}

/// The root's config for components in run order, then `spare` free
/// slots (unnamed, going on after XDP_PASS and while empty).
pub(crate) fn config(order: &[&Member], counting: bool, spare: usize) -> Config {
    let linked = order.iter().map(|m| SlotConfig {
        name: m.component.program().to_string(),
        priority: m.component.priority(),
        continue_on: m.component.continue_on(),
        stat_index: m.id.0,
    });
    let free = spare_ids(order, spare).into_iter().map(|id| SlotConfig {
        name: String::new(),
        priority: 0,
        continue_on: Verdicts::empty().with(Verdict::Pass),
        stat_index: id,
    });
    Config {
        counting,
        slots: linked.chain(free).collect(),
        always_continue: if spare > 0 {
            1 << dynamic::EMPTY_SLOT_VERDICT
        } else {
            0
        },
    }
}

/// The component ids (counter rows) of an open chain's spare slots: the
/// lowest ids its linked components leave free.
pub(crate) fn spare_ids(order: &[&Member], spare: usize) -> Vec<u32> {
    (0..)
        .filter(|i| !order.iter().any(|m| m.id.0 == *i))
        .take(spare)
        .collect()
}

/// Loads `members` as a dynamic chain, attaching the extensions already
/// loaded; returns it and the extensions it loaded.
pub(crate) fn load_dynamic(
    members: &[Member],
    build: &Build,
    reuse: &Reuse,
    extensions: &HashMap<u64, BorrowedFd<'_>>,
) -> Result<(Loaded, HashMap<u64, Extension>)> {
    features::check(members)?;
    let order = ordered(members);
    let config = config(&order, build.counting, 0);
    let (dispatcher, new) = dynamic::load(&order, &config, &build.pin_root, reuse, extensions)?;
    let loaded = Loaded {
        members: members.to_vec(),
        body: Body::Dynamic(dispatcher),
    };
    Ok((loaded, new))
}

/// Maps a build takes over instead of creating them empty: those of the
/// components that stay, and the counters.
#[derive(Default)]
pub(crate) struct Reuse {
    /// Per component tag, its maps by their names in its object. A tag is
    /// present for every component that stays, even one without maps.
    pub maps: HashMap<u64, HashMap<String, OwnedFd>>,
    pub stats: Option<OwnedFd>,
}

/// One BPF_PROG_TEST_RUN: (verdict, mean duration in ns).
pub fn test_run(prog: BorrowedFd<'_>, packet: &[u8], repeat: u32) -> Result<(u32, u32)> {
    let mut out = vec![0u8; packet.len() + 256];
    let mut opts = sys::bpf_test_run_opts {
        sz: std::mem::size_of::<sys::bpf_test_run_opts>() as _,
        data_in: packet.as_ptr().cast(),
        data_size_in: packet.len() as u32,
        data_out: out.as_mut_ptr().cast(),
        data_size_out: out.len() as u32,
        repeat: repeat as i32,
        ..Default::default()
    };
    // SAFETY: buffers are valid for their given sizes.
    check(unsafe { sys::bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) })
        .map_err(|e| Error::os("BPF_PROG_TEST_RUN", e))?;
    Ok((opts.retval, opts.duration))
}
