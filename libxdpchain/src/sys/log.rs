//! libbpf's messages: captured per thread while an operation runs, so that
//! they reach the user inside the error they explain, and passed to the
//! `log` facade (target "libbpf") at their level, where the embedding
//! program's logger shows or drops them.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int};
use std::sync::Once;

use libbpf_sys as sys;

thread_local! {
    static LOG: RefCell<Option<String>> = const { RefCell::new(None) };
    static PROBING: Cell<bool> = const { Cell::new(false) };
}

unsafe extern "C" {
    fn vsnprintf(
        buf: *mut c_char,
        n: usize,
        fmt: *const c_char,
        ap: *mut sys::__va_list_tag,
    ) -> c_int;
}

unsafe extern "C" fn print(
    level: sys::libbpf_print_level,
    fmt: *const c_char,
    ap: *mut sys::__va_list_tag,
) -> c_int {
    let level = match level {
        sys::LIBBPF_WARN => log::Level::Warn,
        sys::LIBBPF_INFO => log::Level::Info,
        _ => log::Level::Debug,
    };
    // Errors carry libbpf's warnings and information, not its debugging.
    let capturing = level < log::Level::Debug && LOG.with(|l| l.borrow().is_some());
    let level = if PROBING.get() {
        log::Level::Debug
    } else {
        level
    };
    if !capturing && !log::log_enabled!(target: "libbpf", level) {
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
    if capturing {
        LOG.with(|l| {
            if let Some(log) = l.borrow_mut().as_mut() {
                log.push_str(&msg);
            }
        });
    }
    // The logger is the embedding program's; a panic in it must not
    // unwind into libbpf.
    let _ = std::panic::catch_unwind(|| {
        log::log!(target: "libbpf", level, "{}", msg.trim_end());
    });
    0
}

/// Routes libbpf's messages, for the whole process, through [`print`]:
/// into the errors they explain, and to the `log` facade.
pub(crate) fn init() {
    static ONCE: Once = Once::new();
    // SAFETY: print has the signature libbpf expects and never unwinds.
    ONCE.call_once(|| unsafe {
        sys::libbpf_set_print(Some(print));
    });
}

/// Runs `f`, a probe of the kernel, with libbpf's messages on this thread
/// logged as debugging: a refusal is the answer a probe looks for, not a
/// warning (errors still carry them).
pub(crate) fn probing<T>(f: impl FnOnce() -> T) -> T {
    let outer = PROBING.replace(true);
    let out = f();
    PROBING.set(outer);
    out
}

/// Runs `f` and returns what libbpf said meanwhile on this thread.
pub(crate) fn with_libbpf_log<T>(f: impl FnOnce() -> T) -> (T, String) {
    init();
    let outer = LOG.with(|l| l.replace(Some(String::new())));
    let out = f();
    let log = LOG.with(|l| l.replace(outer)).unwrap_or_default();
    (out, log)
}
