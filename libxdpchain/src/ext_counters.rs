//! Counters of the extensions in a libxdp dispatcher. libxdp accepts a
//! dispatcher only if its one map is its config, and the kernel keeps no
//! statistics of extension programs; so each extension we load gets an
//! fexit program (bpf/count_exit.bpf.c) that adds its verdicts to a per-CPU
//! row of its own. The interface's record directory pins, per extension
//! program id, that row (`xcounts-ID`) and the fexit link (`xcount-ID`),
//! which holds the extension: the counting follows the extension into every
//! dispatcher it joins, ours or one that xdp-loader rebuilt, and its pins go
//! once the extension leaves the dispatcher.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::counters;
use crate::error::{Error, Result};
use crate::status::Counters;
use crate::sys::{dup, obj_get, pin, prog_info, trace_link, Object, Refusal};

static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/count_exit.bpf.o"));
const PROG_NAME: &str = "xdpchain_count";
const MAP_NAME: &str = "xdpchain_xcount";
const LINK_PREFIX: &str = "xcount-";
const MAP_PREFIX: &str = "xcounts-";

/// Counting the extensions that one change of a libxdp dispatcher loads.
pub(crate) struct Counting {
    /// Whether an extension the kernel refuses to trace fails the change
    /// ([`crate::plan::Counting::On`]) or just goes uncounted (`Auto`).
    required: bool,
    /// The counters attached: (extension program id, link, row).
    attached: Vec<(u32, OwnedFd, OwnedFd)>,
}

impl Counting {
    /// Counting as `asked`: none when off; failing the change only when on.
    pub(crate) fn asked(asked: crate::plan::Counting) -> Option<Counting> {
        (asked != crate::plan::Counting::Off).then(|| Counting {
            required: asked == crate::plan::Counting::On,
            attached: Vec::new(),
        })
    }

    /// Counts the verdicts of the loaded extension `ext`, whose function is
    /// `func`, from now on; a refusal fails only counting that is required.
    pub(crate) fn attach(&mut self, ext: BorrowedFd<'_>, func: &str, label: &str) -> Result<()> {
        match attach(ext, func) {
            Ok(counter) => {
                self.attached.push(counter);
                Ok(())
            }
            Err(e) if !self.required => {
                log::warn!("{label} is not counted: {e}");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Pins the counters attached in `dir`, the record directory of the
    /// interface whose dispatcher now runs the extensions `running`, and
    /// drops the counters of those that left it.
    pub(crate) fn record(self, dir: &Path, running: &[u32]) -> Result<()> {
        for (id, link, row) in &self.attached {
            pin(row.as_fd(), &dir.join(format!("{MAP_PREFIX}{id}")))?;
            pin(link.as_fd(), &dir.join(format!("{LINK_PREFIX}{id}")))?;
        }
        sweep(dir, running)
    }
}

/// An fexit counter on `ext`: (its program id, the link, the row).
fn attach(ext: BorrowedFd<'_>, func: &str) -> Result<(u32, OwnedFd, OwnedFd)> {
    let (_, id, _) = prog_info(ext)?;
    let object =
        Object::open(OBJECT.to_vec(), "count_exit").map_err(|Refusal { errno: e, log }| {
            Error::Link(format!(
                "libbpf cannot open the counter ({}): {}",
                crate::error::os_text(&e),
                log.trim()
            ))
        })?;
    object
        .program(PROG_NAME)
        .expect("the counter has its program")
        .trace(ext, func)
        .map_err(|e| Error::os(format!("trace {func} to count it"), e))?;
    object.load().map_err(|Refusal { errno, log }| {
        Error::refused(&format!("load a counter of {func}"), None, errno, &log)
    })?;
    let link = trace_link(object.loaded_prog(PROG_NAME))
        .map_err(|e| Error::os(format!("attach the counter of {func}"), e))?;
    Ok((id, link, dup(object.loaded_map(MAP_NAME))?))
}

/// Drops the counters in `dir` of extensions not in `running`: their links
/// (which would keep them loaded) and their rows.
pub(crate) fn sweep(dir: &Path, running: &[u32]) -> Result<()> {
    for (id, _) in links(dir) {
        if running.contains(&id) {
            continue;
        }
        for prefix in [LINK_PREFIX, MAP_PREFIX] {
            let path = dir.join(format!("{prefix}{id}"));
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::os(format!("remove {}", path.display()), e))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Whether `name`, in an interface's record directory, is a pin of the
/// counters.
pub(crate) fn is_pin(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.starts_with(LINK_PREFIX) || n.starts_with(MAP_PREFIX))
}

/// Whether the extension `id` is counted, by a counter pinned in `dir`.
pub(crate) fn is_counted(dir: &Path, id: u32) -> bool {
    dir.join(format!("{LINK_PREFIX}{id}")).exists()
}

/// The counters in `dir`, by extension program id, of those counted.
pub(crate) fn read(dir: &Path) -> HashMap<u32, Counters> {
    // A counter another process drops meanwhile is a counter gone.
    links(dir)
        .into_iter()
        .filter_map(|(id, _)| {
            let row = obj_get(&dir.join(format!("{MAP_PREFIX}{id}"))).ok()?;
            Some((id, counters::read(row.as_fd(), 0).ok()?))
        })
        .collect()
}

/// The counter links pinned in `dir`, by extension program id.
fn links(dir: &Path) -> Vec<(u32, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let id = e
                .file_name()
                .to_str()?
                .strip_prefix(LINK_PREFIX)?
                .parse()
                .ok()?;
            Some((id, e.path()))
        })
        .collect()
}
