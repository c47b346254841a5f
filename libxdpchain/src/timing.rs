//! Timing components on request. The root (bpf/chain.h, or the root that
//! inline.rs generates) reads a deadline from the chain's control map once
//! per packet; while the clock is below it, it times each component. A
//! reader keeps pushing the deadline a lease ahead; when the last reader
//! stops, killed or not, the deadline passes and the root turns timing
//! off, as the kernel's own statistics stop with the last holder of
//! `BPF_ENABLE_STATS`. Nothing is reloaded either way.

use std::os::fd::AsFd;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::attach::{self, Interface};
use crate::error::{Error, Result};
use crate::inspect;
use crate::root;
use crate::sys::{ktime_ns, MappedValue};

/// How long timing stays on after the last renewal; [`Timing`] renews
/// every third of it.
pub const TIMING_LEASE: Duration = Duration::from_secs(3);

/// Pushes the timing deadline of the chain on `iface` to `lease` from now
/// (never back). Ok(false) where it cannot time: a chain without counters,
/// in libxdp's layout, or another loader's program.
pub(crate) fn renew(iface: &Interface, lease: Duration) -> Result<bool> {
    let Some(seen) = attach::observe(iface)? else {
        return Err(Error::NoChain(iface.name.clone()));
    };
    let found = inspect::config_of(seen.fd.as_fd())?;
    let Some(ctl) = found.filter(|f| f.config.counting).and_then(|f| f.ctl) else {
        return Ok(false);
    };
    push(
        &MappedValue::new(ctl.as_fd())?,
        root::CTL_TIMING_UNTIL,
        lease,
    );
    Ok(true)
}

/// Pushes the deadline at `off` of the control word to `lease` from now,
/// never back. Readers race only in pushing it on; the root clears it once
/// passed, which a reader's push then undoes, as it should.
pub(crate) fn push(ctl: &MappedValue, off: usize, lease: Duration) {
    let wanted = ktime_ns().saturating_add(lease.as_nanos() as u64);
    if wanted > ctl.load_u64(off) {
        ctl.store_u64(off, wanted);
    }
}

/// Renews the chains `iface` names (every chain of this network namespace
/// with None); an interface without a chain is no error then.
fn renew_all(iface: Option<&Interface>, lease: Duration) -> Result<usize> {
    let Some(iface) = iface else {
        let mut timed = 0;
        for index in inspect::interfaces()? {
            match Interface::resolve(&index.to_string()).and_then(|i| renew(&i, lease)) {
                Ok(t) => timed += usize::from(t),
                Err(Error::NoChain(_)) | Err(Error::UnknownInterface(_)) => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(timed);
    };
    match renew(iface, lease)? {
        true => Ok(1),
        false => Err(Error::NotCounting {
            iface: iface.name.clone(),
            what: "time its components",
        }),
    }
}

/// Keeps the components of chains timed while it lives: their counters'
/// `run_time_ns` and `run_cnt` grow. Timing stops at most
/// [`TIMING_LEASE`] after the last `Timing` of a chain is dropped or its
/// process dies. Chains rebuilt meanwhile are timed from the next renewal.
pub struct Timing {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Timing {
    /// Times the chain on `iface`, or every chain of this network
    /// namespace (also those attached later) with None. The first renewal
    /// happens before this returns, so that its errors are the caller's:
    /// an unknown interface, no chain there, or a chain that cannot time.
    /// Renewals run in a thread of this process, in its network namespace.
    pub fn start(iface: Option<&str>) -> Result<Timing> {
        Timing::on(iface.map(Interface::resolve).transpose()?)
    }

    pub(crate) fn on(iface: Option<Interface>) -> Result<Timing> {
        renew_all(iface.as_ref(), TIMING_LEASE)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("xdpchain-timing".into())
            .spawn(move || loop {
                match stopped.recv_timeout(TIMING_LEASE / 3) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                // A chain detached or rebuilt without a control map meanwhile
                // is no reason to stop timing the others.
                if let Err(e) = renew_all(iface.as_ref(), TIMING_LEASE) {
                    log::debug!("timing not renewed: {e}");
                }
            })
            .map_err(|e| Error::os("start the timing thread", e))?;
        Ok(Timing {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Timing {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
