//! Namespaces: entering a network namespace for one operation, and finding
//! the bpffs that every other process shares when this one runs in a mount
//! namespace of its own (`ip netns exec` remounts /sys, which hides it).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Where bpffs is mounted in the mount namespaces of ordinary processes.
pub const BPFFS: &str = "/sys/fs/bpf";

/// A network namespace, held open.
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    name: String,
}

impl Netns {
    /// `name` as `ip netns` names it (a file in /run/netns), or a path to a
    /// namespace file (such as /proc/PID/ns/net).
    pub fn open(name: &str) -> Result<Netns> {
        let path = Self::path(name)?;
        let file = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::UnknownNetns(name.to_string()),
            _ => Error::os(format!("open network namespace {}", path.display()), e),
        })?;
        Ok(Netns {
            fd: file.into(),
            name: name.to_string(),
        })
    }

    /// The file that [`Netns::open`] opens for `name`.
    pub(crate) fn path(name: &str) -> Result<PathBuf> {
        if name.contains('/') {
            Ok(PathBuf::from(name))
        } else if name.is_empty() || name == "." || name == ".." {
            Err(Error::InvalidArgument(format!(
                "'{name}' is not a network namespace name"
            )))
        } else {
            Ok(Path::new("/run/netns").join(name))
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Moves the calling thread into this namespace until the guard drops.
    pub(crate) fn enter(&self) -> Result<NetnsGuard> {
        let own = File::open("/proc/thread-self/ns/net")
            .map_err(|e| Error::os("open this thread's network namespace", e))?;
        crate::sys::setns_net(self.fd.as_raw_fd())
            .map_err(|e| Error::os(format!("enter network namespace {}", self.name), e))?;
        Ok(NetnsGuard { own })
    }

    /// Runs `f` with the calling thread in this namespace.
    pub fn run<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let _guard = self.enter()?;
        f()
    }

    /// Moves the calling thread into this namespace for good (a command
    /// that runs in it from start to end).
    pub fn enter_for_good(&self) -> Result<()> {
        std::mem::forget(self.enter()?);
        Ok(())
    }
}

/// Returns the thread to the namespace it came from.
pub(crate) struct NetnsGuard {
    own: File,
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        // Going back to a namespace we were in cannot fail for lack of
        // rights; if it did, the thread would act in the wrong namespace.
        crate::sys::setns_net(self.own.as_raw_fd())
            .expect("return to the thread's own network namespace");
    }
}

/// The network namespaces of /run/netns whose inode is one of `inodes`:
/// their names, by name.
pub(crate) fn named(inodes: &[u64]) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.metadata().is_ok_and(|m| inodes.contains(&m.ino())))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Of [`named`]'s namespaces, those that have an interface named `iface`.
pub(crate) fn holding_interface(iface: &str, inodes: &[u64]) -> Vec<String> {
    named(inodes)
        .into_iter()
        .filter(|name| {
            Netns::open(name)
                .and_then(|ns| ns.run(|| crate::attach::Interface::resolve(iface)))
                .is_ok()
        })
        .collect()
}

/// Runs `f` in `netns`, if given.
pub(crate) fn within<T>(netns: Option<&Netns>, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match netns {
        Some(ns) => ns.run(f),
        None => f(),
    }
}

/// The bpffs that other processes see at /sys/fs/bpf: there, or, when this
/// process's mount namespace hides it, the one of the nearest ancestor in
/// another mount namespace (the shell that ran `ip netns exec`), reached
/// through a directory fd held for the life of the process. Ancestors not
/// run by this user are not trusted.
pub fn bpffs() -> &'static str {
    static ROOT: OnceLock<String> = OnceLock::new();
    ROOT.get_or_init(|| {
        if crate::sys::check_bpffs(BPFFS).is_ok() {
            return BPFFS.into();
        }
        ancestor_bpffs().unwrap_or_else(|| BPFFS.into())
    })
}

fn ancestor_bpffs() -> Option<String> {
    let own_ns = std::fs::metadata("/proc/self/ns/mnt").ok()?.ino();
    let euid = crate::sys::euid();
    let mut pid = std::process::id();
    for _ in 0..64 {
        pid = parent_of(pid)?;
        if pid == 0 {
            return None;
        }
        let proc = PathBuf::from(format!("/proc/{pid}"));
        if std::fs::metadata(&proc).ok()?.uid() != euid {
            return None;
        }
        let ns = std::fs::metadata(proc.join("ns/mnt")).ok()?.ino();
        if ns == own_ns {
            continue;
        }
        let dir = proc.join("root").join(BPFFS.trim_start_matches('/'));
        let file = File::open(&dir).ok()?;
        crate::sys::check_bpffs_fd(&file, &dir.display().to_string()).ok()?;
        let fd: OwnedFd = file.into();
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        // Held for the life of the process: every pin path goes through it.
        std::mem::forget(fd);
        return Some(path);
    }
    None
}

fn parent_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_by_name_or_path() {
        assert_eq!(Netns::path("blue").unwrap(), Path::new("/run/netns/blue"));
        assert_eq!(
            Netns::path("/proc/1/ns/net").unwrap(),
            Path::new("/proc/1/ns/net")
        );
        for bad in ["", ".", ".."] {
            let e = Netns::path(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{bad:?}: {e}");
        }
        let e = Netns::open("xdpchain-no-such-netns").unwrap_err();
        assert!(
            matches!(e, Error::UnknownNetns(ref n) if n == "xdpchain-no-such-netns"),
            "{e}"
        );
    }
}
