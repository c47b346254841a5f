//! The chain of one interface, as one owner opens it: every front end (the
//! command, C, Python, Rust) adds, replaces and removes its components
//! through this handle, in the store, beside those of other owners.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::attach::{self, AttachMode, AttachOptions, Interface};
use crate::component::Component;
use crate::error::{Error, Result};
use crate::inspect;
use crate::ns::{self, Netns};
use crate::owner::{new_token, Actor, Owner, Stamp};
use crate::plan::{ComponentId, ComponentKey, Counting, Mode};
use crate::report::Report;
use crate::status::ChainStatus;
use crate::store::{Store, Which};
use crate::timing::Timing;

/// How [`Store::open`] opens the chain of an interface.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// The name recorded as the owner of the components this handle adds;
    /// None: the program's name.
    pub owner: Option<String>,
    /// How a chain this handle creates is attached, and whether this handle
    /// may replace or remove the components of other owners (and replace a
    /// program of another loader).
    pub attach: AttachOptions,
    /// Whether a chain this handle creates counts packets per component.
    pub counting: Counting,
    /// The network namespace of the interface (a name in /run/netns, or a
    /// path); None: the calling thread's.
    pub netns: Option<String>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            owner: None,
            attach: AttachOptions::default(),
            counting: Counting::Auto,
            netns: None,
        }
    }
}

/// The chain of one interface, opened by one owner. What it adds stays on
/// the interface when the handle goes (as netlink attachments do);
/// [`SharedChain::detach`] takes out what this handle added, and nothing
/// else. Every change is one atomic operation under the store's lock.
pub struct SharedChain {
    store: Store,
    iface: Interface,
    actor: Actor,
    attach: AttachOptions,
    counting: Counting,
    netns: Option<Netns>,
    /// Maps handed out by [`SharedChain::map_fd`], valid while the handle is.
    maps: HashMap<(ComponentId, String), OwnedFd>,
}

impl Store {
    /// Opens the chain of `iface` (a name, or an index as digits), whether
    /// or not one runs there yet, as the owner `opts` names.
    pub fn open(&self, iface: &str, opts: OpenOptions) -> Result<SharedChain> {
        let netns = opts.netns.as_deref().map(Netns::open).transpose()?;
        let iface = ns::within(netns.as_ref(), || Interface::resolve(iface))?;
        let owner = match &opts.owner {
            Some(name) => Owner::named(name)?,
            None => Owner::of_process(),
        };
        Ok(SharedChain {
            store: self.clone(),
            iface,
            actor: Actor {
                stamp: Stamp {
                    owner,
                    token: new_token(),
                    digest: None,
                },
                force: opts.attach.force,
            },
            attach: opts.attach,
            counting: opts.counting,
            netns,
            maps: HashMap::new(),
        })
    }
}

impl SharedChain {
    fn run<T>(&self, f: impl FnOnce(&Store, &Interface, &Actor) -> Result<T>) -> Result<T> {
        ns::within(self.netns.as_ref(), || {
            f(&self.store, &self.iface, &self.actor)
        })
    }

    /// Runs the change `op` ([`Store::changing`]) in the handle's namespace.
    fn change(
        &self,
        op: impl FnOnce(&Store, &Interface, &Actor) -> Result<Option<u32>>,
    ) -> Result<Report> {
        self.run(|store, iface, actor| store.changing(iface, actor, || op(store, iface, actor)))
    }

    pub fn interface(&self) -> &Interface {
        &self.iface
    }

    /// The owner recorded for what this handle adds.
    pub fn owner(&self) -> &Owner {
        &self.actor.stamp.owner
    }

    /// The network namespace given to [`Store::open`].
    pub fn netns(&self) -> Option<&Netns> {
        self.netns.as_ref()
    }

    /// Adds `component` to the chain, creating the chain if there is none;
    /// it runs once this returns ([`Report::added`] has its id, beside what
    /// force dropped). On failure nothing changes.
    pub fn add(&mut self, component: Component) -> Result<Report> {
        let (opts, counting) = (self.attach, self.counting);
        self.change(|store, iface, actor| {
            store
                .add_to(iface, component, opts, counting, actor)
                .map(|_| None)
        })
    }

    /// Removes the component `key`; another owner's only with force. The
    /// chain goes with its last component.
    pub fn remove(&mut self, key: impl Into<ComponentKey>) -> Result<Report> {
        let key = key.into();
        self.change(|store, iface, actor| {
            store
                .remove_from(iface, Which::Key(&key), actor)
                .map(|_| None)
        })
    }

    /// Puts `component` in the place of component `key` atomically, as
    /// [`crate::Chain::replace`] does; another owner's only with force.
    pub fn replace(
        &mut self,
        key: impl Into<ComponentKey>,
        component: Component,
    ) -> Result<Report> {
        let key = key.into();
        self.change(|store, iface, actor| store.replace_in(iface, &key, component, actor).map(Some))
    }

    /// Replaces the whole chain with `components`, added by this handle;
    /// the components of other owners there only with force.
    pub fn replace_all(&mut self, components: Vec<Component>) -> Result<Report> {
        let (opts, counting) = (self.attach, self.counting);
        self.change(|store, iface, actor| {
            store
                .replace_all(iface, components, opts, counting, actor)
                .map(|_| None)
        })
    }

    /// Takes out the components this handle added. The chain leaves the
    /// interface with its last component.
    pub fn detach(&mut self) -> Result<Report> {
        self.maps.clear();
        self.change(|store, iface, actor| {
            store
                .remove_from(iface, Which::Own(actor.stamp.token), actor)
                .map(|_| None)
        })
    }

    /// Detaches the whole chain; the components of other owners only with
    /// force.
    pub fn detach_all(&mut self) -> Result<Report> {
        self.maps.clear();
        self.change(|store, iface, actor| store.detach_all(iface, actor).map(|_| None))
    }

    /// Times the chain's components while the result lives (see
    /// [`Timing`]): their counters' run time grows.
    pub fn timing(&self) -> Result<Timing> {
        ns::within(self.netns.as_ref(), || Timing::on(Some(self.iface.clone())))
    }

    /// The chain on the interface, every component with its owner.
    pub fn status(&self) -> Result<ChainStatus> {
        self.run(|store, iface, _| store.status(&iface.index.to_string()))
    }

    /// The ids (as status shows them) of the components this handle added.
    pub fn own(&self) -> Result<Vec<u32>> {
        self.run(|store, iface, actor| {
            let st = inspect::status(iface)?;
            let mut ids: Vec<u32> = store
                .stamps(iface, &st)?
                .into_iter()
                .filter(|(_, s)| s.token == actor.stamp.token)
                .map(|(id, _)| id)
                .collect();
            ids.sort_unstable();
            Ok(ids)
        })
    }

    /// Static or Dynamic: how the running chain joins its components;
    /// while none runs, the mode a new one takes.
    pub fn mode(&self) -> Result<Mode> {
        match self.status() {
            Err(Error::NoChain(_)) => self.store.new_mode(),
            other => other.map(|st| st.kind),
        }
    }

    /// Checks that the chain runs on the interface in attach mode `mode`
    /// and, if `kind` says, joined that way: what a front end's "attach"
    /// promises, where adding a component attached it already.
    pub fn expect_running(&self, mode: AttachMode, kind: Option<Mode>) -> Result<()> {
        let st = self.status()?;
        let iface = &self.iface.name;
        if let Some(running) = st.mode.filter(|m| *m != mode) {
            return Err(Error::InvalidArgument(format!(
                "the chain on {iface} runs in {} mode, not {}; a new chain takes the attach mode given when it is opened",
                running.name(),
                mode.name()
            )));
        }
        if let Some(kind) = kind.filter(|k| *k != st.kind) {
            return Err(Error::InvalidArgument(format!(
                "the chain on {iface} is joined {}, not {}{}; a new chain takes the mode given when it is opened",
                st.kind.name(),
                kind.name(),
                if kind == Mode::Static { " (not linked)" } else { "" }
            )));
        }
        Ok(())
    }

    /// A component's map by the name it has in the component's own object
    /// (a map's name, or a data section such as ".bss"), from the chain's
    /// pins; the fd stays valid while the handle does.
    pub fn map_fd(&mut self, id: ComponentId, name: &str) -> Result<BorrowedFd<'_>> {
        let key = (id, name.to_string());
        if !self.maps.contains_key(&key) {
            let fd = self.run(|store, iface, _| store.pinned_map(iface, id.0, name))?;
            self.maps.insert(key.clone(), fd);
        }
        Ok(self.maps[&key].as_fd())
    }

    /// Runs the chain on the interface once on `packet`
    /// (BPF_PROG_TEST_RUN): (verdict, mean duration in ns).
    pub fn test_run(&self, packet: &[u8], repeat: u32) -> Result<(u32, u32)> {
        self.run(|_, iface, _| {
            // A program replaced between the query and the open is gone: ask again.
            let mut tries = 0;
            let prog = loop {
                let (id, _) =
                    attach::attached(iface)?.ok_or_else(|| Error::NoChain(iface.name.clone()))?;
                match crate::sys::prog_fd(id) {
                    Err(Error::Os { source, .. })
                        if source.raw_os_error() == Some(libc::ENOENT) && tries < 10 =>
                    {
                        tries += 1
                    }
                    other => break other?,
                }
            };
            crate::sys::test_run(prog.as_fd(), packet, repeat)
        })
    }
}
