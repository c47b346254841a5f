//! The generated root (inline.rs) in a linked chain's object, for loaders
//! that relocate it themselves (bpftool, iproute2, libxdp): the same
//! transformation, made before relocation. The root's section gets the
//! generated code; what it copies from `.text` brings its relocations and
//! CO-RE records along; what it calls stays in `.text`, where libbpf wants
//! subprograms, and the calls become relocations against it. The copied
//! functions stay behind in `.text`, where nothing calls them and libbpf
//! loads none of them.

use std::collections::HashMap;
use std::ops::Range;

use object::build::elf::{Builder, Relocation, SectionData, SectionId, SymbolId};
use object::elf;

use crate::btf::{rd32, wr32, Btf, BtfExt};
use crate::error::{not_inlined, Result};
use crate::inline::{self, Program};
use crate::insn::*;
use crate::rewrite::{self, relocation_section, section_bytes, section_named};
use crate::root::{self, Config};

pub const FUNC_INFO: usize = 0;
pub const LINE_INFO: usize = 1;
const CORE_RELO: usize = 2;

pub fn word(rec: &[u8], at: usize) -> u32 {
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
pub fn generate(bytes: &[u8], config: &Config, counting: bool) -> Result<Vec<u8>> {
    let name = "linked chain";
    let mut b = rewrite::open(bytes, name)?;
    let linked = Linked::read(&b)?;
    let (insns, kept) = relocate_calls(&b, &linked)?;
    let func_info: Vec<FuncInfo> = linked
        .records(FUNC_INFO)
        .iter()
        .map(|(pc, r)| FuncInfo {
            insn_off: *pc as u32,
            type_id: word(r, 4),
        })
        .collect();
    let line_info: Vec<LineInfo> = linked
        .records(LINE_INFO)
        .iter()
        .map(|(pc, r)| LineInfo {
            insn_off: *pc as u32,
            file_name_off: word(r, 4),
            line_off: word(r, 8),
            line_col: word(r, 12),
        })
        .collect();
    let core = linked.records(CORE_RELO);
    let slots = slots(&b, &linked, config, &insns, &func_info, &core)?;
    let program = Program {
        insns: &insns,
        func_info: &func_info,
        line_info: &line_info,
    };
    // The counting maps are referenced by relocations below, not by fds.
    let maps = inline::CountMaps {
        stats: 0,
        ctl: Some(0),
        dump: inline::DumpFns::find(&func_info, &linked.btf),
    };
    let g = inline::generate(&program, &slots, counting.then_some(maps))?;
    let (generated, relocs) = emit(&b, &linked, &g, &kept)?;
    let records = root_records(&linked, &g, &core);
    linked.place(&mut b, &g, generated, relocs, records)?;
    log::info!("{g}");
    rewrite::finish(b, name)
}

/// The linked chain as one program, as libbpf would relocate it: the
/// root, then `.text`.
struct Linked {
    root_sym: SymbolId,
    /// The root's section, and its name: the root shares it with the
    /// other programs linked into it (components' tail-call targets).
    rs: SectionId,
    rs_name: String,
    ts: SectionId,
    ext_id: SectionId,
    btf: Btf,
    ext: BtfExt,
    /// The root's section, decoded; the root is its range `root`.
    section: Vec<Insn>,
    root: Range<usize>,
    /// The root's code, then `.text`'s.
    original: Vec<Insn>,
}

impl Linked {
    fn read(b: &Builder<'_>) -> Result<Linked> {
        let root_sym =
            symbol_named(b, root::PROG_NAME).ok_or_else(|| not_inlined("no root program"))?;
        let rs = b
            .symbols
            .get(root_sym)
            .section
            .ok_or_else(|| not_inlined("no root section"))?;
        let ts = section_named(b, ".text").ok_or_else(|| not_inlined("no .text"))?;
        let (btf_id, ext_id) = (section_named(b, ".BTF"), section_named(b, ".BTF.ext"));
        let (btf_id, ext_id) = btf_id
            .zip(ext_id)
            .ok_or_else(|| not_inlined("no BTF or BTF.ext"))?;
        let size = |id: SectionId| section_bytes(b.sections.get(id)).len();
        inline::within_reach((size(rs) + size(ts)) / SIZE)?;
        let btf = Btf::parse(section_bytes(b.sections.get(btf_id)))?;
        let ext = BtfExt::parse(section_bytes(b.sections.get(ext_id)))?;
        let code =
            |id: SectionId| decode_all(section_bytes(b.sections.get(id))).collect::<Vec<_>>();
        let section = code(rs);
        let y = b.symbols.get(root_sym);
        let end = y.st_value.saturating_add(y.st_size);
        let root = (y.st_value as usize / SIZE)..(end as usize / SIZE);
        let root_code = section
            .get(root.clone())
            .ok_or_else(|| not_inlined("the root off its section"))?;
        let original = root_code.iter().copied().chain(code(ts)).collect();
        Ok(Linked {
            root_sym,
            rs,
            rs_name: String::from_utf8_lossy(&b.sections.get(rs).name).into_owned(),
            ts,
            ext_id,
            btf,
            ext,
            section,
            root,
            original,
        })
    }

    /// Where `.text` starts in the program.
    fn base(&self) -> usize {
        self.root.len()
    }

    /// Where the instruction `k` of `sec` is in the program.
    fn flat(&self, sec: SectionId, k: usize) -> Option<usize> {
        match sec == self.rs {
            true => self.root.contains(&k).then(|| k - self.root.start),
            false => (k < self.original.len() - self.base()).then_some(self.base() + k),
        }
    }

    /// The BTF.ext records of `table` for the program, by where they apply.
    fn records(&self, table: usize) -> Vec<(usize, Vec<u8>)> {
        let mut out: Vec<(usize, Vec<u8>)> = [(self.rs_name.as_str(), self.rs), (".text", self.ts)]
            .into_iter()
            .flat_map(|(name, sec)| {
                self.ext
                    .records(&self.btf, table, name)
                    .into_iter()
                    .filter_map(move |r| Some((self.flat(sec, word(&r, 0) as usize / SIZE)?, r)))
            })
            .collect();
        out.sort_by_key(|(pc, _)| *pc);
        out
    }

    /// Puts the generated root (its instructions `generated`, relocations
    /// `relocs` and BTF.ext `records`, all from offset 0) in the compiled
    /// one's place; what follows it in the section moves by the
    /// difference.
    fn place(
        mut self,
        b: &mut Builder<'_>,
        g: &inline::Generated,
        generated: Vec<Insn>,
        mut relocs: Vec<Relocation>,
        records: [(usize, Vec<Vec<u8>>); 3],
    ) -> Result<()> {
        let (root, base) = (self.root.clone(), self.base());
        let shift = |off: u64| match off as usize / SIZE {
            k if k < root.start => Some(off),
            k if k >= root.end => {
                Some((off as i64 + (g.root_len as i64 - base as i64) * SIZE as i64) as u64)
            }
            _ => None,
        };
        let placed = |off: usize| root.start * SIZE + off;
        for (table, mut recs) in records {
            for r in &mut recs {
                *r = moved(r, placed(word(r, 0) as usize));
            }
            for r in self.ext.records(&self.btf, table, &self.rs_name) {
                recs.extend(shift(word(&r, 0).into()).map(|off| moved(&r, off as usize)));
            }
            recs.sort_by_key(|r| word(r, 0));
            self.ext
                .set_records(&self.btf, table, &self.rs_name, recs)?;
        }
        let rel = relocation_section(b, self.rs)
            .ok_or_else(|| not_inlined("the root has no relocations"))?;
        if let SectionData::Relocation(others) = &mut b.sections.get_mut(rel).data {
            for r in others.drain(..) {
                relocs.extend(shift(r.r_offset).map(|r_offset| Relocation { r_offset, ..r }));
            }
            for r in &mut relocs[..] {
                r.r_offset = placed(r.r_offset as usize) as u64;
            }
            *others = relocs;
        }
        for y in b.symbols.iter_mut().filter(|y| y.section == Some(self.rs)) {
            if y.id() == self.root_sym {
                y.st_size = (g.root_len * SIZE) as u64;
            } else if let Some(v) = shift(y.st_value) {
                y.st_value = v;
            }
        }
        let s = &self.section;
        let code = [&s[..root.start], &generated, &s[root.end..]].concat();
        let code: Vec<u8> = code.into_iter().flat_map(Insn::encode).collect();
        b.sections.get_mut(self.rs).data = SectionData::Data(code.into());
        b.sections.get_mut(self.ext_id).data = SectionData::Data(self.ext.to_bytes().into());
        Ok(())
    }
}

/// The program's instructions with calls and callbacks into `.text` made
/// pc-relative, as after libbpf's relocation; and every other relocation,
/// kept by the instruction it applies to.
fn relocate_calls(
    b: &Builder<'_>,
    linked: &Linked,
) -> Result<(Vec<Insn>, HashMap<usize, Relocation>)> {
    let (ts, base) = (linked.ts, linked.base());
    let mut insns = linked.original.clone();
    let mut kept: HashMap<usize, Relocation> = HashMap::new();
    for sec in [linked.rs, ts] {
        let Some(rel) = relocation_section(b, sec) else {
            continue;
        };
        let SectionData::Relocation(relocs) = &b.sections.get(rel).data else {
            return Err(not_inlined("relocations that are not"));
        };
        for r in relocs {
            if r.r_offset % SIZE as u64 != 0 {
                return Err(not_inlined("a relocation off an instruction"));
            }
            let Some(pc) = usize::try_from(r.r_offset)
                .ok()
                .and_then(|o| linked.flat(sec, o / SIZE))
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
                        .map_err(|_| not_inlined("a call out of range"))?;
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
    Ok((insns, kept))
}

/// The slots of `config` in the program: where each slot's function
/// starts, and whether the inliner may copy it in.
fn slots(
    b: &Builder<'_>,
    linked: &Linked,
    config: &Config,
    insns: &[Insn],
    func_info: &[FuncInfo],
    core: &[(usize, Vec<u8>)],
) -> Result<Vec<inline::Slot>> {
    let mut slots = inline::slots(config, func_info, &linked.btf)?;
    for (n, s) in slots.iter_mut().enumerate() {
        // The function the linker chose (weak placeholders stay behind in
        // .text under the same name), hidden in the object: libbpf makes
        // its BTF static when loading.
        let y = symbol_named(b, &root::slot_function(n)).map(|y| b.symbols.get(y));
        let y = y
            .filter(|y| y.section == Some(linked.ts))
            .ok_or_else(|| not_inlined("a slot not in .text"))?;
        s.start = linked.base() + y.st_value as usize / SIZE;
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
            .any(|(pc, _)| (s.start..end).contains(pc) && inline::rebases(insns, *pc));
        s.copyable = hidden && !relocated;
    }
    Ok(slots)
}

/// The generated root's instructions as the object holds them, and their
/// relocations: what it copied keeps its own; what it calls stays in
/// `.text`, reached by a relocation against a symbol there; the counters'
/// map and control word by theirs.
fn emit(
    b: &Builder<'_>,
    linked: &Linked,
    g: &inline::Generated,
    kept: &HashMap<usize, Relocation>,
) -> Result<(Vec<Insn>, Vec<Relocation>)> {
    let text_sym = b
        .symbols
        .iter()
        .filter(|y| y.section == Some(linked.ts))
        .min_by_key(|y| (y.st_type() != elf::STT_SECTION, y.st_value))
        .map(|y| (y.id(), y.st_value as i64 / SIZE as i64))
        .ok_or_else(|| not_inlined("no symbol in .text"))?;
    let stats_sym = symbol_named(b, root::STATS_MAP);
    let ctl_sym = symbol_named(b, root::CTL_VAR);
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
                relocate(
                    r.symbol
                        .ok_or_else(|| not_inlined("a relocation without a symbol"))?,
                    r.r_type,
                );
                i = linked.original[o];
            }
            _ if inline::code_ref(&i) => {
                let to = inline::target(pc, &i).and_then(|t| *g.origin.get(t)?);
                let to = to
                    .and_then(|o| o.checked_sub(linked.base()))
                    .ok_or_else(|| not_inlined("a call out of .text"))?;
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
                relocate(
                    stats_sym.ok_or_else(|| not_inlined("no counters map"))?,
                    elf::R_BPF_64_64,
                );
            }
            // The variable's address: libbpf adds its offset to imm.
            None if i.code == LD_IMM64 && i.src == PSEUDO_MAP_VALUE => {
                (i.src, i.imm) = (0, 0);
                relocate(
                    ctl_sym.ok_or_else(|| not_inlined("no control word"))?,
                    elf::R_BPF_64_64,
                );
            }
            _ => {}
        }
        generated.push(i);
    }
    Ok((generated, relocs))
}

/// The generated root's BTF.ext records, by table, from offset 0: its
/// function's, the generated lines', and the CO-RE records of what was
/// copied in.
fn root_records(
    linked: &Linked,
    g: &inline::Generated,
    core: &[(usize, Vec<u8>)],
) -> [(usize, Vec<Vec<u8>>); 3] {
    let root_func: Vec<Vec<u8>> = linked
        .records(FUNC_INFO)
        .into_iter()
        .filter(|(pc, _)| *pc == 0)
        .map(|(_, r)| r)
        .collect();
    let root_lines: Vec<Vec<u8>> = g
        .line_info
        .iter()
        .filter(|l| (l.insn_off as usize) < g.root_len)
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
    [
        (FUNC_INFO, root_func),
        (LINE_INFO, root_lines),
        (CORE_RELO, root_core),
    ]
}
