//! What an object may be before anything parses it. Objects come from
//! anyone (the command, C and Python take paths and bytes) and are parsed by
//! us and by libbpf as root: these bounds keep a malformed or hostile one
//! from taking the machine's memory or time, each with a clear error. The
//! README lists them.

use object::read::elf::{ElfFile64, FileHeader, SectionHeader};
use object::{elf, LittleEndian};

use crate::btf::{Btf, BtfExt};
use crate::error::{Error, Result};

/// An object file's size.
pub const MAX_OBJECT_SIZE: u64 = 64 << 20;
/// Sections of an object.
pub const MAX_SECTIONS: u64 = 4096;
/// Symbols of an object.
pub const MAX_SYMBOLS: u64 = 1 << 16;
/// Types in an object's BTF.
pub use crate::btf::MAX_TYPES as MAX_BTF_TYPES;
/// What an object's sections without data in the file (`.bss`) ask for,
/// in all: they are allocated when the object is written and loaded.
pub const MAX_ZEROED_DATA: u64 = 64 << 20;
/// A section's alignment.
pub const MAX_ALIGN: u64 = 4096;

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
/// that every section lies inside it; its BTF, checked, if it has some.
pub fn check(bytes: &[u8], name: &str) -> Result<Option<Btf>> {
    if bytes.len() as u64 > MAX_OBJECT_SIZE {
        return Err(too_large(name, "its size in bytes", MAX_OBJECT_SIZE));
    }
    let file = ElfFile64::<LittleEndian>::parse(bytes).map_err(|e| malformed(name, e))?;
    let endian = file.endian();
    let sections = file
        .elf_header()
        .sections(endian, bytes)
        .map_err(|e| malformed(name, e))?;
    if sections.len() as u64 > MAX_SECTIONS {
        return Err(too_large(name, "its number of sections", MAX_SECTIONS));
    }
    // A name twice (.BTF.ext, say) makes libbpf and us read different
    // sections for one thing; no compiler or linker writes that.
    let mut names = std::collections::HashSet::new();
    for s in sections.iter().skip(1) {
        let section = sections
            .section_name(endian, s)
            .map_err(|e| malformed(name, e))?;
        if !names.insert(section) {
            let section = String::from_utf8_lossy(section);
            return Err(malformed(name, format!("two sections named {section}")));
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
        if s.sh_type(endian) == elf::SHT_SYMTAB {
            let size = s.sh_entsize(endian).max(1);
            if s.sh_size(endian) / size > MAX_SYMBOLS {
                return Err(too_large(name, "its number of symbols", MAX_SYMBOLS));
            }
        }
    }
    // libbpf walks types without bounds: it gets none that loop.
    let mut btf = None;
    for s in sections.iter() {
        let data = s.data(endian, bytes).unwrap_or_default();
        match sections.section_name(endian, s) {
            Ok(b".BTF") => btf = Some(Btf::parse(data).map_err(|e| malformed(name, e))?),
            Ok(b".BTF.ext") => drop(BtfExt::parse(data).map_err(|e| malformed(name, e))?),
            _ => {}
        }
    }
    if zeroed > MAX_ZEROED_DATA {
        return Err(too_large(
            name,
            "its zeroed data (.bss) in bytes",
            MAX_ZEROED_DATA,
        ));
    }
    Ok(btf)
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
            .expect("it has BTF");
        assert!(btf.types().count() > 10);
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
