//! Attaching to interfaces: name resolution, what runs there, and atomic
//! replacement through netlink with the expected old program.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use libbpf_sys as sys;

use crate::error::{Error, Result};
use crate::sys::check;

/// Where the program runs: in the driver, or in the generic (skb) path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachMode {
    #[default]
    Native,
    Skb,
}

impl AttachMode {
    fn flags(self) -> u32 {
        match self {
            AttachMode::Native => sys::XDP_FLAGS_DRV_MODE,
            AttachMode::Skb => sys::XDP_FLAGS_SKB_MODE,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            AttachMode::Native => "native",
            AttachMode::Skb => "skb",
        }
    }
}

/// An interface, resolved once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
}

impl Interface {
    /// By name, or by index given as digits.
    pub fn resolve(iface: &str) -> Result<Interface> {
        let unknown = || Error::UnknownInterface(iface.to_string());
        let index = match iface.parse::<u32>() {
            Ok(i) => i,
            Err(_) => {
                let c = CString::new(iface).map_err(|_| unknown())?;
                // SAFETY: c is a valid C string.
                unsafe { libc::if_nametoindex(c.as_ptr()) }
            }
        };
        if index == 0 {
            return Err(unknown());
        }
        let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
        // SAFETY: buf has IF_NAMESIZE bytes, as if_indextoname wants.
        let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
        if p.is_null() {
            return Err(unknown());
        }
        // SAFETY: if_indextoname wrote a NUL-terminated name into buf.
        let name = unsafe { std::ffi::CStr::from_ptr(p) }
            .to_string_lossy()
            .into_owned();
        Ok(Interface { name, index })
    }
}

/// The XDP program attached to the interface, in any mode: (id, mode).
pub(crate) fn attached(iface: &Interface) -> Result<Option<(u32, AttachMode)>> {
    let mut opts = sys::bpf_xdp_query_opts {
        sz: std::mem::size_of::<sys::bpf_xdp_query_opts>() as _,
        ..Default::default()
    };
    // SAFETY: opts is valid for the call.
    check(unsafe { sys::bpf_xdp_query(iface.index as i32, 0, &mut opts) })
        .map_err(|e| Error::os(format!("query XDP on {}", iface.name), e))?;
    Ok(match (opts.drv_prog_id, opts.skb_prog_id) {
        (0, 0) => None,
        (0, id) => Some((id, AttachMode::Skb)),
        (id, _) => Some((id, AttachMode::Native)),
    })
}

/// Puts `new` (or nothing) on the interface, replacing exactly `old`: if
/// anything else runs there by now, the kernel refuses and nothing changes.
pub(crate) fn replace(
    iface: &Interface,
    mode: AttachMode,
    new: Option<BorrowedFd<'_>>,
    old: Option<BorrowedFd<'_>>,
) -> Result<()> {
    let mut flags = mode.flags();
    let mut opts = sys::bpf_xdp_attach_opts {
        sz: std::mem::size_of::<sys::bpf_xdp_attach_opts>() as _,
        ..Default::default()
    };
    match old {
        Some(fd) => {
            flags |= sys::XDP_FLAGS_REPLACE;
            opts.old_prog_fd = fd.as_raw_fd();
        }
        None => flags |= sys::XDP_FLAGS_UPDATE_IF_NOEXIST,
    }
    let new_fd = new.map_or(-1, |f| f.as_raw_fd());
    // SAFETY: fds are valid for the call; opts is valid.
    check(unsafe { sys::bpf_xdp_attach(iface.index as i32, new_fd, flags, &opts) }).map_err(
        |e| match e.raw_os_error() {
            Some(libc::EEXIST) | Some(libc::EBUSY) => Error::Raced {
                iface: iface.name.clone(),
            },
            Some(libc::ENODEV) => Error::UnknownInterface(iface.name.clone()),
            _ => Error::os(
                format!("attach XDP to {} ({} mode)", iface.name, mode.name()),
                e,
            ),
        },
    )?;
    Ok(())
}

/// A program's fd from its id.
pub(crate) fn prog_fd(id: u32) -> Result<OwnedFd> {
    // SAFETY: plain syscall wrapper; the fd is owned right away.
    let fd = check(unsafe { sys::bpf_prog_get_fd_by_id(id) })
        .map_err(|e| Error::os(format!("open program {id}"), e))?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn map_fd(id: u32) -> Result<OwnedFd> {
    // SAFETY: as above.
    let fd = check(unsafe { sys::bpf_map_get_fd_by_id(id) })
        .map_err(|e| Error::os(format!("open map {id}"), e))?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn c_name(raw: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Name, id and map ids of a loaded program.
pub(crate) fn prog_info(fd: BorrowedFd<'_>) -> Result<(String, u32, Vec<u32>)> {
    let mut ids = vec![0u32; 64];
    let mut info = sys::bpf_prog_info {
        nr_map_ids: ids.len() as u32,
        map_ids: ids.as_mut_ptr() as u64,
        ..Default::default()
    };
    let mut len = std::mem::size_of::<sys::bpf_prog_info>() as u32;
    // SAFETY: info points at a bpf_prog_info and map_ids at nr_map_ids u32s.
    check(unsafe { sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) })
        .map_err(|e| Error::os("read program info", e))?;
    ids.truncate((info.nr_map_ids as usize).min(64));
    Ok((c_name(&info.name), info.id, ids))
}

pub(crate) fn map_info(fd: BorrowedFd<'_>) -> Result<sys::bpf_map_info> {
    let mut info = sys::bpf_map_info::default();
    let mut len = std::mem::size_of::<sys::bpf_map_info>() as u32;
    // SAFETY: info points at a bpf_map_info of len bytes.
    check(unsafe { sys::bpf_map_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) })
        .map_err(|e| Error::os("read map info", e))?;
    Ok(info)
}

/// The full name of a program's main function, from its BTF (the kernel's
/// program name is cut at 15 characters).
pub(crate) fn prog_func_name(fd: BorrowedFd<'_>) -> Option<String> {
    let mut func = sys::bpf_func_info::default();
    let mut info = sys::bpf_prog_info {
        nr_func_info: 1,
        func_info_rec_size: std::mem::size_of::<sys::bpf_func_info>() as u32,
        func_info: &mut func as *mut _ as u64,
        ..Default::default()
    };
    let mut len = std::mem::size_of::<sys::bpf_prog_info>() as u32;
    // SAFETY: info points at a bpf_prog_info, func_info at one record.
    check(unsafe { sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) }).ok()?;
    if info.btf_id == 0 || info.nr_func_info == 0 {
        return None;
    }
    // SAFETY: the BTF is ours until freed below; names point into it.
    unsafe {
        let btf = sys::btf__load_from_kernel_by_id(info.btf_id);
        if btf.is_null() {
            return None;
        }
        let t = sys::btf__type_by_id(btf, func.type_id);
        let name = (!t.is_null())
            .then(|| sys::btf__name_by_offset(btf, (*t).name_off))
            .filter(|p| !p.is_null())
            .map(|p| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned());
        sys::btf__free(btf);
        name
    }
}
