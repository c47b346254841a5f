//! What the store's chains look like from outside a change: status with
//! owners, counters and program ids, the chains and foreign programs of a
//! namespace, the namespaces with a chain, and a component's maps. Read
//! without the lock: a record is replaced whole and names the program it
//! describes, so a reader ignores one that does not match what runs.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use super::Store;
use crate::attach::Interface;
use crate::error::{Error, Result};
use crate::ext_counters;
use crate::inspect;
use crate::owner::Stamp;
use crate::pins::{read_libxdp_owners, read_record, LINK_PREFIX, OBJECT, PROG, STATE};
use crate::plan::Mode;
use crate::record::Record;
use crate::status::{ChainStatus, ForeignProgram};
use crate::sys::obj_get;

impl Store {
    /// What runs on `iface`: components in order, with their counters and
    /// owners.
    pub fn status(&self, iface: &str) -> Result<ChainStatus> {
        self.status_at(&Interface::resolve(iface)?)
    }

    /// [`Store::status`] of a resolved interface.
    pub(crate) fn status_at(&self, iface: &Interface) -> Result<ChainStatus> {
        let mut st = inspect::status(iface)?;
        let dir = self.iface_dir(iface)?;
        let (stamps, programs) = match st.libxdp_version {
            Some(_) => (read_libxdp_owners(&dir), HashMap::new()),
            None => {
                let record = self.record_of(&dir, &st);
                let programs = match st.kind {
                    // Each extension runs in a program of its own, pinned
                    // with its component.
                    Mode::Dynamic => record
                        .iter()
                        .flat_map(|r| &r.entries)
                        .filter_map(|e| {
                            let fd = obj_get(&dir.join(format!("c{}", e.tag)).join(PROG)).ok()?;
                            Some((e.id, crate::sys::prog_info(fd.as_fd()).ok()?.1))
                        })
                        .collect(),
                    _ => HashMap::new(),
                };
                st.not_dynamic = record.as_ref().and_then(|r| r.settings.not_dynamic.clone());
                st.device_bound = record.as_ref().is_some_and(|r| r.settings.device_bound);
                let stamps = record
                    .map(|r| r.entries.into_iter().map(|e| (e.id, e.stamp)).collect())
                    .unwrap_or_default();
                (stamps, programs)
            }
        };
        let counted = match st.libxdp_version {
            Some(_) => ext_counters::read(&dir),
            None => HashMap::new(),
        };
        for c in st.components.iter_mut() {
            c.owner = stamps.get(&c.id).map(|s| s.owner.clone());
            if let Some(counters) = counted.get(&c.id) {
                c.counters = Some(*counters);
            }
            if let Some(id) = programs.get(&c.id) {
                c.program_id = Some(*id);
            }
        }
        Ok(st)
    }

    /// The XDP programs of other loaders on this network namespace's
    /// interfaces (those of [`Store::list`] aside).
    pub fn foreign(&self) -> Result<Vec<ForeignProgram>> {
        let mut out = Vec::new();
        for index in inspect::interfaces()? {
            let Ok(iface) = Interface::resolve(&index.to_string()) else {
                continue;
            };
            if let Some(p) = inspect::foreign(&iface)? {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// The named network namespaces (`ip netns`) that have a record in this
    /// store and an interface named `iface`: where to look for an
    /// interface that this namespace lacks.
    pub fn namespaces_with(&self, iface: &str) -> Vec<String> {
        crate::ns::holding_interface(iface, &self.recorded_namespaces())
    }

    /// The named network namespaces (`ip netns`) that have a record in this
    /// store: where chains of ours run.
    pub fn namespaces(&self) -> Vec<String> {
        crate::ns::named(&self.recorded_namespaces())
    }

    /// The inodes of the network namespaces with a record here.
    fn recorded_namespaces(&self) -> Vec<u64> {
        std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect()
    }

    /// The chains of this network namespace.
    pub fn list(&self) -> Result<Vec<ChainStatus>> {
        let mut out = Vec::new();
        for index in inspect::interfaces()? {
            match self.status(&index.to_string()) {
                Ok(st) => out.push(st),
                Err(Error::NoChain(_)) | Err(Error::UnknownInterface(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The owners of the components of `st`, the chain on `iface`, by the
    /// ids status shows. Read without the lock: the record is replaced
    /// whole, and names the program it describes.
    pub(crate) fn stamps(
        &self,
        iface: &Interface,
        st: &ChainStatus,
    ) -> Result<HashMap<u32, Stamp>> {
        let dir = self.iface_dir(iface)?;
        if st.libxdp_version.is_some() {
            return Ok(read_libxdp_owners(&dir));
        }
        Ok(self
            .record_of(&dir, st)
            .map(|r| r.entries.into_iter().map(|e| (e.id, e.stamp)).collect())
            .unwrap_or_default())
    }

    /// The record in `dir` of the chain of ours `st`, if it describes it.
    /// Read without the lock: the record is replaced whole, and names the
    /// program it describes.
    fn record_of(&self, dir: &Path, st: &ChainStatus) -> Option<Record> {
        read_record(&dir.join(STATE))
            .ok()
            .filter(|r| r.prog_id == st.program_id)
    }

    /// The map `name` (by its name in the component's object) of component
    /// `id` of the recorded chain on `iface`, from its pin.
    pub(crate) fn pinned_map(&self, iface: &Interface, id: u32, name: &str) -> Result<OwnedFd> {
        let st = inspect::status(iface)?;
        if st.libxdp_version.is_some() {
            return Err(Error::Unsupported(
                "the maps of programs in libxdp's layout are not pinned by libxdpchain".into(),
            ));
        }
        let dir = self.iface_dir(iface)?;
        let record = read_record(&dir.join(STATE))
            .ok()
            .filter(|r| r.prog_id == st.program_id)
            .ok_or_else(|| Error::NoState {
                iface: iface.name.clone(),
                dir: self.dir.display().to_string(),
            })?;
        let e = record
            .entries
            .iter()
            .find(|e| e.id == id)
            .ok_or_else(|| Error::UnknownComponent(id.to_string()))?;
        let unknown = || Error::UnknownMap {
            component: e.program.clone(),
            map: name.to_string(),
        };
        // Only names a map can have: no path, none of our own pins.
        if name.is_empty()
            || name.contains('/')
            || [OBJECT, PROG].contains(&name)
            || name.starts_with(LINK_PREFIX)
        {
            return Err(unknown());
        }
        obj_get(&dir.join(format!("c{}", e.tag)).join(name.replace('.', "%")))
            .map_err(|_| unknown())
    }
}
