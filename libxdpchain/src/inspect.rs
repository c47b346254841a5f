//! Reading a chain back from the kernel: its config map says what runs in
//! which order, its stats map what each component returned. Works for the
//! process that built the chain and for any other alike.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use libbpf_sys as sys;

use crate::attach::{self, AttachMode, Interface};
use crate::chain::Mode;
use crate::component::{Verdict, Verdicts};
use crate::dynamic;
use crate::error::{Error, Result};
use crate::libxdp;
use crate::owner::Owner;
use crate::root::{self, Config};
use crate::sys::{check, map_lookup, map_update};

/// Packets a component ran on, by the verdict it returned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Indexed by verdict code (aborted, drop, pass, tx, redirect).
    pub verdicts: [u64; 5],
    /// Return values that are no XDP verdict.
    pub other: u64,
}

impl Counters {
    pub fn packets(&self) -> u64 {
        self.verdicts.iter().sum::<u64>() + self.other
    }
    pub fn verdict(&self, v: Verdict) -> u64 {
        self.verdicts[v as usize]
    }
}

/// One component as the kernel runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentStatus {
    /// Stable while the component stays in the chain; `xdpchain status` shows it.
    pub id: u32,
    /// Position in run order.
    pub slot: usize,
    pub name: String,
    pub priority: i32,
    pub continue_on: Verdicts,
    /// None when the chain was built with counting off.
    pub counters: Option<Counters>,
    /// The program that runs the component: the chain's own for a linked
    /// one, its extension program otherwise. None where this process cannot
    /// tell (the extensions of a dynamic chain that another process built).
    pub program_id: Option<u32>,
    /// Who added it to a shared chain; None where no record says (a chain
    /// built in one process, programs that xdp-loader added).
    pub owner: Option<Owner>,
}

#[derive(Clone, Debug)]
pub struct ChainStatus {
    pub interface: Option<Interface>,
    pub mode: Option<AttachMode>,
    /// Static or Dynamic.
    pub kind: Mode,
    /// Set when the chain is a libxdp dispatcher (libxdp's layout, this
    /// version of its protocol), whose components are extension programs
    /// known by their program ids, without counters.
    pub libxdp_version: Option<u8>,
    pub program_id: u32,
    pub components: Vec<ComponentStatus>,
}

impl ChainStatus {
    /// Whose layout the chain follows: `xdpchain`, or `libxdp vN`.
    pub fn layout(&self) -> String {
        match self.libxdp_version {
            Some(v) => format!("libxdp v{v}"),
            None => "xdpchain".into(),
        }
    }
}

/// A chain's root program found in the kernel.
pub(crate) struct Found {
    pub id: u32,
    pub kind: Mode,
    pub config: Config,
    pub stats: Option<OwnedFd>,
}

/// The chain `prog` is the root of, if it is one.
pub(crate) fn config_of(prog: BorrowedFd<'_>) -> Result<Option<Found>> {
    let (name, id, map_ids) = attach::prog_info(prog)?;
    let kind = match name.as_str() {
        root::PROG_NAME => Mode::Static,
        dynamic::PROG_NAME => Mode::Dynamic,
        _ => return Ok(None),
    };
    let mut config = None;
    let mut stats = None;
    for map_id in map_ids {
        let fd = attach::map_fd(map_id)?;
        let info = attach::map_info(fd.as_fd())?;
        match attach::c_name(&info.name).as_str() {
            root::CONFIG_SECTION if info.value_size as usize >= root::CONFIG_SIZE => {
                let mut value = vec![0u8; info.value_size as usize];
                map_lookup(fd.as_fd(), 0, &mut value)
                    .map_err(|e| Error::os("read chain config", e))?;
                config = Config::from_bytes(&value);
            }
            root::STATS_MAP => stats = Some(fd),
            _ => {}
        }
    }
    Ok(config.map(|config| Found {
        id,
        kind,
        config,
        stats,
    }))
}

/// A zeroed buffer for one row of the per-CPU stats map.
fn stats_row() -> Result<Vec<u64>> {
    // SAFETY: no arguments.
    let cpus = check(unsafe { sys::libbpf_num_possible_cpus() })
        .map_err(|e| Error::os("count CPUs", e))?;
    Ok(vec![0u64; root::STATS_WORDS * cpus as usize])
}

/// Sums the per-CPU counters of one stats row.
pub(crate) fn read_counters(stats: BorrowedFd<'_>, row: u32) -> Result<Counters> {
    let mut values = stats_row()?;
    map_lookup(stats, row, &mut values).map_err(|e| Error::os("read counters", e))?;
    let mut c = Counters::default();
    for cpu in values.chunks(root::STATS_WORDS) {
        for (i, v) in c.verdicts.iter_mut().enumerate() {
            *v += cpu[i];
        }
        c.other += cpu[5];
    }
    Ok(c)
}

/// Zeroes one stats row on every CPU.
pub(crate) fn clear_counters(stats: BorrowedFd<'_>, row: u32) -> Result<()> {
    let values = stats_row()?;
    map_update(stats, row, &values).map_err(|e| Error::os("clear counters", e))?;
    Ok(())
}

pub(crate) fn status_of(prog: BorrowedFd<'_>) -> Result<Option<ChainStatus>> {
    let Some(Found {
        id: program_id,
        kind,
        config,
        stats,
    }) = config_of(prog)?
    else {
        return Ok(None);
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
            (Some(fd), true) => Some(read_counters(fd.as_fd(), s.stat_index)?),
            _ => None,
        };
        components.push(ComponentStatus {
            id: s.stat_index,
            slot,
            name: s.name,
            priority: s.priority,
            continue_on: s.continue_on,
            counters,
            program_id: (kind == Mode::Static).then_some(program_id),
            owner: None,
        });
    }
    Ok(Some(ChainStatus {
        interface: None,
        mode: None,
        kind,
        libxdp_version: None,
        program_id,
        components,
    }))
}

/// The chain attached to `iface`, as the kernel runs it.
pub(crate) fn status(iface: &Interface) -> Result<ChainStatus> {
    let iface = iface.clone();
    let Some((id, mode)) = attach::attached(&iface)? else {
        return Err(Error::NoChain(iface.name));
    };
    let fd = attach::prog_fd(id)?;
    let mut st = match status_of(fd.as_fd())? {
        Some(st) => st,
        None => {
            let _lock = libxdp::lock()?;
            let running = libxdp::running(&iface)?;
            running
                .as_ref()
                .map(libxdp::status)
                .ok_or_else(|| Error::NoChain(iface.name.clone()))?
        }
    };
    st.interface = Some(iface);
    st.mode = Some(mode);
    Ok(st)
}

/// The indexes of this network namespace's interfaces.
pub(crate) fn interfaces() -> Result<Vec<u32>> {
    // SAFETY: if_nameindex returns an array ended by a zero entry, freed below.
    let head = unsafe { libc::if_nameindex() };
    if head.is_null() {
        return Err(Error::os(
            "list interfaces",
            std::io::Error::last_os_error(),
        ));
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

/// What runs on an interface, as far as replacing it goes.
pub(crate) struct Current {
    pub fd: OwnedFd,
    pub mode: AttachMode,
}

/// The program on `iface`, if a chain may replace it: a chain always, the
/// program of another loader only with `force`, a libxdp dispatcher never
/// (its programs live in libxdp's pins; [`crate::Store`] joins it instead).
pub(crate) fn current(iface: &Interface, force: bool) -> Result<Option<Current>> {
    let Some((id, mode)) = attach::attached(iface)? else {
        return Ok(None);
    };
    let fd = attach::prog_fd(id)?;
    if config_of(fd.as_fd())?.is_none() {
        let (name, _, _) = attach::prog_info(fd.as_fd())?;
        if name == libxdp::PROG_NAME {
            return Err(Error::LibxdpDispatcher {
                iface: iface.name.clone(),
                prog_id: id,
            });
        }
        if !force {
            return Err(Error::ForeignProgram {
                iface: iface.name.clone(),
                prog_id: id,
                name,
            });
        }
    }
    Ok(Some(Current { fd, mode }))
}
