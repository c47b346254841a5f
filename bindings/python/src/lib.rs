//! Python bindings of libxdpchain: the `xdpchain._xdpchain` extension,
//! wrapped by the pure-Python package `xdpchain`. A thin layer over the Rust
//! core; loading, linking and attaching run with the GIL released, and
//! what the library says meanwhile goes to `logging` (logging.rs).

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, TryLockError};

mod logging;

use ::xdpchain as xc;
use logging::released;
use pyo3::create_exception;
use pyo3::exceptions::{
    PyFileNotFoundError, PyLookupError, PyOSError, PyPermissionError, PyRuntimeError, PyTypeError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PyString};

create_exception!(
    xdpchain,
    Error,
    PyOSError,
    "A failure of libxdpchain or of the kernel; `errno` says which."
);
create_exception!(
    xdpchain,
    VerifierError,
    Error,
    "The kernel refused a program; `log` holds the verifier's log and `component` the refused component (or None for the chain as a whole)."
);

/// The Python exception for a core error: Python's own where one fits
/// (for an error of a chains file's declaration, the one of its cause).
fn py_err(e: xc::Error) -> PyErr {
    use xc::Error as E;
    let msg = e.to_string();
    let errno = e.errno();
    let e = match e {
        E::Declared { source, .. } => *source,
        e => e,
    };
    match e {
        E::PermissionDenied { .. } | E::UnsafePinDir { .. } | E::Untrusted { .. } => {
            PyPermissionError::new_err((errno, msg))
        }
        E::Os { ref source, .. } if source.raw_os_error() == Some(libc::ENOENT) => {
            PyFileNotFoundError::new_err((errno, msg))
        }
        E::NotElf { .. }
        | E::NotBpf { .. }
        | E::Malformed { .. }
        | E::AmbiguousProgram { .. }
        | E::InvalidArgument(_)
        | E::ChainsFile { .. }
        | E::Link(_) => PyValueError::new_err(msg),
        E::NoXdpProgram { .. }
        | E::UnknownProgram { .. }
        | E::UnknownComponent(_)
        | E::UnknownMap { .. } => PyLookupError::new_err(msg),
        E::Verifier { component, log, .. } => verifier_error(errno, msg, Some(component), log),
        E::Load { log, .. } => verifier_error(errno, msg, None, log),
        _ => Error::new_err((errno, msg)),
    }
}

fn verifier_error(errno: i32, msg: String, component: Option<String>, log: String) -> PyErr {
    Python::with_gil(|py| {
        let err = VerifierError::new_err((errno, msg));
        let value = err.value(py);
        let set = value
            .setattr("log", log)
            .and_then(|()| value.setattr("component", component));
        set.err().unwrap_or(err)
    })
}

fn mode(name: &str) -> PyResult<xc::Mode> {
    xc::Mode::parse(name).map_err(py_err)
}

/// A continue set from any iterable of verdict names ("pass", "DROP"...).
fn verdicts(names: Option<&Bound<'_, PyAny>>) -> PyResult<Option<xc::Verdicts>> {
    let Some(names) = names else {
        return Ok(None);
    };
    if names.is_instance_of::<PyString>() {
        return Err(PyValueError::new_err(
            "continue_on takes a collection of verdict names, such as {\"pass\"}",
        ));
    }
    let mut v = xc::Verdicts::empty();
    for n in names.try_iter()? {
        let n: String = n?.extract()?;
        let verdict = xc::Verdict::from_name(&n.to_ascii_lowercase()).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown verdict {n:?} (aborted, drop, pass, tx, redirect)"
            ))
        })?;
        v = v.with(verdict);
    }
    Ok(Some(v))
}

/// A component from a path (str or os.PathLike) or from bytes, configured
/// as `rodata` (global name to int or bytes) and `map_sizes` (map name to
/// max_entries) say.
fn component(
    obj: &Bound<'_, PyAny>,
    program: Option<&str>,
    priority: Option<i32>,
    continue_on: Option<&Bound<'_, PyAny>>,
    rodata: Option<&Bound<'_, PyDict>>,
    map_sizes: Option<&Bound<'_, PyDict>>,
) -> PyResult<xc::Component> {
    let c = if let Ok(b) = obj.downcast::<PyBytes>() {
        xc::Component::from_bytes(b.as_bytes().to_vec(), "<bytes>", program)
    } else {
        let path: PathBuf = obj.extract()?;
        xc::Component::from_file(path, program)
    };
    let mut c = c.map_err(py_err)?;
    if let Some(p) = priority {
        c = c.with_priority(p);
    }
    if let Some(v) = verdicts(continue_on)? {
        c = c.with_continue_on(v);
    }
    for (name, value) in rodata.into_iter().flat_map(|d| d.iter()) {
        let name: String = name.extract()?;
        c = match value.downcast::<PyBytes>() {
            Ok(b) => c.with_global(&name, b.as_bytes()),
            Err(_) => c.with_global_int(&name, value.extract()?),
        }
        .map_err(py_err)?;
    }
    for (name, entries) in map_sizes.into_iter().flat_map(|d| d.iter()) {
        c = c
            .with_map_size(&name.extract::<String>()?, entries.extract()?)
            .map_err(py_err)?;
    }
    Ok(c)
}

/// One component of a chain, in run order.
#[pyclass(module = "xdpchain", frozen, get_all)]
struct Component {
    /// Stable while the component stays in the chain, never given to
    /// another one of it (a program id in libxdp's layout).
    id: u32,
    /// Position in run order.
    slot: usize,
    /// Its XDP program's name.
    name: String,
    /// Lower runs first.
    priority: i32,
    /// The verdicts on which the chain goes on after it.
    continue_on: Py<PyFrozenSet>,
    /// The program that runs it (the chain's own when linked in); None
    /// where not known.
    program_id: Option<u32>,
    /// Packets by verdict ("aborted", "drop", "pass", "tx", "redirect",
    /// "other"); None before loading or with counting off.
    counters: Option<Py<PyDict>>,
    /// Who added it; None where no record says.
    owner: Option<String>,
    /// The process that added it (it may have exited since).
    pid: Option<u32>,
    /// Whether this Chain object added it.
    own: bool,
    /// Whether a static chain runs it without a call (its code copied into
    /// a root generated for the chain); None for other chains.
    inlined: Option<bool>,
    /// The function that runs it in program `program_id`, which fentry and
    /// fexit programs attach to; None where it is inlined or not known.
    function: Option<String>,
    /// Nanoseconds it took, summed over the packets timed while timing was
    /// on (`timing()`); None with counting off.
    run_time_ns: Option<u64>,
    /// Packets timed.
    run_cnt: Option<u64>,
}

#[pymethods]
impl Component {
    fn __repr__(&self) -> String {
        format!(
            "Component(id={}, slot={}, name={:?}, priority={}, owner={:?})",
            self.id, self.slot, self.name, self.priority, self.owner
        )
    }
}

fn continue_set(py: Python<'_>, v: xc::Verdicts) -> PyResult<Py<PyFrozenSet>> {
    let names: Vec<&str> = v.iter().map(|v| v.name()).collect();
    Ok(PyFrozenSet::new(py, &names)?.unbind())
}

/// Packets by verdict name, then "other", as a dict.
fn verdict_dict(py: Python<'_>, k: &xc::Counters) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    for (v, n) in k.by_name() {
        d.set_item(v, n)?;
    }
    Ok(d.unbind())
}

/// A component as the kernel runs it; `own` says whether the asking
/// handle added it.
fn component_of(py: Python<'_>, c: &xc::ComponentStatus, own: bool) -> PyResult<Component> {
    let counters = match c.counters {
        Some(k) => Some(verdict_dict(py, &k)?),
        None => None,
    };
    Ok(Component {
        id: c.id,
        slot: c.slot,
        name: c.name.clone(),
        priority: c.priority,
        continue_on: continue_set(py, c.continue_on)?,
        program_id: c.program_id,
        counters,
        owner: c.owner.as_ref().map(|o| o.name().to_string()),
        pid: c.owner.as_ref().map(|o| o.pid()),
        own,
        inlined: c.inlined,
        function: c.function.clone(),
        run_time_ns: c.counters.map(|k| k.run_time_ns),
        run_cnt: c.counters.map(|k| k.run_cnt),
    })
}

/// A component as Python names it: an int is its id, a str its program's
/// name.
fn key_of(obj: &Bound<'_, PyAny>) -> PyResult<xc::ComponentKey> {
    if let Ok(id) = obj.extract::<u32>() {
        return Ok(xc::ComponentId(id).into());
    }
    match obj.extract::<String>() {
        Ok(name) => Ok(xc::ComponentKey::Program(name)),
        Err(_) => Err(PyTypeError::new_err(
            "a component is named by its id (int) or its program's name (str)",
        )),
    }
}

/// The chain on one interface, as `xdpchain status` shows it.
#[pyclass(module = "xdpchain", frozen, get_all)]
struct ChainStatus {
    interface: Option<String>,
    ifindex: Option<u32>,
    /// "native" or "skb".
    mode: Option<&'static str>,
    /// "static" or "dynamic".
    kind: &'static str,
    /// "xdpchain", or "libxdp vN".
    layout: String,
    /// Why the components show no counters, where they show none.
    counters_off: Option<&'static str>,
    /// Why the chain is static where auto would have made it dynamic.
    not_dynamic: Option<String>,
    /// Loaded bound to its interface (a component reads RX metadata).
    device_bound: bool,
    program_id: u32,
    components: Vec<Py<Component>>,
}

#[pymethods]
impl ChainStatus {
    fn __repr__(&self) -> String {
        format!(
            "ChainStatus(interface={:?}, kind={:?}, layout={:?}, components={})",
            self.interface,
            self.kind,
            self.layout,
            self.components.len()
        )
    }
}

fn chain_status(py: Python<'_>, st: &xc::ChainStatus) -> PyResult<ChainStatus> {
    Ok(ChainStatus {
        interface: st.interface.as_ref().map(|i| i.name.clone()),
        ifindex: st.interface.as_ref().map(|i| i.index),
        mode: st.mode.map(|m| m.name()),
        kind: st.kind.name(),
        layout: st.layout(),
        counters_off: st.counters_off(),
        not_dynamic: st.not_dynamic.clone(),
        device_bound: st.device_bound,
        program_id: st.program_id,
        components: st
            .components
            .iter()
            .map(|c| Py::new(py, component_of(py, c, false)?))
            .collect::<PyResult<_>>()?,
    })
}

/// The chain of an interface as one owner opened it, or (without an
/// interface) a chain of this object's own to link into a file.
#[pyclass(module = "xdpchain")]
struct Chain {
    /// Taken without waiting: a thread that waited for it holding the GIL
    /// would block the holder, which needs the GIL back to return.
    inner: Mutex<xc::ChainHandle>,
    ifname: Option<String>,
    /// What the last change through this object did to the interface.
    last: Mutex<xc::Report>,
}

fn no_interface() -> PyErr {
    PyValueError::new_err("the chain was opened without an interface")
}

impl Chain {
    fn lock(&self) -> PyResult<MutexGuard<'_, xc::ChainHandle>> {
        match self.inner.try_lock() {
            Ok(g) => Ok(g),
            Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
            Err(TryLockError::WouldBlock) => Err(PyRuntimeError::new_err(
                "the chain is in use by another thread",
            )),
        }
    }

    /// Checks that the interface's chain runs in the attach mode asked
    /// for, and (`linked`) statically.
    fn check_running(&self, py: Python<'_>, skb: bool, linked: bool) -> PyResult<()> {
        let inner = self.lock()?;
        let xc::ChainHandle::Shared(shared) = &*inner else {
            return Err(no_interface());
        };
        let want = if skb {
            xc::AttachMode::Skb
        } else {
            xc::AttachMode::Native
        };
        released(py, || {
            shared.expect_running(want, linked.then_some(xc::Mode::Static))
        })
        .map_err(py_err)
    }

    /// Keeps `report` (None: a chain of this object's own, which no
    /// interface runs) as the last change; returns its changes.
    fn reported(&self, report: Option<xc::Report>) -> Vec<Change> {
        let report = report.unwrap_or_default();
        let out = changes(&report);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = report;
        out
    }
}

#[pymethods]
impl Chain {
    #[new]
    #[pyo3(signature = (ifname=None, *, mode=None, counters=None, pin_root=None, owner=None, netns=None, skb=false, force=false, device_bound=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        ifname: Option<String>,
        mode: Option<&str>,
        counters: Option<bool>,
        pin_root: Option<String>,
        owner: Option<String>,
        netns: Option<String>,
        skb: bool,
        force: bool,
        device_bound: bool,
    ) -> PyResult<Self> {
        let mode = mode.map(self::mode).transpose()?;
        let inner = match &ifname {
            Some(name) => {
                if pin_root.is_some() {
                    return Err(PyValueError::new_err(
                        "pin_root applies to chains opened without an interface",
                    ));
                }
                let mut store = xc::Store::new();
                if let Some(m) = mode {
                    store = store.with_mode(m);
                }
                let opts = xc::OpenOptions {
                    owner,
                    attach: xc::AttachOptions {
                        mode: if skb {
                            xc::AttachMode::Skb
                        } else {
                            xc::AttachMode::Native
                        },
                        force,
                        device_bound,
                    },
                    counting: match counters {
                        None => xc::Counting::Auto,
                        Some(true) => xc::Counting::On,
                        Some(false) => xc::Counting::Off,
                    },
                    netns,
                };
                xc::ChainHandle::Shared(released(py, || store.open(name, opts)).map_err(py_err)?)
            }
            None => {
                if owner.is_some() || netns.is_some() || skb || force {
                    return Err(PyValueError::new_err(
                        "owner, netns, skb and force need an interface",
                    ));
                }
                let mut chain = xc::Chain::new();
                if let Some(m) = mode {
                    chain.set_mode(m);
                }
                chain.set_counting(counters.unwrap_or(true));
                if let Some(root) = pin_root {
                    chain.set_pin_root(root);
                }
                xc::ChainHandle::Local(chain)
            }
        };
        Ok(Chain {
            inner: Mutex::new(inner),
            ifname,
            last: Mutex::default(),
        })
    }

    /// Chain.open(ifname=None, *, mode=None, counters=None, pin_root=None,
    /// owner=None, netns=None, skb=False, force=False, device_bound=False)
    #[staticmethod]
    #[pyo3(signature = (ifname=None, *, mode=None, counters=None, pin_root=None, owner=None, netns=None, skb=false, force=false, device_bound=false))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        ifname: Option<String>,
        mode: Option<&str>,
        counters: Option<bool>,
        pin_root: Option<String>,
        owner: Option<String>,
        netns: Option<String>,
        skb: bool,
        force: bool,
        device_bound: bool,
    ) -> PyResult<Self> {
        Chain::new(
            py,
            ifname,
            mode,
            counters,
            pin_root,
            owner,
            netns,
            skb,
            force,
            device_bound,
        )
    }

    /// Adds a component (on an interface: it runs once this returns);
    /// returns its id, and `last_changes` says what else force dropped. `rodata` sets global variables (name to int or
    /// bytes) and `map_sizes` map sizes before loading, as the program's
    /// own loader would. `traceable` keeps it a function of its own in a
    /// static chain, which fentry/fexit tools attach to by the name its
    /// status's `function` shows.
    #[pyo3(signature = (obj, *, program=None, priority=None, continue_on=None, rodata=None, map_sizes=None, traceable=false))]
    #[allow(clippy::too_many_arguments)]
    fn add_program(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        program: Option<&str>,
        priority: Option<i32>,
        continue_on: Option<&Bound<'_, PyAny>>,
        rodata: Option<&Bound<'_, PyDict>>,
        map_sizes: Option<&Bound<'_, PyDict>>,
        traceable: bool,
    ) -> PyResult<u32> {
        let c = component(obj, program, priority, continue_on, rodata, map_sizes)?
            .with_traceable(traceable);
        let inner = &mut *self.lock()?;
        let report = released(py, || inner.add(c)).map_err(py_err)?;
        self.reported(report.1);
        Ok(report.0 .0)
    }

    /// Removes the component `id` (another owner's only with force);
    /// returns what changed (a list of Change).
    fn remove(&self, py: Python<'_>, id: u32) -> PyResult<Vec<Change>> {
        let inner = &mut *self.lock()?;
        let report = released(py, || inner.remove(xc::ComponentId(id))).map_err(py_err)?;
        Ok(self.reported(report))
    }

    /// What the last change through this object did to the interface's
    /// programs (a list of Change): what it added, removed, replaced, and
    /// what force dropped.
    #[getter]
    fn last_changes(&self) -> Vec<Change> {
        changes(&self.last.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Puts another program in run-order position `slot`, atomically;
    /// returns what changed (a list of Change).
    #[pyo3(signature = (slot, obj, *, program=None, continue_on=None, rodata=None, map_sizes=None))]
    #[allow(clippy::too_many_arguments)]
    fn replace_slot(
        &self,
        py: Python<'_>,
        slot: usize,
        obj: &Bound<'_, PyAny>,
        program: Option<&str>,
        continue_on: Option<&Bound<'_, PyAny>>,
        rodata: Option<&Bound<'_, PyDict>>,
        map_sizes: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Vec<Change>> {
        let c = component(obj, program, None, continue_on, rodata, map_sizes)?;
        let inner = &mut *self.lock()?;
        let report = released(py, || {
            let id = inner.at_slot(slot)?;
            inner.replace(id, c)
        })
        .map_err(py_err)?;
        Ok(self.reported(report))
    }

    /// Components join the interface's chain as add_program adds them;
    /// this checks that the chain runs there, in the mode asked for.
    #[pyo3(signature = (*, skb=false))]
    fn attach(&self, py: Python<'_>, skb: bool) -> PyResult<()> {
        self.check_running(py, skb, false)
    }

    /// Without an interface: links the chain into one program written to
    /// `path`. On an interface: checks that its chain runs, linked.
    #[pyo3(signature = (path=None, *, skb=false))]
    fn link_static(&self, py: Python<'_>, path: Option<PathBuf>, skb: bool) -> PyResult<()> {
        let Some(path) = path else {
            return self.check_running(py, skb, true);
        };
        let inner = &mut *self.lock()?;
        let xc::ChainHandle::Local(chain) = inner else {
            return Err(PyValueError::new_err(
                "an interface's chain is not linked into a file; use Chain() without an interface",
            ));
        };
        // &mut: handed to another thread (the chain is Send, not Sync).
        released(py, move || chain.write(path)).map_err(py_err)
    }

    /// Takes out the components this object added; returns what changed
    /// (a list of Change).
    fn detach(&self, py: Python<'_>) -> PyResult<Vec<Change>> {
        let inner = &mut *self.lock()?;
        let xc::ChainHandle::Shared(shared) = inner else {
            return Err(no_interface());
        };
        let report = released(py, || shared.detach()).map_err(py_err)?;
        Ok(self.reported(Some(report)))
    }

    /// Whether components this object added run on the interface.
    #[getter]
    fn attached(&self, py: Python<'_>) -> PyResult<bool> {
        let inner = &*self.lock()?;
        match inner {
            xc::ChainHandle::Local(_) => Ok(false),
            xc::ChainHandle::Shared(shared) => match released(py, || shared.own()) {
                Ok(ids) => Ok(!ids.is_empty()),
                Err(xc::Error::NoChain(_)) => Ok(false),
                Err(e) => Err(py_err(e)),
            },
        }
    }

    /// The interface name given to open(), or None.
    #[getter]
    fn ifname(&self) -> Option<String> {
        self.ifname.clone()
    }

    /// The owner recorded with what this object adds, or None.
    #[getter]
    fn owner(&self) -> PyResult<Option<String>> {
        Ok(self.lock()?.owner().map(|o| o.name().to_string()))
    }

    /// "static" or "dynamic" once it runs (or is loaded); before, the mode
    /// asked for.
    #[getter]
    fn mode(&self, py: Python<'_>) -> PyResult<&'static str> {
        // &mut: handed to another thread (the chain is Send, not Sync).
        let inner = &mut *self.lock()?;
        released(py, move || inner.mode())
            .map(xc::Mode::name)
            .map_err(py_err)
    }

    /// The components in run order (of every owner, on an interface).
    #[getter]
    fn components(&self, py: Python<'_>) -> PyResult<Vec<Component>> {
        let inner = &mut *self.lock()?;
        let listed = released(py, move || inner.components()).map_err(py_err)?;
        listed
            .iter()
            .map(|l| component_of(py, &l.status, l.own))
            .collect()
    }

    /// The fd of a component's map, by its name in the component's object
    /// (".data", ".bss" for global variables). Owned by this object.
    fn map_fd(&self, id: u32, name: &str) -> PyResult<i32> {
        use std::os::fd::AsRawFd;
        let inner = &mut *self.lock()?;
        inner
            .map_fd(xc::ComponentId(id), name)
            .map(|fd| fd.as_raw_fd())
            .map_err(py_err)
    }

    /// Runs the chain once on `packet` (BPF_PROG_TEST_RUN); returns the
    /// verdict.
    fn test_run(&self, py: Python<'_>, packet: &[u8]) -> PyResult<u32> {
        // &mut: handed to another thread (the chain is Send, not Sync).
        let inner = &mut *self.lock()?;
        released(py, move || inner.test_run(packet, 1))
            .map(|(v, _)| v)
            .map_err(py_err)
    }

    /// Takes out what this object added, if any still runs.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let inner = &mut *self.lock()?;
        if let xc::ChainHandle::Shared(shared) = inner {
            match released(py, || shared.detach()) {
                Ok(report) => drop(self.reported(Some(report))),
                Err(xc::Error::NotAttached) => {}
                Err(e) => return Err(py_err(e)),
            }
        }
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }
}

/// The chains of this network namespace (or `netns`), or the one on
/// `ifname`: ChainStatus objects, components with their owners.
#[pyfunction]
#[pyo3(signature = (ifname=None, *, netns=None))]
fn status(
    py: Python<'_>,
    ifname: Option<String>,
    netns: Option<String>,
) -> PyResult<Vec<ChainStatus>> {
    let chains = released(py, || chains(ifname.as_deref(), netns.as_deref())).map_err(py_err)?;
    chains.iter().map(|st| chain_status(py, st)).collect()
}

/// One program that a change through a Chain added, removed, replaced or
/// dropped; str() gives the line `xdpchain` prints for it.
#[pyclass(module = "xdpchain", frozen, get_all)]
struct Change {
    /// "added", "removed" (this owner's), "replaced", or "dropped"
    /// (another owner's, or another loader's program: only with force).
    action: &'static str,
    interface: String,
    /// Its component id; None for another loader's program.
    id: Option<u32>,
    name: String,
    owner: Option<String>,
    /// The kernel's id of the program that runs it; None where not known.
    program_id: Option<u32>,
    /// For "replaced": the name and program id of what ran in its place.
    replaced_name: Option<String>,
    replaced_program_id: Option<u32>,
    line: String,
}

#[pymethods]
impl Change {
    fn __str__(&self) -> String {
        self.line.clone()
    }
    fn __repr__(&self) -> String {
        format!("Change({:?})", self.line)
    }
}

fn changes(report: &xc::Report) -> Vec<Change> {
    report
        .changes
        .iter()
        .map(|c| Change {
            action: c.action.name(),
            interface: report.interface.clone(),
            id: c.program.id,
            name: c.program.name.clone(),
            owner: c.program.owner.as_ref().map(|o| o.name().to_string()),
            program_id: c.program.program_id,
            replaced_name: c.replaced.as_ref().map(|r| r.name.clone()),
            replaced_program_id: c.replaced.as_ref().and_then(|r| r.program_id),
            line: c.to_string(),
        })
        .collect()
}

/// An XDP program of another loader: neither a chain nor libxdp's
/// dispatcher.
#[pyclass(module = "xdpchain", frozen, get_all)]
struct ForeignProgram {
    interface: String,
    ifindex: u32,
    /// "native" or "skb".
    mode: &'static str,
    program_id: u32,
    name: String,
}

#[pymethods]
impl ForeignProgram {
    fn __repr__(&self) -> String {
        format!(
            "ForeignProgram(interface={:?}, name={:?}, program_id={})",
            self.interface, self.name, self.program_id
        )
    }
}

/// The XDP programs of other loaders in this network namespace (or
/// `netns`), or on `ifname`.
#[pyfunction]
#[pyo3(signature = (ifname=None, *, netns=None))]
fn foreign(
    py: Python<'_>,
    ifname: Option<String>,
    netns: Option<String>,
) -> PyResult<Vec<ForeignProgram>> {
    let all = released(py, || in_netns(netns.as_deref(), xc::foreign)).map_err(py_err)?;
    Ok(all
        .into_iter()
        .filter(|p| {
            ifname
                .as_ref()
                .is_none_or(|i| *i == p.interface.name || *i == p.interface.index.to_string())
        })
        .map(|p| ForeignProgram {
            interface: p.interface.name,
            ifindex: p.interface.index,
            mode: p.mode.name(),
            program_id: p.program_id,
            name: p.name,
        })
        .collect())
}

/// One component's statistics, as `xdpchain top` reads them.
#[pyclass(module = "xdpchain", frozen, get_all)]
struct Stats {
    interface: Option<String>,
    ifindex: Option<u32>,
    /// The component's id in its chain.
    id: u32,
    name: String,
    owner: Option<String>,
    /// Packets it ran on.
    packets: u64,
    /// Packets by verdict ("aborted", "drop", "pass", "tx", "redirect",
    /// "other").
    verdicts: Py<PyDict>,
    /// Nanoseconds over the packets timed (while timing was on).
    run_time_ns: u64,
    /// Packets timed.
    run_cnt: u64,
    /// run_time_ns / run_cnt; None before any packet was timed.
    ns_per_packet: Option<f64>,
}

#[pymethods]
impl Stats {
    fn __repr__(&self) -> String {
        format!(
            "Stats(interface={:?}, id={}, name={:?}, packets={}, ns_per_packet={:?})",
            self.interface, self.id, self.name, self.packets, self.ns_per_packet
        )
    }
}

/// The statistics of every component that counts, in the chains of this
/// network namespace (or `netns`), or of the chain on `ifname`.
#[pyfunction]
#[pyo3(signature = (ifname=None, *, netns=None))]
fn stats(py: Python<'_>, ifname: Option<String>, netns: Option<String>) -> PyResult<Vec<Stats>> {
    let chains = released(py, || chains(ifname.as_deref(), netns.as_deref())).map_err(py_err)?;
    let mut out = Vec::new();
    for st in &chains {
        for c in &st.components {
            let Some(k) = c.counters else { continue };
            let verdicts = verdict_dict(py, &k)?;
            out.push(Stats {
                interface: st.interface.as_ref().map(|i| i.name.clone()),
                ifindex: st.interface.as_ref().map(|i| i.index),
                id: c.id,
                name: c.name.clone(),
                owner: c.owner.as_ref().map(|o| o.name().to_string()),
                packets: k.packets(),
                verdicts,
                run_time_ns: k.run_time_ns,
                run_cnt: k.run_cnt,
                ns_per_packet: k.ns_per_packet(),
            });
        }
    }
    Ok(out)
}

/// Components timed while it lives: `with xdpchain.timing("eth0"): ...`.
/// Timing stops at most a few seconds after `stop()`, the end of the
/// `with` block or the end of the process.
#[pyclass(module = "xdpchain", frozen)]
struct Timing(Mutex<Option<xc::Timing>>);

#[pymethods]
impl Timing {
    /// Stops renewing timing (idempotent).
    fn stop(&self, py: Python<'_>) {
        let t = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        released(py, || drop(t));
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.stop(py);
        false
    }
}

/// Starts timing the chain on `ifname` (every chain of this network
/// namespace, or of `netns`, with None).
#[pyfunction]
#[pyo3(signature = (ifname=None, *, netns=None))]
fn timing(py: Python<'_>, ifname: Option<String>, netns: Option<String>) -> PyResult<Timing> {
    let t = released(py, || {
        in_netns(netns.as_deref(), || xc::Timing::start(ifname.as_deref()))
    })
    .map_err(py_err)?;
    Ok(Timing(Mutex::new(Some(t))))
}

/// One packet a dump took.
#[pyclass(module = "xdpchain", frozen, get_all)]
struct Packet {
    /// Its first bytes, up to the dump's snap length.
    data: Py<PyBytes>,
    /// The packet's length.
    len: u32,
    /// The component's verdict, in a dump at its exit; else None.
    verdict: Option<u32>,
    /// CLOCK_MONOTONIC when it was taken, in nanoseconds.
    ktime_ns: u64,
}

#[pymethods]
impl Packet {
    fn __repr__(&self) -> String {
        format!("Packet(len={}, verdict={:?})", self.len, self.verdict)
    }
}

/// The packets one component sees: iterate over it; it stops after
/// `count` packets, or after `timeout` seconds without one, and ends with
/// `close()` or the `with` block.
#[pyclass(module = "xdpchain")]
struct Dump {
    inner: Mutex<Option<xc::Dump>>,
    left: Option<u64>,
    timeout: Option<f64>,
}

#[pymethods]
impl Dump {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Packet>> {
        if self.left == Some(0) {
            return Ok(None);
        }
        let start = std::time::Instant::now();
        loop {
            let got = {
                let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                let Some(dump) = inner.as_mut() else {
                    return Ok(None);
                };
                released(py, || dump.next(std::time::Duration::from_millis(100))).map_err(py_err)?
            };
            if let Some(p) = got {
                self.left = self.left.map(|n| n - 1);
                return Ok(Some(Packet {
                    data: PyBytes::new(py, &p.data).unbind(),
                    len: p.len,
                    verdict: p.verdict,
                    ktime_ns: p.ktime_ns,
                }));
            }
            // Ctrl-C reaches Python between polls.
            py.check_signals()?;
            if self
                .timeout
                .is_some_and(|t| start.elapsed().as_secs_f64() >= t)
            {
                return Ok(None);
            }
        }
    }

    /// Packets the ring had no room for.
    #[getter]
    fn lost(&self) -> u64 {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.as_ref().map_or(0, |d| d.lost())
    }

    /// Ends the dump (idempotent).
    fn close(&self, py: Python<'_>) {
        let d = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        released(py, || drop(d));
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }
}

/// Dumps the packets that `component` (its id or program name) of the
/// chain on `ifname` receives (`at="entry"`) or leaves (`at="exit"`).
#[pyfunction]
#[pyo3(signature = (ifname, component, *, at="entry", snaplen=xc::SNAP_MAX, count=None, timeout=None, netns=None))]
#[allow(clippy::too_many_arguments)]
fn dump(
    py: Python<'_>,
    ifname: String,
    component: &Bound<'_, PyAny>,
    at: &str,
    snaplen: u32,
    count: Option<u64>,
    timeout: Option<f64>,
    netns: Option<String>,
) -> PyResult<Dump> {
    let at = match at {
        "entry" => xc::DumpPoint::Entry,
        "exit" => xc::DumpPoint::Exit,
        other => {
            return Err(PyValueError::new_err(format!(
                "at must be 'entry' or 'exit', not {other:?}"
            )))
        }
    };
    let component = key_of(component)?;
    let d = released(py, || {
        in_netns(netns.as_deref(), || {
            xc::Dump::start(&ifname, component, at, snaplen)
        })
    })
    .map_err(py_err)?;
    Ok(Dump {
        inner: Mutex::new(Some(d)),
        left: count,
        timeout,
    })
}

/// One interface's chain as `apply` left it: (interface, netns, changes),
/// each change (verb, what); changes None where the interface is missing.
type AppliedTuple = (String, Option<String>, Option<Vec<(String, String)>>);

#[pyfunction]
#[pyo3(signature = (path=None, *, dry_run=false, prune=false, interface=None, netns=None))]
fn apply(
    py: Python<'_>,
    path: Option<PathBuf>,
    dry_run: bool,
    prune: bool,
    interface: Option<String>,
    netns: Option<String>,
) -> PyResult<Vec<AppliedTuple>> {
    let path = path.unwrap_or_else(|| xc::DEFAULT_CHAINS_FILE.into());
    let opts = xc::ApplyOptions { prune, dry_run };
    let results = released(py, || {
        let select = xc::Selection {
            netns: netns.as_deref(),
            interface: interface.as_deref(),
        };
        let chains = xc::read_chains(&path, select)?;
        let store = xc::Store::new();
        let results: Vec<_> = store
            .apply_all(&chains, opts)
            .into_iter()
            .map(|(c, outcome)| (c.interface.clone(), c.netns.clone(), outcome))
            .collect();
        Ok::<_, xc::Error>(results)
    })
    .map_err(py_err)?;
    let mut out = Vec::new();
    let mut failed = None;
    for (iface, netns, outcome) in results {
        let changes = match outcome {
            xc::Outcome::Applied(a) => Some(
                a.changes
                    .iter()
                    .map(|c| (c.verb().to_string(), c.what().to_string()))
                    .collect(),
            ),
            xc::Outcome::Missing => None,
            xc::Outcome::Failed(e) => {
                failed.get_or_insert(e);
                continue;
            }
        };
        out.push((iface, netns, changes));
    }
    failed.map_or(Ok(out), |e| Err(py_err(e)))
}

fn chains(ifname: Option<&str>, netns: Option<&str>) -> xc::Result<Vec<xc::ChainStatus>> {
    let store = xc::Store::new();
    in_netns(netns, || match ifname {
        Some(i) => store.status(i).map(|s| vec![s]),
        None => store.list(),
    })
}

/// `f` in the network namespace `netns` (a name or path), or in this one.
fn in_netns<T>(netns: Option<&str>, f: impl FnOnce() -> xc::Result<T>) -> xc::Result<T> {
    match netns.map(xc::Netns::open).transpose()? {
        Some(ns) => ns.run(f),
        None => f(),
    }
}

#[pymodule]
fn _xdpchain(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logging::install();
    m.add_class::<Chain>()?;
    m.add_class::<Component>()?;
    m.add_class::<ChainStatus>()?;
    m.add_class::<Stats>()?;
    m.add_class::<Timing>()?;
    m.add_class::<Dump>()?;
    m.add_class::<Packet>()?;
    m.add_class::<ForeignProgram>()?;
    m.add_class::<Change>()?;
    m.add_function(wrap_pyfunction!(status, m)?)?;
    m.add_function(wrap_pyfunction!(foreign, m)?)?;
    m.add_function(wrap_pyfunction!(stats, m)?)?;
    m.add_function(wrap_pyfunction!(timing, m)?)?;
    m.add_function(wrap_pyfunction!(dump, m)?)?;
    m.add_function(wrap_pyfunction!(apply, m)?)?;
    m.add("Error", m.py().get_type::<Error>())?;
    m.add("VerifierError", m.py().get_type::<VerifierError>())?;
    m.add("MAX_COMPONENTS", xc::MAX_COMPONENTS)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
