//! BPF instructions, as far as the object layer reads and writes them: the
//! 8-byte `struct bpf_insn` of linux/bpf.h, little-endian, and the records
//! that tie them to BTF (func_info) and to source lines (line_info).

/// linux/bpf_common.h and linux/bpf.h opcode parts.
const BPF_ALU64: u8 = 0x07;
const BPF_JMP: u8 = 0x05;
const BPF_MOV: u8 = 0xb0;
const BPF_CALL: u8 = 0x80;
const BPF_K: u8 = 0x00;
/// `src_reg` of a call to a function of the same program (not a helper).
const BPF_PSEUDO_CALL: u8 = 1;

pub(crate) const SIZE: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
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
            code: BPF_ALU64 | BPF_MOV | BPF_K,
            dst,
            src: 0,
            off: 0,
            imm,
        }
    }

    /// Whether this calls the helper numbered `helper`.
    pub fn calls_helper(&self, helper: i32) -> bool {
        self.code == BPF_JMP | BPF_CALL && self.src != BPF_PSEUDO_CALL && self.imm == helper
    }
}

/// `struct bpf_func_info`: a function's first instruction and BTF type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct FuncInfo {
    pub insn_off: u32,
    pub type_id: u32,
}

/// `struct bpf_line_info`: the source line of an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct LineInfo {
    pub insn_off: u32,
    pub file_name_off: u32,
    pub line_off: u32,
    pub line_col: u32,
}

/// The instructions of `code`; a trailing partial one is left out.
pub(crate) fn decode_all(code: &[u8]) -> impl Iterator<Item = Insn> + '_ {
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
        // call bpf_tail_call (helper 12); a subprogram call (src 1) is not one.
        let call = Insn::decode([0x85, 0, 0, 0, 12, 0, 0, 0]);
        assert!(call.calls_helper(12) && !call.calls_helper(1));
        assert!(!Insn::decode([0x85, 0x10, 0, 0, 12, 0, 0, 0]).calls_helper(12));
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
}
