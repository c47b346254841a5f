//! Interfaces and the XDP programs on them: names and indexes through libc,
//! attachment through netlink (libbpf's bpf_xdp_* calls).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use libbpf_sys as sys;

use super::check;

/// The index of the interface named `name` in this thread's namespace.
pub(crate) fn if_index(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: c is a valid C string.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (index != 0).then_some(index)
}

/// The name of interface `index` in this thread's namespace.
pub(crate) fn if_name(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes, as if_indextoname wants.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: if_indextoname wrote a NUL-terminated name into buf.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// The indexes of the interfaces of this thread's namespace.
pub(crate) fn if_indexes() -> io::Result<Vec<u32>> {
    // SAFETY: if_nameindex returns an array ended by a zero entry, freed below.
    let head = unsafe { libc::if_nameindex() };
    if head.is_null() {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    // SAFETY: walks the array up to its zero entry, then frees it once.
    unsafe {
        let mut p = head;
        while (*p).if_index != 0 {
            out.push((*p).if_index);
            p = p.add(1);
        }
        libc::if_freenameindex(head);
    }
    Ok(out)
}

/// The ids of the XDP programs on interface `ifindex`: (driver mode, skb
/// mode), 0 where none runs.
pub(crate) fn xdp_query(ifindex: u32) -> io::Result<(u32, u32)> {
    let mut opts = sys::bpf_xdp_query_opts {
        sz: std::mem::size_of::<sys::bpf_xdp_query_opts>() as _,
        ..Default::default()
    };
    // SAFETY: opts is valid for the call.
    check(unsafe { sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) })?;
    Ok((opts.drv_prog_id, opts.skb_prog_id))
}

/// Puts `new` (or nothing) on interface `ifindex` with `flags`; with `old`,
/// only if `old` runs there (XDP_FLAGS_REPLACE is the caller's to set).
pub(crate) fn xdp_attach(
    ifindex: u32,
    new: Option<BorrowedFd<'_>>,
    flags: u32,
    old: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let opts = sys::bpf_xdp_attach_opts {
        sz: std::mem::size_of::<sys::bpf_xdp_attach_opts>() as _,
        old_prog_fd: old.map_or(0, |fd| fd.as_raw_fd()),
        ..Default::default()
    };
    let new_fd = new.map_or(-1, |f| f.as_raw_fd());
    // SAFETY: the fds are valid for the call; opts is valid.
    check(unsafe { sys::bpf_xdp_attach(ifindex as i32, new_fd, flags, &opts) }).map(drop)
}
