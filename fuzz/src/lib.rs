//! Structure-aware mutations. Byte flips rarely get past libbpf's own
//! checks, so half the time the mutator sets one field of what the object
//! layer reads (the ELF header, a section header, a symbol, a relocation, a
//! BTF or BTF.ext header or record, an instruction) to a value that tends
//! to break parsers: 0, 1, all ones, off by a little, the file's size, a
//! power of two. The other half is libFuzzer's own.
//!
//! In scale mode (XDPCHAIN_FUZZ_SCALE set: `make fuzz`'s second campaign,
//! with inputs of megabytes) a quarter of the mutations grow one dimension
//! instead: a section's records repeated (symbols, relocations,
//! instructions, BTF types, a table of `.BTF.ext` records) or a name made
//! long, so that costs that grow faster than the input show.

use std::sync::OnceLock;

use libfuzzer_sys::fuzzer_mutate;

pub mod drive;

struct Rng(u64);

impl Rng {
    fn new(seed: u32) -> Rng {
        Rng(u64::from(seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        match n {
            0 => 0,
            n => (self.next() % n as u64) as usize,
        }
    }
}

fn get(data: &[u8], at: usize, len: usize) -> Option<u64> {
    let b = data.get(at..at.checked_add(len)?)?;
    Some(b.iter().rev().fold(0, |acc, &x| acc << 8 | u64::from(x)))
}

fn put(data: &mut [u8], at: usize, len: usize, v: u64) -> bool {
    let Some(b) = at.checked_add(len).and_then(|end| data.get_mut(at..end)) else {
        return false;
    };
    b.copy_from_slice(&v.to_le_bytes()[..len]);
    true
}

/// A new value for the `len`-byte field at `at` of `data`.
fn poke(r: &mut Rng, data: &mut [u8], at: usize, len: usize) -> bool {
    let Some(old) = get(data, at, len) else {
        return false;
    };
    let bits = len * 8;
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    };
    let v = match r.below(10) {
        0 => 0,
        1 => 1,
        2 => max,
        3 => max / 2 + 1,
        4 => old.wrapping_add(1 + r.below(8) as u64),
        5 => old.wrapping_sub(1 + r.below(8) as u64),
        6 => data.len() as u64,
        7 => 1 << r.below(bits),
        8 => old ^ 1 << r.below(bits),
        _ => r.next(),
    };
    put(data, at, len, v & max)
}

/// A section header: where it is, and the section's type, offset and size.
struct Section {
    header: usize,
    kind: u32,
    offset: usize,
    size: usize,
    name: Vec<u8>,
}

const SHT_SYMTAB: u32 = 2;
const SHT_STRTAB: u32 = 3;
const SHT_REL: u32 = 9;
const SHF_EXECINSTR: u64 = 4;

/// The sections of a little-endian ELF64 object, as far as they parse.
fn sections(data: &[u8]) -> Vec<Section> {
    if data.get(..6) != Some(b"\x7fELF\x02\x01") {
        return Vec::new();
    }
    let (Some(shoff), Some(num), Some(strndx)) =
        (get(data, 0x28, 8), get(data, 0x3c, 2), get(data, 0x3e, 2))
    else {
        return Vec::new();
    };
    let mut out: Vec<Section> = (0..num as usize)
        .map_while(|i| {
            let header = usize::try_from(shoff).ok()?.checked_add(i * 64)?;
            Some(Section {
                header,
                kind: get(data, header + 4, 4)? as u32,
                offset: get(data, header + 24, 8)? as usize,
                size: get(data, header + 32, 8)? as usize,
                name: Vec::new(),
            })
        })
        .collect();
    let strtab = out.get(strndx as usize).map(|s| (s.offset, s.size));
    for i in 0..out.len() {
        let name_off = get(data, out[i].header, 4).unwrap_or(0) as usize;
        if let Some((off, size)) = strtab.filter(|(_, size)| name_off < *size) {
            let name = data.get(off + name_off..off + size).unwrap_or_default();
            out[i].name = name.split(|&c| c == 0).next().unwrap_or_default().to_vec();
        }
    }
    out
}

fn flags(data: &[u8], s: &Section) -> u64 {
    get(data, s.header + 8, 8).unwrap_or(0)
}

/// One field of the entry `k` (of `entsize` bytes, fields `fields` as
/// (offset, length)) of the table `s`.
fn poke_entry(
    r: &mut Rng,
    data: &mut [u8],
    s: &Section,
    entsize: usize,
    fields: &[(usize, usize)],
) -> bool {
    let n = s.size / entsize;
    let (at, len) = fields[r.below(fields.len())];
    let k = r.below(n);
    poke(r, data, s.offset + k * entsize + at, len)
}

/// A BTF header field, or a word among the types (type ids, kinds and
/// counts, string offsets).
fn poke_btf(r: &mut Rng, btf: &mut [u8]) -> bool {
    let hdr = get(btf, 4, 4).unwrap_or(24) as usize;
    if r.below(4) == 0 {
        let field = 4 + 4 * r.below(5);
        return poke(r, btf, field, 4);
    }
    let types = get(btf, 8, 4).unwrap_or(0) as usize + hdr;
    let len = get(btf, 12, 4).unwrap_or(0) as usize;
    let at = types + 4 * r.below(len / 4);
    match r.below(3) {
        // A small type id: loops and references to other types.
        0 => put(btf, at, 4, r.below(64) as u64),
        _ => poke(r, btf, at, 4),
    }
}

/// A BTF.ext header field, or a word of its records (code offsets, section
/// names, counts, record sizes).
fn poke_btf_ext(r: &mut Rng, ext: &mut [u8]) -> bool {
    match r.below(3) {
        0 => {
            let field = 4 + 4 * r.below(7);
            poke(r, ext, field, 4)
        }
        _ => {
            let word = 4 * r.below(ext.len() / 4);
            poke(r, ext, word, 4)
        }
    }
}

fn poke_insn(r: &mut Rng, code: &mut [u8], at: usize) -> bool {
    // Opcodes that the transformer treats apart: ld_imm64, call, exit, ja,
    // gotol, r10-based loads and stores, moves and adds.
    const CODES: [u8; 10] = [0x18, 0x85, 0x95, 0x05, 0x06, 0x79, 0x7b, 0x62, 0xbf, 0x07];
    match r.below(5) {
        0 => put(code, at, 1, u64::from(CODES[r.below(CODES.len())])),
        1 => put(code, at + 1, 1, (r.below(11) | r.below(7) << 4) as u64),
        2 => poke(r, code, at + 2, 2),
        3 => put(code, at + 4, 4, (r.below(64) as i64 - 32) as u64),
        _ => poke(r, code, at + 4, 4),
    }
}

fn structured(r: &mut Rng, data: &mut [u8]) -> bool {
    let secs = sections(data);
    if secs.is_empty() {
        return false;
    }
    let pick = |r: &mut Rng, want: &dyn Fn(&Section) -> bool| {
        let fit: Vec<&Section> = secs.iter().filter(|s| want(s)).collect();
        (!fit.is_empty()).then(|| fit[r.below(fit.len())])
    };
    let within = |s: &Section| {
        s.offset
            .checked_add(s.size)
            .is_some_and(|e| e <= data.len())
    };
    match r.below(8) {
        0 => {
            // e_shoff, e_shentsize, e_shnum, e_shstrndx, e_entry, e_flags
            let (at, len) = [
                (0x28, 8),
                (0x3a, 2),
                (0x3c, 2),
                (0x3e, 2),
                (0x18, 8),
                (0x30, 4),
            ][r.below(6)];
            poke(r, data, at, len)
        }
        1 => {
            let s = &secs[r.below(secs.len())];
            // name, type, flags, offset, size, link, info, addralign, entsize
            let (at, len) = [
                (0, 4),
                (4, 4),
                (8, 8),
                (24, 8),
                (32, 8),
                (40, 4),
                (44, 4),
                (48, 8),
                (56, 8),
            ][r.below(9)];
            poke(r, data, s.header + at, len)
        }
        2 => match pick(r, &|s| s.kind == SHT_SYMTAB && within(s)) {
            // name, info, other, shndx, value, size
            Some(s) => poke_entry(
                r,
                data,
                s,
                24,
                &[(0, 4), (4, 1), (5, 1), (6, 2), (8, 8), (16, 8)],
            ),
            None => false,
        },
        3 => match pick(r, &|s| s.kind == SHT_REL && within(s)) {
            // offset, type, symbol
            Some(s) => poke_entry(r, data, s, 16, &[(0, 8), (8, 4), (12, 4)]),
            None => false,
        },
        4 => match pick(r, &|s| s.name == b".BTF" && within(s)) {
            Some(s) => poke_btf(r, &mut data[s.offset..s.offset + s.size]),
            None => false,
        },
        5 => match pick(r, &|s| s.name == b".BTF.ext" && within(s)) {
            Some(s) => poke_btf_ext(r, &mut data[s.offset..s.offset + s.size]),
            None => false,
        },
        6 => match pick(r, &|s| {
            flags(data, s) & SHF_EXECINSTR != 0 && s.size >= 8 && within(s)
        }) {
            Some(s) => {
                let at = s.offset + 8 * r.below(s.size / 8);
                poke_insn(r, data, at)
            }
            None => false,
        },
        _ => {
            // A name made another's: duplicate sections and symbols.
            let s = &secs[r.below(secs.len())];
            let other = &secs[r.below(secs.len())];
            let name = get(data, other.header, 4).unwrap_or(0);
            put(data, s.header, 4, name)
        }
    }
}

fn scale() -> bool {
    static SCALE: OnceLock<bool> = OnceLock::new();
    *SCALE.get_or_init(|| std::env::var_os("XDPCHAIN_FUZZ_SCALE").is_some())
}

/// 2 to 1024 copies, as many as `room` takes of `len` bytes; None if not 2.
fn copies(r: &mut Rng, len: usize, room: usize) -> Option<usize> {
    let n = (2usize << r.below(10)).min(room / len.max(1));
    (n >= 2).then_some(n)
}

/// `.BTF` with its types repeated (a type's references still name types
/// of the first copy), within `room` bytes.
fn grown_btf(r: &mut Rng, btf: &[u8], room: usize) -> Option<Vec<u8>> {
    let hdr = usize::try_from(get(btf, 4, 4)?).ok()?;
    let (toff, tlen) = (get(btf, 8, 4)? as usize, get(btf, 12, 4)? as usize);
    let (soff, slen) = (get(btf, 16, 4)? as usize, get(btf, 20, 4)? as usize);
    let body = btf.get(hdr..)?;
    let (types, strings) = (body.get(toff..toff + tlen)?, body.get(soff..soff + slen)?);
    let n = copies(r, tlen, room.checked_sub(hdr + slen)?)?;
    let mut out = btf[..hdr].to_vec();
    out.extend(types.repeat(n));
    out.extend_from_slice(strings);
    put(&mut out, 8, 4, 0);
    put(&mut out, 12, 4, (tlen * n) as u64);
    put(&mut out, 16, 4, (tlen * n) as u64);
    Some(out)
}

/// `.BTF.ext` with the groups of records of one of its tables repeated.
fn grown_btf_ext(r: &mut Rng, ext: &[u8], room: usize) -> Option<Vec<u8>> {
    let hdr = usize::try_from(get(ext, 4, 4)?).ok()?.min(32);
    let body = ext.get(hdr..)?;
    let tables: Vec<&[u8]> = (8..hdr)
        .step_by(8)
        .map(|at| {
            let (off, len) = (
                get(ext, at, 4).unwrap_or(0),
                get(ext, at + 4, 4).unwrap_or(0),
            );
            body.get(off as usize..(off + len) as usize)
                .unwrap_or_default()
        })
        .collect();
    let grow = r.below(tables.len());
    let groups = tables.get(grow)?.get(4..)?;
    let n = copies(r, groups.len(), room.checked_sub(ext.len())?)?;
    let mut out = ext[..hdr].to_vec();
    for (i, t) in tables.iter().enumerate() {
        let start = out.len();
        out.extend_from_slice(t);
        if i == grow {
            out.extend(groups.repeat(n - 1));
        }
        put(&mut out, 8 + 8 * i, 4, (start - hdr) as u64);
        let len = out.len() - start;
        put(&mut out, 12 + 8 * i, 4, len as u64);
    }
    Some(out)
}

/// A string table with one of its names made long (the strings after it
/// move: names that point there now point elsewhere).
fn grown_name(r: &mut Rng, strings: &[u8], room: usize) -> Option<Vec<u8>> {
    let ends: Vec<usize> = (1..strings.len()).filter(|&i| strings[i] == 0).collect();
    let at = *ends.get(r.below(ends.len()))?;
    let n = (64usize << r.below(12)).min(room.checked_sub(strings.len())?);
    let mut out = strings[..at].to_vec();
    out.extend(std::iter::repeat_n(b'n', n));
    out.extend_from_slice(&strings[at..]);
    Some(out)
}

/// One dimension of the object in `data[..size]` grown: the grown section
/// goes to the end of the file, within `max`, its header pointed at it.
fn grow(r: &mut Rng, data: &mut [u8], size: usize, max: usize) -> Option<usize> {
    let secs = sections(&data[..size]);
    let fit: Vec<&Section> = secs
        .iter()
        .filter(|s| s.size > 0 && s.header + 64 <= size)
        .filter(|s| s.offset.checked_add(s.size).is_some_and(|e| e <= size))
        .collect();
    let s = fit.get(r.below(fit.len()))?;
    let old = &data[s.offset..s.offset + s.size];
    let start = size.next_multiple_of(8);
    let room = max.checked_sub(start)?;
    let new = match (s.kind, s.name.as_slice()) {
        (_, b".BTF") => grown_btf(r, old, room)?,
        (_, b".BTF.ext") => grown_btf_ext(r, old, room)?,
        (SHT_STRTAB, _) => grown_name(r, old, room)?,
        _ => old.repeat(copies(r, old.len(), room)?),
    };
    if new.len() > room {
        return None;
    }
    data[size..start].fill(0);
    data[start..start + new.len()].copy_from_slice(&new);
    put(data, s.header + 24, 8, start as u64);
    put(data, s.header + 32, 8, new.len() as u64);
    Some(start + new.len())
}

/// In scale mode, a quarter of the time: `grown(data)`'s bytes in place of
/// `data[..size]` if they fit `max`; the new size.
fn scaled(
    r: &mut Rng,
    data: &mut [u8],
    size: usize,
    max: usize,
    grown: impl FnOnce(&mut Rng, &[u8], usize) -> Option<Vec<u8>>,
) -> Option<usize> {
    if !scale() || r.below(4) != 0 {
        return None;
    }
    let new = grown(r, &data[..size], max)?;
    let out = data.get_mut(..new.len())?;
    out.copy_from_slice(&new);
    Some(new.len())
}

/// A mutation of the ELF object in `data[..size]` (libFuzzer's custom
/// mutator): the new size.
pub fn mutate_object(data: &mut [u8], size: usize, max: usize, seed: u32) -> usize {
    let mut r = Rng::new(seed);
    if scale() && r.below(4) == 0 {
        if let Some(size) = grow(&mut r, data, size, max) {
            return size;
        }
    }
    if r.below(2) == 0 || !structured(&mut r, &mut data[..size]) {
        return fuzzer_mutate(data, size, max);
    }
    size
}

/// A mutation of the `.BTF` section that starts at `start` of `data[..size]`.
pub fn mutate_btf(data: &mut [u8], size: usize, max: usize, seed: u32, start: usize) -> usize {
    let mut r = Rng::new(seed);
    let grown = |r: &mut Rng, d: &[u8], max: usize| {
        let btf = grown_btf(r, d.get(start..)?, max.checked_sub(start)?)?;
        Some([&d[..start], &btf].concat())
    };
    if let Some(size) = scaled(&mut r, data, size, max, grown) {
        return size;
    }
    if r.below(2) == 0 || !poke_btf(&mut r, &mut data[start.min(size)..size]) {
        return fuzzer_mutate(data, size, max);
    }
    size
}

/// A mutation of the btf_ext target's input: a `.BTF` section's length,
/// the section, then a `.BTF.ext` section.
pub fn mutate_btf_ext(data: &mut [u8], size: usize, max: usize, seed: u32) -> usize {
    let mut r = Rng::new(seed);
    let len = (get(data, 0, 4).unwrap_or(0) as usize).min(size.saturating_sub(4));
    let ext = (4 + len).min(size);
    let grown = |r: &mut Rng, d: &[u8], max: usize| {
        let (btf, rest) = (&d[4.min(d.len())..ext], &d[ext..]);
        let room = max.checked_sub(d.len())?;
        let (btf, rest) = match r.below(2) {
            0 => (grown_btf(r, btf, btf.len() + room)?, rest.to_vec()),
            _ => (btf.to_vec(), grown_btf_ext(r, rest, rest.len() + room)?),
        };
        Some([&(btf.len() as u32).to_le_bytes()[..], &btf, &rest].concat())
    };
    if let Some(size) = scaled(&mut r, data, size, max, grown) {
        return size;
    }
    let done = match r.below(3) {
        0 => poke_btf(&mut r, &mut data[4.min(size)..ext]),
        1 => poke_btf_ext(&mut r, &mut data[ext..size]),
        _ => false,
    };
    if !done {
        return fuzzer_mutate(data, size, max);
    }
    size
}

/// A mutation of instructions: one field of one of them.
pub fn mutate_insns(data: &mut [u8], size: usize, max: usize, seed: u32) -> usize {
    let mut r = Rng::new(seed);
    let grown = |r: &mut Rng, d: &[u8], max: usize| Some(d.repeat(copies(r, d.len(), max)?));
    if let Some(size) = scaled(&mut r, data, size, max, grown) {
        return size;
    }
    let at = 8 * r.below(size / 8);
    if r.below(2) == 0 || size < 8 || !poke_insn(&mut r, &mut data[..size], at) {
        return fuzzer_mutate(data, size, max);
    }
    size
}
