//! Files, directories and namespaces: bpffs checks, the locks of state
//! directories, memfds and setns.

use std::ffi::c_int;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::cstring;
use crate::error::{Error, Result};

/// An anonymous in-memory file, for libbpf APIs that write to an fd.
pub(crate) fn memfd(name: &str) -> Result<OwnedFd> {
    let cname = cstring(name, "memfd name")?;
    // SAFETY: plain syscall; the fd is owned right away.
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(Error::os("memfd_create", io::Error::last_os_error()));
    }
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

const BPF_FS_MAGIC: i64 = 0xcafe4a11;

/// Whether `path` is on bpffs.
pub(crate) fn check_bpffs(path: &str) -> Result<()> {
    let c = cstring(path, "path")?;
    // SAFETY: statfs is plain data, valid all zeroes.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-parameter.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    if rc != 0 || st.f_type as i64 != BPF_FS_MAGIC {
        return Err(not_bpffs(path));
    }
    Ok(())
}

/// Whether the open directory `dir` (shown as `path`) is on bpffs.
pub(crate) fn check_bpffs_fd(dir: &std::fs::File, path: &str) -> Result<()> {
    // SAFETY: statfs is plain data, valid all zeroes.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-parameter; the fd is open.
    let rc = unsafe { libc::fstatfs(dir.as_raw_fd(), &mut st) };
    if rc != 0 || st.f_type as i64 != BPF_FS_MAGIC {
        return Err(not_bpffs(path));
    }
    Ok(())
}

/// Refuses the directory open as `dir` unless it is ours and no one else
/// may write it (`forbidden` mode bits clear): pins in it are trusted.
pub(crate) fn check_own_dir(
    dir: &std::fs::File,
    path: &str,
    forbidden: u32,
    want: &str,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = dir
        .metadata()
        .map_err(|e| Error::os(format!("stat {path}"), e))?;
    if !meta.is_dir() || meta.uid() != euid() || meta.mode() & forbidden != 0 {
        return Err(Error::UnsafePinDir {
            path: path.into(),
            reason: format!(
                "owned by uid {} with mode {:o}; want {want}",
                meta.uid(),
                meta.mode() & 0o7777
            ),
        });
    }
    Ok(())
}

/// setns(2) into the network namespace open as `fd`, for this thread.
pub(crate) fn setns_net(fd: c_int) -> io::Result<()> {
    // SAFETY: plain syscall on a caller's fd.
    if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// No bpffs at `path`: for a process that may not use BPF, that is a
/// question of privileges first (`ip netns exec` hides the bpffs of a
/// parent it cannot trust, say).
pub(crate) fn not_bpffs(path: &str) -> Error {
    match may_use_bpf() {
        true => Error::BpffsNotMounted { path: path.into() },
        false => Error::PermissionDenied {
            op: format!("use the bpffs at {path}"),
        },
    }
}

/// Whether this process holds CAP_BPF or CAP_SYS_ADMIN, as its effective
/// capabilities say.
fn may_use_bpf() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_BPF: u32 = 39;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    eff & (1 << CAP_SYS_ADMIN | 1 << CAP_BPF) != 0
}

/// The effective user id.
pub(crate) fn euid() -> u32 {
    // SAFETY: takes no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

/// Opens the directory `path` without following a symlink in its last
/// component (ELOOP or ENOTDIR then).
pub(crate) fn open_dir_nofollow(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
}

/// Blocks until this process holds the exclusive flock of `file`; closing
/// the file releases it.
pub(crate) fn flock_exclusive(file: &File) -> io::Result<()> {
    // SAFETY: plain syscall on an fd the caller keeps open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
