//! Hostile input at scale: objects grown one dimension at a time (names,
//! BTF types, `.BTF.ext` records, globals, functions, instructions,
//! relocations) to sizes that once took seconds or gigabytes. `xdpchain
//! link` must link or refuse each within a generous bound of time and
//! memory, and a refusal is one short line. Nothing here loads: the guests
//! skip it, since every kernel would do the same work.
//!
//! XDPCHAIN_SCALE=N grows every shape N times (4 checks the bound at 4×);
//! XDPCHAIN_SCALE_BIN measures another build of the command,
//! XDPCHAIN_SCALE_KEEP=DIR keeps the inputs there, and --nocapture prints
//! each shape's figures.
mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_xdpchain");
const TIME: Duration = Duration::from_secs(15);
const RSS_KB: u64 = 1 << 20;

fn scale() -> usize {
    std::env::var("XDPCHAIN_SCALE").map_or(1, |s| s.parse().unwrap())
}

struct Outcome {
    ok: bool,
    err: String,
    time: Duration,
    rss_kb: u64,
}

/// Runs `xdpchain link -o OUT INPUTS...` and measures it. GNU time reads
/// its peak RSS (a child of ours would count our own pages, which the
/// kernel carries over its exec) and its CPU time, which other work on a
/// busy machine does not stretch as it stretches the time on the clock.
fn link(dir: &Path, inputs: &[PathBuf]) -> Outcome {
    let bin = std::env::var("XDPCHAIN_SCALE_BIN").unwrap_or_else(|_| BIN.into());
    let usage = dir.join("usage");
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M %U %S")
        .arg("-o")
        .arg(&usage)
        .arg(bin)
        .arg("link")
        .arg("-o")
        .arg(dir.join("out.o"))
        .args(inputs)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let usage = std::fs::read_to_string(&usage).unwrap();
    let usage: Vec<&str> = usage.lines().last().unwrap().split(' ').collect();
    let seconds = |s: &str| Duration::from_secs_f64(s.parse().unwrap());
    Outcome {
        ok: out.status.success(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
        time: seconds(usage[1]) + seconds(usage[2]),
        rss_kb: usage[0].parse().unwrap(),
    }
}

/// Links `inputs` and checks the bounds: in time, in memory, and a refusal
/// in one line of at most 300 characters.
fn bounded(shape: &str, dir: &Path, inputs: &[PathBuf]) -> Outcome {
    let size: u64 = inputs
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    if let Ok(keep) = std::env::var("XDPCHAIN_SCALE_KEEP") {
        for p in inputs {
            std::fs::copy(p, Path::new(&keep).join(p.file_name().unwrap())).unwrap();
        }
    }
    let o = link(dir, inputs);
    eprintln!(
        "{shape}: {} KB in, {:.2} s of CPU, {} MB peak RSS, {}",
        size >> 10,
        o.time.as_secs_f64(),
        o.rss_kb >> 10,
        if o.ok { "linked" } else { o.err.trim_end() }
    );
    assert!(o.time < TIME, "{shape}: {:?}", o.time);
    // Peak RSS in proportion to the input, over the command's own: the
    // heap peaks at 4 copies (the input, the rewritten one, libbpf's
    // linker's input and output; or the builder's relocations at 2.5 times
    // their size), and the allocator keeps some of what was freed.
    assert!(o.rss_kb < RSS_KB, "{shape}: {} KB", o.rss_kb);
    assert!(
        o.rss_kb < 5 * (size >> 10) + (32 << 10),
        "{shape}: {} KB for {size} bytes",
        o.rss_kb
    );
    if !o.ok {
        let first = o.err.lines().next().unwrap_or_default();
        assert!(first.chars().count() <= 300, "{shape}: {first}");
        assert!(!o.err.contains("libbpf:"), "{shape}: {}", o.err);
    }
    o
}

/// [`bounded`] for one object, `elf`, written to a file in `dir`.
fn bounded_object(shape: &str, dir: &Path, elf: &[u8]) -> Outcome {
    bounded(shape, dir, &[write(dir, "in.o", elf)])
}

// --- the ELF layout, as much as growing an object needs --------------------

fn rd(b: &[u8], at: usize, len: usize) -> u64 {
    b[at..at + len]
        .iter()
        .rev()
        .fold(0, |acc, &x| acc << 8 | u64::from(x))
}

fn wr(b: &mut [u8], at: usize, len: usize, v: u64) {
    b[at..at + len].copy_from_slice(&v.to_le_bytes()[..len]);
}

fn c_str(b: &[u8], at: usize) -> &[u8] {
    let end = b[at..].iter().position(|&c| c == 0).unwrap();
    &b[at..at + end]
}

/// The offset of the header of section `name`.
fn section(elf: &[u8], name: &str) -> usize {
    let (shoff, count) = (rd(elf, 0x28, 8) as usize, rd(elf, 0x3c, 2) as usize);
    let header = |i: usize| shoff + i * 64;
    let strtab = rd(elf, header(rd(elf, 0x3e, 2) as usize) + 24, 8) as usize;
    (0..count)
        .map(header)
        .find(|&h| c_str(elf, strtab + rd(elf, h, 4) as usize) == name.as_bytes())
        .unwrap_or_else(|| panic!("no section {name}"))
}

fn data(elf: &[u8], name: &str) -> Vec<u8> {
    let h = section(elf, name);
    let (off, size) = (rd(elf, h + 24, 8) as usize, rd(elf, h + 32, 8) as usize);
    elf[off..off + size].to_vec()
}

/// Gives section `name` the contents `new`, appended to the file.
fn replace(elf: &mut Vec<u8>, name: &str, new: &[u8]) {
    let h = section(elf, name);
    elf.resize(elf.len().next_multiple_of(8), 0);
    let off = elf.len() as u64;
    elf.extend_from_slice(new);
    wr(elf, h + 24, 8, off);
    wr(elf, h + 32, 8, new.len() as u64);
}

/// Sets the size of the function symbol `name`, as code grows under it.
fn set_symbol_size(elf: &mut [u8], name: &str, size: u64) {
    let (symtab, strtab) = (data(elf, ".symtab"), data(elf, ".strtab"));
    let i = (0..symtab.len() / 24)
        .find(|i| c_str(&strtab, rd(&symtab, i * 24, 4) as usize) == name.as_bytes())
        .unwrap();
    let at = rd(elf, section(elf, ".symtab") + 24, 8) as usize + i * 24 + 16;
    wr(elf, at, 8, size);
}

/// `.BTF` with the types that `types` makes and `strings` appended:
/// `types` gets the offset of the first new string and the id of the first
/// new type.
fn grow_btf(btf: &[u8], types: impl Fn(u32, u32) -> Vec<u8>, strings: &[u8]) -> Vec<u8> {
    let count = xdpchain_obj::btf::Btf::parse(btf).unwrap().types().count() as u32;
    let hdr = rd(btf, 4, 4) as usize;
    let (toff, tlen) = (rd(btf, 8, 4) as usize, rd(btf, 12, 4) as usize);
    let (soff, slen) = (rd(btf, 16, 4) as usize, rd(btf, 20, 4) as usize);
    let body = &btf[hdr..];
    let new_types = types(slen as u32, count + 1);
    let mut out = btf[..hdr].to_vec();
    out.extend_from_slice(&body[toff..toff + tlen]);
    out.extend_from_slice(&new_types);
    out.extend_from_slice(&body[soff..soff + slen]);
    out.extend_from_slice(strings);
    wr(&mut out, 8, 4, 0);
    wr(&mut out, 12, 4, (tlen + new_types.len()) as u64);
    wr(&mut out, 16, 4, (tlen + new_types.len()) as u64);
    wr(&mut out, 20, 4, (slen + strings.len()) as u64);
    out
}

fn words(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// A name of `len` bytes, NUL-terminated, as a string table holds it.
fn long_name(len: usize) -> Vec<u8> {
    let mut s = vec![b'n'; len];
    s.push(0);
    s
}

fn seed(map: bool) -> Vec<u8> {
    let o = if map {
        compile("scale", "_map", &["-g", "-DMAP"])
    } else {
        obj("scale")
    };
    std::fs::read(o).unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// An object compiled from C with `n` of `decl(i)` beside the seed's
/// program.
fn generated(dir: &Path, name: &str, n: usize, decl: impl Fn(usize) -> String) -> PathBuf {
    let mut src = String::from("#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n");
    for i in 0..n {
        src += &decl(i);
        src.push('\n');
    }
    src += "SEC(\"xdp\") int xdp_scale(struct xdp_md *ctx) { return XDP_PASS; }\n";
    src += "char _license[] SEC(\"license\") = \"GPL\";\n";
    let c = write(dir, &format!("{name}.c"), src.as_bytes());
    let o = dir.join(format!("{name}.o"));
    clang(&c, &o, &["-g"]);
    o
}

// --- the shapes -------------------------------------------------------------

/// `elf` with `groups` more groups of `records` line_info records each,
/// every group naming the section whose name is at `name_off` in BTF.
fn with_line_info(elf: &mut Vec<u8>, name_off: u32, groups: usize, records: u32) {
    let ext = data(elf, ".BTF.ext");
    let hdr = rd(&ext, 4, 4) as usize;
    let table = |at: usize| {
        let (off, len) = (rd(&ext, at, 4) as usize, rd(&ext, at + 4, 4) as usize);
        ext[hdr + off..hdr + off + len].to_vec()
    };
    let (funcs, mut lines) = (table(8), table(16));
    let cores = if hdr >= 32 { table(24) } else { Vec::new() };
    if lines.is_empty() {
        lines = words(&[16]);
    }
    for _ in 0..groups {
        lines.extend(words(&[name_off, records]));
        for r in 0..records {
            lines.extend(words(&[r * 8, 0, 0, 0]));
        }
    }
    let mut out = ext[..hdr].to_vec();
    for (at, t) in [(8, &funcs), (16, &lines), (24, &cores)] {
        if at < hdr {
            let off = (out.len() - hdr) as u64;
            wr(&mut out, at, 4, off);
            wr(&mut out, at + 4, 4, t.len() as u64);
            out.extend_from_slice(t);
        }
    }
    replace(elf, ".BTF.ext", &out);
}

#[test]
fn btf_ext_records_naming_a_long_section() {
    let dir = TempDir::new("scale-ext");
    let (groups, records) = (1000 * scale(), 10);
    let mut elf = seed(false);
    let name = long_name(40_000);
    let btf = data(&elf, ".BTF");
    let name_off = rd(&btf, 20, 4) as u32;
    replace(&mut elf, ".BTF", &grow_btf(&btf, |_, _| Vec::new(), &name));
    with_line_info(&mut elf, name_off, groups, records);
    let o = bounded_object("long .BTF.ext section names", &dir.0, &elf);
    assert!(!o.ok);
}

#[test]
fn btf_functions_sharing_a_long_name() {
    let dir = TempDir::new("scale-func-name");
    let n = 60_000 * scale() as u32;
    let mut elf = seed(false);
    let btf = data(&elf, ".BTF");
    // A prototype of no arguments, then functions of it, all named alike.
    let grown = grow_btf(
        &btf,
        |name, proto| {
            let mut t = words(&[0, 13 << 24, 0]);
            for _ in 0..n {
                t.extend(words(&[name, 12 << 24, proto]));
            }
            t
        },
        &long_name(1 << 20),
    );
    replace(&mut elf, ".BTF", &grown);
    let o = bounded_object("BTF functions sharing a 1 MB name", &dir.0, &elf);
    assert!(!o.ok);
}

/// Nearly as many functions in BTF as types may be, sharing the name of a
/// global function (as long as names may be), which linking renames.
#[test]
fn btf_functions_sharing_a_renamed_name() {
    let dir = TempDir::new("scale-func-renamed");
    let name = format!("{}f", "p".repeat(500));
    let o = generated(&dir.0, "named", 1, |_| {
        format!("__attribute__((noinline)) int {name}(int x) {{ return x; }}")
    });
    let mut elf = std::fs::read(o).unwrap();
    let btf = data(&elf, ".BTF");
    let hdr = rd(&btf, 4, 4) as usize;
    let strings = hdr + rd(&btf, 16, 4) as usize;
    let at = btf[strings..]
        .windows(name.len() + 1)
        .position(|w| w[..name.len()] == *name.as_bytes() && w[name.len()] == 0)
        .unwrap() as u32;
    let grown = grow_btf(
        &btf,
        |_, proto| {
            let mut t = words(&[0, 13 << 24, 0]);
            // At the cap whatever the scale: more types are refused.
            for _ in 0..60_000 {
                t.extend(words(&[at, 12 << 24 | 1, proto]));
            }
            t
        },
        &[],
    );
    replace(&mut elf, ".BTF", &grown);
    let o = bounded_object("60,000 BTF functions of one renamed name", &dir.0, &elf);
    assert!(o.ok, "{}", o.err);
}

#[test]
fn many_global_variables() {
    let dir = TempDir::new("scale-globals");
    let o = generated(&dir.0, "globals", 16_000 * scale(), |i| {
        format!("int g{i};")
    });
    assert!(!bounded("16,000 global variables", &dir.0, &[o]).ok);
}

#[test]
fn ten_objects_of_many_globals() {
    let dir = TempDir::new("scale-copies");
    let o = generated(&dir.0, "globals", 1000 * scale(), |i| format!("int g{i};"));
    let inputs = vec![o; 10];
    assert!(!bounded("ten objects of 1,000 globals", &dir.0, &inputs).ok);
}

#[test]
fn many_functions() {
    let dir = TempDir::new("scale-functions");
    let o = generated(&dir.0, "functions", 3000 * scale(), |i| {
        format!("__attribute__((noinline)) int f{i}(int x) {{ return x + {i}; }}")
    });
    assert!(!bounded("3,000 functions", &dir.0, &[o]).ok);
}

#[test]
fn names_with_a_long_shared_prefix() {
    let dir = TempDir::new("scale-prefix");
    let prefix = "p".repeat(1000);
    let o = generated(&dir.0, "prefix", 1000 * scale(), |i| {
        format!(
            "int {prefix}g{i};\n__attribute__((noinline)) int {prefix}f{i}(int x) {{ return x; }}"
        )
    });
    assert!(!bounded("names of a 1,000-byte shared prefix", &dir.0, &[o]).ok);
}

/// Four objects at the per-object cap of globals, their names as long as
/// allowed less a tag and alike but for their end: libbpf's lookups by name
/// at their longest. Linked.
#[test]
fn at_the_caps_with_names_alike() {
    let dir = TempDir::new("scale-caps");
    let prefix = "p".repeat(480);
    let o = generated(&dir.0, "caps", 1000, |i| format!("int {prefix}g{i};"));
    let o = bounded(
        "four objects of 1,000 globals, names alike",
        &dir.0,
        &[o.clone(), o.clone(), o.clone(), o],
    );
    assert!(o.ok, "{}", o.err);
}

/// An object whose program is `n` instructions `r0 = 0`, then `exit`.
fn long_program(n: usize) -> Vec<u8> {
    let mut elf = seed(false);
    let mut code = Vec::with_capacity((n + 1) * 8);
    for _ in 0..n {
        code.extend_from_slice(&[0xb7, 0, 0, 0, 0, 0, 0, 0]);
    }
    code.extend_from_slice(&[0x95, 0, 0, 0, 0, 0, 0, 0]);
    set_symbol_size(&mut elf, "xdp_scale", code.len() as u64);
    replace(&mut elf, "xdp", &code);
    elf
}

#[test]
fn two_million_instructions() {
    let dir = TempDir::new("scale-insns");
    let elf = long_program(2_000_000 * scale());
    let o = bounded_object("two million instructions", &dir.0, &elf);
    assert!(!o.ok);
}

/// A line_info record for each instruction of a long program: libbpf's
/// linker grows its array of them one record at a time.
#[test]
fn a_line_info_record_per_instruction() {
    let dir = TempDir::new("scale-records");
    let n = 100_000 * scale();
    let mut elf = long_program(n);
    let btf = data(&elf, ".BTF");
    let strings = rd(&btf, 4, 4) as usize + rd(&btf, 16, 4) as usize;
    let at = btf[strings..].windows(5).position(|w| w == b"\0xdp\0");
    let xdp = at.expect("the program's section named in BTF") as u32 + 1;
    with_line_info(&mut elf, xdp, 1, n as u32);
    let o = bounded_object("a line_info record per instruction", &dir.0, &elf);
    assert!(o.err.contains(".BTF.ext records"), "{}", o.err);
}

/// As many as the kernel loads: linked, without a generated root.
#[test]
fn a_million_instructions() {
    let dir = TempDir::new("scale-insns-max");
    let elf = long_program(999_000);
    assert!(bounded_object("a million instructions", &dir.0, &elf).ok);
}

/// A program that loads the map's address `n` times: one relocation each,
/// as many as fit in the instructions the kernel loads.
#[test]
fn half_a_million_relocations() {
    let dir = TempDir::new("scale-relocs");
    let n = 480_000 * scale();
    let mut elf = seed(true);
    let code = data(&elf, "xdp");
    let relo = data(&elf, ".relxdp");
    // The seed's one relocation is its lookup's map address (ld_imm64).
    let (at, info) = (rd(&relo, 0, 8) as usize, rd(&relo, 8, 8));
    let ld = &code[at..at + 16];
    let (mut new_code, mut new_relo) = (Vec::new(), Vec::new());
    for i in 0..n {
        new_code.extend_from_slice(ld);
        new_relo.extend((i as u64 * 16).to_le_bytes());
        new_relo.extend(info.to_le_bytes());
    }
    new_code.extend_from_slice(&[0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
    set_symbol_size(&mut elf, "xdp_scale", new_code.len() as u64);
    replace(&mut elf, "xdp", &new_code);
    replace(&mut elf, ".relxdp", &new_relo);
    bounded_object("480,000 relocations", &dir.0, &elf);
}
