//! Inlined static chains: once libbpf has relocated a linked chain, its root
//! is generated for that chain instead of run as compiled. The generated
//! root keeps ctx in one stack slot, copies each component's code in place
//! of its call (an `exit` becomes a jump to what follows), tests the
//! verdict against the slot's continue set as an immediate, and counts and
//! times (while a reader asks, see timing.rs) inline. Components it cannot prove safe to copy stay calls. See
//! ../shared/notes/inlining.md for where the cost of a call goes.
//!
//! Everything here is pure: instructions, func_info and line_info in,
//! instructions, func_info and line_info out.

use std::collections::{BTreeSet, HashMap};

use crate::btf::{Btf, Linkage};
use crate::error::{not_inlined, Result};
use crate::insn::*;
use crate::root::{
    slot_function, Config, CTL_DUMP_UNTIL, DUMP_SLOT_FN, DUMP_START_FN, STATS_RUN_CNT, STATS_RUN_NS,
};

const FP: u8 = 10;
const XDP_PASS: i32 = 2;
/// Verdicts above this count as "other" (chain.h's XDPCHAIN_OTHER).
const XDP_REDIRECT: i32 = 4;

/// The maps that counting code refers to: the counters and the control
/// word (each an fd, or what a relocation will replace). Without the
/// control word, no timing code: the root as it was before timing, which
/// only the benchmark builds. With `dump`, the root's dump functions.
#[derive(Clone, Copy, Debug)]
pub struct CountMaps {
    pub stats: i32,
    pub ctl: Option<i32>,
    pub dump: Option<DumpFns>,
}

/// Where the compiled root's functions that take dumps start (chain.h's
/// xdpchain_dump_start and xdpchain_dump_slot), which the generated root
/// calls as the compiled one does.
#[derive(Clone, Copy, Debug)]
pub struct DumpFns {
    pub start: usize,
    pub slot: usize,
}

impl DumpFns {
    /// Where they start in the program `func_info` and `btf` describe, if
    /// it has them.
    pub fn find(func_info: &[FuncInfo], btf: &Btf) -> Option<DumpFns> {
        let at = |name| function(func_info, btf, name).ok().map(|(start, _)| start);
        Some(DumpFns {
            start: at(DUMP_START_FN)?,
            slot: at(DUMP_SLOT_FN)?,
        })
    }
}

/// The root's frame: ctx, then with counting the counters' key and, in
/// the same 8 bytes, where this packet is dumped (chain.h's dump_after),
/// and the time the running slot's timing started (0 while nobody times).
/// Every byte of it is a byte less for the copies' frames.
const CTX_AT: i16 = -8;
const KEY_AT: i16 = -16;
const DUMP_AT: i16 = -12;
const SINCE_AT: i16 = -24;

/// The relocated root program, as libbpf would load it.
pub struct Program<'a> {
    pub insns: &'a [Insn],
    pub func_info: &'a [FuncInfo],
    pub line_info: &'a [LineInfo],
}

/// One slot of the chain, in run order.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    /// The first instruction of the slot's function in the program.
    pub start: usize,
    /// Verdicts (bit v: verdict v) on which the chain goes on after it.
    pub continue_on: u32,
    /// Its row in the counters.
    pub stat_index: u32,
    /// Whether the function may be copied at all (a static function; global
    /// ones are freplace targets and whole functions to the verifier).
    pub copyable: bool,
}

/// The generated root.
#[derive(Debug)]
pub struct Generated {
    pub insns: Vec<Insn>,
    pub func_info: Vec<FuncInfo>,
    pub line_info: Vec<LineInfo>,
    /// Per slot, whether its code was copied in (else it is called). Slots
    /// after one that never lets the chain go on cannot run: they are left
    /// out, and count as copied.
    pub inlined: Vec<bool>,
    /// Per instruction, the one of the input it copies, if any (an
    /// ld_imm64's second half has none): what a relocation or a CO-RE
    /// record of the input applies to in the output.
    pub origin: Vec<Option<usize>>,
    /// Where the root ends and the functions it calls begin.
    pub root_len: usize,
}

impl std::fmt::Display for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let copied = self.inlined.iter().filter(|i| **i).count();
        write!(
            f,
            "generated root: {} instructions, {copied} of {} components copied in",
            self.root_len,
            self.inlined.len()
        )
    }
}

fn class(i: &Insn) -> u8 {
    i.code & 0x07
}

fn op(i: &Insn) -> u8 {
    i.code & 0xf0
}

fn is_jump(i: &Insn) -> bool {
    matches!(class(i), CLASS_JMP | CLASS_JMP32) && !matches!(op(i), OP_CALL | OP_EXIT)
}

/// `gotol`: a JMP32 JA whose offset is in imm.
fn is_gotol(i: &Insn) -> bool {
    i.code == CLASS_JMP32 | OP_JA
}

fn is_exit(i: &Insn) -> bool {
    i.code == CLASS_JMP | OP_EXIT
}

fn is_pseudo_call(i: &Insn) -> bool {
    i.code == CLASS_JMP | OP_CALL && i.src == PSEUDO_CALL
}

/// Where a jump, pseudo call or pseudo func at `pc` goes.
pub fn target(pc: usize, i: &Insn) -> Option<usize> {
    let delta = if is_gotol(i) || code_ref(i) {
        i.imm as i64
    } else {
        i.off as i64
    };
    usize::try_from(pc as i64 + delta + 1).ok()
}

/// Whether `i` refers to code by a pc-relative imm: a call of a function
/// of the program, or a callback's address (bpf_loop, timers, ...).
pub fn code_ref(i: &Insn) -> bool {
    is_pseudo_call(i) || (i.code == LD_IMM64 && i.src == PSEUDO_FUNC)
}

fn width(i: &Insn) -> usize {
    if i.code == LD_IMM64 {
        2
    } else {
        1
    }
}

/// The instructions of `range` with their indices, an ld_imm64 once.
fn walk(insns: &[Insn], range: std::ops::Range<usize>) -> impl Iterator<Item = (usize, Insn)> + '_ {
    let mut pc = range.start;
    std::iter::from_fn(move || {
        let i = *insns.get(pc).filter(|_| pc < range.end)?;
        let at = pc;
        pc += width(&i);
        Some((at, i))
    })
}

/// Why the function `range` is called rather than copied, if it must be.
fn not_copyable(insns: &[Insn], range: std::ops::Range<usize>) -> Option<String> {
    let start = range.start;
    walk(insns, range).find_map(|(pc, i)| {
        let why = match class(&i) {
            _ if i.code == LD_IMM64 => matches!(i.src, PSEUDO_MAP_IDX | PSEUDO_MAP_IDX_VALUE)
                .then_some("maps by fd_array index"),
            CLASS_LD => Some("LD_ABS/LD_IND"),
            CLASS_JMP if i.code == CLASS_JMP | OP_CALL => match i.src {
                0 if i.calls_helper(HELPER_TAIL_CALL) => {
                    Some("a tail call, which would end the chain")
                }
                PSEUDO_KFUNC_CALL if i.off != 0 => Some("a kfunc of a module (fd_array)"),
                _ => None,
            },
            // Loads and stores based on the frame pointer, and copies of
            // it, are rebased; any other use of it (stored, compared,
            // computed on) is not.
            CLASS_LDX if i.dst == FP => Some("a write to r10"),
            CLASS_STX if i.src == FP => Some("r10 stored"),
            CLASS_LDX | CLASS_ST | CLASS_STX => None,
            _ if i.code == CLASS_ALU64 | OP_MOV | SRC_X && i.src == FP => {
                (i.dst == FP).then_some("a write to r10")
            }
            CLASS_ALU | CLASS_ALU64 | CLASS_JMP | CLASS_JMP32 => {
                let reads = i.code & SRC_X != 0 && i.src == FP;
                (reads || i.dst == FP).then_some("r10 used as a value")
            }
            _ => None,
        };
        why.map(|why| format!("{why} at instruction {}", pc - start))
    })
}

/// Whether `i` loads or stores at an offset from r10.
fn fp_based(i: &Insn) -> bool {
    match class(i) {
        CLASS_LDX => i.src == FP,
        CLASS_ST | CLASS_STX => i.dst == FP,
        _ => false,
    }
}

/// Whether a copy changes the offset or constant of instruction `pc`: a
/// load or store based on r10, or the `rX += K` after `rX = r10`. (Where
/// something else sets them later, as CO-RE does, the copy must not.)
pub fn rebases(insns: &[Insn], pc: usize) -> bool {
    let Some(i) = insns.get(pc) else {
        return false;
    };
    let after_fp = pc
        .checked_sub(1)
        .and_then(|k| insns.get(k))
        .is_some_and(|m| m.code == CLASS_ALU64 | OP_MOV | SRC_X && m.src == FP && m.dst == i.dst);
    fp_based(i) || i.code == CLASS_ALU64 | OP_ADD && after_fp
}

/// How deep below r10 the function `range` reaches, as far as its own
/// accesses and pointers (`rX = r10; rX += K`) tell.
fn frame_depth(insns: &[Insn], range: std::ops::Range<usize>) -> usize {
    let code: Vec<(usize, Insn)> = walk(insns, range).collect();
    let below = |off: i64| usize::try_from(-off).unwrap_or(0);
    code.iter()
        .enumerate()
        .map(|(k, (_, i))| match () {
            _ if fp_based(i) => below(i.off.into()),
            _ if i.code == CLASS_ALU64 | OP_MOV | SRC_X && i.src == FP => match code.get(k + 1) {
                Some((_, a)) if a.code == CLASS_ALU64 | OP_ADD && a.dst == i.dst => {
                    below(a.imm.into())
                }
                _ => 0,
            },
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

/// A BPF frame's size (MAX_BPF_STACK); the verifier allows tail calls only
/// below frames of less than 256 bytes in all (each rounded up to 32).
const MAX_FRAME: usize = 512;
const TAIL_CALL_FRAMES: usize = 224;
/// How deep calls may nest, the root's frame counted (MAX_CALL_FRAMES).
const MAX_CALL_FRAMES: usize = 8;
/// What a frame takes as the verifier adds frames up: rounded up to 32
/// bytes, with 24 more where the kernel inlines a bpf_loop (Linux 6.1).
fn frame(bytes: usize, loops: bool) -> usize {
    (bytes + if loops { 24 } else { 0 })
        .max(1)
        .next_multiple_of(32)
}

/// The deepest that calling the function at `start` takes the stack, its
/// frame and those of the calls below it added up, each function measured
/// once (`depths`); a call back into a function on the way adds nothing,
/// and calls nested deeper than the kernel allows count as too deep (it
/// refuses both).
fn call_depth(
    p: &Program<'_>,
    funcs: &[std::ops::Range<usize>],
    start: usize,
    depths: &mut HashMap<usize, Option<usize>>,
    level: usize,
) -> usize {
    let Ok(f) = funcs.binary_search_by_key(&start, |f| f.start) else {
        return 0;
    };
    if level > MAX_CALL_FRAMES {
        return MAX_FRAME + 1;
    }
    if let Some(known) = depths.get(&start) {
        return known.unwrap_or(0);
    }
    depths.insert(start, None);
    let (below, loops) = callees(p, funcs, funcs[f].clone(), depths, level);
    let depth = frame(frame_depth(p.insns, funcs[f].clone()), loops) + below;
    depths.insert(start, Some(depth));
    depth
}

/// For the code `range` at call nesting `level`: the deepest that its calls
/// take the stack below its frame, and whether it calls bpf_loop.
fn callees(
    p: &Program<'_>,
    funcs: &[std::ops::Range<usize>],
    range: std::ops::Range<usize>,
    depths: &mut HashMap<usize, Option<usize>>,
    level: usize,
) -> (usize, bool) {
    let (mut below, mut loops) = (0, false);
    for (pc, i) in walk(p.insns, range) {
        loops |= i.calls_helper(HELPER_LOOP);
        if let Some(t) = target(pc, &i).filter(|_| code_ref(&i)) {
            below = below.max(call_depth(p, funcs, t, depths, level + 1));
        }
    }
    (below, loops)
}

/// Whether the root's frame (`shift` bytes of its own, then the deepest of
/// the copies) and the frames of what it calls (slots left as calls, and
/// the functions at `calls`) stay within 512 bytes, as the verifier adds
/// them up along every chain of calls.
fn frames_fit(
    p: &Program<'_>,
    funcs: &[std::ops::Range<usize>],
    slots: &[Slot],
    inlined: &[bool],
    shift: usize,
    calls: &[usize],
) -> bool {
    let (mut own, mut loops, mut below) = (shift, false, 0);
    let mut depths = HashMap::new();
    for (s, _) in slots.iter().zip(inlined).filter(|(_, i)| **i) {
        let Some(f) = funcs.iter().find(|f| f.start == s.start) else {
            continue;
        };
        own = own.max(shift + frame_depth(p.insns, f.clone()));
        let (deepest, calls_loop) = callees(p, funcs, f.clone(), &mut depths, 1);
        below = below.max(deepest);
        loops |= calls_loop;
    }
    let called = slots.iter().zip(inlined).filter(|(_, i)| !**i);
    for start in called.map(|(s, _)| s.start).chain(calls.iter().copied()) {
        below = below.max(call_depth(p, funcs, start, &mut depths, 2));
    }
    frame(own, loops) + below <= MAX_FRAME
}

fn raw(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// What is emitted, before jump and call targets are known.
enum Emit {
    Insn(Insn),
    /// An ld_imm64, both halves.
    Wide(Insn, Insn),
    /// A jump (or gotol) to a label.
    Jump(Insn, Label),
    /// A pseudo call, or a pseudo func with its second half, to the
    /// function that started at an old index.
    Code(Insn, Option<Insn>, usize),
}

impl Emit {
    fn width(&self) -> usize {
        match self {
            Emit::Wide(..) | Emit::Code(_, Some(_), _) => 2,
            _ => 1,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Label {
    /// Old instruction `pc` as copied for slot `slot`.
    Old { slot: usize, pc: usize },
    /// After slot `n` ran.
    Cont(usize),
    /// After slot `n` counted.
    Counted(usize),
    /// Where the first slot starts, timing decided.
    Start,
    /// The timing deadline has passed.
    Expired,
    /// Where the first slot starts, the dump point decided.
    Dumping,
    /// After slot `n`'s dump point.
    Dumped(usize),
    /// The exit, with the verdict in r0.
    Out,
}

#[derive(Default)]
struct Builder {
    /// What is emitted, with the input instruction it copies.
    code: Vec<(Emit, Option<usize>)>,
    len: usize,
    labels: HashMap<Label, usize>,
    /// The input instruction that the next emitted one copies.
    copying: Option<usize>,
}

impl Builder {
    fn emit(&mut self, e: Emit) {
        self.len += e.width();
        self.code.push((e, self.copying.take()));
    }

    fn insn(&mut self, i: Insn) {
        self.emit(Emit::Insn(i));
    }

    fn jump(&mut self, code: u8, dst: u8, imm: i32, to: Label) {
        self.emit(Emit::Jump(raw(code, dst, 0, 0, imm), to));
    }

    fn label(&mut self, l: Label) {
        self.labels.insert(l, self.len);
    }

    /// Copies the function `range` of `insns` as slot `slot`'s body, its
    /// frame `shift` bytes further down, its exits jumping to the slot's
    /// continuation.
    fn copy_body(
        &mut self,
        insns: &[Insn],
        range: std::ops::Range<usize>,
        slot: usize,
        shift: i16,
    ) -> Result<()> {
        let targets: BTreeSet<usize> = walk(insns, range.clone())
            .filter(|(_, i)| is_jump(i))
            .filter_map(|(pc, i)| target(pc, &i))
            .collect();
        // `rX = r10; rX += K` becomes `rX = r10; rX += K - shift` where no
        // jump lands between the two.
        let folds = |pc: usize, i: &Insn| {
            let next = insns.get(pc + 1).filter(|_| range.contains(&(pc + 1)));
            next.is_some_and(|a| {
                a.code == CLASS_ALU64 | OP_ADD && a.dst == i.dst && !targets.contains(&(pc + 1))
            })
        };
        let mut folded = None;
        for (pc, mut i) in walk(insns, range.clone()) {
            self.label(Label::Old { slot, pc });
            self.copying = Some(pc);
            if folded == Some(pc) {
                i.imm = i
                    .imm
                    .checked_sub(shift.into())
                    .ok_or_else(|| not_inlined(format!("a stack offset out of range at {pc}")))?;
                self.insn(i);
            } else if is_exit(&i) {
                self.jump(CLASS_JMP | OP_JA, 0, 0, Label::Cont(slot));
            } else if is_jump(&i) {
                let to = target(pc, &i).filter(|t| range.contains(t));
                let to =
                    to.ok_or_else(|| not_inlined(format!("a jump out of its function at {pc}")))?;
                self.emit(Emit::Jump(i, Label::Old { slot, pc: to }));
            } else if code_ref(&i) {
                let to =
                    target(pc, &i).ok_or_else(|| not_inlined("a reference before the program"))?;
                let second = (i.code == LD_IMM64).then(|| insns[pc + 1]);
                self.emit(Emit::Code(i, second, to));
            } else if i.code == LD_IMM64 {
                self.emit(Emit::Wide(i, insns[pc + 1]));
            } else if i.code == CLASS_ALU64 | OP_MOV | SRC_X && i.src == FP {
                self.insn(i);
                match folds(pc, &i) {
                    true => folded = Some(pc + 1),
                    false => self.insn(raw(CLASS_ALU64 | OP_ADD, i.dst, 0, 0, -(shift as i32))),
                }
            } else {
                if fp_based(&i) {
                    i.off = i.off.checked_sub(shift).ok_or_else(|| {
                        not_inlined(format!("a stack offset out of range at {pc}"))
                    })?;
                }
                self.insn(i);
            }
        }
        Ok(())
    }

    /// `r1 = &xdpchain_ctl` (a map value's address).
    fn ctl_address(&mut self, ctl: i32) {
        self.emit(Emit::Wide(
            raw(LD_IMM64, 1, PSEUDO_MAP_VALUE, 0, ctl),
            raw(0, 0, 0, 0, 0),
        ));
    }

    /// chain.h's timing_start(): the clock at r10-24 while the deadline in
    /// the control word is ahead, else 0 (and the passed deadline cleared).
    fn timing_start(&mut self, ctl: i32) {
        self.insn(raw(CLASS_ST | MODE_MEM | SIZE_DW, FP, 0, SINCE_AT, 0));
        self.ctl_address(ctl);
        self.insn(raw(CLASS_LDX | MODE_MEM | SIZE_DW, 7, 1, 0, 0));
        self.jump(CLASS_JMP | OP_JEQ, 7, 0, Label::Start);
        self.insn(raw(CLASS_JMP | OP_CALL, 0, 0, 0, HELPER_KTIME_GET_NS));
        self.emit(Emit::Jump(
            raw(CLASS_JMP | OP_JGE | SRC_X, 0, 7, 0, 0),
            Label::Expired,
        ));
        self.insn(raw(CLASS_STX | MODE_MEM | SIZE_DW, FP, 0, SINCE_AT, 0));
        self.jump(CLASS_JMP | OP_JA, 0, 0, Label::Start);
        self.label(Label::Expired);
        self.ctl_address(ctl);
        self.insn(raw(CLASS_ST | MODE_MEM | SIZE_DW, 1, 0, 0, 0));
        self.label(Label::Start);
    }

    /// Adds the verdict in r0 to slot `n`'s row `stat_index` of the
    /// counters, and while timing the time since r10-24 (chain.h's
    /// count(), with the key at r10-16).
    fn count(&mut self, maps: CountMaps, stat_index: u32, n: usize) {
        self.insn(raw(CLASS_ALU64 | OP_MOV | SRC_X, 6, 0, 0, 0));
        self.insn(raw(
            CLASS_ST | MODE_MEM | SIZE_W,
            FP,
            0,
            KEY_AT,
            stat_index as i32,
        ));
        self.insn(raw(CLASS_ALU64 | OP_MOV | SRC_X, 2, FP, 0, 0));
        self.insn(raw(CLASS_ALU64 | OP_ADD, 2, 0, 0, KEY_AT.into()));
        self.emit(Emit::Wide(
            raw(LD_IMM64, 1, PSEUDO_MAP_FD, 0, maps.stats),
            raw(0, 0, 0, 0, 0),
        ));
        self.insn(raw(CLASS_JMP | OP_CALL, 0, 0, 0, HELPER_MAP_LOOKUP));
        self.jump(CLASS_JMP | OP_JEQ, 0, 0, Label::Counted(n));
        let timed = maps.ctl.is_some();
        if timed {
            self.insn(raw(CLASS_ALU64 | OP_MOV | SRC_X, 7, 0, 0, 0));
        }
        // idx = verdict <= XDP_REDIRECT ? verdict : other, masked as the
        // verifier needs it.
        self.insn(raw(CLASS_ALU | OP_MOV | SRC_X, 1, 6, 0, 0));
        self.insn(raw(CLASS_JMP32 | OP_JLE, 1, 0, 1, XDP_REDIRECT));
        self.insn(raw(CLASS_ALU | OP_MOV, 1, 0, 0, XDP_REDIRECT + 1));
        self.insn(raw(CLASS_ALU64 | OP_AND, 1, 0, 0, 7));
        self.insn(raw(CLASS_ALU64 | OP_LSH, 1, 0, 0, 3));
        self.insn(raw(CLASS_ALU64 | OP_ADD | SRC_X, 0, 1, 0, 0));
        self.insn(raw(CLASS_LDX | MODE_MEM | SIZE_DW, 1, 0, 0, 0));
        self.insn(raw(CLASS_ALU64 | OP_ADD, 1, 0, 0, 1));
        self.insn(raw(CLASS_STX | MODE_MEM | SIZE_DW, 0, 1, 0, 0));
        // Timing: the row (r7) gets now - since, and since becomes now.
        if !timed {
            self.label(Label::Counted(n));
            self.insn(raw(CLASS_ALU64 | OP_MOV | SRC_X, 0, 6, 0, 0));
            return;
        }
        self.insn(raw(CLASS_LDX | MODE_MEM | SIZE_DW, 8, FP, SINCE_AT, 0));
        self.jump(CLASS_JMP | OP_JEQ, 8, 0, Label::Counted(n));
        self.insn(raw(CLASS_JMP | OP_CALL, 0, 0, 0, HELPER_KTIME_GET_NS));
        self.insn(raw(CLASS_STX | MODE_MEM | SIZE_DW, FP, 0, SINCE_AT, 0));
        self.insn(raw(CLASS_ALU64 | OP_SUB | SRC_X, 0, 8, 0, 0));
        for (word, add) in [(STATS_RUN_NS, None), (STATS_RUN_CNT, Some(1))] {
            let off = (word * SIZE) as i16;
            self.insn(raw(CLASS_LDX | MODE_MEM | SIZE_DW, 1, 7, off, 0));
            match add {
                Some(k) => self.insn(raw(CLASS_ALU64 | OP_ADD, 1, 0, 0, k)),
                None => self.insn(raw(CLASS_ALU64 | OP_ADD | SRC_X, 1, 0, 0, 0)),
            }
            self.insn(raw(CLASS_STX | MODE_MEM | SIZE_DW, 7, 1, off, 0));
        }
        self.label(Label::Counted(n));
        self.insn(raw(CLASS_ALU64 | OP_MOV | SRC_X, 0, 6, 0, 0));
    }

    /// chain.h's `dump_after = xdpchain_dump_start(ctx)` where the control
    /// word asks for a dump, else 0.
    fn dump_start(&mut self, ctl: i32, f: DumpFns) {
        self.insn(raw(CLASS_ST | MODE_MEM | SIZE_W, FP, 0, DUMP_AT, 0));
        self.ctl_address(ctl);
        self.insn(raw(
            CLASS_LDX | MODE_MEM | SIZE_DW,
            1,
            1,
            CTL_DUMP_UNTIL as i16,
            0,
        ));
        self.jump(CLASS_JMP | OP_JEQ, 1, 0, Label::Dumping);
        self.insn(raw(CLASS_LDX | MODE_MEM | SIZE_DW, 1, FP, CTX_AT, 0));
        self.emit(Emit::Code(
            raw(CLASS_JMP | OP_CALL, 0, PSEUDO_CALL, 0, 0),
            None,
            f.start,
        ));
        self.insn(raw(CLASS_STX | MODE_MEM | SIZE_W, FP, 0, DUMP_AT, 0));
        self.label(Label::Dumping);
    }

    /// chain.h's `if (dump_after == n + 1) xdpchain_dump_slot(ctx, n,
    /// verdict, mask)`, the verdict in r6 (and r0 again after).
    fn dump_slot(&mut self, f: DumpFns, n: usize, mask: u32) {
        self.insn(raw(CLASS_LDX | MODE_MEM | SIZE_W, 1, FP, DUMP_AT, 0));
        self.jump(CLASS_JMP | OP_JNE, 1, n as i32 + 1, Label::Dumped(n));
        self.insn(raw(CLASS_LDX | MODE_MEM | SIZE_DW, 1, FP, CTX_AT, 0));
        self.insn(Insn::mov64_imm(2, n as i32));
        self.insn(raw(CLASS_ALU64 | OP_MOV | SRC_X, 3, 6, 0, 0));
        self.insn(raw(CLASS_ALU | OP_MOV, 4, 0, 0, mask as i32));
        self.emit(Emit::Code(
            raw(CLASS_JMP | OP_CALL, 0, PSEUDO_CALL, 0, 0),
            None,
            f.slot,
        ));
        self.insn(raw(CLASS_ALU64 | OP_MOV | SRC_X, 0, 6, 0, 0));
        self.label(Label::Dumped(n));
    }

    /// Goes on only if the verdict in r0 is in `mask`, else to the exit.
    fn continue_check(&mut self, mask: u32) {
        match mask.count_ones() {
            0 => self.jump(CLASS_JMP | OP_JA, 0, 0, Label::Out),
            1 => self.jump(
                CLASS_JMP32 | OP_JNE,
                0,
                mask.trailing_zeros() as i32,
                Label::Out,
            ),
            _ => {
                self.insn(raw(CLASS_ALU | OP_MOV | SRC_X, 1, 0, 0, 0));
                self.jump(CLASS_JMP32 | OP_JGT, 1, 31, Label::Out);
                self.insn(raw(CLASS_ALU | OP_MOV, 2, 0, 0, mask as i32));
                self.insn(raw(CLASS_ALU | OP_RSH | SRC_X, 2, 1, 0, 0));
                self.insn(raw(CLASS_ALU | OP_AND, 2, 0, 0, 1));
                self.jump(CLASS_JMP32 | OP_JEQ, 2, 0, Label::Out);
            }
        }
    }
}

/// Where each slot's function starts in the root (by its func_info and the
/// BTF), and what the generated root checks after it. A slot whose BTF
/// linkage is not static (a global function) is not copyable.
pub fn slots(config: &Config, func_info: &[FuncInfo], btf: &Btf) -> Result<Vec<Slot>> {
    config
        .slots
        .iter()
        .enumerate()
        .map(|(n, s)| {
            let (start, linkage) = function(func_info, btf, &slot_function(n))?;
            Ok(Slot {
                start,
                continue_on: s.continue_on.bits() | config.always_continue,
                stat_index: s.stat_index,
                copyable: linkage == Some(Linkage::Static),
            })
        })
        .collect()
}

/// Where the function `name` starts, by func_info and BTF, and its linkage.
pub fn function(func_info: &[FuncInfo], btf: &Btf, name: &str) -> Result<(usize, Option<Linkage>)> {
    func_info
        .iter()
        .find_map(|f| {
            let t = btf.type_by_id(f.type_id)?;
            (btf.name(&t) == name).then(|| (f.insn_off as usize, btf.linkage(&t)))
        })
        .ok_or_else(|| not_inlined(format!("{name} is not among the root's functions")))
}

/// Of the slots that `inlined` says were copied, the one whose frame goes
/// deepest, if any has a frame.
pub fn deepest(p: &Program<'_>, slots: &[Slot], inlined: &[bool]) -> Option<usize> {
    let funcs = functions(p);
    slots
        .iter()
        .enumerate()
        .filter(|(n, _)| inlined[*n])
        .filter_map(|(n, s)| {
            let f = funcs.iter().find(|f| f.start == s.start)?;
            Some((frame_depth(p.insns, f.clone()), n))
        })
        .filter(|(depth, _)| *depth > 0)
        .max()
        .map(|(_, n)| n)
}

/// The functions of `p`: each one's [start, end), in order.
fn functions(p: &Program<'_>) -> Vec<std::ops::Range<usize>> {
    let mut starts: Vec<usize> = p.func_info.iter().map(|f| f.insn_off as usize).collect();
    starts.push(p.insns.len());
    starts.windows(2).map(|w| w[0]..w[1]).collect()
}

/// Checks what the copying takes for granted, as the kernel would: each
/// ld_imm64 whole inside its function with a second half of code 0, each
/// jump landing on an instruction of its own function.
fn well_formed(p: &Program<'_>, funcs: &[std::ops::Range<usize>]) -> Result<()> {
    for f in funcs {
        let starts: BTreeSet<usize> = walk(p.insns, f.clone()).map(|(pc, _)| pc).collect();
        for (pc, i) in walk(p.insns, f.clone()) {
            if i.code == LD_IMM64 && !(f.contains(&(pc + 1)) && p.insns[pc + 1].code == 0) {
                return Err(not_inlined(format!("a broken ld_imm64 at {pc}")));
            }
            if is_jump(&i) && !target(pc, &i).is_some_and(|t| starts.contains(&t)) {
                return Err(not_inlined(format!(
                    "a jump to no instruction of its function at {pc}"
                )));
            }
        }
    }
    Ok(())
}

/// Generates the root for `slots` (in run order) over the relocated program
/// `p`, whose first function is the compiled root that this replaces.
/// `counting`: the maps of counting and timing, when the chain counts. Err
/// says why no root could be generated; a slot that cannot be copied is
/// called.
/// The most instructions the inliner copies. Its tables take tens of bytes
/// an instruction, and in a program this long a call per component costs
/// nothing worth them: a longer chain keeps its compiled root.
pub const MAX_INLINED: usize = 1 << 17;

/// Refuses to inline a program of `len` instructions past [`MAX_INLINED`].
pub fn within_reach(len: usize) -> Result<()> {
    match len > MAX_INLINED {
        true => Err(not_inlined(format!(
            "{len} instructions, more than the inliner copies ({MAX_INLINED})"
        ))),
        false => Ok(()),
    }
}

pub fn generate(p: &Program<'_>, slots: &[Slot], counting: Option<CountMaps>) -> Result<Generated> {
    within_reach(p.insns.len())?;
    let funcs = functions(p);
    if funcs.first().map(|f| f.start) != Some(0) || funcs.iter().any(|f| f.is_empty()) {
        return Err(not_inlined("func_info does not describe the program"));
    }
    well_formed(p, &funcs)?;
    let shift: i16 = match counting {
        Some(_) => -SINCE_AT,
        None => -CTX_AT,
    };
    // After a slot that never lets the chain go on, nothing runs: the
    // kernel refuses code that no path reaches.
    let reached = slots
        .iter()
        .position(|s| s.continue_on == 0)
        .map_or(slots.len(), |n| n + 1);
    let mut inlined = copyable(p, &funcs, &slots[..reached], shift)?;
    inlined.resize(slots.len(), true);
    fit_frames(p, &funcs, &slots[..reached], &mut inlined, shift, counting);
    let b = emit_root(p, &funcs, slots, reached, &inlined, shift, counting)?;
    let keep = kept_functions(p, &funcs, &b)?;
    let mut moved = HashMap::new();
    let mut at = b.len;
    for &f in &keep {
        moved.insert(funcs[f].start, at);
        at += funcs[f].len();
    }
    let (mut insns, mut origin) = resolve(&b, &moved, at)?;
    let mut func_info = vec![FuncInfo {
        insn_off: 0,
        type_id: p.func_info[0].type_id,
    }];
    for &f in &keep {
        func_info.push(FuncInfo {
            insn_off: moved[&funcs[f].start] as u32,
            type_id: p.func_info[f].type_id,
        });
        move_function(p, funcs[f].clone(), &moved, &mut insns, &mut origin)?;
    }
    let line_info = lines(p, &funcs, slots, &inlined, &moved, &b.labels);
    Ok(Generated {
        insns,
        func_info,
        line_info,
        inlined,
        origin,
        root_len: b.len,
    })
}

/// Which of `slots` may be copied into the root, on their own: a function
/// of its own, static, called from nowhere else, whose frame fits below
/// the root's (moved by `shift`), and whose code the copy can take.
fn copyable(
    p: &Program<'_>,
    funcs: &[std::ops::Range<usize>],
    slots: &[Slot],
    shift: i16,
) -> Result<Vec<bool>> {
    let func_at = |start: usize| funcs.iter().position(|f| f.start == start);
    // References to functions from code that stays: all but the compiled
    // root, which goes.
    let mut referenced = BTreeSet::new();
    for f in &funcs[1..] {
        for (pc, i) in walk(p.insns, f.clone()).filter(|(_, i)| code_ref(i)) {
            referenced.insert(
                target(pc, &i).ok_or_else(|| not_inlined("a reference before the program"))?,
            );
        }
    }
    // Copied code's frame becomes the root's, above any tail call.
    let tail_calls = funcs[1..]
        .iter()
        .any(|f| walk(p.insns, f.clone()).any(|(_, i)| i.calls_helper(HELPER_TAIL_CALL)));
    let max_frame = match tail_calls {
        true => TAIL_CALL_FRAMES,
        false => MAX_FRAME,
    };
    let mut out = Vec::with_capacity(slots.len());
    for (n, s) in slots.iter().enumerate() {
        let f = func_at(s.start).ok_or_else(|| not_inlined(format!("slot {n} is no function")))?;
        let why = match () {
            _ if f == 0 => Some("the root itself".to_string()),
            _ if !s.copyable => Some("a global function".to_string()),
            _ if referenced.contains(&s.start) => Some("called from elsewhere too".to_string()),
            _ if shift as usize + frame_depth(p.insns, funcs[f].clone()) > max_frame => {
                Some("its frame, below the root's own, would be too deep".to_string())
            }
            _ => not_copyable(p.insns, funcs[f].clone()),
        };
        if let Some(why) = &why {
            log::debug!("slot {n} stays a call: {why}");
        }
        out.push(why.is_none());
    }
    Ok(out)
}

/// Leaves the deepest copied slot a call until the root's frame and what
/// it calls fit the stack together.
fn fit_frames(
    p: &Program<'_>,
    funcs: &[std::ops::Range<usize>],
    slots: &[Slot],
    inlined: &mut [bool],
    shift: i16,
    counting: Option<CountMaps>,
) {
    let dump_calls: Vec<usize> = counting
        .and_then(|m| m.ctl.and(m.dump))
        .map_or(Vec::new(), |f| vec![f.start, f.slot]);
    while !frames_fit(p, funcs, slots, inlined, shift as usize, &dump_calls) {
        let Some(n) = deepest(p, slots, inlined) else {
            break;
        };
        log::debug!("slot {n} stays a call: the root's frame and what it calls would be too deep");
        inlined[n] = false;
    }
}

/// The root's code: each reached slot copied in or called, then counted,
/// dumped and checked for whether the chain goes on.
fn emit_root(
    p: &Program<'_>,
    funcs: &[std::ops::Range<usize>],
    slots: &[Slot],
    reached: usize,
    inlined: &[bool],
    shift: i16,
    counting: Option<CountMaps>,
) -> Result<Builder> {
    let mut b = Builder::default();
    b.insn(raw(CLASS_STX | MODE_MEM | SIZE_DW, FP, 1, CTX_AT, 0));
    if let Some(ctl) = counting.and_then(|m| m.ctl) {
        b.timing_start(ctl);
    }
    let dump = counting.and_then(|m| Some((m.ctl?, m.dump?)));
    if let Some((ctl, f)) = dump {
        b.dump_start(ctl, f);
    }
    for (n, s) in slots[..reached].iter().enumerate() {
        b.insn(raw(CLASS_LDX | MODE_MEM | SIZE_DW, 1, FP, CTX_AT, 0));
        match inlined[n] {
            true => {
                let f = funcs
                    .iter()
                    .position(|f| f.start == s.start)
                    .expect("a slot's function, checked before");
                b.copy_body(p.insns, funcs[f].clone(), n, shift)?;
            }
            false => b.emit(Emit::Code(
                raw(CLASS_JMP | OP_CALL, 0, PSEUDO_CALL, 0, 0),
                None,
                s.start,
            )),
        }
        b.label(Label::Cont(n));
        if let Some(maps) = counting {
            b.count(maps, s.stat_index, n);
        }
        if let Some((_, f)) = dump {
            b.dump_slot(f, n, s.continue_on);
        }
        b.continue_check(s.continue_on);
    }
    if reached == slots.len() && slots.last().is_none_or(|s| s.continue_on != 0) {
        b.insn(Insn::mov64_imm(0, XDP_PASS));
    }
    b.label(Label::Out);
    b.insn(raw(CLASS_JMP | OP_EXIT, 0, 0, 0, 0));
    Ok(b)
}

/// The functions that stay after the root: those its code reaches, by
/// index in `funcs`, in order.
fn kept_functions(
    p: &Program<'_>,
    funcs: &[std::ops::Range<usize>],
    b: &Builder,
) -> Result<BTreeSet<usize>> {
    let mut keep = BTreeSet::new();
    let mut work: Vec<usize> = b
        .code
        .iter()
        .filter_map(|(e, _)| match e {
            Emit::Code(_, _, to) => Some(*to),
            _ => None,
        })
        .collect();
    while let Some(start) = work.pop() {
        let f = funcs
            .iter()
            .position(|f| f.start == start)
            .ok_or_else(|| not_inlined(format!("a reference into a function at {start}")))?;
        if f == 0 {
            return Err(not_inlined("a reference to the compiled root"));
        }
        if keep.insert(f) {
            for (pc, i) in walk(p.insns, funcs[f].clone()).filter(|(_, i)| code_ref(i)) {
                work.push(target(pc, &i).expect("checked before"));
            }
        }
    }
    Ok(keep)
}

/// An offset from the instruction after `from` to `to`.
fn rel(from: usize, to: usize) -> i64 {
    i64::try_from(to).unwrap_or(i64::MAX) - from as i64 - 1
}

/// The root's instructions from what `b` emitted, jumps and references
/// resolved (functions `moved` where they start now), with the original
/// instruction each copies; room for `len` in all.
fn resolve(
    b: &Builder,
    moved: &HashMap<usize, usize>,
    len: usize,
) -> Result<(Vec<Insn>, Vec<Option<usize>>)> {
    let mut insns = Vec::with_capacity(len);
    let mut origin = Vec::with_capacity(len);
    for (e, copies) in &b.code {
        let pc = insns.len();
        origin.push(*copies);
        origin.extend((e.width() == 2).then_some(None));
        match *e {
            Emit::Insn(i) => insns.push(i),
            Emit::Wide(a, z) => insns.extend([a, z]),
            Emit::Jump(mut i, to) => {
                let to = b
                    .labels
                    .get(&to)
                    .ok_or_else(|| not_inlined("a jump to no instruction"))?;
                let delta = rel(pc, *to);
                if is_gotol(&i) {
                    i.imm = i32::try_from(delta).map_err(|_| not_inlined("a jump out of range"))?;
                } else {
                    i.off = i16::try_from(delta).map_err(|_| not_inlined("a jump out of range"))?;
                }
                insns.push(i);
            }
            Emit::Code(mut i, second, to) => {
                let dest = moved
                    .get(&to)
                    .ok_or_else(|| not_inlined("a reference to a function that went"))?;
                i.imm = i32::try_from(rel(pc, *dest))
                    .map_err(|_| not_inlined("a call out of range"))?;
                insns.push(i);
                insns.extend(second);
            }
        }
    }
    Ok((insns, origin))
}

/// Appends the function `f` of `p` where `moved` says it starts now, its
/// references to functions moved too.
fn move_function(
    p: &Program<'_>,
    f: std::ops::Range<usize>,
    moved: &HashMap<usize, usize>,
    insns: &mut Vec<Insn>,
    origin: &mut Vec<Option<usize>>,
) -> Result<()> {
    let (old, new) = (f.start, moved[&f.start]);
    for pc in f {
        let mut i = p.insns[pc];
        // A second half has code 0: never taken for a reference.
        if code_ref(&i) {
            let dest = moved[&target(pc, &i).expect("checked before")];
            i.imm = i32::try_from(rel(new + pc - old, dest)).map_err(|_| not_inlined("too far"))?;
        }
        insns.push(i);
        origin.push(Some(pc));
    }
    Ok(())
}

/// The line info of the generated program: the root's first line; copied
/// code's where it went (by `labels`); kept functions' moved with them.
fn lines(
    p: &Program<'_>,
    funcs: &[std::ops::Range<usize>],
    slots: &[Slot],
    inlined: &[bool],
    moved: &HashMap<usize, usize>,
    labels: &HashMap<Label, usize>,
) -> Vec<LineInfo> {
    let slot_of: HashMap<usize, usize> = slots
        .iter()
        .enumerate()
        .filter(|(n, _)| inlined[*n])
        .map(|(n, s)| (s.start, n))
        .collect();
    let mut line_info: Vec<LineInfo> = p
        .line_info
        .iter()
        .filter_map(|l| {
            let old = l.insn_off as usize;
            let f = funcs.iter().position(|f| f.contains(&old))?;
            let start = funcs[f].start;
            let new = match (f, moved.get(&start), slot_of.get(&start)) {
                (0, _, _) => (old == 0).then_some(0)?,
                (_, Some(new), _) => new + old - start,
                (_, None, Some(&slot)) => *labels.get(&Label::Old { slot, pc: old })?,
                _ => return None,
            };
            Some(LineInfo {
                insn_off: new as u32,
                ..*l
            })
        })
        .collect();
    line_info.sort_by_key(|l| l.insn_off);
    line_info.dedup_by_key(|l| l.insn_off);
    line_info
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXIT: Insn = Insn {
        code: CLASS_JMP | OP_EXIT,
        dst: 0,
        src: 0,
        off: 0,
        imm: 0,
    };

    fn call(rel: i32) -> Insn {
        raw(CLASS_JMP | OP_CALL, 0, PSEUDO_CALL, 0, rel)
    }

    /// root: calls both slots. slot0 (3..10): a pointer into its frame, a
    /// store, a jump over an exit, a nested call. slot1 (10..13): a jump.
    /// nested (13..17): a callback's address. callback (17..19).
    fn program() -> (Vec<Insn>, Vec<FuncInfo>, Vec<LineInfo>) {
        let insns = vec![
            call(2),
            call(8),
            EXIT,
            raw(CLASS_ALU64 | OP_MOV | SRC_X, 2, FP, 0, 0),
            raw(CLASS_ALU64 | OP_ADD, 2, 0, 0, -4),
            raw(CLASS_ST | MODE_MEM | SIZE_W, FP, 0, -4, 0),
            raw(CLASS_JMP | OP_JEQ, 1, 0, 1, 0),
            EXIT,
            call(4),
            EXIT,
            Insn::mov64_imm(0, 1),
            raw(CLASS_JMP | OP_JA, 0, 0, 0, 0),
            EXIT,
            raw(LD_IMM64, 1, PSEUDO_FUNC, 0, 3),
            raw(0, 0, 0, 0, 0),
            Insn::mov64_imm(0, 0),
            EXIT,
            Insn::mov64_imm(0, 0),
            EXIT,
        ];
        let funcs = [0, 3, 10, 13, 17]
            .iter()
            .enumerate()
            .map(|(t, &o)| FuncInfo {
                insn_off: o,
                type_id: t as u32 + 1,
            })
            .collect();
        (insns, funcs, lines())
    }

    fn lines() -> Vec<LineInfo> {
        [0, 3, 6, 8, 10, 13, 17]
            .iter()
            .map(|&o| LineInfo {
                insn_off: o,
                file_name_off: 1,
                line_off: 2,
                line_col: o,
            })
            .collect()
    }

    fn slots(copyable: bool) -> Vec<Slot> {
        vec![
            Slot {
                start: 3,
                continue_on: 1 << 2,
                stat_index: 0,
                copyable,
            },
            Slot {
                start: 10,
                continue_on: 1 << 2 | 1 << 3,
                stat_index: 1,
                copyable,
            },
        ]
    }

    fn gen(insns: &[Insn], funcs: &[FuncInfo], lines: &[LineInfo], slots: &[Slot]) -> Generated {
        let p = Program {
            insns,
            func_info: funcs,
            line_info: lines,
        };
        generate(&p, slots, None).unwrap()
    }

    #[test]
    fn bodies_are_copied_with_frames_jumps_calls_and_lines_moved() {
        let (insns, funcs, lines) = program();
        let g = gen(&insns, &funcs, &lines, &slots(true));
        assert_eq!(g.inlined, [true, true]);
        let i = &g.insns;
        // ctx saved, then reloaded before each slot.
        assert_eq!(i[0], raw(CLASS_STX | MODE_MEM | SIZE_DW, FP, 1, -8, 0));
        assert_eq!(i[1], raw(CLASS_LDX | MODE_MEM | SIZE_DW, 1, FP, -8, 0));
        // slot0: r2 = r10 and its add folded into one pointer below ctx;
        // the store moved down by as much.
        assert_eq!(i[2], raw(CLASS_ALU64 | OP_MOV | SRC_X, 2, FP, 0, 0));
        assert_eq!(i[3], raw(CLASS_ALU64 | OP_ADD, 2, 0, 0, -12));
        assert_eq!(i[4], raw(CLASS_ST | MODE_MEM | SIZE_W, FP, 0, -12, 0));
        // The jump still skips the (former) exit; exits go to the check.
        assert_eq!(i[5], raw(CLASS_JMP | OP_JEQ, 1, 0, 1, 0));
        assert_eq!(i[6], raw(CLASS_JMP | OP_JA, 0, 0, 2, 0));
        // The nested call reaches the nested function, moved after the glue.
        assert_eq!(i[7], call(22 - 7 - 1));
        assert_eq!(i[8], raw(CLASS_JMP | OP_JA, 0, 0, 0, 0));
        // One verdict goes on: an immediate test; the exit is at 21.
        assert_eq!(i[9], raw(CLASS_JMP32 | OP_JNE, 0, 0, 11, 2));
        assert_eq!(i[10], raw(CLASS_LDX | MODE_MEM | SIZE_DW, 1, FP, -8, 0));
        assert_eq!(i[11], Insn::mov64_imm(0, 1));
        assert_eq!(i[12], raw(CLASS_JMP | OP_JA, 0, 0, 0, 0));
        assert_eq!(i[13], raw(CLASS_JMP | OP_JA, 0, 0, 0, 0));
        // Two verdicts: a shift of the mask.
        assert_eq!(i[15], raw(CLASS_JMP32 | OP_JGT, 1, 0, 5, 31));
        assert_eq!(i[16], raw(CLASS_ALU | OP_MOV, 2, 0, 0, 12));
        assert_eq!(i[19], raw(CLASS_JMP32 | OP_JEQ, 2, 0, 1, 0));
        assert_eq!(i[20], Insn::mov64_imm(0, XDP_PASS));
        assert_eq!(i[21], EXIT);
        // The nested function and its callback stay functions; the
        // callback's address follows them.
        assert_eq!(i[22], raw(LD_IMM64, 1, PSEUDO_FUNC, 0, 26 - 22 - 1));
        assert_eq!(i.len(), 28);
        let offs = |v: &[FuncInfo]| {
            v.iter()
                .map(|f| (f.insn_off, f.type_id))
                .collect::<Vec<_>>()
        };
        assert_eq!(offs(&g.func_info), [(0, 1), (22, 4), (26, 5)]);
        let got: Vec<(u32, u32)> = g
            .line_info
            .iter()
            .map(|l| (l.insn_off, l.line_col))
            .collect();
        assert_eq!(
            got,
            [(0, 0), (2, 3), (5, 6), (7, 8), (11, 10), (22, 13), (26, 17)]
        );

        // Where a jump lands on the add, the pointer is rebased on its own.
        let mut looped = insns.clone();
        looped[6].off = 4 - 6 - 1;
        let g = gen(&looped, &funcs, &lines, &slots(true));
        assert_eq!(g.insns[3], raw(CLASS_ALU64 | OP_ADD, 2, 0, 0, -8));
        assert_eq!(g.insns[4], raw(CLASS_ALU64 | OP_ADD, 2, 0, 0, -4));
    }

    #[test]
    fn malformed_programs_are_refused() {
        // Found by fuzzing (fuzz/ inline): an ld_imm64 cut by the end of
        // the program, or by the start of a function; a jump into one.
        let (insns, funcs, lines) = program();
        let mut cut = insns.clone();
        cut.push(raw(LD_IMM64, 1, 0, 0, 0));
        let mut split = insns.clone();
        split[12] = raw(LD_IMM64, 1, 0, 0, 0);
        let mut into = insns.clone();
        into[11] = raw(CLASS_JMP | OP_JA, 0, 0, 2, 0);
        into[13] = raw(LD_IMM64, 1, 0, 0, 0);
        for bad in [cut, split, into] {
            let p = Program {
                insns: &bad,
                func_info: &funcs,
                line_info: &lines,
            };
            assert!(generate(&p, &slots(true), None).is_err());
        }
    }

    #[test]
    fn calls_many_and_deep_take_linear_time() {
        // Functions that each call the next twice: 2^60 paths, 60 levels.
        let n = 60;
        let mut insns = vec![call(1), EXIT];
        let mut funcs = vec![FuncInfo {
            insn_off: 0,
            type_id: 1,
        }];
        for k in 0..n {
            let at = insns.len();
            funcs.push(FuncInfo {
                insn_off: at as u32,
                type_id: 1,
            });
            if k + 1 < n {
                insns.extend([call(2), call(1), EXIT]);
            } else {
                insns.extend([Insn::mov64_imm(0, 2), EXIT]);
            }
        }
        let lines: Vec<LineInfo> = funcs
            .iter()
            .map(|f| LineInfo {
                insn_off: f.insn_off,
                file_name_off: 0,
                line_off: 0,
                line_col: 0,
            })
            .collect();
        let p = Program {
            insns: &insns,
            func_info: &funcs,
            line_info: &lines,
        };
        let slot = Slot {
            start: 2,
            continue_on: 1 << 2,
            stat_index: 0,
            copyable: true,
        };
        assert!(!frames_fit(&p, &functions(&p), &[slot], &[true], 8, &[]));
        assert!(generate(&p, &[slot], None).is_ok());
    }

    #[test]
    fn what_cannot_be_copied_is_called() {
        let (mut insns, funcs, lines) = program();
        // Global functions stay calls, and stay functions.
        let g = gen(&insns, &funcs, &lines, &slots(false));
        assert_eq!(g.inlined, [false, false]);
        assert_eq!(g.insns[2], call(g.func_info[1].insn_off as i32 - 3));
        assert_eq!(g.func_info.len(), 5);
        // A tail call, or r10 stored, keeps slot1 a call (slot0 copied).
        for bad in [
            raw(CLASS_JMP | OP_CALL, 0, 0, 0, HELPER_TAIL_CALL),
            raw(CLASS_STX | MODE_MEM | SIZE_DW, 1, FP, 0, 0),
            raw(CLASS_JMP | OP_JEQ | SRC_X, 1, FP, 0, 0),
        ] {
            insns[11] = bad;
            let g = gen(&insns, &funcs, &lines, &slots(true));
            assert_eq!(g.inlined, [true, false], "{bad:?}");
        }
        // A frame that would reach past 512 bytes below the root's, with
        // the frames of the two functions it calls (32 bytes each, as the
        // verifier counts them), stays a call; so does one past 224 where
        // a function tail-calls.
        for (depth, tail, copied) in [
            (440, false, true),
            (441, false, false),
            (216, true, true),
            (217, true, false),
        ] {
            let (mut insns, funcs, lines) = program();
            insns[5].off = -(depth as i16);
            if tail {
                insns[16] = raw(CLASS_JMP | OP_CALL, 0, 0, 0, HELPER_TAIL_CALL);
            }
            let g = gen(&insns, &funcs, &lines, &slots(true));
            assert_eq!(g.inlined[0], copied, "depth {depth}, tail calls {tail}");
        }
        // The deepest copy is the one with a frame.
        let (insns, funcs, lines) = program();
        let p = Program {
            insns: &insns,
            func_info: &funcs,
            line_info: &lines,
        };
        assert_eq!(deepest(&p, &slots(true), &[true, true]), Some(0));
        assert_eq!(deepest(&p, &slots(true), &[false, true]), None);
        // A slot that another function calls too stays a call.
        let (mut insns, funcs, lines) = program();
        insns[15] = call(10 - 15 - 1);
        let g = gen(&insns, &funcs, &lines, &slots(true));
        assert_eq!(g.inlined, [true, false]);
        // After a slot that never goes on, nothing is emitted.
        let (insns, funcs, lines) = program();
        let mut s = slots(true);
        s[0].continue_on = 0;
        let g = gen(&insns, &funcs, &lines, &s);
        assert_eq!(g.inlined, [true, true]);
        assert_eq!(g.insns[9], raw(CLASS_JMP | OP_JA, 0, 0, 0, 0));
        assert_eq!(g.insns[10], EXIT);
    }

    #[test]
    fn counting_counts_inline() {
        let (insns, funcs, lines) = program();
        let p = Program {
            insns: &insns,
            func_info: &funcs,
            line_info: &lines,
        };
        let maps = CountMaps {
            stats: 77,
            ctl: Some(78),
            dump: None,
        };
        let g = generate(&p, &slots(true), Some(maps)).unwrap();
        // The frame moves down by 24: the counters' key (and the dump
        // point) at r10-16, the time a slot started at r10-24.
        let moved = raw(CLASS_ST | MODE_MEM | SIZE_W, FP, 0, -28, 0);
        assert!(g.insns.contains(&moved));
        let maps: Vec<_> = g
            .insns
            .iter()
            .filter(|i| i.code == LD_IMM64 && i.src == PSEUDO_MAP_FD)
            .collect();
        assert_eq!(maps.len(), 2);
        assert!(maps.iter().all(|i| i.imm == 77 && i.dst == 1));
        let keys: Vec<i32> = g
            .insns
            .iter()
            .filter(|i| i.code == CLASS_ST | MODE_MEM | SIZE_W && i.off == -16)
            .map(|i| i.imm)
            .collect();
        assert_eq!(keys, [0, 1]);
        // The control word is read once, and cleared where its deadline
        // passed; the clock is read at the start and after each slot.
        let ctl = g
            .insns
            .iter()
            .filter(|i| i.code == LD_IMM64 && i.src == PSEUDO_MAP_VALUE)
            .filter(|i| i.imm == 78)
            .count();
        assert_eq!(ctl, 2);
        let clock = g
            .insns
            .iter()
            .filter(|i| i.calls_helper(HELPER_KTIME_GET_NS))
            .count();
        assert_eq!(clock, 3);
    }
}
