//! Who added a component to a shared chain: a name and a process.

use std::fmt;

use crate::error::{Error, Result};

/// The owner recorded with each component of a shared chain: a name (the
/// program's, unless one is given) and the process id. Components whose
/// owner has another name are others': replacing or removing them, or
/// attaching over them, takes force.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    name: String,
    pid: u32,
}

/// Longest owner name (a record field, and a C array with its NUL).
pub const MAX_OWNER_NAME: usize = 63;

impl Owner {
    /// This process, under `name`: 1 to 63 printable characters, no spaces.
    pub fn named(name: &str) -> Result<Owner> {
        let ok = !name.is_empty()
            && name.len() <= MAX_OWNER_NAME
            && name.chars().all(|c| c.is_ascii_graphic());
        if !ok {
            return Err(Error::InvalidArgument(format!(
                "owner name '{name}': 1 to {MAX_OWNER_NAME} printable ASCII characters without spaces"
            )));
        }
        Ok(Owner {
            name: name.to_string(),
            pid: std::process::id(),
        })
    }

    /// This process, under its program name (as `ps` shows it).
    pub fn of_process() -> Owner {
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
        let name: String = comm
            .trim_end_matches('\n')
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { '_' })
            .collect();
        Owner {
            name: if name.is_empty() {
                "unknown".into()
            } else {
                name
            },
            pid: std::process::id(),
        }
    }

    pub(crate) fn recorded(name: String, pid: u32) -> Owner {
        Owner { name, pid }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process that added the component (it may have exited since).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether a process with the owner's pid still runs, as this process's
    /// /proc sees it (a later process may have taken the pid).
    pub fn is_running(&self) -> bool {
        std::path::Path::new("/proc")
            .join(self.pid.to_string())
            .exists()
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.name, self.pid)
    }
}

/// An owner and the handle through which it added a component: detaching
/// a handle removes what its token marks. A component that a chains file
/// declared also carries the digest of its declaration, by which the next
/// `apply` knows it unchanged (apply.rs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub owner: Owner,
    pub token: u64,
    pub digest: Option<String>,
}

/// Who acts on a shared chain, and whether it may change others' components.
pub(crate) struct Actor {
    pub stamp: Stamp,
    pub force: bool,
}

impl Actor {
    /// This process under its program name, with a token of its own.
    pub fn process(force: bool) -> Actor {
        Actor {
            stamp: Stamp {
                owner: Owner::of_process(),
                token: new_token(),
                digest: None,
            },
            force,
        }
    }

    /// Refuses to drop or replace the components of other owners that
    /// `stamps` lists (described by `what`), unless forced.
    pub fn may_change<'a>(
        &self,
        iface: &str,
        stamps: impl IntoIterator<Item = (String, Option<&'a Stamp>)>,
    ) -> Result<()> {
        if self.force {
            return Ok(());
        }
        let others: Vec<String> = stamps
            .into_iter()
            .filter(|(_, s)| s.is_none_or(|s| s.owner.name != self.stamp.owner.name))
            .map(|(what, s)| match s {
                Some(s) => format!("{what} of {}", s.owner),
                None => format!("{what} of an unknown owner"),
            })
            .collect();
        if others.is_empty() {
            return Ok(());
        }
        Err(Error::NotOwner {
            iface: iface.to_string(),
            owner: self.stamp.owner.name.clone(),
            others: others.join(", "),
        })
    }
}

/// A token no other handle has: the clock, the process and a counter.
pub(crate) fn new_token() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (now ^ (u64::from(std::process::id()) << 40))
        .wrapping_add(SEQ.fetch_add(1, Ordering::Relaxed) << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_others_need_force() {
        assert!(Owner::named("fw").is_ok());
        for bad in ["", "a b", "x\n", &"n".repeat(64)] {
            assert!(Owner::named(bad).is_err(), "{bad:?}");
        }
        let me = Actor {
            stamp: Stamp {
                owner: Owner::named("fw").unwrap(),
                token: 1,
                digest: None,
            },
            force: false,
        };
        let other = Stamp {
            owner: Owner::recorded("probe".into(), 7),
            token: 2,
            digest: None,
        };
        assert!(me
            .may_change("eth0", [("a".into(), Some(&me.stamp))])
            .is_ok());
        let err = me
            .may_change("eth0", [("xdp_probe (id 1)".into(), Some(&other))])
            .unwrap_err();
        assert!(
            err.to_string().contains("xdp_probe (id 1) of probe[7]"),
            "{err}"
        );
        assert!(me.may_change("eth0", [("x".into(), None)]).is_err());
        let forced = Actor { force: true, ..me };
        assert!(forced
            .may_change("eth0", [("x".into(), Some(&other))])
            .is_ok());
    }

    /// Tokens tell handles apart, even two taken at once by one process.
    #[test]
    fn tokens_are_never_given_twice() {
        let tokens: std::collections::HashSet<u64> = (0..10_000).map(|_| new_token()).collect();
        assert_eq!(tokens.len(), 10_000);
        let me = Owner::of_process();
        assert!(me.is_running() && me.pid() == std::process::id());
        assert!(!Owner::recorded("gone".into(), u32::MAX).is_running());
        assert_eq!(Owner::recorded("fw".into(), 7).to_string(), "fw[7]");
    }
}
