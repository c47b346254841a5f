//! libxdp's multiprog protocol (xdp-tools), so that libxdp users and we
//! share an interface: a dispatcher program named `xdp_dispatcher` whose
//! only map is its config (bpf/libxdp.bpf.c), components as extension
//! programs of its slots `prog0`..`prog9`, pinned at
//! `BPFFS/xdp/dispatch-IFINDEX-ID/progN-{prog,link}`, every change made
//! under an flock of `BPFFS/xdp`. xdp-loader lists our programs, adds and
//! removes beside them, and we beside its own.
//!
//! The protocol has no room for counters in the dispatcher (it may own no
//! map but its config): our extensions are counted from outside it
//! (ext_counters.rs). Chains of more than ten programs use our own layout.

use std::fs::File;
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::attach::{self, AttachMode, Interface, Seen};
use crate::component::{Component, Verdicts};
use crate::dynamic::{self, Extension};
use crate::error::{Error, Result};
use crate::ext_counters::Counting;
use crate::root;
use crate::status::{ChainStatus, ComponentStatus};
use crate::sys::{dup, map_lookup, obj_get, pin, Object, Refusal};
use xdpchain_obj::btf::{Btf, Kind};

/// Programs a libxdp dispatcher holds.
pub const MAX_PROGRAMS: usize = 10;
pub(crate) const PROG_NAME: &str = "xdp_dispatcher";
/// Protocol versions we build: Debian 12's libxdp 1.3 speaks 2, xdp-tools
/// 1.6 speaks 3.
pub const VERSIONS: [u8; 2] = [2, 3];
const MAGIC: u8 = 236;
/// Where libxdp installs its own dispatcher object, besides the
/// multiarch directory (Debian's).
const OBJECT_DIRS: [&str; 2] = ["/usr/lib/bpf", "/usr/local/lib/bpf"];

static OBJECT_V2: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libxdp_v2.bpf.o"));
static OBJECT_V3: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libxdp_v3.bpf.o"));

fn object(version: u8) -> Result<&'static [u8]> {
    match version {
        2 => Ok(OBJECT_V2),
        3 => Ok(OBJECT_V3),
        v => Err(Error::Unsupported(format!(
            "libxdp dispatcher version {v} (this library speaks {VERSIONS:?})"
        ))),
    }
}

fn slot_function(slot: usize) -> String {
    format!("prog{slot}")
}

/// One slot of the config: libxdp's run priority (unsigned), the verdicts
/// on which the chain goes on (bits, plus an empty slot's), and the
/// program's load flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub prio: u32,
    pub actions: u32,
    pub flags: u32,
}

/// `struct xdp_dispatcher_config` (bpf/libxdp.bpf.c), as libxdp reads it
/// from the dispatcher's only map; its offsets are checked against the
/// BTF of the dispatchers we build. Fields are host-endian, as libxdp
/// writes them.
#[repr(C)]
struct DispatcherConfig {
    magic: u8,
    dispatcher_version: u8,
    num_progs_enabled: u8,
    is_xdp_frags: u8,
    chain_call_actions: [u32; MAX_PROGRAMS],
    run_prios: [u32; MAX_PROGRAMS],
    program_flags: [u32; MAX_PROGRAMS],
    /// Since version 3; the struct of version 2 ends before it.
    is_xdp_devbound: u8,
}

/// A dispatcher's config: its protocol version, its slots in run order,
/// whether it was loaded multi-buffer aware (which libxdp does, and says
/// here, when all its programs are) and bound to its device (version 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Config {
    pub version: u8,
    pub slots: Vec<Slot>,
    pub frags: bool,
    pub devbound: bool,
}

impl Config {
    fn size(version: u8) -> usize {
        if version >= 3 {
            size_of::<DispatcherConfig>()
        } else {
            offset_of!(DispatcherConfig, is_xdp_devbound)
        }
    }

    /// The u32 arrays of a slot's fields, by their offsets.
    const SLOT_ARRAYS: [usize; 3] = [
        offset_of!(DispatcherConfig, chain_call_actions),
        offset_of!(DispatcherConfig, run_prios),
        offset_of!(DispatcherConfig, program_flags),
    ];

    fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; Config::size(self.version)];
        b[offset_of!(DispatcherConfig, magic)] = MAGIC;
        b[offset_of!(DispatcherConfig, dispatcher_version)] = self.version;
        b[offset_of!(DispatcherConfig, num_progs_enabled)] = self.slots.len() as u8;
        b[offset_of!(DispatcherConfig, is_xdp_frags)] = self.frags.into();
        if self.version >= 3 {
            b[offset_of!(DispatcherConfig, is_xdp_devbound)] = self.devbound.into();
        }
        for (i, s) in self.slots.iter().enumerate() {
            for (array, v) in Config::SLOT_ARRAYS
                .into_iter()
                .zip([s.actions, s.prio, s.flags])
            {
                let off = array + 4 * i;
                b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
            }
        }
        b
    }

    fn parse(b: &[u8]) -> Option<Config> {
        let magic = *b.get(offset_of!(DispatcherConfig, magic))?;
        let version = *b.get(offset_of!(DispatcherConfig, dispatcher_version))?;
        let count = *b.get(offset_of!(DispatcherConfig, num_progs_enabled))? as usize;
        if magic != MAGIC
            || !VERSIONS.contains(&version)
            || b.len() != Config::size(version)
            || count > MAX_PROGRAMS
        {
            return None;
        }
        let word = |array: usize, i: usize| {
            let off = array + 4 * i;
            u32::from_ne_bytes(b[off..off + 4].try_into().expect("4 bytes"))
        };
        let [actions, prio, flags] = Config::SLOT_ARRAYS;
        let slots = (0..count)
            .map(|i| Slot {
                actions: word(actions, i),
                prio: word(prio, i),
                flags: word(flags, i),
            })
            .collect();
        Some(Config {
            version,
            slots,
            frags: *b.get(offset_of!(DispatcherConfig, is_xdp_frags))? != 0,
            devbound: version >= 3 && *b.get(offset_of!(DispatcherConfig, is_xdp_devbound))? != 0,
        })
    }
}

/// The protocol version of the libxdp installed here (its
/// `xdp-dispatcher.o` declares it in BTF), if any.
pub(crate) fn installed_version() -> Option<u8> {
    let multiarch = format!("/usr/lib/{}-linux-gnu/bpf", std::env::consts::ARCH);
    let dirs = std::env::var("LIBXDP_OBJECT_PATH").ok();
    let dirs = dirs
        .iter()
        .map(String::as_str)
        .chain([multiarch.as_str()])
        .chain(OBJECT_DIRS);
    let bytes = dirs
        .map(|d| Path::new(d).join("xdp-dispatcher.o"))
        .find_map(|p| std::fs::read(p).ok())?;
    declared_version(&bytes)
}

/// `dispatcher_version` in section `xdp_metadata`: `int (*)[VERSION]`.
fn declared_version(elf: &[u8]) -> Option<u8> {
    use object::{Object as _, ObjectSection as _};
    let file = object::File::parse(elf).ok()?;
    let btf = Btf::parse(file.section_by_name(".BTF")?.data().ok()?).ok()?;
    let sec = btf
        .types()
        .find(|t| t.kind == Kind::Datasec && btf.name(t) == "xdp_metadata")?;
    let var = btf
        .datasec_vars(&sec)
        .into_iter()
        .filter_map(|(id, _, _)| btf.type_by_id(id))
        .find(|v| btf.name(v) == "dispatcher_version")?;
    let ptr = btf
        .skip_mods(var.size_type)
        .filter(|t| t.kind == Kind::Ptr)?;
    let array = btf
        .skip_mods(ptr.size_type)
        .filter(|t| t.kind == Kind::Array)?;
    u8::try_from(btf.array_len(&array)?).ok()
}

/// The version a new libxdp chain gets: the installed libxdp's, else the
/// newest we speak.
pub(crate) fn default_version() -> u8 {
    installed_version()
        .filter(|v| VERSIONS.contains(v))
        .unwrap_or(VERSIONS[VERSIONS.len() - 1])
}

/// A program in a running libxdp dispatcher, opened from its pin.
pub(crate) struct Program {
    pub fd: OwnedFd,
    pub id: u32,
    pub name: String,
    pub slot: Slot,
}

/// A libxdp dispatcher attached to an interface.
pub(crate) struct Running {
    pub fd: OwnedFd,
    pub id: u32,
    pub mode: AttachMode,
    pub config: Config,
    pub programs: Vec<Program>,
}

impl Program {
    pub(crate) fn priority(&self) -> i32 {
        i32::try_from(self.slot.prio).unwrap_or(i32::MAX)
    }
}

impl Running {
    /// A new dispatcher in this one's place, at its version and mode, whose
    /// new programs pin their maps by name under `pin_root`.
    pub(crate) fn target<'a>(&'a self, iface: &'a Interface, pin_root: &'a str) -> Target<'a> {
        Target {
            iface,
            mode: self.mode,
            version: self.config.version,
            bind: self.config.devbound,
            old: Some(self),
            replacing: Some(self.fd.as_fd()),
            pin_root,
        }
    }
}

/// The libxdp dispatcher on `iface`, with libxdp's lock held, if one runs
/// there. The interface is looked at under the lock: libxdp users change
/// the dispatcher and its pins under it, not under ours.
pub(crate) fn running(iface: &Interface) -> Result<Option<(Lock, Running)>> {
    let lock = lock()?;
    let Some(seen) = attach::observe(iface)? else {
        return Ok(None);
    };
    Ok(dispatcher(iface, seen)?.map(|r| (lock, r)))
}

/// The libxdp dispatcher that `seen` is, if it is one.
fn dispatcher(iface: &Interface, seen: Seen) -> Result<Option<Running>> {
    if seen.name != PROG_NAME {
        return Ok(None);
    }
    let Seen { id, mode, fd, .. } = seen;
    let (_, _, map_ids) = crate::sys::prog_info(fd.as_fd())?;
    let malformed = |reason: String| Error::Malformed {
        name: format!("libxdp dispatcher (program {id}) on {}", iface.name),
        reason,
    };
    let config = match map_ids.as_slice() {
        [map] => read_config(*map)?,
        _ => None,
    }
    .ok_or_else(|| malformed("no libxdp config (one map, magic 236, version 2 or 3)".into()))?;
    let dir = pin_dir(iface, id);
    let mut programs = Vec::new();
    for (i, slot) in config.slots.iter().enumerate() {
        let path = dir.join(format!("{}-prog", slot_function(i)));
        let fd =
            obj_get(&path).map_err(|e| malformed(format!("its program {i} is not pinned: {e}")))?;
        let (short, id, _) = crate::sys::prog_info(fd.as_fd())?;
        let name = crate::sys::prog_func_name(fd.as_fd()).unwrap_or(short);
        programs.push(Program {
            fd,
            id,
            name,
            slot: *slot,
        });
    }
    Ok(Some(Running {
        fd,
        id,
        mode,
        config,
        programs,
    }))
}

fn read_config(map_id: u32) -> Result<Option<Config>> {
    let fd = crate::sys::map_fd(map_id)?;
    let info = crate::sys::map_info(fd.as_fd())?;
    if info.key_size != 4 || info.max_entries != 1 || info.value_size > 4096 {
        return Ok(None);
    }
    let mut value = vec![0u8; info.value_size as usize];
    map_lookup(fd.as_fd(), 0, &mut value).map_err(|e| Error::os("read libxdp config", e))?;
    Ok(Config::parse(&value))
}

/// The status of a running libxdp dispatcher: components are known by
/// their extension programs' ids; their counters are the store's
/// (ext_counters.rs).
pub(crate) fn status(r: &Running) -> ChainStatus {
    ChainStatus {
        interface: None,
        mode: Some(r.mode),
        kind: crate::plan::Mode::Dynamic,
        libxdp_version: Some(r.config.version),
        program_id: r.id,
        components: r
            .programs
            .iter()
            .enumerate()
            .map(|(slot, p)| ComponentStatus {
                id: p.id,
                slot,
                name: p.name.clone(),
                priority: p.priority(),
                continue_on: Verdicts::from_bits(p.slot.actions & !(1 << root::EMPTY_SLOT_VERDICT)),
                counters: None,
                program_id: Some(p.id),
                owner: None,
                inlined: None,
                function: Some(p.name.clone()),
            })
            .collect(),
        not_dynamic: None,
        device_bound: r.config.devbound,
    }
}

/// libxdp's bpffs root: `$LIBXDP_BPFFS`, else the shared bpffs.
fn bpffs() -> PathBuf {
    std::env::var_os("LIBXDP_BPFFS").map_or_else(|| crate::ns::bpffs().into(), PathBuf::from)
}

fn pin_dir(iface: &Interface, dispatcher_id: u32) -> PathBuf {
    bpffs()
        .join("xdp")
        .join(format!("dispatch-{}-{dispatcher_id}", iface.index))
}

/// libxdp's lock: an flock of `BPFFS/xdp`, created 0700 as libxdp does.
/// That directory may be a symlink (iproute2 makes one), which libxdp
/// follows; so do we, but only to a directory on bpffs that only its owner,
/// us, can change.
pub(crate) struct Lock {
    _dir: File,
}

pub(crate) fn lock() -> Result<Lock> {
    let root = bpffs();
    crate::sys::check_bpffs(&root.display().to_string())?;
    let dir = root.join("xdp");
    let shown = || dir.display().to_string();
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            return Err(Error::os(format!("create {}", shown()), e))
        }
        _ => {}
    }
    let file = File::open(&dir).map_err(|e| Error::os(format!("open {}", shown()), e))?;
    crate::sys::check_own_dir(
        &file,
        &shown(),
        0o022,
        "a directory of ours that only we can write",
    )?;
    crate::sys::check_bpffs_fd(&file, &shown())?;
    crate::sys::flock_exclusive(&file).map_err(|e| Error::os("lock libxdp's directory", e))?;
    Ok(Lock { _dir: file })
}

/// What a slot of a new dispatcher runs.
pub(crate) enum Planned<'a> {
    /// An extension program already loaded (from any libxdp user).
    Loaded(&'a Program),
    /// A component, loaded as an extension of the new dispatcher.
    New(&'a Component),
}

impl Planned<'_> {
    fn name(&self) -> &str {
        match self {
            Planned::Loaded(p) => &p.name,
            Planned::New(c) => c.program(),
        }
    }

    /// Multi-buffer aware: a new component if it says so; a loaded program
    /// if the dispatcher it ran in was (libxdp's only record of it).
    fn frags(&self, old: Option<&Running>) -> bool {
        match self {
            Planned::Loaded(_) => old.is_some_and(|r| r.config.frags),
            Planned::New(c) => c.frags,
        }
    }

    /// Bound to the device: a new component that reads RX metadata; a
    /// loaded program if its dispatcher was (the kernel bound it there).
    fn devbound(&self, old: Option<&Running>) -> bool {
        match self {
            Planned::Loaded(_) => old.is_some_and(|r| r.config.devbound),
            Planned::New(c) => c.device_bound(),
        }
    }

    fn slot(&self) -> Result<Slot> {
        match self {
            Planned::Loaded(p) => Ok(p.slot),
            Planned::New(c) => Ok(Slot {
                prio: u32::try_from(c.priority()).map_err(|_| {
                    Error::InvalidArgument(format!(
                        "{}: libxdp's run priorities are unsigned, not {}",
                        c.program(),
                        c.priority()
                    ))
                })?,
                actions: c.continue_on().bits() | 1 << root::EMPTY_SLOT_VERDICT,
                flags: 0,
            }),
        }
    }
}

/// Where a new dispatcher goes, and what it replaces.
pub(crate) struct Target<'a> {
    pub iface: &'a Interface,
    pub mode: AttachMode,
    pub version: u8,
    /// Bound to the interface though no program asks it.
    pub bind: bool,
    /// The libxdp dispatcher there now, whose pins go once it is replaced.
    pub old: Option<&'a Running>,
    /// What runs there now (the old dispatcher, or a program of ours).
    pub replacing: Option<BorrowedFd<'a>>,
    /// Where maps pinned by name go.
    pub pin_root: &'a str,
}

/// Builds a dispatcher running `planned` in libxdp's order (priority, then
/// name), loads what is new, pins it all, swaps it in atomically and unpins
/// the old dispatcher's programs. With `counting`, the new extensions get
/// counters, which the caller records. Returns the program id of each
/// planned entry, in the order given. Call under [`lock`]; on error nothing
/// changes.
pub(crate) fn commit(
    target: &Target<'_>,
    planned: &[Planned<'_>],
    mut counting: Option<&mut Counting>,
) -> Result<Vec<u32>> {
    if planned.len() > MAX_PROGRAMS {
        return Err(Error::TooManyComponents {
            count: planned.len(),
            max: MAX_PROGRAMS,
        });
    }
    let mut order: Vec<(usize, Slot)> = planned
        .iter()
        .enumerate()
        .map(|(i, p)| Ok((i, p.slot()?)))
        .collect::<Result<_>>()?;
    // Loaded before new among equals, as libxdp sorts.
    order.sort_by(|(a, sa), (b, sb)| {
        let is_new = |i: usize| matches!(planned[i], Planned::New(_));
        (sa.prio, planned[*a].name(), is_new(*a)).cmp(&(sb.prio, planned[*b].name(), is_new(*b)))
    });
    // A device-bound dispatcher says so in version 3, as libxdp 1.6 does.
    // Programs already loaded keep the binding they were loaded with.
    let devbound = target.bind || planned.iter().any(|p| p.devbound(target.old));
    let new = planned.iter().filter_map(|p| match p {
        Planned::New(c) => Some(*c),
        Planned::Loaded(_) => None,
    });
    crate::features::check_device_bound(new, devbound)?;
    if devbound {
        if let Some(p) = planned
            .iter()
            .find(|p| matches!(p, Planned::Loaded(_)) && !p.devbound(target.old))
        {
            return Err(crate::dynamic::unbound_extension(
                &target.iface.name,
                p.name(),
            ));
        }
    }
    let config = Config {
        version: if devbound {
            target.version.max(3)
        } else {
            target.version
        },
        slots: order.iter().map(|(_, s)| *s).collect(),
        frags: !planned.is_empty()
            && planned.iter().all(|p| p.frags(target.old))
            && crate::sys::multi_buffer_xdp()?,
        devbound,
    };
    let dispatcher = load_dispatcher(&config, target.iface)?;
    let prog = dispatcher.loaded_prog(PROG_NAME);
    // New extensions live here until their pins hold them.
    let mut extensions = Vec::new();
    let mut attached = Vec::new();
    for (slot, (i, _)) in order.iter().enumerate() {
        let slot_fn = slot_function(slot);
        let fd = match &planned[*i] {
            Planned::Loaded(p) => p.fd.as_fd(),
            Planned::New(c) => {
                let ext = Extension::load(c, prog, &slot_fn, target.pin_root)?;
                if let Some(counting) = counting.as_deref_mut() {
                    counting.attach(ext.prog(), c.program(), &c.label())?;
                }
                extensions.push(ext);
                extensions.last().expect("just pushed").prog()
            }
        };
        let link = dynamic::attach(fd, &dispatcher, PROG_NAME, &slot_fn)?;
        let (_, id, _) = crate::sys::prog_info(fd)?;
        attached.push((*i, id, dup(fd)?, link));
    }
    let (_, new_id, _) = crate::sys::prog_info(prog)?;
    let dir = pin_dir(target.iface, new_id);
    let pinned = pin_all(&dir, &attached)
        .and_then(|()| attach::replace(target.iface, target.mode, Some(prog), target.replacing));
    if let Err(e) = pinned {
        remove_dir(&dir);
        return Err(match e {
            Error::NeedsFrags { iface, .. } => Error::NeedsFrags {
                iface,
                without: planned
                    .iter()
                    .filter(|p| !p.frags(target.old))
                    .map(|p| match p {
                        Planned::Loaded(p) => p.name.clone(),
                        Planned::New(c) => c.label(),
                    })
                    .collect(),
            },
            e => e,
        });
    }
    if let Some(old) = target.old {
        remove_dir(&pin_dir(target.iface, old.id));
    }
    log::info!(
        "{}: libxdp dispatcher v{} prog id {new_id} attached with {} programs",
        target.iface.name,
        config.version,
        planned.len()
    );
    let mut ids = vec![0; planned.len()];
    for (i, id, _, _) in &attached {
        ids[*i] = *id;
    }
    Ok(ids)
}

fn load_dispatcher(config: &Config, iface: &Interface) -> Result<Object> {
    let object = Object::open(object(config.version)?.to_vec(), "libxdp").map_err(
        |Refusal { errno: e, log }| {
            Error::Link(format!(
                "libbpf cannot open the libxdp dispatcher ({}): {}",
                crate::error::os_text(&e),
                log.trim()
            ))
        },
    )?;
    let rodata = object
        .find_map(".rodata")
        .expect("the dispatcher has its config");
    let bytes = config.to_bytes();
    rodata
        .set_initial_value(&bytes)
        .map_err(|e| Error::os("set the libxdp dispatcher's config", e))?;
    object
        .program(PROG_NAME)
        .expect("the dispatcher has its program")
        .set_load_options(config.frags, config.devbound.then_some(iface.index))
        .map_err(|e| Error::os("set the libxdp dispatcher's load flags", e))?;
    object.load().map_err(|Refusal { errno, log }| {
        Error::refused("load the libxdp dispatcher", None, errno, &log)
    })?;
    Ok(object)
}

fn pin_all(dir: &Path, attached: &[(usize, u32, OwnedFd, OwnedFd)]) -> Result<()> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::os(format!("create {}", dir.display()), e))?;
    for (slot, (_, _, prog, link)) in attached.iter().enumerate() {
        let name = slot_function(slot);
        pin(link.as_fd(), &dir.join(format!("{name}-link")))?;
        pin(prog.as_fd(), &dir.join(format!("{name}-prog")))?;
    }
    Ok(())
}

/// Detaches the libxdp dispatcher `r` from `iface` and unpins its programs.
/// Call under [`lock`].
pub(crate) fn detach(iface: &Interface, r: &Running) -> Result<()> {
    attach::replace(iface, r.mode, None, Some(r.fd.as_fd()))?;
    remove_dir(&pin_dir(iface, r.id));
    Ok(())
}

/// Best effort: what cannot be removed now is a leftover libxdp tolerates.
fn remove_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_layout_matches_each_version() {
        for version in VERSIONS {
            let c = Config {
                version,
                slots: vec![
                    Slot {
                        prio: 10,
                        actions: 1 << 2 | 1 << 31,
                        flags: 0,
                    },
                    Slot {
                        prio: 50,
                        actions: 1 << 31,
                        flags: 0,
                    },
                ],
                frags: version == 3,
                devbound: version == 3,
            };
            let b = c.to_bytes();
            assert_eq!(b.len(), if version == 2 { 124 } else { 128 });
            assert_eq!(&b[..4], &[236, version, 2, (version == 3).into()]);
            // is_xdp_devbound, after the three arrays of ten words.
            assert_eq!(b.get(124), (version == 3).then_some(&1));
            // run_prios start after the ten chain-call words.
            assert_eq!(u32::from_ne_bytes(b[44..48].try_into().unwrap()), 10);
            assert_eq!(Config::parse(&b), Some(c));
        }
        assert_eq!(Config::parse(&[0u8; 124]), None);
    }

    /// The Rust layout must match what clang laid out for libxdp's struct,
    /// in each version's dispatcher.
    #[test]
    fn config_layout_matches_btf() {
        use object::{Object as _, ObjectSection as _};
        use xdpchain_obj::btf::{Btf, Kind};
        for (version, object) in [(2, OBJECT_V2), (3, OBJECT_V3)] {
            let file = object::File::parse(object).unwrap();
            let btf = Btf::parse(file.section_by_name(".BTF").unwrap().data().unwrap()).unwrap();
            let st = btf
                .types()
                .find(|t| t.kind == Kind::Struct && btf.name(t) == "xdp_dispatcher_config")
                .expect("struct xdp_dispatcher_config in BTF");
            let members: Vec<(String, usize)> = btf
                .members(&st)
                .iter()
                .map(|&(n, _)| btf.str_at(n).to_string())
                .zip(
                    btf.member_offsets(&st)
                        .into_iter()
                        .map(|bits| bits as usize / 8),
                )
                .collect();
            let mut expect = vec![
                ("magic", offset_of!(DispatcherConfig, magic)),
                (
                    "dispatcher_version",
                    offset_of!(DispatcherConfig, dispatcher_version),
                ),
                (
                    "num_progs_enabled",
                    offset_of!(DispatcherConfig, num_progs_enabled),
                ),
                ("is_xdp_frags", offset_of!(DispatcherConfig, is_xdp_frags)),
                (
                    "chain_call_actions",
                    offset_of!(DispatcherConfig, chain_call_actions),
                ),
                ("run_prios", offset_of!(DispatcherConfig, run_prios)),
                ("program_flags", offset_of!(DispatcherConfig, program_flags)),
            ];
            if version >= 3 {
                expect.push((
                    "is_xdp_devbound",
                    offset_of!(DispatcherConfig, is_xdp_devbound),
                ));
            }
            let expect: Vec<(String, usize)> = expect
                .into_iter()
                .map(|(n, o)| (n.to_string(), o))
                .collect();
            assert_eq!(members, expect, "version {version}");
            assert_eq!(
                st.size_type as usize,
                Config::size(version),
                "version {version}"
            );
        }
    }

    #[test]
    fn our_dispatchers_declare_their_version() {
        assert_eq!(declared_version(OBJECT_V2), Some(2));
        assert_eq!(declared_version(OBJECT_V3), Some(3));
    }
}
