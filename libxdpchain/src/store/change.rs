//! What a change asks of the components that run, decided without the
//! kernel: which one a key names, which ones go, and whose they are. Both
//! layouts (recorded.rs, dispatcher.rs) describe what runs as [`Present`]
//! components, so that each operation decides once, for both.

use crate::error::{Error, Result};
use crate::owner::Stamp;
use crate::plan::{find_key, ComponentKey};

/// A component that runs, as a change sees it.
#[derive(Clone, Debug)]
pub(crate) struct Present {
    /// Its id (a program id in libxdp's layout).
    pub id: u32,
    /// Its program's name.
    pub name: String,
    /// Who added it; None where no record says.
    pub stamp: Option<Stamp>,
    /// Where its object came from, where a record says.
    pub source: Option<String>,
    /// How ownership errors name it.
    pub what: String,
}

impl Present {
    /// What [`crate::owner::Actor::may_change`] weighs.
    pub fn owned(&self) -> (String, Option<&Stamp>) {
        (self.what.clone(), self.stamp.as_ref())
    }
}

/// Which components an operation takes out.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Which<'a> {
    /// By id (as digits; a program id in libxdp's layout) or program name.
    Key(&'a ComponentKey),
    /// Those the handle with this token added.
    Own(u64),
}

/// The components of `present` that `which` takes out, at least one.
pub(crate) fn select(present: &[Present], which: Which) -> Result<Vec<usize>> {
    let gone: Vec<usize> = match which {
        Which::Key(key) => vec![find_key(
            present.iter().map(|p| (p.id, p.name.as_str())),
            key,
        )?],
        Which::Own(token) => (0..present.len())
            .filter(|&i| present[i].stamp.as_ref().is_some_and(|s| s.token == token))
            .collect(),
    };
    match gone.is_empty() {
        true => Err(Error::NotAttached),
        false => Ok(gone),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owner::Owner;

    /// As the command line reads it.
    fn key(typed: &str) -> ComponentKey {
        typed.parse().unwrap()
    }

    fn present(id: u32, name: &str, token: Option<u64>) -> Present {
        Present {
            id,
            name: name.into(),
            stamp: token.map(|token| Stamp {
                owner: Owner::recorded("fw".into(), 1),
                token,
                digest: None,
            }),
            what: format!("{name} (id {id})"),
            source: None,
        }
    }

    #[test]
    fn keys_name_one_component_by_id_or_by_name() {
        let p = [
            present(7, "xdp_fw", Some(1)),
            present(8, "xdp_count", Some(2)),
            present(9, "xdp_count", None),
            present(10, "7", None),
        ];
        assert_eq!(select(&p, Which::Key(&key("8"))).unwrap(), [1]);
        assert_eq!(select(&p, Which::Key(&key("xdp_fw"))).unwrap(), [0]);
        // Typed digits are an id; a program named by digits is named by
        // its key.
        assert_eq!(select(&p, Which::Key(&key("7"))).unwrap(), [0]);
        let seven = ComponentKey::Program("7".into());
        assert_eq!(select(&p, Which::Key(&seven)).unwrap(), [3]);
        assert!(matches!(
            select(&p, Which::Key(&key("xdp_count"))),
            Err(Error::InvalidArgument(m)) if m.contains("use the id")
        ));
        assert!(matches!(
            select(&p, Which::Key(&key("11"))),
            Err(Error::UnknownComponent(k)) if k == "11"
        ));
    }

    #[test]
    fn a_handle_takes_out_what_it_added_and_nothing_else() {
        let p = [
            present(1, "a", Some(5)),
            present(2, "b", Some(6)),
            present(3, "c", Some(5)),
            present(4, "d", None),
        ];
        assert_eq!(select(&p, Which::Own(5)).unwrap(), [0, 2]);
        assert!(matches!(select(&p, Which::Own(9)), Err(Error::NotAttached)));
        assert_eq!(p[0].owned().0, "a (id 1)");
    }

    /// What was added by hand or by libxdp's users has no token: no
    /// handle's token takes it.
    #[test]
    fn unstamped_components_belong_to_no_handle() {
        let p = [present(1, "a", None), present(2, "b", None)];
        assert!(matches!(select(&p, Which::Own(0)), Err(Error::NotAttached)));
        assert!(matches!(
            select(&[], Which::Key(&key("a"))),
            Err(Error::UnknownComponent(_))
        ));
        assert_eq!(select(&p, Which::Key(&key("b"))).unwrap(), [1]);
    }
}
