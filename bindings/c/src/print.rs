//! The library's messages, libbpf's among them, handed to a function of
//! the C program, in the manner of libbpf_set_print().

use std::ffi::{c_char, c_int, CString};
use std::sync::Mutex;

/// The level of a message given to an xdpchain_print_fn.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum xdpchain_print_level {
    /// Among them, the verifier's log of a program the kernel refused.
    Warn = 0,
    Info = 1,
    /// libbpf's account of each step of opening, relocating and loading.
    Debug = 2,
}

/// Receives one message: its level and its text, without a trailing
/// newline (libbpf's begin with "libbpf: ", the library's with
/// "xdpchain: "). The return value is ignored.
pub type xdpchain_print_fn =
    Option<extern "C" fn(level: xdpchain_print_level, msg: *const c_char) -> c_int>;

static PRINT: Mutex<xdpchain_print_fn> = Mutex::new(None);

fn current() -> xdpchain_print_fn {
    *PRINT.lock().unwrap_or_else(|e| e.into_inner())
}

struct ToC;

impl log::Log for ToC {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        current().is_some()
    }

    fn log(&self, record: &log::Record<'_>) {
        // Called without the lock held: the function may set another.
        let Some(print) = current() else {
            return;
        };
        let level = match record.level() {
            log::Level::Error | log::Level::Warn => xdpchain_print_level::Warn,
            log::Level::Info => xdpchain_print_level::Info,
            _ => xdpchain_print_level::Debug,
        };
        let prefix = if record.target() == "libbpf" {
            ""
        } else {
            "xdpchain: "
        };
        let text = format!("{prefix}{}", record.args()).replace('\0', "");
        let msg = CString::new(text).expect("NULs removed");
        print(level, msg.as_ptr());
    }

    fn flush(&self) {}
}

/// Sets the function that receives the library's messages and libbpf's
/// (the library routes libbpf's printing for the whole process), and
/// returns the previous one. NULL, the default, prints nothing: errors
/// carry what explains them (xdpchain_last_error()).
#[no_mangle]
pub extern "C" fn xdpchain_set_print(print: xdpchain_print_fn) -> xdpchain_print_fn {
    static LOGGER: ToC = ToC;
    // Fails only if a logger is set already: then it is ours.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(match print {
        Some(_) => log::LevelFilter::Debug,
        None => log::LevelFilter::Off,
    });
    std::mem::replace(&mut *PRINT.lock().unwrap_or_else(|e| e.into_inner()), print)
}
