//! The C API of libxdpchain, a thin layer over the Rust core (`xdpchain`):
//! handles, option structs that carry their size, negative errnos, a
//! per-thread message for the last error, and no panic across the boundary.
//! `include/xdpchain.h` is generated from this crate by cbindgen.
#![allow(non_camel_case_types)]
// These are C's functions: their pointer contracts are stated in the header,
// and marking them `unsafe` would change nothing for a C caller.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::mem::{size_of, MaybeUninit};
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};

mod apply;
mod print;
mod report;

pub use apply::{xdpchain__apply, xdpchain_apply_fn, xdpchain_apply_opts};
pub use print::{xdpchain_print_fn, xdpchain_print_level, xdpchain_set_print};
pub use report::{xdpchain_action, xdpchain_change, xdpchain_report_fn};

use ::xdpchain::{
    AttachMode, AttachOptions, Chain, ChainHandle, Component, ComponentId, Counting, Error, Listed,
    Mode, OpenOptions, Report, Store, Timing, Verdicts,
};

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
    /// The interface whose chain to open (a name, or an index as digits):
    /// the chain every process shares there, whether or not one runs yet.
    /// NULL for a chain of this handle's own that is only linked into a file.
    pub ifname: *const c_char,
    /// How a chain this handle creates joins its components: an enum
    /// xdpchain_mode; 0 is XDPCHAIN_MODE_AUTO. This, `no_counters`,
    /// `counters` and skb `attach_mode` are for a new chain: adding to a
    /// running one that cannot follow them fails with -EINVAL.
    pub mode: u32,
    /// A chain this handle creates leaves out the per-component counters
    /// (and all counting code). With neither this nor `counters`, a chain
    /// counts where the kernel lets it (in libxdp's layout, the programs
    /// added through libxdpchain).
    pub no_counters: bool,
    /// Without `ifname`: where maps that their objects pin by name go;
    /// NULL: /sys/fs/bpf. Chains of interfaces always use the shared bpffs.
    pub pin_root: *const c_char,
    /// The owner recorded with the components this handle adds (1 to 63
    /// printable characters, no spaces); NULL: the program's name.
    pub owner: *const c_char,
    /// The network namespace of `ifname`: a name as `ip netns` gives it, or
    /// a path such as /proc/PID/ns/net; NULL: the calling thread's.
    pub netns: *const c_char,
    /// How a chain this handle creates is attached: an enum
    /// xdpchain_attach_mode.
    pub attach_mode: u32,
    /// Let this handle replace or remove the components of other owners,
    /// and replace an XDP program of another loader.
    pub force: bool,
    /// A chain this handle creates counts packets per component, and times
    /// and dumps on request: it takes xdpchain's layout. Without it, a
    /// chain in libxdp's layout counts the programs added through
    /// libxdpchain where the kernel lets it trace them.
    pub counters: bool,
    /// Told every program that a change through this handle added,
    /// removed, replaced or dropped (see xdpchain_report_fn), before the
    /// call that made the change returns; NULL: nothing is told.
    pub report: xdpchain_report_fn,
    /// Handed to `report`.
    pub report_ctx: *mut c_void,
    /// A chain this handle creates is bound to its interface though no
    /// component reads RX metadata yet, so that one can join it later (a
    /// chain with one is bound anyway). Adding to a running chain that is
    /// not bound fails with -EINVAL.
    pub device_bound: bool,
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
    /// Values of the object's global variables (`const volatile` ones in
    /// .rodata above all), set before loading as its own loader would:
    /// `globals_cnt` of them.
    pub globals: *const xdpchain_global,
    pub globals_cnt: usize,
    /// Sizes of the object's maps: `map_sizes_cnt` of them.
    pub map_sizes: *const xdpchain_map_size,
    pub map_sizes_cnt: usize,
    /// Keep it a function of its own in a static chain, which fentry and
    /// fexit programs attach to by the name `function` of
    /// xdpchain__component() shows.
    pub traceable: bool,
}

/// A global variable's value: `size` bytes at `value`, exactly the
/// variable's size (little-endian for integers).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct xdpchain_global {
    pub name: *const c_char,
    pub value: *const c_void,
    pub size: usize,
}

/// A map's size (max_entries).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct xdpchain_map_size {
    pub name: *const c_char,
    pub max_entries: u32,
}

/// Options of xdpchain__attach().
#[repr(C)]
#[derive(Clone, Copy)]
pub struct xdpchain_attach_opts {
    /// sizeof(struct xdpchain_attach_opts).
    pub sz: usize,
    /// An enum xdpchain_attach_mode; 0 is XDPCHAIN_ATTACH_MODE_NATIVE. It
    /// must be the mode the chain runs in (set it for a new chain in
    /// xdpchain_open_opts).
    pub attach_mode: u32,
    /// Unused since 0.2 (set force in xdpchain_open_opts); must be false.
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
    /// When `path` is NULL: as in xdpchain_attach_opts.
    pub attach_mode: u32,
    /// When `path` is NULL: as in xdpchain_attach_opts.
    pub force: bool,
}

/// One component, as xdpchain__component() describes it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct xdpchain_component_info {
    /// sizeof(struct xdpchain_component_info), set by the caller.
    pub sz: usize,
    /// Stable while the component stays in the chain, and never given to
    /// another component of it.
    pub id: u32,
    /// Position in run order.
    pub slot: u32,
    /// Run order: lower first.
    pub priority: i32,
    /// XDPCHAIN_VERDICT() bits.
    pub continue_on: u32,
    /// The program that runs it (the chain's own when linked in, its
    /// extension program in libxdp's layout); 0 where not known (before
    /// loading, a dynamic chain's extension).
    pub prog_id: u32,
    /// Whether `counters` holds counts (loaded, with counting on).
    pub has_counters: bool,
    /// Packets by the verdict it returned: XDP_ABORTED, XDP_DROP, XDP_PASS,
    /// XDP_TX, XDP_REDIRECT, then any other value.
    pub counters: [u64; 6],
    /// Its program's name, NUL-terminated (cut to fit).
    pub name: [c_char; 64],
    /// Who added it, NUL-terminated; "" where no record says (xdp-loader's
    /// programs, a chain of a handle opened without an interface).
    pub owner: [c_char; 64],
    /// The process that added it (it may have exited since); 0 if unknown.
    pub pid: u32,
    /// Whether this handle added it (what xdpchain__detach() takes out).
    pub own: bool,
    /// Whether `inlined` is known: a static chain, loaded.
    pub has_inlined: bool,
    /// Whether the chain runs it without a call: its code copied into a
    /// root generated for the chain.
    pub inlined: bool,
    /// Nanoseconds it took, summed over the packets timed while timing was
    /// on (xdpchain__set_timing()), and those packets; 0 without counters.
    pub run_time_ns: u64,
    pub run_cnt: u64,
    /// The function that runs it in program `prog_id`, which fentry and
    /// fexit programs attach to, NUL-terminated; "" where it is inlined or
    /// not known.
    pub function: [c_char; 64],
}

/// Where an option struct's known fields end: bytes past it, up to the
/// caller's size, must be zero (trailing padding included, as libbpf's
/// OPTS_VALID checks).
trait Opts: Copy {
    const KNOWN: usize;
}

macro_rules! known_until {
    ($t:ty, $last:ident: $ty:ty) => {
        impl Opts for $t {
            const KNOWN: usize = std::mem::offset_of!($t, $last) + size_of::<$ty>();
        }
    };
}

known_until!(xdpchain_open_opts, device_bound: bool);
known_until!(xdpchain_program_opts, traceable: bool);
known_until!(xdpchain_attach_opts, force: bool);
known_until!(xdpchain_link_opts, force: bool);

const MAGIC: u64 = 0x7864_7063_6861_696e; // "xdpchain"
const FREED: u64 = 0xdead_c4a1_dead_c4a1;

/// The chain of an interface as one owner opened it, or a chain of the
/// handle's own to link into a file. Created by xdpchain__open(), released
/// by xdpchain__free().
pub struct xdpchain {
    magic: u64,
    inner: ChainHandle,
    /// Told what changes through the handle do.
    report: (xdpchain_report_fn, *mut c_void),
    /// Held while xdpchain__set_timing() has timing on.
    timing: Option<Timing>,
}

impl xdpchain {
    /// Tells the report callback what a change on the interface did.
    fn tell(&self, report: Option<Report>) {
        if let Some(report) = report {
            report::tell(&report, self.report.0, self.report.1);
        }
    }
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
/// zero; bytes past the fields this library knows must be zero.
fn read_opts<T: Opts>(p: *const T, what: &str) -> Result<Option<T>, Fail> {
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
    let extra = (T::KNOWN..sz).any(|i| unsafe { *bytes.add(i) } != 0);
    if extra {
        return Err(invalid(format!(
            "{what}: bytes past the {} this library knows are set (fields of a newer library, or padding not zeroed: use XDPCHAIN_OPTS)",
            T::KNOWN
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

fn counting_of(o: &xdpchain_open_opts) -> Result<Counting, Fail> {
    match (o.counters, o.no_counters) {
        (true, true) => Err(invalid("counters and no_counters contradict")),
        (true, false) => Ok(Counting::On),
        (false, true) => Ok(Counting::Off),
        (false, false) => Ok(Counting::Auto),
    }
}

fn attach_mode_of(v: u32) -> Result<AttachMode, Fail> {
    match v {
        0 => Ok(AttachMode::Native),
        1 => Ok(AttachMode::Skb),
        _ => Err(invalid(format!("unknown attach mode {v}"))),
    }
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
    c = c.with_traceable(o.traceable);
    if o.continue_on != 0 {
        c = c.with_continue_on(Verdicts::from_bits(o.continue_on));
    }
    for g in array(o.globals, o.globals_cnt, "globals")? {
        let name =
            opt_str(g.name, "global name")?.ok_or_else(|| invalid("a global's name is NULL"))?;
        if g.value.is_null() {
            return Err(invalid(format!("global {name}: value is NULL")));
        }
        // SAFETY: the caller promises `size` readable bytes at `value`.
        let value = unsafe { std::slice::from_raw_parts(g.value.cast::<u8>(), g.size) };
        c = c.with_global(name, value)?;
    }
    for m in array(o.map_sizes, o.map_sizes_cnt, "map_sizes")? {
        let name = opt_str(m.name, "map name")?.ok_or_else(|| invalid("a map's name is NULL"))?;
        c = c.with_map_size(name, m.max_entries)?;
    }
    Ok(c)
}

/// The `cnt` elements at `p` (none if `cnt` is 0).
fn array<'a, T>(p: *const T, cnt: usize, what: &str) -> Result<&'a [T], Fail> {
    match (p.is_null(), cnt) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(invalid(format!("{what} is NULL with a count of {cnt}"))),
        // SAFETY: the caller promises `cnt` elements at `p`, live for the call.
        (false, _) => Ok(unsafe { std::slice::from_raw_parts(p, cnt) }),
    }
}

/// Opens a chain in `*chain`.
///
/// With `ifname`, the chain of that interface, which every process shares:
/// components added through this handle join it beside those of other
/// owners, and stay when the handle or the process goes. Without, an empty
/// chain of this handle's own, to link into a file. `opts` may be NULL.
/// Free the handle with xdpchain__free().
/// Returns 0, or -EINVAL (NULL `chain`, bad options), -ENODEV (no such
/// interface), -ENOENT (no such network namespace), -EPERM.
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
        let ifname = match &o {
            Some(o) => opt_str(o.ifname, "ifname")?,
            None => None,
        };
        let inner = match (o, ifname) {
            (Some(o), Some(ifname)) => {
                if !o.pin_root.is_null() {
                    return Err(invalid(
                        "pin_root applies to chains opened without an interface",
                    ));
                }
                let mut store = Store::new();
                if o.mode != 0 {
                    store = store.with_mode(mode_of(o.mode)?);
                }
                let opts = OpenOptions {
                    owner: opt_str(o.owner, "owner")?.map(str::to_string),
                    attach: AttachOptions {
                        mode: attach_mode_of(o.attach_mode)?,
                        force: o.force,
                        device_bound: o.device_bound,
                    },
                    counting: counting_of(&o)?,
                    netns: opt_str(o.netns, "netns")?.map(str::to_string),
                };
                ChainHandle::Shared(store.open(ifname, opts)?)
            }
            (o, _) => {
                let mut c = Chain::new();
                if let Some(o) = o {
                    if !o.owner.is_null()
                        || !o.netns.is_null()
                        || o.force
                        || o.attach_mode != 0
                        || o.report.is_some()
                    {
                        return Err(invalid(
                            "owner, netns, attach_mode, force and report need an interface (ifname)",
                        ));
                    }
                    c.set_mode(mode_of(o.mode)?);
                    c.set_counting(counting_of(&o)? != Counting::Off);
                    if let Some(root) = opt_str(o.pin_root, "pin_root")? {
                        c.set_pin_root(root);
                    }
                }
                ChainHandle::Local(c)
            }
        };
        let h = Box::new(xdpchain {
            magic: MAGIC,
            inner,
            report: o.map_or((None, std::ptr::null_mut()), |o| (o.report, o.report_ctx)),
            timing: None,
        });
        // SAFETY: checked non-null; the caller owns the handle from here.
        unsafe { *chain = Box::into_raw(h) };
        Ok(0)
    })
}

/// Frees a handle. What it added to an interface's chain stays there (as
/// XDP programs attached by netlink do): take it out first with
/// xdpchain__detach() if it should go. NULL is ignored.
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

fn no_interface() -> Fail {
    invalid("the chain was opened without an interface")
}

/// Adds a component, from a file or from memory. On a handle opened with
/// an interface, the component joins that interface's chain at once
/// (creating the chain if there is none), atomically: every packet sees
/// the chain without it or with it. On failure (a program the verifier
/// rejects: the message carries its log) nothing changes. On success the
/// component's id goes to `*id` (if not NULL), and the handle's report
/// callback hears it, after what force dropped.
/// Returns 0, or -EINVAL, -ENOENT (no such file or program), -ENOEXEC (not
/// a BPF object), -E2BIG (too many components), -EBUSY (another loader's
/// program runs there), -EPERM, -EACCES and others from the kernel.
#[no_mangle]
pub extern "C" fn xdpchain__add_program(
    chain: *mut xdpchain,
    opts: *const xdpchain_program_opts,
    id: *mut u32,
) -> c_int {
    guard(|| {
        let h = handle_mut(chain)?;
        let c = component(opts)?;
        let (new, report) = h.inner.add(c)?;
        h.tell(report);
        if !id.is_null() {
            // SAFETY: the caller passes a writable u32 or NULL.
            unsafe { *id = new.0 };
        }
        Ok(0)
    })
}

/// Removes the component `id`, atomically; another owner's only if the
/// handle was opened with `force`. An interface's chain goes with its last
/// component.
/// Returns 0, or -EINVAL, -ENOENT (no such component), -EBUSY (another
/// owner's), and load errors.
#[no_mangle]
pub extern "C" fn xdpchain__remove_program(chain: *mut xdpchain, id: u32) -> c_int {
    guard(|| {
        let h = handle_mut(chain)?;
        let report = h.inner.remove(ComponentId(id))?;
        h.tell(report);
        Ok(0)
    })
}

/// Puts the component `opts` describes in run-order position `slot`
/// atomically: every packet sees the old component or the new one. The
/// new one takes the old one's id and priority; its maps start afresh.
/// Another owner's component only if the handle was opened with `force`.
/// Returns 0, or -EINVAL (also for a slot past the last component), -EBUSY
/// (another owner's) and the errors of xdpchain__add_program().
#[no_mangle]
pub extern "C" fn xdpchain__replace_slot(
    chain: *mut xdpchain,
    slot: u32,
    opts: *const xdpchain_program_opts,
) -> c_int {
    guard(|| {
        let h = handle_mut(chain)?;
        let id = h.inner.at_slot(slot as usize)?;
        let report = h.inner.replace(id, component(opts)?)?;
        h.tell(report);
        Ok(0)
    })
}

/// What xdpchain__attach() and xdpchain__link_static() without a path
/// check: the handle's chain runs on its interface, in `mode`, and (for
/// link_static) statically.
fn check_running(h: &xdpchain, attach_mode: u32, force: bool, linked: bool) -> Result<c_int, Fail> {
    let ChainHandle::Shared(shared) = &h.inner else {
        return Err(no_interface());
    };
    let want = attach_mode_of(attach_mode)?;
    if force {
        return Err(invalid(
            "force is an option of xdpchain__open() (xdpchain_open_opts.force)",
        ));
    }
    shared.expect_running(want, linked.then_some(Mode::Static))?;
    Ok(0)
}

/// Components join the interface's chain as xdpchain__add_program() adds
/// them; this checks that the chain runs there, in the attach mode `opts`
/// gives (NULL: native). Returns 0, or -EINVAL (no interface, another
/// mode), -ENOENT (no chain runs there).
#[no_mangle]
pub extern "C" fn xdpchain__attach(
    chain: *mut xdpchain,
    opts: *const xdpchain_attach_opts,
) -> c_int {
    guard(|| {
        let h = handle_mut(chain)?;
        let o = read_opts(opts, "attach opts")?;
        let (mode, force) = o.map_or((0, false), |o| (o.attach_mode, o.force));
        check_running(h, mode, force, false)
    })
}

/// Links the components under the root program into one BPF program with
/// libbpf's linker and writes it to `opts->path` (any libbpf-based loader
/// can load it), on a handle opened without an interface. Without a path,
/// checks as xdpchain__attach() does that the interface's chain runs,
/// linked (static: open it with XDPCHAIN_MODE_STATIC). `opts` may be NULL.
/// Returns 0, or -EINVAL, -ENOENT, or the errors of writing the file.
#[no_mangle]
pub extern "C" fn xdpchain__link_static(
    chain: *mut xdpchain,
    opts: *const xdpchain_link_opts,
) -> c_int {
    guard(|| {
        let h = handle_mut(chain)?;
        let o = read_opts(opts, "link opts")?;
        if let Some(path) = o.and_then(|o| opt_str(o.path, "path").transpose()) {
            let ChainHandle::Local(chain) = &h.inner else {
                return Err(invalid(
                    "an interface's chain is not linked into a file; open a handle without ifname for that",
                ));
            };
            chain.write(path?)?;
            return Ok(0);
        }
        let (mode, force) = o.map_or((0, false), |o| (o.attach_mode, o.force));
        check_running(h, mode, force, true)
    })
}

/// Takes the components this handle added out of the interface's chain,
/// atomically; those of other owners stay. The chain leaves the interface
/// with its last component.
/// Returns 0, or -EINVAL, -ENOENT (nothing of this handle runs there).
#[no_mangle]
pub extern "C" fn xdpchain__detach(chain: *mut xdpchain) -> c_int {
    guard(|| {
        let h = handle_mut(chain)?;
        let ChainHandle::Shared(shared) = &mut h.inner else {
            return Err(no_interface());
        };
        let report = shared.detach()?;
        h.tell(Some(report));
        Ok(0)
    })
}

/// The number of components (of every owner), or -EINVAL.
#[no_mangle]
pub extern "C" fn xdpchain__component_count(chain: *const xdpchain) -> c_int {
    guard(|| Ok(handle(chain)?.inner.components()?.len() as c_int))
}

fn copy_name(dst: &mut [c_char; 64], src: &str) {
    for (d, s) in dst.iter_mut().zip(src.bytes().take(63)) {
        *d = s as c_char;
    }
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
        // SAFETY: zeroed is valid for this plain-data struct.
        let mut out: xdpchain_component_info = unsafe { std::mem::zeroed() };
        out.sz = sz;
        out.slot = slot;
        let listed = h.inner.components()?;
        let Listed { status: c, own } = listed.get(slot as usize).ok_or_else(|| {
            invalid(format!(
                "slot {slot} is out of range (the chain has {} components)",
                listed.len()
            ))
        })?;
        out.id = c.id;
        out.priority = c.priority;
        out.continue_on = c.continue_on.bits();
        out.prog_id = c.program_id.unwrap_or(0);
        if let Some(k) = c.counters {
            out.has_counters = true;
            out.counters[..5].copy_from_slice(&k.verdicts);
            out.counters[5] = k.other;
            out.run_time_ns = k.run_time_ns;
            out.run_cnt = k.run_cnt;
        }
        copy_name(&mut out.name, &c.name);
        if let Some(o) = &c.owner {
            copy_name(&mut out.owner, o.name());
            out.pid = o.pid();
        }
        out.own = *own;
        if let Some(inlined) = c.inlined {
            out.has_inlined = true;
            out.inlined = inlined;
        }
        if let Some(f) = &c.function {
            copy_name(&mut out.function, f);
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

/// Switches timing of the components of the handle's chain on or off: while
/// on, their run time (`run_time_ns`, `run_cnt` of xdpchain__component())
/// grows. Timing is renewed by a thread of this process and stops at most
/// 3 s after it is switched off, the handle is freed or the process ends
/// (also when killed); other readers may keep it on. Nothing is reloaded.
/// Returns 0, or -EINVAL (NULL, a handle without an interface), -ENOENT
/// (no chain runs there), -EOPNOTSUPP (a chain without counters, or in
/// libxdp's layout).
#[no_mangle]
pub extern "C" fn xdpchain__set_timing(chain: *mut xdpchain, on: bool) -> c_int {
    guard(|| {
        let h = handle_mut(chain)?;
        let ChainHandle::Shared(shared) = &h.inner else {
            return Err(no_interface());
        };
        h.timing = match on {
            true if h.timing.is_some() => h.timing.take(),
            true => Some(shared.timing()?),
            false => None,
        };
        Ok(0)
    })
}

/// The fd of a component's map, found by the name it has in the
/// component's own object: a map's name, or a data section (".data",
/// ".bss", ".rodata"). The fd belongs to the handle: valid until the handle
/// is freed (or, on a handle opened without an interface, the chain is
/// rebuilt); dup() it to keep it.
/// Returns the fd, or -EINVAL, -ENOENT (not loaded, no such component or
/// map), -EOPNOTSUPP (libxdp's layout, whose maps we do not pin).
#[no_mangle]
pub extern "C" fn xdpchain__map_fd(
    chain: *mut xdpchain,
    id: u32,
    map_name: *const c_char,
) -> c_int {
    guard(|| {
        let h = handle_mut(chain)?;
        let name = req_str(map_name, "map_name")?;
        Ok(h.inner.map_fd(ComponentId(id), name)?.as_raw_fd())
    })
}

/// How the chain joins its components: static or dynamic once it runs (or
/// is loaded); before, the mode asked for. An enum xdpchain_mode, or
/// -EINVAL.
#[no_mangle]
pub extern "C" fn xdpchain__mode(chain: *const xdpchain) -> c_int {
    guard(|| {
        let mode = handle(chain)?.inner.mode()?;
        Ok(match mode {
            Mode::Auto => xdpchain_mode::Auto,
            Mode::Static => xdpchain_mode::Static,
            Mode::Dynamic => xdpchain_mode::Dynamic,
        } as c_int)
    })
}

/// Runs the chain once on the packet `data` (`len` bytes) with
/// BPF_PROG_TEST_RUN: the interface's chain, or a loaded chain of the
/// handle's own. Its verdict goes to `*verdict`.
/// Returns 0, or -EINVAL, -ENOENT (nothing runs or is loaded), -EPERM.
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
        let (v, _) = h.inner.test_run(packet, 1)?;
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
