//! The packets one component sees, as it receives them or as it leaves
//! them with its verdict, in every chain of our layout that counts (static,
//! generated root included, or dynamic). The root (bpf/chain.h, or the root
//! inline.rs generates) puts them in its ring (`xdpchain_dump`) only for
//! the component asked for, and only while a dump runs: as for timing, the
//! dumper keeps pushing a deadline in the control word, and the root stops
//! once it has passed, so a killed dumper stops the dump too.

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::attach::{self, Interface};
use crate::error::{Error, Result};
use crate::inspect;
use crate::root;
use crate::sys::{ktime_ns, MappedValue, RingBuffer};
use crate::timing::{push, TIMING_LEASE};

/// Where a dump takes packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpPoint {
    /// As the component receives them.
    Entry,
    /// As it leaves them, with its verdict.
    Exit,
}

/// One packet a dump took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// CLOCK_MONOTONIC when it was taken, in nanoseconds.
    pub ktime_ns: u64,
    /// The time of day when it was taken.
    pub time: SystemTime,
    /// The packet's length.
    pub len: u32,
    /// Its first bytes, up to the dump's snap length.
    pub data: Vec<u8>,
    /// The component's verdict, at its exit.
    pub verdict: Option<u32>,
}

/// A dump of one component's packets; it runs until dropped.
pub struct Dump {
    ring: RingBuffer,
    ctl: Arc<MappedValue>,
    /// The time of day at CLOCK_MONOTONIC 0.
    boot: SystemTime,
    pending: VecDeque<Packet>,
    iface: String,
    /// Set when the chain on the interface is no longer the one dumped.
    ended: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Dump {
    /// Dumps the packets of `component` (its id or its program's name) of
    /// the chain on `iface`, at `at`, their first `snaplen` bytes (1 to
    /// [`root::SNAP_MAX`]). One dump at a time per chain.
    pub fn start(iface: &str, component: &str, at: DumpPoint, snaplen: u32) -> Result<Dump> {
        if !(1..=root::SNAP_MAX).contains(&snaplen) {
            return Err(Error::InvalidArgument(format!(
                "snap length {snaplen}: from 1 to {}",
                root::SNAP_MAX
            )));
        }
        let iface = Interface::resolve(iface)?;
        let Some(seen) = attach::observe(&iface)? else {
            return Err(Error::NoChain(iface.name));
        };
        let not_counting = || Error::NotCounting {
            iface: iface.name.clone(),
            what: "dump packets",
        };
        let found = inspect::config_of(seen.fd.as_fd())?
            .filter(|f| f.config.counting)
            .ok_or_else(not_counting)?;
        let (Some(ctl), Some(ring)) = (&found.ctl, &found.dump) else {
            return Err(not_counting());
        };
        let slots = &found.config.slots;
        let by_id = component.parse::<u32>().ok().and_then(|id| {
            slots
                .iter()
                .position(|s| s.stat_index == id && !s.name.is_empty())
        });
        let slot = by_id
            .or_else(|| slots.iter().position(|s| s.name == component))
            .ok_or_else(|| Error::UnknownComponent(component.to_string()))?;

        let ctl = Arc::new(MappedValue::new(ctl.as_fd())?);
        if ctl.load_u64(root::CTL_DUMP_UNTIL) > ktime_ns() {
            return Err(Error::DumpBusy {
                iface: iface.name,
                reason: "another dump of this chain runs (one killed holds it for up to 3 s)"
                    .into(),
            });
        }
        let ring = RingBuffer::new(ring.as_fd())?;
        ctl.store_u32(root::CTL_DUMP_SLOT, slot as u32);
        ctl.store_u32(root::CTL_DUMP_EXIT, u32::from(at == DumpPoint::Exit));
        ctl.store_u32(root::CTL_DUMP_SNAPLEN, snaplen);
        push(&ctl, root::CTL_DUMP_UNTIL, TIMING_LEASE);

        let ended = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = {
            let (ctl, ended, iface, prog) = (ctl.clone(), ended.clone(), iface.clone(), seen.id);
            std::thread::Builder::new()
                .name("xdpchain-dump".into())
                .spawn(move || loop {
                    match stopped.recv_timeout(TIMING_LEASE / 3) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    // A rebuilt chain has a ring and a control word of its own.
                    if !matches!(attach::observe(&iface), Ok(Some(s)) if s.id == prog) {
                        ended.store(true, Ordering::Relaxed);
                        return;
                    }
                    push(&ctl, root::CTL_DUMP_UNTIL, TIMING_LEASE);
                })
                .map_err(|e| Error::os("start the dump thread", e))?
        };
        let since_boot = Duration::from_nanos(ktime_ns());
        Ok(Dump {
            ring,
            ctl,
            boot: SystemTime::now() - since_boot,
            pending: VecDeque::new(),
            iface: iface.name,
            ended,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The next packet, waiting at most `timeout` for one; Ok(None) if none
    /// came. An error once the chain was rebuilt (its ring is a new one).
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Packet>> {
        if self.pending.is_empty() {
            let ended = self.ended.load(Ordering::Relaxed);
            for record in self.ring.poll(timeout)? {
                self.pending.extend(parse(&record, self.boot));
            }
            if self.pending.is_empty() && ended {
                return Err(Error::DumpBusy {
                    iface: self.iface.clone(),
                    reason: "the chain was rebuilt, which ends the dump".into(),
                });
            }
        }
        Ok(self.pending.pop_front())
    }

    /// Packets the ring had no room for (since the chain was built).
    pub fn lost(&self) -> u64 {
        self.ctl.load_u32(root::CTL_DUMP_LOST).into()
    }
}

/// A record of the ring (`struct xdpchain_packet`); None if malformed.
fn parse(r: &[u8], boot: SystemTime) -> Option<Packet> {
    let u32_at = |off: usize| Some(u32::from_ne_bytes(r.get(off..off + 4)?.try_into().ok()?));
    let ktime = u64::from_ne_bytes(
        r.get(root::PACKET_KTIME..root::PACKET_KTIME + 8)?
            .try_into()
            .ok()?,
    );
    let caplen = u32_at(root::PACKET_CAPLEN)? as usize;
    let verdict = u32_at(root::PACKET_VERDICT)?;
    Some(Packet {
        ktime_ns: ktime,
        time: boot + Duration::from_nanos(ktime),
        len: u32_at(root::PACKET_LEN)?,
        data: r
            .get(root::PACKET_DATA..root::PACKET_DATA + caplen)?
            .to_vec(),
        verdict: (verdict != root::DUMP_ENTRY).then_some(verdict),
    })
}

impl Drop for Dump {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Ends it at once, rather than a lease later.
        if !self.ended.load(Ordering::Relaxed) {
            self.ctl.store_u64(root::CTL_DUMP_UNTIL, 0);
        }
    }
}
