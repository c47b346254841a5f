//! A component: one XDP program picked from an ELF object, with the priority
//! and continue set it runs under. Defaults follow libxdp: `XDP_RUN_CONFIG`
//! metadata when the object has it, else priority 50 and continue on PASS.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use object::{Object as _, ObjectSection as _, ObjectSymbol as _};

use crate::error::{Error, Result};
use crate::limits;
use xdpchain_obj::btf::{Btf, Kind};
use xdpchain_obj::configure;
use xdpchain_obj::insn;
use xdpchain_obj::license;
use xdpchain_obj::programs;

pub use xdpchain_obj::verdict::{Verdict, Verdicts};

pub const DEFAULT_PRIORITY: i32 = 50;

/// The names of the kernel's XDP RX metadata kfuncs (`bpf_xdp_metadata_rx_hash`,
/// `..._rx_timestamp`, `..._rx_vlan_tag`, Linux 6.3 on).
const METADATA_KFUNC_PREFIX: &str = "bpf_xdp_metadata_";

/// One XDP program of an object, ready to be chained.
#[derive(Clone)]
pub struct Component {
    pub(crate) bytes: Arc<[u8]>,
    source: String,
    program: String,
    priority: i32,
    continue_on: Verdicts,
    license: String,
    pub(crate) has_func_info: bool,
    /// What the object holds of what libbpf looks up by name.
    pub(crate) census: limits::Census,
    /// Some code in the object calls bpf_tail_call.
    pub(crate) tail_calls: bool,
    /// The GPL-only helpers that the program and its subprograms call.
    pub(crate) gpl_only_helpers: Vec<&'static str>,
    /// Multi-buffer aware (`SEC("xdp.frags")`).
    pub(crate) frags: bool,
    /// The XDP RX metadata kfuncs the object calls (`bpf_xdp_metadata_*`),
    /// which the kernel allows only in programs bound to a device.
    pub(crate) metadata_kfuncs: Vec<String>,
    traceable: bool,
}

impl fmt::Debug for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Component")
            .field("source", &self.source)
            .field("program", &self.program)
            .field("priority", &self.priority)
            .field("continue_on", &self.continue_on)
            .finish()
    }
}

impl Component {
    /// Reads the object at `path`; `program` picks one of its XDP programs
    /// by name, or None for the only one.
    pub fn from_file(path: impl AsRef<Path>, program: Option<&str>) -> Result<Self> {
        let path = path.as_ref();
        Self::from_bytes(limits::read(path)?, &path.display().to_string(), program)
    }

    /// As [`Component::from_file`], for an object in memory; `source` names
    /// it in errors and status.
    pub fn from_bytes(
        bytes: impl Into<Arc<[u8]>>,
        source: &str,
        program: Option<&str>,
    ) -> Result<Self> {
        let bytes: Arc<[u8]> = bytes.into();
        let name = source.to_string();
        if !bytes.starts_with(b"\x7fELF") {
            return Err(Error::NotElf { name });
        }
        // Before the limits: another machine's object is no BPF object at
        // all, whatever its names. A header cut short is the limits' to
        // call malformed.
        if let Some(machine) = elf_machine(&bytes).filter(|&m| m != object::elf::EM_BPF.0) {
            return Err(Error::NotBpf { name, machine });
        }
        let limits::Checked { btf, census } = limits::check(&bytes, &name)?;
        let file = object::File::parse(&*bytes).map_err(|e| Error::Malformed {
            name: name.clone(),
            reason: e.to_string(),
        })?;
        // XDP programs by their section names; failing those, programs in
        // sections libbpf no longer types, which older loaders load as XDP.
        let programs = programs::programs(&file, &name)?;
        let names = |kind| -> Vec<String> {
            let of_kind = programs.iter().filter(|p| p.kind == kind);
            of_kind.map(|p| p.name.clone()).collect()
        };
        let mut available = names(programs::Kind::Xdp);
        let untyped = names(programs::Kind::Untyped);
        if available.is_empty() || program.is_some_and(|p| untyped.iter().any(|u| u == p)) {
            available.extend(untyped);
        }
        let program = match (program, available.as_slice()) {
            (_, []) => return Err(Error::NoXdpProgram { name }),
            (Some(p), _) if available.iter().any(|a| a == p) => p.to_string(),
            (Some(p), _) => {
                return Err(Error::UnknownProgram {
                    name,
                    program: p.into(),
                    available,
                })
            }
            (None, [only]) => only.clone(),
            (None, _) => return Err(Error::AmbiguousProgram { name, available }),
        };
        let frags = programs.iter().any(|p| p.name == program && p.frags());

        let section = |n: &str| file.section_by_name(n).and_then(|s| s.data().ok());
        let license = section("license")
            .map(|d| {
                String::from_utf8_lossy(d.split(|&c| c == 0).next().unwrap_or_default())
                    .into_owned()
            })
            .unwrap_or_default();
        let (priority, continue_on) = match &btf {
            Some(btf) => run_config(btf, &program),
            None => (DEFAULT_PRIORITY, Verdicts::empty().with(Verdict::Pass)),
        };
        let has_func_info = section(".BTF.ext").is_some();
        let tail_calls = file
            .sections()
            .filter(|s| s.kind() == object::SectionKind::Text)
            .filter_map(|s| s.data().ok())
            .any(calls_tail_call);
        // The code that a chain links: the program and the subprograms.
        let entry = file
            .symbols()
            .find(|s| s.kind() == object::SymbolKind::Text && s.name() == Ok(program.as_str()))
            .and_then(|s| {
                let code = file
                    .section_by_index(s.section_index()?)
                    .ok()?
                    .data()
                    .ok()?;
                code.get(s.address() as usize..s.address().checked_add(s.size())? as usize)
            });
        let mut gpl_only_helpers = license::gpl_only_calls(entry.unwrap_or_default());
        gpl_only_helpers.extend(license::gpl_only_calls(
            section(".text").unwrap_or_default(),
        ));
        gpl_only_helpers.sort_unstable();
        gpl_only_helpers.dedup();
        // kfuncs are the object's undefined function symbols (__ksym).
        let mut metadata_kfuncs: Vec<String> = file
            .symbols()
            .filter(|s| s.is_undefined())
            .filter_map(|s| s.name().ok())
            .filter(|n| n.starts_with(METADATA_KFUNC_PREFIX))
            .map(str::to_string)
            .collect();
        metadata_kfuncs.sort_unstable();
        metadata_kfuncs.dedup();
        Ok(Component {
            bytes,
            source: name,
            program,
            priority,
            continue_on,
            license,
            has_func_info,
            census,
            tail_calls,
            gpl_only_helpers,
            frags,
            metadata_kfuncs,
            traceable: false,
        })
    }

    /// Sets the global variable `name` (a `const volatile` one in `.rodata`,
    /// or any with initial data) to `value`, its exact size, as the
    /// program's own loader would before loading it.
    pub fn with_global(self, name: &str, value: &[u8]) -> Result<Self> {
        let bytes = configure::set_global(&self.bytes, name, value).map_err(|r| self.refused(r))?;
        Ok(self.with_bytes(bytes))
    }

    /// [`Component::with_global`] with an integer, which must fit the
    /// variable's size (stored little-endian).
    pub fn with_global_int(self, name: &str, value: i128) -> Result<Self> {
        let size = configure::global_size(&self.bytes, name).map_err(|r| self.refused(r))?;
        let signed = configure::global_signed(&self.bytes, name);
        let bytes = configure::int_bytes(value, size, signed).ok_or_else(|| {
            let kind = match signed {
                Some(true) => "signed ",
                Some(false) => "unsigned ",
                None => "",
            };
            self.refused(format!(
                "{value} does not fit '{name}' (a {size}-byte {kind}integer)"
            ))
        })?;
        self.with_global(name, &bytes)
    }

    /// [`Component::with_global`] with a value as text, as the command and
    /// chains files give it: an integer (decimal or 0x hex, negative too)
    /// that fits the variable, or its bytes as `hex:0a0b...`.
    pub fn with_global_text(self, name: &str, value: &str) -> Result<Self> {
        let bad = |what: &str| Error::InvalidArgument(format!("{name}: {what} '{value}'"));
        match value.strip_prefix("hex:") {
            Some(hex) => {
                let bytes = configure::parse_hex(hex).ok_or_else(|| bad("bad hex"))?;
                self.with_global(name, &bytes)
            }
            None => {
                let n = configure::parse_int(value).ok_or_else(|| bad("bad integer"))?;
                self.with_global_int(name, n)
            }
        }
    }

    /// Sets the size (max_entries) of the component's map `name`.
    pub fn with_map_size(self, name: &str, entries: u32) -> Result<Self> {
        let bytes =
            configure::set_map_size(&self.bytes, name, entries).map_err(|r| self.refused(r))?;
        Ok(self.with_bytes(bytes))
    }

    /// Refuses a component with maps the kernel would refuse for want of
    /// a size, before libbpf tries, naming them as its object does.
    pub(crate) fn check_sized(&self) -> Result<()> {
        let names = configure::unsized_maps(&self.bytes);
        if names.is_empty() {
            return Ok(());
        }
        let (what, has) = match names.len() {
            1 => ("map", "has"),
            _ => ("maps", "have"),
        };
        let names: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
        Err(self.refused(format!(
            "{what} {} {has} no size (max_entries 0): set it before adding the program, \
             as its own loader would",
            names.join(", ")
        )))
    }

    fn with_bytes(mut self, bytes: Vec<u8>) -> Self {
        self.bytes = bytes.into();
        self
    }

    fn refused(&self, reason: impl ToString) -> Error {
        Error::InvalidArgument(format!(
            "{}:{}: {}",
            self.source,
            self.program,
            reason.to_string()
        ))
    }

    pub fn with_priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    pub fn with_continue_on(mut self, verdicts: Verdicts) -> Self {
        self.continue_on = verdicts;
        self
    }

    /// Keeps the component a function of its own in a static chain, called
    /// rather than copied into a generated root, so that fentry and fexit
    /// programs (bpftrace, retsnoop) can attach to it where the kernel has
    /// trampolines: [`crate::ComponentStatus::function`] names it. A
    /// dynamic chain's components are always traceable, each its own
    /// extension program.
    pub fn with_traceable(mut self, traceable: bool) -> Self {
        self.traceable = traceable;
        self
    }

    /// The file or buffer name the component came from.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// The program's (function) name in its object.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// `FILE:PROG`, as messages name it.
    pub fn label(&self) -> String {
        let program = xdpchain_obj::limits::shown(self.program());
        format!("{}:{program}", self.source())
    }
    pub fn priority(&self) -> i32 {
        self.priority
    }
    pub fn continue_on(&self) -> Verdicts {
        self.continue_on
    }
    pub fn traceable(&self) -> bool {
        self.traceable
    }
    /// The object calls XDP RX metadata kfuncs, which the kernel allows only
    /// in programs bound to a device: a chain holding it is loaded bound to
    /// its interface.
    pub fn device_bound(&self) -> bool {
        !self.metadata_kfuncs.is_empty()
    }
    /// What a declaration of the component fixes, as 32 hex digits: its
    /// configured object, program, priority, continue set and whether it is
    /// traceable (not the path: the same object elsewhere is the same
    /// component).
    pub(crate) fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let parts: [&[u8]; 4] = [
            self.program.as_bytes(),
            &self.priority.to_le_bytes(),
            &self.continue_on.bits().to_le_bytes(),
            &self.bytes,
        ];
        for part in parts {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        // Only when set, so that the digests of earlier records still match.
        if self.traceable {
            h.update(b"traceable");
        }
        h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Names of the object's data sections (its global variables' maps).
    pub(crate) fn data_sections(&self) -> Vec<String> {
        let Ok(file) = object::File::parse(&*self.bytes) else {
            return Vec::new();
        };
        file.sections()
            .filter_map(|s| s.name().ok().map(str::to_string))
            .filter(|n| {
                [".data", ".bss", ".rodata"]
                    .iter()
                    .any(|p| n == p || n.starts_with(&format!("{p}.")))
            })
            .collect()
    }

    /// The object's license string ("" if it has none).
    pub fn license(&self) -> &str {
        &self.license
    }
}

/// Whether BPF code calls the bpf_tail_call helper.
fn calls_tail_call(code: &[u8]) -> bool {
    insn::decode_all(code).any(|i| i.calls_helper(insn::HELPER_TAIL_CALL))
}

/// The ELF header's e_machine, of either class; BPF objects are
/// little-endian, and a big-endian one is not ours either.
fn elf_machine(bytes: &[u8]) -> Option<u16> {
    use object::elf::{FileHeader32, FileHeader64};
    use object::read::elf::FileHeader as _;
    use object::LittleEndian as LE;
    FileHeader64::<LE>::parse(bytes)
        .map(|h| h.e_machine(LE).0)
        .or_else(|_| FileHeader32::<LE>::parse(bytes).map(|h| h.e_machine(LE).0))
        .ok()
}

/// libxdp's convention: a variable `_<prog>` in section `.xdp_run_config`,
/// a struct whose members are `int (*name)[value]`: `priority`, and one per
/// verdict (`XDP_PASS`...) set to 1 to go on after it.
fn run_config(btf: &Btf, program: &str) -> (i32, Verdicts) {
    let mut priority = DEFAULT_PRIORITY;
    let mut verdicts = Verdicts::empty();
    let var_name = format!("_{program}");
    let var = btf
        .types()
        .filter(|t| t.kind == Kind::Datasec && btf.name(t) == ".xdp_run_config")
        .flat_map(|sec| btf.datasec_vars(&sec))
        .filter_map(|(id, _, _)| btf.type_by_id(id))
        .find(|v| btf.name(v) == var_name);
    if let Some(st) = var.and_then(|v| btf.skip_mods(v.size_type)) {
        for (name_off, ty) in btf.members(&st) {
            let value = btf
                .skip_mods(ty)
                .filter(|p| p.kind == Kind::Ptr)
                .and_then(|p| btf.skip_mods(p.size_type))
                .and_then(|a| btf.array_len(&a));
            let Some(value) = value else { continue };
            match btf.str_at(name_off) {
                "priority" => priority = value as i32,
                n => {
                    if let (Some(v), 1) =
                        (n.strip_prefix("XDP_").and_then(Verdict::from_name), value)
                    {
                        verdicts = verdicts.with(v);
                    }
                }
            }
        }
    }
    if verdicts == Verdicts::empty() {
        verdicts = verdicts.with(Verdict::Pass);
    }
    (priority, verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys;

    const COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/test_component.bpf.o"));

    /// The object layer types section names without libbpf: as the libbpf
    /// we build does, for every name it knows, with and without a suffix.
    #[test]
    fn programs_are_typed_as_libbpf_types_them() {
        let libbpf = |section: &str| match sys::prog_type_by_name(section) {
            None => programs::Kind::Untyped,
            Some((t, a)) if (t, a) == (libbpf_sys::BPF_PROG_TYPE_XDP, libbpf_sys::BPF_XDP) => {
                programs::Kind::Xdp
            }
            Some(_) => programs::Kind::Other,
        };
        for def in programs::TYPED {
            let base = def.trim_end_matches(['+', '/']);
            for section in [base.to_string(), format!("{base}/x"), format!("{base}x")] {
                assert_eq!(programs::kind_of(&section), libbpf(&section), "{section}");
            }
        }
        for section in ["xdp_sock", "prog", "xdp/hook", ".text.x", "classifier/x"] {
            assert_eq!(programs::kind_of(section), libbpf(section), "{section}");
        }
    }

    #[test]
    fn a_program_is_picked_by_name_or_alone() {
        let from = |program| Component::from_bytes(COMPONENT, "component.o", program);
        let c = from(Some("xdp_second")).unwrap();
        assert_eq!(
            (c.program(), c.priority()),
            ("xdp_second", DEFAULT_PRIORITY)
        );
        assert_eq!(c.continue_on(), Verdicts::empty().with(Verdict::Pass));
        assert_eq!(c.license(), "GPL");
        assert!(!c.frags && !c.tail_calls);
        match from(None).unwrap_err() {
            Error::AmbiguousProgram { available, .. } => {
                assert_eq!(available, ["xdp_first", "xdp_second"])
            }
            e => panic!("{e}"),
        }
        // A subprogram is no program.
        match from(Some("shared_helper")).unwrap_err() {
            Error::UnknownProgram { program, .. } => assert_eq!(program, "shared_helper"),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn what_is_no_bpf_object_is_named_so() {
        let e = Component::from_bytes(&b"#!/bin/sh\n"[..], "script", None).unwrap_err();
        assert!(matches!(e, Error::NotElf { .. }), "{e}");
        let mut other = COMPONENT.to_vec();
        other[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        let e = Component::from_bytes(other, "x86.o", None).unwrap_err();
        assert!(matches!(e, Error::NotBpf { machine: 62, .. }), "{e}");
    }
}
