//! Static chains: the components rewritten and linked with the root program
//! into one BPF program, loaded with the maps of the components that stay.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::btf::Btf;
use crate::counters;
use crate::error::{Error, Result};
use crate::inline;
use crate::inline_object;
use crate::license;
use crate::plan::{self, config, ordered, Build, ComponentId, Member, Reuse};
use crate::rewrite::{self, Renames, Slots, Spec};
use crate::root::{self, MAX_COMPONENTS};
use crate::sys::{bind_map, load_xdp, pin_by_name, Object, XdpProgram};

/// One of a component's maps in a linked chain.
#[derive(Clone, Debug)]
pub(crate) struct ComponentMap {
    /// Its name in the component's object (a data section's name for
    /// global variables).
    pub orig: String,
    /// Its position among the linked object's maps: names do not survive
    /// loading (libbpf renames reused maps after their kernel names).
    pub index: usize,
}

/// A linked chain, loaded: one program, and each component's maps in it.
pub(crate) struct Linked {
    pub object: Object,
    pub maps: HashMap<ComponentId, Vec<ComponentMap>>,
    /// Spare slots of an open chain (None: sealed).
    pub spare: Option<usize>,
    /// The root generated for the chain, each slot's code copied in where
    /// it could be (inline.rs); None: the compiled root runs.
    pub generated: Option<OwnedFd>,
}

impl Linked {
    pub(crate) fn prog(&self) -> BorrowedFd<'_> {
        match &self.generated {
            Some(fd) => fd.as_fd(),
            None => self.object.loaded_prog(root::PROG_NAME),
        }
    }

    pub(crate) fn stats(&self) -> BorrowedFd<'_> {
        self.object.loaded_map(root::STATS_MAP)
    }

    /// Component `id`'s maps, by their names in its object.
    pub(crate) fn maps_of(&self, id: ComponentId) -> Vec<(String, BorrowedFd<'_>)> {
        self.maps[&id]
            .iter()
            .filter_map(|cm| Some((cm.orig.clone(), self.object.map_at(cm.index)?.fd()?)))
            .collect()
    }
}

/// The chain's one licence; refused if the kernel would refuse a component
/// under it, naming the components that conflict.
fn chain_license(members: &[&Member]) -> Result<String> {
    let chain = license::of_chain(members.iter().map(|m| m.component.license()));
    if license::gpl_compatible(&chain) {
        return Ok(chain);
    }
    if let Some(gpl) = members
        .iter()
        .find(|m| !m.component.gpl_only_helpers.is_empty())
    {
        let other = members
            .iter()
            .find(|m| !license::gpl_compatible(m.component.license()))
            .expect("a component gave the chain its licence");
        return Err(Error::Unsupported(format!(
            "component {}:{} calls {}, which the kernel allows GPL-compatible programs only, and {}:{} is licensed '{}', which makes the linked chain non-GPL (a linked chain has one licence); use a dynamic chain, where each component keeps its own",
            gpl.component.source(),
            gpl.component.program(),
            gpl.component.gpl_only_helpers.join(", "),
            other.component.source(),
            other.component.program(),
            chain
        )));
    }
    Ok(chain)
}

/// Rewrites and links `members`: the object, and what each component's names became.
pub(crate) fn build(
    members: &[Member],
    opts: &Build,
) -> Result<(Vec<u8>, HashMap<ComponentId, Renames>)> {
    let spare = opts.spare.unwrap_or(0);
    if members.len() + spare > MAX_COMPONENTS {
        return Err(Error::TooManyComponents {
            count: members.len() + spare,
            max: MAX_COMPONENTS,
        });
    }
    let order = ordered(members);
    let strip = order.iter().any(|m| !m.component.has_func_info);
    if let (Some(_), Some(m)) = (
        opts.spare,
        order.iter().find(|m| !m.component.has_func_info),
    ) {
        return Err(Error::Unsupported(format!(
            "{}:{}: an open chain links components as global functions, which need BTF (build with -g)",
            m.component.source(),
            m.component.program()
        )));
    }
    // A component that makes tail calls runs as a global function, whose
    // result the verifier takes as unknown: before Linux commit
    // e3245f899043 ("bpf: properly verify tail call behavior"; 6.1 and
    // 6.12 lack it) the verifier takes a static subprogram that tail-calls
    // to return its fall-through value, and with the frozen config drops
    // the rest of the chain. Global functions need BTF func info in all.
    let global: Vec<usize> = match (opts.spare, opts.static_tail_callers || strip) {
        (None, false) => (0..order.len())
            .filter(|&i| order[i].component.tail_calls)
            .collect(),
        _ => Vec::new(),
    };
    let slots = Slots {
        prefix: root::SLOT_PREFIX,
        used: order.len() + spare,
        global,
    };
    let object = match opts.spare {
        Some(_) => root::OBJECT_OPEN,
        None => root::OBJECT,
    };
    let root = rewrite::prepare_root(
        object,
        &config(&order, opts.counting, spare).to_bytes(),
        &slots,
        strip,
    )?;
    let license = rewrite::license_object(&chain_license(&order)?)?;
    let mut rewritten = Vec::new();
    let mut renames = HashMap::new();
    for (slot, m) in order.iter().enumerate() {
        let c = &m.component;
        let spec = Spec {
            entry: c.program(),
            entry_as: &root::slot_function(slot),
            tag: &format!("c{}", m.tag),
            strip_debug_info: strip,
            hidden: opts.spare.is_none() && !slots.global.contains(&slot),
        };
        let (bytes, r) = rewrite::rewrite(&c.bytes, c.source(), &spec)?;
        rewritten.push((c.label(), bytes));
        renames.insert(m.id, r);
    }
    let mut inputs: Vec<(&str, &[u8])> = vec![("license", &license), ("root", &root)];
    inputs.extend(rewritten.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
    Ok((crate::sys::link(&inputs)?, renames))
}

/// The linked chain of `members` as an object for other loaders: with a
/// root generated for it where the chain is sealed, else as linked.
pub(crate) fn link(members: &[Member], opts: &Build) -> Result<Vec<u8>> {
    let (bytes, _) = build(members, opts)?;
    if !opts.inline || opts.spare.is_some() {
        return Ok(bytes);
    }
    let config = config(&ordered(members), opts.counting, 0);
    match inline_object::generate(&bytes, &config, opts.counting) {
        Ok(generated) => Ok(generated),
        Err(why) => {
            log::info!("the object keeps its compiled root: {why}");
            Ok(bytes)
        }
    }
}

/// Builds and loads `members`, taking over the maps in `reuse`. What this
/// kernel would run wrongly is the caller's to refuse first
/// (features::check_static): the probes of what it runs load through here
/// too. A sealed chain runs a root generated for it, its components copied
/// in, unless that fails to load, when it runs as linked.
pub(crate) fn load(members: &[Member], opts: &Build, reuse: &Reuse) -> Result<Linked> {
    let (bytes, renames) = build(members, opts)?;
    if opts.inline && opts.spare.is_none() {
        match load_generated(&bytes, members, &renames, opts, reuse) {
            Ok(linked) => return Ok(linked),
            Err(why) => log::info!("the chain runs as linked, without a generated root: {why}"),
        }
    }
    let (object, maps) = open(bytes, members, &renames, opts, reuse)?;
    if let Err((errno, log)) = object.load() {
        return Err(blame(members, opts, errno, &log));
    }
    finish(
        Linked {
            object,
            maps,
            spare: opts.spare,
            generated: None,
        },
        members,
        reuse,
    )
}

/// Opens the linked object, taking over the maps in `reuse` and pinning
/// what its components pin by name.
fn open(
    bytes: Vec<u8>,
    members: &[Member],
    renames: &HashMap<ComponentId, Renames>,
    opts: &Build,
    reuse: &Reuse,
) -> Result<(Object, HashMap<ComponentId, Vec<ComponentMap>>)> {
    let object = Object::open(bytes, "xdpchain").map_err(|(e, log)| {
        Error::Link(format!(
            "libbpf cannot open the linked chain ({e}): {}",
            log.trim()
        ))
    })?;
    // Tail-call targets of components, kept in their own sections.
    object
        .untyped_as_xdp()
        .map_err(|e| Error::os("type programs as XDP", e))?;
    if plan::frags(members) {
        object
            .program(root::PROG_NAME)
            .expect("the root has its program")
            .set_frags()
            .map_err(|e| Error::os("make the chain multi-buffer aware", e))?;
    }

    let mut maps = HashMap::new();
    let mut by_name = Vec::new();
    // A map that components pinning the same name share is set up once.
    let mut done = HashSet::new();
    for m in members {
        let kept = reuse.maps.get(&m.tag);
        let r = &renames[&m.id];
        let mut own = Vec::new();
        for (orig, new) in r.maps.iter().chain(&r.data_sections) {
            let Some(index) = object.map_index(new) else {
                continue;
            };
            let map = object.map_at(index).expect("just found");
            match kept.and_then(|k| k.get(orig)) {
                _ if !done.insert(index) => {}
                Some(fd) => map.reuse_fd(fd.as_fd(), new)?,
                None => by_name.push((map, orig.clone())),
            }
            own.push(ComponentMap {
                orig: orig.clone(),
                index,
            });
        }
        maps.insert(m.id, own);
    }
    if let (Some(fd), Some(map)) = (&reuse.stats, object.map(root::STATS_MAP)) {
        map.reuse_fd(fd.as_fd(), root::STATS_MAP)?;
    }
    pin_by_name(by_name, &opts.pin_root)?;
    Ok((object, maps))
}

/// Rows of new components may hold counts of components gone before.
fn finish(linked: Linked, members: &[Member], reuse: &Reuse) -> Result<Linked> {
    for m in members.iter().filter(|m| !reuse.maps.contains_key(&m.tag)) {
        counters::clear(linked.stats(), m.id.0)?;
    }
    Ok(linked)
}

/// Loads the linked chain with a root generated for it (inline.rs) in
/// place of the compiled one; Err says why not, and leaves nothing loaded.
fn load_generated(
    bytes: &[u8],
    members: &[Member],
    renames: &HashMap<ComponentId, Renames>,
    opts: &Build,
    reuse: &Reuse,
) -> std::result::Result<Linked, String> {
    let (object, maps) =
        open(bytes.to_vec(), members, renames, opts, reuse).map_err(|e| e.to_string())?;
    object
        .prepare()
        .map_err(|(e, log)| format!("libbpf cannot prepare it ({e}): {}", log.trim()))?;
    let prog = object
        .program(root::PROG_NAME)
        .expect("the root has its program");
    let insns = prog.insns();
    let (func_info, line_info) = prog.btf_ext_info();
    let (btf_fd, btf) = object.btf().ok_or("the chain has no BTF")?;
    let btf = Btf::parse(&btf).map_err(|e| e.to_string())?;
    let order = ordered(members);
    let config = config(&order, opts.counting, 0);
    let mut slots = inline::slots(&config, &func_info, &btf)?;
    let map_fd = |name| object.find_map(name).and_then(|m| m.fd());
    let counting = match (map_fd(root::STATS_MAP), map_fd(root::CTL_SECTION)) {
        (Some(stats), Some(ctl)) if opts.counting => Some(inline::CountMaps {
            stats: stats.as_raw_fd(),
            ctl: opts.timing_code.then(|| ctl.as_raw_fd()),
            dump: inline::DumpFns::find(&func_info, &btf),
        }),
        _ => None,
    };
    let program = inline::Program {
        insns: &insns,
        func_info: &func_info,
        line_info: &line_info,
    };
    let flags = prog.flags();
    prog.set_autoload(false)
        .map_err(|e| format!("libbpf keeps the compiled root: {e}"))?;
    object.load().map_err(|(e, log)| {
        format!(
            "the chain's other programs do not load ({e}): {}",
            log.trim()
        )
    })?;
    let license = chain_license(&order).map_err(|e| e.to_string())?;
    // The copied frames share the root's, which the frames of what it
    // calls (and the kernel's own use of it, as for bpf_loop) add to: where
    // the kernel finds the sum too deep, the deepest copy becomes a call.
    let (fd, generated) = loop {
        let generated = inline::generate(&program, &slots, counting)?;
        let loaded = load_xdp(&XdpProgram {
            name: root::PROG_NAME,
            insns: &generated.insns,
            license: &license,
            btf: btf_fd,
            func_info: &generated.func_info,
            line_info: &generated.line_info,
            flags,
        });
        match (
            loaded,
            inline::deepest(&program, &slots, &generated.inlined),
        ) {
            (Ok(fd), _) => break (fd, generated),
            (Err((_, log)), Some(n)) if log.contains("stack") => {
                let why = log
                    .lines()
                    .find(|l| l.contains("stack"))
                    .unwrap_or_default();
                log::debug!("slot {n} stays a call: the root's frame is too deep with it ({why})");
                slots[n].copyable = false;
            }
            (Err((e, log)), _) => {
                return Err(format!(
                    "the generated root does not load ({e}): {}",
                    log.trim()
                ))
            }
        }
    };
    // status and other processes find the config and the counters among
    // the root's maps.
    for name in [root::CONFIG_SECTION, root::STATS_MAP, root::CTL_SECTION] {
        let map = object.find_map(name).and_then(|m| m.fd());
        let map = map.ok_or_else(|| format!("no map {name}"))?;
        bind_map(fd.as_fd(), map).map_err(|e| format!("cannot bind {name} to the root: {e}"))?;
    }
    log::info!("{generated}");
    finish(
        Linked {
            object,
            maps,
            spare: None,
            generated: Some(fd),
        },
        members,
        reuse,
    )
    .map_err(|e| e.to_string())
}

/// Tells which component the kernel refused: each is loaded alone under the
/// root until one fails. If none fails alone, the chain as a whole did.
fn blame(members: &[Member], opts: &Build, errno: std::io::Error, log: &str) -> Error {
    if members.len() > 1 && errno.raw_os_error() != Some(libc::EPERM) {
        for m in ordered(members) {
            if let Err(e @ Error::Verifier { .. }) =
                load(std::slice::from_ref(m), opts, &Reuse::default())
            {
                return e;
            }
        }
    }
    let component = match members {
        [m] if log.contains("PROG LOAD LOG") || errno.raw_os_error() == Some(libc::EACCES) => {
            Some(m.component.label())
        }
        _ => None,
    };
    Error::refused("load the chain", component, errno, log)
}
