//! The object layer of libxdpchain: BPF ELF objects, their BTF and their
//! instructions, read, checked, rewritten and written without a kernel. It
//! has no libbpf, no libc and no system call, so all that untrusted bytes
//! reach here can be tested and fuzzed as plain functions.
//!
//! Not a stable API of its own: libxdpchain is its user.

#![forbid(unsafe_code)]

pub mod btf;
pub mod configure;
mod error;
pub mod inline;
pub mod inline_object;
pub mod insn;
pub mod license;
pub mod limits;
pub mod programs;
pub mod rewrite;
pub mod root;
pub mod verdict;

pub use error::{Error, Result};
