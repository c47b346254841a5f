//! Pin state: chains recorded in bpffs, so that any process can list one,
//! add to it and remove from it, one at a time, and a process killed in the
//! middle of an operation leaves nothing that the next one cannot finish.
//! This module reads and writes the pins, locks the store and settles what
//! a killed operation left; the record's text is record.rs's, and the
//! operations are the store's (store/). docs/protocol.md describes the
//! layout, the lock, the order of the steps and recovery, for other
//! implementations too.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::attach::{self, Interface, Seen};
use crate::component::Component;
use crate::error::{Error, Result};
use crate::ext_counters;
use crate::libxdp;
use crate::owner::Stamp;
use crate::plan::{ComponentId, Member, Mode, Reuse};
use crate::record::{owners_text, parse_owners, Record};
use crate::sys::{map_lookup, map_update, obj_get, pin};

pub(crate) const STATE: &str = "state";
pub(crate) const STATE_NEW: &str = "state_new";
pub(crate) const STATS: &str = "stats";
pub(crate) const OBJECT: &str = "object";
/// A dynamic chain's extension program.
pub(crate) const PROG: &str = "prog";
/// A dynamic chain's freplace link, suffixed with the dispatcher's id.
pub(crate) const LINK_PREFIX: &str = "link_";
/// Owners of the programs we added to a libxdp dispatcher.
pub(crate) const LIBXDP_OWNERS: &str = "libxdp_owners";
/// The maps that components pin by name, where the chain's components
/// share them; they go with the chain.
pub(crate) const MAPS: &str = "maps";
pub(crate) const CHUNK: usize = 64 << 10;

/// The directory lock; released when dropped, or when the process dies.
pub(crate) struct Lock {
    _dir: File,
}

/// Creates (0700) and locks the directory, refusing one that another
/// user could have planted or changed.
pub(crate) fn lock(store: &Path) -> Result<Lock> {
    let path = store;
    let shown = || path.display().to_string();
    if let (false, Some(parent)) = (path.exists(), path.parent()) {
        crate::sys::check_bpffs(&parent.display().to_string())?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(crate::sys::not_bpffs(&shown()))
        }
        Err(e) => return Err(Error::os(format!("create {}", shown()), e)),
    }
    let file = crate::sys::open_dir_nofollow(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::ENOTDIR) => Error::UnsafePinDir {
            path: shown(),
            reason: "not a directory (a symlink?)".into(),
        },
        _ => Error::os(format!("open {}", shown()), e),
    })?;
    crate::sys::check_own_dir(&file, &shown(), 0o077, "ours and 0700")?;
    crate::sys::check_bpffs(&shown())?;
    crate::sys::flock_exclusive(&file).map_err(|e| Error::os("lock pin directory", e))?;
    Ok(Lock { _dir: file })
}

/// Removes the record directory `dir` of an interface, then its
/// namespace's, where they hold nothing: a namespace's directory goes with
/// its last chain, and a change that failed leaves none behind. Under the
/// store's lock, so that no other operation is filling them.
pub(crate) fn remove_if_empty(dir: &Path) {
    let maps = dir.join(MAPS);
    for d in [Some(maps.as_path()), Some(dir), dir.parent()]
        .into_iter()
        .flatten()
    {
        // rmdir refuses a directory that holds anything.
        let _ = std::fs::remove_dir(d);
    }
}

/// Where the components of the chain recorded in `dir` pin their maps by
/// name.
pub(crate) fn maps_dir(dir: &Path) -> String {
    dir.join(MAPS).display().to_string()
}

/// This thread's network namespace's directory in the store `store`.
pub(crate) fn netns_dir(store: &Path) -> Result<PathBuf> {
    let meta = std::fs::metadata("/proc/thread-self/ns/net")
        .map_err(|e| Error::os("read network namespace", e))?;
    Ok(store.join(meta.ino().to_string()))
}

/// Removes the records of this namespace's chains that no longer run
/// (but `except`'s), and with `gone_namespaces` those of namespaces that
/// no longer exist.
pub(crate) fn sweep(
    store: &Path,
    except: Option<&Path>,
    gone_namespaces: bool,
) -> Result<Vec<PathBuf>> {
    let own = netns_dir(store)?;
    let mut removed = Vec::new();
    // Interfaces of this namespace whose chain no longer runs.
    for e in std::fs::read_dir(&own).into_iter().flatten().flatten() {
        let dir = e.path();
        if Some(dir.as_path()) == except {
            continue;
        }
        let index = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok());
        let live = match index.map(|i| Interface::resolve(&i.to_string())) {
            Some(Ok(iface)) => {
                let running = Running::of(attach::observe(&iface)?.as_ref());
                recover(&dir, &iface, running)?.is_some() || dir.join(LIBXDP_OWNERS).exists()
            }
            _ => false,
        };
        if !live {
            remove_tree(&dir)?;
            removed.push(dir);
        }
    }
    // Namespaces that are gone, and their interfaces with them. Only on
    // request: a namespace this process cannot see (held only by another
    // mount namespace) would look gone.
    let others: Vec<(u64, PathBuf)> = std::fs::read_dir(store)
        .map_err(|e| Error::os(format!("list {}", store.display()), e))?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .filter(|(_, p)| *p != own)
        .collect();
    if gone_namespaces && !others.is_empty() {
        let live = live_netns();
        for (ino, dir) in others {
            if !live.contains(&ino) {
                remove_tree(&dir)?;
                removed.push(dir);
            }
        }
    }
    // Fails while it holds a chain; the next operation recreates it.
    let _ = std::fs::remove_dir(&own);
    Ok(removed)
}

/// What an interface runs, as far as recovery goes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Running {
    Nothing,
    /// A libxdp dispatcher.
    Libxdp,
    /// Any other program, by id.
    Program(u32),
}

impl Running {
    pub(crate) fn of(seen: Option<&Seen>) -> Running {
        match seen {
            None => Running::Nothing,
            Some(s) if s.name == libxdp::PROG_NAME => Running::Libxdp,
            Some(s) => Running::Program(s.id),
        }
    }
}

/// Settles what a killed operation left: the record that names the
/// program on the interface is the true one; any other, and anything
/// only it referred to, is unpinned. None if no chain of ours runs there.
pub(crate) fn recover(dir: &Path, iface: &Interface, running: Running) -> Result<Option<Record>> {
    if !dir.exists() {
        return Ok(None);
    }
    let attached = match running {
        Running::Nothing => None,
        Running::Program(id) => Some(id),
        Running::Libxdp => {
            // libxdp's pins hold its chain; ours, only who added what and
            // what counts it.
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.file_name() != LIBXDP_OWNERS
                    && e.file_name() != MAPS
                    && !ext_counters::is_pin(&e.file_name())
                {
                    remove_tree(&e.path())?;
                }
            }
            return Ok(None);
        }
    };
    let new = dir.join(STATE_NEW);
    if new.exists() {
        let promote = read_record(&new)
            .ok()
            .is_some_and(|r| Some(r.prog_id) == attached);
        // An operation stopped between the swap and the rename (promote),
        // or before the swap.
        log::info!(
            "{}: settling an interrupted operation ({})",
            iface.name,
            if promote {
                "its chain runs"
            } else {
                "its chain never ran"
            }
        );
        if promote {
            std::fs::rename(&new, dir.join(STATE)).map_err(|e| Error::os("promote state", e))?;
        } else {
            remove_tree(&new)?;
        }
    }
    let record = read_record(&dir.join(STATE))
        .ok()
        .filter(|r| Some(r.prog_id) == attached);
    let Some(record) = record else {
        log::debug!(
            "{}: the recorded chain no longer runs; its record goes",
            iface.name
        );
        remove_tree(dir)?;
        return Ok(None);
    };
    let keep: HashSet<String> = record
        .entries
        .iter()
        .map(|e| format!("c{}", e.tag))
        .collect();
    let live_link = format!("{LINK_PREFIX}{}", record.prog_id);
    for e in std::fs::read_dir(dir)
        .map_err(|e| Error::os("list pins", e))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if (name.starts_with('c') && !keep.contains(&name))
            || name == LIBXDP_OWNERS
            || ext_counters::is_pin(e.file_name().as_os_str())
        {
            remove_tree(&e.path())?;
        } else if keep.contains(&name) {
            // Links into dispatchers no longer attached.
            for pin in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                let pin_name = pin.file_name().to_string_lossy().into_owned();
                if pin_name.starts_with(LINK_PREFIX) && pin_name != live_link {
                    remove_tree(&pin.path())?;
                }
            }
        }
    }
    Ok(Some(record))
}

/// The recorded components, read back from their pinned objects.
pub(crate) fn members(dir: &Path, record: &Record) -> Result<Vec<Member>> {
    record
        .entries
        .iter()
        .map(|e| {
            let bytes = read_object(&dir.join(format!("c{}", e.tag)).join(OBJECT), e.size)?;
            let component = Component::from_bytes(bytes, &e.source, Some(&e.program))?
                .with_priority(e.priority)
                .with_continue_on(e.continue_on)
                .with_traceable(e.traceable);
            Ok(Member {
                id: ComponentId(e.id),
                row: e.row,
                tag: e.tag,
                component,
            })
        })
        .collect()
}

/// The owners recorded in `dir` for the programs of a libxdp dispatcher
/// (none if the record is missing or unreadable).
pub(crate) fn read_libxdp_owners(dir: &Path) -> HashMap<u32, Stamp> {
    let Ok(fd) = obj_get(&dir.join(LIBXDP_OWNERS)) else {
        return HashMap::new();
    };
    let text = read_map_bytes(fd.as_fd(), None).unwrap_or_default();
    parse_owners(&String::from_utf8_lossy(&text))
}

/// Replaces the owners recorded in `dir` (created if missing) with
/// `owners`, atomically.
pub(crate) fn write_libxdp_owners(dir: &Path, owners: HashMap<u32, Stamp>) -> Result<()> {
    mkdirs(dir)?;
    let text = owners_text(&owners);
    let new = dir.join(format!("{LIBXDP_OWNERS}_new"));
    let _ = remove_tree(&new);
    pin(
        frozen_map("xdpc_owners", text.as_bytes(), text.len())?.as_fd(),
        &new,
    )?;
    std::fs::rename(&new, dir.join(LIBXDP_OWNERS)).map_err(|e| Error::os("record owners", e))
}

/// The pinned extension programs of the components that stay in a dynamic
/// chain, by tag.
pub(crate) fn pinned_progs(
    dir: &Path,
    old_tags: &HashSet<u64>,
    kind: Mode,
) -> Result<HashMap<u64, OwnedFd>> {
    if kind != Mode::Dynamic {
        return Ok(HashMap::new());
    }
    old_tags
        .iter()
        .map(|tag| Ok((*tag, obj_get(&dir.join(format!("c{tag}/{PROG}")))?)))
        .collect()
}

/// Network namespaces that still exist, as far as this process can see:
/// those of processes, those held open by processes, and those bind-mounted
/// (`ip netns add`) in this mount namespace.
pub(crate) fn live_netns() -> HashSet<u64> {
    fn ns_ino(link: &str) -> Option<u64> {
        link.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
    }
    let read = |p: PathBuf| std::fs::read_link(p).ok().and_then(|l| ns_ino(l.to_str()?));
    let mut live = HashSet::new();
    for proc in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if !proc
            .file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        {
            continue;
        }
        live.extend(read(proc.path().join("ns/net")));
        for fd in std::fs::read_dir(proc.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            live.extend(read(fd.path()));
        }
    }
    // mountinfo: "ID PARENT MAJ:MIN ROOT POINT ... - FSTYPE SOURCE OPTIONS"
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mountinfo.lines().filter(|l| l.contains(" - nsfs ")) {
        live.extend(line.split(' ').nth(3).and_then(ns_ino));
    }
    live
}

/// The pinned maps of the components that stay (of a static chain: a
/// dynamic one keeps them with its extension programs), and the counters.
pub(crate) fn reuse_from_pins(
    dir: &Path,
    members: &[Member],
    old_tags: &HashSet<u64>,
    kind: Mode,
) -> Result<Reuse> {
    let mut reuse = Reuse::default();
    let stats = dir.join(STATS);
    if stats.exists() {
        reuse.stats = Some(obj_get(&stats)?);
    }
    for m in members.iter().filter(|m| old_tags.contains(&m.tag)) {
        let mut maps = HashMap::new();
        if kind == Mode::Dynamic {
            reuse.maps.insert(m.tag, maps);
            continue;
        }
        let cdir = dir.join(format!("c{}", m.tag));
        for e in std::fs::read_dir(&cdir)
            .map_err(|e| Error::os(format!("list {}", cdir.display()), e))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name != OBJECT && name != PROG && !name.starts_with(LINK_PREFIX) {
                maps.insert(name.replace('%', "."), obj_get(&e.path())?);
            }
        }
        reuse.maps.insert(m.tag, maps);
    }
    Ok(reuse)
}

pub(crate) fn mkdirs(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(dir)
        .map_err(|e| Error::os(format!("create {}", dir.display()), e))
}

pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    let res = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match res {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(Error::os(format!("unpin {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

/// An array map holding `data` in `chunk`-byte values, frozen so that no
/// one changes it once written.
pub(crate) fn frozen_map(name: &str, data: &[u8], chunk: usize) -> Result<OwnedFd> {
    let chunk = chunk.max(1);
    let entries = data.len().div_ceil(chunk).max(1);
    let fd = crate::sys::array_map(name, chunk as u32, entries as u32)?;
    let mut value = vec![0u8; chunk];
    for i in 0..entries {
        let part = &data[(i * chunk).min(data.len())..((i + 1) * chunk).min(data.len())];
        value[..part.len()].copy_from_slice(part);
        value[part.len()..].fill(0);
        map_update(fd.as_fd(), i as u32, &value).map_err(|e| Error::os("write state map", e))?;
    }
    crate::sys::map_freeze(fd.as_fd()).map_err(|e| Error::os("freeze state map", e))?;
    Ok(fd)
}

/// The bytes a [`frozen_map`] holds, `len` of them.
pub(crate) fn read_map_bytes(fd: BorrowedFd<'_>, len: Option<usize>) -> Result<Vec<u8>> {
    let info = crate::sys::map_info(fd)?;
    let chunk = info.value_size as usize;
    let mut out = Vec::with_capacity(chunk * info.max_entries as usize);
    let mut value = vec![0u8; chunk];
    for key in 0..info.max_entries {
        map_lookup(fd, key, &mut value).map_err(|e| Error::os("read state map", e))?;
        out.extend_from_slice(&value);
    }
    if let Some(len) = len {
        if len > out.len() {
            return Err(Error::Malformed {
                name: "pinned object".into(),
                reason: format!("{len} bytes recorded, {} stored", out.len()),
            });
        }
        out.truncate(len);
    }
    Ok(out)
}

pub(crate) fn read_object(path: &Path, len: usize) -> Result<Vec<u8>> {
    read_map_bytes(obj_get(path)?.as_fd(), Some(len))
}

pub(crate) fn read_record(path: &Path) -> Result<Record> {
    let bytes = read_map_bytes(obj_get(path)?.as_fd(), None)?;
    Record::parse(&String::from_utf8_lossy(&bytes)).ok_or_else(|| Error::Malformed {
        name: path.display().to_string(),
        reason: "not a chain record".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record directory goes with its namespace's once both are empty,
    /// and never while they hold anything.
    #[test]
    fn only_empty_directories_are_removed() {
        let ns = std::env::temp_dir().join(format!("xdpchain-pins-{}", std::process::id()));
        let (eth0, eth1) = (ns.join("eth0"), ns.join("eth1"));
        std::fs::create_dir_all(eth0.join(MAPS)).unwrap();
        std::fs::create_dir_all(&eth1).unwrap();
        std::fs::write(eth1.join("record"), b"x").unwrap();
        assert_eq!(maps_dir(&eth0), format!("{}/{MAPS}", eth0.display()));
        remove_if_empty(&eth0);
        assert!(!eth0.exists() && eth1.exists());
        remove_if_empty(&eth1);
        assert!(eth1.join("record").exists());
        std::fs::remove_file(eth1.join("record")).unwrap();
        remove_if_empty(&eth1);
        assert!(!ns.exists());
    }
}
