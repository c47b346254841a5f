//! What one change did to an interface, program by program, so that every
//! front end can say it: what it added, removed and replaced, and what it
//! dropped of other owners and other loaders (as force lets it).
//!
//! A report is the difference between what ran before and after the
//! change, both read under the store's lock, so it holds for every layout.

use std::fmt;

use crate::owner::Owner;
use crate::plan::ComponentId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Added,
    /// The acting owner's component went.
    Removed,
    /// A component kept its id with another program in it.
    Replaced,
    /// Another owner's component, a component no record names, or another
    /// loader's program went (only force lets a change do this).
    Dropped,
}

impl Action {
    /// `added`, `removed`, `replaced` or `dropped`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Added => "added",
            Action::Removed => "removed",
            Action::Replaced => "replaced",
            Action::Dropped => "dropped",
        }
    }
}

/// A program as it ran before or runs after a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportedProgram {
    /// Its component id; None for another loader's program.
    pub id: Option<u32>,
    pub name: String,
    /// Who added it; None where no record says.
    pub owner: Option<Owner>,
    /// The kernel's id of the program that runs it: the chain's own for a
    /// linked component. None where the kernel does not tell.
    pub program_id: Option<u32>,
}

/// One program that came or went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changed {
    pub action: Action,
    /// What runs now; for Removed and Dropped, what ran.
    pub program: ReportedProgram,
    /// For Replaced, what ran in its place.
    pub replaced: Option<ReportedProgram>,
}

impl ReportedProgram {
    /// `NAME (program P, owner O)`: what a line says of it past its id.
    fn described(&self, owner: bool) -> String {
        let mut said = Vec::new();
        if let Some(p) = self.program_id {
            said.push(format!("program {p}"));
        }
        match (&self.owner, self.id) {
            (Some(o), _) if owner => said.push(format!("owner {}", o.name())),
            (None, None) if owner => said.push("another loader's".into()),
            _ => {}
        }
        match said.is_empty() {
            true => self.name.clone(),
            false => format!("{} ({})", self.name, said.join(", ")),
        }
    }
}

/// One line: `added component 3: fw (program 812, owner fw)`; a
/// replacement names what ran first: `replaced component 3: fw (program
/// 812) with fw (program 815, owner fw)`.
impl fmt::Display for Changed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.program;
        write!(f, "{} ", self.action.name())?;
        if let Some(id) = p.id {
            write!(f, "component {id}: ")?;
        }
        match &self.replaced {
            Some(was) => write!(f, "{} with {}", was.described(false), p.described(true)),
            None => write!(f, "{}", p.described(true)),
        }
    }
}

/// What one operation changed on one interface, in run order: what went
/// first, then what came.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub interface: String,
    pub changes: Vec<Changed>,
    /// Where the change made a chain static that the mode asked for (auto)
    /// would have made dynamic: why.
    pub not_dynamic: Option<String>,
}

impl Report {
    /// The report of going from `before` to `after` on `iface`, done by
    /// `owner`; `replaced`: the id the operation put a new program in.
    pub(crate) fn between(
        iface: &str,
        owner: &Owner,
        before: Vec<ReportedProgram>,
        after: &[ReportedProgram],
        replaced: Option<u32>,
    ) -> Report {
        let mine = |p: &ReportedProgram| {
            p.id.is_some() && p.owner.as_ref().map(Owner::name) == Some(owner.name())
        };
        let same = |a: &ReportedProgram, b: &ReportedProgram| match (a.id, b.id) {
            (Some(x), Some(y)) => x == y,
            _ => a.program_id == b.program_id,
        };
        let (mut gone, stayed): (Vec<ReportedProgram>, Vec<ReportedProgram>) = before
            .into_iter()
            .partition(|b| !after.iter().any(|a| same(a, b)));
        let mut changes = Vec::new();
        // A replacement in libxdp's layout is a new program under a new
        // id: the one program that went is what it replaced.
        let replaced_gone = match replaced {
            Some(id) if !stayed.iter().any(|s| s.id == Some(id)) && gone.len() == 1 => gone.pop(),
            _ => None,
        };
        for p in gone {
            let action = match mine(&p) {
                true => Action::Removed,
                false => Action::Dropped,
            };
            changes.push(Changed {
                action,
                program: p,
                replaced: None,
            });
        }
        for a in after {
            if replaced.is_some() && a.id == replaced {
                let was = replaced_gone
                    .clone()
                    .or_else(|| stayed.iter().find(|s| s.id == a.id).cloned());
                changes.push(Changed {
                    action: Action::Replaced,
                    program: a.clone(),
                    replaced: was,
                });
            } else if !stayed.iter().any(|s| same(a, s)) {
                changes.push(Changed {
                    action: Action::Added,
                    program: a.clone(),
                    replaced: None,
                });
            }
        }
        Report {
            interface: iface.to_string(),
            changes,
            not_dynamic: None,
        }
    }

    /// The components that the change added, in run order.
    pub fn added(&self) -> Vec<ComponentId> {
        self.ids(Action::Added)
    }

    /// The components that the change took out, the acting owner's and
    /// others'.
    pub fn removed(&self) -> Vec<ComponentId> {
        let mut ids = self.ids(Action::Removed);
        ids.extend(self.ids(Action::Dropped));
        ids
    }

    fn ids(&self, action: Action) -> Vec<ComponentId> {
        self.changes
            .iter()
            .filter(|c| c.action == action)
            .filter_map(|c| c.program.id.map(ComponentId))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: Option<u32>, name: &str, owner: &str, prog: u32) -> ReportedProgram {
        ReportedProgram {
            id,
            name: name.into(),
            owner: (!owner.is_empty()).then(|| Owner::recorded(owner.into(), 1)),
            program_id: Some(prog),
        }
    }

    #[test]
    fn says_what_came_went_and_was_dropped() {
        let me = Owner::recorded("fw".into(), 2);
        let before = vec![
            p(Some(0), "a", "fw", 10),
            p(Some(1), "b", "probe", 10),
            p(Some(2), "c", "", 10),
        ];
        // A static chain rebuilt: every program id changes, ids stay.
        let after = [p(Some(0), "a", "fw", 11), p(Some(3), "d", "fw", 11)];
        let r = Report::between("eth0", &me, before, &after, None);
        let what: Vec<_> = r
            .changes
            .iter()
            .map(|c| (c.action, c.program.id, c.program.name.as_str()))
            .collect();
        assert_eq!(
            what,
            [
                (Action::Dropped, Some(1), "b"),
                (Action::Dropped, Some(2), "c"),
                (Action::Added, Some(3), "d"),
            ]
        );
        assert_eq!(r.added(), [ComponentId(3)]);
        assert_eq!(
            r.changes[0].to_string(),
            "dropped component 1: b (program 10, owner probe)"
        );
        assert_eq!(r.removed(), [ComponentId(1), ComponentId(2)]);
    }

    #[test]
    fn a_foreign_program_is_dropped_and_replacements_are_one_change() {
        let me = Owner::recorded("fw".into(), 2);
        let foreign = vec![p(None, "xdp_prog", "", 5)];
        let r = Report::between("eth0", &me, foreign, &[p(Some(0), "a", "fw", 6)], None);
        assert_eq!(r.changes[0].action, Action::Dropped);
        assert_eq!(
            r.changes[0].to_string(),
            "dropped xdp_prog (program 5, another loader's)"
        );
        assert_eq!(r.changes[1].action, Action::Added);
        // Ours: the id stays.
        let r = Report::between(
            "eth0",
            &me,
            vec![p(Some(4), "a", "fw", 6)],
            &[p(Some(4), "b", "fw", 7)],
            Some(4),
        );
        assert_eq!(r.changes.len(), 1);
        assert_eq!(r.changes[0].action, Action::Replaced);
        assert_eq!(
            r.changes[0].to_string(),
            "replaced component 4: a (program 6) with b (program 7, owner fw)"
        );
        // libxdp's: the id is the new program's.
        let r = Report::between(
            "eth0",
            &me,
            vec![p(Some(6), "a", "fw", 6), p(Some(8), "c", "fw", 8)],
            &[p(Some(7), "b", "fw", 7), p(Some(8), "c", "fw", 8)],
            Some(7),
        );
        assert_eq!(r.changes.len(), 1);
        assert_eq!(r.changes[0].replaced.as_ref().unwrap().program_id, Some(6));
    }

    /// A change that changed nothing says nothing; a replacement in our
    /// layout keeps its id and names what it replaced.
    #[test]
    fn nothing_changed_is_an_empty_report() {
        let me = Owner::recorded("fw".into(), 1);
        let chain = [
            p(Some(1), "xdp_fw", "fw", 10),
            p(Some(2), "xdp_lb", "lb", 11),
        ];
        let r = Report::between("eth0", &me, chain.to_vec(), &chain, None);
        assert!(r.changes.is_empty() && r.added().is_empty() && r.removed().is_empty());
        let after = [p(Some(1), "xdp_fw2", "fw", 12), chain[1].clone()];
        let r = Report::between("eth0", &me, chain.to_vec(), &after, Some(1));
        assert_eq!(r.changes.len(), 1);
        let c = &r.changes[0];
        assert_eq!(
            (c.action, c.program.name.as_str()),
            (Action::Replaced, "xdp_fw2")
        );
        assert_eq!(c.replaced.as_ref().map(|w| w.name.as_str()), Some("xdp_fw"));
    }
}
