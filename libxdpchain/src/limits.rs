//! What an object may be before anything parses it (the bounds, and their
//! check of an object's headers, are the object layer's:
//! `xdpchain_obj::limits`), and how one is read from a file: never more than
//! those bounds, never blocking on what is no regular file.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{Error, Result};

pub(crate) use xdpchain_obj::limits::{check, check_chain, Checked};
use xdpchain_obj::limits::{malformed, too_large};
pub use xdpchain_obj::limits::{
    Census, CHAIN_CAPS, MAX_ALIGN, MAX_BTF_TYPES, MAX_NAME_LEN, MAX_OBJECT_SIZE, MAX_SECTIONS,
    MAX_SYMBOLS, MAX_ZEROED_DATA, OBJECT_CAPS,
};

/// Reads the object at `path`: a regular file (not a FIFO, a device or a
/// directory, which it neither blocks on nor reads without end), within
/// [`MAX_OBJECT_SIZE`], whose magic is checked before the rest is read.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    let name = path.display().to_string();
    read_open(open_regular(path, refuse_object(&name))?, &name)
}

/// How [`open_regular`] refuses an object named `name`.
pub(crate) fn refuse_object(name: &str) -> impl FnOnce(&str) -> Error + '_ {
    move |what| malformed(name, format!("{what}, not an object file")).into()
}

/// As [`read`], for an object `name` open as `file`.
pub(crate) fn read_open(mut file: std::fs::File, name: &str) -> Result<Vec<u8>> {
    let name = name.to_string();
    let os = |op: &str, e: std::io::Error| Error::os(format!("{op} {name}"), e);
    let meta = file.metadata().map_err(|e| os("stat", e))?;
    if meta.len() > MAX_OBJECT_SIZE {
        return Err(too_large(&name, "its size in bytes", MAX_OBJECT_SIZE).into());
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
        return Err(too_large(&name, "its size in bytes", MAX_OBJECT_SIZE).into());
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
