//! BPF instructions, as far as the object layer reads and writes them: the
//! 8-byte `struct bpf_insn` of linux/bpf.h, little-endian, and the records
//! that tie them to BTF (func_info) and to source lines (line_info).

// linux/bpf_common.h and linux/bpf.h: opcode parts (class, operation,
// source, mode, size) and the pseudo `src_reg` values.
pub const CLASS_LD: u8 = 0x00;
pub const CLASS_LDX: u8 = 0x01;
pub const CLASS_ST: u8 = 0x02;
pub const CLASS_STX: u8 = 0x03;
pub const CLASS_ALU: u8 = 0x04;
pub const CLASS_JMP: u8 = 0x05;
pub const CLASS_JMP32: u8 = 0x06;
pub const CLASS_ALU64: u8 = 0x07;
pub const OP_JA: u8 = 0x00;
pub const OP_JEQ: u8 = 0x10;
pub const OP_JGT: u8 = 0x20;
pub const OP_JGE: u8 = 0x30;
pub const OP_JNE: u8 = 0x50;
pub const OP_JLE: u8 = 0xb0;
pub const OP_CALL: u8 = 0x80;
pub const OP_EXIT: u8 = 0x90;
pub const OP_ADD: u8 = 0x00;
pub const OP_SUB: u8 = 0x10;
pub const OP_RSH: u8 = 0x70;
pub const OP_AND: u8 = 0x50;
pub const OP_LSH: u8 = 0x60;
pub const OP_MOV: u8 = 0xb0;
pub const SRC_K: u8 = 0x00;
pub const SRC_X: u8 = 0x08;
pub const MODE_IMM: u8 = 0x00;
pub const MODE_MEM: u8 = 0x60;
pub const SIZE_W: u8 = 0x00;
pub const SIZE_DW: u8 = 0x18;
pub const LD_IMM64: u8 = CLASS_LD | MODE_IMM | SIZE_DW;
pub const PSEUDO_MAP_FD: u8 = 1;
/// The address of a map's value (a global variable's).
pub const PSEUDO_MAP_VALUE: u8 = 2;
/// A call of a function of the same program (not a helper).
pub const PSEUDO_CALL: u8 = 1;
pub const PSEUDO_KFUNC_CALL: u8 = 2;
/// A function's address (a callback's).
pub const PSEUDO_FUNC: u8 = 4;
pub const PSEUDO_MAP_IDX: u8 = 5;
pub const PSEUDO_MAP_IDX_VALUE: u8 = 6;
pub const HELPER_MAP_LOOKUP: i32 = 1;
pub const HELPER_KTIME_GET_NS: i32 = 5;
pub const HELPER_TAIL_CALL: i32 = 12;
pub const HELPER_LOOP: i32 = 181;

pub const SIZE: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub fn decode(b: [u8; SIZE]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    pub fn encode(self) -> [u8; SIZE] {
        let [o0, o1] = self.off.to_le_bytes();
        let [i0, i1, i2, i3] = self.imm.to_le_bytes();
        [
            self.code,
            self.src << 4 | self.dst & 0x0f,
            o0,
            o1,
            i0,
            i1,
            i2,
            i3,
        ]
    }

    /// `dst = imm` (64-bit move of a constant).
    pub fn mov64_imm(dst: u8, imm: i32) -> Insn {
        Insn {
            code: CLASS_ALU64 | OP_MOV | SRC_K,
            dst,
            src: 0,
            off: 0,
            imm,
        }
    }

    /// Whether this calls the helper numbered `helper`.
    pub fn calls_helper(&self, helper: i32) -> bool {
        self.code == CLASS_JMP | OP_CALL && self.src == 0 && self.imm == helper
    }
}

/// `struct bpf_func_info`: a function's first instruction and BTF type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct FuncInfo {
    pub insn_off: u32,
    pub type_id: u32,
}

/// `struct bpf_line_info`: the source line of an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct LineInfo {
    pub insn_off: u32,
    pub file_name_off: u32,
    pub line_off: u32,
    pub line_col: u32,
}

/// The instructions of `code`; a trailing partial one is left out.
pub fn decode_all(code: &[u8]) -> impl Iterator<Item = Insn> + '_ {
    code.chunks_exact(SIZE)
        .map(|c| Insn::decode(c.try_into().expect("chunks of SIZE")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_matches_clang() {
        // r0 = 2, as clang emits `return XDP_PASS`.
        assert_eq!(Insn::mov64_imm(0, 2).encode(), [0xb7, 0, 0, 0, 2, 0, 0, 0]);
        // call bpf_tail_call (helper 12); a subprogram call (src 1) or a
        // kfunc call (src 2) is not one.
        let call = Insn::decode([0x85, 0, 0, 0, 12, 0, 0, 0]);
        assert!(call.calls_helper(12) && !call.calls_helper(1));
        assert!(!Insn::decode([0x85, 0x10, 0, 0, 12, 0, 0, 0]).calls_helper(12));
        assert!(!Insn::decode([0x85, 0x20, 0, 0, 12, 0, 0, 0]).calls_helper(12));
        let odd = Insn {
            code: 0x61,
            dst: 3,
            src: 9,
            off: -4,
            imm: -77,
        };
        assert_eq!(Insn::decode(odd.encode()), odd);
        assert_eq!(decode_all(&[0u8; 20]).count(), 2);
    }

    /// A 16-byte load takes two slots; code cut inside one decodes the
    /// whole instructions only.
    #[test]
    fn wide_loads_and_cut_code() {
        let mut code = Insn {
            code: LD_IMM64,
            dst: 1,
            src: 1,
            off: 0,
            imm: 7,
        }
        .encode()
        .to_vec();
        code.extend([0u8; SIZE]);
        code.extend(Insn::mov64_imm(0, 2).encode());
        let insns: Vec<Insn> = decode_all(&code).collect();
        assert_eq!(insns.len(), 3);
        assert_eq!(
            (insns[0].code, insns[0].imm, insns[2].imm),
            (LD_IMM64, 7, 2)
        );
        assert_eq!(decode_all(&code[..SIZE * 2 + 3]).count(), 2);
    }
}
