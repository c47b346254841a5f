//! Chains in our own layout, recorded in pins (pins.rs): how each change
//! of the store is carried out on one, and the commit that loads, pins,
//! swaps and records a chain. docs/protocol.md describes the steps.

use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::change::Present;
use super::layout::RunningChain;
use super::Store;
use crate::attach::{self, AttachMode, Interface, Seen};
use crate::component::Component;
use crate::error::{Error, Result};
use crate::loaded::{load_dynamic, load_static, Loaded};
use crate::owner::{Actor, Stamp};
use crate::pins::{
    self, frozen_map, mkdirs, pinned_progs, remove_tree, reuse_from_pins, Running, CHUNK,
    LINK_PREFIX, OBJECT, PROG, STATE, STATE_NEW, STATS,
};
use crate::plan::{self, Build, Counting, Member, Mode};
use crate::record::{Entry, Record, Settings};
use crate::sys::pin;

/// An interface's record directory, and what runs there that is not a
/// libxdp dispatcher: a chain of ours with its record, or (`record` None)
/// nothing, another loader's program or a chain without a record, which
/// only force replaces (`current`).
pub(crate) struct Recorded {
    pub dir: PathBuf,
    pub record: Option<Record>,
    /// What runs, where a change may replace it.
    pub current: Option<Seen>,
}

/// One chain to swap in for `current`: [`Store::commit`]'s arguments.
pub(super) struct Commit<'a> {
    pub dir: &'a Path,
    pub iface: &'a Interface,
    pub old: Option<&'a Record>,
    pub members: &'a [Member],
    pub settings: Settings,
    pub current: Option<Seen>,
    /// Who added each member, by tag.
    pub stamps: &'a HashMap<u64, Stamp>,
}

/// How a chain made anew is made.
pub(crate) struct Fresh {
    pub mode: AttachMode,
    pub counting: Counting,
    pub kind: Mode,
    /// Why it is static where it would have been dynamic.
    pub not_dynamic: Option<String>,
    /// Bound to its interface though no component asks it (yet).
    pub device_bound: bool,
}

impl Recorded {
    /// Its components, in the record's order.
    pub fn present(&self) -> Vec<Present> {
        self.record
            .iter()
            .flat_map(|r| &r.entries)
            .map(|e| Present {
                id: e.id,
                name: e.program.clone(),
                stamp: Some(e.stamp.clone()),
                what: e.describe(),
                source: Some(e.source.clone()),
            })
            .collect()
    }

    /// Its record, which removing and replacing need: none where nothing
    /// of ours runs (NoChain), or a chain of ours without one (NoState).
    pub fn required(&self, store: &Store, iface: &Interface) -> Result<&Record> {
        match (&self.record, &self.current) {
            (Some(r), _) => Ok(r),
            (None, Some(_)) => Err(store.no_state(iface)),
            (None, None) => Err(Error::NoChain(iface.name.clone())),
        }
    }

    /// (attach mode, kind, counting) of the chain that runs, if one does.
    pub fn running(&self) -> Option<RunningChain> {
        self.record.as_ref().map(|r| {
            let s = &r.settings;
            RunningChain {
                mode: s.mode,
                kind: s.kind,
                counts: Some(s.counting),
                device_bound: s.device_bound,
            }
        })
    }

    /// Refuses to replace a chain of ours that has no record but by
    /// force: it cannot be rebuilt (its objects are gone with the process
    /// that built it), and its components are not `actor`'s.
    pub fn refuse_unrecorded(&self, store: &Store, iface: &Interface, actor: &Actor) -> Result<()> {
        let Some(seen) = self.current.as_ref().filter(|_| self.record.is_none()) else {
            return Ok(());
        };
        if crate::inspect::config_of(seen.fd.as_fd())?.is_none() || actor.force {
            return Ok(());
        }
        Err(store.no_state(iface))
    }

    /// Its record and what runs, which removing and replacing need (see
    /// [`Recorded::required`]).
    fn into_required(
        self,
        store: &Store,
        iface: &Interface,
    ) -> Result<(PathBuf, Record, Option<Seen>)> {
        self.required(store, iface)?;
        let Recorded {
            dir,
            record,
            current,
        } = self;
        Ok((dir, record.expect("required"), current))
    }

    /// The chain of the components at `keep` (of [`Recorded::present`]) and
    /// `new` ones after them, swapped in; detached when none is left. With
    /// `fresh`, a chain made anew, else one as the record says.
    pub fn change(
        self,
        store: &Store,
        iface: &Interface,
        keep: &[usize],
        new: Vec<(Component, Stamp)>,
        fresh: Option<Fresh>,
    ) -> Result<()> {
        let old = self.record.as_ref();
        let keep_tags: HashSet<u64> = old.map_or_else(HashSet::new, |r| {
            keep.iter().map(|&i| r.entries[i].tag).collect()
        });
        let mut members: Vec<Member> = match old {
            Some(r) => pins::members(&self.dir, r)?,
            None => Vec::new(),
        };
        members.retain(|m| keep_tags.contains(&m.tag));
        let mut stamps = stamps_by_tag(old);
        let mut next_tag = old.map_or(0, |r| r.settings.next_tag);
        for (c, stamp) in new {
            members = plan::with_added(&members, c, next_tag)?.0;
            stamps.insert(next_tag, stamp);
            next_tag += 1;
        }
        let settings = match (fresh, old) {
            (Some(f), _) => Settings {
                mode: f.mode,
                kind: f.kind,
                counting: f.counting != Counting::Off,
                next_tag,
                not_dynamic: f.not_dynamic,
                device_bound: f.device_bound,
            },
            (None, Some(r)) => Settings {
                next_tag,
                ..r.settings.clone()
            },
            (None, None) => return Err(Error::NoChain(iface.name.clone())),
        };
        store.commit_or_detach(Commit {
            dir: &self.dir,
            iface,
            old,
            members: &members,
            settings,
            current: self.current,
            stamps: &stamps,
        })
    }

    /// Puts `component` in the place of the component at `at`, under its
    /// id; returns the id.
    pub fn replace(
        self,
        store: &Store,
        iface: &Interface,
        at: usize,
        component: Component,
        actor: &Actor,
    ) -> Result<u32> {
        let (dir, old, current) = self.into_required(store, iface)?;
        let mut settings = old.settings.clone();
        let id = plan::ComponentId(old.entries[at].id);
        let members = pins::members(&dir, &old)?;
        let (members, _) = plan::with_replaced(&members, id, component, settings.next_tag)?;
        let mut stamps = stamps_by_tag(Some(&old));
        stamps.insert(settings.next_tag, actor.stamp.clone());
        settings.next_tag += 1;
        store.commit(Commit {
            dir: &dir,
            iface,
            old: Some(&old),
            members: &members,
            settings,
            current,
            stamps: &stamps,
        })?;
        Ok(id.0)
    }

    /// Detaches what runs (a chain of ours, or what force replaces) and
    /// removes the record.
    pub fn detach(self, store: &Store, iface: &Interface) -> Result<()> {
        if self.current.is_none() {
            return Err(Error::NoChain(iface.name.clone()));
        }
        store.detach_locked(&self.dir, iface, self.current)
    }
}

/// Who added each member of the chain `record` describes, by tag.
fn stamps_by_tag(record: Option<&Record>) -> HashMap<u64, Stamp> {
    record.map_or_else(HashMap::new, |r| {
        r.entries.iter().map(|e| (e.tag, e.stamp.clone())).collect()
    })
}

impl Store {
    /// The interface's record directory and what runs there, `seen`, once
    /// whatever a killed operation left is settled; what runs is taken as
    /// replaceable as [`crate::inspect::replaceable`] says, with `force`.
    pub(crate) fn recorded(
        &self,
        iface: &Interface,
        seen: Option<Seen>,
        force: bool,
    ) -> Result<Recorded> {
        let (dir, record) = self.open_chain(iface, Running::of(seen.as_ref()))?;
        let current = crate::inspect::replaceable(iface, seen, force)?;
        Ok(Recorded {
            dir,
            record,
            current,
        })
    }

    /// Unattaches what runs (`current`), if anything, and removes the
    /// record directory `dir` (and its namespace's, once empty).
    pub(crate) fn detach_locked(
        &self,
        dir: &Path,
        iface: &Interface,
        current: Option<Seen>,
    ) -> Result<()> {
        if let Some(c) = current {
            attach::replace(iface, c.mode, None, Some(c.fd.as_fd()))?;
        }
        remove_tree(dir)?;
        pins::remove_if_empty(dir);
        Ok(())
    }

    /// `c` committed as [`Store::commit`] does, or, when it keeps no
    /// member, the chain detached.
    fn commit_or_detach(&self, c: Commit) -> Result<()> {
        if c.members.is_empty() {
            return self.detach_locked(c.dir, c.iface, c.current);
        }
        self.commit(c)
    }

    /// Loads the chain `c` describes, pins what is new, swaps it in for
    /// `c.current` and settles the record. On error, what this call pinned
    /// is unpinned and the interface keeps what it ran.
    fn commit(&self, mut c: Commit) -> Result<()> {
        c.settings.device_bound |= plan::device_bound(c.members);
        let old_tags: HashSet<u64> = c
            .old
            .map_or_else(HashSet::new, |r| r.entries.iter().map(|e| e.tag).collect());
        let (loaded, extensions) = load(&c, &old_tags)?;
        let (_, prog_id, _) = crate::sys::prog_info(loaded.prog())?;
        let record = record_of(&c, prog_id);
        let mut created = Vec::new();
        let res = pin_and_swap(&c, &old_tags, &loaded, &extensions, &record, &mut created);
        for path in created {
            // Best effort: the next operation's recovery removes what stays.
            let _ = remove_tree(&path);
        }
        res?;
        log::info!(
            "{}: chain prog id {prog_id} attached ({} mode): {}",
            c.iface.name,
            c.settings.mode.name(),
            plan::ordered(c.members)
                .iter()
                .map(|m| m.component.program())
                .collect::<Vec<_>>()
                .join(", ")
        );
        // What runs now is what this call attached.
        pins::recover(c.dir, c.iface, Running::Program(prog_id))?;
        Ok(())
    }
}

/// The chain `c` describes, loaded with what stays reused from its pins;
/// and the extensions it loaded (dynamic), by tag.
fn load(
    c: &Commit,
    old_tags: &HashSet<u64>,
) -> Result<(Loaded, HashMap<u64, crate::dynamic::Extension>)> {
    let reuse = reuse_from_pins(c.dir, c.members, old_tags, c.settings.kind)?;
    let build = Build {
        device: c.settings.device_bound.then_some(c.iface.index),
        ..Build::new(c.settings.counting, pins::maps_dir(c.dir))
    };
    // Extensions loaded unbound cannot fill a bound dispatcher's slots.
    if c.settings.kind == Mode::Dynamic
        && c.settings.device_bound
        && c.old.is_some_and(|r| !r.settings.device_bound)
    {
        if let Some(m) = c.members.iter().find(|m| old_tags.contains(&m.tag)) {
            return Err(crate::dynamic::unbound_extension(
                &c.iface.name,
                m.component.program(),
            ));
        }
    }
    let progs = pinned_progs(c.dir, old_tags, c.settings.kind)?;
    log::debug!(
        "{}: loading a {} chain of {} components ({} new)",
        c.iface.name,
        c.settings.kind.name(),
        c.members.len(),
        c.members
            .iter()
            .filter(|m| !old_tags.contains(&m.tag))
            .count()
    );
    match c.settings.kind {
        Mode::Dynamic => {
            let progs = progs.iter().map(|(tag, fd)| (*tag, fd.as_fd())).collect();
            load_dynamic(c.members, &build, &reuse, &progs)
        }
        _ => Ok((load_static(c.members, &build, &reuse)?, HashMap::new())),
    }
}

/// The record of the chain `c` describes, run by program `prog_id`.
fn record_of(c: &Commit, prog_id: u32) -> Record {
    Record {
        prog_id,
        settings: c.settings.clone(),
        entries: c
            .members
            .iter()
            .map(|m| Entry {
                id: m.id.0,
                row: m.row,
                tag: m.tag,
                priority: m.component.priority(),
                continue_on: m.component.continue_on(),
                size: m.component.bytes.len(),
                stamp: c
                    .stamps
                    .get(&m.tag)
                    .cloned()
                    .expect("every member of a shared chain has an owner"),
                traceable: m.component.traceable(),
                program: m.component.program().to_string(),
                source: m.component.source().to_string(),
            })
            .collect(),
    }
}

/// Pins what is new of `loaded` and `record` as `state_new`, swaps the
/// chain in and makes the record current; `created` collects what to
/// unpin should a step fail.
fn pin_and_swap(
    c: &Commit,
    old_tags: &HashSet<u64>,
    loaded: &Loaded,
    extensions: &HashMap<u64, crate::dynamic::Extension>,
    record: &Record,
    created: &mut Vec<PathBuf>,
) -> Result<()> {
    for m in c.members.iter().filter(|m| !old_tags.contains(&m.tag)) {
        let cdir = c.dir.join(format!("c{}", m.tag));
        mkdirs(&cdir)?;
        created.push(cdir.clone());
        pin(
            frozen_map("xdpc_object", &m.component.bytes, CHUNK)?.as_fd(),
            &cdir.join(OBJECT),
        )?;
        for (name, fd) in loaded.maps_of(m) {
            pin(fd, &cdir.join(name.replace('.', "%")))?;
        }
        if let Some(ext) = extensions.get(&m.tag) {
            pin(ext.prog(), &cdir.join(PROG))?;
            for (name, fd) in ext.maps() {
                pin(fd, &cdir.join(name.replace('.', "%")))?;
            }
        }
    }
    // Links keep the extensions in the new dispatcher once this process is
    // gone; recovery unpins those of other dispatchers.
    for (tag, link) in loaded.links() {
        let path = c
            .dir
            .join(format!("c{tag}/{LINK_PREFIX}{}", record.prog_id));
        pin(link, &path)?;
        created.push(path);
    }
    let stats = c.dir.join(STATS);
    if !stats.exists() {
        pin(loaded.stats(), &stats)?;
        created.push(stats);
    }
    let text = record.to_text();
    let new = c.dir.join(STATE_NEW);
    pin(
        frozen_map("xdpc_state", text.as_bytes(), text.len())?.as_fd(),
        &new,
    )?;
    created.push(new.clone());
    attach::replace(
        c.iface,
        c.settings.mode,
        Some(loaded.prog()),
        c.current.as_ref().map(|s| s.fd.as_fd()),
    )
    .map_err(|e| plan::name_frags(e, c.members))?;
    created.clear();
    std::fs::rename(&new, c.dir.join(STATE)).map_err(|e| Error::os("promote state", e))
}
