//! Applying declared chains (declared.rs): each interface's chain brought
//! to its declaration, changing only what differs, in one swap.
//!
//! A declared component is matched to a running one of its owner by the
//! digest of its declaration (kept in its stamp), else by its program and
//! object: the first is left as it runs (same program ids, same maps), the
//! second replaced. The file owns the components of the owners it names
//! and those a previous `apply` put there (they carry a digest); those of
//! its own it no longer declares go, and the others stay unless pruned.

use std::collections::HashSet;
use std::fmt;

use crate::attach::{AttachOptions, Interface};
use crate::declared::{DeclaredChain, DeclaredComponent};
use crate::error::{Error, Result};
use crate::ns::{self, Netns};
use crate::owner::{new_token, Actor, Owner, Stamp};
use crate::pins;
use crate::store::{Backend, Store};

/// How [`Store::apply`] goes about it.
#[derive(Clone, Copy, Debug, Default)]
pub struct ApplyOptions {
    /// Also remove the components that the file does not own, and replace
    /// another loader's program.
    pub prune: bool,
    /// Plan only: change nothing.
    pub dry_run: bool,
}

/// What `apply` does (or, dry, would do) to one component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Runs as declared: left as it runs.
    Keep(String),
    Add(String),
    /// Runs, but not as declared: replaced by its declaration.
    Replace(String),
    /// The file's, no longer declared (or another's, pruned).
    Remove(String),
    /// Not the file's: left alone.
    Leave(String),
}

impl Change {
    /// Whether the chain changes for it.
    pub fn changes(&self) -> bool {
        matches!(
            self,
            Change::Add(_) | Change::Replace(_) | Change::Remove(_)
        )
    }
}

impl Change {
    /// `keep`, `add`, `replace`, `remove` or `leave`.
    pub fn verb(&self) -> &'static str {
        match self {
            Change::Keep(_) => "keep",
            Change::Add(_) => "add",
            Change::Replace(_) => "replace",
            Change::Remove(_) => "remove",
            Change::Leave(_) => "leave",
        }
    }

    /// The component, as messages name it.
    pub fn what(&self) -> &str {
        match self {
            Change::Keep(w)
            | Change::Add(w)
            | Change::Replace(w)
            | Change::Remove(w)
            | Change::Leave(w) => w,
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb(), self.what())
    }
}

/// One interface's chain, applied.
#[derive(Debug)]
pub struct Applied {
    pub interface: String,
    pub netns: Option<String>,
    /// In the order of the running components, then the added ones.
    pub changes: Vec<Change>,
}

impl Applied {
    pub fn changed(&self) -> bool {
        self.changes.iter().any(Change::changes)
    }
}

/// What became of one declared chain in [`Store::apply_all`].
#[derive(Debug)]
pub enum Outcome {
    Applied(Applied),
    /// Its interface does not exist (yet).
    Missing,
    /// It failed: the error says where the file declares it.
    Failed(Error),
}

/// What apply matches a component by, running or declared.
#[derive(Debug)]
struct Key {
    owner: Option<String>,
    digest: Option<String>,
    program: String,
    /// Its object's path; None where no record says (libxdp's layout).
    source: Option<String>,
}

/// A running component, and how messages name it.
struct Present {
    key: Key,
    what: String,
}

/// What becomes of each running component (by index) and each declared one.
#[derive(Debug, PartialEq, Eq)]
struct Matching {
    /// For each running component: the declared one that keeps it as it
    /// runs (Some(d), false), or replaces it (Some(d), true); None: none.
    running: Vec<Option<(usize, bool)>>,
    /// Running components that go.
    gone: Vec<usize>,
    /// Declared components that no running one matches.
    added: Vec<usize>,
}

/// Matches `declared` to `present`: by owner and digest (unchanged) first,
/// so that a changed twin cannot take an unchanged one's place; then by
/// owner, program and object (changed).
fn matching(present: &[&Key], declared: &[Key], prune: bool) -> Matching {
    let mut running: Vec<Option<(usize, bool)>> = vec![None; present.len()];
    let mut placed = vec![false; declared.len()];
    for changed in [false, true] {
        for (di, d) in declared.iter().enumerate() {
            if placed[di] {
                continue;
            }
            let fits = |p: &Key| match changed {
                false => p.digest.is_some() && p.digest == d.digest,
                true => {
                    p.program == d.program
                        && p.source
                            .as_ref()
                            .is_none_or(|s| Some(s) == d.source.as_ref())
                }
            };
            let found = (0..present.len())
                .find(|&p| running[p].is_none() && present[p].owner == d.owner && fits(present[p]));
            if let Some(p) = found {
                running[p] = Some((di, changed));
                placed[di] = true;
            }
        }
    }
    let owners: HashSet<Option<&str>> = declared.iter().map(|d| d.owner.as_deref()).collect();
    let gone = (0..present.len())
        .filter(|&p| {
            let k = &present[p];
            running[p].is_none()
                && (prune
                    || k.digest.is_some()
                    || (k.owner.is_some() && owners.contains(&k.owner.as_deref())))
        })
        .collect();
    Matching {
        running,
        gone,
        added: (0..declared.len()).filter(|&d| !placed[d]).collect(),
    }
}

impl Matching {
    fn changes(&self, present: &[Present], declared: &[&DeclaredComponent]) -> Vec<Change> {
        let mut out: Vec<Change> = present
            .iter()
            .enumerate()
            .map(|(p, r)| match self.running[p] {
                Some((_, false)) => Change::Keep(r.what.clone()),
                Some((d, true)) => {
                    Change::Replace(format!("{} with {}", r.what, declared[d].describe()))
                }
                None if self.gone.contains(&p) => Change::Remove(r.what.clone()),
                None => Change::Leave(r.what.clone()),
            })
            .collect();
        out.extend(
            self.added
                .iter()
                .map(|&d| Change::Add(declared[d].describe())),
        );
        out
    }

    /// The declared components that the chain gains: added and replacing.
    fn incoming(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .running
            .iter()
            .filter_map(|r| r.filter(|(_, replaced)| *replaced).map(|(d, _)| d))
            .chain(self.added.iter().copied())
            .collect();
        v.sort_unstable();
        v
    }

    /// Whether running component `p` stays as it runs.
    fn stays(&self, p: usize) -> bool {
        !self.gone.contains(&p) && !matches!(self.running[p], Some((_, true)))
    }
}

/// How `p`, a running component, is named, with its owner.
fn described(what: String, owner: Option<&Stamp>) -> String {
    match owner {
        Some(s) => format!("{what} of {}", s.owner.name()),
        None => format!("{what} of an unknown owner"),
    }
}

impl Store {
    /// Brings the chain of `chain.interface` to its declaration, as the
    /// module's documentation says; with `opts.dry_run`, only tells what
    /// that would change. The chain changes in one swap, or not at all.
    pub fn apply(&self, chain: &DeclaredChain, opts: ApplyOptions) -> Result<Applied> {
        let netns = chain.netns.as_deref().map(Netns::open).transpose()?;
        let changes = ns::within(netns.as_ref(), || {
            let iface = Interface::resolve(&chain.interface)?;
            self.apply_to(&iface, chain, opts)
        })?;
        Ok(Applied {
            interface: chain.interface.clone(),
            netns: chain.netns.clone(),
            changes,
        })
    }

    /// Applies each of `chains` as [`Store::apply`] does, in order, going
    /// on past one that fails.
    pub fn apply_all<'a>(
        &self,
        chains: &'a [DeclaredChain],
        opts: ApplyOptions,
    ) -> Vec<(&'a DeclaredChain, Outcome)> {
        chains
            .iter()
            .map(|chain| {
                let outcome = match self.apply(chain, opts) {
                    Ok(applied) => Outcome::Applied(applied),
                    Err(Error::UnknownInterface(_)) => Outcome::Missing,
                    Err(e) => Outcome::Failed(Error::Declared {
                        at: chain.at.to_string(),
                        what: format!("interface {}", chain.label()),
                        source: Box::new(e),
                    }),
                };
                (chain, outcome)
            })
            .collect()
    }

    /// [`Store::apply`] on `iface`, under the store's lock.
    fn apply_to(
        &self,
        iface: &Interface,
        chain: &DeclaredChain,
        opts: ApplyOptions,
    ) -> Result<Vec<Change>> {
        let _lock = pins::lock(self.dir())?;
        let out = self.apply_locked(iface, chain, opts);
        pins::remove_if_empty(&self.iface_dir(iface)?);
        out
    }

    fn apply_locked(
        &self,
        iface: &Interface,
        chain: &DeclaredChain,
        opts: ApplyOptions,
    ) -> Result<Vec<Change>> {
        let declared: Vec<&DeclaredComponent> = chain.components.iter().collect();
        let wanted: Vec<Key> = declared
            .iter()
            .map(|d| Key {
                owner: Some(d.owner.clone()),
                digest: Some(d.component.digest()),
                program: d.component.program().to_string(),
                source: Some(d.component.source().to_string()),
            })
            .collect();
        let stamp = |d: usize| -> Result<Stamp> {
            Ok(Stamp {
                owner: Owner::named(&declared[d].owner)?,
                token: new_token(),
                digest: wanted[d].digest.clone(),
            })
        };
        // A dry run replaces nothing: what runs is only looked at.
        let backend = self.backend(iface, opts.prune || opts.dry_run)?;
        if matches!(&backend, Backend::Recorded(r) if r.record.is_none()) {
            // Nothing of ours runs: the declared chain is made whole, over
            // another loader's program only when pruning.
            let changes: Vec<Change> = declared.iter().map(|d| Change::Add(d.describe())).collect();
            if opts.dry_run || declared.is_empty() {
                return Ok(changes);
            }
            let components = (0..declared.len())
                .map(|d| Ok((declared[d].component.clone(), stamp(d)?)))
                .collect::<Result<Vec<_>>>()?;
            let attach = AttachOptions {
                mode: chain.attach,
                force: opts.prune,
                device_bound: chain.device_bound,
            };
            let mut store = self.clone();
            if let Some(m) = chain.mode {
                store = store.with_mode(m);
            }
            if let Some(l) = chain.layout {
                store = store.with_layout(l);
            }
            let actor = Actor::process(opts.prune);
            store.replace_with(iface, backend, components, attach, chain.counting, &actor)?;
            return Ok(changes);
        }
        let present: Vec<Present> = backend
            .present()
            .into_iter()
            .map(|p| Present {
                key: Key {
                    owner: p.stamp.as_ref().map(|s| s.owner.name().to_string()),
                    digest: p.stamp.as_ref().and_then(|s| s.digest.clone()),
                    program: p.name.clone(),
                    source: p.source.clone(),
                },
                what: described(p.what, p.stamp.as_ref()),
            })
            .collect();
        let m = matching(&keys(&present), &wanted, opts.prune);
        let changes = m.changes(&present, &declared);
        if opts.dry_run || !changes.iter().any(Change::changes) {
            return Ok(changes);
        }
        let keep: Vec<usize> = (0..present.len()).filter(|&p| m.stays(p)).collect();
        let new = m
            .incoming()
            .into_iter()
            .map(|d| Ok((declared[d].component.clone(), stamp(d)?)))
            .collect::<Result<Vec<_>>>()?;
        backend.change(self, iface, &keep, new, chain.counting)?;
        Ok(changes)
    }
}

fn keys(present: &[Present]) -> Vec<&Key> {
    present.iter().map(|p| &p.key).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(owner: &str, digest: Option<&str>, program: &str) -> Key {
        Key {
            owner: Some(owner.into()),
            digest: digest.map(str::to_string),
            program: program.into(),
            source: Some("/o.o".into()),
        }
    }

    #[test]
    fn unchanged_twins_stay_changed_ones_are_replaced_and_strangers_left() {
        // Two instances of one program, configured apart; the second changes.
        let present = [
            key("fw", Some("a"), "xdp_fw"),
            key("fw", Some("b"), "xdp_fw"),
            key("other", None, "xdp_probe"),
            key("fw", Some("gone"), "xdp_old"),
            // Added by hand under a declared owner's name: the file's.
            key("fw", None, "xdp_hand"),
        ];
        let declared = [
            key("fw", Some("c"), "xdp_fw"),
            key("fw", Some("a"), "xdp_fw"),
            key("mon", Some("d"), "xdp_count"),
        ];
        let refs: Vec<&Key> = present.iter().collect();
        let m = matching(&refs, &declared, false);
        assert_eq!(
            m,
            Matching {
                running: vec![Some((1, false)), Some((0, true)), None, None, None],
                gone: vec![3, 4],
                added: vec![2],
            }
        );
        assert_eq!(m.incoming(), [0, 2]);
        assert!(m.stays(0) && !m.stays(1) && m.stays(2) && !m.stays(3));
        // Pruned, the stranger goes too.
        assert_eq!(matching(&refs, &declared, true).gone, [2, 3, 4]);
    }

    #[test]
    fn without_a_recorded_object_the_program_name_matches() {
        let mut running = key("fw", Some("old"), "xdp_fw");
        running.source = None;
        let m = matching(&[&running], &[key("fw", Some("new"), "xdp_fw")], false);
        assert_eq!(m.running, [Some((0, true))]);
        // Another owner's program of that name is not the file's to replace.
        let theirs = key("probe", None, "xdp_fw");
        let m = matching(&[&theirs], &[key("fw", Some("new"), "xdp_fw")], false);
        assert_eq!((m.running, m.added), (vec![None], vec![0]));
    }
}
