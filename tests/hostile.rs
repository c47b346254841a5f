//! Objects broken as an attacker or a broken compiler would break them,
//! one class of fault each (issue: hostile objects): every one is a clear
//! error from the library, and nothing crashes, hangs or allocates without
//! bound. No kernel needed: nothing here loads.
mod common;

use common::*;
use object::{Object, ObjectSection, ObjectSymbol};
use xdpchain::{Chain, Component, Error};

/// `bytes` with the 64-byte header of section `name` changed by `f`.
fn patched(bytes: &[u8], name: &str, f: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let file = object::File::parse(bytes).unwrap();
    let index = file.section_by_name(name).unwrap().index().0;
    let shoff = u64::from_le_bytes(bytes[0x28..0x30].try_into().unwrap()) as usize;
    let mut out = bytes.to_vec();
    let at = shoff + index * 64;
    f(&mut out[at..at + 64]);
    out
}

fn set(header: &mut [u8], field: usize, value: u64) {
    header[field..field + 8].copy_from_slice(&value.to_le_bytes());
}

const SH_FLAGS: usize = 8;
const SH_OFFSET: usize = 24;
const SH_SIZE: usize = 32;
const SH_ADDRALIGN: usize = 48;

fn errno(r: Result<Component, Error>) -> i32 {
    r.expect_err("refused").errno()
}

/// Why the object `bytes` is refused.
fn refusal(bytes: Vec<u8>) -> String {
    let r = Component::from_bytes(bytes, "hostile.o", None);
    r.expect_err("refused").to_string()
}

#[test]
fn header_fields_are_checked_before_use() {
    let counter = std::fs::read(obj("counter")).unwrap();
    let from = |b: Vec<u8>| Component::from_bytes(b, "hostile.o", None);
    // An alignment of 2^40 would be allocated when the object is written.
    let b = patched(&counter, "xdp", |h| set(h, SH_ADDRALIGN, 1 << 40));
    assert_eq!(errno(from(b)), libc::EFBIG);
    // A 1 GiB .bss would be too.
    let b = patched(&counter, ".bss", |h| set(h, SH_SIZE, 1 << 30));
    let e = from(b).unwrap_err();
    assert!(e.to_string().contains("zeroed data"), "{e}");
    // A section past the end of the file.
    let b = patched(&counter, "xdp", |h| set(h, SH_OFFSET, 1 << 40));
    assert_eq!(errno(from(b)), libc::ENOEXEC);
    let b = patched(&counter, ".symtab", |h| set(h, SH_SIZE, u64::MAX / 2));
    assert_eq!(errno(from(b)), libc::ENOEXEC);
    // Two sections of one name (found by fuzzing: libbpf's linker leaked
    // the first .BTF.ext it read, and we would read another than libbpf).
    let mut name = [0u8; 4];
    patched(&counter, ".BTF", |h| name.copy_from_slice(&h[..4]));
    let b = patched(&counter, ".bss", |h| h[..4].copy_from_slice(&name));
    let e = from(b).unwrap_err();
    assert!(e.to_string().contains("two sections named .BTF"), "{e}");
}

#[test]
fn relocations_outside_their_section_are_refused() {
    // libbpf's linker patched the instruction at any relocation's offset
    // (found by the scale campaign: a SEGV in linker_append_elf_relos).
    let counter = std::fs::read(obj("counter")).unwrap();
    let file = object::File::parse(&*counter).unwrap();
    let relocs = file
        .section_by_name(".relxdp")
        .unwrap()
        .file_range()
        .unwrap()
        .0 as usize;
    let code = file.section_by_name("xdp").unwrap().size();
    for offset in [code, 1 << 54] {
        let mut b = counter.clone();
        b[relocs..relocs + 8].copy_from_slice(&offset.to_le_bytes());
        let e = refusal(b);
        assert!(e.contains("a relocation outside its section"), "{e}");
    }
}

#[test]
fn section_symbols_of_no_section_are_refused() {
    // libbpf's linker indexed its sections by such a symbol's section
    // (found by the scale campaign: a SEGV in linker_append_elf_relos).
    let counter = std::fs::read(obj("counter")).unwrap();
    let file = object::File::parse(&*counter).unwrap();
    let symtab = file.section_by_name(".symtab").unwrap();
    let symbols = symtab.file_range().unwrap().0 as usize;
    let index = file
        .symbols()
        .find(|s| s.kind() == object::SymbolKind::Section)
        .unwrap()
        .index()
        .0;
    for shndx in [0u16, 0xfffd, file.sections().count() as u16 + 1] {
        let mut b = counter.clone();
        let at = symbols + index * 24 + 6;
        b[at..at + 2].copy_from_slice(&shndx.to_le_bytes());
        let e = refusal(b);
        assert!(
            e.contains("a section symbol of no section"),
            "{shndx:#x}: {e}"
        );
    }
}

#[test]
fn a_licence_that_only_btf_describes_is_refused() {
    // libbpf's linker compared it with the chain's own through the ELF
    // header it lacks (found by the scale campaign: a SEGV in
    // sec_content_is_same).
    let counter = std::fs::read(obj("counter")).unwrap();
    let b = patched(&counter, "license", |h| {
        let name = u32::from_le_bytes(h[..4].try_into().unwrap());
        h[..4].copy_from_slice(&(name + 1).to_le_bytes());
    });
    let e = refusal(b);
    assert!(
        e.contains("BTF describes a section license that the object lacks"),
        "{e}"
    );
}

#[test]
fn a_data_section_flagged_as_code_is_refused() {
    // libbpf's linker crashed on the BTF that its variables left behind.
    let counter = std::fs::read(obj("counter")).unwrap();
    let b = patched(&counter, "license", |h| {
        let flags = u64::from_le_bytes(h[SH_FLAGS..SH_FLAGS + 8].try_into().unwrap());
        set(h, SH_FLAGS, flags | object::elf::SHF_EXECINSTR.0);
    });
    let mut chain = Chain::new();
    chain
        .add(Component::from_bytes(b, "hostile.o", None).unwrap())
        .unwrap();
    let e = chain.link().unwrap_err();
    assert!(
        e.to_string()
            .contains("section license is code, yet BTF gives it variables"),
        "{e}"
    );
}

#[test]
fn zeroed_version_sections_are_linked_aside() {
    // libbpf's linker compared two `version` sections without data
    // through NULL (found by the scale campaign: a SEGV in
    // sec_content_is_same).
    let old = compile("oldsec", "_v5", &["-g", "-DVERSION=0x050a00"]);
    let b = patched(&std::fs::read(old).unwrap(), "version", |h| {
        h[4..8].copy_from_slice(&object::elf::SHT_NOBITS.0.to_le_bytes())
    });
    let c = Component::from_bytes(b, "hostile.o", None).unwrap();
    let mut chain = Chain::new();
    chain.add(c.clone()).unwrap();
    chain.add(c).unwrap();
    let linked = chain.link().unwrap();
    let file = object::File::parse(&*linked).unwrap();
    assert!(file.section_by_name("version").is_none());
}

#[test]
fn inputs_that_are_no_object_files() {
    let tmp = TempDir::new("hostile");
    let dir = tmp.0.clone();
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let large = dir.join("large.o");
    let f = std::fs::File::create(&large).unwrap();
    f.set_len(xdpchain::limits::MAX_OBJECT_SIZE + 1).unwrap();
    for p in [std::path::Path::new("/dev/zero"), &fifo, &dir, &large] {
        let e = Component::from_file(p, None).unwrap_err();
        assert!(
            matches!(e.errno(), libc::ENOEXEC | libc::EFBIG),
            "{}: {e}",
            p.display()
        );
    }
    let big = vec![0x7f; xdpchain::limits::MAX_OBJECT_SIZE as usize + 1];
    let e = Component::from_bytes(&big[..], "big.o", None).unwrap_err();
    assert!(
        matches!(e, Error::NotElf { .. } | Error::TooLarge { .. }),
        "{e}"
    );
}
