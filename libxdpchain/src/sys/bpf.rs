//! bpf(2) through libbpf's thin wrappers: maps, pins, program and map
//! information, links and test runs, on fds.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use libbpf_sys as sys;

use super::{check, cstring, Refusal};
use crate::error::{Error, Result};
use xdpchain_obj::insn::{self, FuncInfo, Insn, LineInfo};

/// Checks that `bytes` hold a value of the map `fd` with a u32 key: its
/// value size, per possible CPU in per-CPU maps (each rounded up to 8), as
/// the kernel reads or writes it whole.
fn check_value(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    let info = map_info(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    let per_cpu = [
        sys::BPF_MAP_TYPE_PERCPU_ARRAY,
        sys::BPF_MAP_TYPE_PERCPU_HASH,
        sys::BPF_MAP_TYPE_LRU_PERCPU_HASH,
        sys::BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
    ]
    .contains(&info.type_);
    let need = match per_cpu {
        true => {
            (info.value_size as usize).next_multiple_of(8)
                * possible_cpus().map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?
        }
        false => info.value_size as usize,
    };
    if info.key_size != 4 || bytes < need {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(())
}

/// Reads element `key` of the map `fd` into `value`: the map's value size
/// (times the number of possible CPUs for per-CPU maps), checked.
pub(crate) fn map_lookup<T: Copy>(fd: BorrowedFd<'_>, key: u32, value: &mut [T]) -> io::Result<()> {
    check_value(fd, std::mem::size_of_val(value))?;
    // SAFETY: the key is a u32 and value holds what the kernel writes, both
    // checked against the map's own sizes above.
    check(unsafe {
        sys::bpf_map_lookup_elem(
            fd.as_raw_fd(),
            (&key as *const u32).cast(),
            value.as_mut_ptr().cast(),
        )
    })
    .map(drop)
}

/// Writes element `key` of the map `fd`, as for [`map_lookup`].
pub(crate) fn map_update<T: Copy>(fd: BorrowedFd<'_>, key: u32, value: &[T]) -> io::Result<()> {
    check_value(fd, std::mem::size_of_val(value))?;
    // SAFETY: as in map_lookup: the kernel reads what was checked above.
    check(unsafe {
        sys::bpf_map_update_elem(
            fd.as_raw_fd(),
            (&key as *const u32).cast(),
            value.as_ptr().cast(),
            0,
        )
    })
    .map(drop)
}

/// Attaches the loaded fentry or fexit program `prog` to the target it was
/// loaded for; it stays attached while the link lives (its fd, or a pin).
pub(crate) fn trace_link(prog: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: a null name attaches a tracing program to its own target.
    let fd = check(unsafe { sys::bpf_raw_tracepoint_open(std::ptr::null(), prog.as_raw_fd()) })?;
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn path_c(path: &Path) -> Result<CString> {
    cstring(&path.display().to_string(), "pin path")
}

/// Pins `fd` at `path` (bpffs gives it mode 0600; our directories are 0700).
pub(crate) fn pin(fd: BorrowedFd<'_>, path: &Path) -> Result<()> {
    let c = path_c(path)?;
    // SAFETY: valid fd and C string.
    check(unsafe { sys::bpf_obj_pin(fd.as_raw_fd(), c.as_ptr()) })
        .map_err(|e| Error::os(format!("pin {}", path.display()), e))?;
    Ok(())
}

/// Opens the object pinned at `path`.
pub(crate) fn obj_get(path: &Path) -> Result<OwnedFd> {
    let c = path_c(path)?;
    // SAFETY: valid C string; the fd is owned right away.
    let fd = check(unsafe { sys::bpf_obj_get(c.as_ptr()) })
        .map_err(|e| Error::os(format!("open pin {}", path.display()), e))?;
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd> {
    fd.try_clone_to_owned().map_err(|e| Error::os("dup", e))
}

/// An XDP program made here rather than by libbpf, with what it loads with.
pub(crate) struct XdpProgram<'a> {
    pub name: &'a str,
    pub insns: &'a [Insn],
    pub license: &'a str,
    /// The BTF that func_info and line_info refer to.
    pub btf: BorrowedFd<'a>,
    pub func_info: &'a [FuncInfo],
    pub line_info: &'a [LineInfo],
    pub flags: u32,
    /// The interface a device-bound program is loaded for (with
    /// BPF_F_XDP_DEV_BOUND_ONLY in `flags`), else 0.
    pub ifindex: u32,
}

/// Loads `p` for interfaces (expected attach type BPF_XDP); on failure, the
/// errno and the verifier's log (asked for only then, as libbpf does).
pub(crate) fn load_xdp(p: &XdpProgram<'_>) -> Result<OwnedFd, Refusal> {
    let bytes: Vec<[u8; insn::SIZE]> = p.insns.iter().map(|i| i.encode()).collect();
    let bad = |_| Refusal {
        errno: io::Error::from_raw_os_error(libc::EINVAL),
        log: String::new(),
    };
    let name = CString::new(p.name).map_err(bad)?;
    let license = CString::new(p.license).map_err(bad)?;
    let attempt = |log: &mut [u8]| {
        let mut opts = sys::bpf_prog_load_opts {
            sz: std::mem::size_of::<sys::bpf_prog_load_opts>() as _,
            expected_attach_type: sys::BPF_XDP,
            prog_flags: p.flags,
            prog_ifindex: p.ifindex,
            prog_btf_fd: p.btf.as_raw_fd() as u32,
            func_info: p.func_info.as_ptr().cast(),
            func_info_cnt: p.func_info.len() as u32,
            func_info_rec_size: std::mem::size_of::<FuncInfo>() as u32,
            line_info: p.line_info.as_ptr().cast(),
            line_info_cnt: p.line_info.len() as u32,
            line_info_rec_size: std::mem::size_of::<LineInfo>() as u32,
            log_level: u32::from(!log.is_empty()),
            log_size: log.len() as u32,
            // The kernel refuses a buffer without a log level.
            log_buf: match log.is_empty() {
                true => std::ptr::null_mut(),
                false => log.as_mut_ptr().cast(),
            },
            ..Default::default()
        };
        // SAFETY: every pointer is valid for the count given beside it, and
        // FuncInfo and LineInfo have the kernel's record layouts; the fd is
        // owned from here.
        check(unsafe {
            sys::bpf_prog_load(
                sys::BPF_PROG_TYPE_XDP,
                name.as_ptr(),
                license.as_ptr(),
                bytes.as_ptr().cast(),
                bytes.len() as u64,
                &mut opts,
            )
        })
        // SAFETY: the kernel just gave us this fd.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
    };
    attempt(&mut []).or_else(|_| {
        let mut log = vec![0u8; 16 << 20];
        attempt(&mut log).map_err(|errno| {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            Refusal {
                errno,
                log: String::from_utf8_lossy(&log[..end]).into_owned(),
            }
        })
    })
}

/// Whether XDP programs may call the helper `helper` on this kernel
/// (libbpf loads a program that calls it).
pub(crate) fn xdp_helper(helper: u32) -> Result<bool> {
    // SAFETY: plain values; NULL opts are allowed.
    let rc =
        unsafe { sys::libbpf_probe_bpf_helper(sys::BPF_PROG_TYPE_XDP, helper, std::ptr::null()) };
    match rc {
        0 => Ok(false),
        1 => Ok(true),
        e => Err(Error::os(
            "probe a helper of XDP programs",
            io::Error::from_raw_os_error(-e),
        )),
    }
}

/// Whether this kernel runs multi-buffer XDP programs (BPF_F_XDP_HAS_FRAGS,
/// with the helper bpf_xdp_get_buff_len: Linux 5.18), probed once. Before
/// it drivers refuse XDP where packets can exceed a page, so multi-buffer
/// aware programs load there as ordinary ones.
pub(crate) fn multi_buffer_xdp() -> Result<bool> {
    static CACHE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if let Some(&known) = CACHE.get() {
        return Ok(known);
    }
    let known = xdp_helper(sys::BPF_FUNC_xdp_get_buff_len)?;
    Ok(*CACHE.get_or_init(|| known))
}

/// Binds the map `map` to the program `prog`, as libbpf binds .rodata: the
/// program holds it, and lists it among its maps, without using it.
pub(crate) fn bind_map(prog: BorrowedFd<'_>, map: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain syscall wrapper on two valid fds; NULL opts are allowed.
    check(unsafe { sys::bpf_prog_bind_map(prog.as_raw_fd(), map.as_raw_fd(), std::ptr::null()) })
        .map(drop)
}

/// The functions of the loaded program `prog`, as its func_info and BTF
/// name them: (BTF type id, BTF bytes). Empty without BTF.
pub(crate) fn prog_functions(prog: BorrowedFd<'_>) -> io::Result<(Vec<u32>, Vec<u8>)> {
    let mut info = sys::bpf_prog_info::default();
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: info is writable for len bytes.
    check(unsafe { sys::bpf_prog_get_info_by_fd(prog.as_raw_fd(), &mut info, &mut len) })?;
    if info.btf_id == 0 || info.nr_func_info == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut funcs = vec![
        FuncInfo {
            insn_off: 0,
            type_id: 0
        };
        info.nr_func_info as usize
    ];
    let mut info = sys::bpf_prog_info {
        nr_func_info: funcs.len() as u32,
        func_info_rec_size: std::mem::size_of::<FuncInfo>() as u32,
        func_info: funcs.as_mut_ptr() as u64,
        ..Default::default()
    };
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: func_info holds nr_func_info records of the kernel's layout.
    check(unsafe { sys::bpf_prog_get_info_by_fd(prog.as_raw_fd(), &mut info, &mut len) })?;
    funcs.truncate(info.nr_func_info as usize);
    // SAFETY: plain syscall wrapper; the fd is owned right away.
    let btf = check(unsafe { sys::bpf_btf_get_fd_by_id(info.btf_id) })?;
    // SAFETY: the kernel just gave us this fd.
    let btf = unsafe { OwnedFd::from_raw_fd(btf) };
    let mut binfo = sys::bpf_btf_info::default();
    let mut len = std::mem::size_of_val(&binfo) as u32;
    // SAFETY: binfo is writable for len bytes.
    check(unsafe { sys::bpf_btf_get_info_by_fd(btf.as_raw_fd(), &mut binfo, &mut len) })?;
    let mut bytes = vec![0u8; binfo.btf_size as usize];
    let mut binfo = sys::bpf_btf_info {
        btf: bytes.as_mut_ptr() as u64,
        btf_size: bytes.len() as u32,
        ..Default::default()
    };
    let mut len = std::mem::size_of_val(&binfo) as u32;
    // SAFETY: btf points to btf_size writable bytes.
    check(unsafe { sys::bpf_btf_get_info_by_fd(btf.as_raw_fd(), &mut binfo, &mut len) })?;
    Ok((funcs.iter().map(|f| f.type_id).collect(), bytes))
}

/// One BPF_PROG_TEST_RUN: (verdict, mean duration in ns).
pub fn test_run(prog: BorrowedFd<'_>, packet: &[u8], repeat: u32) -> Result<(u32, u32)> {
    let mut out = vec![0u8; packet.len() + 256];
    let mut opts = sys::bpf_test_run_opts {
        sz: std::mem::size_of::<sys::bpf_test_run_opts>() as _,
        data_in: packet.as_ptr().cast(),
        data_size_in: packet.len() as u32,
        data_out: out.as_mut_ptr().cast(),
        data_size_out: out.len() as u32,
        repeat: repeat as i32,
        ..Default::default()
    };
    // SAFETY: buffers are valid for their given sizes.
    check(unsafe { sys::bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) })
        .map_err(|e| Error::os("BPF_PROG_TEST_RUN", e))?;
    Ok((opts.retval, opts.duration))
}

/// The number of possible CPUs: the per-CPU maps' values hold one slot each.
pub(crate) fn possible_cpus() -> Result<usize> {
    // SAFETY: takes no arguments; libbpf caches the count it reads from sysfs.
    let n = check(unsafe { sys::libbpf_num_possible_cpus() })
        .map_err(|e| Error::os("count CPUs", e))?;
    Ok(n as usize)
}

/// A program's fd from its id.
pub(crate) fn prog_fd(id: u32) -> Result<OwnedFd> {
    // SAFETY: plain syscall wrapper; the fd is owned right away.
    let fd = check(unsafe { sys::bpf_prog_get_fd_by_id(id) })
        .map_err(|e| Error::os(format!("open program {id}"), e))?;
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn map_fd(id: u32) -> Result<OwnedFd> {
    // SAFETY: as above.
    let fd = check(unsafe { sys::bpf_map_get_fd_by_id(id) })
        .map_err(|e| Error::os(format!("open map {id}"), e))?;
    // SAFETY: the kernel just gave us this fd.
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

/// Whether the running kernel's BTF has the function `name` (a kfunc).
pub(crate) fn kernel_has_func(name: &str) -> Result<bool> {
    let c =
        CString::new(name).map_err(|_| Error::InvalidArgument(format!("kfunc name {name:?}")))?;
    // SAFETY: libbpf returns a BTF of our own or NULL with errno set; the
    // BTF is freed after the lookup.
    unsafe {
        let btf = sys::btf__load_vmlinux_btf();
        if btf.is_null() {
            return Err(Error::os(
                "read the kernel's BTF",
                io::Error::last_os_error(),
            ));
        }
        let id = sys::btf__find_by_name_kind(btf, c.as_ptr(), sys::BTF_KIND_FUNC);
        sys::btf__free(btf);
        Ok(id > 0)
    }
}

/// Links the extension `prog` to the function `btf_id` of `target`
/// (BPF_LINK_CREATE); the link detaches when its last fd closes, unless
/// pinned.
pub(crate) fn freplace_link(
    prog: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    btf_id: u32,
) -> io::Result<OwnedFd> {
    let opts = sys::bpf_link_create_opts {
        sz: std::mem::size_of::<sys::bpf_link_create_opts>() as _,
        target_btf_id: btf_id,
        ..Default::default()
    };
    // The attach type of an extension's link is its expected attach type:
    // none (0), as Program::make_extension sets it.
    // SAFETY: valid fds and opts for the call.
    let fd =
        check(unsafe { sys::bpf_link_create(prog.as_raw_fd(), target.as_raw_fd(), 0, &opts) })?;
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A new array map of `entries` values of `value_size` bytes.
pub(crate) fn array_map(name: &str, value_size: u32, entries: u32) -> Result<OwnedFd> {
    let cname = cstring(name, "map name")?;
    // SAFETY: valid name; no options.
    let fd = check(unsafe {
        sys::bpf_map_create(
            sys::BPF_MAP_TYPE_ARRAY,
            cname.as_ptr(),
            4,
            value_size,
            entries,
            std::ptr::null(),
        )
    })
    .map_err(|e| Error::os(format!("create map {name}"), e))?;
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Freezes the map `fd`: no syscall writes it again.
pub(crate) fn map_freeze(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain syscall wrapper on a valid fd.
    check(unsafe { sys::bpf_map_freeze(fd.as_raw_fd()) }).map(drop)
}

/// CLOCK_MONOTONIC in nanoseconds, the clock of `bpf_ktime_get_ns()`.
pub(crate) fn ktime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The value of a one-entry array map that its creator made mmapable
/// (libbpf does so for global data), mapped shared: fields written here
/// are seen by programs at once, each store whole, so that writers of
/// different fields do not undo each other (as read-modify-write would).
pub(crate) struct MappedValue {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is shared memory; every access is an atomic of its
// width, through &self.
unsafe impl Send for MappedValue {}
// SAFETY: as for Send.
unsafe impl Sync for MappedValue {}

impl MappedValue {
    pub(crate) fn new(fd: BorrowedFd<'_>) -> Result<MappedValue> {
        let info = map_info(fd)?;
        if info.max_entries != 1 || info.map_flags & sys::BPF_F_MMAPABLE == 0 {
            return Err(Error::Unsupported(
                "the control map is not mmapable (a kernel before 5.5?)".into(),
            ));
        }
        let len = (info.value_size as usize).next_multiple_of(8);
        // SAFETY: a shared mapping of the map's value, which the kernel
        // keeps valid while mapped; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error::os(
                "map the control word",
                io::Error::last_os_error(),
            ));
        }
        let ptr = std::ptr::NonNull::new(p.cast()).expect("mmap gives no NULL");
        Ok(MappedValue { ptr, len })
    }

    fn at<T>(&self, off: usize) -> *mut T {
        assert!(off + std::mem::size_of::<T>() <= self.len && off % std::mem::size_of::<T>() == 0);
        // SAFETY: in bounds and aligned (checked), within the mapping.
        unsafe { self.ptr.as_ptr().add(off).cast() }
    }

    pub(crate) fn load_u64(&self, off: usize) -> u64 {
        // SAFETY: an aligned u64 of the mapping; others write it atomically.
        unsafe { std::sync::atomic::AtomicU64::from_ptr(self.at(off)) }
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn store_u64(&self, off: usize, v: u64) {
        // SAFETY: as in load_u64.
        unsafe { std::sync::atomic::AtomicU64::from_ptr(self.at(off)) }
            .store(v, std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn load_u32(&self, off: usize) -> u32 {
        // SAFETY: as in load_u64, for a u32.
        unsafe { std::sync::atomic::AtomicU32::from_ptr(self.at(off)) }
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn store_u32(&self, off: usize, v: u32) {
        // SAFETY: as in load_u32.
        unsafe { std::sync::atomic::AtomicU32::from_ptr(self.at(off)) }
            .store(v, std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for MappedValue {
    fn drop(&mut self) {
        // SAFETY: unmaps what new() mapped, once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// One BPF ring buffer map, read through libbpf's consumer.
pub(crate) struct RingBuffer {
    rb: std::ptr::NonNull<sys::ring_buffer>,
    /// Where the callback puts records; boxed so that its address, which
    /// libbpf keeps, stays put.
    records: Box<std::cell::RefCell<Vec<Vec<u8>>>>,
}

// SAFETY: libbpf's ring_buffer is used from one thread at a time (&mut).
unsafe impl Send for RingBuffer {}

unsafe extern "C" fn take_record(
    ctx: *mut std::ffi::c_void,
    data: *mut std::ffi::c_void,
    size: sys::size_t,
) -> std::ffi::c_int {
    // SAFETY: ctx is the RefCell RingBuffer::new registered, alive while
    // the ring buffer is; data holds size bytes for the call.
    unsafe {
        let records = &*(ctx as *const std::cell::RefCell<Vec<Vec<u8>>>);
        let bytes = std::slice::from_raw_parts(data as *const u8, size as usize);
        records.borrow_mut().push(bytes.to_vec());
    }
    0
}

impl RingBuffer {
    pub(crate) fn new(map: BorrowedFd<'_>) -> Result<RingBuffer> {
        let records = Box::new(std::cell::RefCell::new(Vec::new()));
        // SAFETY: libbpf maps the ring of a valid map fd; the callback's
        // context outlives the ring buffer (freed first, in Drop).
        let rb = unsafe {
            sys::ring_buffer__new(
                map.as_raw_fd(),
                Some(take_record),
                (&*records as *const std::cell::RefCell<Vec<Vec<u8>>>) as *mut _,
                std::ptr::null(),
            )
        };
        let rb = std::ptr::NonNull::new(rb)
            .ok_or_else(|| Error::os("read the dump ring", io::Error::last_os_error()))?;
        Ok(RingBuffer { rb, records })
    }

    /// The records that arrive within `timeout` (at least one, if any does).
    pub(crate) fn poll(&mut self, timeout: std::time::Duration) -> Result<Vec<Vec<u8>>> {
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: a live ring buffer; the callback only touches records.
        let n = unsafe { sys::ring_buffer__poll(self.rb.as_ptr(), ms) };
        if n < 0 && n != -libc::EINTR {
            return Err(Error::os(
                "read the dump ring",
                io::Error::from_raw_os_error(-n),
            ));
        }
        Ok(std::mem::take(&mut *self.records.borrow_mut()))
    }
}

impl Drop for RingBuffer {
    fn drop(&mut self) {
        // SAFETY: frees what new() made, once, before its context goes.
        unsafe { sys::ring_buffer__free(self.rb.as_ptr()) };
    }
}
