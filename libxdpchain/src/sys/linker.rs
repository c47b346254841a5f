//! libbpf's static linker, on objects in memory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;

use libbpf_sys as sys;

use super::{check, memfd, with_libbpf_log};
use crate::error::{Error, Result};

struct Linker(*mut sys::bpf_linker);

impl Drop for Linker {
    fn drop(&mut self) {
        // SAFETY: we own the linker.
        unsafe { sys::bpf_linker__free(self.0) }
    }
}

/// Links the named objects, in order, into one ELF object.
pub(crate) fn link(inputs: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let out = memfd("xdpchain-linked")?;
    let (res, log) = with_libbpf_log(|| -> std::io::Result<()> {
        let mut opts = sys::bpf_linker_opts {
            sz: std::mem::size_of::<sys::bpf_linker_opts>() as _,
        };
        // SAFETY: the fd stays open for the linker's lifetime.
        let linker = Linker(unsafe { sys::bpf_linker__new_fd(out.as_raw_fd(), &mut opts) });
        if linker.0.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        for (name, bytes) in inputs {
            let fopts = sys::bpf_linker_file_opts {
                sz: std::mem::size_of::<sys::bpf_linker_file_opts>() as _,
            };
            // SAFETY: bytes are valid for the call; libbpf copies them.
            check(unsafe {
                sys::bpf_linker__add_buf(
                    linker.0,
                    bytes.as_ptr() as *mut _,
                    bytes.len() as _,
                    &fopts,
                )
            })
            .map_err(|e| std::io::Error::new(e.kind(), format!("{name}: {e}")))?;
        }
        // SAFETY: the linker is live; finalizing writes to its fd.
        check(unsafe { sys::bpf_linker__finalize(linker.0) })?;
        Ok(())
    });
    res.map_err(|e| Error::Link(format!("{e}: {}", log.trim())))?;
    let mut file = File::from(out);
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| Error::os("read linked object", e))?;
    Ok(bytes)
}
