//! Configuring an object before it loads, as its own loader would: the
//! values of its global variables (`const volatile` ones in `.rodata`
//! above all) and the sizes of its maps. Both are edits of the ELF bytes,
//! in place (section data; the map's `max_entries` array in BTF), so static
//! and dynamic chains, linked files and the pinned record all carry them.

use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

use crate::btf::{Btf, Kind};

/// Why an object could not be configured so.
pub(crate) type Refusal = String;

/// The bytes of `value` for a variable of `size` bytes: an integer that
/// fits, little-endian as BPF objects are.
pub(crate) fn int_bytes(value: i128, size: usize) -> Option<Vec<u8>> {
    let bits = 8 * size as u32;
    let fits = match bits {
        1..=64 => value >= -(1i128 << (bits - 1)) && value < (1i128 << bits),
        128 => true,
        _ => false,
    };
    fits.then(|| value.to_le_bytes()[..size].to_vec())
}

/// An integer as text: decimal or 0x hex, with an optional minus.
pub(crate) fn parse_int(v: &str) -> Option<i128> {
    let (neg, digits) = v.strip_prefix('-').map_or((false, v), |d| (true, d));
    let n = match digits.strip_prefix("0x") {
        Some(hex) => i128::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    Some(if neg { -n } else { n })
}

/// Bytes as hex digits, two a byte.
pub(crate) fn parse_hex(hex: &str) -> Option<Vec<u8>> {
    (hex.len() % 2 == 0).then_some(())?;
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The size of the global variable `name` that has initial data.
pub(crate) fn global_size(bytes: &[u8], name: &str) -> Result<usize, Refusal> {
    global(bytes, name).map(|(_, size)| size)
}

/// Where the global `name` lies in the file: (offset, size).
fn global(bytes: &[u8], name: &str) -> Result<(usize, usize), Refusal> {
    let file = object::File::parse(bytes).map_err(|e| e.to_string())?;
    let sym = file
        .symbols()
        .find(|s| s.kind() == SymbolKind::Data && s.name() == Ok(name))
        .ok_or_else(|| format!("no global variable '{name}'"))?;
    let section = sym
        .section_index()
        .and_then(|i| file.section_by_index(i).ok())
        .ok_or_else(|| format!("'{name}' is in no section"))?;
    let sec_name = section.name().unwrap_or("");
    let (start, len) = section
        .file_range()
        .ok_or_else(|| format!("'{name}' is in {sec_name}, which starts zeroed: only variables with initial data (.rodata, .data) can be set"))?;
    let (at, size) = (sym.address(), sym.size());
    if at.checked_add(size).is_none_or(|end| end > len) {
        return Err(format!("'{name}' lies outside its section {sec_name}"));
    }
    Ok(((start + at) as usize, size as usize))
}

/// `bytes` with the global `name` set to `value`, its exact size.
pub(crate) fn set_global(bytes: &[u8], name: &str, value: &[u8]) -> Result<Vec<u8>, Refusal> {
    let (at, size) = global(bytes, name)?;
    if value.len() != size {
        return Err(format!(
            "'{name}' is {size} bytes; the value has {}",
            value.len()
        ));
    }
    let mut out = bytes.to_vec();
    out[at..at + size].copy_from_slice(value);
    Ok(out)
}

/// `bytes` with map `name` (of `.maps`) sized `entries`.
pub(crate) fn set_map_size(bytes: &[u8], name: &str, entries: u32) -> Result<Vec<u8>, Refusal> {
    let file = object::File::parse(bytes).map_err(|e| e.to_string())?;
    let section = file
        .section_by_name(".BTF")
        .ok_or("no BTF, where map sizes are declared")?;
    let (start, len) = section.file_range().ok_or("empty .BTF")?;
    let mut btf =
        Btf::parse(section.data().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let maps = btf
        .types()
        .find(|t| t.kind == Kind::Datasec && btf.name(t) == ".maps")
        .ok_or_else(|| format!("no map '{name}' (the object declares no maps in .maps)"))?;
    let var = btf
        .datasec_vars(&maps)
        .into_iter()
        .filter_map(|(id, _, _)| btf.type_by_id(id))
        .find(|v| btf.name(v) == name)
        .ok_or_else(|| format!("no map '{name}'"))?;
    let def = btf
        .skip_mods(var.size_type)
        .filter(|t| t.kind == Kind::Struct)
        .ok_or_else(|| format!("map '{name}' has no definition struct"))?;
    let max = btf
        .members(&def)
        .into_iter()
        .find(|&(n, _)| btf.str_at(n) == "max_entries")
        .ok_or_else(|| format!("map '{name}' declares no max_entries"))?;
    // __uint(max_entries, N) is `int (*max_entries)[N]`.
    let array = btf
        .type_by_id(max.1)
        .filter(|p| p.kind == Kind::Ptr)
        .and_then(|p| btf.type_by_id(p.size_type))
        .filter(|a| a.kind == Kind::Array)
        .ok_or_else(|| format!("map '{name}': max_entries is not __uint(max_entries, N)"))?;
    btf.set_array_len(&array, entries);
    let edited = btf.to_bytes();
    if edited.len() != len as usize {
        return Err("BTF changed size".into());
    }
    let mut out = bytes.to_vec();
    out[start as usize..][..edited.len()].copy_from_slice(&edited);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/test_component.bpf.o"));

    fn map_size(bytes: &[u8], name: &str) -> u32 {
        let file = object::File::parse(bytes).unwrap();
        let btf = Btf::parse(file.section_by_name(".BTF").unwrap().data().unwrap()).unwrap();
        let maps = btf
            .types()
            .find(|t| t.kind == Kind::Datasec && btf.name(t) == ".maps")
            .unwrap();
        let var = btf
            .datasec_vars(&maps)
            .into_iter()
            .filter_map(|(id, _, _)| btf.type_by_id(id))
            .find(|v| btf.name(v) == name)
            .unwrap();
        let def = btf.skip_mods(var.size_type).unwrap();
        let (_, ptr) = btf
            .members(&def)
            .into_iter()
            .find(|&(n, _)| btf.str_at(n) == "max_entries")
            .unwrap();
        let array = btf
            .type_by_id(btf.type_by_id(ptr).unwrap().size_type)
            .unwrap();
        btf.array_len(&array).unwrap()
    }

    fn value(bytes: &[u8], name: &str) -> Vec<u8> {
        let (at, size) = global(bytes, name).unwrap();
        bytes[at..at + size].to_vec()
    }

    #[test]
    fn globals_are_set_in_place() {
        assert_eq!(value(COMPONENT, "port"), 53u32.to_le_bytes());
        let out = set_global(COMPONENT, "port", &8080u32.to_le_bytes()).unwrap();
        assert_eq!(out.len(), COMPONENT.len());
        assert_eq!(value(&out, "port"), 8080u32.to_le_bytes());
        assert_eq!(
            value(&out, "limit"),
            7u32.to_le_bytes(),
            "its neighbour is untouched"
        );
        let out = set_global(&out, "limit", &int_bytes(9, 4).unwrap()).unwrap();
        assert_eq!(value(&out, "limit"), 9u32.to_le_bytes());
        assert!(set_global(COMPONENT, "port", &[1, 2])
            .unwrap_err()
            .contains("4 bytes"));
        assert!(set_global(COMPONENT, "nope", &[0; 4])
            .unwrap_err()
            .contains("no global variable 'nope'"));
        assert!(set_global(COMPONENT, "seen", &[0; 8])
            .unwrap_err()
            .contains("starts zeroed"));
        assert_eq!(global_size(COMPONENT, "seen").ok(), None);
    }

    #[test]
    fn integers_must_fit() {
        assert_eq!(int_bytes(-1, 2), Some(vec![0xff, 0xff]));
        assert_eq!(int_bytes(65535, 2), Some(vec![0xff, 0xff]));
        assert_eq!(int_bytes(65536, 2), None);
        assert_eq!(int_bytes(-32769, 2), None);
        assert_eq!(int_bytes(1, 0), None);
    }

    #[test]
    fn map_sizes_are_set_in_btf() {
        assert_eq!(map_size(COMPONENT, "hits"), 1);
        let out = set_map_size(COMPONENT, "hits", 4096).unwrap();
        assert_eq!((out.len(), map_size(&out, "hits")), (COMPONENT.len(), 4096));
        assert!(set_map_size(COMPONENT, "nope", 1)
            .unwrap_err()
            .contains("no map 'nope'"));
    }
}
