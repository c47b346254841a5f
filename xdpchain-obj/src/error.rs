//! What the object layer refuses: an input that is no object, is not well
//! formed or passes a bound (libxdpchain's `Error` has a variant of the same
//! name and fields for each), a configuration the object cannot take, and
//! why a root is not inlined.

/// Exhaustive: libxdpchain maps each variant to its own, and a new one
/// must not pass unseen.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{name}: not an ELF file")]
    NotElf { name: String },

    #[error("{name}: malformed BPF object: {reason}")]
    Malformed { name: String, reason: String },

    #[error("{name}: {what} passes the limit of {limit}")]
    TooLarge {
        name: String,
        what: String,
        limit: u64,
    },

    /// A BTF or BTF.ext section that does not parse, read apart from its
    /// object (whose reader names the object: [`crate::limits::malformed`]).
    #[error("malformed BTF: {0}")]
    Btf(&'static str),

    /// A global or a map that cannot be configured as asked: absent, of
    /// another size, or in no section that can take it.
    #[error("{0}")]
    Refused(String),

    /// Why the inliner leaves a chain's root as compiled; the chain runs
    /// all the same.
    #[error("{0}")]
    NotInlined(String),
}

/// A configuration the object cannot take, and why.
pub(crate) fn refused(why: impl ToString) -> Error {
    Error::Refused(why.to_string())
}

/// A reason to leave a root as compiled.
pub(crate) fn not_inlined(why: impl Into<String>) -> Error {
    Error::NotInlined(why.into())
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
