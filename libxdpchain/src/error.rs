//! The library's errors. Each failure a user can cause has its own variant,
//! so callers (and the C and Python layers) can map it without parsing text.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{name}: not an ELF file")]
    NotElf { name: String },

    #[error("{name}: ELF object for machine {machine}, not BPF")]
    NotBpf { name: String, machine: u16 },

    #[error("{name}: malformed BPF object: {reason}")]
    Malformed { name: String, reason: String },

    #[error("{name}: {what} passes the limit of {limit}")]
    TooLarge {
        name: String,
        what: String,
        limit: u64,
    },

    #[error("{name}: no XDP program in the object")]
    NoXdpProgram { name: String },

    #[error("{name}: several XDP programs ({}); name the one to chain", available.join(", "))]
    AmbiguousProgram {
        name: String,
        available: Vec<String>,
    },

    #[error("{name}: no XDP program named '{program}' (has: {})", available.join(", "))]
    UnknownProgram {
        name: String,
        program: String,
        available: Vec<String>,
    },

    #[error("component {component}: rejected by the verifier: {errno}\n{log}")]
    Verifier {
        component: String,
        errno: io::Error,
        log: String,
    },

    #[error("chain rejected by the kernel: {errno}\n{log}")]
    Load { errno: io::Error, log: String },

    #[error("linking the chain failed: {0}")]
    Link(String),

    #[error("no such interface: {0}")]
    UnknownInterface(String),

    #[error("{op}: permission denied (needs root, or CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON)")]
    PermissionDenied { op: String },

    #[error("bpffs is not mounted at {path}")]
    BpffsNotMounted { path: String },

    #[error("interface {iface} runs XDP program {prog_id} ({name}) of another loader; use force to replace it")]
    ForeignProgram {
        iface: String,
        prog_id: u32,
        name: String,
    },

    #[error("interface {iface} runs a libxdp (xdp-tools) dispatcher, program {prog_id}, whose programs live in libxdp's pins: join it through a Store (xdpchain add), manage it with xdp-loader, or unload it first")]
    LibxdpDispatcher { iface: String, prog_id: u32 },

    #[error("interface {iface} runs a chain of which {dir} holds no record (it was attached by a process that keeps none); replace it with attach, or detach it")]
    NoState { iface: String, dir: String },

    #[error("interface {iface}: {others}, not of {owner}; force changes them")]
    NotOwner {
        iface: String,
        owner: String,
        others: String,
    },

    #[error("no network namespace named '{0}'")]
    UnknownNetns(String),

    #[error("refusing pin directory {path}: {reason}")]
    UnsafePinDir { path: String, reason: String },

    /// A chains file, or an object it names, that users other than root
    /// (or the caller) could change.
    #[error("refusing {path}: {reason}")]
    Untrusted { path: String, reason: String },

    #[error("the XDP program on {iface} is not the one expected (another loader changed it)")]
    Raced { iface: String },

    #[error("interface {0} runs no chain")]
    NoChain(String),

    #[error("the chain is not loaded (load or attach it first)")]
    NotLoaded,

    #[error("the chain is not attached")]
    NotAttached,

    #[error("too many components: {count} (at most {max})")]
    TooManyComponents { count: usize, max: usize },

    #[error("no component named '{0}' in the chain")]
    UnknownComponent(String),

    #[error("component {component} has no map named '{map}'")]
    UnknownMap { component: String, map: String },

    #[error("not supported by this kernel: {0}")]
    Unsupported(String),

    /// Timing and dumps need a chain in our layout made with counters on.
    #[error("the chain on {iface} cannot {what}: only chains in xdpchain's layout made with counters on can")]
    NotCounting { iface: String, what: &'static str },

    #[error("cannot dump on {iface}: {reason}")]
    DumpBusy { iface: String, reason: String },

    #[error("{iface}: its MTU lets packets exceed a page, which only multi-buffer XDP programs (SEC(\"xdp.frags\")) may see; a chain is multi-buffer aware when all its components are{}", if without.is_empty() { String::new() } else { format!(", and {} are not", without.join(", ")) })]
    NeedsFrags { iface: String, without: Vec<String> },

    #[error("{at}: {reason}")]
    ChainsFile { at: String, reason: String },

    /// What a chains file declares at `at` (a component, an interface)
    /// failed.
    #[error("{at}: {what}: {source}")]
    Declared {
        at: String,
        what: String,
        source: Box<Error>,
    },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    #[error("{op}: {source}")]
    Os { op: String, source: io::Error },
}

impl Error {
    /// Wraps an errno from the kernel or libbpf, singling out permission
    /// errors so that every operation reports them the same way.
    pub(crate) fn os(op: impl Into<String>, err: io::Error) -> Self {
        let op = op.into();
        match err.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => Error::PermissionDenied { op },
            _ => Error::Os { op, source: err },
        }
    }

    /// A load the kernel refused `op`: for lack of privileges, or by the
    /// verifier's judgement on `component` (or on the whole program).
    pub(crate) fn refused(
        op: &str,
        component: Option<String>,
        errno: io::Error,
        libbpf_log: &str,
    ) -> Self {
        let log = verifier_log(libbpf_log);
        match (errno.raw_os_error(), component) {
            (Some(libc::EPERM), _) => Error::PermissionDenied { op: op.into() },
            (_, Some(component)) => Error::Verifier {
                component,
                errno,
                log,
            },
            (_, None) => Error::Load { errno, log },
        }
    }

    /// The errno that best describes the error, for the C API.
    pub fn errno(&self) -> i32 {
        match self {
            Error::NotElf { .. } | Error::NotBpf { .. } | Error::Malformed { .. } => libc::ENOEXEC,
            Error::TooLarge { .. } => libc::EFBIG,
            Error::NoXdpProgram { .. } | Error::UnknownProgram { .. } => libc::ENOENT,
            Error::AmbiguousProgram { .. } | Error::InvalidArgument(_) => libc::EINVAL,
            Error::Verifier { errno, .. } | Error::Load { errno, .. } => {
                errno.raw_os_error().unwrap_or(libc::EINVAL)
            }
            Error::Link(_) | Error::ChainsFile { .. } => libc::EINVAL,
            Error::Declared { source, .. } => source.errno(),
            Error::UnknownInterface(_) => libc::ENODEV,
            Error::PermissionDenied { .. } => libc::EPERM,
            Error::BpffsNotMounted { .. } => libc::ENOTDIR,
            Error::ForeignProgram { .. }
            | Error::LibxdpDispatcher { .. }
            | Error::NoState { .. }
            | Error::NotOwner { .. } => libc::EBUSY,
            Error::UnknownNetns(_) => libc::ENOENT,
            Error::UnsafePinDir { .. } | Error::Untrusted { .. } => libc::EPERM,
            Error::Raced { .. } => libc::EAGAIN,
            Error::NoChain(_)
            | Error::NotLoaded
            | Error::NotAttached
            | Error::UnknownComponent(_)
            | Error::UnknownMap { .. } => libc::ENOENT,
            Error::TooManyComponents { .. } => libc::E2BIG,
            Error::Unsupported(_) | Error::NotCounting { .. } => libc::EOPNOTSUPP,
            Error::DumpBusy { .. } => libc::EBUSY,
            Error::NeedsFrags { .. } => libc::ERANGE,
            Error::Os { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        }
    }
}

/// The verifier's own words inside libbpf's report of a failed load.
fn verifier_log(libbpf_log: &str) -> String {
    const BEGIN: &str = "-- BEGIN PROG LOAD LOG --\n";
    const END: &str = "-- END PROG LOAD LOG --";
    match (libbpf_log.find(BEGIN), libbpf_log.find(END)) {
        (Some(b), Some(e)) if b + BEGIN.len() <= e => libbpf_log[b + BEGIN.len()..e].to_string(),
        _ => libbpf_log.trim_end().to_string(),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
