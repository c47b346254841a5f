//! A chain's record, and the owners of a libxdp dispatcher's programs: the
//! text that pins.rs keeps in frozen maps, as plain data. Each begins with a
//! magic line that names its version.

use std::collections::HashMap;

use crate::attach::AttachMode;
use crate::component::Verdicts;
use crate::owner::{Owner, Stamp};
use crate::plan::Mode;

/// The first line of a chain's record: version 5 adds why a chain that
/// would have been dynamic is static, version 4 each component's row in the
/// counters (its id until then) and its flags (traceable), version 3 the
/// digest of its declaration; older records are read as without them.
const MAGIC: &str = "xdpchain-state 6";
const MAGIC_V5: &str = "xdpchain-state 5";
const MAGIC_V4: &str = "xdpchain-state 4";
const MAGIC_V3: &str = "xdpchain-state 3";
const MAGIC_V2: &str = "xdpchain-state 2";
/// A component's flags: kept a function of its own.
const FLAG_TRACEABLE: u32 = 1;
/// The first line of the owners of a libxdp dispatcher's programs.
const OWNERS_MAGIC: &str = "xdpchain-libxdp-owners 1";

/// How a chain is built and attached, kept from one operation to the next.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub mode: AttachMode,
    /// Static or Dynamic.
    pub kind: Mode,
    pub counting: bool,
    /// The tag the next component added gets; tags are never reused.
    pub next_tag: u64,
    /// Why the chain is static where the mode asked (auto) would have made
    /// it dynamic: the kernel refused a component as an extension program.
    pub not_dynamic: Option<String>,
    /// Loaded bound to its interface since a component that reads RX
    /// metadata joined; it stays so until detached, as the extensions
    /// loaded bound can run nowhere else.
    pub device_bound: bool,
}

/// A chain's record: what it runs, and the root program that runs it.
#[derive(Debug)]
pub(crate) struct Record {
    pub prog_id: u32,
    pub settings: Settings,
    pub entries: Vec<Entry>,
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub id: u32,
    pub row: u32,
    pub tag: u64,
    pub priority: i32,
    pub continue_on: Verdicts,
    pub size: usize,
    pub stamp: Stamp,
    pub traceable: bool,
    pub program: String,
    pub source: String,
}

impl Entry {
    pub fn describe(&self) -> String {
        format!("{} (id {})", self.program, self.id)
    }
}

impl Record {
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{MAGIC}\nprog {}\nmode {}\nkind {}\ncounting {}\nnext-tag {}\nnot-dynamic {}\ndevice-bound {}\n",
            self.prog_id,
            self.settings.mode.name(),
            self.settings.kind.name(),
            self.settings.counting as u8,
            self.settings.next_tag,
            self.settings
                .not_dynamic
                .as_deref()
                .unwrap_or("-")
                .replace('\n', " "),
            self.settings.device_bound as u8
        );
        for e in &self.entries {
            s += &format!(
                "component {} {} {} {} {} {} {} {} {} {} {} {} {}\n",
                e.id,
                e.tag,
                e.row,
                e.priority,
                e.continue_on.bits(),
                e.size,
                e.stamp.owner.name(),
                e.stamp.owner.pid(),
                e.stamp.token,
                e.stamp.digest.as_deref().unwrap_or("-"),
                if e.traceable { FLAG_TRACEABLE } else { 0 },
                e.program,
                e.source.replace('\n', " ")
            );
        }
        s
    }

    pub fn parse(text: &str) -> Option<Record> {
        let mut lines = text.lines();
        let version = match lines.next()? {
            MAGIC => 6,
            MAGIC_V5 => 5,
            MAGIC_V4 => 4,
            MAGIC_V3 => 3,
            MAGIC_V2 => 2,
            _ => return None,
        };
        let mut field = |key: &str| {
            lines
                .next()?
                .strip_prefix(key)?
                .strip_prefix(' ')
                .map(str::to_string)
        };
        let prog_id = field("prog")?.parse().ok()?;
        let mode = match field("mode")?.as_str() {
            "skb" => AttachMode::Skb,
            _ => AttachMode::Native,
        };
        let kind = Mode::parse(&field("kind")?).ok()?;
        let counting = field("counting")? == "1";
        let next_tag = field("next-tag")?.parse().ok()?;
        let not_dynamic = match version {
            5.. => optional(&field("not-dynamic")?),
            _ => None,
        };
        let device_bound = match version {
            6 => field("device-bound")? == "1",
            _ => false,
        };
        let entries = text
            .lines()
            .filter_map(|l| l.strip_prefix("component "))
            .map(|l| {
                let mut p = l.splitn([10, 11, 13, 13, 13][version - 2], ' ');
                let id = p.next()?.parse().ok()?;
                let tag = p.next()?.parse().ok()?;
                Some(Entry {
                    id,
                    tag,
                    row: match version {
                        4.. => p.next()?.parse().ok()?,
                        _ => id,
                    },
                    priority: p.next()?.parse().ok()?,
                    continue_on: Verdicts::from_bits(p.next()?.parse().ok()?),
                    size: p.next()?.parse().ok()?,
                    stamp: Stamp {
                        owner: Owner::recorded(p.next()?.to_string(), p.next()?.parse().ok()?),
                        token: p.next()?.parse().ok()?,
                        digest: match version {
                            2 => None,
                            _ => optional(p.next()?),
                        },
                    },
                    traceable: match version {
                        4.. => p.next()?.parse::<u32>().ok()? & FLAG_TRACEABLE != 0,
                        _ => false,
                    },
                    program: p.next()?.to_string(),
                    source: p.next()?.to_string(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Record {
            prog_id,
            settings: Settings {
                mode,
                kind,
                counting,
                next_tag,
                not_dynamic,
                device_bound,
            },
            entries,
        })
    }
}

/// The owners of a libxdp dispatcher's programs that `text` records, by
/// program id (none if it is not such a record).
pub(crate) fn parse_owners(text: &str) -> HashMap<u32, Stamp> {
    let mut lines = text.trim_end_matches('\0').lines();
    if lines.next() != Some(OWNERS_MAGIC) {
        return HashMap::new();
    }
    lines
        .filter_map(|l| {
            let mut p = l.split(' ');
            let id = p.next()?.parse().ok()?;
            let owner = Owner::recorded(p.next()?.to_string(), p.next()?.parse().ok()?);
            let token = p.next()?.parse().ok()?;
            // Absent from records of before digests.
            let digest = p.next().and_then(optional);
            Some((
                id,
                Stamp {
                    owner,
                    token,
                    digest,
                },
            ))
        })
        .collect()
}

/// The record of `owners`, as [`parse_owners`] reads it.
pub(crate) fn owners_text(owners: &HashMap<u32, Stamp>) -> String {
    let mut text = format!("{OWNERS_MAGIC}\n");
    for (id, s) in owners {
        text += &format!(
            "{id} {} {} {} {}\n",
            s.owner.name(),
            s.owner.pid(),
            s.token,
            s.digest.as_deref().unwrap_or("-")
        );
    }
    text
}

/// A recorded field that may be absent: `-` for none.
fn optional(field: &str) -> Option<String> {
    (field != "-").then(|| field.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_through_text() {
        let r = Record {
            prog_id: 42,
            settings: Settings {
                mode: AttachMode::Skb,
                kind: Mode::Dynamic,
                counting: false,
                next_tag: 7,
                not_dynamic: Some("the kernel refused a.o:x as an extension program: why".into()),
                device_bound: true,
            },
            entries: vec![Entry {
                id: 6,
                row: 3,
                tag: 6,
                priority: -5,
                continue_on: Verdicts::from_bits(0b10100),
                size: 1234,
                stamp: Stamp {
                    owner: Owner::recorded("fw-daemon".into(), 4321),
                    token: 99,
                    digest: Some("0123abcd".into()),
                },
                traceable: true,
                program: "xdp_fw".into(),
                source: "/opt/my objects/fw.o".into(),
            }],
        };
        let back = Record::parse(&r.to_text()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{r:?}"));
        assert!(Record::parse("something else\n").is_none());
        let v5 = "xdpchain-state 5\nprog 1\nmode native\nkind static\ncounting 1\nnext-tag 1\n\
                  not-dynamic -\ncomponent 0 0 0 50 4 10 fw 7 9 - 0 xdp_fw /a b.o\n";
        let v5 = Record::parse(v5).unwrap();
        assert!(!v5.settings.device_bound && v5.entries[0].program == "xdp_fw");
        let v2 = "xdpchain-state 2\nprog 1\nmode native\nkind static\ncounting 1\nnext-tag 1\n\
                  component 0 0 50 4 10 fw 7 9 xdp_fw /a b.o\n";
        let e = &Record::parse(v2).unwrap().entries[0];
        assert_eq!(
            (e.stamp.digest.as_deref(), e.source.as_str(), e.traceable),
            (None, "/a b.o", false)
        );
        let v3 = "xdpchain-state 3\nprog 1\nmode native\nkind static\ncounting 1\nnext-tag 1\n\
                  component 0 0 50 4 10 fw 7 9 - xdp_fw /a b.o\n";
        let e = &Record::parse(v3).unwrap().entries[0];
        assert_eq!((e.program.as_str(), e.traceable), ("xdp_fw", false));
        assert_eq!(
            (e.id, e.row),
            (0, 0),
            "before version 4, the id was the row"
        );
    }

    #[test]
    fn owners_round_trip_through_text() {
        let owners: HashMap<u32, Stamp> = [(
            17,
            Stamp {
                owner: Owner::recorded("probe".into(), 77),
                token: 5,
                digest: None,
            },
        )]
        .into();
        let back = parse_owners(&owners_text(&owners));
        assert_eq!(back, owners);
        assert!(parse_owners("xdpchain-state 2\n17 probe 77 5\n").is_empty());
        let old = parse_owners("xdpchain-libxdp-owners 1\n17 probe 77 5\n");
        assert_eq!(old[&17].digest, None);
    }

    /// A record cut or changed by hand is no record: nothing of it is
    /// taken, rather than a chain with some components lost.
    #[test]
    fn a_damaged_record_is_refused_whole() {
        let good = "xdpchain-state 4\nprog 9\nmode native\nkind dynamic\ncounting 1\n\
                    next-tag 3\ncomponent 2 2 1 50 4 10 fw 7 9 - 0 xdp_fw /a.o\n";
        let r = Record::parse(good).unwrap();
        assert_eq!(
            (r.prog_id, r.settings.kind, r.entries[0].row),
            (9, Mode::Dynamic, 1)
        );
        for bad in [
            good.replace("prog 9", "prog nine"),
            good.replace("kind dynamic", "kind fast"),
            good.replace("next-tag 3\n", ""),
            good.replace(" 50 ", " fifty "),
            good.replace(" - 0 xdp_fw /a.o", ""),
            good[..good.len() / 2].to_string(),
        ] {
            assert!(Record::parse(&bad).is_none(), "{bad}");
        }
    }

    /// Text from another chain's record or garbage gives no owners; a line
    /// that does not parse is skipped, the rest kept.
    #[test]
    fn owners_of_bad_lines_are_skipped() {
        let text = "xdpchain-libxdp-owners 1\n17 probe 77 5 -\nx y z\n18 fw 1\n19 fw 2 3 ab\0\0";
        let owners = parse_owners(text);
        let mut ids: Vec<u32> = owners.keys().copied().collect();
        ids.sort();
        assert_eq!(ids, [17, 19]);
        assert_eq!(owners[&19].digest.as_deref(), Some("ab"));
    }
}
