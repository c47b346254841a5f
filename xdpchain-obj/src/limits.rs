//! What an object may be before anything parses it. Objects come from
//! anyone (the command, C and Python take paths and bytes) and are parsed by
//! us and by libbpf as root: these bounds keep a malformed or hostile one
//! from taking the machine's memory or time, each with a clear error. The
//! README lists them.

use object::elf::FileHeader64;
use object::read::elf::{ElfFile64, FileHeader, SectionHeader, SectionTable, Sym};
use object::{elf, LittleEndian, SectionIndex};

use crate::btf::{Btf, BtfExt, Kind};
use crate::error::{Error, Result};

/// An object file's size.
pub const MAX_OBJECT_SIZE: u64 = 64 << 20;
/// Sections of an object.
pub const MAX_SECTIONS: u64 = 1024;
/// Symbols of an object.
pub const MAX_SYMBOLS: u64 = 1 << 16;
/// A name of a section, a symbol, a BTF type or member, in bytes.
pub use crate::btf::MAX_NAME_LEN;
/// Types in an object's BTF.
pub use crate::btf::MAX_TYPES as MAX_BTF_TYPES;
/// What an object's sections without data in the file (`.bss`) ask for,
/// in all: they are allocated when the object is written and loaded.
pub const MAX_ZEROED_DATA: u64 = 64 << 20;
/// A section's alignment.
pub const MAX_ALIGN: u64 = 4096;

/// What libbpf's open and link look up by name, each lookup a walk of all
/// the others, and what the kernel loads: counted in an object, they are
/// bounded per object ([`OBJECT_CAPS`]) and summed over the inputs of one
/// linked chain ([`CHAIN_CAPS`]), so that those walks stay short. The caps
/// lie far above real programs (the largest in the corpus that the tests
/// fetch, xdp-filter's and libxdp's dispatcher: 18 sections, 15 global
/// symbols, 13 functions, 8 variables, 6 maps, 134 `.BTF.ext` records).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub sections: u64,
    /// Symbols seen outside their object: functions, variables, maps and
    /// externs.
    pub globals: u64,
    pub functions: u64,
    /// Variables in BTF (a data section's, global or static).
    pub variables: u64,
    pub maps: u64,
    pub instructions: u64,
    /// Records in `.BTF.ext` (func_info, line_info, CO-RE relocations):
    /// libbpf's linker grows its arrays of them one record at a time.
    pub records: u64,
}

/// The caps on one object.
pub const OBJECT_CAPS: Census = Census {
    sections: MAX_SECTIONS,
    globals: 1024,
    functions: 1024,
    variables: 1024,
    maps: 256,
    // The most the kernel loads in one program (BPF_COMPLEXITY_LIMIT_INSNS).
    instructions: 1_000_000,
    records: 32_768,
};

/// The caps on the inputs of one linked chain, summed.
pub const CHAIN_CAPS: Census = Census {
    sections: 4096,
    globals: 4096,
    functions: 4096,
    variables: 4096,
    maps: 1024,
    instructions: 1_000_000,
    records: 65_536,
};

impl Census {
    /// The counts of all of `each`.
    pub fn sum<'a>(each: impl IntoIterator<Item = &'a Census>) -> Census {
        each.into_iter().fold(Census::default(), |a, c| Census {
            sections: a.sections + c.sections,
            globals: a.globals + c.globals,
            functions: a.functions + c.functions,
            variables: a.variables + c.variables,
            maps: a.maps + c.maps,
            instructions: a.instructions + c.instructions,
            records: a.records + c.records,
        })
    }

    /// The first count over its cap in `caps`: what it counts, and the cap.
    pub fn over(&self, caps: &Census) -> Option<(&'static str, u64)> {
        [
            (self.sections, caps.sections, "its number of sections"),
            (self.globals, caps.globals, "its number of global symbols"),
            (self.functions, caps.functions, "its number of functions"),
            (
                self.variables,
                caps.variables,
                "its number of variables in BTF",
            ),
            (self.maps, caps.maps, "its number of maps"),
            (
                self.instructions,
                caps.instructions,
                "its number of instructions",
            ),
            (self.records, caps.records, "its number of .BTF.ext records"),
        ]
        .into_iter()
        .find(|(n, cap, _)| n > cap)
        .map(|(_, cap, what)| (what, cap))
    }
}

/// Refuses the inputs of one chain, named `name`, whose counts together
/// pass [`CHAIN_CAPS`].
pub fn check_chain<'a>(name: &str, each: impl IntoIterator<Item = &'a Census>) -> Result<()> {
    match Census::sum(each).over(&CHAIN_CAPS) {
        Some((what, cap)) => Err(too_large(name, &format!("{what} over all its inputs"), cap)),
        None => Ok(()),
    }
}

/// `name` as an error quotes a name read from an object: cut with an
/// ellipsis past 64 characters, so that no message runs long.
pub fn shown(name: &str) -> std::borrow::Cow<'_, str> {
    const SHOWN: usize = 64;
    match name.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &name[..end]).into(),
        None => name.into(),
    }
}

/// The name at `off` of the string table `strings`, if it ends within
/// [`MAX_NAME_LEN`]; else the error names `what` it is.
fn name_at<'a>(strings: &'a [u8], off: u32, object: &str, what: &str) -> Result<&'a [u8]> {
    match crate::btf::name_len(strings, off) {
        Some(len) => Ok(&strings[off as usize..off as usize + len]),
        None => Err(too_large(
            object,
            &format!("the length of a {what}'s name"),
            MAX_NAME_LEN as u64,
        )),
    }
}

/// An object that passed [`check`]: its BTF, checked, if it has some, and
/// its counts.
pub struct Checked {
    pub btf: Option<Btf>,
    pub census: Census,
}

pub fn too_large(name: &str, what: &str, limit: u64) -> Error {
    Error::TooLarge {
        name: name.to_string(),
        what: what.to_string(),
        limit,
    }
}

pub fn malformed(name: &str, reason: impl ToString) -> Error {
    Error::Malformed {
        name: name.to_string(),
        reason: reason.to_string(),
    }
}

/// Checks the headers of the ELF object `bytes` against the limits, and
/// that every section lies inside it; its BTF, checked, and its counts.
/// Linear in the object: every name is read once, and only as far as the
/// longest allowed.
pub fn check(bytes: &[u8], name: &str) -> Result<Checked> {
    if bytes.len() as u64 > MAX_OBJECT_SIZE {
        return Err(too_large(name, "its size in bytes", MAX_OBJECT_SIZE));
    }
    let file = ElfFile64::<LittleEndian>::parse(bytes).map_err(|e| malformed(name, e))?;
    let endian = file.endian();
    let header = file.elf_header();
    let sections = header
        .sections(endian, bytes)
        .map_err(|e| malformed(name, e))?;
    let mut census = Census {
        sections: sections.len() as u64,
        ..Census::default()
    };
    if census.sections > MAX_SECTIONS {
        return Err(too_large(name, "its number of sections", MAX_SECTIONS));
    }
    let strtab = header
        .shstrndx(endian, bytes)
        .map_err(|e| malformed(name, e))?;
    let section_names = sections
        .section(SectionIndex(strtab as usize))
        .and_then(|s| s.data(endian, bytes))
        .map_err(|e| malformed(name, e))?;
    let section_name = |s: &elf::SectionHeader64<LittleEndian>| {
        name_at(section_names, s.sh_name(endian), name, "section")
    };
    // A name twice (.BTF.ext, say) makes libbpf and us read different
    // sections for one thing; no compiler or linker writes that.
    let mut names = std::collections::HashSet::new();
    for s in sections.iter().skip(1) {
        let section = section_name(s)?;
        if !names.insert(section) {
            let section = String::from_utf8_lossy(section);
            return Err(malformed(
                name,
                format!("two sections named {}", shown(&section)),
            ));
        }
    }
    let mut zeroed: u64 = 0;
    for s in sections.iter() {
        if s.sh_addralign(endian) > MAX_ALIGN {
            return Err(too_large(name, "a section's alignment", MAX_ALIGN));
        }
        match s.sh_type(endian) {
            elf::SHT_NOBITS => zeroed = zeroed.saturating_add(s.sh_size(endian)),
            elf::SHT_NULL => {}
            _ => {
                s.data(endian, bytes)
                    .map_err(|_| malformed(name, "a section reaches past the end of the file"))?;
            }
        }
        if s.sh_flags(endian).0 & elf::SHF_EXECINSTR.0 != 0 {
            census.instructions += s.sh_size(endian) / 8;
        }
        if s.sh_type(endian) == elf::SHT_REL {
            relocations(s, &sections, bytes, name)?;
        }
    }
    symbols(bytes, &sections, name, &mut census)?;
    let btf = btf(&sections, bytes, section_names, name, &mut census)?;
    census.variables = btf
        .iter()
        .flat_map(|b| b.types())
        .filter(|t| t.kind == Kind::Var)
        .count() as u64;
    if zeroed > MAX_ZEROED_DATA {
        return Err(too_large(
            name,
            "its zeroed data (.bss) in bytes",
            MAX_ZEROED_DATA,
        ));
    }
    if let Some((what, cap)) = census.over(&OBJECT_CAPS) {
        return Err(too_large(name, what, cap));
    }
    Ok(Checked { btf, census })
}

/// Checks the relocation section `s`: each patches a field of 4 bytes or
/// more of its section (an instruction, a pointer, a DWARF offset), inside
/// it; more are no compiler's, only work for libbpf.
fn relocations(
    s: &elf::SectionHeader64<LittleEndian>,
    sections: &SectionTable<'_, FileHeader64<LittleEndian>>,
    bytes: &[u8],
    name: &str,
) -> Result<()> {
    let endian = LittleEndian;
    let target = sections
        .section(SectionIndex(s.sh_info(endian) as usize))
        .ok();
    let size = target.map_or(0, |t| t.sh_size(endian));
    if s.sh_entsize(endian) != 16 || s.sh_size(endian) / 16 > size / 4 {
        return Err(malformed(name, "more relocations than words to patch"));
    }
    // libbpf's linker patches instructions at relocations' offsets
    // unchecked (found by the scale campaign).
    let exec = target.is_some_and(|t| t.sh_flags(endian).0 & elf::SHF_EXECINSTR.0 != 0);
    let field = if exec { 8 } else { 4 };
    let relocs = s.data(endian, bytes).unwrap_or_default();
    let outside = relocs.chunks_exact(16).any(|r| {
        let at = u64::from_le_bytes(r[..8].try_into().expect("8 bytes"));
        at.checked_add(field).is_none_or(|end| end > size)
    });
    if outside {
        return Err(malformed(name, "a relocation outside its section"));
    }
    Ok(())
}

/// The object's BTF, parsed, and its `.BTF.ext` checked against it and
/// against the object's instructions, counted in `census` as its records.
fn btf(
    sections: &SectionTable<'_, FileHeader64<LittleEndian>>,
    bytes: &[u8],
    section_names: &[u8],
    name: &str,
    census: &mut Census,
) -> Result<Option<Btf>> {
    let endian = LittleEndian;
    // libbpf walks types without bounds: it gets none that loop.
    let mut btf = None;
    let mut ext = None;
    let mut deduplicated = Vec::new();
    for s in sections.iter() {
        let data = s.data(endian, bytes).unwrap_or_default();
        match name_at(section_names, s.sh_name(endian), name, "section")? {
            b".BTF" => btf = Some(Btf::parse(data).map_err(|e| malformed(name, e))?),
            b".BTF.ext" => ext = Some(BtfExt::parse(data).map_err(|e| malformed(name, e))?),
            b"license" => deduplicated.push("license"),
            b"version" => deduplicated.push("version"),
            _ => {}
        }
    }
    // libbpf's linker makes a section of its own for a DATASEC that names
    // none, and compares `license` and `version` across its inputs through
    // the ELF header such a section lacks (found by the scale campaign: a
    // SEGV in sec_content_is_same).
    if let Some(b) = &btf {
        for t in b.types().filter(|t| t.kind == Kind::Datasec) {
            let section = b.name(&t);
            if matches!(section, "license" | "version") && !deduplicated.contains(&section) {
                let reason = format!("BTF describes a section {section} that the object lacks");
                return Err(malformed(name, reason));
            }
        }
    }
    let Some(ext) = ext else { return Ok(btf) };
    // A record describes an instruction (its function, its line, its CO-RE
    // relocation): more are no compiler's, only work for libbpf, whose
    // linker grows its arrays a record at a time.
    let records = ext.tables.iter().map(|t| t.record_count() as u64);
    if records.clone().any(|n| n > census.instructions) {
        return Err(malformed(name, "more .BTF.ext records than instructions"));
    }
    census.records = records.sum();
    if let Some(btf) = &btf {
        let named = |t: &crate::btf::ExtTable| t.sections().all(|off| btf.is_name(off));
        if !ext.tables.iter().all(named) {
            return Err(too_large(
                name,
                "the length of a .BTF.ext section's name",
                MAX_NAME_LEN as u64,
            ));
        }
    }
    Ok(btf)
}

/// Counts the symbols of the object's symbol table, checking their names.
fn symbols(
    bytes: &[u8],
    sections: &SectionTable<'_, FileHeader64<LittleEndian>>,
    name: &str,
    census: &mut Census,
) -> Result<()> {
    let endian = LittleEndian;
    let Some(symtab) = sections
        .iter()
        .find(|s| s.sh_type(endian) == elf::SHT_SYMTAB)
    else {
        return Ok(());
    };
    let size = symtab.sh_entsize(endian).max(1);
    if symtab.sh_size(endian) / size > MAX_SYMBOLS {
        return Err(too_large(name, "its number of symbols", MAX_SYMBOLS));
    }
    let table = sections
        .symbols(endian, bytes, elf::SHT_SYMTAB)
        .map_err(|e| malformed(name, e))?;
    let strings = sections
        .section(table.string_section())
        .and_then(|s| s.data(endian, bytes))
        .map_err(|e| malformed(name, e))?;
    let maps: Vec<usize> = sections
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(sections.section_name(endian, s), Ok(b".maps" | b"maps")))
        .map(|(i, _)| i)
        .collect();
    for sym in table.symbols().iter().skip(1) {
        name_at(strings, sym.st_name(endian), name, "symbol")?;
        let (bind, kind) = (sym.st_bind(), sym.st_type());
        if matches!(bind, elf::STB_GLOBAL | elf::STB_WEAK) {
            census.globals += 1;
        }
        if kind == elf::STT_FUNC {
            census.functions += 1;
        }
        // libbpf's linker takes a section symbol's section unchecked (found
        // by the scale campaign: a SEGV in linker_append_elf_relos).
        let section = usize::from(sym.st_shndx(endian).0);
        if kind == elf::STT_SECTION && !(1..sections.len()).contains(&section) {
            return Err(malformed(name, "a section symbol of no section"));
        }
        if kind == elf::STT_OBJECT && maps.contains(&section) {
            census.maps += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/test_component.bpf.o"));

    /// `COMPONENT` with the header of its section named `name` changed.
    fn patched(name: &str, f: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let file = ElfFile64::<LittleEndian>::parse(COMPONENT).unwrap();
        let (endian, header) = (file.endian(), file.elf_header());
        let sections = header.sections(endian, COMPONENT).unwrap();
        let index = sections.section_by_name(endian, name.as_bytes()).unwrap().0;
        let size = usize::from(header.e_shentsize(endian));
        let at = header.e_shoff(endian) as usize + index.0 * size;
        let mut bytes = COMPONENT.to_vec();
        f(&mut bytes[at..at + size]);
        bytes
    }

    #[test]
    fn a_well_formed_object_passes_with_its_btf() {
        let btf = check(COMPONENT, "component.o")
            .unwrap()
            .btf
            .expect("it has BTF");
        assert!(btf.types().count() > 10);
    }

    #[test]
    fn objects_are_counted_and_chains_summed() {
        let census = check(COMPONENT, "component.o").unwrap().census;
        assert!(census.sections > 5 && census.functions >= 1 && census.globals >= 1);
        assert!(census.instructions > 0 && census.maps <= census.globals);
        assert!(check_chain("chain", [&census; 4]).is_ok());
        let many = Census {
            globals: CHAIN_CAPS.globals / 2 + 1,
            ..census
        };
        let e = check_chain("chain", [&many, &many]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "chain: its number of global symbols over all its inputs passes the limit of 4096"
        );
    }

    #[test]
    fn names_are_cut_where_errors_show_them() {
        assert_eq!(shown("xdp_fw"), "xdp_fw");
        let long = "é".repeat(100);
        assert_eq!(shown(&long), format!("{}…", "é".repeat(64)));
    }

    fn refused(bytes: &[u8]) -> Error {
        check(bytes, "bad.o").err().expect("refused")
    }

    #[test]
    fn what_is_no_object_or_is_cut_is_malformed() {
        for len in [0, 4, 63, COMPONENT.len() / 2] {
            let e = refused(&COMPONENT[..len]);
            assert!(matches!(e, Error::Malformed { .. }), "{len}: {e}");
        }
    }

    #[test]
    fn each_bound_is_named() {
        // sh_addralign at 48, sh_size at 32 in an ELF64 section header.
        let aligned = patched("xdp", |h| {
            h[48..56].copy_from_slice(&(1u64 << 40).to_le_bytes())
        });
        let e = refused(&aligned);
        assert!(
            e.to_string()
                .contains("a section's alignment passes the limit of 4096"),
            "{e}"
        );
        let bss = patched(".bss", |h| {
            h[32..40].copy_from_slice(&(1u64 << 30).to_le_bytes())
        });
        let e = refused(&bss);
        assert!(
            matches!(
                e,
                Error::TooLarge {
                    limit: MAX_ZEROED_DATA,
                    ..
                }
            ),
            "{e}"
        );
        let past = patched("license", |h| {
            h[32..40].copy_from_slice(&(1u64 << 40).to_le_bytes())
        });
        let e = refused(&past);
        assert!(
            e.to_string().contains("reaches past the end of the file"),
            "{e}"
        );
    }
}
