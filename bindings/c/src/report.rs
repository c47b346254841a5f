//! What a change through a handle did, told to the callback its open
//! options name (xdpchain_open_opts.report), one call per program.

use std::ffi::{c_char, c_void, CString};
use std::ptr;

use ::xdpchain::{Action, Report};

/// What a change did to one program.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum xdpchain_action {
    Added = 1,
    /// The handle's owner's component went.
    Removed = 2,
    /// A component kept its id with another program in it.
    Replaced = 3,
    /// Another owner's component, or another loader's program, went (only
    /// a handle opened with `force` does this).
    Dropped = 4,
}

/// One program that a change added, removed, replaced or dropped. The
/// strings live for the call.
#[repr(C)]
pub struct xdpchain_change {
    /// sizeof(struct xdpchain_change): fields past it are for a newer
    /// library.
    pub sz: usize,
    /// An enum xdpchain_action.
    pub action: u32,
    /// The interface it runs (or ran) on.
    pub ifname: *const c_char,
    /// Whether `id` is set: false for another loader's program.
    pub has_id: bool,
    /// Its component id.
    pub id: u32,
    /// The program's name.
    pub name: *const c_char,
    /// Who added it; NULL where no record says.
    pub owner: *const c_char,
    /// The kernel's id of the program that runs it (the chain's own for a
    /// linked component); 0 where not known.
    pub prog_id: u32,
    /// For XDPCHAIN_ACTION_REPLACED: the name and program id of what ran
    /// in its place; NULL and 0 otherwise.
    pub replaced_name: *const c_char,
    pub replaced_prog_id: u32,
}

/// Receives the changes that a call through a handle made, in the order of
/// its report: what went first, then what came.
pub type xdpchain_report_fn =
    Option<extern "C" fn(change: *const xdpchain_change, ctx: *mut c_void)>;

/// A string C can hold for the call (names never carry NUL; cut at one).
fn c_string(s: &str) -> CString {
    CString::new(s.split('\0').next().unwrap_or_default()).expect("cut at the first NUL")
}

/// Tells `report` to `f`, change by change.
pub(crate) fn tell(report: &Report, f: xdpchain_report_fn, ctx: *mut c_void) {
    let Some(f) = f else {
        return;
    };
    let ifname = c_string(&report.interface);
    for c in &report.changes {
        let name = c_string(&c.program.name);
        let owner = c.program.owner.as_ref().map(|o| c_string(o.name()));
        let replaced = c
            .replaced
            .as_ref()
            .map(|r| (c_string(&r.name), r.program_id));
        let change = xdpchain_change {
            sz: size_of::<xdpchain_change>(),
            action: match c.action {
                Action::Added => xdpchain_action::Added,
                Action::Removed => xdpchain_action::Removed,
                Action::Replaced => xdpchain_action::Replaced,
                Action::Dropped => xdpchain_action::Dropped,
            } as u32,
            ifname: ifname.as_ptr(),
            has_id: c.program.id.is_some(),
            id: c.program.id.unwrap_or(0),
            name: name.as_ptr(),
            owner: owner.as_ref().map_or(ptr::null(), |o| o.as_ptr()),
            prog_id: c.program.program_id.unwrap_or(0),
            replaced_name: replaced.as_ref().map_or(ptr::null(), |(n, _)| n.as_ptr()),
            replaced_prog_id: replaced.as_ref().and_then(|(_, id)| *id).unwrap_or(0),
        };
        f(&change, ctx);
    }
}
