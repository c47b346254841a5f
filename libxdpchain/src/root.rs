//! The root program (bpf/root.bpf.c, compiled by build.rs) and the layout of
//! its read-only config, which both steers the packet path and describes the
//! chain to any process that finds it attached.

use std::mem::{offset_of, size_of};

use crate::component::Verdicts;

pub(crate) static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/root.bpf.o"));
/// The root of open chains: global slots that extension programs may replace.
pub(crate) static OBJECT_OPEN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/root_open.bpf.o"));

pub const MAX_COMPONENTS: usize = 64;
pub(crate) const NAME_LEN: usize = 32;
pub(crate) const CONFIG_SECTION: &str = ".rodata.xdpc";
pub(crate) const STATS_MAP: &str = "xdpchain_stats";
/// The control word that readers write (`struct xdpchain_ctl`): its own
/// section, hence its own map, which the root reads once per packet.
pub(crate) const CTL_SECTION: &str = ".data.xdpctl";
/// The variable in it, which a written object's generated root refers to.
pub(crate) const CTL_VAR: &str = "xdpchain_ctl";
/// The ring of packets dumped (`struct xdpchain_packet` records).
pub(crate) const DUMP_MAP: &str = "xdpchain_dump";
/// The root's functions that start and take a dump, which generated roots
/// call too.
pub(crate) const DUMP_START_FN: &str = "xdpchain_dump_start";
pub(crate) const DUMP_SLOT_FN: &str = "xdpchain_dump_slot";

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

pub(crate) const CTL_TIMING_UNTIL: usize = offset_of!(RawCtl, timing_until);
pub(crate) const CTL_DUMP_UNTIL: usize = offset_of!(RawCtl, dump_until);
pub(crate) const CTL_DUMP_SLOT: usize = offset_of!(RawCtl, dump_slot);
pub(crate) const CTL_DUMP_EXIT: usize = offset_of!(RawCtl, dump_exit);
pub(crate) const CTL_DUMP_SNAPLEN: usize = offset_of!(RawCtl, dump_snaplen);
pub(crate) const CTL_DUMP_LOST: usize = offset_of!(RawCtl, dump_lost);

/// `struct xdpchain_packet` (bpf/chain.h): a header, then the bytes.
#[repr(C)]
struct RawPacket {
    ktime_ns: u64,
    len: u32,
    caplen: u32,
    slot: u32,
    verdict: u32,
}

pub(crate) const PACKET_KTIME: usize = offset_of!(RawPacket, ktime_ns);
pub(crate) const PACKET_LEN: usize = offset_of!(RawPacket, len);
pub(crate) const PACKET_CAPLEN: usize = offset_of!(RawPacket, caplen);
pub(crate) const PACKET_VERDICT: usize = offset_of!(RawPacket, verdict);
pub(crate) const PACKET_DATA: usize = size_of::<RawPacket>();
/// The most bytes of a packet a dump takes (XDPCHAIN_SNAP_MAX).
pub const SNAP_MAX: u32 = 2048;
/// The verdict of a packet dumped as its component receives it.
pub(crate) const DUMP_ENTRY: u32 = u32::MAX;
pub(crate) const PROG_NAME: &str = "xdpchain_root";
const MAGIC: u32 = 0x7864_7063; // "xdpc"
const VERSION: u32 = 1;
pub(crate) const F_COUNT: u32 = 1;
/// What a slot without an extension returns (bpf/slot.h), which every
/// continue set holds.
pub(crate) const EMPTY_SLOT_VERDICT: u32 = 31;

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
}

const OFF_MAGIC: usize = offset_of!(RawConfig, magic);
const OFF_VERSION: usize = offset_of!(RawConfig, version);
const OFF_NUM: usize = offset_of!(RawConfig, num_components);
const OFF_FLAGS: usize = offset_of!(RawConfig, flags);
const OFF_CONTINUE: usize = offset_of!(RawConfig, continue_on);
const OFF_STAT: usize = offset_of!(RawConfig, stat_index);
const OFF_PRIO: usize = offset_of!(RawConfig, priority);
const OFF_NAME: usize = offset_of!(RawConfig, name);
pub(crate) const CONFIG_SIZE: usize = size_of::<RawConfig>();

/// Words per CPU in a row of `xdpchain_stats` (`struct xdpchain_stats`):
/// one per verdict, one for other return values, then the nanoseconds and
/// packets timed.
pub(crate) const STATS_WORDS: usize = 8;
pub(crate) const STATS_OTHER: usize = 5;
pub(crate) const STATS_RUN_NS: usize = 6;
pub(crate) const STATS_RUN_CNT: usize = 7;

pub(crate) const SLOT_PREFIX: &str = "xdpchain_slot_";

pub(crate) fn slot_function(slot: usize) -> String {
    format!("{SLOT_PREFIX}{slot}")
}

/// One slot of the config, in run order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SlotConfig {
    pub name: String,
    pub priority: i32,
    pub continue_on: Verdicts,
    pub stat_index: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Config {
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
            put(&mut b, OFF_PRIO + 4 * i, s.priority as u32);
            let name = s.name.as_bytes();
            let n = name.len().min(NAME_LEN - 1);
            b[OFF_NAME + NAME_LEN * i..][..n].copy_from_slice(&name[..n]);
        }
        b
    }

    /// Reads a config back from the root's map; None if it is not ours.
    pub fn from_bytes(b: &[u8]) -> Option<Config> {
        if b.len() < CONFIG_SIZE || get(b, OFF_MAGIC) != MAGIC || get(b, OFF_VERSION) != VERSION {
            return None;
        }
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
    use crate::btf::{Btf, Kind};
    use object::{Object as _, ObjectSection as _};

    /// The Rust offsets must match what clang laid out for the C struct.
    #[test]
    fn layout_matches_btf() {
        let file = object::File::parse(OBJECT).unwrap();
        let btf = Btf::parse(file.section_by_name(".BTF").unwrap().data().unwrap()).unwrap();
        let st = btf
            .types()
            .find(|t| t.kind == Kind::Struct && btf.name(t) == "xdpchain_config")
            .expect("struct xdpchain_config in BTF");
        assert_eq!(st.size_type as usize, CONFIG_SIZE);
        let offsets: Vec<(String, u32)> = btf
            .members(&st)
            .iter()
            .map(|&(n, _)| btf.str_at(n).to_string())
            .zip(btf.member_offsets(&st))
            .collect();
        let expect = [
            ("magic", OFF_MAGIC),
            ("version", OFF_VERSION),
            ("num_components", OFF_NUM),
            ("flags", OFF_FLAGS),
            ("continue_on", OFF_CONTINUE),
            ("stat_index", OFF_STAT),
            ("priority", OFF_PRIO),
            ("name", OFF_NAME),
        ];
        for ((name, bits), (ename, eoff)) in offsets.iter().zip(expect) {
            assert_eq!((name.as_str(), *bits as usize), (ename, eoff * 8));
        }
        let sec = btf
            .types()
            .find(|t| t.kind == Kind::Datasec && btf.name(t) == CONFIG_SECTION);
        assert!(sec.is_some(), "config lives in {CONFIG_SECTION}");
    }

    /// The control word as clang laid it out.
    #[test]
    fn ctl_layout_matches_btf() {
        let file = object::File::parse(OBJECT).unwrap();
        let btf = Btf::parse(file.section_by_name(".BTF").unwrap().data().unwrap()).unwrap();
        let layout = |name: &str| {
            let st = btf
                .types()
                .find(|t| t.kind == Kind::Struct && btf.name(t) == name)
                .unwrap_or_else(|| panic!("struct {name} in BTF"));
            let members: Vec<(String, usize)> = btf
                .members(&st)
                .iter()
                .map(|&(n, _)| btf.str_at(n).to_string())
                .zip(btf.member_offsets(&st).into_iter().map(|b| b as usize / 8))
                .collect();
            (members, st.size_type as usize)
        };
        let own = |v: &[(&str, usize)]| -> Vec<(String, usize)> {
            v.iter().map(|(n, o)| (n.to_string(), *o)).collect()
        };
        let (ctl, size) = layout("xdpchain_ctl");
        assert_eq!(size, size_of::<RawCtl>());
        assert_eq!(
            ctl,
            own(&[
                ("timing_until", CTL_TIMING_UNTIL),
                ("dump_until", CTL_DUMP_UNTIL),
                ("dump_slot", CTL_DUMP_SLOT),
                ("dump_exit", CTL_DUMP_EXIT),
                ("dump_snaplen", CTL_DUMP_SNAPLEN),
                ("dump_lost", CTL_DUMP_LOST),
            ])
        );
        // struct xdpchain_packet has no BTF (only pointers to it are
        // locals): tests/dump.rs reads every field of real records.
    }

    #[test]
    fn config_round_trips() {
        let c = Config {
            counting: true,
            slots: vec![SlotConfig {
                name: "a_rather_long_program_name_that_is_cut".into(),
                priority: -3,
                continue_on: Verdicts::from_bits(0b101),
                stat_index: 7,
            }],
            always_continue: 1 << 31,
        };
        let back = Config::from_bytes(&c.to_bytes()).unwrap();
        assert_eq!(back.slots[0].name, "a_rather_long_program_name_that");
        assert_eq!(back.slots[0].priority, -3);
        assert_eq!(back.slots[0].stat_index, 7);
        assert!(back.counting);
    }
}
