//! The generated root (inline.rs) in a linked chain's object, for loaders
//! that relocate it themselves (bpftool, iproute2, libxdp): the same
//! transformation, made before relocation. The root's section gets the
//! generated code; what it copies from `.text` brings its relocations and
//! CO-RE records along; what it calls stays in `.text`, where libbpf wants
//! subprograms, and the calls become relocations against it. The copied
//! functions stay behind in `.text`, where nothing calls them and libbpf
//! loads none of them.

use std::collections::HashMap;

use object::build::elf::{Builder, Relocation, SectionData, SectionId, SymbolId};
use object::elf;

use crate::btf::{rd32, wr32, Btf, BtfExt};
use crate::inline::{self, Program};
use crate::insn::*;
use crate::rewrite::{self, relocation_section, section_bytes, section_named};
use crate::root::{self, Config};

const FUNC_INFO: usize = 0;
const LINE_INFO: usize = 1;
const CORE_RELO: usize = 2;

fn word(rec: &[u8], at: usize) -> u32 {
    rd32(rec, at).unwrap_or(0)
}

/// A BTF.ext record moved to byte offset `off`.
fn moved(rec: &[u8], off: usize) -> Vec<u8> {
    let mut rec = rec.to_vec();
    wr32(&mut rec, 0, off as u32);
    rec
}

fn symbol_named(b: &Builder<'_>, name: &str) -> Option<SymbolId> {
    b.symbols
        .iter()
        .find(|y| y.name.as_slice() == name.as_bytes())
        .map(|y| y.id())
}

/// The linked object `bytes` of a chain configured as `config`, with its
/// root generated; Err says why not (the object then keeps its compiled
/// root).
pub(crate) fn generate(bytes: &[u8], config: &Config, counting: bool) -> Result<Vec<u8>, String> {
    let name = "linked chain";
    let mut b = rewrite::open(bytes, name).map_err(|e| e.to_string())?;
    let root_sym = symbol_named(&b, root::PROG_NAME).ok_or("no root program")?;
    let rs = b.symbols.get(root_sym).section.ok_or("no root section")?;
    let ts = section_named(&b, ".text").ok_or("no .text")?;
    let (btf_id, ext_id) = (section_named(&b, ".BTF"), section_named(&b, ".BTF.ext"));
    let (btf_id, ext_id) = btf_id.zip(ext_id).ok_or("no BTF or BTF.ext")?;
    let btf = Btf::parse(section_bytes(b.sections.get(btf_id))).map_err(|e| e.to_string())?;
    let mut ext =
        BtfExt::parse(section_bytes(b.sections.get(ext_id))).map_err(|e| e.to_string())?;
    let code = |id: SectionId| decode_all(section_bytes(b.sections.get(id))).collect::<Vec<_>>();
    // The root shares its section with the other programs linked into it
    // (components' tail-call targets): it is the range `root` of it.
    let section = code(rs);
    let y = b.symbols.get(root_sym);
    let end = y.st_value.saturating_add(y.st_size);
    let root = (y.st_value as usize / SIZE)..(end as usize / SIZE);
    let root_code = section
        .get(root.clone())
        .ok_or("the root off its section")?;
    // One program as libbpf would relocate it: the root, then .text.
    let base = root.len();
    let original: Vec<Insn> = root_code.iter().copied().chain(code(ts)).collect();
    let mut insns = original.clone();
    // Where the instruction `k` of `sec` is in that program.
    let flat = |sec: SectionId, k: usize| match sec == rs {
        true => root.contains(&k).then(|| k - root.start),
        false => (k < original.len() - base).then_some(base + k),
    };

    // Calls and callbacks into .text become pc-relative, as after libbpf's
    // relocation; every other relocation stays, by what it applies to.
    let mut kept: HashMap<usize, Relocation> = HashMap::new();
    for sec in [rs, ts] {
        let Some(rel) = relocation_section(&b, sec) else {
            continue;
        };
        let SectionData::Relocation(relocs) = &b.sections.get(rel).data else {
            return Err("relocations that are not".into());
        };
        for r in relocs {
            if r.r_offset % SIZE as u64 != 0 {
                return Err("a relocation off an instruction".into());
            }
            let Some(pc) = usize::try_from(r.r_offset)
                .ok()
                .and_then(|o| flat(sec, o / SIZE))
            else {
                continue;
            };
            let i = &mut insns[pc];
            let call = i.code == CLASS_JMP | OP_CALL;
            let sym = r.symbol.map(|y| b.symbols.get(y));
            match sym {
                Some(y) if y.section == Some(ts) && (call || i.code == LD_IMM64) => {
                    let (value, imm) = (y.st_value as i64, i.imm as i64);
                    let to = match call {
                        true => value / SIZE as i64 + imm + 1,
                        false => (value + imm) / SIZE as i64,
                    };
                    i.imm = i32::try_from(base as i64 + to - pc as i64 - 1)
                        .map_err(|_| "a call out of range")?;
                    if !call {
                        i.src = PSEUDO_FUNC;
                    }
                }
                // A kfunc, which libbpf resolves to a BTF id: as it will be.
                Some(y) if call && y.section.is_none() => {
                    (i.src, i.off) = (PSEUDO_KFUNC_CALL, 0);
                    kept.insert(pc, *r);
                }
                _ => {
                    kept.insert(pc, *r);
                }
            }
        }
    }

    let rs_name = String::from_utf8_lossy(&b.sections.get(rs).name).into_owned();
    let records = |table: usize| -> Vec<(usize, Vec<u8>)> {
        let mut out: Vec<(usize, Vec<u8>)> = [(rs_name.as_str(), rs), (".text", ts)]
            .into_iter()
            .flat_map(|(name, sec)| {
                ext.records(&btf, table, name)
                    .into_iter()
                    .filter_map(move |r| Some((flat(sec, word(&r, 0) as usize / SIZE)?, r)))
            })
            .collect();
        out.sort_by_key(|(pc, _)| *pc);
        out
    };
    let func_info: Vec<FuncInfo> = records(FUNC_INFO)
        .iter()
        .map(|(pc, r)| FuncInfo {
            insn_off: *pc as u32,
            type_id: word(r, 4),
        })
        .collect();
    let line_info: Vec<LineInfo> = records(LINE_INFO)
        .iter()
        .map(|(pc, r)| LineInfo {
            insn_off: *pc as u32,
            file_name_off: word(r, 4),
            line_off: word(r, 8),
            line_col: word(r, 12),
        })
        .collect();
    let core = records(CORE_RELO);

    let mut slots = inline::slots(config, &func_info, &btf)?;
    for (n, s) in slots.iter_mut().enumerate() {
        // The function the linker chose (weak placeholders stay behind in
        // .text under the same name), hidden in the object: libbpf makes
        // its BTF static when loading.
        let y = symbol_named(&b, &root::slot_function(n)).map(|y| b.symbols.get(y));
        let y = y
            .filter(|y| y.section == Some(ts))
            .ok_or("a slot not in .text")?;
        s.start = base + y.st_value as usize / SIZE;
        let hidden = y.st_bind() == elf::STB_LOCAL || y.st_other.visibility() == elf::STV_HIDDEN;
        // libbpf applies CO-RE after this: to an instruction that the copy
        // rebases, it would give back the offset the copy moved.
        let end = func_info
            .iter()
            .map(|f| f.insn_off as usize)
            .find(|&f| f > s.start)
            .unwrap_or(insns.len());
        let relocated = core
            .iter()
            .any(|(pc, _)| (s.start..end).contains(pc) && inline::rebases(&insns, *pc));
        s.copyable = hidden && !relocated;
    }
    let program = Program {
        insns: &insns,
        func_info: &func_info,
        line_info: &line_info,
    };
    // The counting maps are referenced by relocations below, not by fds.
    let maps = inline::CountMaps {
        stats: 0,
        ctl: Some(0),
        dump: inline::DumpFns::find(&func_info, &btf),
    };
    let g = inline::generate(&program, &slots, counting.then_some(maps))?;

    // What it calls stays where it is in .text: a relocation against a
    // symbol there says where.
    let text_sym = b
        .symbols
        .iter()
        .filter(|y| y.section == Some(ts))
        .min_by_key(|y| (y.st_type() != elf::STT_SECTION, y.st_value))
        .map(|y| (y.id(), y.st_value as i64 / SIZE as i64))
        .ok_or("no symbol in .text")?;
    let stats_sym = symbol_named(&b, root::STATS_MAP);
    let ctl_sym = symbol_named(&b, root::CTL_VAR);
    let mut generated = Vec::with_capacity(g.root_len);
    let mut relocs = Vec::new();
    for pc in 0..g.root_len {
        let mut i = g.insns[pc];
        let mut relocate = |symbol: SymbolId, r_type: elf::RelocationType| {
            relocs.push(Relocation {
                r_offset: (pc * SIZE) as u64,
                symbol: Some(symbol),
                r_type,
                r_addend: 0,
            })
        };
        match g.origin[pc] {
            Some(o) if kept.contains_key(&o) => {
                let r = &kept[&o];
                relocate(r.symbol.ok_or("a relocation without a symbol")?, r.r_type);
                i = original[o];
            }
            _ if inline::code_ref(&i) => {
                let to = inline::target(pc, &i).and_then(|t| *g.origin.get(t)?);
                let to = to
                    .and_then(|o| o.checked_sub(base))
                    .ok_or("a call out of .text")?;
                let (sym, first) = text_sym;
                if i.code == LD_IMM64 {
                    (i.src, i.imm) = (0, ((to as i64 - first) * SIZE as i64) as i32);
                    relocate(sym, elf::R_BPF_64_64);
                } else {
                    i.imm = (to as i64 - first - 1) as i32;
                    relocate(sym, elf::R_BPF_64_32);
                }
            }
            None if i.code == LD_IMM64 && i.src == PSEUDO_MAP_FD => {
                (i.src, i.imm) = (0, 0);
                relocate(stats_sym.ok_or("no counters map")?, elf::R_BPF_64_64);
            }
            // The variable's address: libbpf adds its offset to imm.
            None if i.code == LD_IMM64 && i.src == PSEUDO_MAP_VALUE => {
                (i.src, i.imm) = (0, 0);
                relocate(ctl_sym.ok_or("no control word")?, elf::R_BPF_64_64);
            }
            _ => {}
        }
        generated.push(i);
    }

    // The root's records: its function's, the generated lines', and the
    // CO-RE records of what was copied in.
    let root_func: Vec<Vec<u8>> = records(FUNC_INFO)
        .into_iter()
        .filter(|(pc, _)| *pc == 0)
        .map(|(_, r)| r)
        .collect();
    let root_lines = g
        .line_info
        .iter()
        .filter(|l| (l.insn_off as usize) < g.root_len);
    let root_lines: Vec<Vec<u8>> = root_lines
        .map(|l| {
            [
                l.insn_off * SIZE as u32,
                l.file_name_off,
                l.line_off,
                l.line_col,
            ]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect()
        })
        .collect();
    let by_origin: HashMap<usize, usize> = g.origin[..g.root_len]
        .iter()
        .enumerate()
        .filter_map(|(pc, o)| Some(((*o)?, pc)))
        .collect();
    let root_core: Vec<Vec<u8>> = core
        .iter()
        .filter_map(|(o, r)| Some(moved(r, by_origin.get(o)? * SIZE)))
        .collect();

    // In the section, the generated root takes the compiled one's place,
    // and what follows it moves by the difference.
    let shift = |off: u64| match off as usize / SIZE {
        k if k < root.start => Some(off),
        k if k >= root.end => {
            Some((off as i64 + (g.root_len as i64 - base as i64) * SIZE as i64) as u64)
        }
        _ => None,
    };
    let placed = |off: usize| root.start * SIZE + off;
    for (table, mut recs) in [
        (FUNC_INFO, root_func),
        (LINE_INFO, root_lines),
        (CORE_RELO, root_core),
    ] {
        for r in &mut recs {
            *r = moved(r, placed(word(r, 0) as usize));
        }
        for r in ext.records(&btf, table, &rs_name) {
            recs.extend(shift(word(&r, 0).into()).map(|off| moved(&r, off as usize)));
        }
        recs.sort_by_key(|r| word(r, 0));
        ext.set_records(&btf, table, &rs_name, recs)
            .map_err(|e| e.to_string())?;
    }
    let rel = relocation_section(&b, rs).ok_or("the root has no relocations")?;
    if let SectionData::Relocation(others) = &mut b.sections.get_mut(rel).data {
        for r in others.drain(..) {
            relocs.extend(shift(r.r_offset).map(|r_offset| Relocation { r_offset, ..r }));
        }
        for r in &mut relocs[..] {
            r.r_offset = placed(r.r_offset as usize) as u64;
        }
        *others = relocs;
    }
    for y in b.symbols.iter_mut().filter(|y| y.section == Some(rs)) {
        if y.id() == root_sym {
            y.st_size = (g.root_len * SIZE) as u64;
        } else if let Some(v) = shift(y.st_value) {
            y.st_value = v;
        }
    }
    let code = [&section[..root.start], &generated, &section[root.end..]].concat();
    let code: Vec<u8> = code.into_iter().flat_map(Insn::encode).collect();
    b.sections.get_mut(rs).data = SectionData::Data(code.into());
    b.sections.get_mut(ext_id).data = SectionData::Data(ext.to_bytes().into());
    log::info!("{g}");
    rewrite::finish(b, name).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    //! Objects that `Chain::link` writes of two copies of the unit tests'
    //! component (bpf/testdata), read back: no kernel, no privileges. (A
    //! root that shares its section with tail-call targets is tested on
    //! the kernel, in tests/inline.rs.)
    use object::read::elf::ElfFile64;
    use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};

    use super::*;
    use crate::{Chain, Component};

    const COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/test_component.bpf.o"));

    fn linked(inline: bool) -> Vec<u8> {
        let mut chain = Chain::new();
        chain.set_inlining(inline);
        chain.set_counting(true);
        for _ in 0..2 {
            let c = Component::from_bytes(COMPONENT, "component.o", Some("xdp_first")).unwrap();
            chain.add(c).unwrap();
        }
        chain.link().unwrap()
    }

    #[test]
    fn the_root_is_generated_with_its_relocations_and_records() {
        let (bytes, compiled) = (linked(true), linked(false));
        let file = ElfFile64::<object::LittleEndian>::parse(&*bytes).unwrap();
        let sym = |name: &str| file.symbols().find(|s| s.name() == Ok(name)).unwrap();
        let root = sym(root::PROG_NAME);
        let xdp = file
            .section_by_index(root.section_index().unwrap())
            .unwrap();
        let text = file.section_by_name(".text").unwrap();
        let code: Vec<Insn> = decode_all(xdp.data().unwrap()).collect();
        let other = ElfFile64::<object::LittleEndian>::parse(&*compiled).unwrap();
        let compiled_root = other.symbols().find(|s| s.name() == Ok(root::PROG_NAME));
        assert!(root.size() < compiled_root.unwrap().size());

        // In the root, relocations apply to map references and to calls of
        // the functions that stay in .text (bump, shared_helper), at their
        // starts.
        let starts: Vec<u64> = file
            .symbols()
            .filter(|s| {
                s.section_index() == Some(text.index()) && s.kind() == object::SymbolKind::Text
            })
            .map(|s| s.address())
            .collect();
        let (mut calls, mut maps) = (0, Vec::new());
        for (off, r) in xdp.relocations() {
            if off >= root.size() {
                continue;
            }
            let i = code[off as usize / SIZE];
            let RelocationTarget::Symbol(y) = r.target() else {
                panic!("a relocation against no symbol");
            };
            let y = file.symbol_by_index(y).unwrap();
            if i.code == CLASS_JMP | OP_CALL {
                assert_eq!(y.section_index(), Some(text.index()));
                let to = (y.address() as i64 / SIZE as i64 + i.imm as i64 + 1) as u64 * SIZE as u64;
                assert!(starts.contains(&to), "a call into the middle of a function");
                calls += 1;
            } else {
                assert_eq!(i.code, LD_IMM64);
                maps.push(y.name().unwrap().to_string());
            }
        }
        // Each copy calls shared_helper and bump, and refers to its map and
        // globals (port is shared_helper's); the counters count after each;
        // the control word is read at the start (and cleared there), where
        // a dump starts, and after each slot its dump point is.
        assert_eq!(calls, 4 + 1 + 2);
        maps.sort();
        let expected = [
            "c0_hits", "c0_limit", "c0_seen", "c1_hits", "c1_limit", "c1_seen",
        ];
        let stats = [root::STATS_MAP; 2];
        // Twice for timing, once for the dump deadline.
        let ctl = [root::CTL_VAR; 3];
        assert_eq!(maps, [&expected[..], &ctl, &stats].concat());

        // The root's func_info is its own only; its lines are in order,
        // the copies' among them.
        let btf = Btf::parse(file.section_by_name(".BTF").unwrap().data().unwrap()).unwrap();
        let ext = file.section_by_name(".BTF.ext").unwrap();
        let ext = BtfExt::parse(ext.data().unwrap()).unwrap();
        let name = xdp.name().unwrap();
        let funcs: Vec<u64> = ext
            .records(&btf, FUNC_INFO, name)
            .iter()
            .map(|r| word(r, 0).into())
            .collect();
        assert_eq!(funcs, [root.address()]);
        let lines: Vec<u64> = ext
            .records(&btf, LINE_INFO, name)
            .iter()
            .map(|r| word(r, 0).into())
            .collect();
        assert!(lines.is_sorted());
        let in_root = lines.iter().filter(|&&l| l < root.size()).count();
        assert!(in_root > 2, "the copies brought their lines");
    }
}
