//! Safe owners of libbpf objects, their programs and their maps.

use std::ffi::{c_char, CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::ptr::NonNull;

use libbpf_sys as sys;

use super::{check, check_bpffs, cstring, with_libbpf_log, Refusal};
use crate::error::{Error, Result};
use xdpchain_obj::insn::{self, FuncInfo, Insn, LineInfo};

// The records libbpf hands out are read as ours.
const _: () = assert!(std::mem::size_of::<FuncInfo>() == std::mem::size_of::<sys::bpf_func_info>());
const _: () = assert!(std::mem::size_of::<LineInfo>() == std::mem::size_of::<sys::bpf_line_info>());

/// An opened (and maybe loaded) libbpf object. It owns the bytes it was
/// opened from, since libbpf keeps pointing into them until it is closed.
pub(crate) struct Object {
    ptr: NonNull<sys::bpf_object>,
    _bytes: Box<[u8]>,
}

impl Object {
    pub fn open(bytes: impl Into<Box<[u8]>>, name: &str) -> Result<Self, Refusal> {
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
            None => Err(Refusal { errno: ptr.1, log }),
        }
    }

    pub fn as_ptr(&self) -> *mut sys::bpf_object {
        self.ptr.as_ptr()
    }

    /// Loads the object; on failure, the errno and what libbpf said (the
    /// verifier's log among it).
    pub fn load(&self) -> Result<(), Refusal> {
        // SAFETY: the object is open and owned by self.
        let (res, log) = with_libbpf_log(|| check(unsafe { sys::bpf_object__load(self.as_ptr()) }));
        res.map(drop).map_err(|errno| Refusal { errno, log })
    }

    /// Relocates the object and creates its maps, loading no program: its
    /// programs' instructions are then final ([`Program::insns`]).
    pub fn prepare(&self) -> Result<(), Refusal> {
        // SAFETY: the object is open and owned by self.
        let (res, log) =
            with_libbpf_log(|| check(unsafe { sys::bpf_object__prepare(self.as_ptr()) }));
        res.map(drop).map_err(|errno| Refusal { errno, log })
    }

    /// The object's BTF as libbpf loaded it (after [`Object::prepare`]):
    /// its fd, and its bytes.
    pub fn btf(&self) -> Option<(BorrowedFd<'_>, Vec<u8>)> {
        // SAFETY: the object is alive and owns its BTF.
        let btf = unsafe { sys::bpf_object__btf(self.as_ptr()) };
        if btf.is_null() {
            return None;
        }
        // SAFETY: btf is the object's; the fd lives as long as the object.
        let fd = unsafe { sys::btf__fd(btf) };
        let mut size = 0u32;
        // SAFETY: as above; libbpf returns its own buffer of `size` bytes.
        let data = unsafe { sys::btf__raw_data(btf, &mut size) };
        if fd < 0 || data.is_null() {
            return None;
        }
        // SAFETY: data holds size bytes while the object lives; copied now.
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) };
        // SAFETY: the fd is owned by the object, which outlives the borrow.
        Some((unsafe { BorrowedFd::borrow_raw(fd) }, bytes.to_vec()))
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

    /// Types the programs that libbpf could not ([`Program::is_untyped`])
    /// as XDP, as libxdp, bpftool's "type xdp" and iproute2 load them, and
    /// leaves programs of other types (an object's tc program, say) out of
    /// loading, with the global functions that only they call.
    pub fn only_xdp(&self) -> io::Result<()> {
        self.programs().try_for_each(|p| {
            if p.is_untyped() {
                p.make_xdp()
            } else if p.is_xdp() {
                Ok(())
            } else {
                p.set_autoload(false)
            }
        })
    }

    /// The BTF id of the function `name` in this loaded object's BTF.
    pub fn btf_func_id(&self, name: &str) -> io::Result<u32> {
        let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: the object is loaded and owns its BTF; c outlives the call.
        let id = unsafe {
            sys::btf__find_by_name_kind(
                sys::bpf_object__btf(self.as_ptr()),
                c.as_ptr(),
                sys::BTF_KIND_FUNC,
            )
        };
        check(id).map(|id| id as u32)
    }

    /// The fd of program `name` of this loaded object, which the caller's
    /// own BPF source defines.
    pub fn loaded_prog(&self, name: &str) -> BorrowedFd<'_> {
        self.program(name)
            .and_then(|p| p.fd())
            .unwrap_or_else(|| panic!("a loaded object holds its program {name}"))
    }

    /// The fd of map `name` of this loaded object, as [`Object::loaded_prog`].
    pub fn loaded_map(&self, name: &str) -> BorrowedFd<'_> {
        self.map(name)
            .and_then(|m| m.fd())
            .unwrap_or_else(|| panic!("a loaded object holds its map {name}"))
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
        // SAFETY: the program belongs to a live object.
        owned_str(unsafe { sys::bpf_program__name(self.as_ptr()) })
    }
    /// A program whose section name told libbpf no type: libbpf 1.x no
    /// longer knows the names older loaders used (`xdp_sock`, `prog`, ...).
    pub fn is_untyped(&self) -> bool {
        // SAFETY: the program belongs to a live object.
        unsafe { sys::bpf_program__type(self.as_ptr()) == sys::BPF_PROG_TYPE_UNSPEC }
    }

    pub fn is_xdp(&self) -> bool {
        // SAFETY: the program belongs to a live object.
        unsafe { sys::bpf_program__type(self.as_ptr()) == sys::BPF_PROG_TYPE_XDP }
    }

    /// Loads this program of an open object multi-buffer aware with
    /// `frags`, and bound to the interface `device` (as XDP programs that
    /// read RX metadata through kfuncs must be; extensions loaded against
    /// it inherit the binding).
    pub fn set_load_options(&self, frags: bool, device: Option<u32>) -> io::Result<()> {
        let mut add = 0;
        if frags {
            add |= sys::BPF_F_XDP_HAS_FRAGS;
        }
        if let Some(ifindex) = device {
            add |= sys::BPF_F_XDP_DEV_BOUND_ONLY;
            // SAFETY: the program belongs to an open object.
            unsafe { sys::bpf_program__set_ifindex(self.as_ptr(), ifindex) };
        }
        // SAFETY: as above.
        let flags = unsafe { sys::bpf_program__flags(self.as_ptr()) };
        // SAFETY: as above.
        check(unsafe { sys::bpf_program__set_flags(self.as_ptr(), flags | add) }).map(drop)
    }

    /// Sets the type and expected attach type this program of an open
    /// object loads with.
    fn retype(&self, ty: sys::bpf_prog_type, attach: sys::bpf_attach_type) -> io::Result<()> {
        // SAFETY: the program belongs to an open object.
        check(unsafe { sys::bpf_program__set_type(self.as_ptr(), ty) })?;
        // SAFETY: as above.
        check(unsafe { sys::bpf_program__set_expected_attach_type(self.as_ptr(), attach) })
            .map(drop)
    }

    /// Makes this program of an open object an XDP program for interfaces.
    pub fn make_xdp(&self) -> io::Result<()> {
        self.retype(sys::BPF_PROG_TYPE_XDP, sys::BPF_XDP)
    }

    /// Makes this program of an open object an XDP program that an
    /// extension tail-calls: of the extension's expected attach type (none),
    /// as kernels that check a prog array's users against each other want.
    pub fn make_tail_target(&self) -> io::Result<()> {
        self.retype(sys::BPF_PROG_TYPE_XDP, 0)
    }

    /// Makes this program of an open object an extension (freplace) of
    /// the global function `func` of the loaded program `target`.
    pub fn make_extension(&self, target: BorrowedFd<'_>, func: &str) -> io::Result<()> {
        let func = CString::new(func).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // An extension has no expected attach type: the one the `xdp`
        // section gave it makes the kernel refuse the EXT program.
        self.retype(sys::BPF_PROG_TYPE_EXT, 0)?;
        self.set_attach_target(target, &func)
    }

    /// Makes this fentry or fexit program of an open object trace the
    /// function `func` of the loaded program `target`.
    pub fn trace(&self, target: BorrowedFd<'_>, func: &str) -> io::Result<()> {
        let func = CString::new(func).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        self.set_attach_target(target, &func)
    }

    fn set_attach_target(&self, target: BorrowedFd<'_>, func: &CString) -> io::Result<()> {
        // SAFETY: the program belongs to an open object; target is a loaded
        // program; libbpf copies func.
        check(unsafe {
            sys::bpf_program__set_attach_target(self.as_ptr(), target.as_raw_fd(), func.as_ptr())
        })
        .map(drop)
    }

    /// Its instructions, final once the object is prepared.
    pub fn insns(&self) -> Vec<Insn> {
        // SAFETY: the program belongs to a live object; libbpf returns its
        // array of insn_cnt 8-byte instructions.
        let (p, n) = unsafe {
            (
                sys::bpf_program__insns(self.as_ptr()),
                sys::bpf_program__insn_cnt(self.as_ptr()),
            )
        };
        if p.is_null() {
            return Vec::new();
        }
        // SAFETY: as above; struct bpf_insn is 8 bytes, read as raw bytes.
        let raw = unsafe { std::slice::from_raw_parts(p.cast::<[u8; insn::SIZE]>(), n as usize) };
        raw.iter().map(|b| Insn::decode(*b)).collect()
    }

    /// Its func_info and line_info, as libbpf would pass them when loading
    /// (after [`Object::prepare`]).
    pub fn btf_ext_info(&self) -> (Vec<FuncInfo>, Vec<LineInfo>) {
        // SAFETY: the program belongs to a live object; libbpf returns
        // arrays of the given counts (records of its struct sizes, which
        // FuncInfo and LineInfo mirror), or NULL.
        unsafe {
            let f = sys::bpf_program__func_info(self.as_ptr());
            let fc = sys::bpf_program__func_info_cnt(self.as_ptr()) as usize;
            let l = sys::bpf_program__line_info(self.as_ptr());
            let lc = sys::bpf_program__line_info_cnt(self.as_ptr()) as usize;
            let funcs = match f.is_null() {
                true => Vec::new(),
                false => std::slice::from_raw_parts(f.cast::<FuncInfo>(), fc).to_vec(),
            };
            let lines = match l.is_null() {
                true => Vec::new(),
                false => std::slice::from_raw_parts(l.cast::<LineInfo>(), lc).to_vec(),
            };
            (funcs, lines)
        }
    }

    /// Leaves this program of an open object out of its loading.
    pub fn set_autoload(&self, on: bool) -> io::Result<()> {
        // SAFETY: the program belongs to an open object.
        check(unsafe { sys::bpf_program__set_autoload(self.as_ptr(), on) }).map(drop)
    }

    /// The program flags it loads with.
    pub fn flags(&self) -> u32 {
        // SAFETY: the program belongs to a live object.
        unsafe { sys::bpf_program__flags(self.as_ptr()) }
    }

    pub fn fd(&self) -> Option<BorrowedFd<'a>> {
        // SAFETY: the program belongs to a live object.
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
        // SAFETY: the map belongs to a live object.
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

    /// The value this map of an open object starts with (data sections).
    pub fn set_initial_value(&self, bytes: &[u8]) -> io::Result<()> {
        // SAFETY: the map belongs to an open object; libbpf copies bytes.
        check(unsafe {
            sys::bpf_map__set_initial_value(self.as_ptr(), bytes.as_ptr().cast(), bytes.len() as _)
        })
        .map(drop)
    }

    pub fn fd(&self) -> Option<BorrowedFd<'a>> {
        // SAFETY: the map belongs to a live object.
        let fd = unsafe { sys::bpf_map__fd(self.as_ptr()) };
        // SAFETY: as for Program::fd.
        (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
    }
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
    // A chain's own directory is made with its first map pinned by name,
    // on the bpffs it lies in.
    let dir = Path::new(root);
    if let Some(existing) = dir.ancestors().find(|d| d.exists()).filter(|d| *d != dir) {
        check_bpffs(&existing.display().to_string())?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::os(format!("create {root}"), e))?;
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

/// How libbpf types a program in `section`: its program type and expected
/// attach type, or None for a name it does not know. For the test that
/// holds the object layer's copy of these rules to libbpf's.
#[cfg(test)]
pub fn prog_type_by_name(section: &str) -> Option<(u32, u32)> {
    let name = CString::new(section).ok()?;
    let (mut prog_type, mut attach_type) = (0, 0);
    // SAFETY: a NUL-terminated name and two places to write, all live
    // through the call; libbpf keeps none of them.
    let rc =
        unsafe { sys::libbpf_prog_type_by_name(name.as_ptr(), &mut prog_type, &mut attach_type) };
    (rc == 0).then_some((prog_type, attach_type))
}
