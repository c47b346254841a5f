//! Safe owners of libbpf objects, and the capture of libbpf's messages so that
//! they reach the user inside the error they explain instead of on stderr.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Once;

use libbpf_sys as sys;

use crate::error::{Error, Result};

thread_local! {
    static LOG: RefCell<Option<String>> = const { RefCell::new(None) };
}

unsafe extern "C" {
    fn vsnprintf(
        buf: *mut c_char,
        n: usize,
        fmt: *const c_char,
        ap: *mut sys::__va_list_tag,
    ) -> c_int;
}

unsafe extern "C" fn capture(
    level: sys::libbpf_print_level,
    fmt: *const c_char,
    ap: *mut sys::__va_list_tag,
) -> c_int {
    if level == sys::LIBBPF_DEBUG {
        return 0;
    }
    // Verifier logs can be long; libbpf prints them in one message.
    let mut buf = vec![0u8; 1 << 20];
    // SAFETY: buf is writable for its length; fmt and ap come from libbpf.
    let n = unsafe { vsnprintf(buf.as_mut_ptr().cast(), buf.len(), fmt, ap) };
    if n <= 0 {
        return 0;
    }
    buf.truncate((n as usize).min(buf.len() - 1));
    let msg = String::from_utf8_lossy(&buf);
    LOG.with(|l| {
        if let Some(log) = l.borrow_mut().as_mut() {
            log.push_str(&msg);
        }
    });
    0
}

fn init() {
    static ONCE: Once = Once::new();
    // SAFETY: capture has the signature libbpf expects and never unwinds.
    ONCE.call_once(|| unsafe {
        sys::libbpf_set_print(Some(capture));
    });
}

/// Runs `f` and returns what libbpf said meanwhile on this thread.
pub(crate) fn with_libbpf_log<T>(f: impl FnOnce() -> T) -> (T, String) {
    init();
    let outer = LOG.with(|l| l.replace(Some(String::new())));
    let out = f();
    let log = LOG.with(|l| l.replace(outer)).unwrap_or_default();
    (out, log)
}

/// The verifier's own words inside libbpf's report of a failed load.
pub(crate) fn verifier_log(libbpf_log: &str) -> String {
    const BEGIN: &str = "-- BEGIN PROG LOAD LOG --\n";
    const END: &str = "-- END PROG LOAD LOG --";
    match (libbpf_log.find(BEGIN), libbpf_log.find(END)) {
        (Some(b), Some(e)) if b + BEGIN.len() <= e => libbpf_log[b + BEGIN.len()..e].to_string(),
        _ => libbpf_log.trim_end().to_string(),
    }
}

pub(crate) fn cstring(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::InvalidArgument(format!("{what} contains a NUL byte")))
}

/// libbpf returns negative errno values, or NULL with errno set.
pub(crate) fn check(ret: c_int) -> io::Result<c_int> {
    if ret < 0 {
        Err(io::Error::from_raw_os_error(-ret))
    } else {
        Ok(ret)
    }
}

/// An opened (and maybe loaded) libbpf object. It owns the bytes it was
/// opened from, since libbpf keeps pointing into them until it is closed.
pub(crate) struct Object {
    ptr: NonNull<sys::bpf_object>,
    _bytes: Box<[u8]>,
}

impl Object {
    pub fn open(bytes: impl Into<Box<[u8]>>, name: &str) -> Result<Self, (io::Error, String)> {
        let bytes: Box<[u8]> = bytes.into();
        let cname = CString::new(name.replace('\0', "")).unwrap_or_default();
        let opts = sys::bpf_object_open_opts {
            sz: std::mem::size_of::<sys::bpf_object_open_opts>() as _,
            object_name: cname.as_ptr(),
            ..Default::default()
        };
        let (ptr, log) = with_libbpf_log(|| {
            // SAFETY: bytes outlive the object (owned by it); opts is valid for the call.
            let p = unsafe {
                sys::bpf_object__open_mem(bytes.as_ptr().cast(), bytes.len() as _, &opts)
            };
            (p, io::Error::last_os_error())
        });
        match NonNull::new(ptr.0) {
            Some(ptr) => Ok(Object { ptr, _bytes: bytes }),
            None => Err((ptr.1, log)),
        }
    }

    pub fn as_ptr(&self) -> *mut sys::bpf_object {
        self.ptr.as_ptr()
    }

    /// Loads the object; on failure, the errno and what libbpf said (the
    /// verifier's log among it).
    pub fn load(&self) -> Result<(), (io::Error, String)> {
        // SAFETY: the object is open and owned by self.
        let (res, log) = with_libbpf_log(|| check(unsafe { sys::bpf_object__load(self.as_ptr()) }));
        res.map(drop).map_err(|e| (e, log))
    }

    pub fn programs(&self) -> impl Iterator<Item = Program<'_>> + '_ {
        let mut cur: *mut sys::bpf_program = std::ptr::null_mut();
        std::iter::from_fn(move || {
            // SAFETY: the object is alive; libbpf walks its own list.
            cur = unsafe { sys::bpf_object__next_program(self.as_ptr(), cur) };
            NonNull::new(cur).map(|p| Program {
                ptr: p,
                _obj: std::marker::PhantomData,
            })
        })
    }

    pub fn maps(&self) -> impl Iterator<Item = Map<'_>> + '_ {
        let mut cur: *mut sys::bpf_map = std::ptr::null_mut();
        std::iter::from_fn(move || {
            // SAFETY: as above.
            cur = unsafe { sys::bpf_object__next_map(self.as_ptr(), cur) };
            NonNull::new(cur).map(|p| Map {
                ptr: p,
                _obj: std::marker::PhantomData,
            })
        })
    }

    pub fn map(&self, name: &str) -> Option<Map<'_>> {
        self.maps().find(|m| m.name() == name)
    }

    /// A map by its full name, or for internal maps its section name (as
    /// libbpf's find_map_by_name matches). Only reliable before loading:
    /// libbpf renames a reused or pinned map after its kernel name, which is
    /// cut at 15 characters.
    pub fn find_map(&self, name: &str) -> Option<Map<'_>> {
        let c = CString::new(name).ok()?;
        // SAFETY: the object is alive.
        let p = unsafe { sys::bpf_object__find_map_by_name(self.as_ptr(), c.as_ptr()) };
        self.maps().find(|m| m.as_ptr() == p)
    }

    /// The position of [`Object::find_map`]'s map among the object's maps,
    /// which stays true after loading.
    pub fn map_index(&self, name: &str) -> Option<usize> {
        let found = self.find_map(name)?;
        self.maps().position(|m| m.as_ptr() == found.as_ptr())
    }

    pub fn map_at(&self, index: usize) -> Option<Map<'_>> {
        self.maps().nth(index)
    }

    pub fn program(&self, name: &str) -> Option<Program<'_>> {
        self.programs().find(|p| p.name() == name)
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: we own the object; closing also closes its fds.
        unsafe { sys::bpf_object__close(self.as_ptr()) }
    }
}

// SAFETY: a bpf_object has no thread affinity; we never share it unsynchronized.
unsafe impl Send for Object {}

fn owned_str(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: libbpf returns NUL-terminated names that live as long as the object.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

#[derive(Clone, Copy)]
pub(crate) struct Program<'a> {
    ptr: NonNull<sys::bpf_program>,
    _obj: std::marker::PhantomData<&'a Object>,
}

impl<'a> Program<'a> {
    pub fn as_ptr(&self) -> *mut sys::bpf_program {
        self.ptr.as_ptr()
    }
    pub fn name(&self) -> String {
        owned_str(unsafe { sys::bpf_program__name(self.as_ptr()) })
    }
    /// An XDP program meant for an interface (not for a devmap or cpumap entry).
    pub fn is_xdp(&self) -> bool {
        unsafe {
            sys::bpf_program__type(self.as_ptr()) == sys::BPF_PROG_TYPE_XDP
                && sys::bpf_program__expected_attach_type(self.as_ptr()) == sys::BPF_XDP
        }
    }
    pub fn fd(&self) -> Option<BorrowedFd<'a>> {
        let fd = unsafe { sys::bpf_program__fd(self.as_ptr()) };
        // SAFETY: the fd is owned by the object, which outlives the borrow.
        (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Map<'a> {
    ptr: NonNull<sys::bpf_map>,
    _obj: std::marker::PhantomData<&'a Object>,
}

impl<'a> Map<'a> {
    pub fn as_ptr(&self) -> *mut sys::bpf_map {
        self.ptr.as_ptr()
    }
    pub fn name(&self) -> String {
        owned_str(unsafe { sys::bpf_map__name(self.as_ptr()) })
    }
    /// Makes the map, when its object loads, the existing map `fd` (which
    /// libbpf then names after its kernel name).
    pub fn reuse_fd(&self, fd: BorrowedFd<'_>, name: &str) -> Result<()> {
        // SAFETY: libbpf dups the fd; the object is alive.
        check(unsafe { sys::bpf_map__reuse_fd(self.as_ptr(), fd.as_raw_fd()) })
            .map_err(|e| Error::os(format!("reuse map {name}"), e))?;
        Ok(())
    }

    pub fn fd(&self) -> Option<BorrowedFd<'a>> {
        let fd = unsafe { sys::bpf_map__fd(self.as_ptr()) };
        // SAFETY: as for Program::fd.
        (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
    }
}

/// Reads element `key` of the map `fd` into `value`, which must be the
/// map's value size (times the number of possible CPUs for per-CPU maps).
pub(crate) fn map_lookup<T: Copy>(fd: BorrowedFd<'_>, key: u32, value: &mut [T]) -> io::Result<()> {
    // SAFETY: key and value are valid for the sizes the map has, per contract.
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
    // SAFETY: as in map_lookup.
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

/// An anonymous in-memory file, for libbpf APIs that write to an fd.
pub(crate) fn memfd(name: &str) -> Result<OwnedFd> {
    let cname = cstring(name, "memfd name")?;
    // SAFETY: plain syscall; the fd is owned right away.
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(Error::os("memfd_create", io::Error::last_os_error()));
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Of `maps` (with the names their objects gave them), those that their
/// object pins by name get pinned under `root` by that name, where libbpf
/// shares them with whoever else pins there.
pub(crate) fn pin_by_name(maps: Vec<(Map<'_>, String)>, root: &str) -> Result<()> {
    // SAFETY: the maps belong to live objects.
    let pinned: Vec<_> = maps
        .into_iter()
        .filter(|(m, _)| !unsafe { sys::bpf_map__pin_path(m.as_ptr()) }.is_null())
        .collect();
    if pinned.is_empty() {
        return Ok(());
    }
    check_bpffs(root)?;
    for (map, name) in pinned {
        let path = format!("{root}/{name}");
        let c = cstring(&path, "pin path")?;
        // SAFETY: as above; libbpf copies the path.
        check(unsafe { sys::bpf_map__set_pin_path(map.as_ptr(), c.as_ptr()) })
            .map_err(|e| Error::os(format!("set pin path {path}"), e))?;
    }
    Ok(())
}

const BPF_FS_MAGIC: i64 = 0xcafe4a11;

/// Whether `path` is on bpffs.
pub(crate) fn check_bpffs(path: &str) -> Result<()> {
    let c = cstring(path, "path")?;
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-parameter.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    if rc != 0 || st.f_type as i64 != BPF_FS_MAGIC {
        return Err(Error::BpffsNotMounted { path: path.into() });
    }
    Ok(())
}

/// Whether the open directory `dir` (shown as `path`) is on bpffs.
pub(crate) fn check_bpffs_fd(dir: &std::fs::File, path: &str) -> Result<()> {
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-parameter; the fd is open.
    let rc = unsafe { libc::fstatfs(dir.as_raw_fd(), &mut st) };
    if rc != 0 || st.f_type as i64 != BPF_FS_MAGIC {
        return Err(Error::BpffsNotMounted { path: path.into() });
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
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd> {
    fd.try_clone_to_owned().map_err(|e| Error::os("dup", e))
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
    // SAFETY: no arguments.
    let euid = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != euid || meta.mode() & forbidden != 0 {
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
