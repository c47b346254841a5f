//! The library's messages, libbpf's among them, to Python's `logging`:
//! the logger "xdpchain", and "xdpchain.libbpf" for libbpf's. Messages are
//! queued while the library runs without the GIL and logged once it is
//! back, so that logging never waits for the GIL inside the library.

use std::sync::Mutex;

use pyo3::prelude::*;

/// Beyond this many, messages of one call are dropped, not kept.
const MAX_QUEUED: usize = 10_000;

static QUEUE: Mutex<Vec<(log::Level, &'static str, String)>> = Mutex::new(Vec::new());

struct Queue;

impl log::Log for Queue {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let logger = match record.target() {
            "libbpf" => "xdpchain.libbpf",
            _ => "xdpchain",
        };
        let mut q = QUEUE.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() < MAX_QUEUED {
            q.push((record.level(), logger, record.args().to_string()));
        }
    }

    fn flush(&self) {}
}

fn python_level(level: log::Level) -> u32 {
    match level {
        log::Level::Error => 40,
        log::Level::Warn => 30,
        log::Level::Info => 20,
        log::Level::Debug => 10,
        log::Level::Trace => 5,
    }
}

/// Queues only what the "xdpchain" logger would show now.
fn set_level(py: Python<'_>) -> PyResult<()> {
    let level: u32 = py
        .import("logging")?
        .call_method1("getLogger", ("xdpchain",))?
        .call_method0("getEffectiveLevel")?
        .extract()?;
    log::set_max_level(match level {
        0..=10 => log::LevelFilter::Debug,
        11..=20 => log::LevelFilter::Info,
        21..=30 => log::LevelFilter::Warn,
        _ => log::LevelFilter::Error,
    });
    Ok(())
}

fn drain(py: Python<'_>) -> PyResult<()> {
    let queued = std::mem::take(&mut *QUEUE.lock().unwrap_or_else(|e| e.into_inner()));
    if queued.is_empty() {
        return Ok(());
    }
    let logging = py.import("logging")?;
    for (level, logger, msg) in queued {
        logging
            .call_method1("getLogger", (logger,))?
            .call_method1("log", (python_level(level), msg))?;
    }
    Ok(())
}

/// Runs `f` without the GIL, then logs what the library said meanwhile.
pub(crate) fn released<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> T {
    // A logging setup that fails must not fail the operation.
    let _ = set_level(py);
    let out = py.allow_threads(f);
    let _ = drain(py);
    out
}

pub(crate) fn install() {
    static LOGGER: Queue = Queue;
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Off);
}
