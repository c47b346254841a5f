//! What an object may be before anything parses it. Objects come from
//! anyone (the command, C and Python take paths and bytes) and are parsed by
//! us and by libbpf as root: these bounds keep a malformed or hostile one
//! from taking the machine's memory or time, each with a clear error. The
//! README lists them.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

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

fn too_large(name: &str, what: &str, limit: u64) -> Error {
    Error::TooLarge {
        name: name.to_string(),
        what: what.to_string(),
        limit,
    }
}

fn malformed(name: &str, reason: impl ToString) -> Error {
    Error::Malformed {
        name: name.to_string(),
        reason: reason.to_string(),
    }
}

/// Reads the object at `path`: a regular file (not a FIFO, a device or a
/// directory, which it neither blocks on nor reads without end), within
/// [`MAX_OBJECT_SIZE`], whose magic is checked before the rest is read.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    let name = path.display().to_string();
    read_open(open_regular(path, refuse_object(&name))?, &name)
}

/// How [`open_regular`] refuses an object named `name`.
pub(crate) fn refuse_object(name: &str) -> impl FnOnce(&str) -> Error + '_ {
    move |what| malformed(name, format!("{what}, not an object file"))
}

/// As [`read`], for an object `name` open as `file`.
pub(crate) fn read_open(mut file: std::fs::File, name: &str) -> Result<Vec<u8>> {
    let name = name.to_string();
    let os = |op: &str, e: std::io::Error| Error::os(format!("{op} {name}"), e);
    let meta = file.metadata().map_err(|e| os("stat", e))?;
    if meta.len() > MAX_OBJECT_SIZE {
        return Err(too_large(&name, "its size in bytes", MAX_OBJECT_SIZE));
    }
    let mut bytes = Vec::new();
    let mut read = |limit: u64, bytes: &mut Vec<u8>| {
        (&mut file)
            .take(limit)
            .read_to_end(bytes)
            .map_err(|e| os("read", e))
    };
    read(4, &mut bytes)?;
    if bytes != b"\x7fELF" {
        return Err(Error::NotElf { name });
    }
    // A file that grows while read stops at the cap all the same.
    read(MAX_OBJECT_SIZE - 4 + 1, &mut bytes)?;
    if bytes.len() as u64 > MAX_OBJECT_SIZE {
        return Err(too_large(&name, "its size in bytes", MAX_OBJECT_SIZE));
    }
    Ok(bytes)
}

/// Opens `path` to read it if it is a regular file; what else it is (a
/// directory, a FIFO, a device), `refuse` turns into the error, before
/// anything blocks on it.
pub(crate) fn open_regular(
    path: &Path,
    refuse: impl FnOnce(&str) -> Error,
) -> Result<std::fs::File> {
    let os = |op: &str, e: std::io::Error| Error::os(format!("{op} {}", path.display()), e);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| os("open", e))?;
    let kind = file.metadata().map_err(|e| os("stat", e))?.file_type();
    let what = match () {
        _ if kind.is_file() => return Ok(file),
        _ if kind.is_dir() => "a directory",
        _ if kind.is_fifo() => "a FIFO",
        _ if kind.is_char_device() || kind.is_block_device() => "a device",
        _ if kind.is_socket() => "a socket",
        _ => "not a regular file",
    };
    Err(refuse(what))
}

/// Checks the headers of the ELF object `bytes` against the limits, and
/// that every section lies inside it; its BTF, checked, if it has some.
pub(crate) fn check(bytes: &[u8], name: &str) -> Result<Option<Btf>> {
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
