//! Python bindings of libxdpchain: the `xdpchain._xdpchain` extension,
//! wrapped by the pure-Python package `xdpchain`. A thin layer over the Rust
//! core; loading, linking and attaching run with the GIL released.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, TryLockError};

use ::xdpchain as xc;
use pyo3::create_exception;
use pyo3::exceptions::{
    PyFileNotFoundError, PyLookupError, PyOSError, PyPermissionError, PyRuntimeError, PyValueError,
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

/// The Python exception for a core error: Python's own where one fits.
fn py_err(e: xc::Error) -> PyErr {
    use xc::Error as E;
    let msg = e.to_string();
    let errno = e.errno();
    match e {
        E::PermissionDenied { .. } | E::UnsafePinDir { .. } => {
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

/// A component from a path (str or os.PathLike) or from bytes.
fn component(
    obj: &Bound<'_, PyAny>,
    program: Option<&str>,
    priority: Option<i32>,
    continue_on: Option<&Bound<'_, PyAny>>,
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
    Ok(c)
}

/// One component of a chain, in run order.
#[pyclass(module = "xdpchain", frozen, get_all)]
struct Component {
    /// Stable while the component stays in the chain.
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
    /// before loading.
    program_id: Option<u32>,
    /// Packets by verdict ("aborted", "drop", "pass", "tx", "redirect",
    /// "other"); None before loading or with counting off.
    counters: Option<Py<PyDict>>,
}

#[pymethods]
impl Component {
    fn __repr__(&self) -> String {
        format!(
            "Component(id={}, slot={}, name={:?}, priority={})",
            self.id, self.slot, self.name, self.priority
        )
    }
}

/// A chain of XDP programs for one interface (or for a file).
#[pyclass(module = "xdpchain")]
struct Chain {
    /// Taken without waiting: a thread that waited for it holding the GIL
    /// would block the holder, which needs the GIL back to return.
    inner: Mutex<xc::Chain>,
    ifname: Option<String>,
}

impl Chain {
    fn lock(&self) -> PyResult<MutexGuard<'_, xc::Chain>> {
        match self.inner.try_lock() {
            Ok(g) => Ok(g),
            Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
            Err(TryLockError::WouldBlock) => Err(PyRuntimeError::new_err(
                "the chain is in use by another thread",
            )),
        }
    }

    fn iface(&self) -> PyResult<String> {
        self.ifname
            .clone()
            .ok_or_else(|| PyValueError::new_err("the chain was opened without an interface"))
    }
}

#[pymethods]
impl Chain {
    #[new]
    #[pyo3(signature = (ifname=None, *, mode="auto", counters=true, pin_root=None))]
    fn new(
        ifname: Option<String>,
        mode: &str,
        counters: bool,
        pin_root: Option<String>,
    ) -> PyResult<Self> {
        if let Some(name) = &ifname {
            xc::Interface::resolve(name).map_err(py_err)?;
        }
        let mut inner = xc::Chain::new();
        inner.set_mode(self::mode(mode)?);
        inner.set_counting(counters);
        if let Some(root) = pin_root {
            inner.set_pin_root(root);
        }
        Ok(Chain {
            inner: Mutex::new(inner),
            ifname,
        })
    }

    /// Chain.open(ifname=None, *, mode="auto", counters=True, pin_root=None)
    #[staticmethod]
    #[pyo3(signature = (ifname=None, *, mode="auto", counters=true, pin_root=None))]
    fn open(
        ifname: Option<String>,
        mode: &str,
        counters: bool,
        pin_root: Option<String>,
    ) -> PyResult<Self> {
        Chain::new(ifname, mode, counters, pin_root)
    }

    /// Adds a component; returns its id.
    #[pyo3(signature = (obj, *, program=None, priority=None, continue_on=None))]
    fn add_program(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        program: Option<&str>,
        priority: Option<i32>,
        continue_on: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u32> {
        let c = component(obj, program, priority, continue_on)?;
        let inner = &mut *self.lock()?;
        py.allow_threads(|| inner.add(c))
            .map(|id| id.0)
            .map_err(py_err)
    }

    /// Removes the component `id`.
    fn remove(&self, py: Python<'_>, id: u32) -> PyResult<()> {
        let inner = &mut *self.lock()?;
        py.allow_threads(|| inner.remove(xc::ComponentId(id)))
            .map(drop)
            .map_err(py_err)
    }

    /// Puts another program in run-order position `slot`, atomically.
    #[pyo3(signature = (slot, obj, *, program=None, continue_on=None))]
    fn replace_slot(
        &self,
        py: Python<'_>,
        slot: usize,
        obj: &Bound<'_, PyAny>,
        program: Option<&str>,
        continue_on: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let inner = &mut *self.lock()?;
        let id = inner.at_slot(slot).map_err(py_err)?;
        let c = component(obj, program, None, continue_on)?;
        py.allow_threads(|| inner.replace_slot(id, c))
            .map(drop)
            .map_err(py_err)
    }

    /// Loads the chain and attaches it to its interface.
    #[pyo3(signature = (*, skb=false, force=false))]
    fn attach(&self, py: Python<'_>, skb: bool, force: bool) -> PyResult<()> {
        let iface = self.iface()?;
        let opts = xc::AttachOptions {
            mode: if skb {
                xc::AttachMode::Skb
            } else {
                xc::AttachMode::Native
            },
            force,
        };
        let inner = &mut *self.lock()?;
        py.allow_threads(|| inner.attach(&iface, opts))
            .map_err(py_err)
    }

    /// Links the chain into one program: written to `path`, or (without
    /// one) loaded and attached as `attach` does.
    #[pyo3(signature = (path=None, *, skb=false, force=false))]
    fn link_static(
        &self,
        py: Python<'_>,
        path: Option<PathBuf>,
        skb: bool,
        force: bool,
    ) -> PyResult<()> {
        {
            let inner = &mut *self.lock()?;
            if let Some(path) = path {
                return py.allow_threads(move || inner.write(path)).map_err(py_err);
            }
            if inner.program_fd().is_some() && inner.mode() != xc::Mode::Static {
                return Err(PyValueError::new_err(
                    "the chain is already loaded, dynamically",
                ));
            }
            inner.set_mode(xc::Mode::Static);
        }
        self.attach(py, skb, force)
    }

    /// Detaches the chain from its interface.
    fn detach(&self) -> PyResult<()> {
        self.lock()?.detach().map_err(py_err)
    }

    /// Whether the chain is attached (by this object).
    #[getter]
    fn attached(&self) -> PyResult<bool> {
        Ok(self.lock()?.interface().is_some())
    }

    /// The interface name given to open(), or None.
    #[getter]
    fn ifname(&self) -> Option<String> {
        self.ifname.clone()
    }

    /// "static" or "dynamic" once loaded; before, the mode asked for.
    #[getter]
    fn mode(&self) -> PyResult<&'static str> {
        Ok(self.lock()?.mode().name())
    }

    /// The components in run order.
    #[getter]
    fn components(&self, py: Python<'_>) -> PyResult<Vec<Component>> {
        let inner = self.lock()?;
        let status = match inner.program_fd() {
            Some(_) => Some(inner.status().map_err(py_err)?),
            None => None,
        };
        let mut out = Vec::new();
        for (slot, (id, c)) in inner.components().into_iter().enumerate() {
            let st = status
                .as_ref()
                .and_then(|s| s.components.iter().find(|s| s.id == id.0));
            let names: Vec<&str> = c.continue_on().iter().map(|v| v.name()).collect();
            let counters = match st.and_then(|s| s.counters) {
                Some(k) => {
                    let d = PyDict::new(py);
                    for v in xc::Verdict::ALL {
                        d.set_item(v.name(), k.verdict(v))?;
                    }
                    d.set_item("other", k.other)?;
                    Some(d.unbind())
                }
                None => None,
            };
            out.push(Component {
                id: id.0,
                slot,
                name: c.program().to_string(),
                priority: c.priority(),
                continue_on: PyFrozenSet::new(py, &names)?.unbind(),
                program_id: st.and_then(|s| s.program_id),
                counters,
            });
        }
        Ok(out)
    }

    /// The fd of a component's map, by its name in the component's object
    /// (".data", ".bss" for global variables). Owned by the chain.
    fn map_fd(&self, id: u32, name: &str) -> PyResult<i32> {
        use std::os::fd::AsRawFd;
        self.lock()?
            .map_fd(xc::ComponentId(id), name)
            .map(|fd| fd.as_raw_fd())
            .map_err(py_err)
    }

    /// Runs the loaded chain once on `packet` (BPF_PROG_TEST_RUN); returns
    /// the verdict.
    fn test_run(&self, packet: &[u8]) -> PyResult<u32> {
        self.lock()?
            .test_run(packet, 1)
            .map(|(v, _)| v)
            .map_err(py_err)
    }

    /// Detaches the chain if this object attached it.
    fn close(&self) -> PyResult<()> {
        let mut inner = self.lock()?;
        if inner.interface().is_some() {
            inner.detach().map_err(py_err)?;
        }
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close()?;
        Ok(false)
    }
}

/// What `xdpchain status [IFACE] [--json]` prints.
#[pyfunction]
#[pyo3(signature = (ifname=None, json=false))]
fn status_report(py: Python<'_>, ifname: Option<String>, json: bool) -> PyResult<String> {
    let chains = py
        .allow_threads(|| match &ifname {
            Some(i) => xc::status(i).map(|s| vec![s]),
            None => xc::list(),
        })
        .map_err(py_err)?;
    Ok(xc::status_report(&chains, json))
}

#[pymodule]
fn _xdpchain(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Chain>()?;
    m.add_class::<Component>()?;
    m.add_function(wrap_pyfunction!(status_report, m)?)?;
    m.add("Error", m.py().get_type::<Error>())?;
    m.add("VerifierError", m.py().get_type::<VerifierError>())?;
    m.add("MAX_COMPONENTS", xc::MAX_COMPONENTS)?;
    Ok(())
}
