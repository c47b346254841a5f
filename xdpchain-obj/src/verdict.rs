//! XDP verdicts, and the sets of them on which a chain goes on.

use std::fmt;

/// A name that is no XDP verdict.
#[derive(Debug, thiserror::Error)]
#[error("unknown XDP verdict '{0}'")]
pub struct UnknownVerdict(pub String);

/// An XDP verdict, as a program returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Verdict {
    Aborted = 0,
    Drop = 1,
    Pass = 2,
    Tx = 3,
    Redirect = 4,
}

impl Verdict {
    pub const ALL: [Verdict; 5] = [
        Verdict::Aborted,
        Verdict::Drop,
        Verdict::Pass,
        Verdict::Tx,
        Verdict::Redirect,
    ];

    /// Lower-case name, as the command line and status show it.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Aborted => "aborted",
            Verdict::Drop => "drop",
            Verdict::Pass => "pass",
            Verdict::Tx => "tx",
            Verdict::Redirect => "redirect",
        }
    }

    pub fn from_name(s: &str) -> Option<Verdict> {
        let s = s.trim().to_ascii_lowercase();
        let s = s.strip_prefix("xdp_").unwrap_or(&s);
        Verdict::ALL.into_iter().find(|v| v.name() == s)
    }

    pub fn from_code(code: u32) -> Option<Verdict> {
        Verdict::ALL.get(code as usize).copied()
    }
}

/// A set of verdicts on which the chain goes on to the next component.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Verdicts(u32);

impl Verdicts {
    pub const fn empty() -> Self {
        Verdicts(0)
    }
    /// From the kernel's bit layout: bit v set for verdict v.
    pub const fn from_bits(bits: u32) -> Self {
        Verdicts(bits & 0x1f)
    }
    pub const fn bits(self) -> u32 {
        self.0
    }
    pub fn with(self, v: Verdict) -> Self {
        Verdicts(self.0 | 1 << v as u32)
    }
    pub fn contains(self, v: Verdict) -> bool {
        self.0 & (1 << v as u32) != 0
    }
    pub fn iter(self) -> impl Iterator<Item = Verdict> {
        Verdict::ALL.into_iter().filter(move |v| self.contains(*v))
    }
    /// Parses "pass,drop" (names, case-insensitive, `XDP_` prefix allowed).
    pub fn parse(s: &str) -> Result<Self, UnknownVerdict> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .try_fold(Verdicts::empty(), |acc, p| {
                Verdict::from_name(p)
                    .map(|v| acc.with(v))
                    .ok_or_else(|| UnknownVerdict(p.trim().to_string()))
            })
    }
}

impl FromIterator<Verdict> for Verdicts {
    fn from_iter<I: IntoIterator<Item = Verdict>>(iter: I) -> Self {
        iter.into_iter().fold(Verdicts::empty(), Verdicts::with)
    }
}

impl fmt::Display for Verdicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(Verdict::name).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_parse_as_users_write_them() {
        let v = Verdicts::parse(" XDP_PASS, drop ,Tx,").unwrap();
        assert_eq!(
            v,
            [Verdict::Drop, Verdict::Pass, Verdict::Tx]
                .into_iter()
                .collect()
        );
        assert_eq!(v.to_string(), "drop,pass,tx");
        assert_eq!(Verdicts::parse(&v.to_string()).unwrap(), v);
        assert_eq!(Verdicts::parse("").unwrap(), Verdicts::empty());
        let e = Verdicts::parse("pass,xdp_forward").unwrap_err();
        assert_eq!(e.to_string(), "unknown XDP verdict 'xdp_forward'");
    }

    #[test]
    fn kernel_codes_and_bits() {
        assert_eq!(Verdict::from_code(4), Some(Verdict::Redirect));
        assert_eq!(Verdict::from_code(5), None);
        for v in Verdict::ALL {
            assert_eq!(Verdict::from_code(v as u32), Some(v));
            assert_eq!(Verdict::from_name(v.name()), Some(v));
        }
        // Bits above the five verdicts (the empty slot's, 31) are not
        // verdicts of a set read back.
        let v = Verdicts::from_bits(1 << 31 | 1 << 2);
        assert_eq!(v.iter().collect::<Vec<_>>(), [Verdict::Pass]);
        assert!(v.contains(Verdict::Pass) && !v.contains(Verdict::Drop));
    }
}
