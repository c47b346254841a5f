//! The kernel layer: every call into libbpf, libc and the kernel that needs
//! `unsafe` is here, behind safe functions and owners, each with the reason
//! it is sound. The layers above hold no `unsafe`.

use std::ffi::{c_int, CString};
use std::io;

use crate::error::{Error, Result};

mod bpf;
mod fs;
mod linker;
mod log;
mod net;
mod object;

pub use bpf::test_run;
pub(crate) use bpf::*;
pub(crate) use fs::*;
pub(crate) use linker::link;
pub(crate) use log::{probing, with_libbpf_log};
pub(crate) use net::*;
#[cfg(test)]
pub(crate) use object::prog_type_by_name;
pub(crate) use object::{pin_by_name, Object};

/// What libbpf or the kernel answered a load or an open it refused: the
/// errno, and what libbpf said (the verifier's log among it).
#[derive(Debug)]
pub(crate) struct Refusal {
    pub errno: io::Error,
    pub log: String,
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
