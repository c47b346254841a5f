//! A chain's record, and the owners of a libxdp dispatcher's programs: the
//! text that pins.rs keeps in frozen maps, as plain data. Each begins with a
//! magic line that names its version.

use std::collections::HashMap;

use crate::attach::AttachMode;
use crate::component::Verdicts;
use crate::owner::{Owner, Stamp};
use crate::plan::Mode;

/// The first line of a chain's record: version 3 adds the digest of each
/// component's declaration; version 2 records are read as without one.
const MAGIC: &str = "xdpchain-state 3";
const MAGIC_V2: &str = "xdpchain-state 2";
/// The first line of the owners of a libxdp dispatcher's programs.
const OWNERS_MAGIC: &str = "xdpchain-libxdp-owners 1";

/// How a chain is built and attached, kept from one operation to the next.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub mode: AttachMode,
    /// Static or Dynamic.
    pub kind: Mode,
    pub counting: bool,
    /// The tag the next component added gets; tags are never reused.
    pub next_tag: u64,
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
    pub tag: u64,
    pub priority: i32,
    pub continue_on: Verdicts,
    pub size: usize,
    pub stamp: Stamp,
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
            "{MAGIC}\nprog {}\nmode {}\nkind {}\ncounting {}\nnext-tag {}\n",
            self.prog_id,
            self.settings.mode.name(),
            self.settings.kind.name(),
            self.settings.counting as u8,
            self.settings.next_tag
        );
        for e in &self.entries {
            s += &format!(
                "component {} {} {} {} {} {} {} {} {} {} {}\n",
                e.id,
                e.tag,
                e.priority,
                e.continue_on.bits(),
                e.size,
                e.stamp.owner.name(),
                e.stamp.owner.pid(),
                e.stamp.token,
                e.stamp.digest.as_deref().unwrap_or("-"),
                e.program,
                e.source.replace('\n', " ")
            );
        }
        s
    }

    pub fn parse(text: &str) -> Option<Record> {
        let mut lines = text.lines();
        let v2 = match lines.next()? {
            MAGIC => false,
            MAGIC_V2 => true,
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
        let entries = text
            .lines()
            .filter_map(|l| l.strip_prefix("component "))
            .map(|l| {
                let mut p = l.splitn(if v2 { 10 } else { 11 }, ' ');
                Some(Entry {
                    id: p.next()?.parse().ok()?,
                    tag: p.next()?.parse().ok()?,
                    priority: p.next()?.parse().ok()?,
                    continue_on: Verdicts::from_bits(p.next()?.parse().ok()?),
                    size: p.next()?.parse().ok()?,
                    stamp: Stamp {
                        owner: Owner::recorded(p.next()?.to_string(), p.next()?.parse().ok()?),
                        token: p.next()?.parse().ok()?,
                        digest: match v2 {
                            true => None,
                            false => digest(p.next()?),
                        },
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
            let digest = p.next().and_then(digest);
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

/// A recorded digest; `-` for none.
fn digest(field: &str) -> Option<String> {
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
            },
            entries: vec![Entry {
                id: 3,
                tag: 6,
                priority: -5,
                continue_on: Verdicts::from_bits(0b10100),
                size: 1234,
                stamp: Stamp {
                    owner: Owner::recorded("fw-daemon".into(), 4321),
                    token: 99,
                    digest: Some("0123abcd".into()),
                },
                program: "xdp_fw".into(),
                source: "/opt/my objects/fw.o".into(),
            }],
        };
        let back = Record::parse(&r.to_text()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{r:?}"));
        assert!(Record::parse("something else\n").is_none());
        let v2 = "xdpchain-state 2\nprog 1\nmode native\nkind static\ncounting 1\nnext-tag 1\n\
                  component 0 0 50 4 10 fw 7 9 xdp_fw /a b.o\n";
        let e = &Record::parse(v2).unwrap().entries[0];
        assert_eq!(
            (e.stamp.digest.as_deref(), e.source.as_str()),
            (None, "/a b.o")
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
}
