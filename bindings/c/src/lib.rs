//! The C API of libxdpchain, a thin layer over the Rust core (`xdpchain`):
//! handles, option structs that carry their size, negative errnos, a
//! per-thread message for the last error, and no panic across the boundary.
//! `include/xdpchain.h` is generated from this file by cbindgen.
#![allow(non_camel_case_types)]
// These are C's functions: their pointer contracts are stated in the header,
// and marking them `unsafe` would change nothing for a C caller.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::mem::{size_of, MaybeUninit};
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ::xdpchain::{AttachMode, AttachOptions, Chain, Component, ComponentId, Error, Mode, Verdicts};

/// How a chain joins its components.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum xdpchain_mode {
    /// Dynamic where the kernel supports freplace and every component has
    /// BTF, static otherwise ($XDPCHAIN_MODE changes this default).
    Auto = 0,
    /// Linked into one program by libbpf's linker.
    Static = 1,
    /// Each component an extension program in a slot of a dispatcher.
    Dynamic = 2,
}

/// How XDP runs on the interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum xdpchain_attach_mode {
    /// In the driver (XDP_FLAGS_DRV_MODE).
    Native = 0,
    /// Generic XDP, after the stack builds an skb (XDP_FLAGS_SKB_MODE).
    Skb = 1,
}

/// Options of xdpchain__open().
#[repr(C)]
#[derive(Clone, Copy)]
pub struct xdpchain_open_opts {
    /// sizeof(struct xdpchain_open_opts).
    pub sz: usize,
    /// The interface the chain is for (a name, or an index as digits);
    /// NULL for a chain that is only linked into a file.
    pub ifname: *const c_char,
    /// An enum xdpchain_mode; 0 is XDPCHAIN_MODE_AUTO.
    pub mode: u32,
    /// Leave out the per-component counters (and all counting code).
    pub no_counters: bool,
    /// Where maps that their objects pin by name go; NULL: /sys/fs/bpf.
    pub pin_root: *const c_char,
}

/// A component to add: an object file, or an object in memory.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct xdpchain_program_opts {
    /// sizeof(struct xdpchain_program_opts).
    pub sz: usize,
    /// Path of the BPF object file; or NULL, and `buf`.
    pub path: *const c_char,
    /// The object in memory (copied), used if `path` is NULL.
    pub buf: *const c_void,
    /// Its size in bytes.
    pub buf_len: usize,
    /// Names an object in memory in messages and status; NULL: "memory".
    pub buf_name: *const c_char,
    /// The XDP program to run, by function name; NULL: the object's only one.
    pub prog_name: *const c_char,
    /// Use `priority` instead of the object's own (libxdp's run config,
    /// else 50).
    pub has_priority: bool,
    /// Run order: lower first; equal priorities by program name.
    pub priority: i32,
    /// Verdicts on which the chain goes on after this component, as
    /// XDPCHAIN_VERDICT() bits; 0: the object's own (else XDP_PASS).
    pub continue_on: u32,
}

/// Options of xdpchain__attach().
#[repr(C)]
#[derive(Clone, Copy)]
pub struct xdpchain_attach_opts {
    /// sizeof(struct xdpchain_attach_opts).
    pub sz: usize,
    /// An enum xdpchain_attach_mode; 0 is XDPCHAIN_ATTACH_MODE_NATIVE.
    pub attach_mode: u32,
    /// Replace an XDP program of another loader.
    pub force: bool,
}

/// Options of xdpchain__link_static().
#[repr(C)]
#[derive(Clone, Copy)]
pub struct xdpchain_link_opts {
    /// sizeof(struct xdpchain_link_opts).
    pub sz: usize,
    /// Write the linked object (one XDP program, xdpchain_root, loadable by
    /// any libbpf-based loader) to this file instead of attaching it.
    pub path: *const c_char,
    /// When `path` is NULL: an enum xdpchain_attach_mode.
    pub attach_mode: u32,
    /// When `path` is NULL: replace an XDP program of another loader.
    pub force: bool,
}

/// One component, as xdpchain__component() describes it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct xdpchain_component_info {
    /// sizeof(struct xdpchain_component_info), set by the caller.
    pub sz: usize,
    /// Stable while the component stays in the chain.
    pub id: u32,
    /// Position in run order.
    pub slot: u32,
    /// Run order: lower first.
    pub priority: i32,
    /// XDPCHAIN_VERDICT() bits.
    pub continue_on: u32,
    /// The program that runs it (the chain's own when linked in, its
    /// extension program in a dynamic chain); 0 before loading.
    pub prog_id: u32,
    /// Whether `counters` holds counts (loaded, with counting on).
    pub has_counters: bool,
    /// Packets by the verdict it returned: XDP_ABORTED, XDP_DROP, XDP_PASS,
    /// XDP_TX, XDP_REDIRECT, then any other value.
    pub counters: [u64; 6],
    /// Its program's name, NUL-terminated (cut to fit).
    pub name: [c_char; 64],
}

const MAGIC: u64 = 0x7864_7063_6861_696e; // "xdpchain"
const FREED: u64 = 0xdead_c4a1_dead_c4a1;

/// A chain of XDP components. Created by xdpchain__open(), released by
/// xdpchain__free().
pub struct xdpchain {
    magic: u64,
    chain: Chain,
    ifname: Option<String>,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).expect("NULs replaced");
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// A failure: the errno (positive) and its message.
struct Fail(c_int, String);

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail(e.errno(), e.to_string())
    }
}

fn invalid(msg: impl Into<String>) -> Fail {
    Fail(libc::EINVAL, msg.into())
}

/// Runs `f` behind the panic boundary: its value, or a negative errno with
/// the message kept for xdpchain_last_error().
fn guard(f: impl FnOnce() -> Result<c_int, Fail>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(Fail(errno, msg))) => {
            set_error(&msg);
            -errno
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            set_error(&format!("internal error in libxdpchain: {what}"));
            -libc::EFAULT
        }
    }
}

/// The handle behind `p`, if it is one of ours and not freed.
fn handle<'a>(p: *const xdpchain) -> Result<&'a xdpchain, Fail> {
    // SAFETY: non-null pointers are taken as the caller's promise of a
    // handle; the magic catches foreign and freed ones where the memory
    // still reads as it was left.
    match unsafe { p.as_ref() } {
        None => Err(invalid("chain is NULL")),
        Some(h) if h.magic == MAGIC => Ok(h),
        Some(_) => Err(invalid("not a chain handle (freed, or foreign)")),
    }
}

fn handle_mut<'a>(p: *mut xdpchain) -> Result<&'a mut xdpchain, Fail> {
    handle(p)?;
    // SAFETY: checked above; the caller owns the handle exclusively.
    Ok(unsafe { &mut *p })
}

/// A string argument: None for NULL, an error if not UTF-8.
fn opt_str<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>, Fail> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller passes a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map(Some)
        .map_err(|_| invalid(format!("{what} is not valid UTF-8")))
}

fn req_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, Fail> {
    opt_str(p, what)?.ok_or_else(|| invalid(format!("{what} is NULL")))
}

/// An option struct of the caller's size: fields it does not know stay
/// zero; fields this library does not know must be zero.
fn read_opts<T: Copy>(p: *const T, what: &str) -> Result<Option<T>, Fail> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: every option struct starts with its size.
    let sz = unsafe { *p.cast::<usize>() };
    if sz < size_of::<usize>() {
        return Err(invalid(format!("{what}: sz {sz} is too small")));
    }
    let bytes = p.cast::<u8>();
    // SAFETY: the caller promises `sz` readable bytes.
    let extra = (size_of::<T>()..sz).any(|i| unsafe { *bytes.add(i) } != 0);
    if extra {
        return Err(invalid(format!(
            "{what}: fields past the {} bytes this library knows are set",
            size_of::<T>()
        )));
    }
    let mut out = MaybeUninit::<T>::zeroed();
    // SAFETY: copies at most size_of::<T>() bytes into a zeroed T, all of
    // whose fields are valid zeroed (integers, bools, raw pointers).
    unsafe {
        std::ptr::copy_nonoverlapping(bytes, out.as_mut_ptr().cast::<u8>(), sz.min(size_of::<T>()));
        Ok(Some(out.assume_init()))
    }
}

fn mode_of(v: u32) -> Result<Mode, Fail> {
    match v {
        0 => Ok(Mode::Auto),
        1 => Ok(Mode::Static),
        2 => Ok(Mode::Dynamic),
        _ => Err(invalid(format!("unknown mode {v}"))),
    }
}

fn attach_options(mode: u32, force: bool) -> Result<AttachOptions, Fail> {
    let mode = match mode {
        0 => AttachMode::Native,
        1 => AttachMode::Skb,
        _ => return Err(invalid(format!("unknown attach mode {mode}"))),
    };
    Ok(AttachOptions { mode, force })
}

fn component(opts: *const xdpchain_program_opts) -> Result<Component, Fail> {
    let o = read_opts(opts, "program opts")?.ok_or_else(|| invalid("program opts are NULL"))?;
    let prog = opt_str(o.prog_name, "prog_name")?;
    let mut c = match opt_str(o.path, "path")? {
        Some(path) => Component::from_file(path, prog)?,
        None if o.buf.is_null() => return Err(invalid("neither path nor buf is set")),
        None => {
            let name = opt_str(o.buf_name, "buf_name")?.unwrap_or("memory");
            // SAFETY: the caller promises buf_len readable bytes at buf.
            let bytes = unsafe { std::slice::from_raw_parts(o.buf.cast::<u8>(), o.buf_len) };
            Component::from_bytes(bytes.to_vec(), name, prog)?
        }
    };
    if o.has_priority {
        c = c.with_priority(o.priority);
    }
    if o.continue_on != 0 {
        c = c.with_continue_on(Verdicts::from_bits(o.continue_on));
    }
    Ok(c)
}

/// Creates a chain, empty and not loaded, in `*chain`.
///
/// `opts` may be NULL. `ifname` (if set) must name an existing interface
/// (-ENODEV otherwise); the chain is attached there by xdpchain__attach()
/// or xdpchain__link_static(). Free the chain with xdpchain__free().
/// Returns 0, or -EINVAL (NULL `chain`, bad options), -ENODEV.
#[no_mangle]
pub extern "C" fn xdpchain__open(
    opts: *const xdpchain_open_opts,
    chain: *mut *mut xdpchain,
) -> c_int {
    guard(|| {
        if chain.is_null() {
            return Err(invalid("chain (the result pointer) is NULL"));
        }
        let o = read_opts(opts, "open opts")?;
        let mut c = Chain::new();
        let mut ifname = None;
        if let Some(o) = o {
            if let Some(name) = opt_str(o.ifname, "ifname")? {
                ::xdpchain::Interface::resolve(name)?;
                ifname = Some(name.to_string());
            }
            c.set_mode(mode_of(o.mode)?);
            c.set_counting(!o.no_counters);
            if let Some(root) = opt_str(o.pin_root, "pin_root")? {
                c.set_pin_root(root);
            }
        }
        let h = Box::new(xdpchain {
            magic: MAGIC,
            chain: c,
            ifname,
        });
        // SAFETY: checked non-null; the caller owns the handle from here.
        unsafe { *chain = Box::into_raw(h) };
        Ok(0)
    })
}

/// Frees a chain. An attached chain stays attached (as XDP programs
/// attached by netlink do): detach it first with xdpchain__detach() if it
/// should go. NULL is ignored.
#[no_mangle]
pub extern "C" fn xdpchain__free(chain: *mut xdpchain) {
    guard(|| {
        if chain.is_null() {
            return Ok(0);
        }
        handle(chain)?;
        // SAFETY: one of ours (checked); marked freed before the memory goes.
        unsafe {
            (*chain).magic = FREED;
            drop(Box::from_raw(chain));
        }
        Ok(0)
    });
}

/// Adds a component, from a file or from memory. If the chain is loaded,
/// it is rebuilt and swapped in atomically at once; on failure (a program
/// the verifier rejects: the message carries its log) nothing changes.
/// On success the component's id goes to `*id` (if not NULL).
/// Returns 0, or -EINVAL, -ENOENT (no such file or program), -ENOEXEC (not
/// a BPF object), -E2BIG (64 components), -EPERM, -EACCES and others from
/// the kernel.
#[no_mangle]
pub extern "C" fn xdpchain__add_program(
    chain: *mut xdpchain,
    opts: *const xdpchain_program_opts,
    id: *mut u32,
) -> c_int {
    guard(|| {
        let h = handle_mut(chain)?;
        let c = component(opts)?;
        let new = h.chain.add(c)?;
        if !id.is_null() {
            // SAFETY: the caller passes a writable u32 or NULL.
            unsafe { *id = new.0 };
        }
        Ok(0)
    })
}

/// Removes the component `id`, as xdpchain__add_program() adds one.
/// Returns 0, or -EINVAL, -ENOENT (no such component) and load errors.
#[no_mangle]
pub extern "C" fn xdpchain__remove_program(chain: *mut xdpchain, id: u32) -> c_int {
    guard(|| {
        handle_mut(chain)?.chain.remove(ComponentId(id))?;
        Ok(0)
    })
}

/// Puts the component `opts` describes in run-order position `slot`
/// atomically: every packet sees the old component or the new one. The
/// new one takes the old one's id and priority; its maps start afresh.
/// Returns 0, or -EINVAL (also for a slot past the last component) and the
/// errors of xdpchain__add_program().
#[no_mangle]
pub extern "C" fn xdpchain__replace_slot(
    chain: *mut xdpchain,
    slot: u32,
    opts: *const xdpchain_program_opts,
) -> c_int {
    guard(|| {
        let h = handle_mut(chain)?;
        let id = h.chain.at_slot(slot as usize)?;
        let c = component(opts)?;
        h.chain.replace_slot(id, c)?;
        Ok(0)
    })
}

/// Attaches to the interface given to xdpchain__open(); `mode` is an enum
/// xdpchain_attach_mode.
fn attach(h: &mut xdpchain, mode: u32, force: bool) -> Result<c_int, Fail> {
    let ifname = h
        .ifname
        .clone()
        .ok_or_else(|| invalid("the chain was opened without an interface"))?;
    h.chain.attach(&ifname, attach_options(mode, force)?)?;
    Ok(0)
}

/// Loads the chain (in the mode it was opened with) and attaches it to its
/// interface, atomically replacing a chain there; a program of another
/// loader only with `force`. `opts` may be NULL.
/// Returns 0, or -EINVAL (no interface, already attached), -EBUSY (another
/// loader's program), -EAGAIN (it changed meanwhile), -EPERM, load errors.
#[no_mangle]
pub extern "C" fn xdpchain__attach(
    chain: *mut xdpchain,
    opts: *const xdpchain_attach_opts,
) -> c_int {
    guard(|| {
        let h = handle_mut(chain)?;
        let o = read_opts(opts, "attach opts")?;
        let (mode, force) = o.map_or((0, false), |o| (o.attach_mode, o.force));
        attach(h, mode, force)
    })
}

/// Links the components under the root program into one BPF program with
/// libbpf's linker. With `opts->path`, writes it to that file (any
/// libbpf-based loader can load it); otherwise loads it and attaches it as
/// xdpchain__attach() does. `opts` may be NULL (attach).
/// Returns 0, or -EINVAL (a chain already loaded dynamically), the errors
/// of xdpchain__attach(), or of writing the file.
#[no_mangle]
pub extern "C" fn xdpchain__link_static(
    chain: *mut xdpchain,
    opts: *const xdpchain_link_opts,
) -> c_int {
    guard(|| {
        let h = handle_mut(chain)?;
        let o = read_opts(opts, "link opts")?;
        if let Some(path) = o.and_then(|o| opt_str(o.path, "path").transpose()) {
            h.chain.write(path?)?;
            return Ok(0);
        }
        if h.chain.program_fd().is_some() && h.chain.mode() != Mode::Static {
            return Err(invalid("the chain is already loaded, dynamically"));
        }
        h.chain.set_mode(Mode::Static);
        let (mode, force) = o.map_or((0, false), |o| (o.attach_mode, o.force));
        attach(h, mode, force)
    })
}

/// Detaches the chain from its interface, if it still runs there; the
/// chain stays loaded and can be attached again.
/// Returns 0, or -EINVAL, -ENOENT (not attached), -EAGAIN (another program
/// runs there now).
#[no_mangle]
pub extern "C" fn xdpchain__detach(chain: *mut xdpchain) -> c_int {
    guard(|| {
        handle_mut(chain)?.chain.detach()?;
        Ok(0)
    })
}

/// The number of components, or -EINVAL.
#[no_mangle]
pub extern "C" fn xdpchain__component_count(chain: *const xdpchain) -> c_int {
    guard(|| Ok(handle(chain)?.chain.components().len() as c_int))
}

/// Describes the component at run-order position `slot` in `*info`, whose
/// `sz` the caller sets (fields past it are left alone).
/// Returns 0, or -EINVAL (NULL, bad sz, slot out of range).
#[no_mangle]
pub extern "C" fn xdpchain__component(
    chain: *const xdpchain,
    slot: u32,
    info: *mut xdpchain_component_info,
) -> c_int {
    guard(|| {
        let h = handle(chain)?;
        if info.is_null() {
            return Err(invalid("info is NULL"));
        }
        // SAFETY: non-null; the caller sets sz first.
        let sz = unsafe { (*info).sz };
        if sz < size_of::<usize>() {
            return Err(invalid(format!("info: sz {sz} is too small")));
        }
        let id = h.chain.at_slot(slot as usize)?;
        let order = h.chain.components();
        let (_, c) = order[slot as usize];
        // SAFETY: zeroed is valid for this plain-data struct.
        let mut out: xdpchain_component_info = unsafe { std::mem::zeroed() };
        out.sz = sz;
        out.id = id.0;
        out.slot = slot;
        out.priority = c.priority();
        out.continue_on = c.continue_on().bits();
        if h.chain.program_fd().is_some() {
            let st = h.chain.status()?;
            if let Some(s) = st.components.iter().find(|s| s.id == id.0) {
                out.prog_id = s.program_id.unwrap_or(0);
                if let Some(k) = s.counters {
                    out.has_counters = true;
                    out.counters[..5].copy_from_slice(&k.verdicts);
                    out.counters[5] = k.other;
                }
            }
        }
        for (dst, src) in out.name.iter_mut().zip(c.program().bytes().take(63)) {
            *dst = src as c_char;
        }
        let n = sz.min(size_of::<xdpchain_component_info>());
        // SAFETY: the caller's struct has sz bytes; we write at most ours.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&out as *const xdpchain_component_info).cast::<u8>(),
                info.cast::<u8>(),
                n,
            )
        };
        Ok(0)
    })
}

/// The fd of a loaded component's map, found by the name it has in the
/// component's own object: a map's name, or a data section (".data",
/// ".bss", ".rodata"). The fd belongs to the chain: valid until the chain
/// is rebuilt or freed; dup() it to keep it.
/// Returns the fd, or -EINVAL, -ENOENT (not loaded, no such component or map).
#[no_mangle]
pub extern "C" fn xdpchain__map_fd(
    chain: *const xdpchain,
    id: u32,
    map_name: *const c_char,
) -> c_int {
    guard(|| {
        let h = handle(chain)?;
        let name = req_str(map_name, "map_name")?;
        Ok(h.chain.map_fd(ComponentId(id), name)?.as_raw_fd())
    })
}

/// The chain's mode: static or dynamic once loaded; before, the one asked
/// for. An enum xdpchain_mode, or -EINVAL.
#[no_mangle]
pub extern "C" fn xdpchain__mode(chain: *const xdpchain) -> c_int {
    guard(|| {
        Ok(match handle(chain)?.chain.mode() {
            Mode::Auto => xdpchain_mode::Auto,
            Mode::Static => xdpchain_mode::Static,
            Mode::Dynamic => xdpchain_mode::Dynamic,
        } as c_int)
    })
}

/// Runs the loaded chain once on the packet `data` (`len` bytes) with
/// BPF_PROG_TEST_RUN; its verdict goes to `*verdict`.
/// Returns 0, or -EINVAL, -ENOENT (not loaded), -EPERM.
#[no_mangle]
pub extern "C" fn xdpchain__test_run(
    chain: *const xdpchain,
    data: *const c_void,
    len: usize,
    verdict: *mut u32,
) -> c_int {
    guard(|| {
        let h = handle(chain)?;
        if data.is_null() || verdict.is_null() {
            return Err(invalid("data or verdict is NULL"));
        }
        // SAFETY: the caller promises len readable bytes.
        let packet = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
        let (v, _) = h.chain.test_run(packet, 1)?;
        // SAFETY: checked non-null.
        unsafe { *verdict = v };
        Ok(0)
    })
}

/// What the last failing call on this thread said (the verifier's log
/// among it, where the kernel refused a program); "" before any failure.
/// Valid until the next failing call on this thread.
#[no_mangle]
pub extern "C" fn xdpchain_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// The library's version, "MAJOR.MINOR.PATCH" (a static string).
#[no_mangle]
pub extern "C" fn xdpchain_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
