//! Dynamic chains: each component loaded once as an extension program
//! (freplace) and attached in place of a slot of the dispatcher
//! (bpf/dynamic.bpf.c). A change builds a new dispatcher, verifies only it
//! and the components new to the chain, and attaches the extensions already
//! loaded to the new dispatcher's slots as well.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::component::Component;
use crate::counters;
use crate::error::{Error, Result};
use crate::plan::{self, Build, Member, Reuse};
use crate::root::{self, Config};
use crate::sys::{Object, Refusal};
use xdpchain_obj::rewrite;

pub(crate) static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dynamic.bpf.o"));
pub(crate) const PROG_NAME: &str = "xdpchain_dyn";

const SLOT_PREFIX: &str = "xdpchain_dslot_";

fn slot_function(slot: usize) -> String {
    format!("{SLOT_PREFIX}{slot}")
}

/// A component loaded as an extension program, with its own maps.
pub(crate) struct Extension {
    object: Object,
    entry: String,
    /// Map positions by the names users know them by (section names for
    /// data), taken before loading: libbpf renames pinned maps after their
    /// kernel names.
    maps: Vec<(String, usize)>,
}

impl Extension {
    /// Loads `component`'s program as an extension of the global function
    /// `slot_fn` of `target` (verified against it once; attachable to
    /// functions of the same type in other dispatchers).
    pub(crate) fn load(
        component: &Component,
        target: BorrowedFd<'_>,
        slot_fn: &str,
        pin_root: &str,
    ) -> Result<Extension> {
        component.check_sized()?;
        let name = component.label();
        if !component.has_func_info {
            return Err(Error::Unsupported(format!(
                "component {name} has no BTF (built without -g), which an extension program needs; use a static chain"
            )));
        }
        let object = Object::open(component.bytes.to_vec(), "component").map_err(
            |Refusal { errno: e, log }| Error::Malformed {
                name: name.clone(),
                reason: format!(
                    "libbpf cannot open it ({}): {}",
                    crate::error::os_text(&e),
                    log.trim()
                ),
            },
        )?;
        let prog = object
            .program(component.program())
            .expect("the component was opened with this program before");
        // The object's other XDP programs load with it, as programs it may
        // tail-call (old section names included); those of other types, and
        // the global functions only they call, stay out, as libxdp leaves
        // them: the verifier would check those functions as XDP code.
        object
            .only_xdp()
            .and_then(|()| {
                object
                    .programs()
                    .filter(|p| p.name() != component.program() && p.is_xdp())
                    .try_for_each(|p| p.make_tail_target())
            })
            .and_then(|()| prog.make_extension(target, slot_fn))
            .map_err(|e| Error::os(format!("prepare {name} as an extension"), e))?;
        let maps = map_names(&object, component);
        crate::sys::pin_by_name(object.maps().map(|m| (m, m.name())).collect(), pin_root)?;
        object.load().map_err(|Refusal { errno, log }| {
            Error::refused(
                &format!("load {name} as an extension"),
                Some(name.clone()),
                errno,
                &log,
            )
        })?;
        Ok(Extension {
            object,
            entry: component.program().to_string(),
            maps,
        })
    }

    /// One of the component's maps, by the name it has in its object (maps,
    /// and data sections such as ".data" and ".bss").
    pub(crate) fn map(&self, name: &str) -> Option<BorrowedFd<'_>> {
        let (_, i) = self.maps.iter().find(|(n, _)| n == name)?;
        self.object.map_at(*i)?.fd()
    }

    /// The component's maps, by the names users know them by.
    pub(crate) fn maps(&self) -> impl Iterator<Item = (&str, BorrowedFd<'_>)> {
        self.maps
            .iter()
            .filter_map(|(n, i)| Some((n.as_str(), self.object.map_at(*i)?.fd()?)))
    }

    pub(crate) fn prog(&self) -> BorrowedFd<'_> {
        self.object.loaded_prog(&self.entry)
    }
}

/// The refusal of a component that would bind a dynamic chain on `iface`
/// whose extension `program` was loaded unbound: the kernel binds an
/// extension once, when it is loaded.
pub(crate) fn unbound_extension(iface: &str, program: &str) -> Error {
    Error::Unsupported(format!(
        "{iface}: a component that reads RX metadata makes the chain device-bound, and the extension program {program} that runs there was loaded unbound, which the kernel keeps out of a bound dispatcher; add that component first, or detach the chain first"
    ))
}

/// Positions of `object`'s maps: data maps by their sections' names (as
/// users know them), the others by their own.
fn map_names(object: &Object, component: &Component) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = component
        .data_sections()
        .into_iter()
        .filter_map(|section| Some((object.map_index(&section)?, section)))
        .map(|(i, n)| (n, i))
        .collect();
    for (i, m) in object.maps().enumerate() {
        if !out.iter().any(|(_, j)| *j == i) {
            out.push((m.name(), i));
        }
    }
    out
}

/// Attaches the extension program `prog` to the global function `slot_fn`
/// of `dispatcher`'s program `entry` (an extension may extend several
/// programs since Linux 5.10). The link detaches when its last fd closes,
/// unless it is pinned.
pub(crate) fn attach(
    prog: BorrowedFd<'_>,
    dispatcher: &Object,
    entry: &str,
    slot_fn: &str,
) -> Result<OwnedFd> {
    let target = dispatcher.loaded_prog(entry);
    let btf_id = dispatcher
        .btf_func_id(slot_fn)
        .map_err(|e| Error::os(format!("find slot {slot_fn} in the dispatcher"), e))?;
    crate::sys::freplace_link(prog, target, btf_id)
        .map_err(|e| Error::os(format!("attach an extension to {slot_fn}"), e))
}

/// A loaded dispatcher with every slot it uses filled.
pub(crate) struct Dispatcher {
    object: Object,
    /// The freplace link of each member, by tag.
    links: Vec<(u64, OwnedFd)>,
}

impl Dispatcher {
    pub(crate) fn object(&self) -> &Object {
        &self.object
    }

    pub(crate) fn links(&self) -> impl Iterator<Item = (u64, BorrowedFd<'_>)> {
        self.links.iter().map(|(tag, fd)| (*tag, fd.as_fd()))
    }
}

/// Loads a dispatcher for `config`, keeping the counters in `reuse`;
/// multi-buffer aware with `frags`, bound to the interface `device`.
fn load_dispatcher(
    config: &Config,
    reuse: &Reuse,
    frags: bool,
    device: Option<u32>,
) -> Result<Object> {
    let config = Config {
        always_continue: 1 << root::EMPTY_SLOT_VERDICT,
        ..config.clone()
    };
    let slots = rewrite::Slots {
        prefix: SLOT_PREFIX,
        used: config.slots.len(),
        global: Vec::new(),
    };
    let bytes = rewrite::prepare_root(OBJECT, &config.to_bytes(), &slots, false)?;
    let object = Object::open(bytes, "xdpchain").map_err(|Refusal { errno: e, log }| {
        Error::Link(format!(
            "libbpf cannot open the dispatcher ({}): {}",
            crate::error::os_text(&e),
            log.trim()
        ))
    })?;
    if let (Some(fd), Some(map)) = (&reuse.stats, object.map(root::STATS_MAP)) {
        map.reuse_fd(fd.as_fd(), root::STATS_MAP)?;
    }
    object
        .program(PROG_NAME)
        .expect("the dispatcher has its program")
        .set_load_options(frags, device)
        .map_err(|e| Error::os("set the dispatcher's load flags", e))?;
    object.load().map_err(|Refusal { errno, log }| {
        Error::refused("load the dispatcher", None, errno, &log)
    })?;
    Ok(object)
}

/// Loads a dispatcher for `order` (members in run order), attaches the
/// extension programs in `loaded` (by tag) and loads the others (their maps
/// pinned by name under the pin root of `build`, and bound to its device,
/// as the kernel binds an extension to its first target's); returns the
/// dispatcher and the extensions it loaded. On error nothing is left loaded.
pub(crate) fn load(
    order: &[&Member],
    config: &Config,
    build: &Build,
    reuse: &Reuse,
    loaded: &HashMap<u64, BorrowedFd<'_>>,
) -> Result<(Dispatcher, HashMap<u64, Extension>)> {
    let frags = plan::frags(order.iter().copied()) && crate::sys::multi_buffer_xdp()?;
    let object = load_dispatcher(config, reuse, frags, build.device)?;
    let mut new = HashMap::new();
    let mut links = Vec::new();
    for (slot, m) in order.iter().enumerate() {
        let prog = match loaded.get(&m.tag) {
            Some(fd) => *fd,
            None => {
                let target = object.loaded_prog(PROG_NAME);
                let ext =
                    Extension::load(&m.component, target, &slot_function(slot), &build.pin_root)?;
                new.entry(m.tag).or_insert(ext).prog()
            }
        };
        links.push((
            m.tag,
            attach(prog, &object, PROG_NAME, &slot_function(slot))?,
        ));
    }
    let stats = object.loaded_map(root::STATS_MAP);
    for m in order.iter().filter(|m| !reuse.maps.contains_key(&m.tag)) {
        counters::clear(stats, m.row)?;
    }
    Ok((Dispatcher { object, links }, new))
}

/// Whether this kernel runs `marker` (which returns XDP_TX) as an extension
/// of a dispatcher's slot. Errors only if the dispatcher itself cannot load.
pub(crate) fn probe(marker: &Member) -> Result<bool> {
    let config = Config {
        counting: false,
        slots: vec![root::SlotConfig {
            name: "probe".into(),
            priority: 0,
            continue_on: Default::default(),
            stat_index: 0,
            id: 0,
        }],
        always_continue: 0,
    };
    let object = load_dispatcher(&config, &Reuse::default(), false, None)?;
    let target = object.loaded_prog(PROG_NAME);
    let slot_fn = slot_function(0);
    let Ok(ext) = Extension::load(&marker.component, target, &slot_fn, crate::ns::bpffs()) else {
        return Ok(false);
    };
    let Ok(_link) = attach(ext.prog(), &object, PROG_NAME, &slot_fn) else {
        return Ok(false);
    };
    let (verdict, _) = crate::sys::test_run(target, &[0u8; 64], 1)?;
    Ok(verdict == crate::component::Verdict::Tx as u32)
}
