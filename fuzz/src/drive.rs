//! The fuzz targets' drivers of the object layer (xdpchain-obj): the parsers
//! and transformers that untrusted bytes reach, driven without a kernel.
//! Each returns whether the input was accepted; what matters is that none
//! panics, hangs or allocates without bound.

use xdpchain_obj::btf::{Btf, BtfExt, Fate, Part};
use xdpchain_obj::inline::{self, Program, Slot};
use xdpchain_obj::insn::{self, FuncInfo, LineInfo};
use xdpchain_obj::limits;
use xdpchain_obj::rewrite::{self, Spec};

/// The BTF editor: parse, walk every type as the library does, rename one,
/// write back and parse again.
pub fn btf(bytes: &[u8]) -> bool {
    let Ok(mut btf) = Btf::parse(bytes) else {
        return false;
    };
    for t in btf.types().collect::<Vec<_>>() {
        let _ = (btf.linkage(&t), btf.array_len(&t), btf.skip_mods(t.id));
        let _ = (btf.members(&t), btf.datasec_vars(&t));
        let off = btf.add_str("renamed");
        btf.set_name(&t, off);
    }
    Btf::parse(&btf.to_bytes()).is_ok()
}

/// The BTF.ext editor, over the BTF in front of it: `bytes` is a BTF
/// section's length (4 bytes), the BTF, then the BTF.ext.
pub fn btf_ext(bytes: &[u8]) -> bool {
    let Some((len, rest)) = bytes.split_first_chunk::<4>() else {
        return false;
    };
    let len = (u32::from_le_bytes(*len) as usize).min(rest.len());
    let (btf, ext) = rest.split_at(len);
    let (Ok(mut btf), Ok(mut ext)) = (Btf::parse(btf), BtfExt::parse(ext)) else {
        return false;
    };
    // Its section names checked, as limits::check checks every object's.
    if !ext.tables.iter().all(|t| t.sections().all(|n| btf.is_name(n))) {
        return false;
    }
    // Records of .text dropped; of other sections, the first 64 bytes'
    // moved to a section of a new name.
    ext.relocate(&mut btf, |btf, name_off, sec| match sec {
        ".text" => Fate {
            to: None,
            part: None,
        },
        s => Fate {
            to: Some(name_off),
            part: Some(Part {
                range: 0..64,
                to: btf.add_str(&format!("{s}.moved")),
                base: 1024,
            }),
        },
    });
    let recs = ext.records(&btf, 1, "xdp");
    let _ = ext.set_records(&btf, 1, "xdp", recs);
    BtfExt::parse(&ext.to_bytes()).is_ok()
}

/// The ELF rewriter on an object within the limits (as every object it
/// gets is), its first function the entry: without the component reader's
/// checks, which libbpf makes.
pub fn rewrite(bytes: &[u8]) -> bool {
    if limits::check(bytes, "fuzzed.o").is_err() {
        return false;
    }
    let Ok(file) = object::File::parse(bytes) else {
        return false;
    };
    use object::{Object, ObjectSymbol};
    let Some(entry) = file
        .symbols()
        .find(|s| s.kind() == object::SymbolKind::Text)
        .and_then(|s| s.name().ok().map(str::to_string))
    else {
        return false;
    };
    let spec = Spec {
        entry: &entry,
        entry_as: "xdpchain_slot_0",
        tag: "c0",
        strip_debug_info: bytes.len() % 2 == 0,
        hidden: true,
    };
    rewrite::rewrite(bytes, "fuzzed.o", &spec).is_ok()
}

/// The instruction transformer: `bytes` are instructions, the first byte
/// of each of the first words says where functions start, and the slots are
/// every function but the first.
pub fn generate(bytes: &[u8]) -> bool {
    let insns: Vec<_> = insn::decode_all(bytes).collect();
    if insns.is_empty() {
        return false;
    }
    let mut starts: Vec<u32> = bytes
        .iter()
        .take(16)
        .map(|&b| b as u32 % insns.len() as u32)
        .collect();
    starts.push(0);
    starts.sort_unstable();
    starts.dedup();
    let func_info: Vec<FuncInfo> = starts
        .iter()
        .map(|&insn_off| FuncInfo {
            insn_off,
            type_id: 1,
        })
        .collect();
    let line_info: Vec<LineInfo> = starts
        .iter()
        .map(|&insn_off| LineInfo {
            insn_off,
            file_name_off: 0,
            line_off: 0,
            line_col: 0,
        })
        .collect();
    let slots: Vec<Slot> = starts[1..]
        .iter()
        .enumerate()
        .map(|(n, &start)| Slot {
            start: start as usize,
            continue_on: u32::from(bytes[n % bytes.len()]) * 0x0101,
            stat_index: n as u32,
            copyable: bytes[bytes.len() - 1 - n % bytes.len()] % 4 != 0,
        })
        .collect();
    let program = Program {
        insns: &insns,
        func_info: &func_info,
        line_info: &line_info,
    };
    let counting = (bytes[0] % 2 == 0).then_some(inline::CountMaps {
        stats: 3,
        ctl: (bytes[0] % 4 == 0).then_some(4),
        // The dump functions are two of the functions after the first, where
        // there are any (found by fuzzing: a program of one function).
        dump: (bytes[0] % 8 == 0 && starts.len() > 1).then(|| inline::DumpFns {
            start: starts[1] as usize,
            slot: starts[starts.len() - 1] as usize,
        }),
    });
    inline::generate(&program, &slots, counting).is_ok()
}
