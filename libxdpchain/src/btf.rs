//! Just enough of BTF and BTF.ext to rename and relink what the ELF rewriter
//! moves, and to read libxdp's `XDP_RUN_CONFIG` metadata. Types are edited in
//! place and strings only appended, so every type id and every existing string
//! offset stays valid.

use std::collections::HashMap;

const BTF_MAGIC: u16 = 0xeb9f;

pub const KIND_INT: u32 = 1;
pub const KIND_PTR: u32 = 2;
pub const KIND_ARRAY: u32 = 3;
pub const KIND_STRUCT: u32 = 4;
pub const KIND_UNION: u32 = 5;
pub const KIND_ENUM: u32 = 6;
pub const KIND_TYPEDEF: u32 = 8;
pub const KIND_VOLATILE: u32 = 9;
pub const KIND_CONST: u32 = 10;
pub const KIND_RESTRICT: u32 = 11;
pub const KIND_FUNC: u32 = 12;
pub const KIND_FUNC_PROTO: u32 = 13;
pub const KIND_VAR: u32 = 14;
pub const KIND_DATASEC: u32 = 15;
pub const KIND_DECL_TAG: u32 = 17;
pub const KIND_TYPE_TAG: u32 = 18;
pub const KIND_ENUM64: u32 = 19;

/// BTF_VAR_STATIC / BTF_FUNC_STATIC: local to the object.
pub const LINKAGE_STATIC: u32 = 0;

#[derive(Debug, thiserror::Error)]
#[error("malformed BTF: {0}")]
pub struct BtfError(&'static str);

fn rd32(b: &[u8], off: usize) -> Result<u32, BtfError> {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes(s.try_into().unwrap()))
        .ok_or(BtfError("truncated"))
}

fn wr32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// One type's header, located in the type section.
#[derive(Clone, Copy, Debug)]
pub struct TypeRef {
    pub id: u32,
    /// Byte offset of the type's `name_off` within the type section.
    off: usize,
    pub kind: u32,
    pub vlen: u32,
    pub name_off: u32,
    /// `size` or `type`, depending on the kind.
    pub size_type: u32,
}

pub struct Btf {
    header: Vec<u8>,
    types: Vec<u8>,
    strings: Vec<u8>,
    index: Vec<TypeRef>,
}

impl Btf {
    /// Parses a little-endian `.BTF` section (BPF objects are little-endian
    /// on every host this library supports).
    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != BTF_MAGIC {
            return Err(BtfError("bad magic"));
        }
        let hdr_len = rd32(data, 4)? as usize;
        let (type_off, type_len) = (rd32(data, 8)? as usize, rd32(data, 12)? as usize);
        let (str_off, str_len) = (rd32(data, 16)? as usize, rd32(data, 20)? as usize);
        let section = |off: usize, len: usize| {
            data.get(hdr_len + off..hdr_len + off + len)
                .ok_or(BtfError("section out of bounds"))
        };
        let mut btf = Btf {
            header: data[..hdr_len].to_vec(),
            types: section(type_off, type_len)?.to_vec(),
            strings: section(str_off, str_len)?.to_vec(),
            index: Vec::new(),
        };
        btf.index = btf.build_index()?;
        Ok(btf)
    }

    fn build_index(&self) -> Result<Vec<TypeRef>, BtfError> {
        let b = &self.types;
        let mut out = Vec::new();
        let mut off = 0;
        while off < b.len() {
            let info = rd32(b, off + 4)?;
            let kind = (info >> 24) & 0x1f;
            let vlen = info & 0xffff;
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen as usize,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen as usize,
                KIND_PTR | 7 | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
                | KIND_FUNC | 16 | KIND_TYPE_TAG => 0,
                _ => return Err(BtfError("unknown type kind")),
            };
            out.push(TypeRef {
                id: out.len() as u32 + 1,
                off,
                kind,
                vlen,
                name_off: rd32(b, off)?,
                size_type: rd32(b, off + 8)?,
            });
            off += 12 + extra;
        }
        if off != b.len() {
            return Err(BtfError("type section ends inside a type"));
        }
        Ok(out)
    }

    pub fn types(&self) -> impl Iterator<Item = TypeRef> + '_ {
        self.index.iter().copied()
    }

    pub fn type_by_id(&self, id: u32) -> Option<TypeRef> {
        id.checked_sub(1)
            .and_then(|i| self.index.get(i as usize))
            .copied()
    }

    pub fn str_at(&self, off: u32) -> &str {
        let s = self.strings.get(off as usize..).unwrap_or_default();
        let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
        std::str::from_utf8(&s[..end]).unwrap_or("")
    }

    pub fn name(&self, t: &TypeRef) -> &str {
        self.str_at(t.name_off)
    }

    pub fn add_str(&mut self, s: &str) -> u32 {
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    pub fn set_name(&mut self, t: &TypeRef, name_off: u32) {
        wr32(&mut self.types, t.off, name_off);
        self.index[t.id as usize - 1].name_off = name_off;
    }

    /// Linkage of a FUNC (kept in vlen) or a VAR (in its trailing word).
    pub fn linkage(&self, t: &TypeRef) -> u32 {
        match t.kind {
            KIND_VAR => rd32(&self.types, t.off + 12).unwrap_or(0),
            _ => t.vlen,
        }
    }

    /// Struct/union members or FUNC_PROTO params: (name_off, type).
    pub fn members(&self, t: &TypeRef) -> Vec<(u32, u32)> {
        let stride = if t.kind == KIND_FUNC_PROTO { 8 } else { 12 };
        (0..t.vlen as usize)
            .map(|i| {
                let m = t.off + 12 + i * stride;
                (
                    rd32(&self.types, m).unwrap_or(0),
                    rd32(&self.types, m + 4).unwrap_or(0),
                )
            })
            .collect()
    }

    /// Bit offsets of struct/union members.
    #[cfg(test)]
    pub fn member_offsets(&self, t: &TypeRef) -> Vec<u32> {
        (0..t.vlen as usize)
            .map(|i| rd32(&self.types, t.off + 12 + i * 12 + 8).unwrap_or(0))
            .collect()
    }

    /// DATASEC entries: (var type id, offset, size).
    pub fn datasec_vars(&self, t: &TypeRef) -> Vec<(u32, u32, u32)> {
        (0..t.vlen as usize)
            .map(|i| {
                let m = t.off + 12 + i * 12;
                let r = |o| rd32(&self.types, m + o).unwrap_or(0);
                (r(0), r(4), r(8))
            })
            .collect()
    }

    /// Number of elements of an ARRAY type.
    pub fn array_len(&self, t: &TypeRef) -> Option<u32> {
        (t.kind == KIND_ARRAY).then(|| rd32(&self.types, t.off + 20).unwrap_or(0))
    }

    /// Follows typedefs and qualifiers.
    pub fn skip_mods(&self, mut id: u32) -> Option<TypeRef> {
        loop {
            let t = self.type_by_id(id)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = t.size_type
                }
                _ => return Some(t),
            }
        }
    }

    /// BTF for an object compiled without it: just the entry function
    /// `int name(struct xdp_md *ctx)`, which the linker needs to resolve it
    /// against the root's slot.
    pub fn entry_only(name: &str) -> Vec<u8> {
        let mut strings = vec![0u8];
        let mut s = |x: &str| {
            let off = strings.len() as u32;
            strings.extend_from_slice(x.as_bytes());
            strings.push(0);
            off
        };
        let (int, xdp_md, ctx, func) = (s("int"), s("xdp_md"), s("ctx"), s(name));
        let words: [u32; 20] = [
            int,
            KIND_INT << 24,
            4,
            1 << 24 | 32, // [1] int: signed, 32 bits
            xdp_md,
            7 << 24,
            0, // [2] fwd struct xdp_md
            0,
            KIND_PTR << 24,
            2, // [3] ptr to [2]
            0,
            KIND_FUNC_PROTO << 24 | 1,
            1,
            ctx,
            3, // [4] int (*)(ctx)
            func,
            KIND_FUNC << 24 | 1,
            4, // [5] global func
            0,
            0,
        ];
        let types: Vec<u8> = words[..18].iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut header = vec![0u8; 24];
        header[..4].copy_from_slice(&[0x9f, 0xeb, 1, 0]);
        wr32(&mut header, 4, 24);
        Btf {
            header,
            types,
            strings,
            index: Vec::new(),
        }
        .to_bytes()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.header.clone();
        let hdr_len = out.len();
        wr32(&mut out, 8, 0);
        wr32(&mut out, 12, self.types.len() as u32);
        wr32(&mut out, 16, self.types.len() as u32);
        wr32(&mut out, 20, self.strings.len() as u32);
        out.reserve(self.types.len() + self.strings.len());
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        debug_assert_eq!(out.len(), hdr_len + self.types.len() + self.strings.len());
        out
    }
}

/// One kind of `.BTF.ext` records (func_info, line_info or core_relo), grouped
/// per code section. The first word of every record is its byte offset into
/// the section's code.
#[derive(Default)]
pub struct ExtTable {
    rec_size: u32,
    /// (section name offset in .BTF strings, raw records)
    groups: Vec<(u32, Vec<u8>)>,
}

impl ExtTable {
    fn parse(b: &[u8]) -> Result<Self, BtfError> {
        if b.is_empty() {
            return Ok(Self::default());
        }
        let rec_size = rd32(b, 0)?;
        if rec_size < 4 {
            return Err(BtfError("BTF.ext record too small"));
        }
        let mut groups = Vec::new();
        let mut off = 4;
        while off < b.len() {
            let name = rd32(b, off)?;
            let n = rd32(b, off + 4)? as usize;
            let len = n * rec_size as usize;
            let recs = b
                .get(off + 8..off + 8 + len)
                .ok_or(BtfError("BTF.ext truncated"))?;
            groups.push((name, recs.to_vec()));
            off += 8 + len;
        }
        Ok(ExtTable { rec_size, groups })
    }

    fn write(&self, out: &mut Vec<u8>) {
        if self.groups.is_empty() {
            return;
        }
        out.extend_from_slice(&self.rec_size.to_le_bytes());
        for (name, recs) in &self.groups {
            out.extend_from_slice(&name.to_le_bytes());
            out.extend_from_slice(&((recs.len() / self.rec_size as usize) as u32).to_le_bytes());
            out.extend_from_slice(recs);
        }
    }
}

/// A BTF.ext record with its code offset, while records are regrouped.
type Record = (u32, Vec<u8>);

pub struct BtfExt {
    header: Vec<u8>,
    pub tables: [ExtTable; 3],
}

impl BtfExt {
    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != BTF_MAGIC {
            return Err(BtfError("bad BTF.ext magic"));
        }
        let hdr_len = rd32(data, 4)? as usize;
        let table = |at: usize| -> Result<ExtTable, BtfError> {
            if at + 8 > hdr_len {
                return Ok(ExtTable::default());
            }
            let (off, len) = (rd32(data, at)? as usize, rd32(data, at + 4)? as usize);
            let body = data
                .get(hdr_len + off..hdr_len + off + len)
                .ok_or(BtfError("BTF.ext table out of bounds"))?;
            ExtTable::parse(body)
        };
        Ok(BtfExt {
            header: data[..hdr_len].to_vec(),
            tables: [table(8)?, table(16)?, table(24)?],
        })
    }

    /// Moves every record: `map` gets its section name and code offset and
    /// returns where it goes, or None to drop it. Each section's records end
    /// up sorted by offset, as the kernel wants func_info and line_info.
    pub fn relocate(&mut self, btf: &mut Btf, map: impl Fn(&str, u32) -> Option<(String, u32)>) {
        let mut name_offs: HashMap<String, u32> = HashMap::new();
        for table in &mut self.tables {
            let size = table.rec_size as usize;
            let mut out: Vec<(String, Vec<Record>)> = Vec::new();
            for (name_off, recs) in std::mem::take(&mut table.groups) {
                let sec = btf.str_at(name_off).to_string();
                name_offs.entry(sec.clone()).or_insert(name_off);
                for rec in recs.chunks(size) {
                    let off = u32::from_le_bytes(rec[..4].try_into().unwrap());
                    let Some((to, new_off)) = map(&sec, off) else {
                        continue;
                    };
                    let mut rec = rec.to_vec();
                    rec[..4].copy_from_slice(&new_off.to_le_bytes());
                    match out.iter_mut().find(|(n, _)| *n == to) {
                        Some((_, v)) => v.push((new_off, rec)),
                        None => out.push((to, vec![(new_off, rec)])),
                    }
                }
            }
            for (to, mut recs) in out {
                recs.sort_by_key(|(off, _)| *off);
                let off = *name_offs
                    .entry(to.clone())
                    .or_insert_with(|| btf.add_str(&to));
                table
                    .groups
                    .push((off, recs.into_iter().flat_map(|(_, r)| r).collect()));
            }
        }
    }

    /// Drops func_info and line_info: needed when any linked object has none,
    /// since the kernel wants them for every function or for none.
    pub fn strip_debug_info(&mut self) {
        self.tables[0].groups.clear();
        self.tables[1].groups.clear();
    }

    /// libbpf refuses a .BTF.ext without records: drop the section then.
    pub fn is_empty(&self) -> bool {
        self.tables.iter().all(|t| t.groups.is_empty())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.header.clone();
        let hdr_len = out.len();
        let mut body = Vec::new();
        for (i, table) in self.tables.iter().enumerate() {
            let at = 8 + 8 * i;
            if at + 8 > hdr_len {
                continue;
            }
            let start = body.len() as u32;
            table.write(&mut body);
            wr32(&mut out, at, start);
            wr32(&mut out, at + 4, body.len() as u32 - start);
        }
        out.extend_from_slice(&body);
        out
    }
}
