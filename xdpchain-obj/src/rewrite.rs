//! The ELF rewriter: turns an unchanged XDP object into one that links under
//! the root program. Its entry program becomes a hidden global function in
//! `.text` named after its slot; every other global it defines gets the
//! component's prefix, so that objects defining the same names (xdp-tools'
//! `filter_ports`, every object's `_license`) link side by side; its `.data`
//! and `.bss` sections get the prefix too, so each stays a map of its own that
//! a rebuild can reuse. Symbols, relocations, BTF and BTF.ext move together.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use object::build::elf::{Builder, Relocation, Section, SectionData, SectionId, SymbolId};
use object::build::{ByteString, Bytes, Id};
use object::elf;
use object::read::elf::{FileHeader, SectionHeader};
use object::{LittleEndian, ReadRef};

use crate::btf::{Btf, BtfExt, Fate, Kind, Linkage, Part};
use crate::error::{Error, Result};
use crate::insn::{self, Insn};
use crate::limits::shown;
use crate::root::CONFIG_SECTION;

const MAX_DATA_SECTION: u64 = 1 << 30;

/// How one component is rewritten.
pub struct Spec<'a> {
    /// Function name of the chosen XDP program.
    pub entry: &'a str,
    /// Its name in the chain: the root's slot function it defines.
    pub entry_as: &'a str,
    /// Prepended to every other global name, and tagged onto data sections.
    pub tag: &'a str,
    /// Drop func_info and line_info (some other linked object has none).
    pub strip_debug_info: bool,
    /// Hide the entry, so the verifier checks it in its caller's context;
    /// visible, it is a global function that extensions may replace.
    pub hidden: bool,
}

/// What the rewriter renamed, so the chain can find things by original name.
#[derive(Debug, Default, Clone)]
pub struct Renames {
    /// (original map name, name in the chain), for maps in `.maps`.
    pub maps: Vec<(String, String)>,
    /// (original section, renamed section), for `.data*` and `.bss*`.
    pub data_sections: Vec<(String, String)>,
}

fn malformed(name: &str, reason: impl ToString) -> Error {
    Error::Malformed {
        name: name.to_string(),
        reason: reason.to_string(),
    }
}

fn is_code(s: &Section<'_>) -> bool {
    s.sh_type == elf::SHT_PROGBITS && s.sh_flags.0 & elf::SHF_EXECINSTR.0 != 0
}

fn is_dropped(name: &[u8]) -> bool {
    // DWARF and the relocations of DWARF and BTF refer to symbol indices and
    // offsets that the rewrite changes; libbpf needs none of them.
    name.starts_with(b".debug")
        || name.starts_with(b".rel.debug")
        || name.starts_with(b".rel.BTF")
        || name == b".llvm_addrsig"
}

/// `.data[.X]` becomes `.data.TAG[.X]`, and `.bss[.X]` becomes
/// `.data.TAG_bss[.X]`: libbpf before 1.2 (iproute2's and bpftool's on
/// Debian 12) knows custom `.data.*` sections but no custom `.bss.*`.
/// `license` and `version` move aside, kept but unread: the linker takes
/// one text of each across its inputs (and compares them unchecked: two
/// zeroed `version` sections crashed it), and the chain's license comes
/// from its own object. So do those that a linked chain, chained again,
/// moved aside before.
fn section_rename(name: &str, tag: &str) -> Option<String> {
    for aside in ["license", "version"] {
        if name == aside {
            return Some(format!(".xdpchain.{aside}.{tag}"));
        }
        if let Some(rest) = name
            .strip_prefix(".xdpchain.")
            .and_then(|r| r.strip_prefix(aside))
            .and_then(|r| r.strip_prefix('.'))
        {
            return Some(format!(".xdpchain.{aside}.{tag}.{rest}"));
        }
    }
    for (base, to) in [
        (".data", format!(".data.{tag}")),
        (".bss", format!(".data.{tag}_bss")),
    ] {
        if name == base {
            return Some(to);
        }
        if let Some(rest) = name.strip_prefix(base).and_then(|r| r.strip_prefix('.')) {
            return Some(format!("{to}.{rest}"));
        }
    }
    None
}

fn sec_name(s: &Section<'_>) -> String {
    String::from_utf8_lossy(&s.name).into_owned()
}

pub fn section_bytes<'a>(s: &'a Section<'_>) -> &'a [u8] {
    match &s.data {
        SectionData::Data(d) => d,
        _ => &[],
    }
}

/// The section `name`, unless deleted.
pub fn section_named(b: &Builder<'_>, name: &str) -> Option<SectionId> {
    b.sections
        .iter()
        .find(|s| !s.delete && s.name.as_slice() == name.as_bytes())
        .map(|s| s.id())
}

pub fn relocation_section(b: &Builder<'_>, target: SectionId) -> Option<SectionId> {
    b.sections
        .iter()
        .find(|s| !s.delete && s.sh_type == elf::SHT_REL && s.sh_info_section == Some(target))
        .map(|s| s.id())
}

/// An object as the builder reads it. clang's `.llvm_addrsig` section (a
/// list of symbol indices, useless to BPF and stale once symbols change)
/// has a type the builder does not know: it reads as plain data, to be
/// dropped. Only the section headers are copied to retype it, not the
/// object, which may be tens of megabytes.
#[derive(Clone, Copy)]
struct Readable<'a> {
    file: &'a [u8],
    /// The retyped section headers, and where they are in the file.
    headers: Option<(u64, &'a [u8])>,
}

impl<'a> Readable<'a> {
    /// `bytes` read through `headers`, from [`retyped_headers`].
    fn new(file: &'a [u8], headers: &'a Option<(u64, Vec<u8>)>) -> Self {
        let headers = headers.as_ref().map(|(at, h)| (*at, h.as_slice()));
        Self { file, headers }
    }
}

impl<'a> ReadRef<'a> for Readable<'a> {
    fn len(self) -> std::result::Result<u64, ()> {
        ReadRef::len(self.file)
    }

    fn read_bytes_at(self, offset: u64, size: u64) -> std::result::Result<&'a [u8], ()> {
        match self.headers {
            Some((at, headers))
                if offset >= at
                    && offset
                        .checked_add(size)
                        .is_some_and(|end| end - at <= headers.len() as u64) =>
            {
                headers.read_bytes_at(offset - at, size)
            }
            _ => self.file.read_bytes_at(offset, size),
        }
    }

    fn read_bytes_at_until(
        self,
        range: Range<u64>,
        delimiter: u8,
    ) -> std::result::Result<&'a [u8], ()> {
        // Names, and whatever else is not the header table itself, read as
        // the file holds them (as libbpf reads them): only types differ.
        self.file.read_bytes_at_until(range, delimiter)
    }
}

/// A copy of the section headers of `bytes`, with every `.llvm_addrsig`
/// retyped, and their offset; None if there is none to retype.
fn retyped_headers(bytes: &[u8]) -> Option<(u64, Vec<u8>)> {
    const SHT_LLVM_ADDRSIG: elf::SectionType = elf::SectionType(0x6fff_4c03);
    let e = LittleEndian;
    let header = elf::FileHeader64::<LittleEndian>::parse(bytes).ok()?;
    // Headers the parser refuses are left for the builder to refuse.
    let headers = header.section_headers(e, bytes).ok()?;
    let retyped: Vec<usize> = (0..headers.len())
        .filter(|&i| headers[i].sh_type(e) == SHT_LLVM_ADDRSIG)
        .collect();
    if retyped.is_empty() {
        return None;
    }
    let at = header.e_shoff(e);
    let mut copy = bytes
        .read_bytes_at(at, size_of_val(headers) as u64)
        .ok()?
        .to_vec();
    let entry = size_of::<elf::SectionHeader64<LittleEndian>>();
    for i in retyped {
        copy[i * entry + 4..][..4].copy_from_slice(&elf::SHT_PROGBITS.0.to_le_bytes());
    }
    Some((at, copy))
}

/// clang shares one string table between section and symbol names; the
/// builder writes them apart and needs a section for the former.
fn ensure_section_strings(b: &mut Builder<'_>) {
    if !b
        .sections
        .iter()
        .any(|s| matches!(s.data, SectionData::SectionString))
    {
        let s = b.sections.add();
        s.name = ByteString::from(&b".shstrtab"[..]);
        s.sh_type = elf::SHT_STRTAB;
        s.sh_addralign = 1;
        s.data = SectionData::SectionString;
    }
}

/// Parses `data` (from [`readable`]) for editing, without what libbpf
/// does not need.
pub fn open<'a>(data: impl ReadRef<'a>, name: &str) -> Result<Builder<'a>> {
    let mut b = Builder::read(data).map_err(|e| malformed(name, e))?;
    ensure_section_strings(&mut b);
    for s in b.sections.iter_mut() {
        if is_dropped(&s.name) {
            s.delete = true;
        }
    }
    Ok(b)
}

pub fn finish(mut b: Builder<'_>, name: &str) -> Result<Vec<u8>> {
    b.delete_orphans();
    let mut out = Vec::new();
    b.write(&mut out).map_err(|e| malformed(name, e))?;
    Ok(out)
}

/// Rewrites the object `bytes` (named `name` in errors) for the chain.
pub fn rewrite(bytes: &[u8], name: &str, spec: &Spec<'_>) -> Result<(Vec<u8>, Renames)> {
    let headers = retyped_headers(bytes);
    let mut b = open(Readable::new(bytes, &headers), name)?;
    let entry = find_entry(&b, name, spec)?;
    let unneeded = unneeded(&b, entry.sym);
    let has_btf = b.sections.iter().any(|s| s.name.as_slice() == b".BTF");
    let mut renames = Renames::default();
    let mut renamed = rename_globals(&mut b, name, spec, entry.sym, has_btf, &mut renames)?;
    let base = move_entry(&mut b, name, spec, &entry)?;
    let dropped = drop_unneeded(&mut b, &unneeded);
    renamed.sections = rename_data_sections(&mut b, name, spec.tag, &mut renames)?;
    rename_rel_sections(&mut b);
    let moved = Moved {
        from: sec_name(b.sections.get(entry.sec)),
        range: entry.range.clone(),
        base,
    };
    if has_btf {
        follow_in_btf(&mut b, name, spec, &moved, &dropped, &renamed)?;
    } else {
        let btf = b.sections.add();
        btf.name = ByteString::from(&b".BTF"[..]);
        btf.sh_type = elf::SHT_PROGBITS;
        btf.sh_addralign = 4;
        btf.data = SectionData::Data(Btf::entry_only(spec.entry_as).into());
    }
    Ok((finish(b, name)?, renames))
}

/// The entry program: its symbol, its section and its range there.
struct Entry {
    sym: SymbolId,
    sec: SectionId,
    range: Range<u64>,
}

fn find_entry(b: &Builder<'_>, name: &str, spec: &Spec<'_>) -> Result<Entry> {
    b.symbols
        .iter()
        .find(|s| s.name.as_slice() == spec.entry.as_bytes() && s.st_type() == elf::STT_FUNC)
        .and_then(|s| {
            Some(Entry {
                sym: s.id(),
                sec: s.section?,
                range: s.st_value..s.st_value.checked_add(s.st_size)?,
            })
        })
        .ok_or_else(|| {
            malformed(
                name,
                format!("no function symbol for program {}", spec.entry),
            )
        })
}

/// What goes with the programs other than the entry: their symbols, and
/// the sections they leave empty (by index). A program that a map refers
/// to (a tail-call target in a declaratively initialized PROG_ARRAY)
/// stays.
struct Unneeded {
    syms: HashSet<usize>,
    secs: HashSet<usize>,
}

fn unneeded(b: &Builder<'_>, entry: SymbolId) -> Unneeded {
    let referenced = referenced_from_data(b);
    let text = section_named(b, ".text");
    // Functions by section, found once: objects may have many of both.
    let mut functions: HashMap<usize, Vec<SymbolId>> = HashMap::new();
    for y in b.symbols.iter() {
        if let (Some(sec), elf::STT_FUNC) = (y.section, y.st_type()) {
            functions.entry(sec.index()).or_default().push(y.id());
        }
    }
    let mut out = Unneeded {
        syms: HashSet::new(),
        secs: HashSet::new(),
    };
    for sec in b
        .sections
        .iter()
        .filter(|s| is_code(s) && Some(s.id()) != text)
    {
        let others = functions.remove(&sec.id().index()).unwrap_or_default();
        let (kept, dropped): (Vec<_>, Vec<_>) = others
            .into_iter()
            .filter(|&y| y != entry)
            .partition(|y| referenced.contains(&y.index()));
        if kept.is_empty() {
            out.secs.insert(sec.id().index());
        }
        out.syms.extend(dropped.iter().map(|y| y.index()));
    }
    out
}

/// Old names to new: of functions, variables and sections.
#[derive(Default)]
struct Renamed {
    funcs: HashMap<String, String>,
    vars: HashMap<String, String>,
    sections: HashMap<String, String>,
}

/// Gives every global the component's prefix (the entry its slot's name;
/// a map pinned by name keeps its name, weak), before anything is deleted,
/// so that BTF of dropped programs cannot clash either. Without BTF the
/// linker cannot take globals (and libbpf no maps): all but the entry
/// become local, which cannot clash either.
fn rename_globals(
    b: &mut Builder<'_>,
    name: &str,
    spec: &Spec<'_>,
    entry: SymbolId,
    has_btf: bool,
    renames: &mut Renames,
) -> Result<Renamed> {
    let maps_sec = section_named(b, ".maps");
    let pinned = pinned_by_name(b, name)?;
    let mut out = Renamed::default();
    for sym in b.symbols.iter_mut() {
        if sym.section.is_none() || sym.st_bind() == elf::STB_LOCAL || sym.name.is_empty() {
            continue;
        }
        if !has_btf && sym.id() != entry {
            let st_type = sym.st_type();
            sym.set_st_info(elf::STB_LOCAL, st_type);
            continue;
        }
        let old = String::from_utf8_lossy(&sym.name).into_owned();
        let new = if sym.id() == entry {
            spec.entry_as.to_string()
        } else if sym.section == maps_sec && pinned.contains(&old) {
            // The name is what loaders share it by, in this chain and
            // outside; weak, so that components declaring the same map
            // link to one, as they would share its pin.
            let st_type = sym.st_type();
            sym.set_st_info(elf::STB_WEAK, st_type);
            old.clone()
        } else {
            format!("{}_{old}", spec.tag)
        };
        sym.name = ByteString::from(new.clone().into_bytes());
        if sym.st_type() == elf::STT_FUNC {
            out.funcs.insert(old, new);
        } else {
            if sym.section == maps_sec {
                renames.maps.push((old.clone(), new.clone()));
            }
            out.vars.insert(old, new);
        }
    }
    Ok(out)
}

/// Moves the entry's code to the end of `.text` (made if missing), with
/// its symbols and relocations, a global function, hidden as `spec` says;
/// returns the entry's offset there.
fn move_entry(b: &mut Builder<'_>, name: &str, spec: &Spec<'_>, entry: &Entry) -> Result<u64> {
    let text = match section_named(b, ".text") {
        Some(t) => t,
        None => {
            let t = b.sections.add();
            t.name = ByteString::from(&b".text"[..]);
            t.sh_type = elf::SHT_PROGBITS;
            t.sh_flags = elf::SectionFlags(elf::SHF_ALLOC.0 | elf::SHF_EXECINSTR.0);
            t.sh_addralign = 8;
            t.data = SectionData::Data(Bytes::default());
            t.id()
        }
    };
    let base = section_bytes(b.sections.get(text)).len() as u64;
    let code = section_bytes(b.sections.get(entry.sec))
        .get(entry.range.start as usize..entry.range.end as usize)
        .ok_or_else(|| malformed(name, "program extends past its section"))?
        .to_vec();
    let t = b.sections.get_mut(text);
    let mut data = section_bytes(t).to_vec();
    data.extend_from_slice(&code);
    t.sh_size = data.len() as u64;
    t.data = SectionData::Data(data.into());
    let in_entry =
        |sec: Option<SectionId>, v: u64| sec == Some(entry.sec) && entry.range.contains(&v);
    for sym in b.symbols.iter_mut() {
        if in_entry(sym.section, sym.st_value) && sym.st_type() != elf::STT_SECTION {
            sym.section = Some(text);
            sym.st_value = sym.st_value - entry.range.start + base;
        }
    }
    let s = b.symbols.get_mut(entry.sym);
    s.set_st_info(elf::STB_GLOBAL, elf::STT_FUNC);
    let visibility = match spec.hidden {
        true => elf::STV_HIDDEN,
        false => elf::STV_DEFAULT,
    };
    s.st_other = s.st_other.with_visibility(visibility);
    move_relocations(b, entry.sec, &entry.range, text, base, name)?;
    Ok(base)
}

/// Deletes the programs nobody needs, and their sections once empty, with
/// their relocations; returns the names of the sections deleted.
fn drop_unneeded(b: &mut Builder<'_>, unneeded: &Unneeded) -> HashSet<String> {
    for sym in b.symbols.iter_mut() {
        if unneeded.syms.contains(&sym.id().index())
            || sym
                .section
                .is_some_and(|s| unneeded.secs.contains(&s.index()))
        {
            sym.delete = true;
        }
    }
    let mut names = HashSet::new();
    for sec in b.sections.iter_mut() {
        let target = sec.sh_info_section.filter(|_| sec.sh_type == elf::SHT_REL);
        let own = unneeded.secs.contains(&sec.id().index());
        if own || target.is_some_and(|t| unneeded.secs.contains(&t.index())) {
            if own {
                names.insert(sec_name(sec));
            }
            sec.delete = true;
        }
    }
    names
}

/// Tags the data sections with the component's `tag` (each stays a map
/// of its own), zero-filling `.bss` ones; returns old names to new.
fn rename_data_sections(
    b: &mut Builder<'_>,
    name: &str,
    tag: &str,
    renames: &mut Renames,
) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for sec in b.sections.iter_mut() {
        let old = sec_name(sec);
        let Some(new) = section_rename(&old, tag) else {
            continue;
        };
        sec.name = ByteString::from(new.clone().into_bytes());
        if new.starts_with(".data") {
            renames.data_sections.push((old.clone(), new.clone()));
        }
        if let SectionData::UninitializedData(size) = sec.data {
            // No kernel takes a map value this large; refuse before allocating.
            if size > MAX_DATA_SECTION {
                let old = shown(&old);
                return Err(malformed(name, format!("section {old} is {size} bytes")));
            }
            sec.sh_type = elf::SHT_PROGBITS;
            sec.data = SectionData::Data(vec![0u8; size as usize].into());
        }
        out.insert(old, new);
    }
    Ok(out)
}

/// Where the entry's code went: from its section's range to `.text` at
/// `base`.
struct Moved {
    from: String,
    range: Range<u64>,
    base: u64,
}

/// BTF and BTF.ext follow the ELF side: the names `renamed` gave, the
/// entry's records `moved`, those of `dropped` sections gone.
fn follow_in_btf(
    b: &mut Builder<'_>,
    name: &str,
    spec: &Spec<'_>,
    moved: &Moved,
    dropped: &HashSet<String>,
    renamed: &Renamed,
) -> Result<()> {
    // Gone only where a hostile object marked it code.
    let Some(btf_id) = section_named(b, ".BTF") else {
        return Ok(());
    };
    let mut btf =
        Btf::parse(section_bytes(b.sections.get(btf_id))).map_err(|e| malformed(name, e))?;
    let mut new_names = HashMap::new();
    for t in btf.types().collect::<Vec<_>>() {
        // Variables in a section dropped as code: libbpf's linker would
        // look for their section and crash.
        if t.kind == Kind::Datasec && dropped.contains(btf.name(&t)) {
            return Err(malformed(
                name,
                format!(
                    "section {} is code, yet BTF gives it variables",
                    shown(btf.name(&t))
                ),
            ));
        }
        let (kind, names) = match t.kind {
            Kind::Func if btf.linkage(&t) != Some(Linkage::Static) => (0, &renamed.funcs),
            Kind::Var if btf.linkage(&t) == Some(Linkage::Global) => (1, &renamed.vars),
            Kind::Datasec => (2, &renamed.sections),
            _ => continue,
        };
        // By string offset: types of a kind that share a name look it up
        // once and share its new one.
        let key = (kind, t.name_off);
        let new = match new_names.get(&key) {
            Some(&new) => new,
            None => {
                let new = names.get(btf.name(&t)).map(|n| btf.add_str(n));
                *new_names.entry(key).or_insert(new)
            }
        };
        if let Some(off) = new {
            btf.set_name(&t, off);
        }
    }
    if let Some(ext_id) = section_named(b, ".BTF.ext") {
        let mut ext =
            BtfExt::parse(section_bytes(b.sections.get(ext_id))).map_err(|e| malformed(name, e))?;
        // Each new name once, however many groups of records name it.
        let mut added: HashMap<&str, u32> = HashMap::new();
        let mut add = |btf: &mut Btf, s| *added.entry(s).or_insert_with(|| btf.add_str(s));
        ext.relocate(&mut btf, |btf, name_off, sec| {
            let to = match renamed.sections.get(sec) {
                _ if dropped.contains(sec) => None,
                Some(new) => Some(add(btf, new.as_str())),
                None => Some(name_off),
            };
            let part = (sec == moved.from).then(|| Part {
                range: moved.range.start as u32..moved.range.end as u32,
                to: add(btf, ".text"),
                base: moved.base as u32,
            });
            Fate { to, part }
        });
        if spec.strip_debug_info {
            ext.strip_debug_info();
        }
        let sec = b.sections.get_mut(ext_id);
        sec.delete = ext.is_empty();
        sec.data = SectionData::Data(ext.to_bytes().into());
    }
    b.sections.get_mut(btf_id).data = SectionData::Data(btf.to_bytes().into());
    Ok(())
}

/// The maps of `.maps` that their definitions pin by name
/// (`__uint(pinning, LIBBPF_PIN_BY_NAME)`), by name.
fn pinned_by_name(b: &Builder<'_>, name: &str) -> Result<HashSet<String>> {
    const LIBBPF_PIN_BY_NAME: u32 = 1;
    let Some(sec) = b.sections.iter().find(|s| s.name.as_slice() == b".BTF") else {
        return Ok(HashSet::new());
    };
    let btf = Btf::parse(section_bytes(sec)).map_err(|e| malformed(name, e))?;
    let Some(maps) = btf
        .types()
        .find(|t| t.kind == Kind::Datasec && btf.name(t) == ".maps")
    else {
        return Ok(HashSet::new());
    };
    Ok(btf
        .datasec_vars(&maps)
        .into_iter()
        .filter_map(|(id, _, _)| btf.type_by_id(id))
        .filter(|var| {
            let Some(def) = btf.skip_mods(var.size_type) else {
                return false;
            };
            btf.members(&def).into_iter().any(|(n, ty)| {
                btf.str_at(n) == "pinning"
                    && btf
                        .type_by_id(ty)
                        .and_then(|p| btf.type_by_id(p.size_type))
                        .and_then(|a| btf.array_len(&a))
                        == Some(LIBBPF_PIN_BY_NAME)
            })
        })
        .map(|var| btf.name(&var).to_string())
        .collect())
}

/// Function symbols that a relocation outside code points at.
fn referenced_from_data(b: &Builder<'_>) -> HashSet<usize> {
    let mut out = HashSet::new();
    for rel in b
        .sections
        .iter()
        .filter(|s| !s.delete && s.sh_type == elf::SHT_REL)
    {
        let target_is_code = rel
            .sh_info_section
            .is_some_and(|t| is_code(b.sections.get(t)));
        if let (false, SectionData::Relocation(relocs)) = (target_is_code, &rel.data) {
            out.extend(relocs.iter().filter_map(|r| r.symbol).map(|y| y.index()));
        }
    }
    out
}

/// Moves the relocations of `range` in `from` to `to`, shifted to `base`.
fn move_relocations(
    b: &mut Builder<'_>,
    from: SectionId,
    range: &Range<u64>,
    to: SectionId,
    base: u64,
    name: &str,
) -> Result<()> {
    let Some(src) = relocation_section(b, from) else {
        return Ok(());
    };
    let SectionData::Relocation(relocs) = &mut b.sections.get_mut(src).data else {
        return Err(malformed(name, "relocation section without relocations"));
    };
    // Without a copy where all move (the section is the entry's alone): a
    // relocation takes several times its size in the file here.
    let mut moved: Vec<Relocation> = match relocs.iter().all(|r| range.contains(&r.r_offset)) {
        true => std::mem::take(relocs),
        false => {
            let (moved, stay) = std::mem::take(relocs)
                .into_iter()
                .partition(|r| range.contains(&r.r_offset));
            *relocs = stay;
            moved
        }
    };
    for r in &mut moved {
        r.r_offset = r.r_offset - range.start + base;
    }
    if moved.is_empty() {
        return Ok(());
    }
    let dst = match relocation_section(b, to) {
        Some(d) => d,
        None => {
            let proto = b.sections.get(src);
            let (link, flags, align, entsize) = (
                proto.sh_link_section,
                proto.sh_flags,
                proto.sh_addralign,
                proto.sh_entsize,
            );
            let d = b.sections.add();
            d.name = ByteString::from(&b".rel.text"[..]);
            d.sh_type = elf::SHT_REL;
            d.sh_link_section = link;
            d.sh_info_section = Some(to);
            d.sh_flags = flags;
            d.sh_addralign = align;
            d.sh_entsize = entsize;
            d.data = SectionData::Relocation(Vec::new());
            d.id()
        }
    };
    if let SectionData::Relocation(relocs) = &mut b.sections.get_mut(dst).data {
        match relocs.is_empty() {
            true => *relocs = moved,
            false => relocs.extend(moved),
        }
    }
    Ok(())
}

/// Relocation sections are named after their target (".rel" + name).
fn rename_rel_sections(b: &mut Builder<'_>) {
    let names: HashMap<usize, Vec<u8>> = b
        .sections
        .iter()
        .map(|s| (s.id().index(), s.name.to_vec()))
        .collect();
    for sec in b.sections.iter_mut().filter(|s| s.sh_type == elf::SHT_REL) {
        if let Some(target) = sec.sh_info_section.and_then(|t| names.get(&t.index())) {
            let mut n = b".rel".to_vec();
            n.extend_from_slice(target);
            sec.name = ByteString::from(n);
        }
    }
}

/// The root object with its config section filled in, and BTF.ext debug
/// info dropped if some component has none.
pub fn prepare_root(
    bytes: &[u8],
    config: &[u8],
    slots: &Slots<'_>,
    strip_debug_info: bool,
) -> Result<Vec<u8>> {
    let name = "root program";
    let headers = retyped_headers(bytes);
    let mut b = open(Readable::new(bytes, &headers), name)?;
    drop_unused_slot_calls(&mut b, slots, name)?;
    for sym in b.symbols.iter_mut() {
        if slots
            .number(&sym.name)
            .is_some_and(|k| slots.global.contains(&k))
        {
            sym.st_other = sym.st_other.with_visibility(elf::STV_DEFAULT);
        }
    }
    let sec = b
        .sections
        .iter_mut()
        .find(|s| s.name.as_slice() == CONFIG_SECTION.as_bytes())
        .ok_or_else(|| malformed(name, format!("no section {CONFIG_SECTION}")))?;
    if section_bytes(sec).len() != config.len() {
        return Err(malformed(
            name,
            format!("section {CONFIG_SECTION} has another size"),
        ));
    }
    sec.data = SectionData::Data(config.to_vec().into());
    for s in b.sections.iter_mut() {
        if strip_debug_info && s.name.as_slice() == b".BTF.ext" {
            let mut ext = BtfExt::parse(section_bytes(s)).map_err(|e| malformed(name, e))?;
            ext.strip_debug_info();
            s.delete = ext.is_empty();
            s.data = SectionData::Data(ext.to_bytes().into());
        }
    }
    finish(b, name)
}

/// A root program's slot functions: `prefix` then the slot number; the
/// first `used` run components; those in `global` are made global
/// functions (default visibility), which the verifier checks on their own.
pub struct Slots<'a> {
    pub prefix: &'a str,
    pub used: usize,
    pub global: Vec<usize>,
}

impl Slots<'_> {
    fn number(&self, symbol: &[u8]) -> Option<usize> {
        String::from_utf8_lossy(symbol)
            .strip_prefix(self.prefix)
            .and_then(|k| k.parse().ok())
    }
}

/// Turns the root's calls of unused slots into `r0 = XDP_PASS`. The config
/// makes them dead code anyway, but referenced, their placeholders are
/// loaded, verified and JITed with every chain: unreferenced, libbpf leaves
/// them out, and a chain of few components loads that much faster.
fn drop_unused_slot_calls(b: &mut Builder<'_>, slots: &Slots<'_>, name: &str) -> Result<()> {
    const XDP_PASS: i32 = 2;
    let unused: HashSet<usize> = b
        .symbols
        .iter()
        .filter(|y| slots.number(&y.name).is_some_and(|k| k >= slots.used))
        .map(|y| y.id().index())
        .collect();
    let rels: Vec<SectionId> = b
        .sections
        .iter()
        .filter(|s| {
            s.sh_type == elf::SHT_REL
                && s.sh_info_section
                    .is_some_and(|t| is_code(b.sections.get(t)))
        })
        .map(|s| s.id())
        .collect();
    for rel in rels {
        let target = b.sections.get(rel).sh_info_section.expect("filtered above");
        let SectionData::Relocation(relocs) = &mut b.sections.get_mut(rel).data else {
            continue;
        };
        let (dead, keep): (Vec<Relocation>, Vec<Relocation>) = relocs
            .drain(..)
            .partition(|r| r.symbol.is_some_and(|y| unused.contains(&y.index())));
        *relocs = keep;
        if dead.is_empty() {
            continue;
        }
        let code = b.sections.get_mut(target);
        let mut bytes = section_bytes(code).to_vec();
        for r in dead {
            let at = usize::try_from(r.r_offset)
                .ok()
                .and_then(|at| bytes.get_mut(at..at.checked_add(insn::SIZE)?))
                .ok_or_else(|| malformed(name, "slot call outside its section"))?;
            at.copy_from_slice(&Insn::mov64_imm(0, XDP_PASS).encode());
        }
        code.data = SectionData::Data(bytes.into());
    }
    Ok(())
}

/// An object that holds nothing but the chain's license. Linked first, its
/// string is the one libbpf reads from the merged `license` section.
pub fn license_object(license: &str) -> Result<Vec<u8>> {
    let mut b = Builder::new(object::Endianness::Little, true);
    b.header.e_type = elf::ET_REL;
    b.header.e_machine = elf::EM_BPF;
    let strtab = b.sections.add();
    strtab.name = ByteString::from(&b".strtab"[..]);
    strtab.sh_type = elf::SHT_STRTAB;
    strtab.data = SectionData::String;
    let strtab = strtab.id();
    let mut text = license.as_bytes().to_vec();
    text.push(0);
    let size = text.len() as u64;
    let lic = b.sections.add();
    lic.name = ByteString::from(&b"license"[..]);
    lic.sh_type = elf::SHT_PROGBITS;
    lic.sh_flags = elf::SectionFlags(elf::SHF_ALLOC.0 | elf::SHF_WRITE.0);
    lic.sh_addralign = 1;
    lic.data = SectionData::Data(text.into());
    let lic = lic.id();
    let symtab = b.sections.add();
    symtab.name = ByteString::from(&b".symtab"[..]);
    symtab.sh_type = elf::SHT_SYMTAB;
    symtab.sh_link_section = Some(strtab);
    symtab.sh_addralign = 8;
    symtab.data = SectionData::Symbol;
    let shstrtab = b.sections.add();
    shstrtab.name = ByteString::from(&b".shstrtab"[..]);
    shstrtab.sh_type = elf::SHT_STRTAB;
    shstrtab.data = SectionData::SectionString;
    let sym = b.symbols.add();
    sym.name = ByteString::from(&b"xdpchain_license"[..]);
    sym.section = Some(lic);
    // Local: the linker wants BTF for every global, and this object has none.
    sym.set_st_info(elf::STB_LOCAL, elf::STT_OBJECT);
    sym.st_size = size;
    let mut out = Vec::new();
    b.write(&mut out).map_err(|e| malformed("license", e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! The rewriter on a component built from bpf/testdata/component.bpf.c,
    //! read back with the object crate and the BTF editor: no kernel, no
    //! privileges.
    use std::collections::HashMap;

    use object::elf;
    use object::read::elf::ElfFile64;
    use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};

    use super::*;

    const COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/test_component.bpf.o"));

    fn spec(tag: &'static str, hidden: bool) -> Spec<'static> {
        Spec {
            entry: "xdp_first",
            entry_as: "xdpchain_slot_0",
            tag,
            strip_debug_info: false,
            hidden,
        }
    }

    fn rewritten(tag: &'static str) -> (Vec<u8>, Renames) {
        rewrite(COMPONENT, "component.o", &spec(tag, true)).expect("rewrites")
    }

    /// name -> (section name, type, binding, visibility)
    fn symbols(
        bytes: &[u8],
    ) -> HashMap<
        String,
        (
            String,
            elf::SymbolType,
            elf::SymbolBind,
            elf::SymbolVisibility,
        ),
    > {
        let file = ElfFile64::<object::LittleEndian>::parse(bytes).unwrap();
        file.symbols()
            .filter(|s| !s.name().unwrap_or("").is_empty())
            .map(|s| {
                let raw = s.elf_symbol();
                let section = s
                    .section_index()
                    .and_then(|i| file.section_by_index(i).ok())
                    .map(|sec| sec.name().unwrap().to_string())
                    .unwrap_or_default();
                (
                    s.name().unwrap().to_string(),
                    (section, raw.st_type(), raw.st_bind(), raw.st_visibility()),
                )
            })
            .collect()
    }

    fn btf_of(bytes: &[u8]) -> Btf {
        let file = object::File::parse(bytes).unwrap();
        Btf::parse(file.section_by_name(".BTF").unwrap().data().unwrap()).unwrap()
    }

    #[test]
    fn only_the_section_headers_are_copied_to_retype_addrsig() {
        // The builder does not know clang's .llvm_addrsig.
        assert!(Builder::read(COMPONENT).is_err());
        let headers = retyped_headers(COMPONENT);
        let shnum = u16::from_le_bytes([COMPONENT[0x3c], COMPONENT[0x3d]]) as usize;
        assert_eq!(headers.as_ref().unwrap().1.len(), shnum * 64);
        let b = Builder::read(Readable::new(COMPONENT, &headers)).unwrap();
        let addrsig = b
            .sections
            .iter()
            .find(|s| s.name.as_slice() == b".llvm_addrsig");
        assert_eq!(addrsig.unwrap().sh_type, elf::SHT_PROGBITS);
    }

    #[test]
    fn sections_move_aside_under_the_tag_also_when_moved_before() {
        for (from, to) in [
            ("license", Some(".xdpchain.license.c3")),
            (".xdpchain.license.c0", Some(".xdpchain.license.c3.c0")),
            ("version", Some(".xdpchain.version.c3")),
            (".xdpchain.version.c0", Some(".xdpchain.version.c3.c0")),
            (".xdpchain.versions", None),
            (".data", Some(".data.c3")),
            (".bss.x", Some(".data.c3_bss.x")),
            (".rodata", None),
            (".database", None),
        ] {
            assert_eq!(section_rename(from, "c3").as_deref(), to, "{from}");
        }
    }

    #[test]
    fn the_entry_becomes_a_hidden_slot_function_and_globals_get_the_tag() {
        let (out, renames) = rewritten("c7");
        let syms = symbols(&out);
        let slot = &syms["xdpchain_slot_0"];
        assert_eq!(
            (slot.0.as_str(), slot.1, slot.2, slot.3),
            (".text", elf::STT_FUNC, elf::STB_GLOBAL, elf::STV_HIDDEN)
        );
        for gone in [
            "xdp_first",
            "xdp_second",
            "shared_helper",
            "hits",
            "seen",
            "_license",
        ] {
            assert!(!syms.contains_key(gone), "{gone} left: {syms:?}");
        }
        assert_eq!(syms["c7_shared_helper"].0, ".text");
        assert_eq!(syms["c7_hits"].0, ".maps");
        assert_eq!(syms["c7_seen"].0, ".data.c7_bss");
        assert_eq!(syms["c7_limit"].0, ".data.c7");
        // A static function keeps its name: no other object sees it.
        assert_eq!(syms["bump"].2, elf::STB_LOCAL);
        // Visible, the entry is a global function that extensions replace.
        let (open, _) = rewrite(COMPONENT, "component.o", &spec("c7", false)).unwrap();
        assert_eq!(symbols(&open)["xdpchain_slot_0"].3, elf::STV_DEFAULT);

        assert_eq!(renames.maps, [("hits".to_string(), "c7_hits".to_string())]);
        let mut data = renames.data_sections.clone();
        data.sort();
        assert_eq!(
            data,
            [
                (".bss".to_string(), ".data.c7_bss".to_string()),
                (".data".to_string(), ".data.c7".to_string())
            ]
        );
        let file = object::File::parse(&*out).unwrap();
        let sections: Vec<&str> = file.sections().map(|s| s.name().unwrap()).collect();
        for gone in ["xdp", ".data", ".bss", "license"] {
            assert!(!sections.contains(&gone), "{gone} left: {sections:?}");
        }
        assert!(sections.contains(&".xdpchain.license.c7"), "{sections:?}");
    }

    #[test]
    fn relocations_move_with_the_code_they_patch() {
        let original = object::File::parse(COMPONENT).unwrap();
        let xdp = original
            .sections()
            .find(|s| s.name() == Ok("xdp"))
            .expect("clang puts both programs in section xdp");
        let first = original
            .symbols()
            .find(|s| s.name() == Ok("xdp_first"))
            .unwrap();
        let entry = first.address()..first.address() + first.size();
        let in_entry = xdp
            .relocations()
            .filter(|(off, _)| entry.contains(off))
            .count();
        let in_text = original
            .section_by_name(".text")
            .map_or(0, |t| t.relocations().count());

        let (out, _) = rewritten("c7");
        let file = object::File::parse(&*out).unwrap();
        let text = file.section_by_name(".text").unwrap();
        let syms = symbols(&out);
        let relocs: Vec<(u64, String)> = text
            .relocations()
            .map(|(off, r)| {
                let RelocationTarget::Symbol(i) = r.target() else {
                    panic!("relocation without a symbol at {off}");
                };
                (
                    off,
                    file.symbol_by_index(i).unwrap().name().unwrap().to_string(),
                )
            })
            .collect();
        // The entry's relocations and those of .text's functions, all of
        // them inside the merged .text and on instruction boundaries.
        assert_eq!(relocs.len(), in_entry + in_text, "{relocs:?}");
        for (off, target) in &relocs {
            assert!(
                *off < text.size() && off % insn::SIZE as u64 == 0,
                "{off} {target}"
            );
            assert!(
                target.is_empty() || syms.contains_key(target.as_str()),
                "relocation to unknown {target}"
            );
        }
        let targets: Vec<&str> = relocs.iter().map(|(_, t)| t.as_str()).collect();
        for t in ["c7_hits", "c7_shared_helper"] {
            assert!(targets.contains(&t), "{t} not relocated: {targets:?}");
        }
        // The entry's code is the same, only moved.
        let slot = file
            .symbols()
            .find(|s| s.name() == Ok("xdpchain_slot_0"))
            .unwrap();
        let at = slot.address() as usize;
        assert_eq!(
            &text.data().unwrap()[at..at + slot.size() as usize],
            &xdp.data().unwrap()[entry.start as usize..entry.end as usize]
        );
    }

    #[test]
    fn btf_and_btf_ext_follow_the_renames() {
        let (out, _) = rewritten("c7");
        let btf = btf_of(&out);
        let named = |kind: Kind| -> Vec<String> {
            btf.types()
                .filter(|t| t.kind == kind)
                .map(|t| btf.name(&t).to_string())
                .collect()
        };
        let funcs = named(Kind::Func);
        assert!(funcs.contains(&"xdpchain_slot_0".to_string()), "{funcs:?}");
        assert!(funcs.contains(&"c7_shared_helper".to_string()), "{funcs:?}");
        assert!(funcs.contains(&"bump".to_string()), "{funcs:?}");
        assert!(
            !funcs.iter().any(|f| f == "xdp_first" || f == "xdp_second"),
            "{funcs:?}"
        );
        let secs = named(Kind::Datasec);
        for s in [".data.c7", ".data.c7_bss", ".maps"] {
            assert!(secs.contains(&s.to_string()), "{s} not in {secs:?}");
        }
        let vars = named(Kind::Var);
        assert!(vars.contains(&"c7_seen".to_string()), "{vars:?}");

        // func_info and line_info name only .text now.
        let file = object::File::parse(&*out).unwrap();
        let ext = file.section_by_name(".BTF.ext").unwrap().data().unwrap();
        let ext = BtfExt::parse(ext).unwrap();
        for table in &ext.tables[..2] {
            let names: Vec<&str> = table.sections().map(|n| btf.str_at(n)).collect();
            assert_eq!(names, [".text"]);
        }
        // Stripped, no function has func_info: the kernel wants all or none.
        let (stripped, _) = rewrite(
            COMPONENT,
            "component.o",
            &Spec {
                strip_debug_info: true,
                ..spec("c7", true)
            },
        )
        .unwrap();
        let file = object::File::parse(&*stripped).unwrap();
        if let Some(ext) = file.section_by_name(".BTF.ext") {
            let ext = BtfExt::parse(ext.data().unwrap()).unwrap();
            assert!(ext.tables[0].sections().count() + ext.tables[1].sections().count() == 0);
        }
    }

    #[test]
    fn malformed_objects_are_refused() {
        let refused = |bytes: &[u8], spec: &Spec<'_>| match rewrite(bytes, "bad.o", spec) {
            Err(e @ Error::Malformed { .. }) => e.to_string(),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted"),
        };
        assert!(refused(b"not an ELF", &spec("c1", true)).contains("bad.o"));
        for len in [16, 64, COMPONENT.len() / 2, COMPONENT.len() - 1] {
            refused(&COMPONENT[..len], &spec("c1", true));
        }
        let missing = Spec {
            entry: "no_such_prog",
            ..spec("c1", true)
        };
        assert!(
            refused(COMPONENT, &missing).contains("no function symbol for program no_such_prog")
        );
        // A section header table pointing past the end of the file.
        let mut bad = COMPONENT.to_vec();
        let shoff_at = std::mem::offset_of!(elf::FileHeader64<object::LittleEndian>, e_shoff);
        bad[shoff_at..shoff_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        refused(&bad, &spec("c1", true));
    }
}
