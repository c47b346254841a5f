//! xdpchain__apply(): chains files for C, as `xdpchain apply` applies them.

use std::ffi::{c_char, c_int, c_void, CString};
use std::path::Path;

use ::xdpchain::{ApplyOptions, Outcome, Selection, Store, DEFAULT_CHAINS_FILE};

use crate::{guard, opt_str, read_opts, Fail, Opts};

/// Receives what xdpchain__apply() does to one interface's chain, once per
/// change in run order: `verb` is "keep", "add", "replace" or "remove" for
/// what the file owns, "leave" for what it does not; `what` names the
/// component. An interface that does not exist gives one call with verb
/// "skip" ("no such interface"), one that failed one with verb "fail" and
/// its error as `what`.
/// `netns` is NULL for the calling thread's namespace. The strings live for
/// the call.
pub type xdpchain_apply_fn = Option<
    extern "C" fn(
        ifname: *const c_char,
        netns: *const c_char,
        verb: *const c_char,
        what: *const c_char,
        ctx: *mut c_void,
    ),
>;

/// Options of xdpchain__apply().
#[repr(C)]
#[derive(Clone, Copy)]
pub struct xdpchain_apply_opts {
    /// sizeof(struct xdpchain_apply_opts).
    pub sz: usize,
    /// The chains file, or a directory of them; NULL:
    /// /etc/xdpchain/chains.toml.
    pub path: *const c_char,
    /// Only the chain of this interface (of `netns`, or of the calling
    /// thread's namespace), and only its objects are read; NULL: every
    /// declared chain (of `netns`).
    pub ifname: *const c_char,
    /// Only the chains declared in this network namespace (a name as `ip
    /// netns` gives it, or a path); NULL: those of every namespace, or with
    /// `ifname`, of the calling thread's.
    pub netns: *const c_char,
    /// Change nothing; `report` hears what would change.
    pub dry_run: bool,
    /// Also remove what the file does not own (and replace another
    /// loader's program).
    pub prune: bool,
    /// Told what happens to each component (see xdpchain_apply_fn); NULL:
    /// nothing is told.
    pub report: xdpchain_apply_fn,
    /// Handed to `report`.
    pub ctx: *mut c_void,
}

impl Opts for xdpchain_apply_opts {
    const KNOWN: usize = std::mem::offset_of!(xdpchain_apply_opts, ctx) + size_of::<*mut c_void>();
}

/// Brings the chains to what a chains file declares, as `xdpchain apply`
/// does: per interface, only what differs changes, in one atomic swap; a
/// second call changes nothing. The file, and every object it names, is
/// read before anything changes: a bad one changes nothing. A declared
/// interface that does not exist is skipped; past one that fails, the
/// others are still applied. `opts` may be NULL.
/// Returns 0, or the negative errno of the first failure, whose message
/// (xdpchain_last_error()) names the file, the line and the component:
/// -EINVAL (a bad file), -ENOENT (a missing object), -ENOEXEC (a malformed
/// one), -EPERM (a file or object others could change, or no privileges),
/// and those of xdpchain__add_program().
#[no_mangle]
pub extern "C" fn xdpchain__apply(opts: *const xdpchain_apply_opts) -> c_int {
    guard(|| {
        let o = read_opts(opts, "apply opts")?;
        let (path, select) = match &o {
            Some(o) => (
                opt_str(o.path, "path")?,
                Selection {
                    netns: opt_str(o.netns, "netns")?,
                    interface: opt_str(o.ifname, "ifname")?,
                },
            ),
            None => (None, Selection::default()),
        };
        let chains =
            ::xdpchain::read_chains(Path::new(path.unwrap_or(DEFAULT_CHAINS_FILE)), select)?;
        let apply = ApplyOptions {
            dry_run: o.is_some_and(|o| o.dry_run),
            prune: o.is_some_and(|o| o.prune),
        };
        let report = o.and_then(|o| o.report.map(|f| (f, o.ctx)));
        let mut first = None;
        for (chain, outcome) in Store::new().apply_all(&chains, apply) {
            let tell = |verb: &str, what: &str| {
                if let Some((f, ctx)) = report {
                    let c = |s: &str| CString::new(s.replace('\0', " ")).expect("NULs replaced");
                    let netns = chain.netns.as_deref().map(c);
                    f(
                        c(&chain.interface).as_ptr(),
                        netns.as_ref().map_or(std::ptr::null(), |n| n.as_ptr()),
                        c(verb).as_ptr(),
                        c(what).as_ptr(),
                        ctx,
                    );
                }
            };
            match outcome {
                Outcome::Applied(a) => a.changes.iter().for_each(|c| tell(c.verb(), c.what())),
                Outcome::Missing => tell("skip", "no such interface"),
                Outcome::Failed(e) => {
                    tell("fail", &e.to_string());
                    first.get_or_insert(e);
                }
            }
        }
        match first {
            Some(e) => Err(Fail::from(e)),
            None => Ok(0),
        }
    })
}
