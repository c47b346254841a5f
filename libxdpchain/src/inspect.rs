//! Reading a chain back from the kernel: its config map says what runs in
//! which order, its stats map what each component returned. Works for the
//! process that built the chain and for any other alike.

use std::collections::HashSet;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::attach::{self, Interface, Seen};
use crate::counters;
use crate::dynamic;
use crate::error::{Error, Result};
use crate::libxdp;
use crate::plan::Mode;
use crate::root::{self, Config};
use crate::status::{ChainStatus, ComponentStatus, ForeignProgram};
use crate::sys::map_lookup;
use xdpchain_obj::btf::Btf;

/// A chain's root program found in the kernel.
pub(crate) struct Found {
    pub id: u32,
    pub kind: Mode,
    pub config: Config,
    pub stats: Option<OwnedFd>,
    /// The control word readers write (timing, dumps), where the root has one.
    pub ctl: Option<OwnedFd>,
    /// The ring of packets dumped, where the root has one.
    pub dump: Option<OwnedFd>,
}

/// The chain `prog` is the root of, if it is one.
pub(crate) fn config_of(prog: BorrowedFd<'_>) -> Result<Option<Found>> {
    let (name, id, map_ids) = crate::sys::prog_info(prog)?;
    let kind = match name.as_str() {
        root::PROG_NAME => Mode::Static,
        dynamic::PROG_NAME => Mode::Dynamic,
        _ => return Ok(None),
    };
    let mut config = None;
    let mut stats = None;
    let mut ctl = None;
    let mut dump = None;
    for map_id in map_ids {
        let fd = crate::sys::map_fd(map_id)?;
        let info = crate::sys::map_info(fd.as_fd())?;
        match crate::sys::c_name(&info.name).as_str() {
            root::CONFIG_SECTION
                if (root::CONFIG_V1_SIZE..=root::CONFIG_SIZE)
                    .contains(&(info.value_size as usize)) =>
            {
                let mut value = vec![0u8; info.value_size as usize];
                map_lookup(fd.as_fd(), 0, &mut value)
                    .map_err(|e| Error::os("read chain config", e))?;
                config = Config::from_bytes(&value);
            }
            root::STATS_MAP => stats = Some(fd),
            root::CTL_SECTION => ctl = Some(fd),
            root::DUMP_MAP => dump = Some(fd),
            _ => {}
        }
    }
    Ok(config.map(|config| Found {
        id,
        kind,
        config,
        stats,
        ctl,
        dump,
    }))
}

/// The slot functions that the static root `prog` still calls, by the
/// functions its func_info lists: a slot whose code was copied into a
/// generated root (or cannot run) has none. None where the kernel does
/// not tell.
fn called_slots(prog: BorrowedFd<'_>) -> Option<HashSet<String>> {
    let (types, bytes) = crate::sys::prog_functions(prog).ok()?;
    let btf = Btf::parse(&bytes).ok()?;
    Some(
        types
            .into_iter()
            .filter_map(|id| btf.type_by_id(id))
            .map(|t| btf.name(&t).to_string())
            .filter(|n| n.starts_with(root::SLOT_PREFIX))
            .collect(),
    )
}

pub(crate) fn status_of(prog: BorrowedFd<'_>) -> Result<Option<ChainStatus>> {
    let Some(Found {
        id: program_id,
        kind,
        config,
        stats,
        ..
    }) = config_of(prog)?
    else {
        return Ok(None);
    };
    let called = match kind {
        Mode::Static => called_slots(prog),
        _ => None,
    };
    let mut components = Vec::new();
    // Unnamed slots are an open chain's spare ones.
    for (slot, s) in config
        .slots
        .into_iter()
        .enumerate()
        .filter(|(_, s)| !s.name.is_empty())
    {
        let counters = match (&stats, config.counting) {
            (Some(fd), true) => Some(counters::read(fd.as_fd(), s.stat_index)?),
            _ => None,
        };
        let slot_fn = root::slot_function(slot);
        let is_called = called.as_ref().map(|c| c.contains(&slot_fn));
        let function = match kind {
            Mode::Static => is_called.filter(|&c| c).map(|_| slot_fn),
            _ => Some(s.name.clone()),
        };
        components.push(ComponentStatus {
            id: s.id,
            slot,
            name: s.name,
            priority: s.priority,
            continue_on: s.continue_on,
            counters,
            program_id: (kind == Mode::Static).then_some(program_id),
            owner: None,
            inlined: is_called.map(|c| !c),
            function,
        });
    }
    Ok(Some(ChainStatus {
        interface: None,
        mode: None,
        kind,
        libxdp_version: None,
        program_id,
        components,
        not_dynamic: None,
        device_bound: false,
    }))
}

/// The chain attached to `iface`, as the kernel runs it.
pub(crate) fn status(iface: &Interface) -> Result<ChainStatus> {
    let iface = iface.clone();
    let Some(seen) = attach::observe(&iface)? else {
        return Err(Error::NoChain(iface.name));
    };
    let mut st = match status_of(seen.fd.as_fd())? {
        Some(st) => st,
        None if seen.name == libxdp::PROG_NAME => libxdp::running(&iface)?
            .map(|(_lock, r)| libxdp::status(&r))
            .ok_or_else(|| Error::NoChain(iface.name.clone()))?,
        None => return Err(Error::NoChain(iface.name)),
    };
    st.interface = Some(iface);
    st.mode = Some(seen.mode);
    Ok(st)
}

/// The program of another loader on `iface`, if one runs there.
pub(crate) fn foreign(iface: &Interface) -> Result<Option<ForeignProgram>> {
    let Some(seen) = attach::observe(iface)? else {
        return Ok(None);
    };
    if seen.name == libxdp::PROG_NAME || config_of(seen.fd.as_fd())?.is_some() {
        return Ok(None);
    }
    Ok(Some(ForeignProgram {
        interface: iface.clone(),
        mode: seen.mode,
        program_id: seen.id,
        name: crate::sys::prog_func_name(seen.fd.as_fd()).unwrap_or(seen.name),
    }))
}

/// The indexes of this network namespace's interfaces.
pub(crate) fn interfaces() -> Result<Vec<u32>> {
    crate::sys::if_indexes().map_err(|e| Error::os("list interfaces", e))
}

/// The program `seen` on `iface`, if a chain may replace it: a chain
/// always, the program of another loader only with `force`, a libxdp
/// dispatcher never (its programs live in libxdp's pins; [`crate::Store`]
/// joins it instead).
pub(crate) fn replaceable(
    iface: &Interface,
    seen: Option<Seen>,
    force: bool,
) -> Result<Option<Seen>> {
    let Some(seen) = seen else {
        return Ok(None);
    };
    if config_of(seen.fd.as_fd())?.is_none() {
        if seen.name == libxdp::PROG_NAME {
            return Err(Error::LibxdpDispatcher {
                iface: iface.name.clone(),
                prog_id: seen.id,
            });
        }
        if !force {
            return Err(Error::ForeignProgram {
                iface: iface.name.clone(),
                prog_id: seen.id,
                name: seen.name,
            });
        }
    }
    Ok(Some(seen))
}
