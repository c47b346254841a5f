//! The plan of a chain, as pure data: its members with their ids and tags,
//! their run order, and the root's config for it. Nothing here touches the
//! kernel.

use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;

use crate::component::{Component, Verdict, Verdicts};
use crate::error::{Error, Result};
use crate::root::{Config, SlotConfig, EMPTY_SLOT_VERDICT, MAX_COMPONENTS};

/// Identifies a component while it is in its chain: its row in the
/// counters, shown by status. Freed ids are given to later components.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentId(pub u32);

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
}

/// Whether a chain that a store creates counts packets per component.
/// libxdp's dispatcher has no room for our counters map, so counting and
/// sharing the chain with libxdp's users exclude each other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Counting {
    /// Count unless the chain takes libxdp's layout, which the default
    /// layout chooses where it can, so that xdp-loader and every libxdp
    /// user can join the chain.
    #[default]
    Auto,
    /// Count: the chain takes our layout.
    On,
    /// Leave the counters, and all counting code, out.
    Off,
}

/// How a chain is built, besides its members.
#[derive(Clone, Debug)]
pub(crate) struct Build {
    pub counting: bool,
    /// Maps that their object pins by name (LIBBPF_PIN_BY_NAME) are pinned
    /// here, under the name their object gave them, and shared through it.
    pub pin_root: String,
    /// Static chains: None, sealed; Some(n), open, with n spare slots.
    pub spare: Option<usize>,
    /// Link tail-calling components as static subprograms too, as the
    /// probe of the verifier's judgement of them needs (see linked.rs).
    pub static_tail_callers: bool,
    /// Sealed static chains: run a root generated for the chain, the
    /// components' code copied in (inline.rs), rather than the compiled one.
    pub inline: bool,
    /// Generated roots: with the code that times components and dumps
    /// packets on request. Only the benchmark leaves it out, to measure
    /// what it costs.
    pub timing_code: bool,
}

impl Build {
    /// How chains are built unless told otherwise: counting, inlined
    /// (`$XDPCHAIN_INLINE=0` keeps compiled roots), sealed.
    pub fn new(counting: bool) -> Build {
        Build {
            counting,
            pin_root: crate::ns::bpffs().into(),
            spare: None,
            static_tail_callers: false,
            inline: std::env::var("XDPCHAIN_INLINE").map_or(true, |v| v != "0"),
            timing_code: true,
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

/// Whether a chain of `members` runs multi-buffer aware: only if all are,
/// as libxdp decides for its dispatcher.
pub(crate) fn frags<'a>(members: impl IntoIterator<Item = &'a Member>) -> bool {
    let mut members = members.into_iter().peekable();
    members.peek().is_some() && members.all(|m| m.component.frags)
}

/// An error that says which of `members` lack multi-buffer support, if it
/// is about that.
pub(crate) fn name_frags(e: Error, members: &[Member]) -> Error {
    match e {
        Error::NeedsFrags { iface, .. } => Error::NeedsFrags {
            iface,
            without: members
                .iter()
                .filter(|m| !m.component.frags)
                .map(|m| m.component.label())
                .collect(),
        },
        e => e,
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
            1 << EMPTY_SLOT_VERDICT
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

/// Maps a build takes over instead of creating them empty: those of the
/// components that stay, and the counters.
#[derive(Default)]
pub(crate) struct Reuse {
    /// Per component tag, its maps by their names in its object. A tag is
    /// present for every component that stays, even one without maps.
    pub maps: HashMap<u64, HashMap<String, OwnedFd>>,
    pub stats: Option<OwnedFd>,
}
