//! The root program (bpf/root.bpf.c, compiled by build.rs); the layout of
//! what it shares with user space is the object layer's
//! (`xdpchain_obj::root`), checked here against the BTF clang wrote.

pub use xdpchain_obj::root::*;

pub(crate) static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/root.bpf.o"));
/// The root of open chains: global slots that extension programs may replace.
pub(crate) static OBJECT_OPEN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/root_open.bpf.o"));

#[cfg(test)]
mod tests {
    use super::*;
    use object::{Object as _, ObjectSection as _};
    use xdpchain_obj::btf::{Btf, Kind};

    /// A struct's members, their offsets in bytes, and its size, as clang
    /// laid it out in the root's BTF.
    fn clang_layout(name: &str) -> (Vec<(String, usize)>, usize) {
        let file = object::File::parse(OBJECT).unwrap();
        let btf = Btf::parse(file.section_by_name(".BTF").unwrap().data().unwrap()).unwrap();
        let st = btf
            .types()
            .find(|t| t.kind == Kind::Struct && btf.name(t) == name)
            .unwrap_or_else(|| panic!("struct {name} in BTF"));
        let members = btf
            .members(&st)
            .iter()
            .map(|&(n, _)| btf.str_at(n).to_string())
            .zip(btf.member_offsets(&st).into_iter().map(|b| b as usize / 8))
            .collect();
        (members, st.size_type as usize)
    }

    fn owned(layout: &[(&str, usize)]) -> Vec<(String, usize)> {
        layout.iter().map(|(n, o)| (n.to_string(), *o)).collect()
    }

    #[test]
    fn config_layout_matches_btf() {
        assert_eq!(
            clang_layout("xdpchain_config"),
            (owned(&CONFIG_LAYOUT), CONFIG_SIZE)
        );
        let file = object::File::parse(OBJECT).unwrap();
        let btf = Btf::parse(file.section_by_name(".BTF").unwrap().data().unwrap()).unwrap();
        let sec = btf
            .types()
            .find(|t| t.kind == Kind::Datasec && btf.name(t) == CONFIG_SECTION);
        assert!(sec.is_some(), "config lives in {CONFIG_SECTION}");
    }

    /// struct xdpchain_packet has no BTF (only pointers to it are locals):
    /// tests/dump.rs reads every field of real records.
    #[test]
    fn ctl_layout_matches_btf() {
        assert_eq!(clang_layout("xdpchain_ctl"), (owned(&CTL_LAYOUT), CTL_SIZE));
    }
}
