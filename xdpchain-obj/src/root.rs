//! The layout of the root program's read-only config (bpf/chain.h in
//! libxdpchain), which both steers the packet path and describes the chain
//! to any process that finds it attached, and of what else the root shares
//! with user space: its control word, dumped packets and counters.

use std::mem::{offset_of, size_of};

use crate::verdict::Verdicts;

pub const MAX_COMPONENTS: usize = 64;
pub const NAME_LEN: usize = 32;
pub const CONFIG_SECTION: &str = ".rodata.xdpc";
pub const STATS_MAP: &str = "xdpchain_stats";
/// The control word that readers write (`struct xdpchain_ctl`): its own
/// section, hence its own map, which the root reads once per packet.
pub const CTL_SECTION: &str = ".data.xdpctl";
/// The variable in it, which a written object's generated root refers to.
pub const CTL_VAR: &str = "xdpchain_ctl";
/// The ring of packets dumped (`struct xdpchain_packet` records).
pub const DUMP_MAP: &str = "xdpchain_dump";
/// The root's functions that start and take a dump, which generated roots
/// call too.
pub const DUMP_START_FN: &str = "xdpchain_dump_start";
pub const DUMP_SLOT_FN: &str = "xdpchain_dump_slot";

/// `struct xdpchain_ctl` (bpf/chain.h); offsets checked against BTF.
#[repr(C)]
struct RawCtl {
    timing_until: u64,
    dump_until: u64,
    dump_slot: u32,
    dump_exit: u32,
    dump_snaplen: u32,
    dump_lost: u32,
}

pub const CTL_TIMING_UNTIL: usize = offset_of!(RawCtl, timing_until);
pub const CTL_DUMP_UNTIL: usize = offset_of!(RawCtl, dump_until);
pub const CTL_DUMP_SLOT: usize = offset_of!(RawCtl, dump_slot);
pub const CTL_DUMP_EXIT: usize = offset_of!(RawCtl, dump_exit);
pub const CTL_DUMP_SNAPLEN: usize = offset_of!(RawCtl, dump_snaplen);
pub const CTL_DUMP_LOST: usize = offset_of!(RawCtl, dump_lost);
pub const CTL_SIZE: usize = size_of::<RawCtl>();
/// The control word's fields and their offsets, which the root's BTF must
/// show.
pub const CTL_LAYOUT: [(&str, usize); 6] = [
    ("timing_until", CTL_TIMING_UNTIL),
    ("dump_until", CTL_DUMP_UNTIL),
    ("dump_slot", CTL_DUMP_SLOT),
    ("dump_exit", CTL_DUMP_EXIT),
    ("dump_snaplen", CTL_DUMP_SNAPLEN),
    ("dump_lost", CTL_DUMP_LOST),
];

/// `struct xdpchain_packet` (bpf/chain.h): a header, then the bytes.
#[repr(C)]
struct RawPacket {
    ktime_ns: u64,
    len: u32,
    caplen: u32,
    slot: u32,
    verdict: u32,
}

pub const PACKET_KTIME: usize = offset_of!(RawPacket, ktime_ns);
pub const PACKET_LEN: usize = offset_of!(RawPacket, len);
pub const PACKET_CAPLEN: usize = offset_of!(RawPacket, caplen);
pub const PACKET_VERDICT: usize = offset_of!(RawPacket, verdict);
pub const PACKET_DATA: usize = size_of::<RawPacket>();
/// The most bytes of a packet a dump takes (XDPCHAIN_SNAP_MAX).
pub const SNAP_MAX: u32 = 2048;
/// The verdict of a packet dumped as its component receives it.
pub const DUMP_ENTRY: u32 = u32::MAX;
pub const PROG_NAME: &str = "xdpchain_root";
const MAGIC: u32 = 0x7864_7063; // "xdpc"
/// Version 2 adds the components' ids; in version 1 a component's id was
/// its row in the counters.
const VERSION: u32 = 2;
pub const F_COUNT: u32 = 1;
/// What a slot without an extension returns (bpf/slot.h), which every
/// continue set holds.
pub const EMPTY_SLOT_VERDICT: u32 = 31;

/// `struct xdpchain_config` (bpf/chain.h), little-endian; its offsets are
/// checked against the root's BTF.
#[repr(C)]
struct RawConfig {
    magic: u32,
    version: u32,
    num_components: u32,
    flags: u32,
    continue_on: [u32; MAX_COMPONENTS],
    stat_index: [u32; MAX_COMPONENTS],
    priority: [i32; MAX_COMPONENTS],
    name: [[u8; NAME_LEN]; MAX_COMPONENTS],
    id: [u32; MAX_COMPONENTS],
}

const OFF_MAGIC: usize = offset_of!(RawConfig, magic);
const OFF_VERSION: usize = offset_of!(RawConfig, version);
const OFF_NUM: usize = offset_of!(RawConfig, num_components);
const OFF_FLAGS: usize = offset_of!(RawConfig, flags);
const OFF_CONTINUE: usize = offset_of!(RawConfig, continue_on);
const OFF_STAT: usize = offset_of!(RawConfig, stat_index);
const OFF_PRIO: usize = offset_of!(RawConfig, priority);
const OFF_NAME: usize = offset_of!(RawConfig, name);
const OFF_ID: usize = offset_of!(RawConfig, id);
pub const CONFIG_SIZE: usize = size_of::<RawConfig>();
/// The config's fields and their offsets, which the root's BTF must show.
pub const CONFIG_LAYOUT: [(&str, usize); 9] = [
    ("magic", OFF_MAGIC),
    ("version", OFF_VERSION),
    ("num_components", OFF_NUM),
    ("flags", OFF_FLAGS),
    ("continue_on", OFF_CONTINUE),
    ("stat_index", OFF_STAT),
    ("priority", OFF_PRIO),
    ("name", OFF_NAME),
    ("id", OFF_ID),
];
/// The config of version 1, which ended before the ids.
pub const CONFIG_V1_SIZE: usize = OFF_ID;

/// Words per CPU in a row of `xdpchain_stats` (`struct xdpchain_stats`):
/// one per verdict, one for other return values, then the nanoseconds and
/// packets timed.
pub const STATS_WORDS: usize = 8;
pub const STATS_OTHER: usize = 5;
pub const STATS_RUN_NS: usize = 6;
pub const STATS_RUN_CNT: usize = 7;

pub const SLOT_PREFIX: &str = "xdpchain_slot_";

pub fn slot_function(slot: usize) -> String {
    format!("{SLOT_PREFIX}{slot}")
}

/// One slot of the config, in run order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotConfig {
    pub name: String,
    pub priority: i32,
    pub continue_on: Verdicts,
    /// Its row in the counters, which a later component may take.
    pub stat_index: u32,
    /// The component's id, never given to another one.
    pub id: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub counting: bool,
    pub slots: Vec<SlotConfig>,
    /// Bits added to every continue set (not read back).
    pub always_continue: u32,
}

fn put(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn get(buf: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(buf[off..off + 4].try_into().unwrap())
}

impl Config {
    pub fn to_bytes(&self) -> Vec<u8> {
        assert!(self.slots.len() <= MAX_COMPONENTS);
        let mut b = vec![0u8; CONFIG_SIZE];
        put(&mut b, OFF_MAGIC, MAGIC);
        put(&mut b, OFF_VERSION, VERSION);
        put(&mut b, OFF_NUM, self.slots.len() as u32);
        put(&mut b, OFF_FLAGS, if self.counting { F_COUNT } else { 0 });
        for (i, s) in self.slots.iter().enumerate() {
            put(
                &mut b,
                OFF_CONTINUE + 4 * i,
                s.continue_on.bits() | self.always_continue,
            );
            put(&mut b, OFF_STAT + 4 * i, s.stat_index);
            put(&mut b, OFF_ID + 4 * i, s.id);
            put(&mut b, OFF_PRIO + 4 * i, s.priority as u32);
            let name = s.name.as_bytes();
            let n = name.len().min(NAME_LEN - 1);
            b[OFF_NAME + NAME_LEN * i..][..n].copy_from_slice(&name[..n]);
        }
        b
    }

    /// Reads a config back from the root's map (of a root of this
    /// version or the one before); None if it is not ours.
    pub fn from_bytes(b: &[u8]) -> Option<Config> {
        if b.len() < CONFIG_V1_SIZE || get(b, OFF_MAGIC) != MAGIC {
            return None;
        }
        let has_ids = match get(b, OFF_VERSION) {
            VERSION if b.len() >= CONFIG_SIZE => true,
            1 => false,
            _ => return None,
        };
        let n = (get(b, OFF_NUM) as usize).min(MAX_COMPONENTS);
        let slots = (0..n)
            .map(|i| {
                let raw = &b[OFF_NAME + NAME_LEN * i..][..NAME_LEN];
                let end = raw.iter().position(|&c| c == 0).unwrap_or(NAME_LEN);
                SlotConfig {
                    name: String::from_utf8_lossy(&raw[..end]).into_owned(),
                    priority: get(b, OFF_PRIO + 4 * i) as i32,
                    continue_on: Verdicts::from_bits(get(b, OFF_CONTINUE + 4 * i)),
                    stat_index: get(b, OFF_STAT + 4 * i),
                    id: get(b, if has_ids { OFF_ID } else { OFF_STAT } + 4 * i),
                }
            })
            .collect();
        Some(Config {
            counting: get(b, OFF_FLAGS) & F_COUNT != 0,
            slots,
            always_continue: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips() {
        let c = Config {
            counting: true,
            slots: vec![SlotConfig {
                name: "a_rather_long_program_name_that_is_cut".into(),
                priority: -3,
                continue_on: Verdicts::from_bits(0b101),
                stat_index: 7,
                id: 1234,
            }],
            always_continue: 1 << 31,
        };
        let back = Config::from_bytes(&c.to_bytes()).unwrap();
        assert_eq!(back.slots[0].name, "a_rather_long_program_name_that");
        assert_eq!(back.slots[0].priority, -3);
        assert_eq!((back.slots[0].stat_index, back.slots[0].id), (7, 1234));
        // A root of version 1, before ids: a component's id was its row.
        let mut v1 = c.to_bytes()[..OFF_ID].to_vec();
        put(&mut v1, OFF_VERSION, 1);
        assert_eq!(Config::from_bytes(&v1).unwrap().slots[0].id, 7);
        assert!(back.counting);
    }

    /// A config that is not ours, or of a version to come, is not read as
    /// one: another program's data says nothing of a chain.
    #[test]
    fn other_configs_are_not_read() {
        let c = Config {
            counting: false,
            slots: Vec::new(),
            always_continue: 0,
        };
        let good = c.to_bytes();
        assert_eq!(Config::from_bytes(&good), Some(c));
        let mut other = good.clone();
        put(&mut other, OFF_MAGIC, 0x1234);
        assert_eq!(Config::from_bytes(&other), None);
        let mut future = good.clone();
        put(&mut future, OFF_VERSION, VERSION + 1);
        assert_eq!(Config::from_bytes(&future), None);
        assert_eq!(Config::from_bytes(&good[..CONFIG_V1_SIZE - 1]), None);
        // More components than a root has rows are read as the most it has.
        let mut many = good;
        put(&mut many, OFF_NUM, 1000);
        assert_eq!(
            Config::from_bytes(&many).unwrap().slots.len(),
            MAX_COMPONENTS
        );
    }
}
