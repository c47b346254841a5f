//! Attaching to interfaces: name resolution, what runs there, and atomic
//! replacement through netlink with the expected old program.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use libbpf_sys::{
    XDP_FLAGS_DRV_MODE, XDP_FLAGS_REPLACE, XDP_FLAGS_SKB_MODE, XDP_FLAGS_UPDATE_IF_NOEXIST,
};

use crate::error::{Error, Result};
use crate::sys;

/// Where the program runs: in the driver, or in the generic (skb) path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachMode {
    #[default]
    Native,
    Skb,
}

/// How a chain goes onto an interface.
#[derive(Clone, Copy, Debug, Default)]
pub struct AttachOptions {
    pub mode: AttachMode,
    /// Replace a program of another loader.
    pub force: bool,
    /// Bind a new chain to its interface though no component reads RX
    /// metadata yet, so that one can join a dynamic chain later: the
    /// kernel binds an extension once, when it loads it. A chain with such
    /// a component is bound anyway.
    pub device_bound: bool,
}

impl AttachMode {
    fn flags(self) -> u32 {
        match self {
            AttachMode::Native => XDP_FLAGS_DRV_MODE,
            AttachMode::Skb => XDP_FLAGS_SKB_MODE,
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
        let index = match iface.parse::<u32>() {
            Ok(i) => Some(i),
            Err(_) => sys::if_index(iface),
        };
        let found = index.and_then(|index| Some((sys::if_name(index)?, index)));
        let (name, index) = found.ok_or_else(|| Error::UnknownInterface(iface.to_string()))?;
        Ok(Interface { name, index })
    }
}

/// The XDP program attached to the interface, in any mode: (id, mode).
pub(crate) fn attached(iface: &Interface) -> Result<Option<(u32, AttachMode)>> {
    let ids = sys::xdp_query(iface.index)
        .map_err(|e| Error::os(format!("query XDP on {}", iface.name), e))?;
    Ok(match ids {
        (0, 0) => None,
        (0, id) => Some((id, AttachMode::Skb)),
        (id, _) => Some((id, AttachMode::Native)),
    })
}

/// The program on an interface, as an operation saw it.
pub(crate) struct Seen {
    pub id: u32,
    pub mode: AttachMode,
    pub fd: OwnedFd,
    /// Its name as the kernel keeps it (cut at 15 characters).
    pub name: String,
}

/// What runs on `iface` now, if anything. An operation looks once, under
/// the lock of the state it changes; the swap that ends it replaces
/// exactly the program seen, or fails.
pub(crate) fn observe(iface: &Interface) -> Result<Option<Seen>> {
    let Some((id, mode)) = attached(iface)? else {
        return Ok(None);
    };
    let fd = sys::prog_fd(id)?;
    let (name, _, _) = sys::prog_info(fd.as_fd())?;
    Ok(Some(Seen { id, mode, fd, name }))
}

/// Puts `new` (or nothing) on the interface, replacing exactly `old`: if
/// anything else runs there by now, the kernel refuses and nothing changes.
pub(crate) fn replace(
    iface: &Interface,
    mode: AttachMode,
    new: Option<BorrowedFd<'_>>,
    old: Option<BorrowedFd<'_>>,
) -> Result<()> {
    let flags = mode.flags()
        | match old {
            Some(_) => XDP_FLAGS_REPLACE,
            None => XDP_FLAGS_UPDATE_IF_NOEXIST,
        };
    sys::xdp_attach(iface.index, new, flags, old).map_err(|e| match e.raw_os_error() {
        Some(libc::EEXIST) | Some(libc::EBUSY) => Error::Raced {
            iface: iface.name.clone(),
        },
        Some(libc::ENODEV) => Error::UnknownInterface(iface.name.clone()),
        // The driver refuses a program without multi-buffer support where
        // packets can exceed a page; before 5.18 it refuses every program.
        Some(libc::ERANGE) if !sys::multi_buffer_xdp().unwrap_or(true) => Error::Unsupported(format!(
            "{}: its MTU lets packets exceed a page, and this kernel has no multi-buffer XDP (Linux 5.18 has it): lower the MTU of the interface and of its peer",
            iface.name
        )),
        Some(libc::ERANGE) => Error::NeedsFrags {
            iface: iface.name.clone(),
            without: Vec::new(),
        },
        _ => Error::os(
            format!("attach XDP to {} ({} mode)", iface.name, mode.name()),
            e,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Interfaces by name or index, resolved without privileges; the
    /// loopback is in every namespace.
    #[test]
    fn interfaces_resolve_by_name_or_index() {
        let lo = Interface::resolve("lo").unwrap();
        assert_eq!(Interface::resolve(&lo.index.to_string()).unwrap(), lo);
        for missing in ["xdpchain-none0", "4294967295"] {
            let e = Interface::resolve(missing).unwrap_err();
            assert!(
                matches!(e, Error::UnknownInterface(ref n) if n == missing),
                "{e}"
            );
        }
        assert_eq!(
            (AttachMode::Native.name(), AttachMode::Skb.name()),
            ("native", "skb")
        );
        assert_ne!(AttachMode::Native.flags(), AttachMode::Skb.flags());
    }
}
