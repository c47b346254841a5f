//! A chain loaded into the kernel by either engine: linked into one program
//! (static), or a dispatcher with extension programs in its slots (dynamic).

use std::collections::HashMap;
use std::os::fd::BorrowedFd;

use crate::dynamic::{self, Dispatcher, Extension};
use crate::error::Result;
use crate::features;
use crate::linked::{self, Linked};
use crate::plan::{config, ordered, Build, Member, Reuse};
use crate::root;
use crate::sys::dup;

pub(crate) struct Loaded {
    pub members: Vec<Member>,
    pub body: Body,
}

pub(crate) enum Body {
    /// One linked program, and each component's maps in it.
    Static(Linked),
    /// A dispatcher with the components' extension programs attached.
    Dynamic(Dispatcher),
}

impl Loaded {
    pub(crate) fn prog(&self) -> BorrowedFd<'_> {
        match &self.body {
            Body::Static(linked) => linked.prog(),
            Body::Dynamic(d) => d.object().loaded_prog(dynamic::PROG_NAME),
        }
    }

    pub(crate) fn stats(&self) -> BorrowedFd<'_> {
        match &self.body {
            Body::Static(linked) => linked.stats(),
            Body::Dynamic(d) => d.object().loaded_map(root::STATS_MAP),
        }
    }

    /// A member's maps in a static chain, by their names in the member's
    /// object (those of a dynamic chain stay with its extension programs).
    pub(crate) fn maps_of(&self, m: &Member) -> Vec<(String, BorrowedFd<'_>)> {
        match &self.body {
            Body::Static(linked) => linked.maps_of(m.id),
            Body::Dynamic(_) => Vec::new(),
        }
    }

    /// Each member's freplace link in a dynamic chain, by tag.
    pub(crate) fn links(&self) -> Vec<(u64, BorrowedFd<'_>)> {
        match &self.body {
            Body::Dynamic(d) => d.links().collect(),
            Body::Static(_) => Vec::new(),
        }
    }

    /// What a rebuild of this chain takes over.
    pub(crate) fn reuse(&self) -> Result<Reuse> {
        let mut out = Reuse {
            stats: Some(dup(self.stats())?),
            ..Default::default()
        };
        for m in &self.members {
            let maps = self
                .maps_of(m)
                .into_iter()
                .map(|(n, fd)| Ok((n, dup(fd)?)))
                .collect::<Result<_>>()?;
            out.maps.insert(m.tag, maps);
        }
        Ok(out)
    }
}

/// Loads `members` as a static chain, taking over the maps in `reuse`.
pub(crate) fn load_static(members: &[Member], build: &Build, reuse: &Reuse) -> Result<Loaded> {
    features::check_static(members)?;
    features::check_device_bound(members.iter().map(|m| &m.component), build.device.is_some())?;
    for m in members {
        m.component.check_sized()?;
    }
    Ok(Loaded {
        members: members.to_vec(),
        body: Body::Static(linked::load(members, build, reuse)?),
    })
}

/// Loads `members` as a dynamic chain, attaching the extensions already
/// loaded; returns it and the extensions it loaded.
pub(crate) fn load_dynamic(
    members: &[Member],
    build: &Build,
    reuse: &Reuse,
    extensions: &HashMap<u64, BorrowedFd<'_>>,
) -> Result<(Loaded, HashMap<u64, Extension>)> {
    features::check_device_bound(members.iter().map(|m| &m.component), build.device.is_some())?;
    // Extensions fill global slots: no tail call is misjudged there.
    let order = ordered(members);
    let config = config(&order, build.counting, 0);
    let (dispatcher, new) = dynamic::load(&order, &config, build, reuse, extensions)?;
    let loaded = Loaded {
        members: members.to_vec(),
        body: Body::Dynamic(dispatcher),
    };
    Ok((loaded, new))
}
