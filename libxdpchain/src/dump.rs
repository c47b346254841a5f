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
use crate::plan::{find_key, ComponentKey};
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
    /// Dumps the packets of `component` of the chain on `iface`, at `at`,
    /// their first `snaplen` bytes (1 to [`root::SNAP_MAX`]). One dump at a
    /// time per chain.
    pub fn start(
        iface: &str,
        component: impl Into<ComponentKey>,
        at: DumpPoint,
        snaplen: u32,
    ) -> Result<Dump> {
        if !(1..=root::SNAP_MAX).contains(&snaplen) {
            return Err(Error::InvalidArgument(format!(
                "snap length {snaplen}: from 1 to {}",
                root::SNAP_MAX
            )));
        }
        // Roots leave capture out where the kernel cannot copy a packet's
        // bytes (one small program load tells, not the whole feature probe:
        // a dump runs as soon as it is asked for).
        if !crate::sys::xdp_helper(libbpf_sys::BPF_FUNC_xdp_load_bytes)? {
            return Err(Error::Unsupported(
                "dumps copy packets with bpf_xdp_load_bytes, which this kernel lacks (Linux 5.18 has it)".into(),
            ));
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
        // Spare slots, unnamed, hold no component of the config's.
        let slots = &found.config.slots;
        let named: Vec<usize> = (0..slots.len())
            .filter(|&i| !slots[i].name.is_empty())
            .collect();
        let ids_names = named.iter().map(|&i| (slots[i].id, slots[i].name.as_str()));
        let slot = named[find_key(ids_names, &component.into())?];

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as the root writes it: the header, then the bytes taken.
    #[test]
    fn records_are_read_within_their_bounds() {
        let mut r = vec![0u8; root::PACKET_DATA];
        r[root::PACKET_KTIME..][..8].copy_from_slice(&5_000u64.to_ne_bytes());
        r[root::PACKET_LEN..][..4].copy_from_slice(&1500u32.to_ne_bytes());
        r[root::PACKET_CAPLEN..][..4].copy_from_slice(&3u32.to_ne_bytes());
        r[root::PACKET_VERDICT..][..4].copy_from_slice(&root::DUMP_ENTRY.to_ne_bytes());
        r.extend([0xaa, 0xbb, 0xcc, 0xdd]);
        let boot = SystemTime::UNIX_EPOCH;
        let p = parse(&r, boot).unwrap();
        assert_eq!(
            (p.len, p.data.as_slice(), p.verdict),
            (1500, &[0xaa, 0xbb, 0xcc][..], None)
        );
        assert_eq!(p.time, boot + Duration::from_micros(5));
        r[root::PACKET_VERDICT..][..4].copy_from_slice(&2u32.to_ne_bytes());
        assert_eq!(parse(&r, boot).unwrap().verdict, Some(2));
        // A capture length past the record is no packet.
        r[root::PACKET_CAPLEN..][..4].copy_from_slice(&5u32.to_ne_bytes());
        assert!(parse(&r, boot).is_none());
        assert!(parse(&r[..root::PACKET_DATA - 1], boot).is_none());
    }
}
