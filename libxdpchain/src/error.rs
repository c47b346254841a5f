//! The library's errors. Each failure a user can cause has its own variant,
//! so callers (and the C and Python layers) can map it without parsing text.

use std::io;

use xdpchain_obj::limits::shown;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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

    #[error(
        "{name}: several XDP programs ({}); name the one to chain",
        listed(available)
    )]
    AmbiguousProgram {
        name: String,
        available: Vec<String>,
    },

    #[error(
        "{name}: no XDP program named '{}' (has: {})",
        shown(program),
        listed(available)
    )]
    UnknownProgram {
        name: String,
        program: String,
        available: Vec<String>,
    },

    /// The first line says why (the verifier's own last words); the log
    /// follows on lines of its own.
    #[error(
        "component {component}: rejected by the verifier: {}\n{log}",
        refusal(log, errno)
    )]
    Verifier {
        component: String,
        errno: io::Error,
        log: String,
    },

    #[error(
        "the chain was rejected by the verifier: {}\n{log}",
        refusal(log, errno)
    )]
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

    #[error("{op}: {}", os_text(source))]
    Os { op: String, source: io::Error },
}

/// The object layer's errors keep their variant and text.
impl From<xdpchain_obj::Error> for Error {
    fn from(e: xdpchain_obj::Error) -> Self {
        use xdpchain_obj::Error as Obj;
        match e {
            Obj::NotElf { name } => Error::NotElf { name },
            Obj::Malformed { name, reason } => Error::Malformed { name, reason },
            Obj::TooLarge { name, what, limit } => Error::TooLarge { name, what, limit },
            // Named by their readers before they get here; these would be
            // the object layer's slips.
            Obj::Btf(reason) => Error::Malformed {
                name: "BTF".into(),
                reason: reason.into(),
            },
            Obj::Refused(why) => Error::InvalidArgument(why),
            Obj::NotInlined(why) => Error::Link(why),
        }
    }
}

impl From<xdpchain_obj::verdict::UnknownVerdict> for Error {
    fn from(e: xdpchain_obj::verdict::UnknownVerdict) -> Self {
        Error::InvalidArgument(e.to_string())
    }
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

    /// The verifier's log of a program the kernel refused, if that is
    /// what failed.
    pub fn verifier_log(&self) -> Option<&str> {
        match self {
            Error::Verifier { log, .. } | Error::Load { log, .. } => Some(log),
            Error::Declared { source, .. } => source.verifier_log(),
            _ => None,
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

/// Names from an object, as a message lists them: the first few, each cut
/// short, and how many more.
fn listed(names: &[String]) -> String {
    const LISTED: usize = 8;
    let mut out: Vec<_> = names.iter().take(LISTED).map(|n| shown(n)).collect();
    if names.len() > LISTED {
        out.push(format!("and {} more", names.len() - LISTED).into());
    }
    out.join(", ")
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

/// An errno in words, as strerror says it, without Rust's "(os error N)".
pub(crate) fn os_text(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Why the verifier refused a program, in its own words: the lines after
/// the last instruction it checked, up to its statistics; the errno in
/// words where the log says nothing.
pub(crate) fn refusal(log: &str, errno: &io::Error) -> String {
    let is_insn = |l: &str| {
        l.split_once(':')
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("processed ") && !l.starts_with("verification time"))
        .collect();
    let start = lines.iter().rposition(|l| is_insn(l)).map_or(0, |i| i + 1);
    let words: Vec<&str> = lines[start..]
        .iter()
        .copied()
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .collect();
    match words.is_empty() {
        true => os_text(errno),
        false => words.join("; "),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_says_the_verifiers_last_words_on_one_line() {
        let eacces = io::Error::from_raw_os_error(libc::EACCES);
        let log = "0: R1=ctx() R10=fp0\n\
                   ; return data[100]; @ bad.bpf.c:11\n\
                   4642: (71) r1 = *(u8 *)(r1 +100)\n\
                   invalid access to packet, off=100 size=1, R1(id=0,off=100,r=0)\n\
                   R1 offset is outside of the packet\n\
                   processed 47 insns (limit 1000000) max_states_per_insn 0\n";
        let e = Error::Verifier {
            component: "bad.o:xdp_bad".into(),
            errno: eacces,
            log: log.into(),
        };
        let text = e.to_string();
        assert_eq!(
            text.lines().next().unwrap(),
            "component bad.o:xdp_bad: rejected by the verifier: invalid access to packet, \
             off=100 size=1, R1(id=0,off=100,r=0); R1 offset is outside of the packet"
        );
        assert!(text.ends_with(log), "{text}");
        assert_eq!(
            refusal(
                "5: (95) exit\nR0 !read_ok\n",
                &io::Error::from_raw_os_error(libc::EACCES)
            ),
            "R0 !read_ok"
        );
        let einval = io::Error::from_raw_os_error(libc::EINVAL);
        assert_eq!(refusal("", &einval), "Invalid argument");
        let os = Error::Os {
            op: "attach".into(),
            source: einval,
        };
        assert_eq!(os.to_string(), "attach: Invalid argument");
    }

    /// A refused load: for lack of privileges it says so (whatever the
    /// log), else it is the verifier's, of the component or of the chain,
    /// with only the part of libbpf's output that is the kernel's log.
    #[test]
    fn a_refused_load_is_named_by_its_errno_and_component() {
        let errno = |n| io::Error::from_raw_os_error(n);
        let libbpf = "libbpf: prog 'x': BPF program load failed: Permission denied\n\
                      libbpf: prog 'x': -- BEGIN PROG LOAD LOG --\n0: (95) exit\n\
                      R0 !read_ok\n-- END PROG LOAD LOG --\nlibbpf: failed to load object\n";
        let e = Error::refused("load", None, errno(libc::EPERM), libbpf);
        assert!(
            matches!(e, Error::PermissionDenied { ref op } if op == "load"),
            "{e}"
        );
        let e = Error::refused("load", Some("a.o:x".into()), errno(libc::EACCES), libbpf);
        assert_eq!(e.verifier_log(), Some("0: (95) exit\nR0 !read_ok\n"));
        assert!(matches!(e, Error::Verifier { ref component, .. } if component == "a.o:x"));
        let e = Error::refused("load", None, errno(libc::EINVAL), "no log at all\n");
        assert!(
            matches!(e, Error::Load { ref log, .. } if log == "no log at all"),
            "{e}"
        );
        let declared = Error::Declared {
            at: "chains.toml:3".into(),
            what: "component a.o".into(),
            source: Box::new(e),
        };
        assert_eq!(declared.verifier_log(), Some("no log at all"));
    }

    /// The C API returns these; the object layer's errors keep theirs.
    #[test]
    fn errors_map_to_errnos() {
        let os = |n| Error::os("op", io::Error::from_raw_os_error(n));
        assert!(matches!(os(libc::EACCES), Error::PermissionDenied { .. }));
        assert_eq!(os(libc::EPERM).errno(), libc::EPERM);
        assert_eq!(os(libc::EBUSY).errno(), libc::EBUSY);
        let obj = xdpchain_obj::limits::too_large("a.o", "its size in bytes", 1);
        let e = Error::from(obj);
        assert_eq!(
            (e.errno(), e.to_string().as_str()),
            (libc::EFBIG, "a.o: its size in bytes passes the limit of 1")
        );
        let e = Error::from(xdpchain_obj::limits::malformed("a.o", "cut"));
        assert_eq!(e.errno(), libc::ENOEXEC);
        assert_eq!(Error::UnknownInterface("eth9".into()).errno(), libc::ENODEV);
        let e = Error::from(xdpchain_obj::verdict::Verdicts::parse("maybe").unwrap_err());
        assert_eq!(e.errno(), libc::EINVAL);
    }
}
