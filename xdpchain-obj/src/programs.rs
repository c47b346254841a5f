//! The programs of an object, found and typed as libbpf 1.x finds and types
//! them when it opens the object, but without opening it: a program is a
//! global function symbol in a code section other than `.text` (whose
//! functions are subprograms), and its section's name gives its type.

use object::{Object as _, ObjectSection as _, ObjectSymbol as _, SectionKind, SymbolKind};

use crate::error::Result;
use crate::limits::malformed;

/// What a program's section name makes it, for a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An XDP program for an interface: `SEC("xdp")` or `SEC("xdp.frags")`.
    Xdp,
    /// A section name libbpf types as nothing: one that older loaders load
    /// as XDP (`xdp_sock`, `prog`, `xdp/...`), which libbpf 1.x no longer
    /// knows.
    Untyped,
    /// A program of another type or attach point (tc, a devmap's, ...).
    Other,
}

/// One program of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    pub name: String,
    pub section: String,
    pub kind: Kind,
}

impl Program {
    /// Declared multi-buffer aware (`SEC("xdp.frags")`): it handles packets
    /// larger than a page, split in fragments.
    pub fn frags(&self) -> bool {
        self.section == "xdp.frags" || self.section.starts_with("xdp.frags/")
    }
}

/// The section names libbpf 1.7 types (`section_defs` in libbpf.c): one
/// ending in '/' takes any suffix, one ending in '+' the name alone or with
/// a '/' suffix, any other the name exactly. A unit test of libxdpchain
/// checks this list against the libbpf it builds.
pub const TYPED: &[&str] = &[
    "socket",
    "sk_reuseport/migrate",
    "sk_reuseport",
    "kprobe+",
    "uprobe+",
    "uprobe.s+",
    "kretprobe+",
    "uretprobe+",
    "uretprobe.s+",
    "kprobe.multi+",
    "kretprobe.multi+",
    "kprobe.session+",
    "uprobe.multi+",
    "uretprobe.multi+",
    "uprobe.session+",
    "uprobe.multi.s+",
    "uretprobe.multi.s+",
    "uprobe.session.s+",
    "ksyscall+",
    "kretsyscall+",
    "usdt+",
    "usdt.s+",
    "tc/ingress",
    "tc/egress",
    "tcx/ingress",
    "tcx/egress",
    "tc",
    "classifier",
    "action",
    "netkit/primary",
    "netkit/peer",
    "tracepoint+",
    "tp+",
    "raw_tracepoint+",
    "raw_tp+",
    "raw_tracepoint.w+",
    "raw_tp.w+",
    "tp_btf+",
    "fentry+",
    "fmod_ret+",
    "fexit+",
    "fentry.s+",
    "fmod_ret.s+",
    "fexit.s+",
    "fsession+",
    "fsession.s+",
    "freplace+",
    "lsm+",
    "lsm.s+",
    "lsm_cgroup+",
    "iter+",
    "iter.s+",
    "syscall",
    "xdp.frags/devmap",
    "xdp/devmap",
    "xdp.frags/cpumap",
    "xdp/cpumap",
    "xdp.frags",
    "xdp",
    "perf_event",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "lwt_seg6local",
    "sockops",
    "sk_skb/stream_parser",
    "sk_skb/stream_verdict",
    "sk_skb/verdict",
    "sk_skb",
    "sk_msg",
    "lirc_mode2",
    "flow_dissector",
    "cgroup_skb/ingress",
    "cgroup_skb/egress",
    "cgroup/skb",
    "cgroup/sock_create",
    "cgroup/sock_release",
    "cgroup/sock",
    "cgroup/post_bind4",
    "cgroup/post_bind6",
    "cgroup/bind4",
    "cgroup/bind6",
    "cgroup/connect4",
    "cgroup/connect6",
    "cgroup/connect_unix",
    "cgroup/sendmsg4",
    "cgroup/sendmsg6",
    "cgroup/sendmsg_unix",
    "cgroup/recvmsg4",
    "cgroup/recvmsg6",
    "cgroup/recvmsg_unix",
    "cgroup/getpeername4",
    "cgroup/getpeername6",
    "cgroup/getpeername_unix",
    "cgroup/getsockname4",
    "cgroup/getsockname6",
    "cgroup/getsockname_unix",
    "cgroup/sysctl",
    "cgroup/getsockopt",
    "cgroup/setsockopt",
    "cgroup/dev",
    "struct_ops+",
    "struct_ops.s+",
    "sk_lookup",
    "netfilter",
];

fn matches(def: &str, section: &str) -> bool {
    if def.ends_with('/') {
        section.starts_with(def)
    } else if let Some(base) = def.strip_suffix('+') {
        section
            .strip_prefix(base)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    } else {
        section == def
    }
}

/// What a program in `section` is.
pub fn kind_of(section: &str) -> Kind {
    match section {
        "xdp" | "xdp.frags" => Kind::Xdp,
        s if TYPED.iter().any(|def| matches(def, s)) => Kind::Other,
        _ => Kind::Untyped,
    }
}

/// The programs of `file` (named `name` in errors), in symbol order. A
/// static function outside `.text` is refused, as libbpf refuses it.
pub fn programs(file: &object::File<'_>, name: &str) -> Result<Vec<Program>> {
    let mut out = Vec::new();
    for sym in file.symbols().filter(|s| s.kind() == SymbolKind::Text) {
        let Some(index) = sym.section_index() else {
            continue;
        };
        let section = file
            .section_by_index(index)
            .map_err(|e| malformed(name, e))?;
        let section_name = section.name().map_err(|e| malformed(name, e))?;
        if section.kind() != SectionKind::Text || section_name == ".text" || section.size() == 0 {
            continue;
        }
        let program = sym.name().map_err(|e| malformed(name, e))?;
        if sym.is_local() {
            return Err(malformed(
                name,
                format!(
                    "program {program} in section {section_name} is static, which libbpf refuses"
                ),
            ));
        }
        out.push(Program {
            name: program.to_string(),
            section: section_name.to_string(),
            kind: kind_of(section_name),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/test_component.bpf.o"));

    #[test]
    fn the_test_component_has_two_xdp_programs() {
        let file = object::File::parse(COMPONENT).unwrap();
        let found = programs(&file, "component.o").unwrap();
        let names: Vec<_> = found.iter().map(|p| (p.name.as_str(), p.kind)).collect();
        // shared_helper and bump are in .text: subprograms.
        assert_eq!(names, [("xdp_first", Kind::Xdp), ("xdp_second", Kind::Xdp)]);
        assert!(!found[0].frags());
    }

    #[test]
    fn section_names_as_libbpf_types_them() {
        for (section, kind) in [
            ("xdp", Kind::Xdp),
            ("xdp.frags", Kind::Xdp),
            ("xdp/devmap", Kind::Other),
            ("xdp.frags/cpumap", Kind::Other),
            ("xdp/anything", Kind::Untyped),
            ("xdp_sock", Kind::Untyped),
            ("prog", Kind::Untyped),
            ("tc", Kind::Other),
            ("tc/ingress", Kind::Other),
            ("tcx", Kind::Untyped),
            ("kprobe", Kind::Other),
            ("kprobe/do_sys_open", Kind::Other),
            ("kprobex", Kind::Untyped),
            ("cgroup/sock_create", Kind::Other),
        ] {
            assert_eq!(kind_of(section), kind, "{section}");
        }
    }

    /// libbpf refuses a static program; so does the listing, by its name.
    #[test]
    fn a_static_program_is_refused() {
        let file = object::File::parse(COMPONENT).unwrap();
        let symtab = file.section_by_name(".symtab").unwrap();
        let (start, _) = symtab.file_range().unwrap();
        let index = file
            .symbols()
            .find(|s| s.name() == Ok("xdp_second"))
            .unwrap()
            .index();
        // st_info, 4 bytes into an Elf64_Sym of 24: binding local, type func.
        let mut bytes = COMPONENT.to_vec();
        bytes[start as usize + index.0 * 24 + 4] = object::elf::STT_FUNC.0;
        let file = object::File::parse(&*bytes).unwrap();
        let e = programs(&file, "static.o").unwrap_err();
        assert_eq!(
            e.to_string(),
            "static.o: malformed BPF object: program xdp_second in section xdp is static, which libbpf refuses"
        );
    }
}
