//! Configuring an object before it loads, as its own loader would: the
//! values of its global variables (`const volatile` ones in `.rodata`
//! above all) and the sizes of its maps. Both are edits of the ELF bytes,
//! in place (section data; the map's `max_entries` array in BTF), so static
//! and dynamic chains, linked files and the pinned record all carry them.

use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

use crate::btf::{Btf, Kind, TypeRef};
use crate::error::{refused, Result};

/// The bytes of `value` for a variable of `size` bytes: an integer that
/// fits, little-endian as BPF objects are. `signed` says what BTF says of
/// the variable's type, if it says; without it, either fits.
pub fn int_bytes(value: i128, size: usize, signed: Option<bool>) -> Option<Vec<u8>> {
    let bits = 8 * size as u32;
    let fits = match bits {
        1..=64 => {
            let (min, max) = match signed {
                Some(true) => (-(1i128 << (bits - 1)), 1i128 << (bits - 1)),
                Some(false) => (0, 1i128 << bits),
                None => (-(1i128 << (bits - 1)), 1i128 << bits),
            };
            value >= min && value < max
        }
        128 => signed != Some(false) || value >= 0,
        _ => false,
    };
    fits.then(|| value.to_le_bytes()[..size].to_vec())
}

/// Whether the global `name` is a signed integer, as the object's BTF
/// says (None: it does not say, or it is no integer).
pub fn global_signed(bytes: &[u8], name: &str) -> Option<bool> {
    let file = object::File::parse(bytes).ok()?;
    let btf = Btf::parse(file.section_by_name(".BTF")?.data().ok()?).ok()?;
    let var = btf
        .types()
        .find(|t| t.kind == Kind::Var && btf.name(t) == name)?;
    btf.int_signed(&btf.skip_mods(var.size_type)?)
}

/// An integer as text: decimal or 0x hex, with an optional minus.
pub fn parse_int(v: &str) -> Option<i128> {
    let (neg, digits) = v.strip_prefix('-').map_or((false, v), |d| (true, d));
    let n = match digits.strip_prefix("0x") {
        Some(hex) => i128::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    Some(if neg { -n } else { n })
}

/// Bytes as hex digits, two a byte.
pub fn parse_hex(hex: &str) -> Option<Vec<u8>> {
    (hex.len() % 2 == 0).then_some(())?;
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The size of the global variable `name` that has initial data.
pub fn global_size(bytes: &[u8], name: &str) -> Result<usize> {
    global(bytes, name).map(|(_, size)| size)
}

/// Where the global `name` lies in the file: (offset, size).
fn global(bytes: &[u8], name: &str) -> Result<(usize, usize)> {
    let file = object::File::parse(bytes).map_err(refused)?;
    let sym = file
        .symbols()
        .find(|s| s.kind() == SymbolKind::Data && s.name() == Ok(name))
        .ok_or_else(|| refused(format!("no global variable '{name}'")))?;
    let section = sym
        .section_index()
        .and_then(|i| file.section_by_index(i).ok())
        .ok_or_else(|| refused(format!("'{name}' is in no section")))?;
    let sec_name = section.name().unwrap_or("");
    let (start, len) = section
        .file_range()
        .ok_or_else(|| refused(format!("'{name}' is in {sec_name}, which starts zeroed: only variables with initial data (.rodata, .data) can be set")))?;
    let (at, size) = (sym.address(), sym.size());
    if at.checked_add(size).is_none_or(|end| end > len) {
        return Err(refused(format!(
            "'{name}' lies outside its section {sec_name}"
        )));
    }
    Ok(((start + at) as usize, size as usize))
}

/// `bytes` with the global `name` set to `value`, its exact size.
pub fn set_global(bytes: &[u8], name: &str, value: &[u8]) -> Result<Vec<u8>> {
    let (at, size) = global(bytes, name)?;
    if value.len() != size {
        return Err(refused(format!(
            "'{name}' is {size} bytes; the value has {}",
            value.len()
        )));
    }
    let mut out = bytes.to_vec();
    out[at..at + size].copy_from_slice(value);
    Ok(out)
}

/// The maps an object declares in `.maps`: name and definition struct.
fn map_defs(btf: &Btf) -> Vec<(String, TypeRef)> {
    let Some(maps) = btf
        .types()
        .find(|t| t.kind == Kind::Datasec && btf.name(t) == ".maps")
    else {
        return Vec::new();
    };
    btf.datasec_vars(&maps)
        .into_iter()
        .filter_map(|(id, _, _)| btf.type_by_id(id))
        .filter_map(|v| {
            let def = btf
                .skip_mods(v.size_type)
                .filter(|t| t.kind == Kind::Struct)?;
            Some((btf.name(&v).to_string(), def))
        })
        .collect()
}

/// The array type that holds field `field` of a map definition:
/// `__uint(field, N)` is `int (*field)[N]`.
fn uint_field(btf: &Btf, def: &TypeRef, field: &str) -> Option<TypeRef> {
    let (_, ptr) = btf
        .members(def)
        .into_iter()
        .find(|&(n, _)| btf.str_at(n) == field)?;
    btf.type_by_id(ptr)
        .filter(|p| p.kind == Kind::Ptr)
        .and_then(|p| btf.type_by_id(p.size_type))
        .filter(|a| a.kind == Kind::Array)
}

/// Map types that take no size (libbpf sizes a perf event array to the
/// CPUs; local storages must have none).
const UNSIZED_TYPES: [u32; 8] = [4, 19, 21, 24, 26, 28, 29, 32];

/// The maps of `bytes` (of `.maps`) that declare no size where their type
/// needs one: the kernel refuses them, which the program's own loader
/// settles by setting it.
pub fn unsized_maps(bytes: &[u8]) -> Vec<String> {
    let Some(btf) = object::File::parse(bytes)
        .ok()
        .and_then(|f| f.section_by_name(".BTF")?.data().ok().map(<[u8]>::to_vec))
        .and_then(|d| Btf::parse(&d).ok())
    else {
        return Vec::new();
    };
    map_defs(&btf)
        .into_iter()
        .filter(|(_, def)| {
            let len = |field| uint_field(&btf, def, field).and_then(|a| btf.array_len(&a));
            len("type").is_some_and(|t| !UNSIZED_TYPES.contains(&t))
                && len("max_entries").unwrap_or(0) == 0
        })
        .map(|(name, _)| name)
        .collect()
}

/// `bytes` with map `name` (of `.maps`) sized `entries`.
pub fn set_map_size(bytes: &[u8], name: &str, entries: u32) -> Result<Vec<u8>> {
    if entries == 0 {
        return Err(refused(format!(
            "map '{name}': a size of 0; a map holds at least 1 entry"
        )));
    }
    let file = object::File::parse(bytes).map_err(refused)?;
    let section = file
        .section_by_name(".BTF")
        .ok_or_else(|| refused("no BTF, where map sizes are declared"))?;
    let (start, len) = section.file_range().ok_or_else(|| refused("empty .BTF"))?;
    let mut btf = Btf::parse(section.data().map_err(refused)?)?;
    let (_, def) = map_defs(&btf)
        .into_iter()
        .find(|(n, _)| n == name)
        .ok_or_else(|| refused(format!("no map '{name}'")))?;
    let array = uint_field(&btf, &def, "max_entries").ok_or_else(|| {
        refused(format!(
            "map '{name}' declares no max_entries as __uint(max_entries, N)"
        ))
    })?;
    btf.set_array_len(&array, entries);
    let edited = btf.to_bytes();
    if edited.len() != len as usize {
        return Err(refused("BTF changed size"));
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
        let (_, def) = map_defs(&btf).into_iter().find(|(n, _)| n == name).unwrap();
        btf.array_len(&uint_field(&btf, &def, "max_entries").unwrap())
            .unwrap()
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
        let out = set_global(&out, "limit", &int_bytes(9, 4, None).unwrap()).unwrap();
        assert_eq!(value(&out, "limit"), 9u32.to_le_bytes());
        assert!(set_global(COMPONENT, "port", &[1, 2])
            .unwrap_err()
            .to_string()
            .contains("4 bytes"));
        assert!(set_global(COMPONENT, "nope", &[0; 4])
            .unwrap_err()
            .to_string()
            .contains("no global variable 'nope'"));
        assert!(set_global(COMPONENT, "seen", &[0; 8])
            .unwrap_err()
            .to_string()
            .contains("starts zeroed"));
        assert_eq!(global_size(COMPONENT, "seen").ok(), None);
    }

    #[test]
    fn integers_must_fit() {
        assert_eq!(int_bytes(-1, 2, None), Some(vec![0xff, 0xff]));
        assert_eq!(int_bytes(65535, 2, None), Some(vec![0xff, 0xff]));
        assert_eq!(int_bytes(65536, 2, None), None);
        assert_eq!(int_bytes(-32769, 2, None), None);
        assert_eq!(int_bytes(1, 0, None), None);
        // As BTF types them: unsigned takes no sign, signed no top bit.
        assert_eq!(int_bytes(-1, 4, Some(false)), None);
        assert_eq!(int_bytes(0xffff_ffff, 4, Some(false)), Some(vec![0xff; 4]));
        assert_eq!(int_bytes(0x8000_0000, 4, Some(true)), None);
        assert_eq!(
            int_bytes(-0x8000_0000, 4, Some(true)),
            Some(vec![0, 0, 0, 0x80])
        );
        assert_eq!(global_signed(COMPONENT, "port"), Some(false));
        assert_eq!(global_signed(COMPONENT, "nope"), None);
    }

    #[test]
    fn map_sizes_are_set_in_btf() {
        assert_eq!(map_size(COMPONENT, "hits"), 1);
        let out = set_map_size(COMPONENT, "hits", 4096).unwrap();
        assert_eq!((out.len(), map_size(&out, "hits")), (COMPONENT.len(), 4096));
        assert!(set_map_size(COMPONENT, "nope", 1)
            .unwrap_err()
            .to_string()
            .contains("no map 'nope'"));
        assert!(set_map_size(COMPONENT, "hits", 0)
            .unwrap_err()
            .to_string()
            .contains("at least 1"));
    }

    #[test]
    fn a_map_of_no_size_is_found_before_loading() {
        assert!(unsized_maps(COMPONENT).is_empty());
        // The object as shipped by a loader that sizes it at run time.
        let file = object::File::parse(COMPONENT).unwrap();
        let section = file.section_by_name(".BTF").unwrap();
        let (start, _) = section.file_range().unwrap();
        let mut btf = Btf::parse(section.data().unwrap()).unwrap();
        let (_, def) = map_defs(&btf)
            .into_iter()
            .find(|(n, _)| n == "hits")
            .unwrap();
        let entries = uint_field(&btf, &def, "max_entries").unwrap();
        btf.set_array_len(&entries, 0);
        let edited = btf.to_bytes();
        let mut shipped = COMPONENT.to_vec();
        shipped[start as usize..][..edited.len()].copy_from_slice(&edited);
        assert_eq!(unsized_maps(&shipped), ["hits"]);
        assert!(unsized_maps(b"not an object").is_empty());
    }
}
