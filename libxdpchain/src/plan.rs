//! The plan of a chain, as pure data: its members with their ids and tags,
//! their run order, and the root's config for it. Nothing here touches the
//! kernel.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use crate::component::{Component, Verdict, Verdicts};
use crate::error::{Error, Result};
use crate::root::{Config, SlotConfig, EMPTY_SLOT_VERDICT, MAX_COMPONENTS};

/// Identifies a component in its chain, as status shows it: never given to
/// another component of the chain (a replacement keeps the id of what it
/// replaces), so that a stale id finds nothing rather than another's
/// component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentId(pub u32);

/// How an operation names a component: by its id (in libxdp's layout, the
/// program id status shows), or by its program's name, which must then be
/// that of one component only.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ComponentKey {
    Id(ComponentId),
    Program(String),
}

impl From<ComponentId> for ComponentKey {
    fn from(id: ComponentId) -> Self {
        ComponentKey::Id(id)
    }
}

impl From<&str> for ComponentKey {
    fn from(program: &str) -> Self {
        ComponentKey::Program(program.to_string())
    }
}

/// As a person types it: digits are an id, anything else a program name.
impl std::str::FromStr for ComponentKey {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s.parse() {
            Ok(id) => ComponentKey::Id(ComponentId(id)),
            Err(_) => ComponentKey::Program(s.to_string()),
        })
    }
}

impl std::fmt::Display for ComponentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ComponentKey::Id(id) => write!(f, "{}", id.0),
            ComponentKey::Program(name) => f.write_str(name),
        }
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
}

/// Whether a chain that a store creates counts packets per component.
/// libxdp's dispatcher has no room for our counters map, so counting and
/// sharing the chain with libxdp's users exclude each other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Counting {
    /// Count where the kernel lets us: always in our layout; in libxdp's
    /// (the default layout's choice where it can, so that xdp-loader and
    /// every libxdp user can join the chain), each extension we load unless
    /// the kernel refuses to trace it.
    #[default]
    Auto,
    /// Count, and time and dump on request: the default layout takes ours.
    /// In libxdp's layout, asked for, a chain counts (but cannot time or
    /// dump), and an extension the kernel refuses to trace fails the change.
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
    /// The interface a device-bound chain is loaded for ([`device_bound`]):
    /// its root program or dispatcher is bound to it.
    pub device: Option<u32>,
}

impl Build {
    /// How chains are built unless told otherwise: counting, inlined
    /// (`$XDPCHAIN_INLINE=0` keeps compiled roots), sealed, their maps
    /// pinned by name under `pin_root`.
    pub fn new(counting: bool, pin_root: String) -> Build {
        Build {
            counting,
            pin_root,
            spare: None,
            static_tail_callers: false,
            inline: std::env::var("XDPCHAIN_INLINE").map_or(true, |v| v != "0"),
            timing_code: true,
            device: None,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub id: ComponentId,
    /// Its row in the counters: the lowest free when it joined.
    pub row: u32,
    /// Tags the component's renamed globals; never reused within a chain, so
    /// a rebuild cannot hand one component's maps to another.
    pub tag: u64,
    pub component: Component,
}

/// `members` and `component`, under `tag`, which is its id too (tags are
/// never reused), and the lowest free row.
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
    let id = ComponentId(u32::try_from(tag).map_err(|_| {
        Error::Unsupported("this chain has given out all 2^32 component ids".into())
    })?);
    let row = free_rows(members).next().expect("fewer members than rows");
    let mut out = members.to_vec();
    out.push(Member {
        id,
        row,
        tag,
        component,
    });
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
/// the old one's id, row and priority. Returns the old one too.
pub(crate) fn with_replaced(
    members: &[Member],
    id: ComponentId,
    component: Component,
    tag: u64,
) -> Result<(Vec<Member>, Member)> {
    let (mut members, old) = without(members, id)?;
    let component = component.with_priority(old.component.priority());
    members.push(Member {
        id,
        row: old.row,
        tag,
        component,
    });
    Ok((members, old))
}

/// The component named by `key`.
pub(crate) fn find_member(members: &[Member], key: &ComponentKey) -> Result<ComponentId> {
    let ids_names = members.iter().map(|m| (m.id.0, m.component.program()));
    find_key(ids_names, key).map(|i| members[i].id)
}

/// The index of the one of `ids_names` (id, program name) that `key`
/// names.
pub(crate) fn find_key<'a>(
    mut ids_names: impl Iterator<Item = (u32, &'a str)>,
    key: &ComponentKey,
) -> Result<usize> {
    let unknown = || Error::UnknownComponent(key.to_string());
    match key {
        ComponentKey::Id(id) => ids_names
            .position(|(cid, _)| cid == id.0)
            .ok_or_else(unknown),
        ComponentKey::Program(program) => {
            let by_name: Vec<usize> = ids_names
                .enumerate()
                .filter(|(_, (_, name))| name == program)
                .map(|(i, _)| i)
                .collect();
            match by_name.as_slice() {
                [i] => Ok(*i),
                [] => Err(unknown()),
                _ => Err(Error::InvalidArgument(format!(
                    "several components are named '{program}'; use the id"
                ))),
            }
        }
    }
}

/// Whether a chain of `members` runs multi-buffer aware: only if all are,
/// as libxdp decides for its dispatcher.
pub(crate) fn frags<'a>(members: impl IntoIterator<Item = &'a Member>) -> bool {
    let mut members = members.into_iter().peekable();
    members.peek().is_some() && members.all(|m| m.component.frags)
}

/// Whether a chain of `members` must be loaded bound to its interface: some
/// component reads RX metadata through kfuncs.
pub(crate) fn device_bound<'a>(members: impl IntoIterator<Item = &'a Member>) -> bool {
    members.into_iter().any(|m| m.component.device_bound())
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
        stat_index: m.row,
        id: m.id.0,
    });
    let free = spare_rows(order, spare).into_iter().map(|row| SlotConfig {
        name: String::new(),
        priority: 0,
        continue_on: Verdicts::empty().with(Verdict::Pass),
        stat_index: row,
        // None yet: what plugs it is known to its chain only.
        id: u32::MAX,
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

/// The rows in the counters that `members` leave free, lowest first.
fn free_rows<'a>(
    members: impl IntoIterator<Item = &'a Member> + Clone,
) -> impl Iterator<Item = u32> {
    (0..MAX_COMPONENTS as u32).filter(move |r| !members.clone().into_iter().any(|m| m.row == *r))
}

/// The rows of an open chain's `spare` slots: the lowest that the linked
/// members in `order` leave free.
pub(crate) fn spare_rows(order: &[&Member], spare: usize) -> Vec<u32> {
    free_rows(order.iter().copied()).take(spare).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    const COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/test_component.bpf.o"));

    fn component() -> Component {
        Component::from_bytes(COMPONENT, "component.o", Some("xdp_first")).unwrap()
    }

    /// A component that leaves frees its row for the next, never its id: a
    /// stale id finds nothing. A replacement takes the id and row it
    /// replaces.
    #[test]
    fn ids_are_never_reused_rows_are() {
        let (m, a) = with_added(&[], component(), 0).unwrap();
        let (m, b) = with_added(&m, component(), 1).unwrap();
        let (m, _) = without(&m, a).unwrap();
        let (m, c) = with_added(&m, component(), 2).unwrap();
        assert_eq!((a, b, c), (ComponentId(0), ComponentId(1), ComponentId(2)));
        let rows: Vec<(u32, u32)> = m.iter().map(|m| (m.id.0, m.row)).collect();
        assert_eq!(rows, [(1, 1), (2, 0)]);
        assert!(matches!(
            find_member(&m, &ComponentId(0).into()),
            Err(Error::UnknownComponent(_))
        ));
        let (m, old) = with_replaced(&m, c, component(), 3).unwrap();
        assert_eq!(old.tag, 2);
        let new = m.iter().find(|m| m.tag == 3).unwrap();
        assert_eq!((new.id, new.row), (c, 0));
        let config = config(&ordered(&m), true, 1);
        let ids: Vec<(u32, u32)> = config.slots.iter().map(|s| (s.id, s.stat_index)).collect();
        // The spare slot takes the lowest free row.
        assert_eq!(ids, [(1, 1), (2, 0), (u32::MAX, 2)]);
    }

    fn named(program: &str, priority: i32) -> Component {
        Component::from_bytes(COMPONENT, "component.o", Some(program))
            .unwrap()
            .with_priority(priority)
    }

    fn chain_of(components: Vec<Component>) -> Vec<Member> {
        let mut members = Vec::new();
        for (tag, c) in components.into_iter().enumerate() {
            members = with_added(&members, c, tag as u64).unwrap().0;
        }
        members
    }

    /// Priority first, then the program's name, then the order of adding:
    /// libxdp's order, so that both layouts run a chain alike.
    #[test]
    fn run_order_is_priority_then_name_then_adding() {
        let members = chain_of(vec![
            named("xdp_second", 10),
            named("xdp_first", 20),
            named("xdp_first", 10),
            named("xdp_second", -5),
            named("xdp_first", 10),
        ]);
        let order: Vec<u32> = ordered(&members).iter().map(|m| m.id.0).collect();
        assert_eq!(order, [3, 2, 4, 0, 1]);
        let c = config(&ordered(&members), false, 0);
        let prios: Vec<i32> = c.slots.iter().map(|s| s.priority).collect();
        assert_eq!(prios, [-5, 10, 10, 10, 20]);
        assert_eq!((c.counting, c.always_continue), (false, 0));
    }

    /// An open chain's spare slots go on while empty and after XDP_PASS,
    /// unnamed, with no id, on the rows the members leave.
    #[test]
    fn spare_slots_continue_and_take_free_rows() {
        let members = chain_of(vec![named("xdp_first", 1), named("xdp_second", 2)]);
        let (members, _) = without(&members, ComponentId(0)).unwrap();
        let c = config(&ordered(&members), true, 2);
        let spare: Vec<(u32, u32, &str)> = c.slots[1..]
            .iter()
            .map(|s| (s.stat_index, s.id, s.name.as_str()))
            .collect();
        assert_eq!(spare, [(0, u32::MAX, ""), (2, u32::MAX, "")]);
        assert_eq!(c.always_continue, 1 << EMPTY_SLOT_VERDICT);
        assert!(c.slots[1].continue_on.contains(Verdict::Pass));
    }

    #[test]
    fn a_chain_holds_at_most_max_components() {
        let members = chain_of(vec![component(); MAX_COMPONENTS]);
        let e = with_added(&members, component(), 99).unwrap_err();
        assert!(
            matches!(e, Error::TooManyComponents { count: 65, max: 64 }),
            "{e}"
        );
        let e = with_added(&[], component(), 1 << 32).unwrap_err();
        assert!(e.to_string().contains("all 2^32 component ids"), "{e}");
    }

    /// A replacement runs where the old one ran: its priority, whatever
    /// its object says.
    #[test]
    fn a_replacement_keeps_the_place_it_takes() {
        let members = chain_of(vec![named("xdp_first", 7), named("xdp_second", 9)]);
        let (members, old) =
            with_replaced(&members, ComponentId(1), named("xdp_first", 50), 5).unwrap();
        assert_eq!(old.component.program(), "xdp_second");
        let new = members.iter().find(|m| m.tag == 5).unwrap();
        assert_eq!((new.id.0, new.row, new.component.priority()), (1, 1, 9));
        assert!(matches!(
            with_replaced(&members, ComponentId(8), component(), 6),
            Err(Error::UnknownComponent(k)) if k == "8"
        ));
    }

    #[test]
    fn modes_by_name_and_frags_only_when_all_have_them() {
        assert_eq!(Mode::parse("dynamic").unwrap(), Mode::Dynamic);
        let e = Mode::parse("hw").unwrap_err();
        assert!(e
            .to_string()
            .contains("unknown mode 'hw' (auto, static, dynamic)"));
        let members = chain_of(vec![component()]);
        assert!(!frags(&members) && !frags(&[]));
        let e = Error::NeedsFrags {
            iface: "eth0".into(),
            without: Vec::new(),
        };
        match name_frags(e, &members) {
            Error::NeedsFrags { without, .. } => assert_eq!(without, ["component.o:xdp_first"]),
            e => panic!("{e}"),
        }
    }
}
