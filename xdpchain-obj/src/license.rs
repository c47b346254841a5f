//! Licences: a linked chain has one, which the kernel holds every
//! component to. A component that calls helpers the kernel reserves for
//! GPL-compatible programs cannot share a chain with a non-GPL one.

/// What the kernel's license_is_gpl_compatible() accepts.
const GPL_COMPATIBLE: [&str; 6] = [
    "GPL",
    "GPL v2",
    "GPL and additional rights",
    "Dual BSD/GPL",
    "Dual MIT/GPL",
    "Dual MPL/GPL",
];

/// Helpers whose kernel prototypes say `gpl_only`, by number (linux/bpf.h),
/// among those an XDP program can call.
const GPL_ONLY_HELPERS: [(i32, &str); 16] = [
    (4, "bpf_probe_read"),
    (6, "bpf_trace_printk"),
    (25, "bpf_perf_event_output"),
    (27, "bpf_get_stackid"),
    (45, "bpf_probe_read_str"),
    (67, "bpf_get_stack"),
    (112, "bpf_probe_read_user"),
    (113, "bpf_probe_read_kernel"),
    (114, "bpf_probe_read_user_str"),
    (115, "bpf_probe_read_kernel_str"),
    (121, "bpf_xdp_output"),
    (169, "bpf_timer_init"),
    (170, "bpf_timer_set_callback"),
    (171, "bpf_timer_start"),
    (172, "bpf_timer_cancel"),
    (177, "bpf_trace_vprintk"),
];

pub fn gpl_compatible(license: &str) -> bool {
    GPL_COMPATIBLE.contains(&license)
}

/// The licence of a chain of components with `licenses`: the first
/// non-GPL one (a non-GPL component makes the whole chain non-GPL, so the
/// kernel holds it to what that component may do; none is promoted), else
/// their common one, else "GPL".
pub fn of_chain<'a>(licenses: impl IntoIterator<Item = &'a str>) -> String {
    let licenses: Vec<&str> = licenses.into_iter().collect();
    match licenses.iter().find(|l| !gpl_compatible(l)) {
        Some(&"") => "Proprietary".into(),
        Some(l) => l.to_string(),
        None if licenses.windows(2).all(|w| w[0] == w[1]) && !licenses.is_empty() => {
            licenses[0].into()
        }
        None => "GPL".into(),
    }
}

/// The GPL-only helpers that `code` calls, by name, each once.
pub fn gpl_only_calls(code: &[u8]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = crate::insn::decode_all(code)
        .filter_map(|i| GPL_ONLY_HELPERS.iter().find(|(n, _)| i.calls_helper(*n)))
        .map(|(_, name)| *name)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::Insn;

    #[test]
    fn a_chain_takes_the_first_non_gpl_licence() {
        assert_eq!(of_chain(["GPL", "GPL"]), "GPL");
        assert_eq!(of_chain(["Dual BSD/GPL", "Dual BSD/GPL"]), "Dual BSD/GPL");
        assert_eq!(of_chain(["GPL", "Dual BSD/GPL"]), "GPL");
        assert_eq!(of_chain(["GPL", "BSD", "MIT"]), "BSD");
        assert_eq!(of_chain(["GPL", ""]), "Proprietary");
        assert_eq!(of_chain([]), "GPL");
    }

    #[test]
    fn gpl_only_helper_calls_are_found() {
        let call = |helper: i32| {
            Insn {
                code: 0x85,
                dst: 0,
                src: 0,
                off: 0,
                imm: helper,
            }
            .encode()
        };
        let code: Vec<u8> = [call(6), call(1), call(6), call(121)].concat();
        assert_eq!(
            gpl_only_calls(&code),
            ["bpf_trace_printk", "bpf_xdp_output"]
        );
        // bpf_map_lookup_elem (1) and subprogram calls (src 1) are not.
        let sub = Insn {
            code: 0x85,
            dst: 0,
            src: 1,
            off: 0,
            imm: 6,
        }
        .encode();
        assert!(gpl_only_calls(&[call(1), sub].concat()).is_empty());
    }
}
