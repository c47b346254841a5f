//! Just enough of BTF and BTF.ext to rename and relink what the ELF rewriter
//! moves, and to read libxdp's `XDP_RUN_CONFIG` metadata. Types are edited in
//! place and strings only appended, so every type id and every existing string
//! offset stays valid.

use std::collections::HashMap;

use crate::error::{Error, Result};

const BTF_MAGIC: u16 = 0xeb9f;

/// A BTF type's kind (linux/btf.h BTF_KIND_*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Int = 1,
    Ptr,
    Array,
    Struct,
    Union,
    Enum,
    Fwd,
    Typedef,
    Volatile,
    Const,
    Restrict,
    Func,
    FuncProto,
    Var,
    Datasec,
    Float,
    DeclTag,
    TypeTag,
    Enum64,
}

impl Kind {
    const ALL: [Kind; 19] = [
        Kind::Int,
        Kind::Ptr,
        Kind::Array,
        Kind::Struct,
        Kind::Union,
        Kind::Enum,
        Kind::Fwd,
        Kind::Typedef,
        Kind::Volatile,
        Kind::Const,
        Kind::Restrict,
        Kind::Func,
        Kind::FuncProto,
        Kind::Var,
        Kind::Datasec,
        Kind::Float,
        Kind::DeclTag,
        Kind::TypeTag,
        Kind::Enum64,
    ];

    /// The kind that a type's `info` word names (bits 24 to 28).
    fn of_info(info: u32) -> Option<Kind> {
        let k = (info >> 24) & 0x1f;
        Kind::ALL.into_iter().find(|kind| *kind as u32 == k)
    }

    /// `info` for this kind with `vlen`.
    fn info(self, vlen: u32) -> u32 {
        (self as u32) << 24 | vlen
    }

    /// The bytes that follow a type's 12-byte header, for `vlen` entries.
    fn extra(self, vlen: usize) -> usize {
        match self {
            Kind::Int | Kind::Var | Kind::DeclTag => 4,
            Kind::Array => 12,
            Kind::Struct | Kind::Union | Kind::Datasec | Kind::Enum64 => 12 * vlen,
            Kind::Enum | Kind::FuncProto => 8 * vlen,
            Kind::Ptr
            | Kind::Fwd
            | Kind::Typedef
            | Kind::Volatile
            | Kind::Const
            | Kind::Restrict
            | Kind::Func
            | Kind::Float
            | Kind::TypeTag => 0,
        }
    }
}

/// `recs`, records of `size` bytes, sorted by their first word (stable).
fn sorted(recs: Vec<u8>, size: usize) -> Vec<u8> {
    let key = |r: &[u8]| u32::from_le_bytes([r[0], r[1], r[2], r[3]]);
    if recs.chunks_exact(size).is_sorted_by_key(key) {
        return recs;
    }
    let mut order: Vec<&[u8]> = recs.chunks_exact(size).collect();
    order.sort_by_key(|r| key(r));
    order.concat()
}

/// Where a FUNC or a VAR is visible (BTF_FUNC_* / BTF_VAR_*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linkage {
    /// Local to its object.
    Static,
    Global,
    Extern,
}

pub fn rd32(b: &[u8], off: usize) -> Result<u32> {
    off.checked_add(4)
        .and_then(|end| b.get(off..end))
        .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
        .ok_or(Error::Btf("truncated"))
}

/// `len` bytes at `off` of `data`, all of them inside it.
fn part<'a>(data: &'a [u8], off: usize, len: usize, what: &'static str) -> Result<&'a [u8]> {
    off.checked_add(len)
        .and_then(|end| data.get(off..end))
        .ok_or(Error::Btf(what))
}

pub fn wr32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// One type's header, located in the type section.
#[derive(Clone, Copy, Debug)]
pub struct TypeRef {
    pub id: u32,
    /// Byte offset of the type's `name_off` within the type section.
    off: usize,
    pub kind: Kind,
    pub vlen: u32,
    pub name_off: u32,
    /// `size` or `type`, depending on the kind.
    pub size_type: u32,
}

/// Types that a BTF may hold (limits::MAX_BTF_TYPES).
pub const MAX_TYPES: usize = 1 << 16;

/// The longest name, in bytes, of a type, a member, a symbol or a section
/// (limits::MAX_NAME_LEN): the kernel takes no longer BTF name
/// (KSYM_NAME_LEN, 512 with its NUL, since 6.1; 128 before).
pub const MAX_NAME_LEN: usize = 511;

/// The length of the NUL-terminated name at `off` of `strings`, if it has
/// one within [`MAX_NAME_LEN`]: never a look past that, however long the
/// string, so that checking every name stays linear in their number.
pub fn name_len(strings: &[u8], off: u32) -> Option<usize> {
    let s = strings.get(off as usize..)?;
    memchr::memchr(0, &s[..s.len().min(MAX_NAME_LEN + 1)])
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
    pub fn parse(data: &[u8]) -> Result<Self> {
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != BTF_MAGIC {
            return Err(Error::Btf("bad magic"));
        }
        let hdr_len = rd32(data, 4)? as usize;
        if hdr_len < 24 {
            return Err(Error::Btf("header too short"));
        }
        let header = part(data, 0, hdr_len, "header out of bounds")?;
        let body = &data[hdr_len..];
        let (type_off, type_len) = (rd32(data, 8)? as usize, rd32(data, 12)? as usize);
        let (str_off, str_len) = (rd32(data, 16)? as usize, rd32(data, 20)? as usize);
        let section = |off: usize, len: usize| part(body, off, len, "section out of bounds");
        let mut btf = Btf {
            header: header.to_vec(),
            types: section(type_off, type_len)?.to_vec(),
            strings: section(str_off, str_len)?.to_vec(),
            index: Vec::new(),
        };
        btf.index = btf.build_index()?;
        btf.check_names()?;
        btf.check_references()?;
        Ok(btf)
    }

    /// Every name (of a type, a member, a parameter or an enumerator) ends
    /// within the string section and [`MAX_NAME_LEN`].
    fn check_names(&self) -> Result<()> {
        for t in &self.index {
            let stride = match t.kind {
                Kind::Struct | Kind::Union | Kind::Enum64 => 12,
                Kind::Enum | Kind::FuncProto => 8,
                _ => 0,
            };
            let members = (0..t.vlen as usize * usize::from(stride > 0))
                .map(|i| rd32(&self.types, t.off + 12 + i * stride));
            for off in std::iter::once(Ok(t.name_off)).chain(members) {
                if name_len(&self.strings, off?).is_none() {
                    return Err(Error::Btf(
                        "a name longer than the kernel takes, or unterminated",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The types that `t` holds by value (not through a pointer).
    fn contained(&self, t: &TypeRef) -> Vec<u32> {
        let word = |at: usize| rd32(&self.types, at).unwrap_or(0);
        match t.kind {
            Kind::Typedef
            | Kind::Volatile
            | Kind::Const
            | Kind::Restrict
            | Kind::TypeTag
            | Kind::Var
            | Kind::Func
            | Kind::DeclTag => vec![t.size_type],
            Kind::Array => vec![word(t.off + 12), word(t.off + 16)],
            Kind::Struct | Kind::Union => self.members(t).into_iter().map(|(_, ty)| ty).collect(),
            Kind::FuncProto => std::iter::once(t.size_type)
                .chain(self.members(t).into_iter().map(|(_, ty)| ty))
                .collect(),
            Kind::Datasec => self
                .datasec_vars(t)
                .into_iter()
                .map(|(ty, _, _)| ty)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// What `t` refers to other than through a struct's or a union's
    /// members: the types a walk that follows pointers goes on to.
    fn referred(&self, t: &TypeRef) -> Vec<u32> {
        match t.kind {
            Kind::Ptr => vec![t.size_type],
            Kind::Struct | Kind::Union => Vec::new(),
            _ => self.contained(t),
        }
    }

    /// Every reference names a type; no type holds itself by value
    /// (through qualifiers, typedefs, arrays or members), and no chain of
    /// pointers and qualifiers comes back to where it started without a
    /// struct or union on the way, as no C type can: walks over types, ours
    /// and libbpf's (its linker follows pointers), then end. Linear in the
    /// number of references.
    fn check_references(&self) -> Result<()> {
        self.acyclic(Self::contained)?;
        self.acyclic(Self::referred)
    }

    fn acyclic(&self, edges: fn(&Self, &TypeRef) -> Vec<u32>) -> Result<()> {
        const NEW: u8 = 0;
        const OPEN: u8 = 1;
        const DONE: u8 = 2;
        let mut state = vec![NEW; self.index.len() + 1];
        for root in &self.index {
            if state[root.id as usize] != NEW {
                continue;
            }
            // Depth first, without recursion: (type, what it holds, next).
            let mut stack = vec![(root.id, edges(self, root), 0)];
            state[root.id as usize] = OPEN;
            while let Some((id, held, next)) = stack.last_mut() {
                let Some(&child) = held.get(*next) else {
                    state[*id as usize] = DONE;
                    stack.pop();
                    continue;
                };
                *next += 1;
                match state.get(child as usize) {
                    None => return Err(Error::Btf("a reference to no type")),
                    Some(&OPEN) => return Err(Error::Btf("a type that holds itself")),
                    Some(&NEW) if child != 0 => {
                        state[child as usize] = OPEN;
                        let t = self.index[child as usize - 1];
                        stack.push((child, edges(self, &t), 0));
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    fn build_index(&self) -> Result<Vec<TypeRef>> {
        let b = &self.types;
        let mut out = Vec::new();
        let mut off = 0;
        while off < b.len() {
            if out.len() >= MAX_TYPES {
                return Err(Error::Btf("more BTF types than the limit"));
            }
            let info = rd32(b, off + 4)?;
            let kind = Kind::of_info(info).ok_or(Error::Btf("unknown type kind"))?;
            let vlen = info & 0xffff;
            // As the kernel: vlen counts entries, or is a function's
            // linkage; other kinds have none (walks over members would
            // read as many from the next types).
            let entries = match kind {
                Kind::Struct | Kind::Union | Kind::Enum | Kind::Enum64 => true,
                Kind::FuncProto | Kind::Datasec => true,
                Kind::Func => vlen <= 2,
                _ => vlen == 0,
            };
            if !entries {
                return Err(Error::Btf("a vlen its kind cannot have"));
            }
            let extra = kind.extra(vlen as usize);
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
            return Err(Error::Btf("type section ends inside a type"));
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
        let end = memchr::memchr(0, s).unwrap_or(s.len());
        std::str::from_utf8(&s[..end]).unwrap_or("")
    }

    /// Whether the name at `off` ends within [`MAX_NAME_LEN`]: true of
    /// every name of a parsed BTF, to check a name from elsewhere (`.BTF.ext`
    /// section names).
    pub fn is_name(&self, off: u32) -> bool {
        name_len(&self.strings, off).is_some()
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
    pub fn linkage(&self, t: &TypeRef) -> Option<Linkage> {
        let raw = match t.kind {
            Kind::Var => rd32(&self.types, t.off + 12).ok()?,
            Kind::Func => t.vlen,
            _ => return None,
        };
        [Linkage::Static, Linkage::Global, Linkage::Extern]
            .get(raw as usize)
            .copied()
    }

    /// Struct/union members or FUNC_PROTO params: (name_off, type).
    pub fn members(&self, t: &TypeRef) -> Vec<(u32, u32)> {
        let stride = if t.kind == Kind::FuncProto { 8 } else { 12 };
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

    /// Sets the number of elements of an ARRAY type.
    pub fn set_array_len(&mut self, t: &TypeRef, n: u32) {
        debug_assert_eq!(t.kind, Kind::Array);
        wr32(&mut self.types, t.off + 20, n);
    }

    /// Whether an INT type is signed; None for other kinds.
    pub fn int_signed(&self, t: &TypeRef) -> Option<bool> {
        // The word after the header: encoding in bits 24..28, SIGNED = 1.
        (t.kind == Kind::Int).then(|| rd32(&self.types, t.off + 12).is_ok_and(|e| e >> 24 & 1 != 0))
    }

    /// Number of elements of an ARRAY type.
    pub fn array_len(&self, t: &TypeRef) -> Option<u32> {
        (t.kind == Kind::Array).then(|| rd32(&self.types, t.off + 20).unwrap_or(0))
    }

    /// Follows typedefs and qualifiers; None for a chain of them that
    /// loops (longer than there are types).
    pub fn skip_mods(&self, mut id: u32) -> Option<TypeRef> {
        for _ in 0..=self.index.len() {
            let t = self.type_by_id(id)?;
            match t.kind {
                Kind::Typedef | Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag => {
                    id = t.size_type
                }
                _ => return Some(t),
            }
        }
        None
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
            Kind::Int.info(0),
            4,
            1 << 24 | 32, // [1] int: signed, 32 bits
            xdp_md,
            Kind::Fwd.info(0),
            0, // [2] fwd struct xdp_md
            0,
            Kind::Ptr.info(0),
            2, // [3] ptr to [2]
            0,
            Kind::FuncProto.info(1),
            1,
            ctx,
            3, // [4] int (*)(ctx)
            func,
            Kind::Func.info(Linkage::Global as u32),
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
    /// The string offsets of the code sections that have records.
    pub fn sections(&self) -> impl Iterator<Item = u32> + '_ {
        self.groups.iter().map(|(name, _)| *name)
    }

    /// How many records it holds, of all sections.
    pub fn record_count(&self) -> usize {
        let size = (self.rec_size as usize).max(1);
        self.groups.iter().map(|(_, recs)| recs.len() / size).sum()
    }

    fn parse(b: &[u8]) -> Result<Self> {
        if b.is_empty() {
            return Ok(Self::default());
        }
        let rec_size = rd32(b, 0)?;
        if rec_size < 4 {
            return Err(Error::Btf("BTF.ext record too small"));
        }
        let mut groups = Vec::new();
        let mut off = 4;
        while off < b.len() {
            let name = rd32(b, off)?;
            let n = rd32(b, off + 4)? as usize;
            let len = n
                .checked_mul(rec_size as usize)
                .ok_or(Error::Btf("BTF.ext truncated"))?;
            let recs = part(b, off + 8, len, "BTF.ext truncated")?;
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

/// Where the records of one code section go, decided once per section
/// (never per record: a section's name is read and hashed once).
pub struct Fate {
    /// The string offset of the section's name from now on, or None: its
    /// records are dropped.
    pub to: Option<u32>,
    /// Records in a range of code offsets that goes elsewhere.
    pub part: Option<Part>,
}

/// Code at `range` of a section moved to the section named at `to`, at
/// `base`.
pub struct Part {
    pub range: std::ops::Range<u32>,
    pub to: u32,
    pub base: u32,
}

pub struct BtfExt {
    header: Vec<u8>,
    pub tables: [ExtTable; 3],
}

impl BtfExt {
    pub fn parse(data: &[u8]) -> Result<Self> {
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != BTF_MAGIC {
            return Err(Error::Btf("bad BTF.ext magic"));
        }
        let hdr_len = rd32(data, 4)? as usize;
        if hdr_len < 24 {
            return Err(Error::Btf("BTF.ext header too short"));
        }
        let header = part(data, 0, hdr_len, "BTF.ext header out of bounds")?;
        let body = &data[hdr_len..];
        let table = |at: usize| -> Result<ExtTable> {
            if at + 8 > hdr_len {
                return Ok(ExtTable::default());
            }
            let (off, len) = (rd32(data, at)? as usize, rd32(data, at + 4)? as usize);
            ExtTable::parse(part(body, off, len, "BTF.ext table out of bounds")?)
        };
        Ok(BtfExt {
            header: header.to_vec(),
            tables: [table(8)?, table(16)?, table(24)?],
        })
    }

    /// Moves every record where `fate` says its section goes: it gets the
    /// BTF (to add names), the string offset of the section's name and the
    /// name. Each section's records end up sorted by offset, as the kernel
    /// wants func_info and line_info. Linear in the records (and the
    /// sections, whose names are no longer than [`MAX_NAME_LEN`]).
    pub fn relocate(&mut self, btf: &mut Btf, mut fate: impl FnMut(&mut Btf, u32, &str) -> Fate) {
        // One string offset per name, so that records bound for one section
        // (`.text` and code moved there) form one group.
        let mut names: HashMap<String, u32> = HashMap::new();
        let mut canonical =
            |btf: &Btf, off: u32| *names.entry(btf.str_at(off).into()).or_insert(off);
        for table in &mut self.tables {
            let size = table.rec_size as usize;
            // Records by the string offset of their section's new name, in
            // order of first arrival.
            let mut out: Vec<(u32, Vec<u8>)> = Vec::new();
            let mut at: HashMap<u32, usize> = HashMap::new();
            let mut add = |to: u32, off: u32, rec: &[u8]| {
                let k = *at.entry(to).or_insert_with(|| {
                    out.push((to, Vec::new()));
                    out.len() - 1
                });
                let recs = &mut out[k].1;
                recs.extend_from_slice(&off.to_le_bytes());
                recs.extend_from_slice(&rec[4..]);
            };
            for (name_off, recs) in std::mem::take(&mut table.groups) {
                let sec = btf.str_at(name_off).to_owned();
                let mut f = fate(btf, name_off, &sec);
                f.to = f.to.map(|to| canonical(btf, to));
                if let Some(p) = &mut f.part {
                    p.to = canonical(btf, p.to);
                }
                for rec in recs.chunks_exact(size) {
                    let off = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]);
                    match (&f.part, f.to) {
                        (Some(p), _) if p.range.contains(&off) => {
                            add(p.to, off - p.range.start + p.base, rec)
                        }
                        (_, Some(to)) => add(to, off, rec),
                        (_, None) => {}
                    }
                }
            }
            for (to, recs) in out {
                table.groups.push((to, sorted(recs, size)));
            }
        }
    }

    /// The records of `table` (0: func_info, 1: line_info, 2: core_relo)
    /// of the code section `section`.
    pub fn records(&self, btf: &Btf, table: usize, section: &str) -> Vec<Vec<u8>> {
        let t = &self.tables[table];
        t.groups
            .iter()
            .filter(|(name, _)| btf.str_at(*name) == section)
            .flat_map(|(_, recs)| recs.chunks_exact(t.rec_size as usize).map(<[u8]>::to_vec))
            .collect()
    }

    /// Replaces the records of `table` of the code section `section` with
    /// `recs` (sorted by offset); `section` must have records in some table,
    /// whose name they share.
    pub fn set_records(
        &mut self,
        btf: &Btf,
        table: usize,
        section: &str,
        recs: Vec<Vec<u8>>,
    ) -> Result<()> {
        let t = &mut self.tables[table];
        t.groups.retain(|(name, _)| btf.str_at(*name) != section);
        let name = self
            .tables
            .iter()
            .flat_map(|t| &t.groups)
            .find(|(n, _)| btf.str_at(*n) == section)
            .map(|(n, _)| *n);
        let t = &mut self.tables[table];
        if let (Some(name), Some(first)) = (name, recs.first()) {
            if t.rec_size == 0 {
                t.rec_size = first.len() as u32;
            }
            if recs.iter().any(|r| r.len() != t.rec_size as usize) {
                return Err(Error::Btf("BTF.ext records of another size"));
            }
            t.groups.push((name, recs.concat()));
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    //! The BTF editor on the unit tests' component (bpf/testdata) and on
    //! bytes built or broken here: no kernel, no privileges.
    use object::{Object as _, ObjectSection as _};

    use super::*;

    const COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/test_component.bpf.o"));

    fn section(name: &str) -> Vec<u8> {
        let file = object::File::parse(COMPONENT).unwrap();
        file.section_by_name(name).unwrap().data().unwrap().to_vec()
    }

    fn find(btf: &Btf, kind: Kind, name: &str) -> Option<TypeRef> {
        btf.types().find(|t| t.kind == kind && btf.name(t) == name)
    }

    #[test]
    fn hostile_headers_cycles_and_many_sections() {
        // Headers shorter than their fields, or longer than the section.
        for (raw, parse) in [
            (
                section(".BTF"),
                (|b: &[u8]| Btf::parse(b).err()) as fn(&[u8]) -> Option<Error>,
            ),
            (section(".BTF.ext"), |b: &[u8]| BtfExt::parse(b).err()),
        ] {
            for hdr_len in [0u32, 8, 23, raw.len() as u32 + 1, u32::MAX] {
                let mut b = raw.clone();
                wr32(&mut b, 4, hdr_len);
                assert!(parse(&b).is_some(), "header length {hdr_len}");
            }
        }
        // A qualifier that qualifies itself is refused (libbpf's linker
        // would walk it for ever), a struct that holds itself too; the
        // walk ends on it all the same.
        let mut btf = Btf::parse(&section(".BTF")).unwrap();
        let c = btf
            .types()
            .find(|t| t.kind == Kind::Const)
            .expect("port is const");
        wr32(&mut btf.types, c.off + 8, c.id);
        btf.index[c.id as usize - 1].size_type = c.id;
        assert!(btf.skip_mods(c.id).is_none());
        let e = Btf::parse(&btf.to_bytes()).err().unwrap();
        assert_eq!(e.to_string(), "malformed BTF: a type that holds itself");
        let mut btf = Btf::parse(&section(".BTF")).unwrap();
        let st = btf
            .types()
            .find(|t| t.kind == Kind::Struct && t.vlen > 0)
            .unwrap();
        wr32(&mut btf.types, st.off + 12 + 4, st.id);
        assert!(Btf::parse(&btf.to_bytes()).is_err());
        // A pointer to itself, which libbpf's linker followed for ever.
        let mut btf = Btf::parse(&section(".BTF")).unwrap();
        let ptr = btf.types().find(|t| t.kind == Kind::Ptr).unwrap();
        wr32(&mut btf.types, ptr.off + 8, ptr.id);
        assert!(Btf::parse(&btf.to_bytes()).is_err());
        let mut btf = Btf::parse(&section(".BTF")).unwrap();
        wr32(&mut btf.types, c.off + 8, 1 << 30);
        assert!(Btf::parse(&btf.to_bytes()).is_err());
        // Records of many sections move in time linear in their number.
        let mut btf = Btf::parse(&section(".BTF")).unwrap();
        let mut ext = BtfExt::parse(&section(".BTF.ext")).unwrap();
        let n = 50_000;
        ext.tables[0].groups = (0..n)
            .map(|i| (btf.add_str(&format!("s{i}")), vec![0u8; 8]))
            .collect();
        ext.relocate(&mut btf, |btf, _, sec| Fate {
            to: Some(btf.add_str(&format!("{sec}.x"))),
            part: None,
        });
        assert_eq!(ext.tables[0].groups.len(), n);
    }

    #[test]
    fn parses_and_writes_back_unchanged() {
        let raw = section(".BTF");
        let btf = Btf::parse(&raw).unwrap();
        assert_eq!(btf.to_bytes(), raw);
        let f = find(&btf, Kind::Func, "xdp_first").expect("xdp_first in BTF");
        assert_eq!(btf.linkage(&f), Some(Linkage::Global));
        let bump = find(&btf, Kind::Func, "bump").unwrap();
        assert_eq!(btf.linkage(&bump), Some(Linkage::Static));
        let seen = find(&btf, Kind::Var, "seen").unwrap();
        assert_eq!(btf.linkage(&seen), Some(Linkage::Global));
        let ext = section(".BTF.ext");
        assert_eq!(BtfExt::parse(&ext).unwrap().to_bytes(), ext);
    }

    #[test]
    fn renames_keep_ids_and_old_strings() {
        let mut btf = Btf::parse(&section(".BTF")).unwrap();
        let f = find(&btf, Kind::Func, "xdp_first").unwrap();
        let count = btf.types().count();
        let off = btf.add_str("xdpchain_slot_3");
        btf.set_name(&f, off);
        let back = Btf::parse(&btf.to_bytes()).unwrap();
        let renamed = back.type_by_id(f.id).unwrap();
        assert_eq!(
            (back.name(&renamed), renamed.kind),
            ("xdpchain_slot_3", Kind::Func)
        );
        assert_eq!(back.types().count(), count);
        assert!(find(&back, Kind::Func, "xdp_first").is_none());
        // Strings are only appended: the old name is still there.
        assert_eq!(back.str_at(f.name_off), "xdp_first");
    }

    #[test]
    fn relocate_moves_records_between_sections_in_order() {
        let mut btf = Btf::parse(&section(".BTF")).unwrap();
        let mut ext = BtfExt::parse(&section(".BTF.ext")).unwrap();
        let records = |ext: &BtfExt, btf: &Btf, sec: &str| -> Vec<u32> {
            let t = &ext.tables[0];
            t.groups
                .iter()
                .filter(|(n, _)| btf.str_at(*n) == sec)
                .flat_map(|(_, r)| r.chunks(t.rec_size as usize))
                .map(|r| u32::from_le_bytes(r[..4].try_into().unwrap()))
                .collect()
        };
        let before = records(&ext, &btf, "xdp").len() + records(&ext, &btf, ".text").len();
        // Everything of "xdp" to ".text", after its code; nothing dropped.
        // ".text" is named anew: its records and the moved ones form one
        // group all the same.
        let text_off = btf.add_str(".text");
        ext.relocate(&mut btf, |_, name_off, sec| Fate {
            to: Some(name_off),
            part: (sec == "xdp").then_some(Part {
                range: 0..u32::MAX,
                to: text_off,
                base: 1000,
            }),
        });
        let text = records(&ext, &btf, ".text");
        assert_eq!(text.len(), before);
        let groups = ext.tables[0]
            .sections()
            .filter(|&n| btf.str_at(n) == ".text");
        assert_eq!(groups.count(), 1);
        assert!(records(&ext, &btf, "xdp").is_empty());
        assert!(text.windows(2).all(|w| w[0] <= w[1]), "{text:?}");
        // A new section name lands in the strings; a section going nowhere
        // loses its records.
        let moved = btf.add_str(".text.moved");
        ext.relocate(&mut btf, |_, _, _| Fate {
            to: Some(moved),
            part: None,
        });
        assert_eq!(records(&ext, &btf, ".text.moved").len(), before);
        ext.strip_debug_info();
        assert!(ext.tables[0].groups.is_empty() && ext.tables[1].groups.is_empty());
        ext.relocate(&mut btf, |_, _, _| Fate {
            to: None,
            part: None,
        });
        assert!(ext.is_empty());
    }

    #[test]
    fn entry_only_btf_describes_one_global_function() {
        let btf = Btf::parse(&Btf::entry_only("xdp_fw")).unwrap();
        let f = find(&btf, Kind::Func, "xdp_fw").unwrap();
        assert_eq!(btf.linkage(&f), Some(Linkage::Global));
        let proto = btf.type_by_id(f.size_type).unwrap();
        assert_eq!((proto.kind, proto.vlen), (Kind::FuncProto, 1));
    }

    #[test]
    fn malformed_btf_is_refused() {
        let good = section(".BTF");
        let refused = |b: &[u8]| Btf::parse(b).err().expect("refused").to_string();
        assert!(refused(b"").contains("bad magic"));
        assert!(refused(&[0u8; 64]).contains("bad magic"));
        for len in [24, 30, good.len() / 2, good.len() - 1] {
            refused(&good[..len]);
        }
        let with = |at: usize, v: u32| {
            let mut b = good.clone();
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            b
        };
        // Header length, type and string sections beyond the data.
        for (at, v) in [
            (4, u32::MAX),
            (4, 1 << 20),
            (8, u32::MAX),
            (12, u32::MAX),
            (20, u32::MAX),
        ] {
            refused(&with(at, v));
        }
        // A type of an unknown kind (31), and a type section that ends
        // inside a type.
        let hdr = u32::from_le_bytes(good[4..8].try_into().unwrap()) as usize;
        assert!(refused(&with(hdr + 4, 31 << 24)).contains("unknown type kind"));
        let types_len = u32::from_le_bytes(good[12..16].try_into().unwrap());
        refused(&with(12, types_len - 2));
        // A pointer with entries, as the kernel refuses it (found by the
        // scale campaign: walks of its "members" read far past it).
        let btf = Btf::parse(&good).unwrap();
        let ptr = btf.types().find(|t| t.kind == Kind::Ptr).unwrap();
        let e = refused(&with(hdr + ptr.off + 4, (Kind::Ptr as u32) << 24 | 65532));
        assert!(e.contains("a vlen its kind cannot have"), "{e}");
    }

    #[test]
    fn malformed_btf_ext_is_refused() {
        let good = section(".BTF.ext");
        let with = |at: usize, v: u32| {
            let mut b = good.clone();
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            b
        };
        let refused = |b: &[u8]| {
            assert!(BtfExt::parse(b).is_err(), "accepted");
        };
        refused(b"");
        refused(&good[..good.len() - 1]);
        let hdr = u32::from_le_bytes(good[4..8].try_into().unwrap()) as usize;
        refused(&with(4, u32::MAX));
        // func_info table: past the end; records too small; a huge count.
        refused(&with(12, u32::MAX));
        let func_off = hdr + u32::from_le_bytes(good[8..12].try_into().unwrap()) as usize;
        refused(&with(func_off, 2));
        refused(&with(func_off, u32::MAX));
        refused(&with(func_off + 8, u32::MAX));
    }
}
