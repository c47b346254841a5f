//! Static chains: the components rewritten and linked with the root program
//! into one BPF program, loaded with the maps of the components that stay.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::counters;
use crate::error::{Error, Result};
use crate::plan::{self, config, ordered, Build, ComponentId, Member, Reuse};
use crate::root::{self, MAX_COMPONENTS};
use crate::sys::{bind_map, load_xdp, pin_by_name, Object, Refusal, XdpProgram};
use xdpchain_obj::btf::Btf;
use xdpchain_obj::inline;
use xdpchain_obj::inline_object;
use xdpchain_obj::license;
use xdpchain_obj::rewrite::{self, Renames, Slots, Spec};

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
    crate::limits::check_chain("the chain", members.iter().map(|m| &m.component.census))?;
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
    // the rest of the chain. So does a traceable one, which a generated
    // root then calls instead of copying. Global functions need BTF func
    // info in all.
    if let (true, Some(m)) = (strip, order.iter().find(|m| m.component.traceable())) {
        return Err(Error::Unsupported(format!(
            "{}: a traceable component stays a global function, which needs BTF in every \
             component of the chain (build with -g)",
            m.component.label()
        )));
    }
    let global: Vec<usize> = match opts.spare {
        None => (0..order.len())
            .filter(|&i| {
                let c = &order[i].component;
                (c.tail_calls && !opts.static_tail_callers && !strip) || c.traceable()
            })
            .collect(),
        Some(_) => Vec::new(),
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
    if let Err(Refusal { errno, log }) = object.load() {
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
    let object = Object::open(bytes, "xdpchain").map_err(|Refusal { errno: e, log }| {
        Error::Link(format!(
            "libbpf cannot open the linked chain ({}): {}",
            crate::error::os_text(&e),
            log.trim()
        ))
    })?;
    // Tail-call targets of components, kept in their own sections, load
    // as XDP; programs of other types stay out.
    object
        .only_xdp()
        .map_err(|e| Error::os("type programs as XDP", e))?;
    object
        .program(root::PROG_NAME)
        .expect("the root has its program")
        .set_load_options(
            plan::frags(members) && crate::sys::multi_buffer_xdp()?,
            opts.device,
        )
        .map_err(|e| Error::os("set the chain's load flags", e))?;

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
        counters::clear(linked.stats(), m.row)?;
    }
    Ok(linked)
}

/// Why the verifier refused a generated root, as far as the inliner acts
/// on it.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    /// Its frames together pass the kernel's stack limit ("combined stack
    /// size of N calls is M. Too large", and the kernel's other "stack ...
    /// Too large" lines): a slot copied in made them deeper.
    StackTooLarge(String),
    /// Anything else, in the verifier's words.
    Other(String),
}

impl Refused {
    fn of(log: &str, errno: &std::io::Error) -> Refused {
        match log
            .lines()
            .find(|l| l.contains("stack") && l.trim_end().ends_with("Too large"))
        {
            Some(line) => Refused::StackTooLarge(line.trim().to_string()),
            None => Refused::Other(crate::error::refusal(log, errno)),
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::StackTooLarge(why) | Refused::Other(why) => f.write_str(why),
        }
    }
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
    object.prepare().map_err(|Refusal { errno: e, log }| {
        format!(
            "libbpf cannot prepare it ({}): {}",
            crate::error::os_text(&e),
            log.trim()
        )
    })?;
    let prog = object
        .program(root::PROG_NAME)
        .expect("the root has its program");
    let insns = prog.insns();
    let (func_info, line_info) = prog.btf_ext_info();
    let (btf_fd, btf) = object.btf().ok_or("the chain has no BTF")?;
    let btf = Btf::parse(&btf).map_err(|e| e.to_string())?;
    let order = ordered(members);
    let config = config(&order, opts.counting, 0);
    let mut slots = inline::slots(&config, &func_info, &btf).map_err(|e| e.to_string())?;
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
    object.load().map_err(|Refusal { errno: e, log }| {
        format!(
            "the chain's other programs do not load ({}): {}",
            crate::error::os_text(&e),
            log.trim()
        )
    })?;
    let license = chain_license(&order).map_err(|e| e.to_string())?;
    // The copied frames share the root's, which the frames of what it
    // calls (and the kernel's own use of it, as for bpf_loop) add to: where
    // the kernel finds the sum too deep, the deepest copy becomes a call.
    let (fd, generated) = loop {
        let generated = inline::generate(&program, &slots, counting).map_err(|e| e.to_string())?;
        let loaded = load_xdp(&XdpProgram {
            name: root::PROG_NAME,
            insns: &generated.insns,
            license: &license,
            btf: btf_fd,
            func_info: &generated.func_info,
            line_info: &generated.line_info,
            flags,
            ifindex: opts.device.unwrap_or(0),
        });
        match (
            loaded,
            inline::deepest(&program, &slots, &generated.inlined),
        ) {
            (Ok(fd), _) => break (fd, generated),
            (Err(Refusal { errno: e, log }), deepest) => match (Refused::of(&log, &e), deepest) {
                (Refused::StackTooLarge(why), Some(n)) => {
                    log::debug!(
                        "slot {n} stays a call: the root's frame is too deep with it ({why})"
                    );
                    slots[n].copyable = false;
                }
                (refused, _) => {
                    log::debug!("the generated root's verifier log:\n{}", log.trim());
                    return Err(format!("the generated root does not load: {refused}"));
                }
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_stack_limit_makes_a_slot_stay_a_call() {
        let eacces = std::io::Error::from_raw_os_error(libc::EACCES);
        let deep = "0: (bf) r6 = r1\ncombined stack size of 3 calls is 544. Too large\n\
                    processed 90 insns\n";
        assert_eq!(
            Refused::of(deep, &eacces),
            Refused::StackTooLarge("combined stack size of 3 calls is 544. Too large".into())
        );
        // A refusal that speaks of the stack for another reason is no such
        // thing (the old test looked for "stack" anywhere).
        let read =
            "12: (79) r1 = *(u64 *)(r10 -600)\ninvalid read from stack R10 off=-600 size=8\n";
        assert_eq!(
            Refused::of(read, &eacces),
            Refused::Other("invalid read from stack R10 off=-600 size=8".into())
        );
    }

    // The object layer's output through libbpf's linker: what it rewrites
    // and generates for the test component (xdpchain-obj/bpf/testdata),
    // read back, with no kernel and no privileges. (A root that shares its
    // section with tail-call targets is tested on the kernel, in
    // tests/inline.rs.)

    use object::read::elf::ElfFile64;
    use object::{Object as _, ObjectSection as _, ObjectSymbol as _, RelocationTarget};
    use xdpchain_obj::btf::BtfExt;
    use xdpchain_obj::inline_object::{word, FUNC_INFO, LINE_INFO};
    use xdpchain_obj::insn::{decode_all, Insn, CLASS_JMP, LD_IMM64, OP_CALL, SIZE};

    use crate::{Chain, Component};

    const COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/test_component.bpf.o"));

    #[test]
    fn two_copies_link_side_by_side() {
        let spec = |tag, slot| Spec {
            entry: "xdp_first",
            entry_as: slot,
            tag,
            strip_debug_info: false,
            hidden: true,
        };
        let (a, _) =
            rewrite::rewrite(COMPONENT, "component.o", &spec("c1", "xdpchain_slot_0")).unwrap();
        let (b, _) =
            rewrite::rewrite(COMPONENT, "component.o", &spec("c2", "xdpchain_slot_1")).unwrap();
        let license = rewrite::license_object("GPL").unwrap();
        let linked = crate::sys::link(&[("license", &license), ("a", &a), ("b", &b)])
            .expect("libbpf's linker takes both");
        let file = object::File::parse(&*linked).unwrap();
        let names: HashSet<&str> = file.symbols().filter_map(|s| s.name().ok()).collect();
        for s in [
            "xdpchain_slot_0",
            "xdpchain_slot_1",
            "c1_hits",
            "c2_hits",
            "c1_seen",
            "c2_seen",
        ] {
            assert!(names.contains(s), "{s} missing: {names:?}");
        }
        let license = file.section_by_name("license").unwrap();
        assert_eq!(license.data().unwrap(), b"GPL\0");
    }

    fn linked(inline: bool) -> Vec<u8> {
        let mut chain = Chain::new();
        chain.set_inlining(inline);
        chain.set_counting(true);
        for _ in 0..2 {
            let c = Component::from_bytes(COMPONENT, "component.o", Some("xdp_first")).unwrap();
            chain.add(c).unwrap();
        }
        chain.link().unwrap()
    }
    #[test]
    fn the_root_is_generated_with_its_relocations_and_records() {
        let (bytes, compiled) = (linked(true), linked(false));
        let file = ElfFile64::<object::LittleEndian>::parse(&*bytes).unwrap();
        let sym = |name: &str| file.symbols().find(|s| s.name() == Ok(name)).unwrap();
        let root = sym(root::PROG_NAME);
        let xdp = file
            .section_by_index(root.section_index().unwrap())
            .unwrap();
        let text = file.section_by_name(".text").unwrap();
        let code: Vec<Insn> = decode_all(xdp.data().unwrap()).collect();
        let other = ElfFile64::<object::LittleEndian>::parse(&*compiled).unwrap();
        let compiled_root = other.symbols().find(|s| s.name() == Ok(root::PROG_NAME));
        assert!(root.size() < compiled_root.unwrap().size());

        // In the root, relocations apply to map references and to calls of
        // the functions that stay in .text (bump, shared_helper), at their
        // starts.
        let starts: Vec<u64> = file
            .symbols()
            .filter(|s| {
                s.section_index() == Some(text.index()) && s.kind() == object::SymbolKind::Text
            })
            .map(|s| s.address())
            .collect();
        let (mut calls, mut maps) = (0, Vec::new());
        for (off, r) in xdp.relocations() {
            if off >= root.size() {
                continue;
            }
            let i = code[off as usize / SIZE];
            let RelocationTarget::Symbol(y) = r.target() else {
                panic!("a relocation against no symbol");
            };
            let y = file.symbol_by_index(y).unwrap();
            if i.code == CLASS_JMP | OP_CALL {
                assert_eq!(y.section_index(), Some(text.index()));
                let to = (y.address() as i64 / SIZE as i64 + i.imm as i64 + 1) as u64 * SIZE as u64;
                assert!(starts.contains(&to), "a call into the middle of a function");
                calls += 1;
            } else {
                assert_eq!(i.code, LD_IMM64);
                maps.push(y.name().unwrap().to_string());
            }
        }
        // Each copy calls shared_helper and bump, and refers to its map and
        // globals (port is shared_helper's); the counters count after each;
        // the control word is read at the start (and cleared there), where
        // a dump starts, and after each slot its dump point is.
        assert_eq!(calls, 4 + 1 + 2);
        maps.sort();
        let expected = [
            "c0_hits", "c0_limit", "c0_seen", "c1_hits", "c1_limit", "c1_seen",
        ];
        let stats = [root::STATS_MAP; 2];
        // Twice for timing, once for the dump deadline.
        let ctl = [root::CTL_VAR; 3];
        assert_eq!(maps, [&expected[..], &ctl, &stats].concat());

        // The root's func_info is its own only; its lines are in order,
        // the copies' among them.
        let btf = Btf::parse(file.section_by_name(".BTF").unwrap().data().unwrap()).unwrap();
        let ext = file.section_by_name(".BTF.ext").unwrap();
        let ext = BtfExt::parse(ext.data().unwrap()).unwrap();
        let name = xdp.name().unwrap();
        let funcs: Vec<u64> = ext
            .records(&btf, FUNC_INFO, name)
            .iter()
            .map(|r| word(r, 0).into())
            .collect();
        assert_eq!(funcs, [root.address()]);
        let lines: Vec<u64> = ext
            .records(&btf, LINE_INFO, name)
            .iter()
            .map(|r| word(r, 0).into())
            .collect();
        assert!(lines.is_sorted());
        let in_root = lines.iter().filter(|&&l| l < root.size()).count();
        assert!(in_root > 2, "the copies brought their lines");
    }
}
